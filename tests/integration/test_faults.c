/*
 * Fault tests that kill real processes: a worker killed in the middle of
 * a map (its items run again elsewhere, out of the system's budget, not
 * the user's retries), and a worker stopped with SIGTERM (it lets its
 * running items finish and exits 0).  Also:
 * - a worker that cannot spawn item processes (its troupe-shim deleted
 *   under it): each attempt is a system failure, retried within the
 *   system's budget of 3 whatever --retries says, and the item ends
 *   FAILED with an error saying the command could not start;
 * - an environment whose replicas die at once on one worker is struck
 *   out there for 30 s (no replica starts there meanwhile, the healthy
 *   worker runs the items), and tried there again once the 30 s are
 *   over.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_faults.h"
#include "skip.h"

static bool
both_busy(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->running >= 3 &&
	       e->counts->succeeded >= 1;
}

static const Troupe__WorkerInfo *
find_worker(h_cluster *c, const char *name)
{
	Troupe__ListWorkersRequest req = TROUPE__LIST_WORKERS_REQUEST__INIT;
	Troupe__ListWorkersReply  *rep = NULL;

	assert_int_equal(H_CALL(c, ListWorkers, &req, list_workers, &rep), 0);
	for (size_t i = 0; i < rep->n_workers; i++)
		if (strcmp(rep->workers[i]->name, name) == 0)
			return rep->workers[i];
	return NULL;
}

/* SIGKILL w1 while it runs items: with no --retries the execution still
 * SUCCEEDS, every output is there in order, and what w1 held ran again on
 * w2.  w1 is reported LOST (or forgotten). */
static void
test_worker_killed_mid_map(void **state)
{
	h_cluster                *c = h_start(&(h_opts){
	                   .workers = 2, .slots = 2, .sched_args = "--worker-timeout 2000"});
	Troupe__ItemResult      **items;
	const Troupe__WorkerInfo *w;
	const char               *id;
	int                       rerun = 0;
	int64_t                   deadline;

	assert_int_equal(h_run(c, NULL, NULL, "seq 16 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --concurrency 4 --cmd 'sleep 0.5; "
	                  "echo item-{}'");
	(void)h_wait_exec(c, id, both_busy, NULL, 30000, "both workers busy");
	h_kill_worker(c, 0, SIGKILL);

	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 16);
	for (int i = 0; i < 16; i++) {
		char want[32];

		snprintf(want, sizeof(want), "item-%d\n", i + 1);
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_int_equal(items[i]->output.len, strlen(want));
		assert_memory_equal(items[i]->output.data, want, strlen(want));
		if (items[i]->attempts > 1) {
			rerun++;
			assert_string_equal(items[i]->worker, "w2");
		}
	}
	fprintf(stderr, "%d items ran again after w1 died\n", rerun);
	assert_true(rerun >= 1);

	/* The scheduler notices within its worker timeout. */
	deadline = h_now_ms() + 15000;
	while ((w = find_worker(c, "w1")) != NULL &&
	       w->state == TROUPE__WORKER_STATE__WORKER_READY &&
	       h_now_ms() < deadline)
		usleep(100000);
	assert_true(w == NULL ||
	            w->state != TROUPE__WORKER_STATE__WORKER_READY);

	/* The cluster still works with what is left. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "seq 4 | troupe map --cmd 'echo "
	                       "{}'"),
	                 0);
	h_done(c);
}

static bool
one_running(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->running >= 1;
}

/* SIGTERM to the only worker while an item runs: it finishes the item,
 * reports it and exits 0; the item is not run twice. */
static void
test_worker_sigterm_drains(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 1});
	Troupe__ItemResult **items;
	const char          *id;
	int                  st;

	id = h_map_detach(c, "a\n", "--cmd 'sleep 1; echo drained-{}'");
	(void)h_wait_exec(c, id, one_running, NULL, 30000, "an item running");
	st = h_kill_worker(c, 0, SIGTERM);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail(c, "worker: wait status %#x after SIGTERM, want exit 0",
		       st);
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 1);
	assert_memory_equal(items[0]->output.data, "drained-a\n", 10);
	assert_int_equal(items[0]->attempts, 1);
	h_done(c);
}

/* A worker whose troupe-shim disappears after it started (it runs from a
 * copy of the binaries in the cluster's directory): no item process can
 * be spawned there.  With --retries 0 each item is still tried 1 + 3
 * times (spawn failures are the system's, not the user's), then FAILS
 * with an error naming the cause. */
static void
test_spawn_failure_is_system_failure(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 0});
	Troupe__ItemResult **items;
	const char          *bin = h_path(c, "bin"), *id;
	char                 exe[4096];
	Troupe__Execution   *e;

	if (hf_sh("mkdir -p %s %s && cp %s %s %s/", bin, h_path(c, "wbad"),
	          hf_bin(c, "troupe-worker"), hf_bin(c, "troupe-shim"),
	          bin) != 0)
		h_fail(c, "cannot copy the worker binaries");
	snprintf(exe, sizeof(exe), "%s/troupe-worker", bin);
	(void)hf_spawn(c, "wbad", NULL, NULL,
	               (char *const[]){exe, "--home", (char *)h_path(c, "wbad"),
	                               "--scheduler", (char *)h_worker_addr(c),
	                               "--name", "wbad", "--slots", "2",
	                               "--allow-root", NULL});
	h_wait_workers(c, 1, 30000);
	if (hf_sh("rm %s/troupe-shim", bin) != 0)
		h_fail(c, "cannot remove the copied troupe-shim");
	/* One item: a second would be aborted when the first fails. */
	id = h_map_detach(c, "a\n", "--retries 0 --cmd 'echo o{}'");
	e = h_wait_done(c, id, 60000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
	assert_int_equal(h_outputs(c, id, &items), 1);
	for (int i = 0; i < 1; i++) {
		fprintf(stderr, "item %d: %u attempts, error: %s\n", i,
		        items[i]->attempts, items[i]->error);
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_FAILED);
		/* 1 + the system's budget of 3, though --retries 0. */
		if (items[i]->attempts != 4)
			h_fail(c,
			       "item %d: %u attempts, want 4 (1 + 3 system "
			       "retries; a spawn failure is not the user's)",
			       i, items[i]->attempts);
		h_assert_icontains(items[i]->error, "cannot start");
	}
	hf_stop_all(c);
	h_done(c);
}

/* Reads the file of `NANOSECONDS` lines written by the broken replicas as
 * they start, into ms (at most max); returns the count. */
static int
read_starts(h_cluster *c, const char *path, int64_t *ms, int max)
{
	char **lines;
	char  *s = h_slurp(c, path);
	int    n = s != NULL ? h_split(c, s, &lines) : 0, k = 0;

	for (int i = 0; i < n && k < max; i++)
		if (lines[i][0] != '\0')
			ms[k++] = strtoll(lines[i], NULL, 10) / 1000000;
	return k;
}

/* w1 healthy, wbad (BROKEN=1 in its environment) where every replica of
 * the environment dies as it starts, logging its start time.  After 3
 * system failures in a row there, wbad gets no replica of it for 30 s:
 * the log shows a pause of about 30 s between starts; then it gets one
 * again (the map, long enough, still runs).  The map is aborted as soon
 * as that is seen, to keep the test short. */
static void
test_strike_out_lasts_30s(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	char *const env[] = {"BROKEN=1", NULL};
	const char *starts = h_path(c, "starts"), *id;
	int64_t     ms[256], t0, gap = 0, pause_at = 0;
	int         n = 0;

	(void)hf_spawn_worker(c, "wbad", 2, env);
	h_wait_workers(c, 2, 30000);
	assert_int_equal(h_run(c, NULL, NULL, "seq 400 > items; : > starts"),
	                 0);
	/* 400 items of 0.2 s on w1's two replicas: 40 s. */
	id = h_map_detach(c, NULL,
	                  "--items items --replicas 4 --cmd 'if [ -n "
	                  "\"$BROKEN\" ]; then date +%%s%%N >> %s; exit 3; fi; "
	                  "while read x; do sleep 0.2; echo \"o$x\"; done'",
	                  h_quote(c, starts));
	t0 = h_now_ms();
	/* Wait for a start after a pause of 20 s or more (bounded). */
	while (h_now_ms() - t0 < 60000) {
		n = read_starts(c, starts, ms, 256);
		for (int i = 1; i < n; i++)
			if (ms[i] - ms[i - 1] > gap) {
				gap = ms[i] - ms[i - 1];
				pause_at = ms[i - 1];
			}
		if (gap >= 20000 || h_phase_done(h_execution(c, id)->phase))
			break;
		hf_sleep_ms(250);
	}
	fprintf(stderr,
	        "%d replica starts on wbad; longest pause between two: %lld "
	        "ms, %lld ms after the first start\n",
	        n, (long long)gap, (long long)(n > 0 ? pause_at - ms[0] : -1));
	if (n < 3)
		h_fail(c, "only %d replica starts on wbad", n);
	assert_int_equal(h_run(c, NULL, NULL, "troupe abort %s", id), 0);
	/* Struck out for 30 s: a pause of at least ~30 s (the strike comes
	 * at the item failure after the last start, so a little longer, and
	 * a little less for the timer's granularity) and not much more,
	 * followed by another start: it was tried there again. */
	if (gap < 28000 || gap > 45000)
		h_fail(c,
		       "the longest pause between starts on wbad was %lld ms; "
		       "want about 30 s (struck out 30 s, then tried again)",
		       (long long)gap);
	(void)h_wait_done(c, id, 30000);
	hf_stop_all(c);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_worker_killed_mid_map),
	    H_TEST(test_worker_sigterm_drains),
	    HF_TEST(test_spawn_failure_is_system_failure),
	    HF_TEST(test_strike_out_lasts_30s),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
