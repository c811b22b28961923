/*
 * Projects and roles (README, "Projects and roles"), end to end on a TCP
 * cluster whose token (the harness's) is the bootstrap admin token:
 *  - an admin creates projects and tokens; `token create ... > FILE`
 *    writes a token file; `token list` never shows a secret;
 *  - a project sees only its own executions, tasks and actor
 *    environments; read tokens cannot submit, worker tokens cannot call
 *    the API, submit tokens cannot join as workers, worker tokens can;
 *    revoked and expired tokens stop working;
 *  - a project's --max-running holds across its executions, its
 *    --max-replicas bounds its replicas alive, and a
 *    flooding project does not starve another;
 *  - every change is audited in the scheduler's log (token id, project,
 *    role), and no secret ever reaches the log.
 * Each check goes through the real CLI, as a user would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "harness.h"
#include "skip.h"

/* A token made by mk_token: its file (relative to the cluster's
 * directory), id and whole secret, kept by the cluster. */
typedef struct tok {
	const char *file;
	const char *id;
	const char *secret;
} tok;

/* Runs `troupe token create ARGS > FILE` under umask 077 as the admin,
 * and checks what a user relies on: exit 0; the file is 0600 and holds
 * the secret alone on one line, `trp_<id>_<secret>`; stderr names the id
 * ("token ID created") and does not repeat the secret. */
static tok
mk_token(h_cluster *c, const char *file, const char *args)
{
	struct stat st;
	tok         t = {.file = file};
	char       *err, *p, *secret;
	size_t      n;

	assert_int_equal(h_run(c, NULL, &err,
	                       "umask 077 && troupe token create %s > %s", args,
	                       file),
	                 0);
	assert_int_equal(stat(h_path(c, "%s", file), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	secret = h_slurp(c, h_path(c, "%s", file));
	assert_non_null(secret);
	assert_int_equal(h_lines(secret), 1);
	t.secret = h_chomp(secret);
	if (strncmp(t.secret, "trp_", 4) != 0)
		h_fail(c, "token file %s holds '%s', not trp_<id>_<secret>",
		       file, t.secret);
	p = strstr(err, "token ");
	if (p == NULL)
		h_fail(c, "token create said no id: %s", err);
	p += 6;
	n = strcspn(p, " :\n");
	t.id = h_keep(c, strndup(p, n));
	if (strncmp(t.secret + 4, t.id, n) != 0 || t.secret[4 + n] != '_')
		h_fail(c, "secret of token %s is not trp_%s_...", t.id, t.id);
	assert_null(strstr(err, t.secret));
	fprintf(stderr, "token %s (%s): id %s\n", file, args, t.id);
	return t;
}

/* Asserts a refusal as the CLI shows it: exit 1, one line on stderr that
 * says `what` ("permission denied", "unauthenticated", "no execution"). */
static void
refused(h_cluster *c, int rv, const char *err, const char *what)
{
	if (rv != 1)
		h_fail(c, "expected exit 1 (refused: %s), got %d: %s", what, rv,
		       err != NULL ? err : "");
	h_assert_icontains(err, what);
	assert_int_equal(h_lines(err), 1);
}

/* Whether s holds needle, ignoring case. */
static bool
icontains(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	for (; *s != '\0'; s++)
		if (strncasecmp(s, needle, n) == 0)
			return true;
	return false;
}

/* Whether some line of the scheduler's log holds every needle
 * (NULL-terminated list), ignoring case. */
static bool
log_has_line(h_cluster *c, const char *const *needles)
{
	char  *log = h_slurp(c, h_path(c, "h-scheduler.log"));
	char **lines;
	int    n;

	if (log == NULL)
		return false;
	n = h_split(c, log, &lines);
	for (int i = 0; i < n; i++) {
		int all = 1;

		for (const char *const *w = needles; *w != NULL && all; w++)
			all = icontains(lines[i], *w);
		if (all) {
			fprintf(stderr, "log: %s\n", lines[i]);
			return true;
		}
	}
	return false;
}

/* The executions of `troupe list` as one string (its text output). */
static const char *
list_as(h_cluster *c, const char *tokfile)
{
	char *out;

	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file %s list", tokfile), 0);
	return out;
}

/* Roles and isolation of executions: submit, read, worker and admin
 * tokens; revoked and expired tokens; token list; the audit line. */
static void
test_roles_and_isolation(void **state)
{
	h_cluster    *c = h_start(&(h_opts){.workers = 1, .tcp = true});
	tok           as, ar, bs, wk, ad, sh;
	const char   *id;
	char         *out, *err, *log;
	int           rv, n;
	json_object **objs;

	/* Projects: create, list (text and JSON), refuse a duplicate. */
	assert_int_equal(h_run(c, &out, NULL, "troupe project create a"), 0);
	h_assert_contains(out, "project a created");
	assert_int_equal(h_run(c, NULL, NULL, "troupe project create b"), 0);
	rv = h_run(c, NULL, &err, "troupe project create a");
	refused(c, rv, err, "already exists");
	assert_int_equal(h_run(c, &out, NULL, "troupe project list"), 0);
	h_assert_contains(out, "NAME");
	assert_int_equal(h_run(c, &out, NULL, "troupe project list --json"), 0);
	n = h_json_lines(c, out, &objs);
	{
		int seen = 0;

		for (int i = 0; i < n; i++)
			if (strcmp(h_jstr(objs[i], "name"), "a") == 0 ||
			    strcmp(h_jstr(objs[i], "name"), "b") == 0)
				seen++;
		assert_int_equal(seen, 2);
	}

	/* Tokens, each written to a 0600 file as a user would. */
	as = mk_token(c, "a-submit", "--project a --role submit");
	ar = mk_token(c, "a-read", "--project a --role read");
	bs = mk_token(c, "b-submit", "--role submit --project b");
	wk = mk_token(c, "worker-tok", "--role worker");
	ad = mk_token(c, "admin2", "--role admin");
	/* --json: one line holding the token's info and its secret. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe token create --role read --project b "
	                       "--json"),
	                 0);
	assert_int_equal(h_lines(out), 1);
	{
		json_object *o = h_json(c, out), *t;

		assert_true(json_object_object_get_ex(o, "token", &t));
		assert_string_equal(h_jstr(t, "role"), "READ");
		assert_string_equal(h_jstr(t, "project"), "b");
		assert_non_null(h_jstr(o, "secret"));
		assert_int_equal(strncmp(h_jstr(o, "secret"), "trp_", 4), 0);
	}

	/* a's submit token runs a map and sees it. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 3 | troupe --token-file a-submit map "
	                       "--cmd 'echo a-{}'"),
	                 0);
	assert_string_equal(out, "a-1\na-2\na-3\n");
	id = h_map_detach(c, "x\ny\n", "--token-file a-submit --cmd 'echo {}'");
	assert_int_equal(
	    h_run(c, NULL, NULL, "troupe --token-file a-submit watch %s", id),
	    0);
	h_assert_contains(list_as(c, "a-submit"), id);
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file a-submit outputs %s", id),
	    0);
	assert_string_equal(out, "x\ny\n");

	/* b's submit token sees none of it: not in its list, and every call
	 * naming the execution says it does not exist. */
	assert_null(strstr(list_as(c, "b-submit"), id));
	rv = h_run(c, NULL, &err, "troupe --token-file b-submit status %s", id);
	refused(c, rv, err, "no execution");
	rv =
	    h_run(c, NULL, &err, "troupe --token-file b-submit outputs %s", id);
	refused(c, rv, err, "no execution");
	rv = h_run(c, NULL, &err, "troupe --token-file b-submit watch %s", id);
	refused(c, rv, err, "no execution");
	rv = h_run(c, NULL, &err, "troupe --token-file b-submit abort %s", id);
	refused(c, rv, err, "no execution");
	/* Nor by naming a's project in the envelope. */
	rv = h_run(c, NULL, &err,
	           "troupe --token-file b-submit --project a list");
	refused(c, rv, err, "permission denied");
	rv = h_run(c, NULL, &err,
	           "TROUPE_PROJECT=a troupe --token-file b-submit status %s",
	           id);
	refused(c, rv, err, "permission denied");

	/* a's read token reads, but cannot submit. */
	h_assert_contains(list_as(c, "a-read"), id);
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file a-read status %s", id),
	    0);
	h_assert_contains(out, "SUCCEEDED");
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file a-read outputs %s", id),
	    0);
	assert_string_equal(out, "x\ny\n");
	rv = h_run(c, &out, &err,
	           "seq 2 | troupe --token-file a-read map --cmd 'echo {}'");
	refused(c, rv, err, "permission denied");
	h_assert_icontains(err, "read");
	assert_string_equal(out, "");
	rv = h_run(c, NULL, &err, "troupe --token-file a-read abort %s", id);
	refused(c, rv, err, "permission denied");
	rv = h_run(c, NULL, &err,
	           "troupe --token-file a-read task register t --cmd "
	           "'echo {}'");
	refused(c, rv, err, "permission denied");

	/* Neither a submit nor a read token administers. */
	rv = h_run(c, NULL, &err,
	           "troupe --token-file a-submit token create --role admin");
	refused(c, rv, err, "permission denied");
	rv = h_run(c, NULL, &err,
	           "troupe --token-file a-submit project create c");
	refused(c, rv, err, "permission denied");
	rv = h_run(c, NULL, &err, "troupe --token-file a-read token list");
	refused(c, rv, err, "permission denied");

	/* A worker token cannot call the API at all. */
	rv = h_run(c, NULL, &err, "troupe --token-file worker-tok list");
	refused(c, rv, err, "permission denied");
	rv = h_run(c, NULL, &err,
	           "seq 1 | troupe --token-file worker-tok map --cmd 'echo "
	           "{}'");
	refused(c, rv, err, "permission denied");

	/* An admin without --project lists every project's executions. */
	assert_int_equal(h_run(c, &out, NULL, "troupe list"), 0);
	h_assert_contains(out, id);

	/* The second admin token acts in any project it names. */
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file admin2 --project a list"),
	    0);
	h_assert_contains(out, id);
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file admin2 list --project b"),
	    0);
	assert_null(strstr(out, id));
	assert_int_equal(
	    h_run(c, NULL, NULL, "troupe --token-file admin2 project list"), 0);

	/* token list: every token, roles and projects, never a secret. */
	assert_int_equal(h_run(c, &out, NULL, "troupe token list"), 0);
	{
		const tok all[] = {as, ar, bs, wk, ad};

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			h_assert_contains(out, all[i].id);
			if (strstr(out, all[i].secret) != NULL)
				h_fail(c, "token list shows the secret of %s",
				       all[i].id);
		}
	}
	h_assert_contains(out, "submit");
	h_assert_contains(out, "worker");
	assert_int_equal(h_run(c, &out, NULL, "troupe token list --json"), 0);
	n = h_json_lines(c, out, &objs);
	assert_true(n >= 5);
	for (int i = 0; i < n; i++) {
		json_object *v;

		assert_false(json_object_object_get_ex(objs[i], "secret", &v));
		assert_non_null(h_jstr(objs[i], "id"));
	}
	assert_null(strstr(out, as.secret));
	assert_null(strstr(out, wk.secret));

	/* Revoked: the token stops working at once, and list says so. */
	assert_int_equal(h_run(c, &out, NULL, "troupe token revoke %s", ar.id),
	                 0);
	h_assert_contains(out, "revoked");
	rv = h_run(c, NULL, &err, "troupe --token-file a-read list");
	refused(c, rv, err, "unauthenticated");
	assert_int_equal(h_run(c, &out, NULL, "troupe token list --json"), 0);
	n = h_json_lines(c, out, &objs);
	{
		int found = 0;

		for (int i = 0; i < n; i++)
			if (strcmp(h_jstr(objs[i], "id"), ar.id) == 0) {
				found = 1;
				assert_string_equal(h_jstr(objs[i], "revoked"),
				                    "true");
			} else if (strcmp(h_jstr(objs[i], "id"), as.id) == 0) {
				assert_string_equal(h_jstr(objs[i], "revoked"),
				                    "false");
			}
		assert_true(found);
	}
	rv = h_run(c, NULL, &err, "troupe token revoke no-such-token");
	refused(c, rv, err, "no token");

	/* Expired: a 1 s token fails 2 s later. */
	sh = mk_token(c, "a-short", "--project a --role read --expires 1s");
	h_run(c, NULL, NULL, "sleep 2");
	rv = h_run(c, NULL, &err, "troupe --token-file a-short list");
	refused(c, rv, err, "unauthenticated");

	/* The audit: a's CreateExecution, with who did it. */
	{
		const char *const want[] = {"audit:", "CreateExecution",
		                            as.id,    "project a",
		                            "submit", NULL};
		int64_t           deadline = h_now_ms() + 10000;

		while (!log_has_line(c, want) && h_now_ms() < deadline)
			h_run(c, NULL, NULL, "sleep 0.2");
		if (!log_has_line(c, want))
			h_fail(c,
			       "no audit line for a's CreateExecution by "
			       "token %s",
			       as.id);
	}
	/* ... a refused call is audited too: the read token's map. */
	{
		const char *const want[] = {"audit:", "CreateExecution", ar.id,
		                            "read", NULL};

		if (!log_has_line(c, want))
			h_fail(c,
			       "no audit line for the refused "
			       "CreateExecution of token %s",
			       ar.id);
	}
	/* No secret, bootstrap token included, ever reaches the log. */
	log = h_slurp(c, h_path(c, "h-scheduler.log"));
	assert_non_null(log);
	{
		const tok all[] = {as, ar, bs, wk, ad, sh};

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			if (strstr(log, all[i].secret) != NULL ||
			    strstr(log, all[i].secret + 5 +
			                    strlen(all[i].id)) != NULL)
				h_fail(c, "the log holds the secret of %s",
				       all[i].id);
	}
	assert_null(strstr(log, h_token(c)));
	h_done(c);
}

/* Whether `troupe workers --json` shows a READY worker called name. */
static bool
worker_ready(h_cluster *c, const char *name)
{
	json_object **objs;
	char         *out;
	int           n;

	if (h_run(c, &out, NULL, "troupe workers --json") != 0)
		return false;
	n = h_json_lines(c, out, &objs);
	for (int i = 0; i < n; i++)
		if (strcmp(h_jstr(objs[i], "name"), name) == 0 &&
		    strcmp(h_jstr(objs[i], "state"), "READY") == 0)
			return true;
	return false;
}

/* Workers: a submit token cannot join; a worker token can, and runs
 * maps. */
static void
test_worker_tokens(void **state)
{
	h_cluster *c = h_start(&(h_opts){.tcp = true});
	char      *out, *err, *rc = NULL;
	int        rv;
	int64_t    deadline;

	assert_int_equal(h_run(c, NULL, NULL, "troupe project create a"), 0);
	mk_token(c, "a-submit", "--project a --role submit");
	mk_token(c, "worker-tok", "--role worker");
	assert_int_equal(h_run(c, NULL, NULL, "mkdir -m 700 wgood wbad"), 0);

	/* The worker token's worker joins: started in a session of its own
	 * so that h_run, which kills its command's process group, leaves it
	 * running (the loop waits for setsid to have happened); `timeout`
	 * bounds it should the test fail before stopping it. */
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "setsid sh -c 'timeout -s TERM 120 troupe-worker "
	          "--allow-root --home "
	          "wgood --scheduler %s --token-file worker-tok --name good "
	          "--slots 2 & echo $! > wgood.pid.tmp; mv wgood.pid.tmp "
	          "wgood.pid; wait $!; echo $? > wgood.rc' > wgood.log 2>&1 "
	          "< /dev/null & "
	          "for i in $(seq 200); do [ -s wgood.pid ] && break; sleep "
	          "0.05; done; [ -s wgood.pid ]",
	          h_worker_addr(c)),
	    0);
	deadline = h_now_ms() + 60000;
	while (!worker_ready(c, "good") && h_now_ms() < deadline)
		h_run(c, NULL, NULL, "sleep 0.2");
	if (!worker_ready(c, "good"))
		h_fail(c, "the worker-token worker is not READY after 60 s: %s",
		       h_slurp(c, h_path(c, "wgood.log")));
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 4 | troupe --token-file a-submit map "
	                       "--cmd 'echo w-{}'"),
	                 0);
	assert_string_equal(out, "w-1\nw-2\nw-3\nw-4\n");

	/* A submit token's worker is refused: it exits on its own, non-zero,
	 * saying why, and never shows in `troupe workers`. */
	h_set_timeout(c, 60000);
	rv = h_run(c, NULL, &err,
	           "timeout -s KILL 40 troupe-worker --allow-root --home wbad "
	           "--scheduler "
	           "%s --token-file a-submit --name intruder",
	           h_worker_addr(c));
	if (rv == 0 || rv == 137)
		h_fail(c, "a worker with a submit token %s",
		       rv == 0 ? "exited 0"
		               : "did not exit (killed after 40 s)");
	/* Why, in words: PERMISSION_DENIED's name or the scheduler's
	 * message ("a SUBMIT token cannot call RegisterWorker"). */
	if (!icontains(err, "permission denied") &&
	    !icontains(err, "token cannot call RegisterWorker"))
		h_fail(c, "the refused worker does not say why: %s", err);
	assert_int_equal(h_run(c, &out, NULL, "troupe workers"), 0);
	assert_null(strstr(out, "intruder"));
	assert_int_equal(h_run(c, &out, NULL, "troupe workers --json"), 0);
	assert_null(strstr(out, "intruder"));

	/* Stop the good worker: SIGTERM, and it exits 0. */
	assert_int_equal(h_run(c, NULL, NULL, "kill -TERM $(cat wgood.pid)"),
	                 0);
	deadline = h_now_ms() + 30000;
	while ((rc = h_slurp(c, h_path(c, "wgood.rc"))) == NULL &&
	       h_now_ms() < deadline)
		h_run(c, NULL, NULL, "sleep 0.2");
	if (rc == NULL)
		h_fail(c, "the worker-token worker did not exit on SIGTERM");
	if (strcmp(h_chomp(rc), "0") != 0)
		h_fail(c, "the worker-token worker exited %s on SIGTERM: %s",
		       rc, h_slurp(c, h_path(c, "wgood.log")));
	h_done(c);
}

/* Tasks and actor environments belong to a project: invisible to
 * another, whose names are its own. */
static void
test_registry_isolation(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .tcp = true});
	char      *out, *err;
	int        rv;

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe project create a && troupe project "
	                       "create b"),
	                 0);
	mk_token(c, "a-submit", "--project a --role submit");
	mk_token(c, "b-submit", "--project b --role submit");

	/* A task of a. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe --token-file a-submit task register "
	                       "t1 --cmd 'echo a-{}'"),
	                 0);
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file a-submit task list"), 0);
	h_assert_contains(out, "t1");
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file b-submit task list"), 0);
	assert_null(strstr(out, "t1"));
	rv = h_run(c, NULL, &err, "troupe --token-file b-submit task get t1");
	refused(c, rv, err, "no task");
	rv = h_run(c, NULL, &err,
	           "seq 1 | troupe --token-file b-submit map --task t1");
	refused(c, rv, err, "no task");
	rv =
	    h_run(c, NULL, &err, "troupe --token-file b-submit task delete t1");
	refused(c, rv, err, "no task");
	/* b's own t1: no clash, and each project runs its own. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe --token-file b-submit task register "
	                       "t1 --cmd 'echo b-{}'"),
	                 0);
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 2 | troupe --token-file b-submit map "
	                       "--task t1"),
	                 0);
	assert_string_equal(out, "b-1\nb-2\n");
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 2 | troupe --token-file a-submit map "
	                       "--task t1"),
	                 0);
	assert_string_equal(out, "a-1\na-2\n");
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file a-submit task get t1"),
	    0);
	h_assert_contains(out, "echo a-{}");

	/* An actor environment of a. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe --token-file a-submit actor create "
	                       "env1 --cmd cat --replicas 1"),
	                 0);
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file b-submit actors"), 0);
	assert_null(strstr(out, "env1"));
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file b-submit actor list"), 0);
	assert_null(strstr(out, "env1"));
	rv =
	    h_run(c, NULL, &err, "troupe --token-file b-submit actor get env1");
	refused(c, rv, err, "no actor");
	rv = h_run(c, NULL, &err,
	           "seq 1 | troupe --token-file b-submit map --actor env1 "
	           "--cmd 'echo {}'");
	assert_int_not_equal(rv, 0);
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe --token-file b-submit actor create "
	                       "env1 --cmd cat --replicas 1"),
	                 0);
	assert_int_equal(
	    h_run(c, &out, NULL, "troupe --token-file a-submit actor get env1"),
	    0);
	h_assert_contains(out, "env1");

	/* Deleting b's leaves a's. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe --token-file b-submit task delete t1 "
	                       "&& troupe --token-file b-submit actor delete "
	                       "env1"),
	                 0);
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe --token-file a-submit task get t1 && "
	                       "troupe --token-file a-submit actor get env1"),
	                 0);
	h_assert_contains(out, "echo a-{}");
	h_done(c);
}

/* The stamping item command, shell-quoted for --cmd. */
static const char *
stamp_cmd(h_cluster *c, const char *secs, const char *file)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), H_STAMP_CMD, secs, file);
	return h_quote(c, cmd);
}

/* --max-running 1 holds across two executions of the project at once,
 * on a worker that could run 4; a project without a quota does run more
 * than 1 at once there. */
static void
test_quota_max_running(void **state)
{
	h_cluster *c =
	    h_start(&(h_opts){.workers = 1, .slots = 4, .tcp = true});
	const char   *qst = h_path(c, "q-stamps");
	const char   *fst = h_path(c, "f-stamps");
	const char   *id1, *id2;
	int64_t      *s, *e;
	json_object **objs;
	char         *out, *err;
	int           n, most, rv;

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe project create q --max-running 1 && "
	                       "troupe project create free"),
	                 0);
	assert_int_equal(h_run(c, &out, NULL, "troupe project list --json"), 0);
	n = h_json_lines(c, out, &objs);
	for (int i = 0; i < n; i++)
		if (strcmp(h_jstr(objs[i], "name"), "q") == 0)
			assert_int_equal(h_jint(objs[i], "max_running"), 1);
	/* Changing a quota takes --replace. */
	rv = h_run(c, NULL, &err, "troupe project create q --max-running 2");
	refused(c, rv, err, "already exists");
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe project create q --max-running 1 "
	                       "--replace"),
	                 0);

	assert_int_equal(h_run(c, NULL, NULL, "seq 5 > items"), 0);
	id1 = h_map_detach(c, NULL, "--project q --items items --cmd %s",
	                   stamp_cmd(c, "0.3", qst));
	id2 = h_map_detach(c, NULL, "--project q --items items --cmd %s",
	                   stamp_cmd(c, "0.3", qst));
	assert_int_equal(troupe_client_set_project(h_client(c), "q"), 0);
	assert_int_equal(h_wait_done(c, id1, 90000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_wait_done(c, id2, 90000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	n = h_read_stamps(c, qst, &s, &e);
	assert_int_equal(n, 10);
	most = h_max_overlap(s, e, n);
	fprintf(stderr, "project q (--max-running 1): at most %d at once\n",
	        most);
	assert_int_equal(most, 1);

	/* The same worker runs more at once for a project without quota. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 8 | troupe --project free map --cmd %s",
	                       stamp_cmd(c, "0.5", fst)),
	                 0);
	assert_int_equal(h_lines(out), 8);
	n = h_read_stamps(c, fst, &s, &e);
	assert_int_equal(n, 8);
	most = h_max_overlap(s, e, n);
	fprintf(stderr, "project free: at most %d at once\n", most);
	assert_in_range(most, 2, 4);
	h_done(c);
}

/* Runs a 16-item map in project asking for 4 replicas, each answering
 * with its own pid, and returns how many distinct replicas served it
 * (after checking that every item came back).  The pause is long enough
 * that one replica cannot take every item before others start. */
static int
replicas_serving(h_cluster *c, const char *project)
{
	char *out, *err;
	int   lines = 0, distinct = 0;
	int   rv = h_run(c, &out, &err,
	                 "seq 16 | troupe --project %s map --replicas 4 --ttl 60 "
	                   "--cmd 'while read x; do sleep 0.2; echo $$; done' > "
	                   "%s.pids && wc -l < %s.pids && sort -u %s.pids | wc -l",
	                 project, project, project, project);

	if (rv != 0 || sscanf(out, "%d %d", &lines, &distinct) != 2)
		h_fail(c, "map in project %s: exit %d: %s", project, rv, err);
	assert_int_equal(lines, 16);
	fprintf(stderr, "project %s: %d replicas served\n", project, distinct);
	return distinct;
}

/* --max-replicas 2 holds for an environment that asks for 4 replicas,
 * on a worker with room for 4: the map runs on 2 replicas (2 distinct
 * pids) and `troupe actors` never shows more than 2; the same map in a
 * project without quota gets more than 2. */
static void
test_quota_max_replicas(void **state)
{
	h_cluster *c =
	    h_start(&(h_opts){.workers = 1, .slots = 4, .tcp = true});
	char *out;

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe project create r --max-replicas 2 && "
	                       "troupe project create free"),
	                 0);
	assert_in_range(replicas_serving(c, "r"), 1, 2);
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe --project r actors --json | grep -o "
	                       "'\"pid\"' | wc -l"),
	                 0);
	assert_in_range(atoi(out), 1, 2);
	assert_in_range(replicas_serving(c, "free"), 3, 4);
	h_done(c);
}

/* Fairness between projects: while a floods the cluster with two long
 * maps of 200 slow items, b's 5-item map still runs to the end. */
static void
test_project_fairness(void **state)
{
	h_cluster *c =
	    h_start(&(h_opts){.workers = 1, .slots = 4, .tcp = true});
	const char        *a1, *a2;
	Troupe__Execution *e1, *e2;
	char              *out;
	int64_t            t0;

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe project create a && troupe project "
	                       "create b && seq 200 > many"),
	                 0);
	a1 = h_map_detach(c, NULL,
	                  "--project a --items many --cmd 'sleep 1; echo {}'");
	a2 = h_map_detach(c, NULL,
	                  "--project a --items many --cmd 'sleep 1; echo {}'");
	/* a holds every slot before b asks. */
	h_run(c, NULL, NULL, "sleep 1.5");
	t0 = h_now_ms();
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 5 | troupe --project b map --cmd 'echo "
	                       "b-{}'"),
	                 0);
	assert_string_equal(out, "b-1\nb-2\nb-3\nb-4\nb-5\n");
	fprintf(stderr, "b's map took %lld ms while a flooded\n",
	        (long long)(h_now_ms() - t0));
	assert_int_equal(troupe_client_set_project(h_client(c), "a"), 0);
	e1 = h_execution(c, a1);
	e2 = h_execution(c, a2);
	fprintf(stderr, "a's maps when b's ended: %llu and %llu of 200 done\n",
	        (unsigned long long)e1->counts->succeeded,
	        (unsigned long long)e2->counts->succeeded);
	assert_int_equal(e1->phase, TROUPE__PHASE__PHASE_RUNNING);
	assert_true(e1->counts->succeeded + e2->counts->succeeded < 400);
	assert_false(h_phase_done(e2->phase));
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe --project a abort %s && troupe "
	                       "--project a abort %s",
	                       a1, a2),
	                 0);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_roles_and_isolation), H_TEST(test_worker_tokens),
	    H_TEST(test_registry_isolation),  H_TEST(test_quota_max_running),
	    H_TEST(test_quota_max_replicas),  H_TEST(test_project_fairness),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
