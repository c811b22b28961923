/*
 * A worker cut off from the network and coming back, across "hosts" made
 * of network namespaces: the scheduler in one, two workers in two others,
 * each linked to the scheduler's by a veth pair, the worker link on TCP
 * with a token (the API stays on the ipc socket of the cluster's
 * directory, which namespaces do not separate).  Mid-map, w1's end of its
 * link goes down: the scheduler declares w1 lost after --worker-timeout
 * and runs its items on w2; w1 finishes them meanwhile.  The link comes
 * back: w1 registers again holding those results, which are ignored.
 * Every output names the worker and attempt that produced it, and must be
 * the one the item's record names: no output recorded twice or from a
 * stale attempt.
 *
 * Needs root and `ip netns`; skipped (with the reason) otherwise.  The
 * namespaces are deleted at the end whatever happens.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_faults.h"
#include "skip.h"

#define PORT 7411

/* Waits until GetHealth answers on a fresh connection, at most ms. */
static void
wait_health(h_cluster *c, hf_proc *sched, int ms)
{
	int64_t deadline = h_now_ms() + ms;

	for (;;) {
		troupe_client           *cl = NULL;
		Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
		Troupe__GetHealthReply  *rep = NULL;
		bool                     ok = false;

		if (!hf_alive(c, sched))
			h_fail(c, "the scheduler died while starting");
		if (troupe_client_open(h_api_addr(c), NULL, &cl) == 0) {
			troupe_client_set_timeout(cl, 2000);
			ok = TROUPE_CALL(cl, GetHealth, &req, get_health,
			                 &rep) == 0;
			if (rep != NULL)
				protobuf_c_message_free_unpacked(&rep->base,
				                                 NULL);
			troupe_client_close(cl);
		}
		if (ok)
			return;
		if (h_now_ms() >= deadline) {
			hf_dump_logs(c);
			h_fail(c, "no GetHealth within %d ms", ms);
		}
		hf_sleep_ms(50);
	}
}

/* Whether the worker called name is READY. */
static bool
ready(h_cluster *c, const char *name)
{
	Troupe__ListWorkersRequest req = TROUPE__LIST_WORKERS_REQUEST__INIT;
	Troupe__ListWorkersReply  *rep = NULL;

	assert_int_equal(H_CALL(c, ListWorkers, &req, list_workers, &rep), 0);
	for (size_t i = 0; i < rep->n_workers; i++)
		if (strcmp(rep->workers[i]->name, name) == 0)
			return rep->workers[i]->state ==
			       TROUPE__WORKER_STATE__WORKER_READY;
	return false;
}

static void
wait_ready(h_cluster *c, const char *name, int ms)
{
	int64_t deadline = h_now_ms() + ms;

	while (!ready(c, name)) {
		if (h_now_ms() >= deadline) {
			hf_dump_logs(c);
			h_fail(c, "worker %s not READY within %d ms", name, ms);
		}
		hf_sleep_ms(50);
	}
}

/* "INDEX WORKER ATTEMPT\n" as the item's record says. */
static size_t
expect_record(uint64_t i, char *buf, size_t len, void *arg)
{
	Troupe__ItemResult **items = arg;
	int n = snprintf(buf, len, "%llu %s %u\n", (unsigned long long)i,
	                 items[i]->worker, items[i]->attempts);

	return (size_t)n < len ? (size_t)n : len - 1;
}

static void
test_partition_and_return(void **state)
{
	h_cluster           *c;
	char                 ns[3][32], veth[4][16], token[64], tokfile[4200];
	char                 url[2][64];
	const char          *names[2] = {"w1", "w2"};
	hf_proc             *sched, *w[2];
	Troupe__ItemResult **items;
	const char          *id;
	uint64_t             four = 4, two = 2;
	int64_t              t0, lost;
	int                  pid = (int)getpid(), again = 0;
	FILE                *f;
	char                *log;

	hf_need_root("creating network namespaces");
	if (hf_sh("ip netns list >/dev/null 2>&1") != 0) {
		T_SKIP("`ip netns` is not available");
	}
	/* Names unique to this run; interface names fit in 15 bytes. */
	for (int i = 0; i < 3; i++)
		snprintf(ns[i], sizeof(ns[i]), "trp%d%c", pid, 'a' + i);
	snprintf(veth[0], sizeof(veth[0]), "tp%dab", pid % 1000000);
	snprintf(veth[1], sizeof(veth[1]), "tp%dba", pid % 1000000);
	snprintf(veth[2], sizeof(veth[2]), "tp%dac", pid % 1000000);
	snprintf(veth[3], sizeof(veth[3]), "tp%dca", pid % 1000000);
	for (int i = 0; i < 3; i++) {
		if (hf_sh("ip netns add %s", ns[i]) != 0) {
			T_SKIP("`ip netns add` failed (no permission for "
			       "namespaces here?)");
		}
		hf_at_end("ip netns del %s", ns[i]);
		assert_int_equal(hf_sh("ip -n %s link set lo up", ns[i]), 0);
	}
	/* a <-> b on 10.231.1.0/24, a <-> c on 10.231.2.0/24. */
	for (int k = 0; k < 2; k++) {
		const char *mine = veth[2 * k], *peer = veth[2 * k + 1];

		assert_int_equal(
		    hf_sh("ip link add %s type veth peer name %s && "
		          "ip link set %s netns %s && ip link set %s netns %s "
		          "&& ip -n %s addr add 10.231.%d.1/24 dev %s && "
		          "ip -n %s addr add 10.231.%d.2/24 dev %s && "
		          "ip -n %s link set %s up && ip -n %s link set %s up",
		          mine, peer, mine, ns[0], peer, ns[k + 1], ns[0],
		          k + 1, mine, ns[k + 1], k + 1, peer, ns[0], mine,
		          ns[k + 1], peer),
		    0);
		snprintf(url[k], sizeof(url[k]), "tcp://10.231.%d.1:%d", k + 1,
		         PORT);
	}

	c = h_start(&(h_opts){.no_scheduler = true});
	snprintf(token, sizeof(token), "tok-%d-%lld", pid,
	         (long long)h_now_ms());
	snprintf(tokfile, sizeof(tokfile), "%s", h_path(c, "token"));
	assert_non_null(f = fopen(tokfile, "w"));
	fprintf(f, "%s\n", token);
	fclose(f);
	chmod(tokfile, 0600); /* the daemons refuse a token others can read */
	/* Our own client finds the token here (the CLI gets --token-file). */
	setenv("TROUPE_TOKEN", token, 1);

	{
		char        listen[64];
		char *const argv[] = {(char *)hf_bin(c, "troupe-scheduler"),
		                      "--home",
		                      (char *)h_dir(c),
		                      "--worker-listen",
		                      listen,
		                      "--token-file",
		                      tokfile,
		                      "--worker-timeout",
		                      "2000",
		                      NULL};

		snprintf(listen, sizeof(listen), "tcp://0.0.0.0:%d", PORT);
		sched = hf_spawn(c, "scheduler", ns[0], NULL, argv);
	}
	wait_health(c, sched, 30000);
	for (int k = 0; k < 2; k++) {
		char        envw[16], home[4200];
		char *const env[] = {envw, NULL};
		char *const argv[] = {(char *)hf_bin(c, "troupe-worker"),
		                      "--home",
		                      home,
		                      "--scheduler",
		                      url[k],
		                      "--token-file",
		                      tokfile,
		                      "--name",
		                      (char *)names[k],
		                      "--slots",
		                      "2",
		                      "--allow-root", /* namespaces: root */
		                      NULL};

		snprintf(envw, sizeof(envw), "HFW=%s", names[k]);
		snprintf(home, sizeof(home), "%s", h_path(c, "%s", names[k]));
		assert_int_equal(h_run(c, NULL, NULL, "mkdir %s", names[k]), 0);
		w[k] = hf_spawn(c, names[k], ns[k + 1], env, argv);
	}
	wait_ready(c, "w1", 30000);
	wait_ready(c, "w2", 30000);

	assert_int_equal(h_run(c, NULL, NULL, "seq 24 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--token-file token --items items --cmd 'sleep 1; "
	                  "echo \"$TROUPE_ITEM $HFW $TROUPE_ATTEMPT\"'");
	(void)h_wait_exec(c, id, hf_running_at_least, &four, 30000,
	                  "4 items running");
	(void)h_wait_exec(c, id, hf_succeeded_at_least, &two, 30000,
	                  "2 items done");

	/* Cut w1 off. */
	assert_int_equal(hf_sh("ip -n %s link set %s down", ns[1], veth[1]), 0);
	t0 = h_now_ms();
	while (ready(c, "w1") && h_now_ms() - t0 < 20000)
		hf_sleep_ms(20);
	lost = h_now_ms() - t0;
	fprintf(stderr, "w1 cut off; declared lost after %lld ms\n",
	        (long long)lost);
	if (ready(c, "w1"))
		h_fail(c, "w1 still READY 20 s after its link went down");
	/* Its running items finish meanwhile, unheard; w2 goes on. */
	hf_sleep_ms(2500);
	assert_true(hf_alive(c, w[0]));
	assert_false(h_phase_done(h_execution(c, id)->phase));

	/* Back: w1 registers again with its stale results. */
	assert_int_equal(hf_sh("ip -n %s link set %s up", ns[1], veth[1]), 0);
	t0 = h_now_ms();
	wait_ready(c, "w1", 60000);
	fprintf(stderr, "w1 back and READY %lld ms after its link came up\n",
	        (long long)(h_now_ms() - t0));
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	hf_sleep_ms(1000); /* any late report would land by now */

	assert_int_equal(h_outputs(c, id, &items), 24);
	for (int i = 0; i < 24; i++)
		if (items[i]->attempts > 1)
			again++;
	(void)hf_check_outputs(c, id, 24, expect_record, items);
	fprintf(stderr, "%d items ran again on w2 while w1 was cut off\n",
	        again);
	assert_true(again >= 1);
	/* w1 did come back holding what it had finished. */
	log = h_slurp(c, h_path(c, "h-w1.log"));
	h_assert_contains(log, "registered again");
	{
		const char *p = strstr(log, "items and ");
		int         held = p != NULL ? atoi(p + 10) : 0;

		fprintf(stderr, "w1 came back holding %d results\n", held);
		assert_true(held >= 1);
	}

	/* Both take new work. */
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "seq 8 | troupe map --token-file token --cmd "
	          "'sleep 0.5; echo \"$HFW\"' | sort -u | wc -l | grep -qx 2"),
	    0);
	unsetenv("TROUPE_TOKEN");
	hf_stop_all(c);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    HF_TEST(test_partition_and_return),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
