/*
 * Actor replicas on the worker (daemon/worker/pool.c and replica.c), with
 * real processes on a real libuv loop, under troupe-shim: one process
 * serving many items, the TTL, recycling after max_items, a crash in the
 * middle of an item, a crash loop, per-item timeouts, cancellation, the
 * frames protocol with binary data and per-item errors, the memory cap,
 * restarts of ids the scheduler still counts, and shutting down; and the
 * pipelined transport: several items written ahead to one replica,
 * answered in order and spread over the replicas, a timeout counted from
 * when an item becomes current, a timeout or a crash with items queued
 * behind (they run again, uncharged), a cancelled queued item.  Every wait
 * is bounded.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "log.h"
#include "pool.h"
#include "report.h"
#include "troupe/error.h"
#include "skip.h"

#define TP_MAX      64
#define TP_GUARD_MS 20000

typedef struct tp_item {
	pool_item        pi;
	Troupe__WorkItem wi;
	uint8_t          input[128];
} tp_item;

typedef struct tp {
	uv_loop_t           loop;
	uv_timer_t          timer;
	pool               *p;
	char                shim[PATH_MAX + 64];
	tp_item             items[TP_MAX];
	Troupe__ItemReport *reps[TP_MAX]; /* by item index */
	size_t              n_reps;
	int                 exits;
	bool                timed_out;
} tp;

static char tp_src[PATH_MAX]; /* the source tree */

static void
tp_done(void *arg, pool_item *it, Troupe__ItemReport *rep)
{
	tp *t = arg;

	assert_true(rep->index < TP_MAX);
	assert_null(t->reps[rep->index]);
	assert_ptr_equal(it, &t->items[rep->index].pi);
	t->reps[rep->index] = rep;
	t->n_reps++;
}

static void
tp_exit(void *arg)
{
	((tp *)arg)->exits++;
}

static void
tp_timer_cb(uv_timer_t *h)
{
	((tp *)h->data)->timed_out = true;
}

/* A pool under the built troupe-shim (none when shim is false). */
static tp *
tp_new(bool shim)
{
	tp       *t = calloc(1, sizeof(*t));
	char      exe[PATH_MAX];
	ssize_t   n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pool_opts o = {0};

	assert_non_null(t);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	/* build/tests/test_replica -> build/daemon/troupe-shim */
	snprintf(t->shim, sizeof(t->shim), "%s/../daemon/troupe-shim", exe);
	assert_int_equal(access(t->shim, X_OK), 0);
	assert_int_equal(uv_loop_init(&t->loop), 0);
	uv_timer_init(&t->loop, &t->timer);
	t->timer.data = t;
	o.shim = shim ? t->shim : NULL;
	o.stop_grace_ms = 1000;
	assert_int_equal(pool_new(&t->loop, &o, tp_done, tp_exit, t, &t->p), 0);
	return t;
}

/* Runs the loop until pred(t, arg) holds, at most ms. */
typedef bool (*tp_pred)(tp *t, void *arg);

static bool
tp_until(tp *t, tp_pred pred, void *arg, int ms)
{
	t->timed_out = false;
	uv_timer_start(&t->timer, tp_timer_cb, (uint64_t)ms, 0);
	while (!pred(t, arg) && !t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_timer_stop(&t->timer);
	return pred(t, arg);
}

static bool
tp_has_reports(tp *t, void *arg)
{
	return t->n_reps >= (size_t)(uintptr_t)arg;
}

static bool
tp_no_procs(tp *t, void *arg)
{
	return pool_procs(t->p) == 0;
}

static bool
tp_never(tp *t, void *arg)
{
	return false;
}

static bool
tp_exits(tp *t, void *arg)
{
	return t->exits >= (int)(intptr_t)arg;
}

static void
tp_wait_reports(tp *t, size_t n)
{
	if (!tp_until(t, tp_has_reports, (void *)(uintptr_t)n, TP_GUARD_MS))
		fail_msg("%zu of %zu reports within %d ms", t->n_reps, n,
		         TP_GUARD_MS);
}

/* Shuts the pool down, waits for its processes, frees everything. */
static void
tp_free(tp *t)
{
	pool_shutdown(t->p, "the test is over");
	assert_true(tp_until(t, tp_no_procs, NULL, TP_GUARD_MS));
	pool_free(t->p);
	uv_close((uv_handle_t *)&t->timer, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	for (size_t i = 0; i < TP_MAX; i++)
		report_free(t->reps[i]);
	free(t);
}

typedef struct tp_env {
	const char *cmd;
	uint32_t    ttl;
	uint32_t    max_items;
	bool        frames;
	uint64_t    mem;
} tp_env;

static void
tp_start(tp *t, const char *id, const char *key, const tp_env *e)
{
	Troupe__ReplicaStart rs = TROUPE__REPLICA_START__INIT;
	Troupe__ActorEnv     env = TROUPE__ACTOR_ENV__INIT;
	Troupe__Resources    res = TROUPE__RESOURCES__INIT;
	char                 src[PATH_MAX + 32];
	char                *vars[] = {src};

	snprintf(src, sizeof(src), "TROUPE_SOURCE_DIR=%s", tp_src);
	env.command = (char *)e->cmd;
	env.replica_count = 4;
	env.ttl_seconds = e->ttl > 0 ? e->ttl : 60;
	env.max_items = e->max_items;
	env.protocol = e->frames ? TROUPE__PROTOCOL__PROTOCOL_FRAMES
	                         : TROUPE__PROTOCOL__PROTOCOL_LINES;
	res.mem_bytes = e->mem;
	env.resources = &res;
	env.env = vars;
	env.n_env = 1;
	rs.replica_id = (char *)id;
	rs.env_key = (char *)key;
	rs.env = &env;
	assert_int_equal(pool_start(t->p, &rs), 0);
}

/* Submits item i with input (len bytes) to env key; returns the code. */
static int
tp_submit_n(tp *t, const char *key, int i, const void *input, size_t len,
            uint32_t timeout_ms)
{
	tp_item *it = &t->items[i];
	char     why[256];

	assert_true(len <= sizeof(it->input));
	troupe__work_item__init(&it->wi);
	memcpy(it->input, input, len);
	it->wi.index = (uint64_t)i;
	it->wi.attempt = 1;
	it->wi.input.data = it->input;
	it->wi.input.len = len;
	it->pi.execution = "ex1";
	it->pi.item = &it->wi;
	it->pi.timeout_ms = timeout_ms;
	return pool_submit(t->p, key, &it->pi, why, sizeof(why));
}

static void
tp_submit(tp *t, const char *key, int i, const char *input, uint32_t timeout_ms)
{
	assert_int_equal(
	    tp_submit_n(t, key, i, input, strlen(input), timeout_ms), 0);
}

static const Troupe__ItemReport *
tp_rep(tp *t, int i)
{
	assert_non_null(t->reps[i]);
	return t->reps[i];
}

static void
tp_assert_ok(tp *t, int i, const char *want)
{
	const Troupe__ItemReport *r = tp_rep(t, i);

	if (r->state != TROUPE__ITEM_STATE__ITEM_SUCCEEDED)
		fail_msg("item %d failed: %s", i, r->error);
	assert_int_equal(r->output.len, strlen(want));
	if (r->output.len > 0)
		assert_memory_equal(r->output.data, want, r->output.len);
	assert_true(r->started_ms > 0 && r->finished_ms >= r->started_ms);
}

static void
tp_assert_failed(tp *t, int i, bool system, const char *needle)
{
	const Troupe__ItemReport *r = tp_rep(t, i);

	assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	if (r->system_failure != system)
		fail_msg("item %d: system_failure %d, want %d (%s)", i,
		         r->system_failure, system, r->error);
	if (strstr(r->error, needle) == NULL)
		fail_msg("item %d: error '%s' lacks '%s'", i, r->error, needle);
}

/* The status of replica id (NULL when not listed). */
static const Troupe__ReplicaStatus *
tp_status(tp *t, const char *id, size_t *count)
{
	Troupe__ReplicaStatus **st;
	size_t                  n;

	assert_int_equal(pool_status(t->p, &st, &n), 0);
	if (count != NULL)
		*count = n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(st[i]->replica_id, id) == 0)
			return st[i];
	return NULL;
}

static int
tp_pid(tp *t, const char *id)
{
	const Troupe__ReplicaStatus *s = tp_status(t, id, NULL);

	assert_non_null(s);
	return (int)s->pid;
}

/* Whether the process group pgid still has a member 3 s from now (its
 * killed members may take a moment to be reaped). */
static bool
tp_group_alive(int pgid)
{
	for (int i = 0; i < 300; i++) {
		if (kill(-pgid, 0) != 0 && errno == ESRCH)
			return false;
		usleep(10000);
	}
	return true;
}

#define LINES_CMD "while read x; do echo \"r$x\"; done"

/* One process serves many items, in order, one at a time. */
static void
test_same_pid_many_items(void **state)
{
	tp                          *t = tp_new(true);
	const Troupe__ReplicaStatus *s;
	int                          pid;
	char                         in[16], want[64];

	tp_start(t, "r-1", "env",
	         &(tp_env){
	             .cmd = "while read x; do echo "
	                    "\"$TROUPE_REPLICA/"
	                    "$TROUPE_ACTOR/$x\"; done",
	         });
	s = tp_status(t, "r-1", NULL);
	assert_non_null(s);
	assert_int_equal(s->state, TROUPE__REPLICA_STATE__REPLICA_BOOTING);
	assert_string_equal(s->env_key, "env");
	pid = (int)s->pid;
	assert_true(pid > 0);
	for (int i = 0; i < 20; i++) {
		snprintf(in, sizeof(in), "%d", i);
		tp_submit(t, "env", i, in, 0);
	}
	assert_int_equal(pool_items(t->p), 20);
	tp_wait_reports(t, 20);
	for (int i = 0; i < 20; i++) {
		snprintf(want, sizeof(want), "r-1/env/%d", i);
		tp_assert_ok(t, i, want);
	}
	s = tp_status(t, "r-1", NULL);
	assert_int_equal(s->pid, pid);
	assert_int_equal(s->items_served, 20);
	assert_int_equal(s->state, TROUPE__REPLICA_STATE__REPLICA_IDLE);
	assert_true(s->idle_ms_left > 50000 && s->idle_ms_left <= 60000);
	assert_int_equal(pool_procs(t->p), 1);
	assert_int_equal(pool_items(t->p), 0);
	tp_free(t);
	assert_false(tp_group_alive(pid));
}

/* lines cannot carry an item holding a newline: refused, not sent. */
static void
test_lines_newline_refused(void **state)
{
	tp *t = tp_new(true);

	tp_start(t, "r-1", "env", &(tp_env){.cmd = LINES_CMD});
	assert_int_equal(tp_submit_n(t, "env", 0, "a\nb", 3, 0), TROUPE_EINVAL);
	assert_int_equal(pool_items(t->p), 0);
	tp_submit(t, "env", 1, "ok", 0);
	tp_wait_reports(t, 1);
	tp_assert_ok(t, 1, "rok");
	tp_free(t);
}

/* An idle replica stops at its TTL and leaves the list. */
static void
test_ttl_expiry(void **state)
{
	tp     *t = tp_new(true);
	int64_t t0 = (int64_t)uv_hrtime() / 1000000, dt;
	size_t  n;
	int     pid;

	tp_start(t, "r-1", "env", &(tp_env){.cmd = LINES_CMD, .ttl = 1});
	tp_submit(t, "env", 0, "a", 0);
	tp_wait_reports(t, 1);
	tp_assert_ok(t, 0, "ra");
	pid = tp_pid(t, "r-1");
	t0 = (int64_t)uv_hrtime() / 1000000;
	assert_true(tp_status(t, "r-1", NULL)->idle_ms_left <= 1000);
	assert_true(tp_until(t, tp_no_procs, NULL, 5000));
	dt = (int64_t)uv_hrtime() / 1000000 - t0;
	assert_true(dt >= 900 && dt < 3500);
	assert_null(tp_status(t, "r-1", &n));
	assert_int_equal(n, 0);
	assert_false(tp_group_alive(pid));
	assert_int_equal(t->exits, 1);
	tp_free(t);
}

/* max_items: a new process every 3 items, under the same id. */
static void
test_max_items_recycles(void **state)
{
	tp                          *t = tp_new(true);
	const Troupe__ReplicaStatus *s;
	char                         in[8];
	int                          pid0, pid1;

	tp_start(
	    t, "r-1", "env",
	    &(tp_env){.cmd = "while read x; do echo $$; done", .max_items = 3});
	pid0 = tp_pid(t, "r-1");
	for (int i = 0; i < 7; i++) {
		snprintf(in, sizeof(in), "%d", i);
		tp_submit(t, "env", i, in, 0);
	}
	tp_wait_reports(t, 7);
	for (int i = 0; i < 7; i++)
		assert_int_equal(tp_rep(t, i)->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	/* Outputs are the shell's pid: 3 + 3 + 1. */
	for (int i = 0; i < 7; i++) {
		const Troupe__ItemReport *a = tp_rep(t, i), *b = tp_rep(t, 0);

		if (i >= 3)
			b = tp_rep(t, i < 6 ? 3 : 6);
		assert_int_equal(a->output.len, b->output.len);
		assert_memory_equal(a->output.data, b->output.data,
		                    a->output.len);
	}
	assert_false(tp_rep(t, 0)->output.len == tp_rep(t, 3)->output.len &&
	             memcmp(tp_rep(t, 0)->output.data,
	                    tp_rep(t, 3)->output.data,
	                    tp_rep(t, 0)->output.len) == 0);
	/* Recycling after the 6th leaves a fresh process serving the 7th. */
	s = tp_status(t, "r-1", NULL);
	assert_non_null(s);
	assert_int_equal(s->items_served, 7);
	pid1 = (int)s->pid;
	assert_int_not_equal(pid0, pid1);
	assert_false(tp_group_alive(pid0));
	assert_int_equal(pool_procs(t->p), 1);
	tp_free(t);
}

/* A crash in the middle of an item fails that item as a system failure
 * with the stderr tail; the replica restarts in place for the rest. */
static void
test_crash_mid_item(void **state)
{
	tp  *t = tp_new(true);
	int  pid0;
	char why[128];

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do [ \"$x\" = die ] && { "
	                          "echo \"dying on $x\" >&2; exit 7; }; [ "
	                          "\"$x\" = slow ] && sleep 30; echo "
	                          "\"r$x\"; done"});
	pid0 = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "a", 0);
	tp_submit(t, "env", 1, "die", 0);
	tp_submit(t, "env", 2, "b", 0);
	tp_submit(t, "env", 3, "c", 0);
	tp_wait_reports(t, 4);
	tp_assert_ok(t, 0, "ra");
	snprintf(why, sizeof(why), "replica r-1 died (exit 7): dying on die");
	tp_assert_failed(t, 1, true, why);
	assert_int_equal(tp_rep(t, 1)->exit_code, 7);
	tp_assert_ok(t, 2, "rb");
	tp_assert_ok(t, 3, "rc");
	assert_int_not_equal(tp_pid(t, "r-1"), pid0);
	assert_false(tp_group_alive(pid0));
	assert_int_equal(pool_procs(t->p), 1);
	/* Killed by a signal mid-item: the same, with the signal. */
	pid0 = tp_pid(t, "r-1");
	tp_submit(t, "env", 4, "slow", 0);
	tp_submit(t, "env", 5, "z", 0);
	(void)tp_until(t, tp_never, NULL, 100); /* let it start on slow */
	kill(-pid0, SIGKILL);
	tp_wait_reports(t, 6);
	tp_assert_failed(t, 4, true, "replica r-1 died (signal 9");
	assert_int_equal(tp_rep(t, 4)->exit_code, -9);
	tp_assert_ok(t, 5, "rz");
	/* Killed while idle with nothing queued: gone, and restarted under
	 * the same id (the last list named it) when an item comes. */
	pid0 = tp_pid(t, "r-1");
	kill(-pid0, SIGKILL);
	assert_true(
	    tp_until(t, tp_exits, (void *)(intptr_t)(t->exits + 1), 5000));
	assert_int_equal(pool_procs(t->p), 0);
	tp_submit(t, "env", 6, "again", 0);
	tp_wait_reports(t, 7);
	tp_assert_ok(t, 6, "ragain");
	tp_free(t);
}

/* A replica that dies at once, 3 times in a row: the id is given up and
 * the queued items fail with its stderr, instead of waiting forever. */
static void
test_crash_loop(void **state)
{
	tp    *t = tp_new(true);
	size_t n;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "read x; echo \"no model file\" >&2; exit "
	                          "1"});
	assert_non_null(tp_status(t, "r-1", NULL)); /* the last list */
	for (int i = 0; i < 5; i++)
		tp_submit(t, "env", i, "item", 0);
	tp_wait_reports(t, 5);
	for (int i = 0; i < 5; i++)
		tp_assert_failed(t, i, true, "no model file");
	for (int i = 0; i < 3; i++)
		tp_assert_failed(t, i, true, "replica r-1 died (exit 1)");
	tp_assert_failed(t, 3, true, "3 times in a row");
	tp_assert_failed(t, 4, true, "3 times in a row");
	assert_true(tp_until(t, tp_no_procs, NULL, 5000));
	assert_int_equal(pool_items(t->p), 0);
	/* Nothing left to run them: new items are refused at once, though
	 * the last list named the id (given up, it does not come back). */
	assert_int_equal(tp_submit_n(t, "env", 5, "x", 1, 0), TROUPE_ENOTFOUND);
	assert_null(tp_status(t, "r-1", &n));
	assert_int_equal(n, 0);
	tp_free(t);
}

/* A per-item timeout kills the replica (a user failure); it restarts in
 * place for the next item. */
static void
test_timeout_kills_and_replaces(void **state)
{
	tp     *t = tp_new(true);
	int64_t t0 = (int64_t)uv_hrtime() / 1000000, dt;
	int     pid0;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do [ \"$x\" = slow ] && "
	                          "sleep 30; echo \"r$x\"; done"});
	pid0 = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "slow", 300);
	tp_submit(t, "env", 1, "fast", 300);
	tp_wait_reports(t, 2);
	dt = (int64_t)uv_hrtime() / 1000000 - t0;
	tp_assert_failed(t, 0, false, "timed out after 300 ms");
	tp_assert_ok(t, 1, "rfast");
	assert_true(dt < 5000);
	assert_int_not_equal(tp_pid(t, "r-1"), pid0);
	assert_false(tp_group_alive(pid0)); /* the sleep went too */
	tp_free(t);
}

/* A cancelled item: its replica is killed, no report, and the next item
 * runs on the replica restarted in place. */
static void
test_cancel(void **state)
{
	tp *t = tp_new(true);
	int pid0;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do [ \"$x\" = slow ] && "
	                          "sleep 30; echo \"r$x\"; done"});
	pid0 = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "slow", 0);
	tp_submit(t, "env", 1, "queued", 0);
	tp_submit(t, "env", 2, "next", 0);
	pool_cancel(t->p, &t->items[1].pi); /* from the queue */
	pool_cancel(t->p, &t->items[0].pi); /* in hand: killed */
	assert_int_equal(pool_items(t->p), 1);
	tp_wait_reports(t, 1);
	assert_null(t->reps[0]);
	assert_null(t->reps[1]);
	tp_assert_ok(t, 2, "rnext");
	assert_int_not_equal(tp_pid(t, "r-1"), pid0);
	assert_false(tp_group_alive(pid0));
	tp_free(t);
}

/* frames: binary data with NUL bytes round trips; a handler's exception
 * fails that item alone; the same process goes on. */
static void
test_frames(void **state)
{
	tp           *t = tp_new(true);
	char          cmd[PATH_MAX * 2 + 512];
	const uint8_t bin[] = {'a', 0, 'b', '\n', 0xff, 0, 'z'};
	uint8_t       rev[sizeof(bin)];
	int           pid;

	snprintf(cmd, sizeof(cmd),
	         "python3 -c 'import sys; sys.path.insert(0, \"%s/client/"
	         "python\"); import troupe_actor\n"
	         "def h(b):\n"
	         "    if b == b\"bad\": raise ValueError(\"bad input: \" + "
	         "b.decode())\n"
	         "    return b[::-1]\n"
	         "troupe_actor.serve(h)'",
	         tp_src);
	tp_start(t, "r-1", "echo", &(tp_env){.cmd = cmd, .frames = true});
	snprintf(cmd, sizeof(cmd),
	         "python3 %s/tests/bench/actors/detect.py "
	         "--frames",
	         tp_src);
	tp_start(t, "r-2", "detect", &(tp_env){.cmd = cmd, .frames = true});
	pid = tp_pid(t, "r-1");
	assert_int_equal(tp_submit_n(t, "echo", 0, bin, sizeof(bin), 0), 0);
	tp_submit(t, "echo", 1, "bad", 0);
	assert_int_equal(tp_submit_n(t, "echo", 2, "", 0, 0), 0);
	tp_submit(t, "echo", 3, "abc", 0);
	tp_submit(t, "detect", 4, "5", 0);
	tp_submit(t, "detect", 5, "20", 0);
	tp_submit(t, "detect", 6, "not a number", 0);
	tp_submit(t, "detect", 7, "12", 0);
	tp_wait_reports(t, 8);
	for (size_t i = 0; i < sizeof(bin); i++)
		rev[i] = bin[sizeof(bin) - 1 - i];
	assert_int_equal(tp_rep(t, 0)->state,
	                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(tp_rep(t, 0)->output.len, sizeof(bin));
	assert_memory_equal(tp_rep(t, 0)->output.data, rev, sizeof(rev));
	tp_assert_failed(t, 1, false, "bad input: bad");
	tp_assert_ok(t, 2, "");
	tp_assert_ok(t, 3, "cba");
	tp_assert_ok(t, 4, "false");
	tp_assert_ok(t, 5, "true");
	tp_assert_failed(t, 6, false, "not a number");
	tp_assert_ok(t, 7, "true");
	assert_int_equal(tp_pid(t, "r-1"), pid);
	assert_int_equal(tp_status(t, "r-1", NULL)->items_served, 4);
	assert_int_equal(tp_status(t, "r-2", NULL)->items_served, 4);
	tp_free(t);
}

/* The memory cap: a replica that allocates past env.resources.mem_bytes
 * fails (Python raises MemoryError and dies); one within it works.  With
 * the shim (RLIMIT_AS) and without (ulimit -v). */
static void
mem_cap(bool shim)
{
	tp *t = tp_new(shim);

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "python3 -c 'import sys\n"
	                          "for l in sys.stdin:\n"
	                          "    b = bytearray(int(l))\n"
	                          "    print(len(b), flush=True)'",
	                   .mem = 200u << 20});
	tp_submit(t, "env", 0, "1000000", 0);
	tp_submit(t, "env", 1, "1000000000", 0);
	tp_submit(t, "env", 2, "2000000", 0);
	tp_wait_reports(t, 3);
	tp_assert_ok(t, 0, "1000000");
	tp_assert_failed(t, 1, true, "MemoryError");
	tp_assert_ok(t, 2, "2000000");
	tp_free(t);
}

static void
test_mem_cap_shim(void **state)
{
	mem_cap(true);
}

static void
test_mem_cap_plain(void **state)
{
	mem_cap(false);
}

/* Items for an environment whose replica idled out since the last status
 * list restart it under the same id (the scheduler still counts it); an
 * environment never seen is refused. */
static void
test_restart_listed_id(void **state)
{
	tp    *t = tp_new(true);
	size_t n;

	assert_int_equal(tp_submit_n(t, "nope", 0, "x", 1, 0),
	                 TROUPE_ENOTFOUND);
	tp_start(t, "r-7", "env", &(tp_env){.cmd = LINES_CMD, .ttl = 1});
	assert_non_null(tp_status(t, "r-7", &n)); /* the last list */
	assert_true(tp_until(t, tp_no_procs, NULL, 5000));
	tp_submit(t, "env", 1, "back", 0);
	tp_wait_reports(t, 1);
	tp_assert_ok(t, 1, "rback");
	assert_non_null(tp_status(t, "r-7", &n));
	assert_int_equal(n, 1);
	/* Once a list without it went out, the id is not ours any more. */
	pool_stop(t->p, "r-7");
	assert_true(tp_until(t, tp_no_procs, NULL, 5000));
	assert_null(tp_status(t, "r-7", &n));
	assert_int_equal(tp_submit_n(t, "env", 2, "x", 1, 0), TROUPE_ENOTFOUND);
	tp_free(t);
}

/* A replica the scheduler stops while busy finishes its item first, then
 * goes and leaves the list at once; stopping is graceful (SIGTERM). */
static void
test_stop_after_item(void **state)
{
	tp    *t = tp_new(true);
	size_t n;
	int    pid;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "trap 'echo got TERM >&2; exit 0' TERM; "
	                          "while read x; do sleep 0.3; echo \"r$x\"; "
	                          "done"});
	pid = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "a", 0);
	pool_stop(t->p, "r-1");
	assert_null(tp_status(t, "r-1", &n));
	tp_wait_reports(t, 1);
	tp_assert_ok(t, 0, "ra");
	assert_true(tp_until(t, tp_no_procs, NULL, 5000));
	assert_false(tp_group_alive(pid));
	tp_free(t);
}

/* Shutting down fails what is queued and what is in hand, and no process
 * is left. */
static void
test_shutdown(void **state)
{
	tp *t = tp_new(true);
	int pids[2];

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do sleep 30; "
	                          "done"});
	tp_start(t, "r-2", "env",
	         &(tp_env){.cmd = "while read x; do sleep 30; "
	                          "done"});
	pids[0] = tp_pid(t, "r-1");
	pids[1] = tp_pid(t, "r-2");
	for (int i = 0; i < 4; i++)
		tp_submit(t, "env", i, "x", 0);
	pool_shutdown(t->p, "the worker stopped");
	tp_wait_reports(t, 4);
	for (int i = 0; i < 4; i++)
		tp_assert_failed(t, i, true, "the worker stopped");
	assert_true(tp_until(t, tp_no_procs, NULL, 5000));
	assert_false(tp_group_alive(pids[0]));
	assert_false(tp_group_alive(pids[1]));
	assert_int_equal(tp_submit_n(t, "env", 5, "x", 1, 0), TROUPE_ESTATE);
	tp_free(t);
}

/* Pipelining: items are written ahead, several at once, and the answers
 * are matched in order.  The actor waits before its first read, then says
 * for each item how many more it had already received behind it. */
static void
test_pipelined_in_order(void **state)
{
	tp  *t = tp_new(true);
	char in[16], want[32];
	int  pid;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "python3 -c 'import os, sys, time\n"
	                          "time.sleep(0.3)\n"
	                          "buf = b\"\"\n"
	                          "while True:\n"
	                          "    d = os.read(0, 65536)\n"
	                          "    if not d: break\n"
	                          "    buf += d\n"
	                          "    while b\"\\n\" in buf:\n"
	                          "        l, buf = buf.split(b\"\\n\", 1)\n"
	                          "        sys.stdout.write(\"%s:%d\\n\" % "
	                          "(l.decode(), buf.count(b\"\\n\")))\n"
	                          "        sys.stdout.flush()'"});
	pid = tp_pid(t, "r-1");
	/* A new process gets one item at a time for its first two
	 * (README, "Per-item logs"): its stderr then may be boot text. */
	tp_submit(t, "env", 0, "i0", 0);
	tp_wait_reports(t, 1);
	tp_submit(t, "env", 1, "i1", 0);
	tp_wait_reports(t, 2);
	tp_assert_ok(t, 0, "i0:0");
	tp_assert_ok(t, 1, "i1:0");
	for (int i = 2; i < 10; i++) {
		snprintf(in, sizeof(in), "i%d", i);
		tp_submit(t, "env", i, in, 0);
	}
	tp_wait_reports(t, 10);
	/* Silent on stderr: the first read took all eight. */
	tp_assert_ok(t, 2, "i2:7");
	for (int i = 0; i < 10; i++) {
		const Troupe__ItemReport *r = tp_rep(t, i);

		snprintf(want, sizeof(want), "i%d:", i);
		assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_true(r->output.len > strlen(want));
		assert_memory_equal(r->output.data, want, strlen(want));
	}
	assert_int_equal(tp_pid(t, "r-1"), pid);
	assert_int_equal(tp_status(t, "r-1", NULL)->items_served, 10);
	tp_free(t);
}

/* Checks item i's stderr log. */
static void
tp_assert_log(tp *t, int i, const char *want)
{
	const Troupe__ItemReport *r = tp_rep(t, i);

	if (r->stderr_log.len != strlen(want) ||
	    memcmp(r->stderr_log.data, want, r->stderr_log.len) != 0)
		fail_msg("item %d: log '%.*s', want '%s'", i,
		         (int)r->stderr_log.len,
		         (const char *)r->stderr_log.data, want);
}

/* A replica's stderr goes with the item it serves; what it writes
 * before its first item (booting) goes with that item.  Once it writes
 * stderr while working, it gets one item at a time, so that items sent
 * together still get their own text only (README, "Per-item logs"). */
static void
test_stderr_attribution(void **state)
{
	tp  *t = tp_new(true);
	char in[16], want[32];

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "python3 -c 'import sys\n"
	                          "sys.stderr.write(\"boot\\n\")\n"
	                          "sys.stderr.flush()\n"
	                          "while True:\n"
	                          "    l = sys.stdin.readline()\n"
	                          "    if not l: break\n"
	                          "    l = l.strip()\n"
	                          "    sys.stderr.write(\"log %s\\n\" % l)\n"
	                          "    sys.stderr.flush()\n"
	                          "    print(l.upper(), flush=True)'"});
	tp_submit(t, "env", 0, "i0", 0);
	tp_wait_reports(t, 1);
	tp_submit(t, "env", 1, "i1", 0);
	tp_wait_reports(t, 2);
	for (int i = 2; i < 8; i++) {
		snprintf(in, sizeof(in), "i%d", i);
		tp_submit(t, "env", i, in, 0);
	}
	tp_wait_reports(t, 8);
	tp_assert_ok(t, 0, "I0");
	tp_assert_log(t, 0, "boot\nlog i0\n");
	for (int i = 1; i < 8; i++) {
		snprintf(want, sizeof(want), "log i%d\n", i);
		tp_assert_log(t, i, want);
	}
	tp_free(t);
}

static void
tp_noop_idle(uv_idle_t *h)
{
}

/* Blocks the loop once, after the poll of its turn, then lets it go. */
static void
tp_block_check(uv_check_t *h)
{
	uv_idle_t *idle = h->data;

	usleep(2000 * 1000);
	uv_check_stop(h);
	uv_idle_stop(idle);
}

/* What a replica wrote to stderr before it stopped answering counts for
 * its item even when the item's timeout comes before the loop read
 * stderr: the log is drained first.  The loop is made to spin (an idle
 * handle) and then blocked for 2 s right after the turn that wrote the
 * item, so that when it runs again the timeout (a timer: timers come
 * before I/O in a turn) fires with the replica's text still in the pipe. */
static void
test_stderr_drained_before_timeout(void **state)
{
	tp        *t = tp_new(true);
	uv_idle_t  idle;
	uv_check_t check;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd =
	                       "python3 -c 'import sys, time\n"
	                       "while True:\n"
	                       "    l = sys.stdin.readline()\n"
	                       "    if not l: break\n"
	                       "    if l.strip() == \"stuck\":\n"
	                       "        sys.stderr.write(\"stuck on it\\n\")\n"
	                       "        sys.stderr.flush()\n"
	                       "        time.sleep(60)\n"
	                       "    print(l.strip(), flush=True)'"});
	tp_submit(t, "env", 0, "warm", 0);
	tp_wait_reports(t, 1);
	tp_assert_ok(t, 0, "warm");
	uv_idle_init(&t->loop, &idle);
	uv_check_init(&t->loop, &check);
	check.data = &idle;
	uv_idle_start(&idle, tp_noop_idle);
	uv_check_start(&check, tp_block_check);
	tp_submit(t, "env", 1, "stuck", 500);
	tp_wait_reports(t, 2);
	tp_assert_failed(t, 1, false, "timed out after 500 ms");
	tp_assert_log(t, 1, "stuck on it\n");
	uv_close((uv_handle_t *)&idle, NULL);
	uv_close((uv_handle_t *)&check, NULL);
	tp_free(t);
}

/* Items go to the replica with the fewest outstanding: two replicas share
 * four items two and two (each answers with its shell's pid); a replica
 * with items outstanding has no TTL running. */
static void
test_pipelined_spread(void **state)
{
	tp         *t = tp_new(true);
	const char *cmd = "while read x; do sleep 0.2; echo $$; done";
	int         out[4], same = 0;

	tp_start(t, "r-1", "env", &(tp_env){.cmd = cmd});
	tp_start(t, "r-2", "env", &(tp_env){.cmd = cmd});
	for (int i = 0; i < 4; i++)
		tp_submit(t, "env", i, "x", 0);
	tp_wait_reports(t, 2);
	assert_int_equal(tp_status(t, "r-1", NULL)->idle_ms_left, 0);
	assert_int_equal(tp_status(t, "r-2", NULL)->idle_ms_left, 0);
	tp_wait_reports(t, 4);
	for (int i = 0; i < 4; i++) {
		const Troupe__ItemReport *r = tp_rep(t, i);
		char                      buf[32];

		assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_true(r->output.len > 0 && r->output.len < sizeof(buf));
		memcpy(buf, r->output.data, r->output.len);
		buf[r->output.len] = '\0';
		out[i] = atoi(buf);
		assert_true(out[i] > 0);
	}
	/* Two pids, each twice: of the 6 pairs, 2 agree. */
	for (int i = 0; i < 4; i++)
		for (int k = i + 1; k < 4; k++)
			same += out[i] == out[k];
	assert_int_equal(same, 2);
	assert_int_equal(tp_status(t, "r-1", NULL)->items_served, 2);
	assert_int_equal(tp_status(t, "r-2", NULL)->items_served, 2);
	tp_free(t);
}

/* An item's timeout runs from when the replica can start it, not from
 * when it was written: three items of 0.4 s each, all written at once,
 * with a timeout of 0.7 s each, all succeed. */
static void
test_pipelined_timeout_from_current(void **state)
{
	tp *t = tp_new(true);
	int pid;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do sleep 0.4; echo \"r$x\"; "
	                          "done"});
	pid = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "a", 700);
	tp_submit(t, "env", 1, "b", 700);
	tp_submit(t, "env", 2, "c", 700);
	tp_wait_reports(t, 3);
	tp_assert_ok(t, 0, "ra");
	tp_assert_ok(t, 1, "rb");
	tp_assert_ok(t, 2, "rc");
	/* Each started when the one before it ended. */
	assert_true(tp_rep(t, 2)->started_ms >= tp_rep(t, 0)->finished_ms);
	assert_int_equal(tp_pid(t, "r-1"), pid);
	tp_free(t);
}

/* The second item outstanding times out: it alone fails (its own
 * failure); the replica is replaced and the items written behind it run
 * on the new process, uncharged (no report but their success). */
static void
test_pipelined_timeout_second(void **state)
{
	tp *t = tp_new(true);
	int pid0;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do [ \"$x\" = slow ] && "
	                          "sleep 30; echo \"r$x\"; done"});
	pid0 = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "a", 300);
	tp_submit(t, "env", 1, "slow", 300);
	tp_submit(t, "env", 2, "b", 300);
	tp_submit(t, "env", 3, "c", 300);
	tp_wait_reports(t, 4);
	tp_assert_ok(t, 0, "ra");
	tp_assert_failed(t, 1, false, "timed out after 300 ms");
	tp_assert_ok(t, 2, "rb");
	tp_assert_ok(t, 3, "rc");
	assert_int_not_equal(tp_pid(t, "r-1"), pid0);
	assert_false(tp_group_alive(pid0));
	assert_int_equal(pool_items(t->p), 0);
	tp_free(t);
}

/* A crash with items queued behind the current one: the current one fails
 * as a system failure, those behind run again on the replacement; a
 * crash that kills several replicas' worth of items does not count
 * against the id (it is not given up). */
static void
test_pipelined_crash_with_queue(void **state)
{
	tp  *t = tp_new(true);
	char in[16], want[16];
	int  pid0;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do case $x in die*) echo "
	                          "\"dying on $x\" >&2; exit 7;; esac; echo "
	                          "\"r$x\"; done"});
	pid0 = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "a", 0);
	tp_submit(t, "env", 1, "die1", 0);
	for (int i = 2; i < 10; i++) {
		snprintf(in, sizeof(in), "%d", i);
		tp_submit(t, "env", i, in, 0);
	}
	tp_submit(t, "env", 10, "die2", 0);
	tp_submit(t, "env", 11, "z", 0);
	tp_wait_reports(t, 12);
	tp_assert_ok(t, 0, "ra");
	tp_assert_failed(t, 1, true,
	                 "replica r-1 died (exit 7): dying on die1");
	for (int i = 2; i < 10; i++) {
		snprintf(want, sizeof(want), "r%d", i);
		tp_assert_ok(t, i, want);
	}
	tp_assert_failed(t, 10, true, "dying on die2");
	tp_assert_ok(t, 11, "rz");
	assert_int_not_equal(tp_pid(t, "r-1"), pid0);
	assert_int_equal(pool_procs(t->p), 1);
	assert_int_equal(pool_items(t->p), 0);
	tp_free(t);
}

/* A cancelled item waiting behind the current one: no report, and the
 * replica is not killed; the items around it succeed. */
static void
test_pipelined_cancel_queued(void **state)
{
	tp *t = tp_new(true);
	int pid;

	tp_start(t, "r-1", "env",
	         &(tp_env){.cmd = "while read x; do sleep 0.2; echo \"r$x\"; "
	                          "done"});
	pid = tp_pid(t, "r-1");
	tp_submit(t, "env", 0, "a", 0);
	tp_submit(t, "env", 1, "b", 0);
	tp_submit(t, "env", 2, "c", 0);
	(void)tp_until(t, tp_never, NULL, 50); /* written */
	pool_cancel(t->p, &t->items[1].pi);
	assert_int_equal(pool_items(t->p), 2);
	tp_wait_reports(t, 2);
	tp_assert_ok(t, 0, "ra");
	tp_assert_ok(t, 2, "rc");
	assert_null(t->reps[1]);
	assert_int_equal(tp_pid(t, "r-1"), pid);
	/* Nothing more comes for the cancelled one. */
	(void)tp_until(t, tp_never, NULL, 300);
	assert_null(t->reps[1]);
	assert_int_equal(t->n_reps, 2);
	assert_int_equal(tp_status(t, "r-1", NULL)->state,
	                 TROUPE__REPLICA_STATE__REPLICA_IDLE);
	tp_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_pid_many_items),
	    cmocka_unit_test(test_lines_newline_refused),
	    cmocka_unit_test(test_ttl_expiry),
	    cmocka_unit_test(test_max_items_recycles),
	    cmocka_unit_test(test_crash_mid_item),
	    cmocka_unit_test(test_crash_loop),
	    cmocka_unit_test(test_timeout_kills_and_replaces),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_frames),
	    cmocka_unit_test(test_mem_cap_shim),
	    cmocka_unit_test(test_mem_cap_plain),
	    cmocka_unit_test(test_restart_listed_id),
	    cmocka_unit_test(test_stop_after_item),
	    cmocka_unit_test(test_shutdown),
	    cmocka_unit_test(test_pipelined_in_order),
	    cmocka_unit_test(test_stderr_attribution),
	    cmocka_unit_test(test_stderr_drained_before_timeout),
	    cmocka_unit_test(test_pipelined_spread),
	    cmocka_unit_test(test_pipelined_timeout_from_current),
	    cmocka_unit_test(test_pipelined_timeout_second),
	    cmocka_unit_test(test_pipelined_crash_with_queue),
	    cmocka_unit_test(test_pipelined_cancel_queued),
	};
	char *slash;

	/* __FILE__ is tests/unit/test_replica.c in the source tree. */
	snprintf(tp_src, sizeof(tp_src), "%s", __FILE__);
	for (int i = 0; i < 3 && (slash = strrchr(tp_src, '/')) != NULL; i++)
		*slash = '\0';
	signal(SIGPIPE, SIG_IGN);
	troupe_log_init("test_replica", LOG_LVL_ERROR);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
