/*
 * Fault tests that kill real processes: a worker killed in the middle of
 * a map (its items run again elsewhere, out of the system's budget, not
 * the user's retries), and a worker stopped with SIGTERM (it lets its
 * running items finish and exits 0).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_worker_killed_mid_map),
	    H_TEST(test_worker_sigterm_drains),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
