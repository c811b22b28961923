/*
 * The scheduler's sharding and placement (daemon/scheduler/sched.c,
 * link.c, actors.c), driven through the worker link by fake workers.
 *
 * The real scheduler core runs in this process (sched_fixture.h: a
 * fresh one per test, on ipc:// sockets in a temporary directory).  The
 * test thread speaks the envelope on raw nng req sockets: fake workers
 * register, Pull and Report; a client creates and inspects executions.
 * Every wait is bounded (aio timeouts; loops with deadlines).
 *
 * Checks:
 * - slots=3, 10 items: the first Pull is one shard of 3 items of that
 *   execution, attempt 1, inputs and task; after the ReportReply the
 *   next Pull gets the next 3; all 10 finish SUCCEEDED with outputs
 * - concurrency=2, two workers of 4 slots: never more than 2 items
 *   assigned at once, and everything finishes
 * - fairness: A (100 items) then B (5), one 2-slot worker: every Pull
 *   while B has items holds one of each; B finishes while A has most of
 *   its items left
 * - retries=1: a failed attempt comes back as attempt 2; a second
 *   failure fails the item and the execution
 * - a result with a stale attempt, an unknown execution or an index out
 *   of range is ignored (version and counts unchanged), ReportReply OK
 * - a result reported by a worker that does not hold the attempt is
 *   ignored; the holder's counts
 * - GetOutputs pages of an 8.3 MB and a 60 MB output each fit the
 *   client's receive limit
 * - a worker whose connection drops mid-item: its items go to the other
 *   worker with attempt 2
 * - DrainWorker: the parked Pull is answered with drain, later Pulls get
 *   nothing; another worker gets the items
 * - actors (replica_count 2, prefetch 2, two 4-slot workers): exactly 2
 *   ReplicaStarts across workers, shards carry env_key, in flight per
 *   replica <= prefetch; listing the replicas keeps them; omitting one
 *   starts a replacement while items remain; ListActors shows the
 *   replicas with the pids reported; when their worker is lost, both
 *   start on the other worker, which gets the items in flight as
 *   attempt 2
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <uv.h>

#include "troupe/sockclose.h"
#include "api.pb-c.h"
#include "link.pb-c.h"
#include "log.h"
#include "loopq.h"
#include "rpc.h"
#include "sched_fixture.h"
#include "scheduler.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "skip.h"

#define PULL_TIMEOUT_MS 300
#define PREFETCH        2

static const sfx_opts place_opts = {
    .dir_prefix = "troupe-place",
    .pull_timeout_ms = PULL_TIMEOUT_MS,
    .lost_after_ms = 10000,
    .actor_prefetch = PREFETCH,
};

#define PLACE_TEST(fn)                                                        \
	cmocka_unit_test_prestate_setup_teardown(fn, sfx_setup, sfx_teardown, \
	                                         (void *)&place_opts)

/* The daemon's default prefetch, for the share test. */
static const sfx_opts place_deep_opts = {
    .dir_prefix = "troupe-place",
    .pull_timeout_ms = PULL_TIMEOUT_MS,
    .lost_after_ms = 10000,
    .actor_prefetch = 64,
};

/* ---- calls ---- */

static int
chan_call(sfx_chan *c, const char *method, const ProtobufCMessage *in,
          const ProtobufCMessageDescriptor *desc, void **out)
{
	char why[256];
	int  code;

	sfx_chan_send(c, method, NULL, in, SFX_CALL_TIMEOUT_MS);
	code = sfx_chan_recv(c, desc, out, why, sizeof(why));
	if (code != TROUPE__CODE__OK)
		print_message("%s: code %d: %s\n", method, code, why);
	return code;
}

/* A call from the client socket; asserts OK and returns the body. */
static void *
api(sfx *f, const char *method, const ProtobufCMessage *in,
    const ProtobufCMessageDescriptor *desc)
{
	sfx_chan c;
	void    *out = NULL;

	sfx_chan_open(&c, f->cli);
	assert_int_equal(chan_call(&c, method, in, desc, &out), 0);
	sfx_chan_close(&c);
	return out;
}

/* ---- the client's side ---- */

typedef struct snap {
	Troupe__Phase phase;
	uint64_t      pending, running, succeeded, failed, version;
} snap;

/* Creates a sealed execution of n items "i<k>" running `cmd`; the spec is
 * adjusted by the caller through sp (may be NULL).  id gets its id. */
static void
create_exec(sfx *f, uint32_t n, Troupe__ExecutionSpec *sp, char id[32])
{
	Troupe__CreateExecutionRequest req =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         def = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionReply *rep;
	ProtobufCBinaryData          *items = calloc(n, sizeof(*items));
	char(*bufs)[16] = calloc(n, sizeof(*bufs));

	assert_non_null(items);
	assert_non_null(bufs);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "i%u", i);
		items[i].data = (uint8_t *)bufs[i];
		items[i].len = strlen(bufs[i]);
	}
	if (sp == NULL) {
		def.command = "echo {}";
		sp = &def;
	}
	req.spec = sp;
	req.items = items;
	req.n_items = n;
	req.seal = true;
	rep = api(f, "CreateExecution", &req.base,
	          &troupe__create_execution_reply__descriptor);
	assert_non_null(rep->execution);
	snprintf(id, 32, "%s", rep->execution->id);
	assert_int_equal(rep->execution->total, n);
	troupe__create_execution_reply__free_unpacked(rep, NULL);
	free(items);
	free(bufs);
}

static snap
get_exec(sfx *f, const char *id)
{
	Troupe__GetExecutionRequest req = TROUPE__GET_EXECUTION_REQUEST__INIT;
	Troupe__GetExecutionReply  *rep;
	snap                        s;

	req.id = (char *)id;
	rep = api(f, "GetExecution", &req.base,
	          &troupe__get_execution_reply__descriptor);
	s.phase = rep->execution->phase;
	s.pending = rep->execution->counts->pending;
	s.running = rep->execution->counts->running;
	s.succeeded = rep->execution->counts->succeeded;
	s.failed = rep->execution->counts->failed;
	s.version = rep->execution->version;
	troupe__get_execution_reply__free_unpacked(rep, NULL);
	return s;
}

/* The outputs of id, start..start+count. */
static Troupe__GetOutputsReply *
get_outputs(sfx *f, const char *id, uint64_t start, uint32_t count)
{
	Troupe__GetOutputsRequest req = TROUPE__GET_OUTPUTS_REQUEST__INIT;

	req.id = (char *)id;
	req.start = start;
	req.count = count;
	return api(f, "GetOutputs", &req.base,
	           &troupe__get_outputs_reply__descriptor);
}

/* ---- fake workers ---- */

typedef struct ref {
	char     exec[32];
	uint64_t index;
	uint32_t attempt;
} ref;

typedef struct fw {
	nng_socket sock;
	sfx_chan   pull, call;
	bool       open;
	char       id[32], name[32];
} fw;

static void
fw_open_cap(sfx *f, fw *w, const char *name, uint32_t slots, uint32_t cpu_milli)
{
	Troupe__RegisterWorkerRequest req =
	    TROUPE__REGISTER_WORKER_REQUEST__INIT;
	Troupe__RegisterWorkerReply *rep = NULL;
	Troupe__Resources            cap = TROUPE__RESOURCES__INIT;

	memset(w, 0, sizeof(*w));
	sfx_dial(f->link_url, &w->sock);
	sfx_chan_open(&w->pull, w->sock);
	sfx_chan_open(&w->call, w->sock);
	w->open = true;
	snprintf(w->name, sizeof(w->name), "%s", name);
	req.name = w->name;
	req.host = "testhost";
	req.slots = slots;
	req.pid = 4000;
	req.version = "test";
	cap.cpu_milli = cpu_milli;
	req.capacity = &cap;
	assert_int_equal(chan_call(&w->call, "RegisterWorker", &req.base,
	                           &troupe__register_worker_reply__descriptor,
	                           (void **)&rep),
	                 0);
	snprintf(w->id, sizeof(w->id), "%s", rep->worker_id);
	assert_int_equal(rep->pull_timeout_ms, PULL_TIMEOUT_MS);
	troupe__register_worker_reply__free_unpacked(rep, NULL);
}

static void
fw_open(sfx *f, fw *w, const char *name, uint32_t slots)
{
	fw_open_cap(f, w, name, slots, 0);
}

static void
fw_close(fw *w)
{
	if (!w->open)
		return;
	sfx_chan_close(&w->pull);
	sfx_chan_close(&w->call);
	(void)troupe_sock_close(w->sock, TROUPE_SOCK_CLOSE_MS);
	w->open = false;
}

/* Starts a Pull listing replicas (n of them). */
static void
fw_pull_start(fw *w, Troupe__ReplicaStatus **replicas, size_t n)
{
	Troupe__PullRequest req = TROUPE__PULL_REQUEST__INIT;

	req.worker_id = w->id;
	req.replicas = replicas;
	req.n_replicas = n;
	sfx_chan_send(&w->pull, "Pull", NULL, &req.base, SFX_CALL_TIMEOUT_MS);
}

static bool
fw_pull_done(fw *w)
{
	return atomic_load(&w->pull.done);
}

static Troupe__PullReply *
fw_pull_end(fw *w)
{
	Troupe__PullReply *rep = NULL;
	char               why[256] = "";

	assert_int_equal(sfx_chan_recv(&w->pull,
	                               &troupe__pull_reply__descriptor,
	                               (void **)&rep, why, sizeof(why)),
	                 0);
	return rep;
}

static Troupe__PullReply *
fw_pull(fw *w)
{
	fw_pull_start(w, NULL, 0);
	return fw_pull_end(w);
}

/* Appends the items of every shard of p to out (at most max in all);
 * returns how many were added. */
static size_t
refs_of(const Troupe__PullReply *p, ref *out, size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < p->n_shards; k++)
		for (size_t i = 0; i < p->shards[k]->n_items; i++) {
			assert_true(n < max);
			snprintf(out[n].exec, sizeof(out[n].exec), "%s",
			         p->shards[k]->execution);
			out[n].index = p->shards[k]->items[i]->index;
			out[n].attempt = p->shards[k]->items[i]->attempt;
			n++;
		}
	return n;
}

static size_t
n_items(const Troupe__PullReply *p)
{
	size_t n = 0;

	for (size_t k = 0; k < p->n_shards; k++)
		n += p->shards[k]->n_items;
	return n;
}

/* Reports r[0..n) as finished in state st.  Returns the reply code. */
static int
fw_report(fw *w, const ref *r, size_t n, Troupe__ItemState st)
{
	Troupe__ReportRequest req = TROUPE__REPORT_REQUEST__INIT;
	Troupe__ItemReport   *reps = calloc(n + 1, sizeof(*reps));
	Troupe__ItemReport  **ps = calloc(n + 1, sizeof(*ps));
	char(*outs)[32] = calloc(n + 1, sizeof(*outs));
	void *out = NULL;
	int   code;

	assert_non_null(reps);
	assert_non_null(ps);
	assert_non_null(outs);
	for (size_t i = 0; i < n; i++) {
		troupe__item_report__init(&reps[i]);
		reps[i].execution = (char *)r[i].exec;
		reps[i].index = r[i].index;
		reps[i].attempt = r[i].attempt;
		reps[i].state = st;
		snprintf(outs[i], sizeof(outs[i]), "out-%llu",
		         (unsigned long long)r[i].index);
		if (st == TROUPE__ITEM_STATE__ITEM_SUCCEEDED) {
			reps[i].output.data = (uint8_t *)outs[i];
			reps[i].output.len = strlen(outs[i]);
		} else {
			reps[i].error = "boom";
			reps[i].exit_code = 1;
		}
		reps[i].started_ms = 1;
		reps[i].finished_ms = 2;
		ps[i] = &reps[i];
	}
	req.worker_id = w->id;
	req.results = ps;
	req.n_results = n;
	code = chan_call(&w->call, "Report", &req.base,
	                 &troupe__report_reply__descriptor, &out);
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	free(reps);
	free(ps);
	free(outs);
	return code;
}

static void
sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* ---- tests ---- */

static void
test_shard_of_slots(void **state)
{
	sfx                     *f = *state;
	fw                       w;
	char                     id[32];
	Troupe__PullReply       *p;
	Troupe__GetOutputsReply *o;
	ref                      got[16];
	size_t                   n;
	snap                     s;

	fw_open(f, &w, "w1", 3);
	create_exec(f, 10, NULL, id);

	/* First Pull: one shard of that execution, 3 items, attempt 1. */
	p = fw_pull(&w);
	assert_int_equal(p->n_shards, 1);
	assert_string_equal(p->shards[0]->execution, id);
	assert_non_null(p->shards[0]->task);
	assert_string_equal(p->shards[0]->task->command, "echo {}");
	assert_string_equal(p->shards[0]->env_key, "");
	assert_int_equal(p->shards[0]->n_items, 3);
	for (size_t i = 0; i < 3; i++) {
		char want[16];
		snprintf(want, sizeof(want), "i%llu",
		         (unsigned long long)p->shards[0]->items[i]->index);
		assert_int_equal(p->shards[0]->items[i]->attempt, 1);
		assert_int_equal(p->shards[0]->items[i]->input.len,
		                 strlen(want));
		assert_memory_equal(p->shards[0]->items[i]->input.data, want,
		                    strlen(want));
	}
	assert_false(p->drain);
	n = refs_of(p, got, 16);
	troupe__pull_reply__free_unpacked(p, NULL);
	s = get_exec(f, id);
	assert_int_equal(s.phase, TROUPE__PHASE__PHASE_RUNNING);
	assert_int_equal(s.running, 3);
	assert_int_equal(s.pending, 7);

	/* Report them; after the ReportReply the next Pull has the next. */
	assert_int_equal(
	    fw_report(&w, got, n, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	s = get_exec(f, id);
	assert_int_equal(s.succeeded, 3);
	assert_int_equal(s.running, 0);
	p = fw_pull(&w);
	assert_int_equal(p->n_shards, 1);
	assert_int_equal(p->shards[0]->n_items, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_true(p->shards[0]->items[i]->index >= 3);
		assert_true(p->shards[0]->items[i]->index < 6);
		assert_int_equal(p->shards[0]->items[i]->attempt, 1);
	}
	n = refs_of(p, got, 16);
	troupe__pull_reply__free_unpacked(p, NULL);

	/* Run the rest: 3, 3, then the last one. */
	for (int round = 0; round < 10; round++) {
		assert_int_equal(
		    fw_report(&w, got, n, TROUPE__ITEM_STATE__ITEM_SUCCEEDED),
		    0);
		s = get_exec(f, id);
		if (s.phase == TROUPE__PHASE__PHASE_SUCCEEDED)
			break;
		p = fw_pull(&w);
		n = refs_of(p, got, 16);
		assert_true(n <= 3);
		troupe__pull_reply__free_unpacked(p, NULL);
	}
	s = get_exec(f, id);
	assert_int_equal(s.phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(s.succeeded, 10);
	o = get_outputs(f, id, 0, 0);
	assert_int_equal(o->n_items, 10);
	for (size_t i = 0; i < 10; i++) {
		char want[32];
		snprintf(want, sizeof(want), "out-%zu", i);
		assert_int_equal(o->items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_int_equal(o->items[i]->attempts, 1);
		assert_string_equal(o->items[i]->worker, "w1");
		assert_int_equal(o->items[i]->output.len, strlen(want));
		assert_memory_equal(o->items[i]->output.data, want,
		                    strlen(want));
	}
	troupe__get_outputs_reply__free_unpacked(o, NULL);
	fw_close(&w);
}

static void
test_concurrency_across_workers(void **state)
{
	sfx                  *f = *state;
	fw                    w[2];
	Troupe__ExecutionSpec sp = TROUPE__EXECUTION_SPEC__INIT;
	char                  id[32];
	ref                   held[2][16];
	size_t                n_held[2] = {0, 0};
	int                   got_any[2] = {0, 0};
	snap                  s;
	int64_t               deadline = troupe_now_ms() + 15000;

	fw_open(f, &w[0], "wa", 4);
	fw_open(f, &w[1], "wb", 4);
	sp.command = "echo {}";
	sp.concurrency = 2;
	create_exec(f, 10, &sp, id);
	fw_pull_start(&w[0], NULL, 0);
	fw_pull_start(&w[1], NULL, 0);
	for (;;) {
		assert_true(troupe_now_ms() < deadline);
		for (int k = 0; k < 2; k++) {
			Troupe__PullReply *p;
			size_t             n;

			if (!fw_pull_done(&w[k]))
				continue;
			p = fw_pull_end(&w[k]);
			n = refs_of(p, held[k] + n_held[k], 16 - n_held[k]);
			troupe__pull_reply__free_unpacked(p, NULL);
			n_held[k] += n;
			got_any[k] |= n > 0;
			/* Never more than 2 assigned, cluster-wide. */
			assert_true(n_held[0] + n_held[1] <= 2);
			s = get_exec(f, id);
			assert_true(s.running <= 2);
			/* Hold them a moment, so the other worker's parked
			 * Pull sees the execution at its limit. */
			sleep_ms(20);
			if (n_held[k] > 0) {
				assert_int_equal(
				    fw_report(
				        &w[k], held[k], n_held[k],
				        TROUPE__ITEM_STATE__ITEM_SUCCEEDED),
				    0);
				n_held[k] = 0;
			}
			s = get_exec(f, id);
			if (s.phase == TROUPE__PHASE__PHASE_SUCCEEDED)
				goto done;
			fw_pull_start(&w[k], NULL, 0);
		}
		sleep_ms(5);
	}
done:
	assert_int_equal(s.succeeded, 10);
	assert_true(got_any[0] || got_any[1]);
	for (int k = 0; k < 2; k++) {
		if (!fw_pull_done(&w[k])) {
			Troupe__PullReply *p = fw_pull_end(&w[k]);
			assert_int_equal(n_items(p), 0);
			troupe__pull_reply__free_unpacked(p, NULL);
		}
		fw_close(&w[k]);
	}
}

static void
test_fairness(void **state)
{
	sfx *f = *state;
	fw   w;
	char a[32], b[32];
	ref  got[4];
	int  rounds = 0;
	snap sa, sb;

	create_exec(f, 100, NULL, a);
	create_exec(f, 5, NULL, b);
	fw_open(f, &w, "w1", 2);
	for (;;) {
		Troupe__PullReply *p = fw_pull(&w);
		size_t             n = refs_of(p, got, 4);
		int                from_a = 0, from_b = 0;

		assert_int_equal(n, 2);
		for (size_t i = 0; i < n; i++) {
			from_a += strcmp(got[i].exec, a) == 0;
			from_b += strcmp(got[i].exec, b) == 0;
		}
		/* Max-min by running count: one of each while B has items. */
		assert_int_equal(from_a, 1);
		assert_int_equal(from_b, 1);
		assert_int_equal(p->n_shards, 2);
		troupe__pull_reply__free_unpacked(p, NULL);
		assert_int_equal(
		    fw_report(&w, got, n, TROUPE__ITEM_STATE__ITEM_SUCCEEDED),
		    0);
		rounds++;
		sb = get_exec(f, b);
		if (sb.phase == TROUPE__PHASE__PHASE_SUCCEEDED)
			break;
		assert_true(rounds < 5);
	}
	assert_int_equal(rounds, 5);
	assert_int_equal(sb.succeeded, 5);
	sa = get_exec(f, a);
	assert_int_equal(sa.phase, TROUPE__PHASE__PHASE_RUNNING);
	assert_int_equal(sa.succeeded, 5);
	assert_int_equal(sa.pending, 95);

	/* With B done, A gets both slots. */
	{
		Troupe__PullReply *p = fw_pull(&w);
		size_t             n = refs_of(p, got, 4);
		assert_int_equal(n, 2);
		assert_string_equal(got[0].exec, a);
		assert_string_equal(got[1].exec, a);
		troupe__pull_reply__free_unpacked(p, NULL);
	}
	fw_close(&w);
}

static void
test_retry_attempt(void **state)
{
	sfx                     *f = *state;
	fw                       w;
	Troupe__ExecutionSpec    sp = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__PullReply       *p;
	Troupe__GetOutputsReply *o;
	char                     id[32];
	ref                      got[4];
	snap                     s;

	fw_open(f, &w, "w1", 2);
	sp.command = "false";
	sp.retries_opt_case = TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES;
	sp.retries = 1;
	create_exec(f, 1, &sp, id);
	p = fw_pull(&w);
	assert_int_equal(refs_of(p, got, 4), 1);
	assert_int_equal(got[0].attempt, 1);
	troupe__pull_reply__free_unpacked(p, NULL);
	assert_int_equal(fw_report(&w, got, 1, TROUPE__ITEM_STATE__ITEM_FAILED),
	                 0);
	s = get_exec(f, id);
	assert_int_equal(s.phase, TROUPE__PHASE__PHASE_RUNNING);
	assert_int_equal(s.pending, 1);
	assert_int_equal(s.failed, 0);

	/* The retry comes back as attempt 2. */
	p = fw_pull(&w);
	assert_int_equal(refs_of(p, got, 4), 1);
	assert_int_equal(got[0].index, 0);
	assert_int_equal(got[0].attempt, 2);
	troupe__pull_reply__free_unpacked(p, NULL);
	assert_int_equal(fw_report(&w, got, 1, TROUPE__ITEM_STATE__ITEM_FAILED),
	                 0);
	s = get_exec(f, id);
	assert_int_equal(s.phase, TROUPE__PHASE__PHASE_FAILED);
	assert_int_equal(s.failed, 1);
	o = get_outputs(f, id, 0, 0);
	assert_int_equal(o->n_items, 1);
	assert_int_equal(o->items[0]->attempts, 2);
	assert_int_equal(o->items[0]->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_string_equal(o->items[0]->error, "boom");
	troupe__get_outputs_reply__free_unpacked(o, NULL);
	fw_close(&w);
}

static void
test_stale_results_ignored(void **state)
{
	sfx               *f = *state;
	fw                 w;
	Troupe__PullReply *p;
	char               id[32];
	ref                got[4], bad;
	snap               before, after;

	fw_open(f, &w, "w1", 2);
	create_exec(f, 2, NULL, id);
	p = fw_pull(&w);
	assert_int_equal(refs_of(p, got, 4), 2);
	troupe__pull_reply__free_unpacked(p, NULL);
	before = get_exec(f, id);
	assert_int_equal(before.running, 2);

	/* A stale attempt number. */
	bad = got[0];
	bad.attempt = got[0].attempt + 6;
	assert_int_equal(
	    fw_report(&w, &bad, 1, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	bad.attempt = 0;
	assert_int_equal(
	    fw_report(&w, &bad, 1, TROUPE__ITEM_STATE__ITEM_FAILED), 0);
	/* An unknown execution. */
	bad = got[0];
	snprintf(bad.exec, sizeof(bad.exec), "ex-nosuchthing1");
	assert_int_equal(
	    fw_report(&w, &bad, 1, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	/* An index past the end. */
	bad = got[0];
	bad.index = 99;
	assert_int_equal(
	    fw_report(&w, &bad, 1, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	after = get_exec(f, id);
	assert_int_equal(after.version, before.version);
	assert_int_equal(after.running, 2);
	assert_int_equal(after.succeeded, 0);
	assert_int_equal(after.failed, 0);
	assert_int_equal(after.pending, 0);

	/* The right attempts still count. */
	assert_int_equal(
	    fw_report(&w, got, 2, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	after = get_exec(f, id);
	assert_int_equal(after.phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(after.succeeded, 2);
	/* A duplicate of a result already counted changes nothing. */
	assert_int_equal(fw_report(&w, got, 1, TROUPE__ITEM_STATE__ITEM_FAILED),
	                 0);
	before = get_exec(f, id);
	assert_int_equal(before.version, after.version);
	assert_int_equal(before.succeeded, 2);
	assert_int_equal(before.failed, 0);
	fw_close(&w);
}

/* Issue 10, defect 3: a result counts only from the worker holding the
 * attempt.  A second registered worker reporting the first one's item
 * (with the right execution, index and attempt) changes nothing. */
static void
test_report_from_non_holder_ignored(void **state)
{
	sfx               *f = *state;
	fw                 w1, w2;
	Troupe__PullReply *p;
	char               id[32];
	ref                got[2];
	snap               before, after;

	fw_open(f, &w1, "w1", 1);
	fw_open(f, &w2, "w2", 1);
	create_exec(f, 1, NULL, id);
	p = fw_pull(&w1);
	assert_int_equal(refs_of(p, got, 2), 1);
	troupe__pull_reply__free_unpacked(p, NULL);
	before = get_exec(f, id);
	assert_int_equal(before.running, 1);

	/* The forgery, succeeded and failed. */
	assert_int_equal(
	    fw_report(&w2, got, 1, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	assert_int_equal(
	    fw_report(&w2, got, 1, TROUPE__ITEM_STATE__ITEM_FAILED), 0);
	after = get_exec(f, id);
	assert_int_equal(after.version, before.version);
	assert_int_equal(after.running, 1);
	assert_int_equal(after.succeeded, 0);
	assert_int_equal(after.failed, 0);

	/* The holder's result counts. */
	assert_int_equal(
	    fw_report(&w1, got, 1, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	after = get_exec(f, id);
	assert_int_equal(after.phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(after.succeeded, 1);
	fw_close(&w1);
	fw_close(&w2);
}

/* Reports r as SUCCEEDED with an output of len bytes ('a'). */
static void
fw_report_big(fw *w, const ref *r, size_t len)
{
	Troupe__ReportRequest req = TROUPE__REPORT_REQUEST__INIT;
	Troupe__ItemReport    rep = TROUPE__ITEM_REPORT__INIT;
	Troupe__ItemReport   *ps[1] = {&rep};
	void                 *out = NULL;

	rep.execution = (char *)r->exec;
	rep.index = r->index;
	rep.attempt = r->attempt;
	rep.state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
	assert_non_null(rep.output.data = malloc(len));
	memset(rep.output.data, 'a', len);
	rep.output.len = len;
	char    why[256] = "";
	int64_t t0 = troupe_now_ms();

	req.worker_id = w->id;
	req.results = ps;
	req.n_results = 1;
	/* Committing tens of MB on a busy machine takes a while. */
	sfx_chan_send(&w->call, "Report", NULL, &req.base, 120000);
	assert_int_equal(sfx_chan_recv(&w->call,
	                               &troupe__report_reply__descriptor, &out,
	                               why, sizeof(why)),
	                 0);
	print_message("Report of %zu bytes: %lld ms\n", len,
	              (long long)(troupe_now_ms() - t0));
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	free(rep.output.data);
}

/* Issue 10, defect 6: a GetOutputs page always fits the client's receive
 * limit.  8.3 MB (under the 8 MiB page budget) then 60 MB: together over
 * 64 MiB, which one page held when the budget was checked only before
 * adding an item (the client's socket dropped it: no reply).  Now each
 * comes in its own page. */
static void
test_output_pages_fit(void **state)
{
	sfx                *f = *state;
	fw                  w;
	Troupe__PullReply  *p;
	char                id[32];
	ref                 got[3];
	static const size_t sizes[3] = {8300000, 60000000, 1000};
	uint64_t            next = 0;
	int                 pages = 0;

	fw_open(f, &w, "w1", 3);
	create_exec(f, 3, NULL, id);
	p = fw_pull(&w);
	assert_int_equal(refs_of(p, got, 3), 3);
	troupe__pull_reply__free_unpacked(p, NULL);
	for (int i = 0; i < 3; i++)
		fw_report_big(&w, &got[i], sizes[got[i].index]);
	while (next < 3) {
		Troupe__GetOutputsRequest req =
		    TROUPE__GET_OUTPUTS_REQUEST__INIT;
		Troupe__GetOutputsReply *r = NULL;
		sfx_chan                 c;
		char                     why[256] = "";

		/* Tens of MB on a busy machine: a long bound.  A page over
		 * the receive limit never arrives (SFX_NO_REPLY). */
		req.id = id;
		req.start = next;
		sfx_chan_open(&c, f->cli);
		sfx_chan_send(&c, "GetOutputs", NULL, &req.base, 120000);
		assert_int_equal(
		    sfx_chan_recv(&c, &troupe__get_outputs_reply__descriptor,
		                  (void **)&r, why, sizeof(why)),
		    0);
		sfx_chan_close(&c);

		assert_true(protobuf_c_message_get_packed_size(&r->base) <
		            TROUPE_MAX_MSG - 1024);
		assert_true(r->n_items > 0);
		for (size_t i = 0; i < r->n_items; i++) {
			assert_int_equal(r->items[i]->index, next + i);
			assert_int_equal(r->items[i]->output.len,
			                 sizes[next + i]);
		}
		next += r->n_items;
		assert_int_equal(r->next, next);
		pages++;
		troupe__get_outputs_reply__free_unpacked(r, NULL);
	}
	assert_true(pages >= 2);
	fw_close(&w);
}

static void
test_worker_lost(void **state)
{
	sfx                     *f = *state;
	fw                       w1, w2;
	Troupe__PullReply       *p;
	Troupe__GetOutputsReply *o;
	char                     id[32];
	ref                      got[4];
	size_t                   n = 0;
	int64_t                  deadline;
	snap                     s;

	fw_open(f, &w1, "w1", 2);
	create_exec(f, 2, NULL, id);
	p = fw_pull(&w1);
	assert_int_equal(refs_of(p, got, 4), 2);
	assert_int_equal(got[0].attempt, 1);
	troupe__pull_reply__free_unpacked(p, NULL);
	fw_open(f, &w2, "w2", 2);

	/* w1's connection drops mid-item: its items go to w2. */
	fw_close(&w1);
	deadline = troupe_now_ms() + 5000;
	while (n < 2) {
		assert_true(troupe_now_ms() < deadline);
		p = fw_pull(&w2);
		n += refs_of(p, got + n, 4 - n);
		troupe__pull_reply__free_unpacked(p, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(got[i].exec, id);
		assert_int_equal(got[i].attempt, 2);
	}
	assert_int_not_equal(got[0].index, got[1].index);
	assert_int_equal(
	    fw_report(&w2, got, n, TROUPE__ITEM_STATE__ITEM_SUCCEEDED), 0);
	s = get_exec(f, id);
	assert_int_equal(s.phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	o = get_outputs(f, id, 0, 0);
	for (size_t i = 0; i < o->n_items; i++) {
		assert_int_equal(o->items[i]->attempts, 2);
		assert_string_equal(o->items[i]->worker, "w2");
	}
	troupe__get_outputs_reply__free_unpacked(o, NULL);
	fw_close(&w2);
}

static void
test_drain(void **state)
{
	sfx                       *f = *state;
	fw                         w1, w2;
	Troupe__PullReply         *p;
	Troupe__DrainWorkerRequest dr = TROUPE__DRAIN_WORKER_REQUEST__INIT;
	Troupe__DrainWorkerReply  *drep;
	char                       id[32];
	snap                       s;

	fw_open(f, &w1, "w1", 4);
	/* A parked Pull is answered with drain at once. */
	fw_pull_start(&w1, NULL, 0);
	sleep_ms(50);
	dr.id = "w1";
	drep = api(f, "DrainWorker", &dr.base,
	           &troupe__drain_worker_reply__descriptor);
	assert_string_equal(drep->worker->id, w1.id);
	assert_int_equal(drep->worker->state,
	                 TROUPE__WORKER_STATE__WORKER_DRAINING);
	troupe__drain_worker_reply__free_unpacked(drep, NULL);
	p = fw_pull_end(&w1);
	assert_true(p->drain);
	assert_int_equal(p->n_shards, 0);
	troupe__pull_reply__free_unpacked(p, NULL);

	/* Work arrives: none of it goes to the draining worker. */
	create_exec(f, 3, NULL, id);
	for (int i = 0; i < 2; i++) {
		p = fw_pull(&w1);
		assert_true(p->drain);
		assert_int_equal(n_items(p), 0);
		troupe__pull_reply__free_unpacked(p, NULL);
	}
	s = get_exec(f, id);
	assert_int_equal(s.pending, 3);
	assert_int_equal(s.running, 0);

	/* Another worker takes it. */
	fw_open(f, &w2, "w2", 4);
	p = fw_pull(&w2);
	assert_false(p->drain);
	assert_int_equal(n_items(p), 3);
	troupe__pull_reply__free_unpacked(p, NULL);
	fw_close(&w1);
	fw_close(&w2);
}

/* The actor test's view of one worker. */
typedef struct aw {
	fw     w;
	char   rid[4][24]; /* replicas started here and still alive */
	size_t n_rid;
	ref    held[16];
	size_t n_held;
} aw;

/* Takes a Pull reply for a: replicas started, items held.  Checks the
 * shards' env_key and returns the number of replicas started. */
static size_t
aw_take(aw *a, Troupe__PullReply *p, char *env_key, size_t keylen)
{
	size_t started = p->n_start_replicas;

	for (size_t i = 0; i < p->n_start_replicas; i++) {
		const Troupe__ReplicaStart *rs = p->start_replicas[i];

		assert_true(a->n_rid < 4);
		assert_int_equal(strncmp(rs->env_key, "adhoc-", 6), 0);
		if (env_key[0] == '\0')
			snprintf(env_key, keylen, "%s", rs->env_key);
		assert_string_equal(rs->env_key, env_key);
		assert_non_null(rs->env);
		assert_int_equal(rs->env->replica_count, 2);
		assert_string_equal(rs->env->command, "cat");
		snprintf(a->rid[a->n_rid++], sizeof(a->rid[0]), "%s",
		         rs->replica_id);
	}
	for (size_t k = 0; k < p->n_shards; k++) {
		assert_true(env_key[0] != '\0');
		assert_string_equal(p->shards[k]->env_key, env_key);
	}
	a->n_held += refs_of(p, a->held + a->n_held, 16 - a->n_held);
	/* Each replica gets at most `prefetch` items at a time. */
	assert_true(a->n_held <= a->n_rid * PREFETCH);
	troupe__pull_reply__free_unpacked(p, NULL);
	return started;
}

/* Pulls listing a's replicas except `omit` (may be NULL), with pids
 * 5000 + their position. */
static void
aw_pull_start(aw *a, const char *omit)
{
	Troupe__ReplicaStatus st[4], *ps[4];
	size_t                n = 0;

	for (size_t i = 0; i < a->n_rid; i++) {
		if (omit != NULL && strcmp(a->rid[i], omit) == 0)
			continue;
		troupe__replica_status__init(&st[n]);
		st[n].replica_id = a->rid[i];
		st[n].env_key = "";
		st[n].pid = 5000 + (uint32_t)i;
		st[n].state = TROUPE__REPLICA_STATE__REPLICA_IDLE;
		ps[n] = &st[n];
		n++;
	}
	fw_pull_start(&a->w, ps, n);
}

static void
test_actor_replicas(void **state)
{
	sfx                      *f = *state;
	aw                        a[2];
	aw                       *r = NULL, *other = NULL;
	Troupe__ExecutionSpec     sp = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv          env = TROUPE__ACTOR_ENV__INIT;
	Troupe__ListActorsRequest la = TROUPE__LIST_ACTORS_REQUEST__INIT;
	Troupe__ListActorsReply  *lrep;
	char                      id[32], key[72] = "", gone[24];
	size_t                    started = 0;

	memset(a, 0, sizeof(a));
	/* One worker first: its Pull parked before the execution exists. */
	fw_open(f, &a[0].w, "wa", 4);
	fw_pull_start(&a[0].w, NULL, 0);
	sleep_ms(50);
	sp.command = "cat";
	env.replica_count = 2;
	sp.adhoc_actor = &env;
	create_exec(f, 20, &sp, id);
	started = aw_take(&a[0], fw_pull_end(&a[0].w), key, sizeof(key));
	/* Exactly replica_count replicas, each with PREFETCH items. */
	assert_int_equal(started, 2);
	assert_int_equal(a[0].n_held, 2 * PREFETCH);
	r = &a[0];
	other = &a[1];
	assert_int_equal(r->n_rid, 2);

	/* Listing both replicas keeps them: more items, no new replica. */
	assert_int_equal(fw_report(&r->w, r->held, r->n_held,
	                           TROUPE__ITEM_STATE__ITEM_SUCCEEDED),
	                 0);
	r->n_held = 0;
	aw_pull_start(r, NULL);
	assert_int_equal(aw_take(r, fw_pull_end(&r->w), key, sizeof(key)), 0);
	assert_int_equal(r->n_held, 2 * PREFETCH);
	assert_int_equal(r->n_rid, 2);

	/* ListActors shows them with the pids the worker reported. */
	lrep = api(f, "ListActors", &la.base,
	           &troupe__list_actors_reply__descriptor);
	{
		const Troupe__ActorStatus *st = NULL;
		for (size_t i = 0; i < lrep->n_actors; i++)
			if (strcmp(lrep->actors[i]->key, key) == 0)
				st = lrep->actors[i];
		assert_non_null(st);
		assert_int_equal(st->n_replicas, 2);
		for (size_t i = 0; i < st->n_replicas; i++) {
			assert_string_equal(st->replicas[i]->worker, r->w.name);
			assert_true(st->replicas[i]->pid == 5000 ||
			            st->replicas[i]->pid == 5001);
			assert_int_equal(st->replicas[i]->state,
			                 TROUPE__REPLICA_STATE__REPLICA_IDLE);
		}
		assert_int_not_equal(st->replicas[0]->pid,
		                     st->replicas[1]->pid);
	}
	troupe__list_actors_reply__free_unpacked(lrep, NULL);

	/* One replica is gone (omitted from the Pull): a replacement starts
	 * while items remain, and the count stays at 2. */
	assert_int_equal(fw_report(&r->w, r->held, r->n_held,
	                           TROUPE__ITEM_STATE__ITEM_SUCCEEDED),
	                 0);
	r->n_held = 0;
	snprintf(gone, sizeof(gone), "%s", r->rid[1]);
	aw_pull_start(r, gone);
	r->n_rid = 1; /* the worker forgot it */
	assert_int_equal(aw_take(r, fw_pull_end(&r->w), key, sizeof(key)), 1);
	assert_int_equal(r->n_rid, 2);
	assert_string_not_equal(r->rid[1], gone);
	assert_string_not_equal(r->rid[1], r->rid[0]);
	assert_int_equal(r->n_held, 2 * PREFETCH);
	lrep = api(f, "ListActors", &la.base,
	           &troupe__list_actors_reply__descriptor);
	for (size_t i = 0; i < lrep->n_actors; i++)
		if (strcmp(lrep->actors[i]->key, key) == 0)
			assert_int_equal(lrep->actors[i]->n_replicas, 2);
	troupe__list_actors_reply__free_unpacked(lrep, NULL);

	fw_open(f, &other->w, "wb", 4);
	/* The other worker gets nothing: the environment is at its count. */
	fw_pull_start(&other->w, NULL, 0);
	assert_int_equal(
	    aw_take(other, fw_pull_end(&other->w), key, sizeof(key)), 0);
	assert_int_equal(other->n_held, 0);

	/* The worker holding both replicas is lost: both start again on the
	 * other one, which gets the items in flight as second attempts. */
	fw_close(&r->w);
	{
		int64_t deadline = troupe_now_ms() + 5000;
		size_t  again = 0;

		started = 0;
		while (other->n_held < 2 * PREFETCH) {
			assert_true(troupe_now_ms() < deadline);
			aw_pull_start(other, NULL);
			started += aw_take(other, fw_pull_end(&other->w), key,
			                   sizeof(key));
		}
		assert_int_equal(started, 2);
		assert_int_equal(other->n_rid, 2);
		for (size_t i = 0; i < other->n_held; i++)
			again += other->held[i].attempt == 2;
		assert_int_equal(again, 2 * PREFETCH);
	}
	fw_close(&other->w);
}

/* With room on two workers, an environment's replicas spread over them
 * rather than filling the first worker that asks. */
static void
test_actor_spread(void **state)
{
	sfx                  *f = *state;
	aw                    a[2];
	Troupe__ExecutionSpec sp = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv      env = TROUPE__ACTOR_ENV__INIT;
	char                  id[32], key[72] = "";

	memset(a, 0, sizeof(a));
	fw_open(f, &a[0].w, "wa", 4);
	fw_open(f, &a[1].w, "wb", 4);
	fw_pull_start(&a[0].w, NULL, 0);
	fw_pull_start(&a[1].w, NULL, 0);
	sleep_ms(50);
	sp.command = "cat";
	env.replica_count = 2;
	sp.adhoc_actor = &env;
	create_exec(f, 20, &sp, id);
	for (int k = 0; k < 2; k++)
		assert_int_equal(
		    aw_take(&a[k], fw_pull_end(&a[k].w), key, sizeof(key)), 1);
	assert_int_equal(a[0].n_rid, 1);
	assert_int_equal(a[1].n_rid, 1);
	fw_close(&a[0].w);
	fw_close(&a[1].w);
}

/* A deep prefetch does not let the first worker to pull take a small map
 * whole: each replica holds at most its share of what is pending, so the
 * other worker's replica gets work too. */
static void
test_actor_prefetch_share(void **state)
{
	sfx                  *f = *state;
	fw                    w[2];
	Troupe__ExecutionSpec sp = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv      env = TROUPE__ACTOR_ENV__INIT;
	char                  id[32];
	size_t                held[2];

	fw_open(f, &w[0], "wa", 4);
	fw_open(f, &w[1], "wb", 4);
	fw_pull_start(&w[0], NULL, 0);
	fw_pull_start(&w[1], NULL, 0);
	sleep_ms(50);
	sp.command = "cat";
	env.replica_count = 2;
	sp.adhoc_actor = &env;
	create_exec(f, 40, &sp, id);
	for (int k = 0; k < 2; k++) {
		Troupe__PullReply *p = fw_pull_end(&w[k]);

		assert_int_equal(p->n_start_replicas, 1);
		held[k] = n_items(p);
		troupe__pull_reply__free_unpacked(p, NULL);
	}
	print_message("40 items, prefetch 64: %zu and %zu held\n", held[0],
	              held[1]);
	/* At most half the map plus one each, and both have some. */
	assert_true(held[0] <= 21 && held[1] <= 21);
	assert_true(held[0] >= 5 && held[1] >= 5);
	fw_close(&w[0]);
	fw_close(&w[1]);
}

/* Resource requests are placed against the capacity workers declare: a
 * replica asking for 2 CPUs never lands on a 1-CPU worker, and items run
 * as processes asking for 0.6 CPU run one at a time on a 1-CPU worker
 * whatever its slots. */
static void
test_resources(void **state)
{
	sfx                  *f = *state;
	aw                    a[2];
	fw                    w;
	Troupe__ExecutionSpec sp = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ExecutionSpec sp2 = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv      env = TROUPE__ACTOR_ENV__INIT;
	Troupe__Resources     two = TROUPE__RESOURCES__INIT;
	Troupe__Resources     part = TROUPE__RESOURCES__INIT;
	Troupe__PullReply    *p;
	char                  id[32], key[72] = "";

	memset(a, 0, sizeof(a));
	fw_open_cap(f, &a[0].w, "small", 4, 1000);
	fw_open_cap(f, &a[1].w, "big", 4, 4000);
	fw_pull_start(&a[0].w, NULL, 0);
	fw_pull_start(&a[1].w, NULL, 0);
	sleep_ms(50);
	two.cpu_milli = 2000;
	sp.command = "cat";
	env.replica_count = 2;
	env.resources = &two;
	sp.adhoc_actor = &env;
	create_exec(f, 8, &sp, id);
	/* The big worker takes both; the small one is answered empty when
	 * its Pull times out. */
	assert_int_equal(aw_take(&a[1], fw_pull_end(&a[1].w), key, sizeof(key)),
	                 2);
	assert_int_equal(aw_take(&a[0], fw_pull_end(&a[0].w), key, sizeof(key)),
	                 0);
	assert_int_equal(a[0].n_rid, 0);
	fw_close(&a[0].w);
	fw_close(&a[1].w);

	fw_open_cap(f, &w, "one-cpu", 4, 1000);
	part.cpu_milli = 600;
	sp2.command = "echo {}";
	sp2.resources = &part;
	create_exec(f, 5, &sp2, id);
	fw_pull_start(&w, NULL, 0);
	p = fw_pull_end(&w);
	assert_int_equal(n_items(p), 1);
	troupe__pull_reply__free_unpacked(p, NULL);
	fw_close(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    PLACE_TEST(test_shard_of_slots),
	    PLACE_TEST(test_concurrency_across_workers),
	    PLACE_TEST(test_fairness),
	    PLACE_TEST(test_retry_attempt),
	    PLACE_TEST(test_stale_results_ignored),
	    PLACE_TEST(test_report_from_non_holder_ignored),
	    PLACE_TEST(test_output_pages_fit),
	    PLACE_TEST(test_worker_lost),
	    PLACE_TEST(test_drain),
	    PLACE_TEST(test_actor_replicas),
	    PLACE_TEST(test_actor_spread),
	    cmocka_unit_test_prestate_setup_teardown(test_actor_prefetch_share,
	                                             sfx_setup, sfx_teardown,
	                                             (void *)&place_deep_opts),
	    PLACE_TEST(test_resources),
	};

	troupe_log_init("test_placement", LOG_LVL_ERROR);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
