/*
 * Execution semantics under stops and limits, with real processes:
 * - --execution-timeout: the execution ends TIMED_OUT, its running
 *   processes are killed, pending items never start, finished outputs
 *   stay; the deadline holds across a scheduler crash;
 * - abort of an actor map: pending items never start, the replicas'
 *   current items are stopped (no process of theirs is left), finished
 *   outputs stay, phase ABORTED;
 * - --min-success-ratio: fails fast once it cannot be met (the rest is
 *   aborted, never started), and succeeds when met with failed items'
 *   outputs null;
 * - an abort reaches a worker that is draining (SIGTERM) and stops its
 *   items;
 * - per-item --timeout with --retries: the attempt that hangs is killed
 *   and the retry succeeds;
 * - a real `troupe map` killed in the middle of its upload: the
 *   execution FAILS "upload abandoned" after --upload-timeout;
 * - SIGTERM on the scheduler commits every result it had and exits 0; a
 *   new one resumes the map; SIGTERM on a worker running actor items
 *   drains and exits 0, and the map completes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_faults.h"
#include "skip.h"

/* The lines of file (under the cluster's directory) as a set of numbers:
 * seen[k] is set for each line k (1..max). */
static int
read_started(h_cluster *c, const char *file, bool *seen, int max)
{
	char  *text = h_slurp(c, h_path(c, "%s", file));
	char **lines;
	int    n;

	memset(seen, 0, (size_t)(max + 1) * sizeof(bool));
	if (text == NULL)
		return 0;
	n = h_split(c, text, &lines);
	for (int i = 0; i < n; i++) {
		int k = atoi(lines[i]);

		if (k >= 1 && k <= max)
			seen[k] = true;
	}
	return n;
}

static bool
two_done_two_running(const Troupe__Execution *e, void *arg)
{
	return e->counts->succeeded >= 2 && e->counts->running >= 2;
}

/* Items 1 and 2 are quick, the others hang: 2 slots, 6 items, a 5 s
 * execution timeout (time for items 3 and 4 to start under ASan). */
static void
test_execution_timeout(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__Execution   *e;
	Troupe__ItemResult **items;
	const char          *id;
	char                *err, envid[64];
	bool                 seen[7];
	int64_t              t0 = h_now_ms();

	assert_int_equal(h_run(c, NULL, NULL, "seq 6 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --execution-timeout 5 --cmd 'echo {} "
	                  ">> started; if [ {} -le 2 ]; then echo fast{}; else "
	                  "exec sleep 60; fi'");
	(void)h_wait_exec(c, id, two_done_two_running, NULL, 30000,
	                  "2 done, 2 running");
	e = h_wait_done(c, id, 30000);
	fprintf(stderr, "ended %d after %lld ms: %s\n", (int)e->phase,
	        (long long)(h_now_ms() - t0), e->error);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_TIMED_OUT);
	assert_int_equal(e->counts->succeeded, 2);
	assert_int_equal(e->counts->running, 0);
	assert_int_equal(e->counts->pending, 0);
	assert_int_equal(h_outputs(c, id, &items), 6);
	assert_memory_equal(items[0]->output.data, "fast1\n", 6);
	assert_memory_equal(items[1]->output.data, "fast2\n", 6);
	for (int i = 2; i < 6; i++)
		assert_int_not_equal(items[i]->state,
		                     TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	/* The two that hung are killed; 5 and 6 never started. */
	snprintf(envid, sizeof(envid), "TROUPE_EXECUTION=%s", id);
	hf_wait_no_procs(c, envid, NULL, 10000, "after the execution timeout");
	assert_int_equal(read_started(c, "started", seen, 6), 4);
	assert_false(seen[5] || seen[6]);
	/* The CLI says so, with a non-zero exit. */
	assert_int_not_equal(h_run(c, NULL, &err,
	                           "seq 2 | troupe map --execution-timeout 1 "
	                           "--cmd 'sleep 30'"),
	                     0);
	h_assert_icontains(err, "TIMED_OUT");
	h_assert_contains(err, "ex-");
	snprintf(envid, sizeof(envid), "TROUPE_EXECUTION=%.*s",
	         (int)strcspn(strstr(err, "ex-"), " :"), strstr(err, "ex-"));
	hf_wait_no_procs(c, envid, NULL, 10000, "after the execution timeout");
	h_done(c);
}

static bool
running2(const Troupe__Execution *e, void *arg)
{
	return e->counts->running >= 2;
}

/* The scheduler is killed before the execution's deadline and comes back
 * after it: the execution ends TIMED_OUT at once, not a whole timeout
 * later, and not never. */
static void
test_execution_timeout_across_crash(void **state)
{
	h_cluster         *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__Execution *e;
	const char        *id;
	char               envid[64];
	int64_t            t;

	id = h_map_detach(c, "1\n2\n3\n4\n",
	                  "--execution-timeout 3 --cmd 'exec sleep 60'");
	(void)h_wait_exec(c, id, running2, NULL, 30000, "2 running");
	h_kill_scheduler(c, SIGKILL);
	hf_sleep_ms(3500);
	t = h_now_ms();
	h_restart_scheduler(c);
	e = h_wait_done(c, id, 10000);
	fprintf(stderr, "TIMED_OUT %lld ms after the restart\n",
	        (long long)(h_now_ms() - t));
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_TIMED_OUT);
	snprintf(envid, sizeof(envid), "TROUPE_EXECUTION=%s", id);
	hf_wait_no_procs(c, envid, NULL, 10000, "after the execution timeout");
	h_done(c);
}

static bool
some_done_two_busy(const Troupe__Execution *e, void *arg)
{
	return e->counts->succeeded >= 4 && e->counts->running >= 2;
}

/* Abort an actor map: 2 replicas, items 1-4 quick, the rest hang in the
 * replica (sleep 60 as a child of the replica's shell). */
static void
test_abort_actor_map(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__Execution   *e;
	Troupe__ItemResult **items;
	const char          *id;
	char                *out, tag[64];
	bool                 seen[21];
	int                  started;

	snprintf(tag, sizeof(tag), "HFTAG=abort-%d", (int)getpid());
	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --replicas 2 --env %s --cmd 'while "
	                  "read x; do echo $x >> started; if [ $x -gt 4 ]; "
	                  "then sleep 60; fi; echo o$x; done'",
	                  tag);
	(void)h_wait_exec(c, id, some_done_two_busy, NULL, 30000,
	                  "4 done, 2 running");
	/* Running is counted once the worker has the items; their replicas
	 * start sleep a moment later. */
	assert_int_equal(hf_wait_procs(tag, "sleep", 2, 10000), 2);
	assert_int_equal(h_run(c, &out, NULL, "troupe abort %s", id), 0);
	e = h_wait_done(c, id, 30000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_ABORTED);
	assert_int_equal(e->counts->succeeded, 4);
	assert_int_equal(e->counts->aborted, 16);
	assert_int_equal(h_outputs(c, id, &items), 20);
	for (int i = 0; i < 4; i++) {
		char want[8];

		snprintf(want, sizeof(want), "o%d", i + 1);
		assert_int_equal(items[i]->output.len, strlen(want));
		assert_memory_equal(items[i]->output.data, want, strlen(want));
	}
	for (int i = 4; i < 20; i++)
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_ABORTED);
	/* The replicas' current items are stopped... */
	hf_wait_no_procs(c, tag, "sleep", 10000, "the aborted items");
	/* ...and only those that were running ever started. */
	hf_sleep_ms(500);
	started = read_started(c, "started", seen, 20);
	fprintf(stderr, "%d items started before the abort\n", started);
	assert_true(started <= 4 + 2 + 2); /* + one prefetched per replica */
	/* The environment still serves. */
	assert_int_equal(
	    h_run(c, &out, NULL,
	          "seq 3 | troupe map --replicas 2 --env %s --cmd 'while read "
	          "x; do echo $x >> started2; echo o$x; done'",
	          tag),
	    0);
	assert_string_equal(out, "o1\no2\no3\n");
	h_done(c);
}

/* 20 items, --min-success-ratio 0.9 (18 needed); items 1-3 fail at once,
 * the others take 1 s each on 2 slots: the third failure makes 18
 * impossible, and the execution FAILS then, not 10 s later; the items
 * not yet started never start. */
static void
test_ratio_fails_fast(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__Execution   *e;
	Troupe__ItemResult **items;
	const char          *id;
	bool                 seen[21];
	int                  started;
	int64_t              t0;
	char                 envid[64];

	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items"), 0);
	t0 = h_now_ms();
	id = h_map_detach(c, NULL,
	                  "--items items --min-success-ratio 0.9 --cmd 'echo "
	                  "{} >> started; if [ {} -le 3 ]; then exit 1; fi; "
	                  "sleep 1; echo ok{}'");
	e = h_wait_done(c, id, 30000);
	fprintf(stderr, "ratio 0.9: ended %d after %lld ms: %s\n",
	        (int)e->phase, (long long)(h_now_ms() - t0), e->error);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
	assert_int_equal(e->counts->failed, 3);
	assert_true(e->counts->aborted >= 15);
	assert_true(h_now_ms() - t0 < 8000);
	snprintf(envid, sizeof(envid), "TROUPE_EXECUTION=%s", id);
	hf_wait_no_procs(c, envid, NULL, 10000, "after failing fast");
	hf_sleep_ms(300);
	started = read_started(c, "started", seen, 20);
	assert_true(started <= 5);
	assert_int_equal(h_outputs(c, id, &items), 20);
	for (int i = 0; i < 20; i++)
		if (items[i]->state == TROUPE__ITEM_STATE__ITEM_ABORTED)
			assert_int_equal(items[i]->output.len, 0);

	/* 0.8 (16 needed) with 3 failures: SUCCEEDED, failed outputs null. */
	assert_int_equal(h_run(c, NULL, NULL, "rm -f started"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --min-success-ratio 0.8 --cmd 'if [ "
	                  "{} -le 3 ]; then echo bad >&2; exit 1; fi; echo "
	                  "ok{}'");
	e = h_wait_done(c, id, 60000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(e->counts->succeeded, 17);
	assert_int_equal(e->counts->failed, 3);
	assert_int_equal(e->counts->running, 0);
	assert_int_equal(h_outputs(c, id, &items), 20);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_FAILED);
		assert_int_equal(items[i]->output.len, 0);
		h_assert_contains(items[i]->error, "bad");
	}
	{
		char *out;

		assert_int_equal(h_run(c, &out, NULL,
		                       "troupe outputs --json %s | head -1",
		                       id),
		                 0);
		h_assert_contains(out, "\"output\":null");
	}
	h_done(c);
}

/* --timeout 1 --retries 1: the first attempt hangs and is killed at 1 s,
 * the second succeeds. */
static void
test_item_timeout_then_retry(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__ItemResult **items;
	const char          *id;
	int64_t              t0 = h_now_ms();
	char                 envid[64];

	id = h_map_detach(c, "a\nb\n",
	                  "--timeout 1 --retries 1 --cmd 'if [ "
	                  "\"$TROUPE_ATTEMPT\" = 1 ]; then exec sleep 60; fi; "
	                  "echo second-{}'");
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	fprintf(stderr, "done in %lld ms\n", (long long)(h_now_ms() - t0));
	assert_true(h_now_ms() - t0 < 20000);
	assert_int_equal(h_outputs(c, id, &items), 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(items[i]->attempts, 2);
	assert_memory_equal(items[0]->output.data, "second-a\n", 9);
	assert_memory_equal(items[1]->output.data, "second-b\n", 9);
	snprintf(envid, sizeof(envid), "TROUPE_EXECUTION=%s", id);
	hf_wait_no_procs(c, envid, NULL, 5000, "after the timeouts");
	h_done(c);
}

static bool
running2_of(const Troupe__Execution *e, void *arg)
{
	return e->counts->running >= 2;
}

/* A worker told to stop (SIGTERM) drains: it lets its items run for up
 * to its drain timeout.  An abort meanwhile must still stop them: the
 * worker exits soon after, not at the end of its drain timeout. */
static void
test_abort_reaches_draining_worker(void **state)
{
	h_cluster  *c = h_start(NULL);
	hf_proc    *w = hf_spawn_worker(c, "w1", 2, NULL);
	const char *id;
	char        envid[64];
	siginfo_t   si = {0};
	int64_t     t;

	h_wait_workers(c, 1, 30000);
	id = h_map_detach(c, "1\n2\n", "--cmd 'exec sleep 40'");
	(void)h_wait_exec(c, id, running2_of, NULL, 30000, "2 running");
	assert_int_equal(kill(hf_pid(w), SIGTERM), 0);
	hf_sleep_ms(1000);
	assert_int_equal(h_run(c, NULL, NULL, "troupe abort %s", id), 0);
	t = h_now_ms();
	snprintf(envid, sizeof(envid), "TROUPE_EXECUTION=%s", id);
	hf_wait_no_procs(c, envid, NULL, 10000, "aborted on a draining worker");
	/* With nothing left to run, it ends its drain by itself (look
	 * without reaping: hf_kill reaps it below). */
	while (h_now_ms() - t < 10000) {
		si.si_pid = 0;
		if (waitid(P_PID, (id_t)hf_pid(w), &si,
		           WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid != 0)
			break;
		hf_sleep_ms(20);
	}
	fprintf(stderr, "draining worker exited %lld ms after the abort\n",
	        (long long)(h_now_ms() - t));
	assert_int_equal(si.si_pid, hf_pid(w));
	assert_int_equal(si.si_code, CLD_EXITED);
	assert_int_equal(si.si_status, 0);
	(void)hf_kill(c, w, SIGTERM);
	h_done(c);
}

/* SIGTERM on the scheduler in the middle of an actor map: it exits 0
 * promptly, having committed every result it had (a new scheduler counts
 * at least as many done as the last answer before the stop), and the new
 * one completes the map. */
static void
test_scheduler_sigterm_commits(void **state)
{
	h_cluster         *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	Troupe__Execution *e;
	const char        *id;
	uint64_t           some = 300, before, after;
	int64_t            t;
	int                st;
	hf_tally           tally;

	assert_int_equal(h_run(c, NULL, NULL, "seq 3000 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --replicas 4 --cmd 'while read x; do "
	                  "echo o$x; done'");
	(void)h_wait_exec(c, id, hf_succeeded_at_least, &some, 60000,
	                  "300 items done");
	before = h_execution(c, id)->counts->succeeded;
	t = h_now_ms();
	st = h_kill_scheduler(c, SIGTERM);
	fprintf(stderr, "scheduler stopped %lld ms after SIGTERM\n",
	        (long long)(h_now_ms() - t));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail(c, "scheduler: wait status %#x after SIGTERM", st);
	assert_true(h_now_ms() - t < 10000);
	h_restart_scheduler(c);
	e = h_execution(c, id);
	after = e->counts->succeeded;
	fprintf(stderr, "done: %llu before the stop, %llu after the restart\n",
	        (unsigned long long)before, (unsigned long long)after);
	assert_true(after >= before);
	assert_int_equal(h_wait_done(c, id, 120000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	tally =
	    hf_check_outputs(c, id, 3000, hf_expect_seq, &(hf_seq){"o", ""});
	fprintf(stderr, "%llu items ran again\n",
	        (unsigned long long)tally.reruns);
	assert_true(tally.max_attempts <= 2);
	h_done(c);
}

/* SIGTERM on a worker whose replicas are serving: it exits 0 within its
 * drain timeout, and the map completes on the other worker. */
static void
test_worker_sigterm_drains_actors(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	const char *id;
	uint64_t    some = 10;
	int         st;
	int64_t     t;
	hf_tally    tally;
	char        tag[64];

	snprintf(tag, sizeof(tag), "HFTAG=drain-%d", (int)getpid());
	assert_int_equal(h_run(c, NULL, NULL, "seq 80 > items"), 0);
	id = h_map_detach(c, NULL,
	                  "--items items --replicas 4 --env %s --cmd 'while "
	                  "read x; do sleep 0.1; echo o$x; done'",
	                  tag);
	(void)h_wait_exec(c, id, hf_succeeded_at_least, &some, 30000,
	                  "10 items done");
	t = h_now_ms();
	st = h_kill_worker(c, 0, SIGTERM);
	fprintf(stderr, "w1 drained and exited in %lld ms\n",
	        (long long)(h_now_ms() - t));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail(c, "w1: wait status %#x after SIGTERM, want exit 0", st);
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	tally = hf_check_outputs(c, id, 80, hf_expect_seq, &(hf_seq){"o", ""});
	fprintf(stderr, "%llu items ran again\n",
	        (unsigned long long)tally.reruns);
	assert_true(tally.max_attempts <= 2);
	h_done(c);
	/* No replica of the stopped worker is left behind. */
	hf_wait_no_procs(NULL, tag, NULL, 5000, "after the workers stopped");
}

/* Creates an unsealed execution of `n` items (echo) through the API, as a
 * client in the middle of an upload; returns its id (kept by c). */
static const char *
start_upload(h_cluster *c, int n)
{
	Troupe__CreateExecutionRequest req =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionReply *rep = NULL;
	ProtobufCBinaryData           items[8];
	char                          buf[8][8];

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		items[i].len =
		    (size_t)snprintf(buf[i], sizeof(buf[i]), "%d", i + 1);
		items[i].data = (uint8_t *)buf[i];
	}
	spec.command = "echo o{}";
	req.spec = &spec;
	req.items = items;
	req.n_items = (size_t)n;
	req.seal = false;
	assert_int_equal(
	    H_CALL(c, CreateExecution, &req, create_execution, &rep), 0);
	return rep->execution->id;
}

static int
append_items(h_cluster *c, const char *id, uint64_t offset, size_t n)
{
	Troupe__AppendItemsRequest req = TROUPE__APPEND_ITEMS_REQUEST__INIT;
	Troupe__AppendItemsReply  *rep = NULL;
	ProtobufCBinaryData        item = {1, (uint8_t *)"9"};

	req.id = (char *)id;
	req.offset = offset;
	req.items = n > 0 ? &item : NULL;
	req.n_items = n;
	return H_CALL(c, AppendItems, &req, append_items, &rep);
}

/* A client that dies in the middle of an upload (never seals) does not
 * leave an execution RUNNING forever: after --upload-timeout without an
 * upload call it FAILS, its uploaded items' outputs kept; a client that
 * is slow but alive keeps its execution with empty appends. */
static void
test_abandoned_upload(void **state)
{
	h_cluster *c = h_start(
	    &(h_opts){.workers = 1, .sched_args = "--upload-timeout 2"});
	Troupe__Execution *e;
	const char        *dead, *slow;
	int64_t            t;

	dead = start_upload(c, 3);
	slow = start_upload(c, 2);
	t = h_now_ms();
	/* The slow one: an empty append every 0.5 s for 3 s, then a real one
	 * and the seal. */
	while (h_now_ms() - t < 3000) {
		assert_int_equal(append_items(c, slow, 2, 0), 0);
		hf_sleep_ms(500);
	}
	assert_int_equal(append_items(c, slow, 2, 1), 0);
	{
		Troupe__SealExecutionRequest req =
		    TROUPE__SEAL_EXECUTION_REQUEST__INIT;
		Troupe__SealExecutionReply *rep = NULL;

		req.id = (char *)slow;
		assert_int_equal(
		    H_CALL(c, SealExecution, &req, seal_execution, &rep), 0);
	}
	e = h_wait_done(c, slow, 30000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(e->counts->succeeded, 3);
	/* The abandoned one. */
	e = h_wait_done(c, dead, 10000);
	fprintf(
	    stderr,
	    "abandoned upload FAILED, seen %lld ms after its last call: %s\n",
	    (long long)(h_now_ms() - t), e->error);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
	h_assert_icontains(e->error, "upload abandoned");
	assert_int_equal(e->counts->succeeded, 3); /* its items ran */
	/* A late append is refused, not added. */
	assert_int_equal(append_items(c, dead, 3, 1), TROUPE_ESTATE);
	h_assert_icontains(troupe_client_error(h_client(c)),
	                   "already finished");
	h_done(c);
}

/* The scheduler frozen (SIGSTOP) for longer than the worker waits before
 * it rebuilds its link (10 s without a reply; it notices at its next
 * failed call): the worker reconnects on a new socket, and
 * once the scheduler runs again the map completes, each output once. */
static void
test_scheduler_frozen(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	const char *id;
	char       *log;
	hf_tally    t;
	uint64_t    some = 4;

	assert_int_equal(h_run(c, NULL, NULL, "seq 40 > items"), 0);
	id = h_map_detach(c, NULL, "--items items --cmd 'sleep 0.2; echo o{}'");
	(void)h_wait_exec(c, id, hf_succeeded_at_least, &some, 30000,
	                  "4 items done");
	assert_int_equal(kill(h_scheduler_pid(c), SIGSTOP), 0);
	/* Its Pull times out after 7 s, the next one after 14. */
	hf_sleep_ms(16000);
	assert_int_equal(kill(h_scheduler_pid(c), SIGCONT), 0);
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	t = hf_check_outputs(c, id, 40, hf_expect_seq, &(hf_seq){"o", "\n"});
	fprintf(stderr, "%llu items ran again\n", (unsigned long long)t.reruns);
	log = h_slurp(c, h_path(c, "h-w1.log"));
	h_assert_contains(log, "reconnecting on a new socket");
	h_done(c);
}

/* The newest execution (ListExecutions), NULL when there is none; kept
 * by c. */
static Troupe__Execution *
newest_execution(h_cluster *c)
{
	Troupe__ListExecutionsRequest req =
	    TROUPE__LIST_EXECUTIONS_REQUEST__INIT;
	Troupe__ListExecutionsReply *rep = NULL;

	req.page_size = 1;
	assert_int_equal(H_CALL(c, ListExecutions, &req, list_executions, &rep),
	                 0);
	return rep->n_executions > 0 ? rep->executions[0] : NULL;
}

/* A real `troupe map` SIGKILLed in the middle of uploading 200,000 items
 * of 61 bytes (about a dozen requests of 1 MiB): the execution it left
 * unsealed FAILS "upload abandoned" --upload-timeout (3 s) after its last
 * call, keeps the items it had, and starts nothing more.  (Smaller items
 * would make each request hold so many that the scheduler, under ASan on
 * a loaded machine, takes seconds over one.) */
static void
test_cli_killed_mid_upload(void **state)
{
	h_cluster         *c = h_start(&(h_opts){
	            .workers = 1, .slots = 2, .sched_args = "--upload-timeout 3"});
	char               home[4096];
	char *const        env[] = {home, NULL};
	hf_proc           *cli;
	int64_t            t0, killed;
	uint64_t           total = 0;
	const char        *id = NULL;
	Troupe__Execution *e;

	snprintf(home, sizeof(home), "TROUPE_HOME=%s", h_dir(c));
	assert_int_equal(h_run(c, NULL, NULL, "seq -f %%060g 200000 > items"),
	                 0);
	cli = hf_spawn(c, "cli", NULL, env,
	               (char *const[]){(char *)hf_bin(c, "troupe"), "map",
	                               "--detach", "--items",
	                               (char *)h_path(c, "items"), "--cmd",
	                               "echo o{}", NULL});
	/* Killed as soon as its execution exists: its first request. */
	t0 = h_now_ms();
	while (h_now_ms() - t0 < 60000) {
		e = newest_execution(c);
		if (e != NULL) {
			id = e->id;
			break;
		}
		hf_sleep_ms(5);
	}
	if (id == NULL)
		h_fail(c, "no execution 60 s after the start of the upload");
	(void)hf_kill(c, cli, SIGKILL);
	killed = h_now_ms();
	e = h_execution(c, id);
	if (e->sealed)
		h_fail(c, "the upload of 200,000 items ended before the client "
		          "could be killed: the test proves nothing");
	total = e->total;
	e = h_wait_done(c, id, 60000);
	fprintf(stderr,
	        "client killed after uploading %llu items; FAILED seen %lld "
	        "ms later: %s\n",
	        (unsigned long long)total, (long long)(h_now_ms() - killed),
	        e->error);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
	h_assert_icontains(e->error, "upload abandoned");
	assert_false(e->sealed);
	/* What it uploaded stays (an append in flight may have landed);
	 * nothing is left to run. */
	assert_true(e->total >= total && e->total > 0 && e->total < 200000);
	assert_int_equal(e->counts->pending + e->counts->running, 0);
	assert_int_equal(e->counts->succeeded + e->counts->failed +
	                     e->counts->aborted,
	                 e->total);
	hf_stop_all(c);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    HF_TEST(test_execution_timeout),
	    HF_TEST(test_execution_timeout_across_crash),
	    HF_TEST(test_abort_actor_map),
	    HF_TEST(test_ratio_fails_fast),
	    HF_TEST(test_item_timeout_then_retry),
	    HF_TEST(test_abort_reaches_draining_worker),
	    HF_TEST(test_scheduler_sigterm_commits),
	    HF_TEST(test_worker_sigterm_drains_actors),
	    HF_TEST(test_abandoned_upload),
	    HF_TEST(test_cli_killed_mid_upload),
	    HF_TEST(test_scheduler_frozen),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
