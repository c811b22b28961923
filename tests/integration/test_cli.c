/*
 * The CLI commands around a map: status, outputs (text and --json), list,
 * watch, abort and workers, each with --json where DESIGN.md says.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"
#include "skip.h"

static void
test_status_outputs_list(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	const char  *id;
	char        *out, *err, **lines;
	json_object *j, **objs;
	int          n;

	id = h_map_detach(c, "5\n6\n7\n", "--cmd 'expr {} \\* 10'");
	assert_true(strlen(id) > 0);
	assert_null(strchr(id, ' '));

	/* watch follows it to the end and exits 0 as it SUCCEEDED. */
	assert_int_equal(h_run(c, &out, &err, "troupe watch %s", id), 0);
	assert_int_equal(h_execution(c, id)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);

	/* status: phase and counts, for people and for scripts. */
	assert_int_equal(h_run(c, &out, NULL, "troupe status %s", id), 0);
	h_assert_icontains(out, "SUCCEEDED");
	h_assert_contains(out, "3");
	assert_int_equal(h_run(c, &out, NULL, "troupe status %s --json", id),
	                 0);
	j = h_json(c, out);
	h_assert_contains(h_jstr(j, "id"), id);
	h_assert_icontains(h_jstr(j, "phase"), "SUCCEEDED");

	/* outputs: in input order, as text and as one object per item. */
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id), 0);
	assert_string_equal(out, "50\n60\n70\n");
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s --json", id),
	                 0);
	assert_int_equal(h_json_lines(c, out, &objs), 3);
	for (int i = 0; i < 3; i++) {
		char want[8];
		snprintf(want, sizeof(want), "%d0", i + 5);
		assert_int_equal(h_jint(objs[i], "index"), i);
		h_assert_icontains(h_jstr(objs[i], "state"), "SUCCEEDED");
		h_assert_contains(h_jstr(objs[i], "output"), want);
		assert_int_equal(h_jint(objs[i], "attempts"), 1);
		assert_int_equal(h_jint(objs[i], "exit_code"), 0);
	}

	/* list: the execution is there, as text and as JSON. */
	(void)h_map_detach(c, "1\n", "--cmd 'echo {}'");
	assert_int_equal(h_run(c, &out, NULL, "troupe list"), 0);
	h_assert_contains(out, id);
	assert_int_equal(h_run(c, &out, NULL, "troupe list --json"), 0);
	h_assert_contains(out, id);
	/* Either one JSON array or one object per line. */
	n = h_split(c, out, &lines);
	if (n == 2)
		assert_int_equal(h_json_lines(c, out, &objs), 2);
	else
		assert_int_equal(json_object_array_length(h_json(c, out)), 2);
	h_done(c);
}

static void
test_workers(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 2, .slots = 3});
	char        *out;
	json_object *j, **objs;
	int          n;
	bool         seen[2] = {false, false};

	assert_int_equal(h_run(c, &out, NULL, "troupe workers"), 0);
	h_assert_contains(out, "w1");
	h_assert_contains(out, "w2");
	assert_int_equal(h_run(c, &out, NULL, "troupe workers --json"), 0);
	if (h_lines(out) == 2 && out[0] == '{') {
		assert_int_equal(h_json_lines(c, out, &objs), 2);
	} else {
		j = h_json(c, out);
		if (json_object_is_type(j, json_type_object))
			json_object_object_get_ex(j, "workers", &j);
		assert_int_equal(json_object_array_length(j), 2);
		objs = calloc(2, sizeof(*objs));
		h_keep(c, (char *)objs);
		objs[0] = json_object_array_get_idx(j, 0);
		objs[1] = json_object_array_get_idx(j, 1);
	}
	n = 2;
	for (int i = 0; i < n; i++) {
		const char *name = h_jstr(objs[i], "name");
		assert_non_null(name);
		if (strcmp(name, "w1") == 0)
			seen[0] = true;
		if (strcmp(name, "w2") == 0)
			seen[1] = true;
		assert_int_equal(h_jint(objs[i], "slots"), 3);
		h_assert_icontains(h_jstr(objs[i], "state"), "READY");
	}
	assert_true(seen[0] && seen[1]);
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
	char                 cmd[512], *out, **lines;
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

	assert_int_equal(h_run(c, &out, NULL, "troupe abort %s", id), 0);
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

	/* Aborting again or a finished execution is no crash. */
	h_run(c, NULL, NULL, "troupe abort %s", id);
	assert_int_equal(h_execution(c, id)->phase,
	                 TROUPE__PHASE__PHASE_ABORTED);
	h_done(c);
}

/* Health, for scripts and people. */
static void
test_health(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1});
	char      *out;

	assert_int_equal(h_run(c, &out, NULL, "troupe health"), 0);
	assert_true(strlen(out) > 0);
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
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
