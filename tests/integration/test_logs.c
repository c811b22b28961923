/*
 * Per-item logs (README, "Per-item logs"), end to end through the real
 * CLI, as a user reads them:
 *  - a map whose items write distinct text to stderr: each item's log is
 *    its own; a failing item and a retried one keep every attempt's log,
 *    each readable alone (--attempt K), the last one by default; an item
 *    that writes more than 64 KiB keeps its first and last 32 KiB around
 *    a "[... N bytes dropped ...]" line; an item that writes nothing has
 *    an empty log; `troupe logs ID` prints every attempt under a header;
 *    a log bigger than one reply's worth pages;
 *  - bad ids, items and attempts get one clear line;
 *  - logs survive the scheduler being killed and started again;
 *  - an actor replica's boot text goes with its first item, and what it
 *    writes between items with the next item it serves;
 *  - a read token of the project reads logs; another project's token
 *    finds no such execution.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

/* Each item: its text on stderr, then by item: "fail" fails every
 * attempt, "flaky" fails its first, "big" writes 200,000 more bytes,
 * "quiet" writes nothing at all. */
#define LOGS_CMD                                                            \
	"i=$(cat); [ \"$i\" = quiet ] && { echo out-$i; exit 0; }; "        \
	"echo \"log of $i attempt $TROUPE_ATTEMPT\" >&2; "                  \
	"case $i in fail) exit 3;; "                                        \
	"flaky) [ \"$TROUPE_ATTEMPT\" = 1 ] && exit 4;; "                   \
	"big) printf HEAD >&2; head -c 200000 /dev/zero | tr '\\0' x >&2; " \
	"printf TAIL >&2;; esac; echo out-$i"

/* Runs `troupe logs ARGS` expecting exit 0; returns its stdout. */
static char *
logs_ok(h_cluster *c, const char *args)
{
	char *out, *err;
	int   rv = h_run(c, &out, &err, "troupe logs %s", args);

	if (rv != 0)
		h_fail(c, "troupe logs %s: exit %d: %s", args, rv, err);
	return out;
}

/* Runs `troupe logs ARGS` expecting exit `code` and one line on stderr
 * holding what. */
static void
logs_refused(h_cluster *c, const char *args, int code, const char *what)
{
	char *out, *err;
	int   rv = h_run(c, &out, &err, "troupe logs %s", args);

	if (rv != code)
		h_fail(c, "troupe logs %s: exit %d, want %d: %s", args, rv,
		       code, err);
	h_assert_contains(err, what);
	assert_int_equal(h_lines(err), 1);
	assert_string_equal(out, "");
}

static void
assert_log(h_cluster *c, const char *id, const char *args, const char *want)
{
	char  buf[256];
	char *out;

	snprintf(buf, sizeof(buf), "%s %s", id, args);
	out = logs_ok(c, buf);
	if (strcmp(out, want) != 0)
		h_fail(c, "troupe logs %s: got '%s', want '%s'", buf, out,
		       want);
}

static void
test_map_logs(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	const char *id;
	char       *out, *p, want[128];
	const char *mark = "\n[... 134493 bytes dropped ...]\n";
	int         n;

	id = h_map_detach(c, "a\nfail\nflaky\nbig\nquiet\n",
	                  "--retries 1 --min-success-ratio 0 --cmd %s",
	                  h_quote(c, LOGS_CMD));
	/* Every item runs to its end (a failure aborts nothing). */
	h_wait_done(c, id, 120000);

	/* Each item's own text; the last attempt unless --attempt. */
	assert_log(c, id, "--item 0", "log of a attempt 1\n");
	assert_log(c, id, "--item 1", "log of fail attempt 2\n");
	assert_log(c, id, "--item 1 --attempt 1", "log of fail attempt 1\n");
	assert_log(c, id, "--item 1 --attempt 2", "log of fail attempt 2\n");
	assert_log(c, id, "--item 2 --attempt 1", "log of flaky attempt 1\n");
	assert_log(c, id, "--item 2", "log of flaky attempt 2\n");
	assert_log(c, id, "--item 4", "");

	/* Past the cap: the first and last 32 KiB and the marker (21 +
	 * 4 + 200,000 + 4 bytes written, 65,536 kept). */
	snprintf(want, sizeof(want), "%s --item 3", id);
	out = logs_ok(c, want);
	assert_int_equal(strlen(out), 65536 + strlen(mark));
	assert_int_equal(strncmp(out, "log of big attempt 1\nHEADxxx", 28), 0);
	p = strstr(out, mark);
	if (p != out + 32768)
		h_fail(c, "no '%s' after the first 32 KiB", mark);
	assert_string_equal(out + strlen(out) - 8, "xxxxTAIL");

	/* Every attempt, each under its header, in order; nothing for the
	 * quiet item. */
	out = logs_ok(c, id);
	h_assert_contains(out, "== item 0, attempt 1 ==\nlog of a attempt 1\n"
	                       "== item 1, attempt 1 ==\nlog of fail attempt "
	                       "1\n== item 1, attempt 2 ==\nlog of fail "
	                       "attempt 2\n== item 2, attempt 1 ==\nlog of "
	                       "flaky attempt 1\n== item 2, attempt 2 ==\nlog "
	                       "of flaky attempt 2\n== item 3, attempt 1 ==\n"
	                       "log of big attempt 1\nHEAD");
	assert_null(strstr(out, "== item 4"));
	h_assert_contains(out, "xxxxTAIL\n");

	/* One clear line for what does not exist. */
	logs_refused(c, "no-such-id", 1, "no execution 'no-such-id'");
	snprintf(want, sizeof(want), "%s --item 5", id);
	logs_refused(c, want, 1, "has no item 5 (it has 5 items");
	snprintf(want, sizeof(want), "%s --item 1 --attempt 3", id);
	logs_refused(c, want, 1, "has no attempt 3 (it has had 2)");
	snprintf(want, sizeof(want), "%s --attempt 1", id);
	logs_refused(c, want, 2, "--attempt needs --item");
	snprintf(want, sizeof(want), "%s --item 1 --attempt 0", id);
	logs_refused(c, want, 2, "attempts count from 1");
	snprintf(want, sizeof(want), "%s --item x", id);
	logs_refused(c, want, 2, "--item: 'x' is not a whole number");

	/* The logs are in SQLite: a killed scheduler's successor has
	 * them. */
	h_kill_scheduler(c, SIGKILL);
	h_restart_scheduler(c);
	assert_log(c, id, "--item 1 --attempt 1", "log of fail attempt 1\n");
	assert_log(c, id, "--item 2", "log of flaky attempt 2\n");
	out = logs_ok(c, id);
	n = 0;
	for (p = out; (p = strstr(p, "== item ")) != NULL; p++)
		n++;
	assert_int_equal(n, 6);
	h_done(c);
}

/* The pages of a large log listing. */
static void
test_paged_logs(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	const char *id;
	char       *out, *p, *input;
	size_t      len = 0, want = 0;
	int         n = 0;

	/* 80 items writing 60,000 bytes each: 4.8 MB, more than a reply. */
	input = h_keep(c, calloc(1, 80 * 4));
	for (int i = 0; i < 80; i++)
		len += (size_t)sprintf(input + len, "%d\n", i);
	id = h_map_detach(
	    c, input, "--cmd %s",
	    h_quote(c, "head -c 60000 /dev/zero | tr '\\0' y >&2; echo ok"));
	assert_int_equal(h_wait_done(c, id, 120000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	out = logs_ok(c, id);
	for (p = out; (p = strstr(p, "== item ")) != NULL; p++)
		n++;
	assert_int_equal(n, 80);
	h_assert_contains(out, "== item 79, attempt 1 ==\n");
	/* Each: its header, its 60,000 bytes and the newline the CLI adds
	 * after a log that lacks one. */
	for (int i = 0; i < 80; i++)
		want +=
		    (size_t)snprintf(NULL, 0, "== item %d, attempt 1 ==\n", i) +
		    60001;
	assert_int_equal(strlen(out), want);
	h_done(c);
}

/* One replica: it says "booting" before its first item, then for each
 * item "serving X" before it answers, and "after X" a second after it
 * answered (long after the worker took the answer, even under load),
 * before it reads the next one. */
static const char actor_py[] =
    "import sys, time\n"
    "sys.stderr.write('booting\\n'); sys.stderr.flush()\n"
    "while True:\n"
    "    l = sys.stdin.readline()\n"
    "    if not l: break\n"
    "    l = l.strip()\n"
    "    sys.stderr.write('serving %s\\n' % l); sys.stderr.flush()\n"
    "    print(l.upper(), flush=True)\n"
    "    time.sleep(1.0)\n"
    "    sys.stderr.write('after %s\\n' % l); sys.stderr.flush()\n";

static void
test_actor_logs(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	const char *py = h_path(c, "actor.py");
	FILE       *f = fopen(py, "w");
	const char *id;
	char       *out;

	assert_non_null(f);
	fputs(actor_py, f);
	assert_int_equal(fclose(f), 0);
	id = h_map_detach(c, "p\nq\nr\ns\n",
	                  "--replicas 1 --ttl 30 --cmd '/usr/bin/python3 %s'",
	                  py);
	assert_int_equal(h_wait_done(c, id, 120000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id), 0);
	assert_string_equal(out, "P\nQ\nR\nS\n");
	/* Boot text with the first item; text between items with the next
	 * one; each item's own text with it. */
	assert_log(c, id, "--item 0", "booting\nserving p\n");
	assert_log(c, id, "--item 1", "after p\nserving q\n");
	assert_log(c, id, "--item 2", "after q\nserving r\n");
	assert_log(c, id, "--item 3", "after r\nserving s\n");
	h_done(c);
}

/* Runs `troupe token create ARGS > FILE` as the admin. */
static void
mk_token(h_cluster *c, const char *file, const char *args)
{
	assert_int_equal(h_run(c, NULL, NULL,
	                       "umask 077 && troupe token create %s > %s", args,
	                       file),
	                 0);
}

static void
test_logs_projects(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .tcp = true});
	const char *id;
	char       *out, *err, buf[256];
	int         rv;

	assert_int_equal(h_run(c, NULL, NULL, "troupe project create a"), 0);
	assert_int_equal(h_run(c, NULL, NULL, "troupe project create b"), 0);
	mk_token(c, "a-submit", "--project a --role submit");
	mk_token(c, "a-read", "--project a --role read");
	mk_token(c, "b-read", "--project b --role read");
	id = h_map_detach(
	    c, "one\n", "--token-file a-submit --cmd 'echo secret-$(cat) >&2'");
	snprintf(buf, sizeof(buf), "troupe --token-file a-read watch %s", id);
	assert_int_equal(h_run(c, NULL, NULL, "%s", buf), 0);

	/* The project's read token reads the log. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe --token-file a-read logs %s --item 0",
	                       id),
	                 0);
	assert_string_equal(out, "secret-one\n");
	/* Another project's token finds no such execution. */
	rv = h_run(c, &out, &err, "troupe --token-file b-read logs %s", id);
	assert_int_equal(rv, 1);
	h_assert_contains(err, "no execution");
	assert_int_equal(h_lines(err), 1);
	assert_null(strstr(out, "secret"));
	rv = h_run(c, &out, &err, "troupe --token-file b-read logs %s --item 0",
	           id);
	assert_int_equal(rv, 1);
	assert_null(strstr(out, "secret"));
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_map_logs),
	    H_TEST(test_paged_logs),
	    H_TEST(test_actor_logs),
	    H_TEST(test_logs_projects),
	};

	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
