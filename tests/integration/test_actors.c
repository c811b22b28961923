/*
 * Actor replicas end to end (issue 3), with the real daemons, the real CLI
 * and real replica processes: a registered environment whose replicas
 * serve a map in order, never more of them alive than --replicas, and
 * serve a second map within the TTL with the same processes; ad hoc
 * replicas reused across runs and gone after their TTL; a poison item;
 * the newline check of the lines protocol; the frames protocol (with the
 * Python helper, and the README's C example troupe-detect); per-item
 * timeouts and max_items recycling; and no replica or item process left
 * behind by a worker stopped with SIGTERM or killed with SIGKILL.
 *
 * Replica processes are found by their environment: every process the
 * worker starts inherits TROUPE_HOME (under the cluster's directory), and
 * replicas carry TROUPE_ACTOR and TROUPE_REPLICA.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "skip.h"

#define MAX_PIDS 256

/* The source tree (for the example actors). */
static const char *
src_dir(void)
{
	static char buf[4096];
	const char *s = getenv("TROUPE_SOURCE_DIR");
	char       *slash;

	if (s != NULL && s[0] != '\0')
		return s;
	/* __FILE__ is tests/integration/test_actors.c in the tree. */
	snprintf(buf, sizeof(buf), "%s", __FILE__);
	for (int i = 0; i < 3 && (slash = strrchr(buf, '/')) != NULL; i++)
		*slash = '\0';
	return buf;
}

/* Whether the NUL-separated list env holds an entry starting with pre. */
static bool
env_has(const char *env, size_t len, const char *pre)
{
	size_t n = strlen(pre);

	for (size_t i = 0; i < len; i += strlen(env + i) + 1)
		if (strncmp(env + i, pre, n) == 0)
			return true;
	return false;
}

/* The live processes (zombies excluded) started under cluster c whose
 * environment has an entry starting with var (e.g. "TROUPE_ACTOR=x") and,
 * when comm is not NULL, whose command name starts with comm.  Fills pids
 * (up to MAX_PIDS) and returns how many. */
static int
procs(h_cluster *c, const char *var, const char *comm, int *pids)
{
	static char    env[256 * 1024];
	char           home[4200], stat[512], name[64];
	DIR           *d = opendir("/proc");
	struct dirent *de;
	int            n = 0;

	assert_non_null(d);
	snprintf(home, sizeof(home), "TROUPE_HOME=%s", h_dir(c));
	while ((de = readdir(d)) != NULL && n < MAX_PIDS) {
		int     pid = atoi(de->d_name);
		ssize_t len;
		char   *st;

		if (pid <= 0 || !isdigit((unsigned char)de->d_name[0]))
			continue;
		if ((len = h_proc_read(pid, "environ", env, sizeof(env))) <=
		        0 ||
		    !env_has(env, (size_t)len, home) ||
		    !env_has(env, (size_t)len, var))
			continue;
		/* State after the ")" of the name: Z is a zombie. */
		if (h_proc_read(pid, "stat", stat, sizeof(stat)) <= 0 ||
		    (st = strrchr(stat, ')')) == NULL || st[2] == 'Z')
			continue;
		if (comm != NULL &&
		    (h_proc_read(pid, "comm", name, sizeof(name)) <= 0 ||
		     strncmp(name, comm, strlen(comm)) != 0))
			continue;
		pids[n++] = pid;
	}
	closedir(d);
	return n;
}

/* Waits (at most ms) until want processes match procs(c, var, comm);
 * returns how many matched last (into pids), want unless the wait ran
 * out. */
static int
wait_procs(h_cluster *c, const char *var, const char *comm, int want, int ms,
           int *pids)
{
	int64_t deadline = h_now_ms() + ms;
	int     n;

	while ((n = procs(c, var, comm, pids)) != want && h_now_ms() < deadline)
		usleep(50000);
	return n;
}

/* Waits (at most ms) until no process of c has var in its environment. */
static void
wait_no_procs(h_cluster *c, const char *var, int ms, const char *what)
{
	int pids[MAX_PIDS], n = wait_procs(c, var, NULL, 0, ms, pids);

	if (n > 0) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "ps -o pid,pgid,args -p %d",
		         pids[0]);
		(void)system(cmd);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL); /* leave nothing behind */
		h_fail(c, "%s: %d processes with %s still alive after %d ms",
		       what, n, var, ms);
	}
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The replicas `troupe actors --json` (one object per environment and
 * line) lists for key; their pids go to pids (may be NULL). */
static int
listed_replicas(h_cluster *c, const char *key, int *pids)
{
	char         *out;
	json_object **objs, *reps;
	int           n = 0, k = 0;

	assert_int_equal(h_run(c, &out, NULL, "troupe actors --json"), 0);
	n = h_json_lines(c, out, &objs);
	for (int i = 0; i < n; i++) {
		if (h_jstr(objs[i], "key") == NULL ||
		    strcmp(h_jstr(objs[i], "key"), key) != 0 ||
		    !json_object_object_get_ex(objs[i], "replicas", &reps))
			continue;
		for (size_t j = 0; j < json_object_array_length(reps); j++) {
			if (pids != NULL && k < MAX_PIDS)
				pids[k] = (int)h_jint(
				    json_object_array_get_idx(reps, j), "pid");
			k++;
		}
	}
	return k;
}

/* A registered environment of 3 replicas serves a 50-item map, in order,
 * with never more than 3 replica processes alive; a second map within
 * the TTL runs on the very same processes (no process starts). */
static void
test_registered_actor_warm(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 2, .slots = 4});
	Troupe__ItemResult **items;
	const Troupe__Execution *e;
	const char              *id;
	int     pids[MAX_PIDS], before[MAX_PIDS], n, nb, most = 0;
	int     listed_most = 0;
	int64_t deadline;

	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "troupe actor create anomaly --cmd 'python3 "
	          "%s/tests/bench/actors/detect.py --work-ms 20' --replicas 3 "
	          "--ttl 30",
	          src_dir()),
	    0);
	assert_int_equal(h_run(c, NULL, NULL, "seq 50 > items"), 0);
	id = h_map_detach(c, NULL, "--actor anomaly --items items");
	/* Count the replicas while it runs. */
	deadline = h_now_ms() + 120000;
	do {
		n = procs(c, "TROUPE_ACTOR=anomaly", "python", pids);
		most = n > most ? n : most;
		n = listed_replicas(c, "anomaly", NULL);
		listed_most = n > listed_most ? n : listed_most;
		e = h_execution(c, id);
		if (h_now_ms() > deadline)
			h_fail(c, "the map did not finish within 120 s");
	} while (!h_phase_done(e->phase));
	fprintf(stderr, "at most %d replica processes, %d listed\n", most,
	        listed_most);
	assert_true(most >= 1 && most <= 3);
	assert_true(listed_most <= 3);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 50);
	for (int i = 0; i < 50; i++) {
		const char *want = i + 1 > 11 ? "true" : "false";

		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_int_equal(items[i]->output.len, strlen(want));
		assert_memory_equal(items[i]->output.data, want, strlen(want));
	}

	/* The second map: the same processes, none started or stopped. */
	nb = procs(c, "TROUPE_ACTOR=anomaly", "python", before);
	assert_true(nb >= 1 && nb <= 3);
	id = h_map_detach(c, NULL, "--actor anomaly --items items");
	deadline = h_now_ms() + 120000;
	do {
		n = procs(c, "TROUPE_ACTOR=anomaly", "python", pids);
		assert_true(n <= 3);
		e = h_execution(c, id);
		if (h_now_ms() > deadline)
			h_fail(c, "the map did not finish within 120 s");
	} while (!h_phase_done(e->phase));
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	n = procs(c, "TROUPE_ACTOR=anomaly", "python", pids);
	qsort(before, (size_t)nb, sizeof(int), cmp_int);
	qsort(pids, (size_t)n, sizeof(int), cmp_int);
	assert_int_equal(n, nb);
	assert_memory_equal(pids, before, (size_t)n * sizeof(int));
	/* What the scheduler lists is what runs (shim pids lead groups). */
	n = listed_replicas(c, "anomaly", pids);
	assert_int_equal(n, nb);
	for (int i = 0; i < n; i++)
		assert_int_equal(kill(pids[i], 0), 0);
	h_done(c);
}

/* Ad hoc replicas: the same command again finds the same processes
 * (their pids are in the outputs); idle past --ttl they exit and leave
 * `troupe actors`.  The TTL, 6 s, must cover the first CLI's exit and the
 * second's start and upload under ASan on a loaded machine. */
static void
test_adhoc_reuse_and_ttl(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char       *out1, *out2, **lines;
	int         pids[MAX_PIDS], n, ok = 0;
	int64_t     t0, dt;
	const char *cmd = "--cmd 'while read x; do echo \"$x $$\"; done' "
	                  "--replicas 2 --ttl 6";

	assert_int_equal(h_run(c, &out1, NULL, "seq 20 | troupe map %s", cmd),
	                 0);
	assert_int_equal(h_run(c, &out2, NULL, "seq 20 | troupe map %s", cmd),
	                 0);
	t0 = h_now_ms();
	/* Every pid of the second run served the first one too. */
	n = h_split(c, out2, &lines);
	assert_int_equal(n, 20);
	for (int i = 0; i < n; i++) {
		char        want[16];
		const char *pid = strchr(lines[i], ' ');

		snprintf(want, sizeof(want), "%d ", i + 1);
		assert_true(strncmp(lines[i], want, strlen(want)) == 0);
		assert_non_null(pid);
		if (strstr(out1, pid) != NULL)
			ok++;
	}
	assert_int_equal(ok, 20);
	n = procs(c, "TROUPE_REPLICA=", NULL, pids);
	assert_true(n > 0);

	/* Gone from the process table and from the list after the TTL. */
	while (h_now_ms() - t0 < 30000 &&
	       procs(c, "TROUPE_REPLICA=", NULL, pids) > 0)
		usleep(50000);
	dt = h_now_ms() - t0;
	assert_int_equal(procs(c, "TROUPE_REPLICA=", NULL, pids), 0);
	fprintf(stderr, "replicas gone %lld ms after the last item\n",
	        (long long)dt);
	/* They outlived the map (alive at t0, checked above); how long after
	 * depends on how long the CLI took to fetch the outputs, which under
	 * load can be most of the TTL. */
	while (h_now_ms() - t0 < 30000) {
		assert_int_equal(h_run(c, &out1, NULL, "troupe actors"), 0);
		if (strstr(out1, "0/2") != NULL)
			break;
		usleep(100000);
	}
	h_assert_contains(out1, "0/2");
	h_done(c);
}

/* A poison item kills every replica it touches: it ends FAILED with the
 * replica's stderr while every other item succeeds; the replicas are
 * replaced while work remains. */
static void
test_poison_item(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	Troupe__ItemResult **items;
	const Troupe__Execution *e;
	const char              *id;

	assert_int_equal(
	    h_run(c, NULL, NULL, "(seq 10; echo poison; seq 11 20) > items"),
	    0);
	id = h_map_detach(
	    c, NULL,
	    "--items items --replicas 2 --ttl 30 --min-success-ratio 0 --cmd "
	    "'while read x; do [ \"$x\" = poison ] && { echo \"poisoned by "
	    "$x\" >&2; exit 3; }; echo \"ok $x\"; done'");
	e = h_wait_done(c, id, 120000);
	assert_int_equal(h_outputs(c, id, &items), 21);
	for (int i = 0; i < 21; i++) {
		char want[16];

		if (i == 10) {
			assert_int_equal(items[i]->state,
			                 TROUPE__ITEM_STATE__ITEM_FAILED);
			h_assert_contains(items[i]->error,
			                  "poisoned by poison");
			h_assert_contains(items[i]->error, "died (exit 3)");
			assert_true(items[i]->attempts > 1);
			continue;
		}
		snprintf(want, sizeof(want), "ok %d", i < 10 ? i + 1 : i);
		if (items[i]->state != TROUPE__ITEM_STATE__ITEM_SUCCEEDED)
			h_fail(c, "item %d: %s", i, items[i]->error);
		assert_int_equal(items[i]->output.len, strlen(want));
		assert_memory_equal(items[i]->output.data, want, strlen(want));
	}
	assert_int_equal(e->counts->failed, 1);
	assert_int_equal(e->counts->succeeded, 20);
	h_done(c);
}

/* The lines protocol cannot carry an item holding a newline: refused at
 * submission with a clear error. */
static void
test_newline_refused(void **state)
{
	h_cluster                     *c = h_start(&(h_opts){.workers = 1});
	Troupe__CreateExecutionRequest req =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv              env = TROUPE__ACTOR_ENV__INIT;
	Troupe__CreateExecutionReply *rep = NULL;
	ProtobufCBinaryData           items[2] = {
	              {1, (uint8_t *)"a"},
	              {3, (uint8_t *)"b\nc"},
        };

	spec.command = "cat";
	env.replica_count = 1;
	env.ttl_seconds = 5;
	spec.adhoc_actor = &env;
	req.spec = &spec;
	req.items = items;
	req.n_items = 2;
	req.seal = true;
	assert_int_equal(
	    H_CALL(c, CreateExecution, &req, create_execution, &rep),
	    TROUPE_EINVAL);
	h_assert_icontains(troupe_client_error(h_client(c)), "newline");
	h_done(c);
}

/* The frames protocol with the Python helper: per-item errors, and the
 * replica goes on. */
static void
test_frames(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__ItemResult **items;
	const char          *id;
	const char          *want[] = {"false", "true", NULL, "true"};

	id = h_map_detach(c, "5\n20\nnot-a-number\n12\n",
	                  "--replicas 1 --ttl 30 --protocol frames "
	                  "--min-success-ratio 0 --cmd 'python3 "
	                  "%s/tests/bench/actors/detect.py --frames'",
	                  src_dir());
	(void)h_wait_done(c, id, 60000);
	assert_int_equal(h_outputs(c, id, &items), 4);
	for (int i = 0; i < 4; i++) {
		if (want[i] == NULL) {
			assert_int_equal(items[i]->state,
			                 TROUPE__ITEM_STATE__ITEM_FAILED);
			h_assert_contains(items[i]->error, "not-a-number");
			/* A per-item error: no retry, not the system's. */
			assert_int_equal(items[i]->attempts, 1);
			continue;
		}
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_int_equal(items[i]->output.len, strlen(want[i]));
		assert_memory_equal(items[i]->output.data, want[i],
		                    strlen(want[i]));
	}
	h_done(c);
}

/* The README's C actor (tests/bench/actors/detect.c, built as
 * BUILD/tests/troupe-detect) as real replicas over frames: "true" above
 * the threshold, "false" otherwise, and an item that is not an integer
 * fails alone (one attempt, its error) while the replica goes on; a
 * second map within the TTL runs on the same replica process. */
static void
test_c_detect_actor(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__ItemResult **items;
	const char          *bin = getenv("TROUPE_BIN_DIR");
	const char          *want[] = {"false", "true", NULL, "true", "false"};
	const char          *id;
	char                 cmd[4200], *out;
	int                  before[MAX_PIDS], after[MAX_PIDS], n;

	snprintf(cmd, sizeof(cmd), "%s/tests/troupe-detect",
	         bin != NULL && bin[0] != '\0' ? bin : TROUPE_BIN_DIR);
	if (access(cmd, X_OK) != 0)
		h_fail(c, "%s is not built (the troupe-detect target)", cmd);
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd),
	         " --threshold 11");
	id = h_map_detach(c, "5\n20\nnot-a-number\n12\n11\n",
	                  "--replicas 1 --ttl 60 --protocol frames "
	                  "--min-success-ratio 0 --cmd %s",
	                  h_quote(c, cmd));
	(void)h_wait_done(c, id, 60000);
	assert_int_equal(h_outputs(c, id, &items), 5);
	for (int i = 0; i < 5; i++) {
		if (want[i] == NULL) {
			assert_int_equal(items[i]->state,
			                 TROUPE__ITEM_STATE__ITEM_FAILED);
			assert_string_equal(items[i]->error,
			                    "not an integer: 'not-a-number'");
			assert_int_equal(items[i]->attempts, 1);
			assert_int_equal(items[i]->output.len, 0);
			continue;
		}
		if (items[i]->state != TROUPE__ITEM_STATE__ITEM_SUCCEEDED)
			h_fail(c, "item %d: %s", i, items[i]->error);
		assert_int_equal(items[i]->attempts, 1);
		assert_int_equal(items[i]->output.len, strlen(want[i]));
		assert_memory_equal(items[i]->output.data, want[i],
		                    strlen(want[i]));
	}
	/* One replica served them all: the error did not end it. */
	n = procs(c, "TROUPE_REPLICA=", "troupe-detect", before);
	assert_int_equal(n, 1);

	/* Warm: a second map, through the CLI, on the same process. */
	assert_int_equal(h_run_in(c, "3\n30\n", &out, NULL,
	                          "troupe map --replicas 1 --ttl 60 --protocol "
	                          "frames --cmd %s",
	                          h_quote(c, cmd)),
	                 0);
	assert_string_equal(out, "false\ntrue\n");
	assert_int_equal(procs(c, "TROUPE_REPLICA=", "troupe-detect", after),
	                 1);
	assert_int_equal(after[0], before[0]);
	h_done(c);
}

/* Items written ahead to a replica wait behind its current one however
 * long it takes, so they are spread first: none holds more than one past
 * its least loaded sibling, even one still booting.  Two replicas: the
 * first to make the lock directory boots in 2 s, the other at once;
 * items 1-4 are quick, the rest hang.  Once the slow one is up, both
 * hang on an item, and exactly 6 items ever started: none waits behind a
 * hanging one while a replica idles. */
static void
test_items_spread_over_booting_replica(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	const char *id, *started = h_path(c, "started");
	int         pids[MAX_PIDS], n;

	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items"), 0);
	id = h_map_detach(
	    c, NULL,
	    "--items items --replicas 2 --cmd 'mkdir boot.lock 2>/dev/null "
	    "&& sleep 2; while read x; do echo $x >> started; [ $x -gt 4 ] "
	    "&& sleep 60; echo o$x; done'");
	n = h_wait_lines(c, started, 6, 20000);
	if (n != 6)
		h_fail(c,
		       "%d items started, want 6 (4 quick, 1 hanging on "
		       "each replica):\n%s",
		       n, h_slurp(c, started));
	assert_int_equal(
	    wait_procs(c, "TROUPE_REPLICA=", "sleep", 2, 10000, pids), 2);
	usleep(1000000);
	assert_int_equal(h_lines(h_slurp(c, started)), 6);
	assert_int_equal(h_run(c, NULL, NULL, "troupe abort %s", id), 0);
	h_done(c);
}

/* With --actor-prefetch 1 a replica holds one item at a time, so nothing
 * waits behind a slow one: item 10 (past each replica's first two, which
 * go one at a time anyway) takes 5 s, and the 39 others, all on the
 * other replica, finish before it.  By default about a dozen would have
 * waited behind it. */
static void
test_prefetch_one_nothing_waits(void **state)
{
	h_cluster *c = h_start(&(h_opts){
	    .workers = 1, .slots = 2, .sched_args = "--actor-prefetch 1"});
	char      *out;

	assert_int_equal(
	    h_run(c, &out, NULL,
	          "seq 40 | troupe map --replicas 2 --cmd 'while read x; do "
	          "[ $x = 10 ] && sleep 5; echo $x >> done; echo o$x; done' "
	          "| wc -l; tail -1 done"),
	    0);
	assert_string_equal(out, "40\n10\n");
	h_done(c);
}

/* --timeout kills and replaces the replica; --max-items recycles one
 * after N items (new pid, same replica).  The timeout counts from when an
 * item is written to its replica, boot included, so it is 3 s: a cold
 * replica under ASan can take most of a second to read its first item. */
static void
test_timeout_and_recycling(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__ItemResult **items;
	const char          *id;
	char                *out, **lines;
	int                  n, pids[MAX_PIDS];

	id = h_map_detach(c, "a\nslow\nb\n",
	                  "--replicas 1 --ttl 30 --timeout 3 "
	                  "--min-success-ratio 0 --cmd 'while read x; do [ "
	                  "\"$x\" = slow ] && sleep 30; echo \"r$x\"; done'");
	(void)h_wait_done(c, id, 60000);
	assert_int_equal(h_outputs(c, id, &items), 3);
	assert_int_equal(items[1]->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	h_assert_contains(items[1]->error, "timed out after 3000 ms");
	assert_int_equal(items[0]->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(items[2]->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_memory_equal(items[2]->output.data, "rb", 2);
	/* The killed replica's sleep went with it. */
	assert_int_equal(
	    wait_procs(c, "TROUPE_REPLICA=", "sleep", 0, 5000, pids), 0);

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe actor create rec --cmd 'while read x; "
	                       "do echo $$; done' --replicas 1 --max-items 3"),
	                 0);
	assert_int_equal(h_run(c, &out, NULL, "seq 9 | troupe map --actor rec"),
	                 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 9);
	for (int i = 0; i < 9; i++) {
		assert_string_equal(lines[i], lines[i / 3 * 3]);
		if (i % 3 == 0 && i > 0)
			assert_string_not_equal(lines[i], lines[i - 3]);
	}
	h_done(c);
}

/* SIGTERM: the worker stops its replicas (SIGTERM, then SIGKILL after a
 * grace) and exits 0; no replica process is left. */
static void
test_worker_sigterm_stops_replicas(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	int        pids[MAX_PIDS], st;

	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "seq 6 | troupe map --replicas 3 --ttl 60 --cmd 'trap \"\" "
	          "TERM; while read x; do echo $x; done'"),
	    0);
	assert_true(procs(c, "TROUPE_REPLICA=", NULL, pids) > 0);
	st = h_kill_worker(c, 0, SIGTERM);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail(c, "worker: wait status %#x after SIGTERM, want 0", st);
	wait_no_procs(c, "TROUPE_REPLICA=", 1000, "after the worker exited");
	h_done(c);
}

/* SIGKILL: nothing the worker started survives it, neither replicas nor
 * per-item processes (troupe-shim takes them down). */
static void
test_worker_kill9_no_orphans(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	int        pids[MAX_PIDS];

	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "seq 4 | troupe map --replicas 2 --ttl 60 --cmd 'while read "
	          "x; do echo $x; done'"),
	    0);
	(void)h_map_detach(c, "1\n2\n", "--cmd 'sleep 60 & sleep 61'");
	assert_int_equal(
	    wait_procs(c, "TROUPE_EXECUTION=", "sleep", 4, 30000, pids), 4);
	assert_true(procs(c, "TROUPE_REPLICA=", NULL, pids) >= 2);
	(void)h_kill_worker(c, 0, SIGKILL);
	wait_no_procs(c, "TROUPE_REPLICA=", 10000, "replicas after SIGKILL");
	wait_no_procs(c, "TROUPE_EXECUTION=", 10000,
	              "item processes after SIGKILL");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_registered_actor_warm),
	    H_TEST(test_adhoc_reuse_and_ttl),
	    H_TEST(test_poison_item),
	    H_TEST(test_newline_refused),
	    H_TEST(test_frames),
	    H_TEST(test_c_detect_actor),
	    H_TEST(test_items_spread_over_booting_replica),
	    H_TEST(test_prefetch_one_nothing_waits),
	    H_TEST(test_timeout_and_recycling),
	    H_TEST(test_worker_sigterm_stops_replicas),
	    H_TEST(test_worker_kill9_no_orphans),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
