/*
 * Stop the scheduler and start it again: every execution and its outputs
 * are still there, and unfinished ones complete.  Both a clean stop
 * (SIGTERM, which must exit 0) and a crash (SIGKILL), each in the middle
 * of a running map.  Items still running on the workers across a SIGKILL
 * and restart are taken back when their workers register again: each
 * ran exactly once (attempts 1, one line per run in a side-effect file).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness_faults.h"
#include "skip.h"

static bool
some_done(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->succeeded >= 4;
}

/* Checks that execution id SUCCEEDED with n outputs `item-1..n` (each
 * item ran at least once), through the API and the CLI. */
static void
check_complete(h_cluster *c, const char *id, int n)
{
	Troupe__ItemResult **items;
	char                *out, **lines;

	assert_int_equal(h_wait_done(c, id, 90000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), (size_t)n);
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id), 0);
	assert_int_equal(h_split(c, out, &lines), n);
	for (int i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "item-%d", i + 1);
		assert_string_equal(lines[i], want);
	}
}

static void
restart_mid_map(int sig)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	const char *done, *running;
	char       *out;
	int         st;

	/* One execution finished before the stop... */
	assert_int_equal(h_run(c, NULL, NULL, "seq 12 > items"), 0);
	done = h_map_detach(c, NULL, "--items items --cmd 'echo item-{}'");
	assert_int_equal(h_wait_done(c, done, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	/* ...and one in the middle of running when it stops. */
	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items2"), 0);
	running = h_map_detach(c, NULL,
	                       "--items items2 --concurrency 3 --cmd 'sleep "
	                       "0.4; echo item-{}'");
	(void)h_wait_exec(c, running, some_done, NULL, 60000, "4 items done");

	st = h_kill_scheduler(c, sig);
	if (sig == SIGTERM && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		h_fail(c,
		       "scheduler: wait status %#x after SIGTERM, want "
		       "exit 0",
		       st);
	/* While it is down the CLI says where it tried. */
	assert_int_not_equal(h_run(c, NULL, &out, "troupe list"), 0);
	h_assert_contains(out, "api.sock");

	h_restart_scheduler(c);
	check_complete(c, done, 12);
	check_complete(c, running, 20);
	assert_int_equal(h_run(c, &out, NULL, "troupe list"), 0);
	h_assert_contains(out, done);
	h_assert_contains(out, running);

	/* And it takes new work. */
	assert_int_equal(
	    h_run(c, &out, NULL, "seq 3 | troupe map --cmd 'echo item-{}'"), 0);
	assert_string_equal(out, "item-1\nitem-2\nitem-3\n");
	h_done(c);
}

static void
test_restart_after_sigterm(void **state)
{
	restart_mid_map(SIGTERM);
}

static void
test_restart_after_sigkill(void **state)
{
	restart_mid_map(SIGKILL);
}

/* Twice in a row, the second time right after the first restart, with
 * the same database: still everything there. */
static void
test_restart_twice(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	const char *id;

	assert_int_equal(h_run(c, NULL, NULL, "seq 8 > items"), 0);
	id = h_map_detach(c, NULL, "--items items --cmd 'echo item-{}'");
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	h_kill_scheduler(c, SIGKILL);
	h_restart_scheduler(c);
	h_kill_scheduler(c, SIGTERM);
	h_restart_scheduler(c);
	check_complete(c, id, 8);
	h_done(c);
}

static bool
first_chunks_done(const Troupe__Execution *e, void *arg)
{
	(void)arg;
	return e->counts != NULL && e->counts->succeeded >= 2048;
}

/* Checks that items 1..2048 of a running map read back as o1..o2048 and
 * the rest are not finished (or, once aborted, are ABORTED). */
static void
check_settled_outputs(h_cluster *c, const char *id, size_t n, bool aborted)
{
	Troupe__ItemResult **items;

	assert_int_equal(h_outputs(c, id, &items), n);
	for (size_t i = 0; i < n; i++) {
		char want[16];

		assert_int_equal(items[i]->index, i);
		if (i >= 2048 && aborted) {
			assert_int_equal(items[i]->state,
			                 TROUPE__ITEM_STATE__ITEM_ABORTED);
			continue;
		}
		if (i >= 2048) {
			assert_int_not_equal(
			    items[i]->state,
			    TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
			continue;
		}
		snprintf(want, sizeof(want), "o%zu", i + 1);
		assert_int_equal(items[i]->index, i);
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_int_equal(items[i]->output.len, strlen(want));
		assert_memory_equal(items[i]->output.data, want, strlen(want));
	}
}

/* The chunks of a running map that have settled leave the scheduler's
 * memory, and so do those not reached yet (it keeps only what runs);
 * outputs read back the same from the store, before and after a
 * restart, and an abort marks the items never read back ABORTED. */
static void
test_outputs_of_settled_chunks(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	const char *id;

	assert_int_equal(h_run(c, NULL, NULL, "seq 5000 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --replicas 2 --cmd 'while read x; "
	                  "do if [ $x -gt 2048 ]; then sleep 60; fi; echo "
	                  "o$x; done'");
	(void)h_wait_exec(c, id, first_chunks_done, NULL, 60000,
	                  "2048 items done");
	check_settled_outputs(c, id, 5000, false);
	h_kill_scheduler(c, SIGKILL);
	h_restart_scheduler(c);
	check_settled_outputs(c, id, 5000, false);
	assert_int_equal(h_run(c, NULL, NULL, "troupe abort %s", id), 0);
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_ABORTED);
	check_settled_outputs(c, id, 5000, true);
	h_done(c);
}

static bool
running_all(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->running >= *(uint64_t *)arg;
}

/* Items slow enough (6 s) to be running on both workers while the
 * scheduler is SIGKILLed and started again: the workers register again
 * listing them, the scheduler takes them back instead of running them
 * again, and each item runs exactly once.  Every run appends a line
 * `ITEM ATTEMPT` to a file, so a re-run shows there even if its result
 * were dropped; the output names the attempt that produced it. */
static void
test_restart_takes_back_running(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 2, .slots = 4});
	Troupe__ItemResult **items;
	const char          *id;
	char                *runs, **lines, want[64];
	uint64_t             eight = 8;
	int64_t              t0;

	assert_int_equal(h_run(c, NULL, NULL, "seq 8 > items; : > runs"), 0);
	/* Each item waits for the file gate, made once the scheduler is
	 * back: however slow the restart, they are still running. */
	id = h_map_detach(c, NULL,
	                  "--items items --cmd 'echo {} \"$TROUPE_ATTEMPT\" "
	                  ">> %s; while [ ! -e %s ]; do sleep 0.1; done; "
	                  "echo o{} \"$TROUPE_ATTEMPT\"'",
	                  h_quote(c, h_path(c, "runs")),
	                  h_quote(c, h_path(c, "gate")));
	(void)h_wait_exec(c, id, running_all, &eight, 30000, "8 items running");
	/* Every one started (its line written), so the kill lands while all
	 * eight run. */
	t0 = h_now_ms();
	assert_int_equal(h_wait_lines(c, h_path(c, "runs"), 8, 10000), 8);
	h_kill_scheduler(c, SIGKILL);
	h_restart_scheduler(c);
	fprintf(stderr,
	        "scheduler SIGKILLed and back, workers READY, %lld ms "
	        "after the items started\n",
	        (long long)(h_now_ms() - t0));
	assert_false(h_phase_done(h_execution(c, id)->phase));
	assert_int_equal(h_run(c, NULL, NULL, "touch gate"), 0);
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 8);
	for (int i = 0; i < 8; i++) {
		snprintf(want, sizeof(want), "o%d 1\n", i + 1);
		if (items[i]->attempts != 1 ||
		    items[i]->output.len != strlen(want) ||
		    memcmp(items[i]->output.data, want, strlen(want)) != 0)
			h_fail(c,
			       "item %d: %u attempts, output '%.*s'; want "
			       "1 attempt (taken back after the restart, not "
			       "run again), output '%s'",
			       i + 1, items[i]->attempts,
			       (int)items[i]->output.len,
			       (const char *)items[i]->output.data, want);
	}
	/* One run per item, as the side effect shows; sorted to compare. */
	assert_int_equal(h_run(c, &runs, NULL, "sort -n runs"), 0);
	if (h_split(c, runs, &lines) != 8)
		h_fail(c, "%d runs of 8 items (one per item wanted):\n%s",
		       h_lines(runs), runs);
	for (int i = 0; i < 8; i++) {
		snprintf(want, sizeof(want), "%d 1", i + 1);
		assert_string_equal(lines[i], want);
	}
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_restart_after_sigterm),
	    H_TEST(test_restart_after_sigkill),
	    H_TEST(test_restart_twice),
	    H_TEST(test_outputs_of_settled_chunks),
	    H_TEST(test_restart_takes_back_running),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
