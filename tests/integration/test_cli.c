/*
 * The CLI commands around a map, checked the way a user reads them:
 * status (every line of its text, and its --json fields), outputs (the
 * full text and every --json field), watch (what it prints and its exit
 * code), list (the row of each execution, and --json), abort (what it
 * prints, and a second abort's exit code and message), workers, health
 * and version; and the error convention: one line on stderr and a
 * non-zero exit, an unreachable scheduler named by its address.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"
#include "skip.h"

/* The line of text that starts with prefix (NULL when none), kept by c. */
static const char *
line_with(h_cluster *c, const char *text, const char *prefix)
{
	char **lines;
	int    n = h_split(c, text, &lines);

	for (int i = 0; i < n; i++)
		if (strncmp(lines[i], prefix, strlen(prefix)) == 0)
			return lines[i];
	return NULL;
}

/* Asserts that text holds the line want, exactly. */
static void
assert_line(h_cluster *c, const char *text, const char *want)
{
	char **lines;
	int    n = h_split(c, text, &lines);

	for (int i = 0; i < n; i++)
		if (strcmp(lines[i], want) == 0)
			return;
	h_fail(c, "no line \"%s\" in:\n%s", want, text);
}

/* Asserts that err is exactly one line, "troupe: " and a message. */
static void
assert_one_error_line(h_cluster *c, const char *err)
{
	if (h_lines(err) != 1 || strncmp(err, "troupe: ", 8) != 0 ||
	    err[strlen(err) - 1] != '\n')
		h_fail(c, "want one line \"troupe: ...\" on stderr, got:\n%s",
		       err);
}

static void
test_status_outputs_list(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	const char  *id, *id2, *l;
	char        *out, *err, **lines, want[256];
	json_object *j, *k, **objs;
	int          n;

	/* --detach prints the id alone, on one line. */
	id = h_map_detach(c, "5\n6\n7\n", "--cmd 'expr {} \\* 10'");
	assert_true(strncmp(id, "ex-", 3) == 0);
	assert_null(strpbrk(id, " \t\n"));

	/* watch follows it to the end, printing a line per change, the last
	 * one the final counts, and exits 0 as it SUCCEEDED. */
	assert_int_equal(h_run(c, &out, &err, "troupe watch %s", id), 0);
	assert_int_equal(h_execution(c, id)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	n = h_split(c, out, &lines);
	assert_true(n >= 1);
	snprintf(want, sizeof(want),
	         "%s SUCCEEDED 3/3 done: 3 succeeded, 0 failed, 0 aborted, "
	         "0 running, 0 pending",
	         id);
	/* Each line is "HH:MM:SS " and the state. */
	for (int i = 0; i < n; i++) {
		assert_true(strlen(lines[i]) > 9 && lines[i][2] == ':' &&
		            lines[i][5] == ':' && lines[i][8] == ' ');
		assert_true(strncmp(lines[i] + 9, id, strlen(id)) == 0);
	}
	assert_string_equal(lines[n - 1] + 9, want);
	assert_string_equal(err, "");

	/* status: every field a person reads. */
	assert_int_equal(h_run(c, &out, NULL, "troupe status %s", id), 0);
	snprintf(want, sizeof(want), "id:        %s", id);
	assert_line(c, out, want);
	assert_line(c, out, "phase:     SUCCEEDED");
	assert_line(c, out, "runs:      expr {} \\* 10");
	assert_line(c, out, "items:     3");
	assert_line(c, out,
	            "states:    0 pending, 0 running, 3 succeeded, 0 failed, "
	            "0 aborted");
	/* Timings: dates, not "-", once it ran. */
	for (int i = 0; i < 3; i++) {
		const char *f[] = {"created:   ", "started:   ", "finished:  "};
		l = line_with(c, out, f[i]);
		assert_non_null(l);
		assert_int_equal(strlen(l), 11 + 19); /* YYYY-MM-DD HH:MM:SS */
		assert_true(l[11] == '2' && l[15] == '-');
	}
	assert_non_null(line_with(c, out, "duration:  "));
	assert_null(line_with(c, out, "error:"));

	/* status --json: the Execution, for scripts. */
	assert_int_equal(h_run(c, &out, NULL, "troupe status %s --json", id),
	                 0);
	j = h_json(c, out);
	assert_string_equal(h_jstr(j, "id"), id);
	assert_string_equal(h_jstr(j, "phase"), "SUCCEEDED");
	assert_int_equal(h_jint(j, "total"), 3);
	assert_true(json_object_object_get_ex(j, "counts", &k));
	assert_int_equal(h_jint(k, "succeeded"), 3);
	assert_int_equal(h_jint(k, "failed"), 0);
	assert_int_equal(h_jint(k, "pending"), 0);
	assert_int_equal(h_jint(k, "running"), 0);
	assert_int_equal(h_jint(k, "aborted"), 0);
	assert_true(json_object_object_get_ex(j, "spec", &k));
	assert_string_equal(h_jstr(k, "command"), "expr {} \\* 10");
	assert_true(h_jint(j, "finished_ms") >= h_jint(j, "started_ms"));
	assert_true(h_jint(j, "started_ms") > 0);

	/* outputs: the whole text, in input order, exit 0; --json one
	 * object per item with every field the README names. */
	assert_int_equal(h_run(c, &out, &err, "troupe outputs %s", id), 0);
	assert_string_equal(out, "50\n60\n70\n");
	assert_string_equal(err, "");
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s --json", id),
	                 0);
	assert_int_equal(h_json_lines(c, out, &objs), 3);
	for (int i = 0; i < 3; i++) {
		json_object *v;

		snprintf(want, sizeof(want), "%d0\n", i + 5);
		assert_int_equal(h_jint(objs[i], "index"), i);
		assert_string_equal(h_jstr(objs[i], "state"), "SUCCEEDED");
		assert_string_equal(h_jstr(objs[i], "output"), want);
		assert_true(json_object_object_get_ex(objs[i], "error", &v));
		assert_null(v);
		assert_int_equal(h_jint(objs[i], "attempts"), 1);
		assert_int_equal(h_jint(objs[i], "exit_code"), 0);
		l = h_jstr(objs[i], "worker");
		assert_true(l != NULL &&
		            (strcmp(l, "w1") == 0 || strcmp(l, "w2") == 0));
	}

	/* The blocking map: the same outputs, whole, and exit 0. */
	assert_int_equal(h_run_in(c, "5\n6\n7\n", &out, &err,
	                          "troupe map --cmd 'expr {} \\* 10'"),
	                 0);
	assert_string_equal(out, "50\n60\n70\n");
	assert_string_equal(err, "");

	/* list: a row per execution, newest first, as text and as JSON. */
	id2 = h_map_detach(c, "1\n", "--name second-one --cmd 'echo {}'");
	(void)h_wait_done(c, id2, 30000);
	assert_int_equal(h_run(c, &out, NULL, "troupe list"), 0);
	n = h_split(c, out, &lines);
	assert_true(n >= 4);
	assert_true(strncmp(lines[0], "ID ", 3) == 0);
	h_assert_contains(lines[0], "PHASE");
	l = line_with(c, out, id);
	assert_non_null(l);
	h_assert_contains(l, " SUCCEEDED ");
	h_assert_contains(l, " 3/3 ");
	assert_true(strcmp(l + strlen(l) - strlen("expr {} \\* 10"),
	                   "expr {} \\* 10") == 0);
	l = line_with(c, out, id2);
	assert_non_null(l);
	h_assert_contains(l, " 1/1 ");
	assert_true(strcmp(l + strlen(l) - 10, "second-one") == 0);
	assert_true(strncmp(lines[1], id2, strlen(id2)) == 0);
	assert_int_equal(h_run(c, &out, NULL, "troupe list --json"), 0);
	assert_int_equal(h_json_lines(c, out, &objs), 3);
	assert_string_equal(h_jstr(objs[0], "id"), id2);
	assert_string_equal(h_jstr(objs[0], "phase"), "SUCCEEDED");
	assert_int_equal(h_jint(objs[0], "total"), 1);
	assert_true(strcmp(h_jstr(objs[1], "id"), id) == 0 ||
	            strcmp(h_jstr(objs[2], "id"), id) == 0);
	h_done(c);
}

/* A failing execution: watch prints its error and exits non-zero;
 * status shows the failed count and the error. */
static void
test_watch_and_status_of_failure(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	const char *id, *l;
	char       *out, *err, **lines, want[256];
	int         n;

	id = h_map_detach(c, "1\n2\n",
	                  "--min-success-ratio 0.5 --cmd 'test {} = 1 || "
	                  "{ echo bad >&2; exit 3; }; echo ok'");
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_run(c, &out, NULL, "troupe watch %s", id), 0);
	n = h_split(c, out, &lines);
	snprintf(want, sizeof(want),
	         "%s SUCCEEDED 2/2 done: 1 succeeded, 1 failed, 0 aborted, "
	         "0 running, 0 pending",
	         id);
	assert_string_equal(lines[n - 1] + 9, want);
	/* outputs: an empty line for the failed item, exit 0. */
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id), 0);
	assert_string_equal(out, "ok\n\n");

	id = h_map_detach(c, "1\n", "--cmd 'echo bad >&2; exit 3'");
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_FAILED);
	assert_int_not_equal(h_run(c, &out, &err, "troupe watch %s", id), 0);
	n = h_split(c, out, &lines);
	assert_true(n >= 2);
	snprintf(want, sizeof(want),
	         "%s FAILED 1/1 done: 0 succeeded, 1 failed, 0 aborted, "
	         "0 running, 0 pending",
	         id);
	assert_string_equal(lines[n - 2] + 9, want);
	assert_string_equal(lines[n - 1], "error: 1 of 1 items failed; min "
	                                  "success ratio 1 needs 1");
	assert_one_error_line(c, err);
	snprintf(want, sizeof(want),
	         "troupe: execution %s FAILED: 1 of 1 items failed; min "
	         "success ratio 1 needs 1\n",
	         id);
	assert_string_equal(err, want);
	assert_int_equal(h_run(c, &out, NULL, "troupe status %s", id), 0);
	assert_line(c, out, "phase:     FAILED");
	assert_line(c, out,
	            "states:    0 pending, 0 running, 0 succeeded, 1 failed, "
	            "0 aborted");
	assert_line(c, out,
	            "error:     1 of 1 items failed; min success ratio 1 "
	            "needs 1");
	/* outputs of a FAILED execution: printed, and exit non-zero. */
	assert_int_not_equal(
	    h_run(c, &out, &err, "troupe outputs %s --json", id), 0);
	l = h_jstr(h_json(c, out), "error");
	assert_non_null(l);
	h_assert_contains(l, "bad");
	assert_one_error_line(c, err);
	h_done(c);
}

/* workers: a row per worker (name, slots, state) and, with --json, one
 * object per worker. */
static void
test_workers(void **state)
{
	h_cluster    *c = h_start(&(h_opts){.workers = 2, .slots = 3});
	char         *out, **lines, **cells;
	json_object **objs;
	bool          seen[2] = {false, false};
	int           n;

	assert_int_equal(
	    h_run(c, &out, NULL, "seq 4 | troupe map --cmd 'echo {}'"), 0);
	assert_int_equal(h_run(c, &out, NULL, "troupe workers"), 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 3);
	assert_string_equal(h_keep(c, strndup(lines[0], 24)),
	                    "NAME  HOST  SLOTS  RUNNI");
	for (int i = 1; i < 3; i++) {
		/* NAME HOST SLOTS RUNNING STATE DONE LAST-SEEN(2 words) ID */
		char *save = NULL, *copy = h_keep(c, strdup(lines[i]));
		int   k = 0;

		cells = (char **)h_keep(c, calloc(16, sizeof(char *)));
		for (char *w = strtok_r(copy, " ", &save); w != NULL && k < 16;
		     w = strtok_r(NULL, " ", &save))
			cells[k++] = w;
		assert_int_equal(k, 9);
		assert_true(strcmp(cells[0], "w1") == 0 ||
		            strcmp(cells[0], "w2") == 0);
		assert_string_equal(cells[2], "3");
		assert_string_equal(cells[3], "0");
		assert_string_equal(cells[4], "READY");
		assert_string_equal(cells[7], "ago");
		assert_true(strncmp(cells[8], "w-", 2) == 0);
	}
	assert_int_equal(h_run(c, &out, NULL, "troupe workers --json"), 0);
	assert_int_equal(h_json_lines(c, out, &objs), 2);
	n = 0;
	for (int i = 0; i < 2; i++) {
		const char *name = h_jstr(objs[i], "name");

		assert_non_null(name);
		if (strcmp(name, "w1") == 0)
			seen[0] = true;
		if (strcmp(name, "w2") == 0)
			seen[1] = true;
		assert_int_equal(h_jint(objs[i], "slots"), 3);
		assert_int_equal(h_jint(objs[i], "running"), 0);
		assert_string_equal(h_jstr(objs[i], "state"), "READY");
		assert_true(strncmp(h_jstr(objs[i], "id"), "w-", 2) == 0);
		assert_true(h_jint(objs[i], "pid") == h_worker_pid(c, 0) ||
		            h_jint(objs[i], "pid") == h_worker_pid(c, 1));
		n += (int)h_jint(objs[i], "items_done");
	}
	assert_true(seen[0] && seen[1]);
	assert_int_equal(n, 4);
	h_done(c);
}

static bool
two_running(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->running == 2 &&
	       e->counts->succeeded == 3;
}

/* abort: pending items never start, running ones are killed, finished
 * outputs are kept. */
static void
test_abort(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	const char          *pids = h_path(c, "pids");
	const char          *id;
	char                 cmd[512], *out, *err, **lines, want[256];
	Troupe__Execution   *e;
	Troupe__ItemResult **items;
	int                  n;
	int64_t              deadline;

	snprintf(cmd, sizeof(cmd),
	         "if [ {} -le 3 ]; then echo fast{}; else echo $$ >> %s; "
	         "exec sleep 60; fi",
	         pids);
	assert_int_equal(h_run(c, NULL, NULL, "seq 10 > items"), 0);
	id = h_map_detach(c, NULL, "--items items --concurrency 2 --cmd %s",
	                  h_quote(c, cmd));
	(void)h_wait_exec(c, id, two_running, NULL, 30000,
	                  "3 done and 2 running");
	/* Running counts from the assignment; the two write their pids once
	 * their shells start. */
	assert_int_equal(h_wait_lines(c, pids, 2, 10000), 2);

	assert_int_equal(h_run(c, &out, &err, "troupe abort %s", id), 0);
	snprintf(want, sizeof(want), "%s ABORTED\n", id);
	assert_string_equal(out, want);
	assert_string_equal(err, "");
	e = h_wait_done(c, id, 30000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_ABORTED);
	assert_int_equal(e->counts->succeeded, 3);
	assert_int_equal(e->counts->aborted, 7);
	assert_int_equal(h_outputs(c, id, &items), 10);
	assert_memory_equal(items[0]->output.data, "fast1\n", 6);
	assert_memory_equal(items[2]->output.data, "fast3\n", 6);
	for (int i = 3; i < 10; i++)
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_ABORTED);

	/* Only the two running items ever started, and both are killed. */
	n = h_split(c, h_slurp(c, pids), &lines);
	assert_int_equal(n, 2);
	deadline = h_now_ms() + 15000;
	for (int i = 0; i < n; i++) {
		pid_t pid = (pid_t)atoi(lines[i]);
		while (kill(pid, 0) == 0 && h_now_ms() < deadline)
			usleep(20000);
		if (kill(pid, 0) == 0)
			h_fail(c, "item process %d still alive after abort",
			       (int)pid);
	}

	/* Aborting again: exit 1 and one line saying it already ended;
	 * nothing changes.  An unknown id is named in the error. */
	assert_int_equal(h_run(c, &out, &err, "troupe abort %s", id), 1);
	assert_string_equal(out, "");
	snprintf(want, sizeof(want), "troupe: execution %s already finished\n",
	         id);
	assert_string_equal(err, want);
	e = h_execution(c, id);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_ABORTED);
	assert_int_equal(e->counts->succeeded, 3);
	assert_int_equal(e->counts->aborted, 7);
	assert_int_equal(h_run(c, &out, &err, "troupe abort ex-nosuchone"), 1);
	assert_string_equal(err, "troupe: no execution 'ex-nosuchone'\n");
	/* watch and outputs of the aborted execution: non-zero, saying so. */
	assert_int_equal(h_run(c, &out, &err, "troupe outputs %s", id), 1);
	assert_string_equal(out, "fast1\nfast2\nfast3\n\n\n\n\n\n\n\n");
	snprintf(want, sizeof(want),
	         "troupe: execution %s ABORTED: 3 of 10 items succeeded; "
	         "aborted with troupe abort\n",
	         id);
	assert_string_equal(err, want);
	h_done(c);
}

/* Health, for scripts and people: the scheduler's version, address,
 * workers, active executions and state directory. */
static void
test_health(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 1});
	char        *out, want[1024];
	const char  *up, *id;
	json_object *j;

	id = h_map_detach(c, "1\n", "--cmd 'sleep 30'");
	assert_int_equal(h_run(c, &out, NULL, "troupe health"), 0);
	snprintf(want, sizeof(want), "scheduler %s at %s: up ", TROUPE_VERSION,
	         h_api_addr(c));
	assert_true(strncmp(out, want, strlen(want)) == 0);
	up = out + strlen(want);
	snprintf(want, sizeof(want),
	         ", 1 worker, 1 active execution, state in %s\n", h_dir(c));
	h_assert_contains(up, want);
	assert_int_equal(h_lines(out), 1);
	assert_int_equal(h_run(c, &out, NULL, "troupe health --json"), 0);
	j = h_json(c, out);
	assert_string_equal(h_jstr(j, "version"), TROUPE_VERSION);
	assert_int_equal(h_jint(j, "workers"), 1);
	assert_int_equal(h_jint(j, "active_executions"), 1);
	assert_string_equal(h_jstr(j, "state_dir"), h_dir(c));
	assert_true(h_jint(j, "uptime_ms") > 0);
	assert_int_equal(h_run(c, NULL, NULL, "troupe abort %s", id), 0);
	h_done(c);
}

/* `troupe version` (and --version), and the error convention: one line
 * on stderr, a non-zero exit, an unreachable scheduler named by the
 * address that was tried. */
static void
test_version_and_errors(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1});
	const char *nowhere = h_path(c, "nowhere.sock");
	char       *out, *err, want[512];

	snprintf(want, sizeof(want), "troupe %s\n", TROUPE_VERSION);
	assert_int_equal(h_run(c, &out, &err, "troupe version"), 0);
	assert_string_equal(out, want);
	assert_string_equal(err, "");
	assert_int_equal(h_run(c, &out, NULL, "troupe --version"), 0);
	assert_string_equal(out, want);

	/* Unknown command and bad flags: usage errors, one line. */
	assert_int_equal(h_run(c, &out, &err, "troupe frobnicate"), 2);
	assert_one_error_line(c, err);
	h_assert_contains(err, "unknown command 'frobnicate'");
	assert_int_equal(h_run(c, &out, &err, "troupe map --cmd x --retries x"),
	                 2);
	assert_one_error_line(c, err);
	h_assert_contains(err, "--retries");
	assert_int_equal(h_run(c, &out, &err, "troupe status ex-nosuchone"), 1);
	assert_string_equal(err, "troupe: no execution 'ex-nosuchone'\n");
	assert_string_equal(out, "");

	/* An unreachable scheduler: the address tried, by flag or by
	 * TROUPE_ADDR, before or after the command word. */
	assert_int_equal(
	    h_run(c, &out, &err, "troupe --addr ipc://%s health", nowhere), 1);
	assert_one_error_line(c, err);
	snprintf(want, sizeof(want),
	         "troupe: cannot reach the scheduler at ipc://%s", nowhere);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	assert_int_equal(
	    h_run(c, &out, &err, "troupe workers --addr ipc://%s", nowhere), 1);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	assert_int_equal(h_run(c, &out, &err,
	                       "echo 1 | TROUPE_ADDR=ipc://%s troupe map "
	                       "--cmd 'echo {}'",
	                       nowhere),
	                 1);
	assert_one_error_line(c, err);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	assert_string_equal(out, "");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_status_outputs_list),
	    H_TEST(test_workers),
	    H_TEST(test_abort),
	    H_TEST(test_health),
	    H_TEST(test_version_and_errors),
	    H_TEST(test_watch_and_status_of_failure),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
