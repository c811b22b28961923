/*
 * The registry commands, as a user runs them: `troupe actor
 * create|list|get|delete` and `troupe task register|list|get|delete`,
 * what each prints, that a second create of the same name is refused
 * (one line, non-zero) unless --replace, and that --replace changes what
 * later maps run: a replaced actor environment's next map runs the new
 * command (its old replicas are not reused), a replaced task the new
 * command.  And `troupe actors`' replica fields: state, items served and
 * idle time left, while busy and once idle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The words of line (split on blanks) into words (at most max); returns
 * how many.  Kept by c. */
static int
words(h_cluster *c, const char *line, char **words, int max)
{
	char *save = NULL, *copy = h_keep(c, strdup(line));
	int   k = 0;

	for (char *w = strtok_r(copy, " ", &save); w != NULL && k < max;
	     w = strtok_r(NULL, " ", &save))
		words[k++] = w;
	return k;
}

static void
test_actor_registry(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char        *out, *err, **lines, *w[16];
	json_object *j, *env, **objs;
	const char  *l;
	int          n;

	assert_int_equal(
	    h_run(c, &out, &err,
	          "troupe actor create det --cmd 'while read x; "
	          "do echo \"old $x\"; done' --replicas 2 --ttl 60 "
	          "--max-items 50 --env A=1"),
	    0);
	assert_string_equal(out, "actor det created\n");
	/* The same name again: refused, one line, and nothing changes. */
	assert_int_equal(
	    h_run(c, &out, &err,
	          "troupe actor create det --cmd cat --replicas 1"),
	    1);
	assert_string_equal(
	    err, "troupe: actor 'det' already exists (replace it with "
	         "--replace)\n");

	/* list: the environment's row; --json its definition. */
	assert_int_equal(h_run(c, &out, NULL, "troupe actor list"), 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 2);
	assert_int_equal(words(c, lines[1], w, 16), 14);
	assert_string_equal(w[0], "det");
	assert_string_equal(w[1], "0/2");
	assert_string_equal(w[4], "60s");
	assert_string_equal(w[5], "LINES");
	assert_string_equal(w[6], "while");
	assert_int_equal(h_run(c, &out, NULL, "troupe actor list --json"), 0);
	assert_int_equal(h_json_lines(c, out, &objs), 1);
	assert_string_equal(h_jstr(objs[0], "key"), "det");
	assert_true(json_object_object_get_ex(objs[0], "env", &env));
	assert_string_equal(h_jstr(env, "command"),
	                    "while read x; do echo \"old $x\"; done");
	assert_int_equal(h_jint(env, "replica_count"), 2);
	assert_int_equal(h_jint(env, "ttl_seconds"), 60);
	assert_int_equal(h_jint(env, "max_items"), 50);
	assert_string_equal(h_jstr(env, "protocol"), "LINES");
	h_assert_contains(h_jstr(env, "env"), "A=1");

	/* get: the same, for one name. */
	assert_int_equal(h_run(c, &out, NULL, "troupe actor get det --json"),
	                 0);
	j = h_json(c, out);
	assert_string_equal(h_jstr(j, "key"), "det");
	assert_true(json_object_object_get_ex(j, "env", &env));
	assert_int_equal(h_jint(env, "replica_count"), 2);
	assert_int_equal(h_run(c, &out, NULL, "troupe actor get det"), 0);
	assert_non_null(line_with(c, out, "det "));

	/* A map on it: its command's outputs, in order. */
	assert_int_equal(h_run(c, &out, NULL, "seq 3 | troupe map --actor det"),
	                 0);
	assert_string_equal(out, "old 1\nold 2\nold 3\n");

	/* --replace: the definition changes, and the next map runs the new
	 * command, not the replicas of the old one. */
	assert_int_equal(
	    h_run(c, &out, &err,
	          "troupe actor create det --cmd 'while read x; "
	          "do echo \"new $x\"; done' --replicas 1 --ttl 30 "
	          "--replace"),
	    0);
	assert_string_equal(out, "actor det created\n");
	assert_int_equal(h_run(c, &out, NULL, "troupe actor get det --json"),
	                 0);
	j = h_json(c, out);
	assert_true(json_object_object_get_ex(j, "env", &env));
	assert_string_equal(h_jstr(env, "command"),
	                    "while read x; do echo \"new $x\"; done");
	assert_int_equal(h_jint(env, "replica_count"), 1);
	assert_int_equal(h_jint(env, "ttl_seconds"), 30);
	assert_int_equal(h_run(c, &out, NULL, "seq 3 | troupe map --actor det"),
	                 0);
	assert_string_equal(out, "new 1\nnew 2\nnew 3\n");

	/* delete: gone from list and get; a second delete says so. */
	assert_int_equal(h_run(c, &out, &err, "troupe actor delete det"), 0);
	assert_string_equal(out, "actor det deleted\n");
	assert_int_equal(h_run(c, &out, &err, "troupe actor delete det"), 1);
	assert_string_equal(err, "troupe: no actor 'det'\n");
	assert_int_equal(h_run(c, &out, &err, "seq 2 | troupe map --actor det"),
	                 1);
	assert_int_equal(h_lines(err), 1);
	h_assert_contains(err, "no actor environment 'det'");
	assert_int_equal(h_run(c, &out, NULL, "troupe actor list --json"), 0);
	n = h_json_lines(c, out, &objs);
	for (int i = 0; i < n; i++)
		if ((l = h_jstr(objs[i], "key")) != NULL &&
		    strcmp(l, "det") == 0 &&
		    json_object_object_get_ex(objs[i], "env", &env))
			/* Live replicas may still show until they stop, but
			 * the registered definition is gone. */
			assert_int_not_equal(h_jint(env, "max_items"), 50);
	h_done(c);
}

static void
test_task_registry(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char        *out, *err, **lines, *w[16];
	json_object *j, **objs;
	int          n;

	assert_int_equal(h_run(c, &out, &err,
	                       "troupe task register t1 --cmd 'echo t{}' "
	                       "--retries 2 --timeout 1.5 --env K=v"),
	                 0);
	assert_string_equal(out, "task t1 registered\n");
	assert_int_equal(
	    h_run(c, &out, &err, "troupe task register t1 --cmd 'echo u{}'"),
	    1);
	assert_string_equal(err,
	                    "troupe: task 't1' already exists (replace it with "
	                    "--replace)\n");
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe task register t2 --cmd 'echo "
	                       "$K-{}' --env K=v"),
	                 0);

	/* list: a row per task; --json one object per task. */
	assert_int_equal(h_run(c, &out, NULL, "troupe task list"), 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 3);
	assert_int_equal(words(c, lines[0], w, 16), 5);
	assert_string_equal(w[0], "NAME");
	assert_string_equal(w[4], "COMMAND");
	assert_int_equal(words(c, line_with(c, out, "t1 "), w, 16), 6);
	assert_string_equal(w[1], "-");
	assert_string_equal(w[2], "2");
	assert_string_equal(w[3], "1.5s");
	assert_string_equal(w[4], "echo");
	assert_string_equal(w[5], "t{}");
	assert_int_equal(h_run(c, &out, NULL, "troupe task list --json"), 0);
	assert_int_equal(h_json_lines(c, out, &objs), 2);

	/* get: every field, as text and as JSON. */
	assert_int_equal(h_run(c, &out, NULL, "troupe task get t1"), 0);
	assert_string_equal(out, "name:     t1\n"
	                         "command:  echo t{}\n"
	                         "retries:  2\n"
	                         "timeout:  1.5s\n"
	                         "env:      K=v\n");
	assert_int_equal(h_run(c, &out, NULL, "troupe task get t1 --json"), 0);
	j = h_json(c, out);
	assert_string_equal(h_jstr(j, "name"), "t1");
	assert_string_equal(h_jstr(j, "command"), "echo t{}");
	assert_int_equal(h_jint(j, "retries"), 2);
	assert_int_equal(h_jint(j, "timeout_ms"), 1500);

	/* map --task runs it, with its env. */
	assert_int_equal(h_run(c, &out, NULL, "seq 2 | troupe map --task t1"),
	                 0);
	assert_string_equal(out, "t1\nt2\n");
	assert_int_equal(h_run(c, &out, NULL, "seq 2 | troupe map --task t2"),
	                 0);
	assert_string_equal(out, "v-1\nv-2\n");

	/* --replace: the new command from the next map on. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe task register t1 --cmd 'echo u{}' "
	                       "--replace"),
	                 0);
	assert_string_equal(out, "task t1 registered\n");
	assert_int_equal(h_run(c, &out, NULL, "seq 2 | troupe map --task t1"),
	                 0);
	assert_string_equal(out, "u1\nu2\n");
	assert_int_equal(h_run(c, &out, NULL, "troupe task get t1 --json"), 0);
	assert_int_equal(h_jint(h_json(c, out), "retries"), 0);

	/* delete: gone; get, delete and map of it fail in one line. */
	assert_int_equal(h_run(c, &out, NULL, "troupe task delete t1"), 0);
	assert_string_equal(out, "task t1 deleted\n");
	assert_int_equal(h_run(c, &out, &err, "troupe task get t1"), 1);
	assert_string_equal(err, "troupe: no task 't1'\n");
	assert_string_equal(out, "");
	assert_int_equal(h_run(c, &out, &err, "troupe task delete t1"), 1);
	assert_string_equal(err, "troupe: no task 't1'\n");
	assert_int_equal(h_run(c, &out, &err, "seq 2 | troupe map --task t1"),
	                 1);
	assert_int_equal(h_lines(err), 1);
	h_assert_contains(err, "no task named 't1'");
	assert_int_equal(h_run(c, &out, NULL, "troupe task list --json"), 0);
	assert_int_equal(h_json_lines(c, out, &objs), 1);
	assert_string_equal(h_jstr(objs[0], "name"), "t2");
	h_done(c);
}

/* The replicas of env in `troupe actors --json`, into reps (kept by c);
 * returns how many. */
static int
replicas_of(h_cluster *c, const char *env, json_object **reps)
{
	char         *out;
	json_object **objs, *r;
	int           n;

	assert_int_equal(h_run(c, &out, NULL, "troupe actors --json"), 0);
	n = h_json_lines(c, out, &objs);
	for (int i = 0; i < n; i++)
		if (h_jstr(objs[i], "key") != NULL &&
		    strcmp(h_jstr(objs[i], "key"), env) == 0 &&
		    json_object_object_get_ex(objs[i], "replicas", &r)) {
			*reps = r;
			return (int)json_object_array_length(r);
		}
	*reps = NULL;
	return 0;
}

/* `troupe actors`: a replica busy with an item shows BUSY; once the map
 * is done, each replica is IDLE with the items it served (adding up to
 * the map's) and an idle time left within the TTL; the text table shows
 * the same. */
static void
test_actors_fields(void **state)
{
	h_cluster   *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	json_object *reps, *r;
	const char  *id;
	char        *out, want[64], *w[16], **lines;
	int64_t      deadline;
	int          n, served, busy = 0;

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe actor create acc --cmd 'while read x; "
	                       "do [ \"$x\" = slow ] && sleep 8; echo \"$x\"; "
	                       "done' --replicas 1 --ttl 60"),
	                 0);
	/* While it serves the slow item: BUSY, with no idle time. */
	id = h_map_detach(c, "a\nslow\nb\n", "--actor acc");
	deadline = h_now_ms() + 30000;
	while (!busy && h_now_ms() < deadline &&
	       !h_phase_done(h_execution(c, id)->phase)) {
		if (replicas_of(c, "acc", &reps) == 1) {
			r = json_object_array_get_idx(reps, 0);
			busy = strcmp(h_jstr(r, "state"), "BUSY") == 0;
			if (busy)
				assert_int_equal(h_jint(r, "idle_ms_left"), 0);
		}
		if (!busy)
			usleep(100000);
	}
	if (!busy)
		h_fail(c, "the replica never showed BUSY while serving");
	/* The table says so too, read within the slow item's 8 s. */
	assert_int_equal(h_run(c, &out, NULL, "troupe actors"), 0);
	assert_non_null(strstr(out, " BUSY "));
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_run(c, &out, NULL, "seq 5 | troupe map --actor acc"),
	                 0);

	/* Done: IDLE, 8 items served in all, idle time left within the TTL.
	 * The workers report replica states with their Pulls, so wait
	 * (bounded) for the report after the last item. */
	deadline = h_now_ms() + 15000;
	for (;;) {
		n = replicas_of(c, "acc", &reps);
		assert_int_equal(n, 1);
		r = json_object_array_get_idx(reps, 0);
		served = (int)h_jint(r, "items_served");
		if ((strcmp(h_jstr(r, "state"), "IDLE") == 0 && served == 8) ||
		    h_now_ms() > deadline)
			break;
		usleep(100000);
	}
	assert_string_equal(h_jstr(r, "state"), "IDLE");
	assert_int_equal(served, 8);
	assert_true(h_jint(r, "idle_ms_left") > 0);
	assert_true(h_jint(r, "idle_ms_left") <= 60000);
	assert_string_equal(h_jstr(r, "worker"), "w1");
	assert_true(h_jint(r, "pid") > 0);

	/* The text: the environment's row, then the replica's. */
	assert_int_equal(h_run(c, &out, NULL, "troupe actors"), 0);
	assert_int_equal(words(c, strstr(out, "\nacc ") + 1, w, 8), 8);
	assert_string_equal(w[1], "1/1");
	assert_string_equal(w[2], "0"); /* busy */
	assert_string_equal(w[3], "1"); /* idle */
	assert_string_equal(w[4], "60s");
	snprintf(want, sizeof(want), " %lld ", (long long)h_jint(r, "pid"));
	n = h_split(c, out, &lines);
	assert_int_equal(n, 5); /* two headers, two rows, a blank line */
	assert_int_equal(words(c, lines[4], w, 8), 6);
	assert_non_null(strstr(lines[4], want));
	assert_string_equal(w[0], "acc");
	assert_string_equal(w[1], "w1");
	assert_string_equal(w[3], "IDLE");
	assert_string_equal(w[4], "8");
	assert_true(w[5][strlen(w[5]) - 1] == 's');
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_actor_registry),
	    H_TEST(test_task_registry),
	    H_TEST(test_actors_fields),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
