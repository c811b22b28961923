/*
 * The scheduler killed with SIGKILL at random moments of a big map,
 * several times: after each restart the execution goes on, and at the end
 * every output is the expected one, each item recorded once, and no item
 * ran twice: the workers register again with the attempts they hold and
 * the new scheduler takes them back (every attempt count is 1).  Each
 * kill lands while the map still runs.
 *
 * The map runs through actor replicas (`while read x; do echo "o$x";
 * done`), the fastest path, beside a map of 200 items of one process each.
 * The map has the 100,000 items (under ASan on a 2-core machine,
 * 40 to 60 s with the restarts); TROUPE_FAULT_ITEMS sets another size and
 * TROUPE_FAULT_SEED replays another schedule of kills.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness_faults.h"
#include "skip.h"

#define KILLS 4
#define SMALL 200 /* items of the per-item map */

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10) : dflt;
}

static void
test_sched_sigkill_big_map(void **state)
{
	h_cluster         *c = h_start(&(h_opts){.workers = 2, .slots = 4});
	uint64_t           n = env_u64("TROUPE_FAULT_ITEMS", 100000);
	uint64_t           seed = env_u64("TROUPE_FAULT_SEED", 20261125);
	uint64_t           rng = seed, done_at[KILLS] = {0};
	int64_t            t0, restart_ms[KILLS];
	const char        *big, *small;
	hf_tally           tb, ts;
	Troupe__Execution *e;

	h_set_timeout(c, 60000);
	assert_int_equal(h_run(c, NULL, NULL,
	                       "seq %llu > items; seq %d > small",
	                       (unsigned long long)n, SMALL),
	                 0);
	t0 = h_now_ms();
	big = h_map_detach(c, NULL,
	                   "--items items --replicas 4 --cmd 'while read x; "
	                   "do echo \"o$x\"; done'");
	small = h_map_detach(c, NULL,
	                     "--items small --concurrency 2 --cmd 'echo p{}' "
	                     "--name small");
	(void)small;
	for (int k = 0; k < KILLS; k++) {
		/* A random moment within the k-th of KILLS equal parts of the
		 * map: once that many items are done, 0 to 500 ms later. */
		uint64_t at =
		    n * k / KILLS + hf_rand(&rng) % (n / KILLS / 2 + 1);
		int     ms = (int)(hf_rand(&rng) % 500);
		int64_t t;

		if (at == 0)
			at = 1;
		(void)h_wait_exec(c, big, hf_succeeded_at_least, &at, 120000,
		                  "progress");
		hf_sleep_ms(ms);
		e = h_execution(c, big);
		done_at[k] = e->counts->succeeded;
		/* A kill after the map ended would test nothing. */
		if (h_phase_done(e->phase) || done_at[k] >= n)
			h_fail(c,
			       "kill %d: the map ended (%llu of %llu done) "
			       "before the scheduler was killed",
			       k + 1, (unsigned long long)done_at[k],
			       (unsigned long long)n);
		fprintf(
		    stderr,
		    "kill %d: SIGKILL %d ms after %llu done, at %llu of %llu\n",
		    k + 1, ms, (unsigned long long)at,
		    (unsigned long long)done_at[k], (unsigned long long)n);
		h_kill_scheduler(c, SIGKILL);
		t = h_now_ms();
		h_restart_scheduler(c);
		restart_ms[k] = h_now_ms() - t;
		fprintf(stderr,
		        "kill %d: healthy again, workers READY, in %lld ms\n",
		        k + 1, (long long)restart_ms[k]);
	}

	e = h_wait_done(c, big, 240000);
	if (e->phase != TROUPE__PHASE__PHASE_SUCCEEDED)
		h_fail(c, "big map ended %d: %s", (int)e->phase, e->error);
	fprintf(stderr,
	        "%llu actor items through %d scheduler kills in %lld ms\n",
	        (unsigned long long)n, KILLS, (long long)(h_now_ms() - t0));
	assert_int_equal(h_wait_done(c, small, 120000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);

	tb = hf_check_outputs(c, big, n, hf_expect_seq, &(hf_seq){"o", ""});
	ts = hf_check_outputs(c, small, SMALL, hf_expect_seq,
	                      &(hf_seq){"p", "\n"});
	fprintf(stderr,
	        "re-run items: big map %llu (most attempts %u), per-item map "
	        "%llu (most attempts %u); seed %llu\n",
	        (unsigned long long)tb.reruns, tb.max_attempts,
	        (unsigned long long)ts.reruns, ts.max_attempts,
	        (unsigned long long)seed);
	/* The workers register again listing what they hold (the items
	 * their replicas have and the processes they run), and the new
	 * scheduler takes those attempts back: nothing runs twice. */
	if (tb.reruns != 0 || ts.reruns != 0)
		h_fail(c,
		       "%llu + %llu items ran again after scheduler restarts; "
		       "the workers' attempts should have been taken back",
		       (unsigned long long)tb.reruns,
		       (unsigned long long)ts.reruns);

	/* The CLI reads the same: one line per item, in order. */
	{
		char *out;

		assert_int_equal(h_run(c, &out, NULL,
		                       "troupe outputs %s | awk '$0 != \"o\" "
		                       "NR { bad++ } END { print NR, bad+0 }'",
		                       big),
		                 0);
		assert_int_equal(atoll(out), (long long)n);
		assert_string_equal(strchr(h_chomp(out), ' ') + 1, "0");
	}
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    HF_TEST(test_sched_sigkill_big_map),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
