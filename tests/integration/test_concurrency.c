/*
 * The limits hold, measured from the start and end times the item
 * processes record themselves:
 *  - an execution's --concurrency across the cluster,
 *  - each worker's --slots,
 *  - fair sharing: a small map is not starved by a big one running;
 *  - --cpu per item against the worker's declared CPU, and --mem as a
 *    replica's address-space cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

/* The stamping item command, shell-quoted for --cmd. */
static const char *
stamp_cmd(h_cluster *c, const char *secs, const char *file)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), H_STAMP_CMD, secs, file);
	return h_quote(c, cmd);
}

/* 2 workers x 4 slots = 8, --concurrency 3: never more than 3 at once,
 * and the limit is reached (so the check means something). */
static void
test_concurrency_held(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 2, .slots = 4});
	const char *stamps = h_path(c, "stamps");
	int64_t    *s, *e;
	char       *out;
	int         n, most;

	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 15 | troupe map --concurrency 3 --cmd %s",
	                       stamp_cmd(c, "0.3", stamps)),
	                 0);
	assert_int_equal(h_lines(out), 15);
	n = h_read_stamps(c, stamps, &s, &e);
	assert_int_equal(n, 15); /* each item ran exactly once */
	most = h_max_overlap(s, e, n);
	fprintf(stderr, "concurrency 3: at most %d items at once\n", most);
	assert_in_range(most, 2, 3);
	h_done(c);
}

/* Per worker: 2 workers x 2 slots, no --concurrency; each worker runs at
 * most 2 at once (by ItemResult.worker and the recorded times), both
 * workers are used, and together they run more than one worker could. */
static void
test_slots_per_worker(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	const char          *stamps = h_path(c, "stamps");
	const char          *id;
	Troupe__Execution   *ex;
	Troupe__ItemResult **items;
	int                  n1, n2, most;

	assert_int_equal(h_run(c, NULL, NULL, "seq 16 > items"), 0);
	id = h_map_detach(c, NULL, "--items items --cmd %s",
	                  stamp_cmd(c, "0.3", stamps));
	ex = h_wait_done(c, id, 60000);
	assert_int_equal(ex->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 16);

	most = h_overlap_of(items, 16, "w1", &n1);
	fprintf(stderr, "w1: %d items, at most %d at once\n", n1, most);
	assert_in_range(most, 1, 2);
	most = h_overlap_of(items, 16, "w2", &n2);
	fprintf(stderr, "w2: %d items, at most %d at once\n", n2, most);
	assert_in_range(most, 1, 2);
	assert_int_equal(n1 + n2, 16); /* every item names its worker */
	assert_true(n1 > 0 && n2 > 0);

	most = h_overlap_of(items, 16, NULL, NULL);
	fprintf(stderr, "cluster: at most %d at once\n", most);
	assert_in_range(most, 3, 4);
	h_done(c);
}

/* One worker, 2 slots.  A big map (20 items of 1 s, ~10 s: long enough
 * that a whole `troupe map` run fits in it under ASan) is running when a
 * small one (2 items) arrives: the small one finishes while the big one
 * is still running. */
static void
test_small_map_not_starved(void **state)
{
	h_cluster         *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	const char        *big;
	Troupe__Execution *e;
	char              *out;

	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items"), 0);
	big = h_map_detach(c, NULL, "--items items --cmd 'sleep 1; echo {}'");
	assert_int_equal(h_run(c, &out, NULL,
	                       "printf 'a\\nb\\n' | troupe map --cmd 'echo "
	                       "small-{}'"),
	                 0);
	assert_string_equal(out, "small-a\nsmall-b\n");
	e = h_execution(c, big);
	fprintf(stderr,
	        "big map when the small one ended: phase %d, %llu "
	        "of 20 done\n",
	        (int)e->phase, (unsigned long long)e->counts->succeeded);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_RUNNING);
	assert_true(e->counts->succeeded < 20);
	assert_int_equal(h_wait_done(c, big, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	h_done(c);
}

/* --cpu on a map run as a process per item: items asking for 0.6 CPU
 * run one at a time on a worker declaring 1 CPU, whatever its slots,
 * while items asking for 0.3 run side by side.  --mem on replicas caps
 * their address space (RLIMIT_AS, which `ulimit -v` prints in KiB). */
static void
test_resources(void **state)
{
	h_cluster *c = h_start(
	    &(h_opts){.workers = 1, .slots = 4, .worker_args = "--cpu 1000"});
	const char *big = h_path(c, "big"), *small = h_path(c, "small");
	int64_t    *s, *e;
	char       *out;
	int         n, most;

	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 3 | troupe map --cpu 600 --cmd %s",
	                       stamp_cmd(c, "0.5", big)),
	                 0);
	n = h_read_stamps(c, big, &s, &e);
	assert_int_equal(n, 3);
	most = h_max_overlap(s, e, n);
	fprintf(stderr, "--cpu 600 on 1 CPU: at most %d at once\n", most);
	assert_int_equal(most, 1);
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 3 | troupe map --cpu 300m --cmd %s",
	                       stamp_cmd(c, "1.5", small)),
	                 0);
	n = h_read_stamps(c, small, &s, &e);
	assert_int_equal(n, 3);
	most = h_max_overlap(s, e, n);
	fprintf(stderr, "--cpu 300m on 1 CPU: at most %d at once\n", most);
	assert_true(most >= 2);

	assert_int_equal(h_run(c, &out, NULL,
	                       "echo x | troupe map --replicas 1 --mem 64M "
	                       "--cmd 'while read x; do ulimit -v; done'"),
	                 0);
	assert_string_equal(out, "65536\n");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_concurrency_held),
	    H_TEST(test_slots_per_worker),
	    H_TEST(test_small_map_not_starved),
	    H_TEST(test_resources),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
