/*
 * Chaos: a fixed-seed random schedule of SIGKILLs of the scheduler, the
 * workers and actor replicas over a long actor map (and a map of one
 * process per item beside it), bounded in time.  Each killed daemon comes
 * back after a random pause.  At the end every output is checked item by
 * item against the expected one, and the number of items that ran again
 * (the sum of attempts - 1) is printed.  Each kind of kill (scheduler,
 * worker, replica) must have happened at least once, and the killed
 * workers and replicas must have cost some items a second attempt (they
 * held work when they died: a worker kill picks one that runs items when
 * there is one).
 *
 * Default: 20,000 actor items and 200 per-item items, at most 25 s of
 * chaos.  The per-item map (0.1 s an item, 2 at a time) sets how long the
 * chaos lasts: at least 10 s, long enough for each kind of kill, however
 * fast the actor map goes.  TROUPE_CHAOS_LONG=1 (the `chaos-long` make
 * target): 200,000 and 2,000, at most 240 s.  TROUPE_CHAOS_SEED replays
 * another schedule.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness_faults.h"
#include "skip.h"

#define WORKERS 3

typedef struct {
	hf_proc *p;
	int64_t  back_at; /* when to start it again; 0: running */
} chaos_worker;

/* The worker to kill: one of those up that the scheduler says run items
 * (ListWorkers), so that the kill costs work as a real fault would, else
 * any.  Without it a fast map can leave every kill landing on an idle
 * worker, and the reruns checked at the end never happen. */
static int
chaos_pick_worker(h_cluster *c, const chaos_worker *w, uint64_t *rng)
{
	Troupe__ListWorkersRequest req = TROUPE__LIST_WORKERS_REQUEST__INIT;
	Troupe__ListWorkersReply  *rep = NULL;
	int                        busy[WORKERS], n = 0;

	if (H_CALL(c, ListWorkers, &req, list_workers, &rep) == 0)
		for (size_t k = 0; k < rep->n_workers; k++) {
			const Troupe__WorkerInfo *wi = rep->workers[k];
			int                       i =
                            wi->name[0] == 'w' ? atoi(wi->name + 1) - 1 : -1;

			if (i >= 0 && i < WORKERS && w[i].back_at == 0 &&
			    wi->state == TROUPE__WORKER_STATE__WORKER_READY &&
			    wi->running > 0 && n < WORKERS)
				busy[n++] = i;
		}
	if (n > 0)
		return busy[hf_rand(rng) % (uint64_t)n];
	return (int)(hf_rand(rng) % WORKERS);
}

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10) : dflt;
}

static void
test_chaos(void **state)
{
	bool       longrun = getenv("TROUPE_CHAOS_LONG") != NULL;
	uint64_t   n = longrun ? 200000 : 20000;
	int        small = longrun ? 2000 : 200;
	int64_t    bound_ms = longrun ? 240000 : 25000;
	uint64_t   seed = env_u64("TROUPE_CHAOS_SEED", 4242);
	uint64_t   rng = seed;
	h_cluster *c =
	    h_start(&(h_opts){.sched_args = "--worker-timeout 3000"});
	chaos_worker w[WORKERS];
	const char  *big, *per;
	int          kills[3] = {0, 0, 0}; /* scheduler, workers, replicas */
	int64_t      t0, end;
	hf_tally     tb, tp;
	Troupe__Execution *e;

	h_set_timeout(c, 120000);
	for (int i = 0; i < WORKERS; i++) {
		char name[8];

		snprintf(name, sizeof(name), "w%d", i + 1);
		w[i].p = hf_spawn_worker(c, name, 2, NULL);
		w[i].back_at = 0;
	}
	h_wait_workers(c, WORKERS, 30000);
	assert_int_equal(h_run(c, NULL, NULL,
	                       "seq %llu > items; seq %d > small",
	                       (unsigned long long)n, small),
	                 0);
	big = h_map_detach(c, NULL,
	                   "--items items --replicas 4 --cmd 'while read x; "
	                   "do echo \"o$x\"; done'");
	per = h_map_detach(c, NULL,
	                   "--items small --concurrency 2 --cmd 'sleep 0.1; "
	                   "echo p{}'");

	t0 = h_now_ms();
	end = t0 + bound_ms;
	for (;;) {
		int64_t now = h_now_ms();
		int     pause = 200 + (int)(hf_rand(&rng) % 1000);
		int     what = (int)(hf_rand(&rng) % 10);

		/* Until each kind was killed once, a round kills a kind not
		 * killed yet: replicas first, as they live only while the
		 * fast actor map runs (a round that finds none while they
		 * start is tried again), then a worker (the per-item map
		 * keeps one busy), then the scheduler. */
		if (kills[2] == 0)
			what = 9;
		else if (kills[1] == 0)
			what = 4;
		else if (kills[0] == 0)
			what = 0;

		/* Bring back the workers whose pause is over. */
		for (int i = 0; i < WORKERS; i++)
			if (w[i].back_at != 0 && now >= w[i].back_at) {
				hf_respawn(c, w[i].p);
				w[i].back_at = 0;
			}
		e = h_execution(c, big);
		if (now >= end || (h_phase_done(e->phase) &&
		                   h_phase_done(h_execution(c, per)->phase)))
			break;
		hf_sleep_ms(pause);
		if (what < 3) {
			/* The scheduler, 30 %: down for 0 to 1 s. */
			h_kill_scheduler(c, SIGKILL);
			kills[0]++;
			hf_sleep_ms((int)(hf_rand(&rng) % 1000));
			h_restart_scheduler(c);
			fprintf(stderr, "chaos +%lld ms: scheduler killed\n",
			        (long long)(h_now_ms() - t0));
		} else if (what < 6) {
			/* A worker, 30 %: down for 0.5 to 3 s (one of them
			 * stays up so the map always moves). */
			int i = chaos_pick_worker(c, w, &rng), up = 0;

			for (int k = 0; k < WORKERS; k++)
				up += w[k].back_at == 0;
			if (w[i].back_at != 0 || up < 2)
				continue;
			hf_kill(c, w[i].p, SIGKILL);
			kills[1]++;
			w[i].back_at =
			    h_now_ms() + 500 + (int64_t)(hf_rand(&rng) % 2500);
			fprintf(stderr, "chaos +%lld ms: w%d killed\n",
			        (long long)(h_now_ms() - t0), i + 1);
		} else {
			/* A replica, 40 %. */
			int pids[32], np;

			np = hf_replica_pids(c, NULL, NULL, false, pids, 32);
			if (np == 0)
				continue;
			np = pids[hf_rand(&rng) % (uint64_t)np];
			if (kill(np, SIGKILL) == 0)
				kills[2]++;
			fprintf(stderr, "chaos +%lld ms: replica %d killed\n",
			        (long long)(h_now_ms() - t0), np);
		}
	}
	/* Everything back, then the maps complete. */
	for (int i = 0; i < WORKERS; i++)
		if (w[i].back_at != 0) {
			hf_respawn(c, w[i].p);
			w[i].back_at = 0;
		}
	fprintf(stderr,
	        "chaos over after %lld ms: %d scheduler, %d worker, %d replica "
	        "kills (seed %llu)\n",
	        (long long)(h_now_ms() - t0), kills[0], kills[1], kills[2],
	        (unsigned long long)seed);
	/* A chaos run that killed nothing of some kind would pass without
	 * testing that kind of fault. */
	if (kills[0] == 0 || kills[1] == 0 || kills[2] == 0)
		h_fail(c,
		       "chaos killed %d schedulers, %d workers, %d replicas: "
		       "each kind must be killed at least once",
		       kills[0], kills[1], kills[2]);
	e = h_wait_done(c, big, longrun ? 600000 : 180000);
	if (e->phase != TROUPE__PHASE__PHASE_SUCCEEDED)
		h_fail(c, "the actor map ended %d: %s", (int)e->phase,
		       e->error);
	e = h_wait_done(c, per, 120000);
	if (e->phase != TROUPE__PHASE__PHASE_SUCCEEDED)
		h_fail(c, "the per-item map ended %d: %s", (int)e->phase,
		       e->error);
	fprintf(stderr, "both maps done %lld ms after the start\n",
	        (long long)(h_now_ms() - t0));
	tb = hf_check_outputs(c, big, n, hf_expect_seq, &(hf_seq){"o", ""});
	tp = hf_check_outputs(c, per, (uint64_t)small, hf_expect_seq,
	                      &(hf_seq){"p", "\n"});
	fprintf(stderr,
	        "re-run items: %llu of %llu actor items (most attempts %u), "
	        "%llu of %d per-item items (most attempts %u)\n",
	        (unsigned long long)tb.reruns, (unsigned long long)n,
	        tb.max_attempts, (unsigned long long)tp.reruns, small,
	        tp.max_attempts);
	/* Workers and replicas die holding items: those run again. */
	assert_true(tb.reruns + tp.reruns > 0);
	hf_stop_all(c);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    HF_TEST(test_chaos),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
