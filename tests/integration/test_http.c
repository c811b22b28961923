/*
 * The scheduler's HTTP listener (--http-listen) over real HTTP: the
 * Prometheus metrics a user reads after a map with a failed item and an
 * actor map, the token that guards /metrics and POST /api, the API's own
 * calls over POST /api, bad bodies, a listener refused without a token,
 * and `troupe up` printing the dashboard's address.
 *
 * HTTP is spoken by /usr/bin/python3's urllib and http.client (a script
 * the test writes into the cluster's directory), so the daemon is
 * checked against a client it has never seen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "skip.h"

/* hget.py URL TOKEN OP ...: prints the HTTP status on its first line, then
 * what the operation returns.
 *   get PATH          GET with "Authorization: Bearer TOKEN" ("-": none)
 *   api METHOD        POST /api with a troupe.Request envelope for METHOD
 *                     (empty body): prints the Reply's code and message
 *   raw HEX           POST /api with these bytes
 *   big N             POST /api announcing N bytes, sending 1 */
static const char http_py[] =
    "import http.client, sys, urllib.error, urllib.parse, urllib.request\n"
    "url, token, op = sys.argv[1], sys.argv[2], sys.argv[3]\n"
    "def fld(f, b): return bytes([f << 3 | 2, len(b)]) + b\n"
    "def call(path, data=None, hdr={}):\n"
    "    req = urllib.request.Request(url + path, data=data, headers=hdr)\n"
    "    try:\n"
    "        r = urllib.request.urlopen(req, timeout=60)\n"
    "        return r.status, r.read(), r.headers\n"
    "    except urllib.error.HTTPError as e:\n"
    "        return e.code, e.read(), e.headers\n"
    "if op == 'get':\n"
    "    hdr = {} if token == '-' else {'Authorization': 'Bearer ' + token}\n"
    "    st, body, h = call(sys.argv[4], None, hdr)\n"
    "    print(st); print(h.get('Content-Type'))\n"
    "    sys.stdout.write(body.decode())\n"
    "elif op == 'api':\n"
    "    env = fld(1, sys.argv[4].encode())\n"
    "    if token != '-': env += fld(2, token.encode())\n"
    "    st, body, h = call('api', env)\n"
    "    print(st); print(h.get('Content-Type'))\n"
    "    code, msg, i = 0, b'', 0\n"
    "    while i < len(body):\n"
    "        tag = body[i]; i += 1\n"
    "        if tag == 0x08: code = body[i]; i += 1\n"
    "        else:\n"
    "            n = body[i]; i += 1\n"
    "            if tag == 0x12: msg = body[i:i + n]\n"
    "            i += n\n"
    "    print(code); print(msg.decode())\n"
    "elif op == 'raw':\n"
    "    st, body, h = call('api', bytes.fromhex(sys.argv[4]))\n"
    "    print(st); sys.stdout.write(body.decode())\n"
    "elif op == 'big':\n"
    "    u = urllib.parse.urlsplit(url)\n"
    "    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)\n"
    "    c.putrequest('POST', '/api')\n"
    "    c.putheader('Content-Length', sys.argv[4]); c.endheaders(b'x')\n"
    "    print(c.getresponse().status)\n";

/* The listener's address from the scheduler's log ("http://H:P/"). */
static const char *
http_url(h_cluster *c)
{
	const char *log = h_slurp(c, h_path(c, "h-scheduler.log"));
	const char *p = strstr(log, "dashboard and metrics: ");
	char        url[128];

	if (p == NULL)
		h_fail(c, "the scheduler did not say where HTTP listens");
	p += strlen("dashboard and metrics: ");
	snprintf(url, sizeof(url), "%.*s", (int)strcspn(p, " \n"), p);
	return h_keep(c, strdup(url));
}

/* Runs hget.py with args; returns its output's lines in *lines and their
 * count. */
static int
http_run(h_cluster *c, char ***lines, const char *url, const char *token,
         const char *args)
{
	char *out = NULL;

	if (access(h_path(c, "hget.py"), R_OK) != 0) {
		FILE *f = fopen(h_path(c, "hget.py"), "w");

		assert_non_null(f);
		fputs(http_py, f);
		fclose(f);
	}
	assert_int_equal(h_run(c, &out, NULL,
	                       "/usr/bin/python3 hget.py %s %s %s", url, token,
	                       args),
	                 0);
	return h_split(c, out, lines);
}

/* The value of the sample written exactly as series ("name{labels}"),
 * or -1 when /metrics has no such line. */
static double
sample(const char *text, const char *series)
{
	size_t      n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

/* /metrics as text (fails the test unless it answers 200). */
static const char *
scrape(h_cluster *c, const char *url)
{
	char      **lines;
	int         n = http_run(c, &lines, url, h_token(c), "get metrics");
	const char *text;

	assert_true(n >= 2);
	assert_string_equal(lines[0], "200");
	h_assert_contains(lines[1], "text/plain; version=0.0.4");
	{
		size_t len = 0;
		char  *all;

		for (int i = 2; i < n; i++)
			len += strlen(lines[i]) + 1;
		all = h_keep(c, calloc(1, len + 1));
		for (int i = 2; i < n; i++) {
			strcat(all, lines[i]);
			strcat(all, "\n");
		}
		text = all;
	}
	return text;
}

static const char *
src_dir(void)
{
	static char dir[4096];
	const char *slash;

	/* __FILE__ is tests/integration/test_http.c in the tree. */
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	if ((slash = strstr(dir, "/tests/integration/")) != NULL)
		dir[slash - dir] = '\0';
	return dir;
}

/* A map with a failing item and an actor map, then what /metrics says
 * about them: the counts a user checks against the maps. */
static void
test_metrics_after_maps(void **state)
{
	h_cluster         *c = h_start(&(h_opts){.workers = 2,
	                                         .slots = 3,
	                                         .tcp = true,
	                                         .sched_args = "--http-listen "
	                                                               "127.0.0.1:0"});
	const char        *url = http_url(c), *text, *id;
	double             prev = 0, count, inf;
	char               le[256];
	Troupe__Execution *e;

	(void)state;
	id = h_map_detach(c, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n",
	                  "--cmd 'test {} -ne 7' --retries 0 "
	                  "--min-success-ratio 0.5");
	e = h_wait_done(c, id, 120000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_true(e->counts->succeeded == 9 && e->counts->failed == 1);
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "troupe actor create anomaly --cmd 'python3 "
	          "%s/tests/bench/actors/detect.py --work-ms 5' --replicas 2 "
	          "--ttl 60",
	          src_dir()),
	    0);
	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items"), 0);
	id = h_map_detach(c, NULL, "--actor anomaly --items items");
	assert_int_equal(h_wait_done(c, id, 120000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);

	text = scrape(c, url);
	fprintf(stderr, "/metrics said:\n%s", text);
	/* Finished executions too, read from the database. */
	assert_true(
	    sample(text, "troupe_executions{phase=\"PHASE_SUCCEEDED\"}") == 2);
	assert_true(
	    sample(text, "troupe_executions{phase=\"PHASE_RUNNING\"}") == 0);
	assert_true(sample(text, "troupe_executions_finished_total{phase="
	                         "\"PHASE_SUCCEEDED\"}") == 2);
	assert_true(sample(text,
	                   "troupe_items_finished_total{task=\"(inline)"
	                   "\",environment=\"\",outcome=\"succeeded\"}") == 9);
	assert_true(sample(text,
	                   "troupe_items_finished_total{task=\"(inline)"
	                   "\",environment=\"\",outcome=\"failed\"}") == 1);
	/* The histogram of the first map: cumulative, ending at its count. */
	count = sample(text, "troupe_item_duration_seconds_count{task=\"("
	                     "inline)\",environment=\"\"}");
	assert_true(count == 10);
	for (const char *const *b =
	         (const char *const[]){"0.001", "0.01", "0.1", "1", "10", "60",
	                               NULL};
	     *b != NULL; b++) {
		double v;

		snprintf(
		    le, sizeof(le),
		    "troupe_item_duration_seconds_bucket{task=\"(inline)\","
		    "environment=\"\",le=\"%s\"}",
		    *b);
		v = sample(text, le);
		assert_true(v >= prev && v <= count);
		prev = v;
	}
	inf = sample(text, "troupe_item_duration_seconds_bucket{task=\"("
	                   "inline)\",environment=\"\",le=\"+Inf\"}");
	assert_true(inf == count);
	/* The actor map's items, replicas and the calls that made them. */
	assert_true(sample(text, "troupe_items_finished_total{task=\"(inline)"
	                         "\",environment=\"anomaly\",outcome=\""
	                         "succeeded\"}") == 20);
	h_assert_contains(text, "troupe_replicas{environment=\"");
	{
		const char *p = strstr(text, "anomaly\",state=\"alive\"} ");

		assert_non_null(p);
		assert_true(atoi(p + strlen("anomaly\",state=\"alive\"} ")) >=
		            1);
	}
	assert_true(sample(text, "troupe_api_requests_total{service=\"troupe."
	                         "Troupe\",method=\"CreateExecution\",code="
	                         "\"OK\"}") == 2);
	assert_true(sample(text, "troupe_workers{state=\"WORKER_READY\"}") ==
	            2);
	assert_true(sample(text, "process_resident_memory_bytes") > 1e6);
	assert_true(sample(text, "process_cpu_seconds_total") > 0);
	h_assert_contains(text, "# TYPE troupe_item_duration_seconds "
	                        "histogram\n");
	h_assert_contains(text, "troupe_commit_duration_seconds_count ");
	h_done(c);
}

/* The workers' own replica figures reach /metrics through their Pulls:
 * an environment recycled after 3 items and gone idle after 1 s shows
 * processes started, recycled and expired (ttl), and once every
 * process is gone as many exits as starts. */
static void
test_replica_processes(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1,
	                                  .slots = 2,
	                                  .tcp = true,
	                                  .sched_args = "--http-listen "
	                                                 "127.0.0.1:0"});
	const char *url = http_url(c), *text = NULL;
	double      started = 0, ttl = 0, recycled = 0, stopped = 0;
	int64_t     t0;

	(void)state;
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "troupe actor create rec --cmd 'while read x; do echo $x; "
	          "done' --replicas 1 --ttl 1 --max-items 3 && seq 9 | troupe "
	          "map --actor rec > /dev/null"),
	    0);
	t0 = h_now_ms();
	while (h_now_ms() - t0 < 60000) {
		text = scrape(c, url);
		started = sample(text, "troupe_replica_processes_started_total{"
		                       "environment=\"rec\"}");
		ttl = sample(text, "troupe_replica_processes_exited_total{"
		                   "environment=\"rec\",cause=\"ttl\"}");
		recycled = sample(text, "troupe_replica_processes_exited_total{"
		                        "environment=\"rec\",cause=\"recycled"
		                        "\"}");
		stopped =
		    sample(text, "troupe_replica_processes_exited_total{"
		                 "environment=\"rec\",cause=\"stopped\"}");
		if (ttl >= 1 && started == ttl + (recycled > 0 ? recycled : 0) +
		                               (stopped > 0 ? stopped : 0))
			break;
		h_run(c, NULL, NULL, "sleep 0.5");
	}
	fprintf(stderr,
	        "replica processes: %.0f started, %.0f recycled, %.0f ttl, "
	        "%.0f stopped\n",
	        started, recycled, ttl, stopped);
	assert_true(started >= 3);
	assert_true(recycled >= 2);
	assert_true(ttl >= 1);
	assert_true(started == ttl + recycled + (stopped > 0 ? stopped : 0));
	h_assert_contains(text, "# TYPE troupe_replica_processes_exited_total "
	                        "counter\n");
	h_done(c);
}

/* The token guards /metrics and /api; /api is the API itself; bad
 * bodies get 400 and the daemon goes on. */
static void
test_guarded_listener(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.tcp = true,
	                                  .sched_args = "--http-listen "
	                                                 "127.0.0.1:0"});
	const char *url = http_url(c), *id;
	char      **l;

	(void)state;
	assert_true(http_run(c, &l, url, "-", "get metrics") >= 1);
	assert_string_equal(l[0], "401");
	assert_true(
	    http_run(c, &l, url, "wrong-token-0123456789", "get metrics") >= 1);
	assert_string_equal(l[0], "401");
	assert_true(http_run(c, &l, url, h_token(c), "get metrics") >= 1);
	assert_string_equal(l[0], "200");

	/* A real call: the execution made on nng is listed over HTTP. */
	id = h_map_detach(c, "1\n", "--cmd 'echo {}'");
	assert_int_equal(http_run(c, &l, url, h_token(c), "api ListExecutions"),
	                 4);
	assert_string_equal(l[0], "200");
	assert_string_equal(l[1], "application/x-protobuf");
	assert_string_equal(l[2], "0"); /* OK */
	assert_true(http_run(c, &l, url, h_token(c), "get metrics") >= 1);
	(void)id;
	/* Without the token or with a wrong one: the API refuses. */
	assert_int_equal(http_run(c, &l, url, "-", "api ListExecutions"), 4);
	assert_string_equal(l[2], "16"); /* UNAUTHENTICATED */
	assert_string_equal(l[3], "a token is required");
	assert_int_equal(http_run(c, &l, url, "wrong-token-0123456789",
	                          "api ListExecutions"),
	                 4);
	assert_string_equal(l[2], "16");

	/* Not an envelope, an empty body, an oversized one: 400, one line. */
	assert_int_equal(http_run(c, &l, url, "-", "raw ffffffff"), 2);
	assert_string_equal(l[0], "400");
	h_assert_contains(l[1], "not a troupe.Request envelope");
	assert_true(http_run(c, &l, url, "-", "big 70000000") >= 1);
	assert_true(strcmp(l[0], "400") == 0 || strcmp(l[0], "413") == 0);
	/* The page is served without a token; unknown pages are 404. */
	assert_true(http_run(c, &l, url, "-", "get index.html") >= 2);
	assert_string_equal(l[0], "200");
	h_assert_contains(l[1], "text/html");
	assert_true(http_run(c, &l, url, "-", "get no-such-page") >= 1);
	assert_string_equal(l[0], "404");
	/* Still serving, on both transports. */
	assert_int_equal(h_run(c, NULL, NULL, "troupe health"), 0);
	assert_true(http_run(c, &l, url, h_token(c), "api GetHealth") == 4);
	assert_string_equal(l[2], "0");
	h_done(c);
}

/* Without a token, an HTTP listener is refused with one line, exit 2. */
static void
test_refused_without_token(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *out, *err;

	(void)state;
	assert_int_equal(
	    h_run(c, &out, &err,
	          "troupe-scheduler --home sub --http-listen 127.0.0.1:0; "
	          "echo rc=$?"),
	    0);
	assert_string_equal(out, "rc=2\n");
	assert_int_equal(h_lines(err), 1);
	h_assert_contains(err, "refusing to serve HTTP on 127.0.0.1:0 "
	                       "without a token");
	h_done(c);
}

/* `troupe up` prints the dashboard's address with its token, and the
 * address serves /metrics for that token. */
#define UP_SCRIPT                                                              \
	"troupe up --workers 1 > up.log 2>&1 & up=$!\n"                        \
	"i=0; until grep -q 'dashboard:' up.log; do\n"                         \
	"  i=$((i+1)); [ $i -gt 300 ] && { echo 'up: no dashboard'; exit 9; "  \
	"}\n"                                                                  \
	"  sleep 0.1; done\n"                                                  \
	"d=$(sed -n 's/^ *dashboard: *//p' up.log)\n"                          \
	"/usr/bin/python3 hget.py \"${d%%#*}\" \"${d#*#token=}\" get metrics " \
	"| head -1\n"                                                          \
	"/usr/bin/python3 hget.py \"${d%%#*}\" - get metrics | head -1\n"      \
	"kill -INT $up; wait $up; echo \"up=$?\"\n"

static void
test_up_prints_dashboard(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *out, **l;
	FILE      *f = fopen(h_path(c, "hget.py"), "w");

	(void)state;
	assert_non_null(f);
	fputs(http_py, f);
	fclose(f);
	assert_int_equal(h_run(c, &out, NULL, UP_SCRIPT), 0);
	if (h_split(c, out, &l) != 3 || strcmp(l[0], "200") != 0 ||
	    strcmp(l[1], "401") != 0 || strcmp(l[2], "up=0") != 0) {
		fprintf(stderr, "script said:\n%s\nup.log:\n%s\n", out,
		        h_slurp(c, h_path(c, "up.log")));
		fail_msg("troupe up's dashboard address did not serve");
	}
	h_assert_contains(h_slurp(c, h_path(c, "up.log")),
	                  "dashboard:    http://127.0.0.1:");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_refused_without_token), H_TEST(test_guarded_listener),
	    H_TEST(test_metrics_after_maps),    H_TEST(test_replica_processes),
	    H_TEST(test_up_prints_dashboard),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
