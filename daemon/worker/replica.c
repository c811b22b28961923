/*
 * One actor replica process, its life (replica.h has the contract,
 * replica_int.h how replica.c and replica_io.c share the work): start,
 * the getters, the timers (TTL, the current item's timeout, the grace
 * after SIGTERM), stop, kill, cancel, and the answers owed to the items
 * outstanding when the process is gone.
 *
 * Async contract: everything runs on the loop thread that owns the
 * replica; the caller (pool_rep.c) calls in, and answered and exited are
 * called only from libuv callbacks (the timers here, the child's close,
 * replica_io.c's reads and writes), never from inside a call to this
 * module.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "launch.h"
#include "log.h"
#include "replica_int.h"
#include "runner.h"

static void replica_idle(replica *r);

/* Getters. */

size_t
replica_stderr_tail(const replica *r, char *buf, size_t len)
{
	return child_tail(&r->c, buf, len);
}

bool
replica_logs_while_busy(const replica *r)
{
	return r->err_busy;
}

Troupe__ReplicaState
replica_state(const replica *r)
{
	if (r->stopping || r->c.exited)
		return TROUPE__REPLICA_STATE__REPLICA_STOPPING;
	if (r->served == 0)
		return TROUPE__REPLICA_STATE__REPLICA_BOOTING;
	return r->q_len > 0 ? TROUPE__REPLICA_STATE__REPLICA_BUSY
	                    : TROUPE__REPLICA_STATE__REPLICA_IDLE;
}

bool
replica_busy(const replica *r)
{
	return r->q_len > 0;
}

size_t
replica_outstanding(const replica *r)
{
	return r->q_len;
}

bool
replica_stopping(const replica *r)
{
	return r->stopping || r->c.exited;
}

int
replica_pid(const replica *r)
{
	return r->c.spawned ? r->c.pid : 0;
}

uint64_t
replica_served(const replica *r)
{
	return r->served;
}

uint32_t
replica_idle_ms_left(const replica *r)
{
	uint64_t idle;

	if (r->q_len > 0 || replica_stopping(r))
		return 0;
	idle = uv_now(r->loop) - r->idle_since;
	if (idle >= r->ttl_ms)
		return 0;
	return r->ttl_ms - idle > UINT32_MAX ? UINT32_MAX
	                                     : (uint32_t)(r->ttl_ms - idle);
}

bool
replica_requested(const replica *r)
{
	return r->requested;
}

bool
replica_expired(const replica *r)
{
	return r->expired;
}

int
replica_exit_code(const replica *r)
{
	return child_exit_code(&r->c);
}

void
replica_describe_exit(const replica *r, char *buf, size_t len)
{
	if (r->c.term_signal != 0)
		snprintf(buf, len, "signal %d (%s)", r->c.term_signal,
		         strsignal(r->c.term_signal));
	else
		snprintf(buf, len, "exit %d", r->c.exit_status);
}

const char *
replica_id(const replica *r)
{
	return r->id;
}

/* Logs. */

static void
replica_err(void *owner, const char *p, size_t n)
{
	replica *r = owner;

	logcap_add(&r->log, p, n);
	/* While its first item is current, stderr may be boot text only;
	 * from the second on it is about items. */
	if (r->q_len > 0 && r->served > 0)
		r->err_busy = true;
}

void
replica_take_log(replica *r, replica_result *res, uint8_t **own)
{
	size_t len = 0;

	child_err_drain(&r->c);
	*own = NULL;
	if (logcap_take(&r->log, own, &len, &res->log_dropped) != 0)
		return;
	res->log = *own;
	res->log_len = len;
}

/* Ending. */

uint64_t
replica_ran(const replica *r)
{
	return uv_now(r->loop) - r->since;
}

/* Answers the items outstanding of a replica that is gone: the current one
 * as died (why we stopped it, or what killed it with the stderr tail), the
 * others as unstarted, the newest first (so that a caller putting each
 * back at the front of a queue keeps their order). */
static void
replica_answer_gone(replica *r)
{
	replica_result res = {0};
	char           how[64], tail[CHILD_STDERR_TAIL];
	char          *msg = NULL, *behind = NULL;
	uint8_t       *log = NULL;

	if (r->q_len == 0)
		return;
	res.system_failure = true;
	res.exit_code = replica_exit_code(r);
	if (r->requested && r->fail_why != NULL) {
		res.error = r->fail_why;
	} else {
		replica_describe_exit(r, how, sizeof(how));
		replica_stderr_tail(r, tail, sizeof(tail));
		if (asprintf(&msg, "replica %s died (%s)%s%s", r->id, how,
		             tail[0] != '\0' ? ": " : "", tail) < 0)
			msg = NULL;
		res.error = msg != NULL ? msg : "the replica died";
	}
	if (asprintf(&behind, "replica %s went before it started the item",
	             r->id) < 0)
		behind = NULL;
	while (r->q_len > 1) {
		replica_result un = res;
		replica_slot   s = replica_slot_pop(r);

		un.unstarted = true;
		if (r->fail_why == NULL || !r->requested)
			un.error = behind != NULL ? behind : "the replica went";
		if (s.tag != NULL)
			r->answered(r->arg, r, s.tag, &un);
	}
	if (r->q_len == 1) {
		replica_slot s = replica_slot_shift(r);

		res.ran_ms = replica_ran(r);
		replica_take_log(r, &res, &log);
		if (s.tag != NULL)
			r->answered(r->arg, r, s.tag, &res);
	}
	free(log);
	free(behind);
	free(msg);
}

/* Every handle is closed: answer, tell, free. */
static void
replica_closed(void *owner)
{
	replica *r = owner;

	/* Nothing sent from here on is written: a callback's re-entrant
	 * replica_send finds it stopping. */
	r->stopping = true;
	while (r->q_len > 0)
		replica_answer_gone(r);
	r->exited(r->arg, r);
	free(r->q);
	free(r->wbuf);
	free(r->inbuf);
	free(r->fail_why);
	free(r->id);
	logcap_clear(&r->log);
	free(r);
}

static void
replica_set_why(replica *r, const char *why)
{
	if (r->fail_why == NULL && why != NULL)
		r->fail_why = strdup(why);
}

static void
replica_grace_cb(uv_timer_t *t)
{
	replica *r = child_owner(t);

	log_debug("replica %s: still there %u ms after SIGTERM: SIGKILL", r->id,
	          r->stop_grace_ms);
	child_killpg(&r->c, SIGKILL);
}

/* Stops taking items; closes stdin so a replica reading it sees EOF. */
static void
replica_begin_stop(replica *r)
{
	r->stopping = true;
	uv_timer_stop(&r->c.timer);
	child_close_in(&r->c);
}

void
replica_stop(replica *r, const char *why)
{
	if (r == NULL || r->c.exited || r->stopping)
		return;
	r->requested = true;
	replica_set_why(r, why);
	replica_begin_stop(r);
	if (r->shim)
		kill(r->c.pid, SIGTERM); /* the shim passes it to its group */
	else
		child_killpg(&r->c, SIGTERM);
	uv_timer_start(&r->c.timer, replica_grace_cb, r->stop_grace_ms, 0);
}

void
replica_kill(replica *r, const char *why, bool abandon)
{
	if (r == NULL || r->c.exited)
		return;
	r->requested = true;
	if (abandon && r->q_len > 0)
		replica_slot_at(r, 0)->tag = NULL;
	else if (!abandon)
		replica_set_why(r, why);
	replica_begin_stop(r);
	child_killpg(&r->c, SIGKILL);
}

bool
replica_cancel(replica *r, void *tag)
{
	if (r == NULL || tag == NULL)
		return false;
	for (size_t i = 0; i < r->q_len; i++) {
		replica_slot *s = replica_slot_at(r, i);

		if (s->tag != tag)
			continue;
		if (i == 0 && !r->c.exited) {
			/* It is working on it: the process goes. */
			replica_kill(r, NULL, true);
			return true;
		}
		s->tag = NULL; /* the answer will be dropped */
		return false;
	}
	return false;
}

void
replica_broken(replica *r, const char *why, bool user)
{
	replica_result res = {0};

	if (r->q_len > 0 && user) {
		void    *tag = replica_slot_at(r, 0)->tag;
		uint8_t *log = NULL;

		res.ran_ms = replica_ran(r);
		replica_take_log(r, &res, &log);
		replica_kill(r, NULL, true); /* clears the tag */
		res.error = why;
		if (tag != NULL)
			r->answered(r->arg, r, tag, &res);
		free(log);
		return;
	}
	if (!r->stopping && !r->c.exited) {
		log_debug("replica %s: %s", r->id, why);
		/* Not requested: it counts as dying on its own. */
		replica_begin_stop(r);
		child_killpg(&r->c, SIGKILL);
	}
}

/* Timers. */

static void
replica_ttl_cb(uv_timer_t *t)
{
	replica *r = child_owner(t);

	if (r->q_len > 0 || r->stopping)
		return;
	log_debug("replica %s: idle for %" PRIu64 " ms: stopping", r->id,
	          r->ttl_ms);
	replica_stop(r, NULL);
	r->requested = false;
	r->expired = true;
}

static void
replica_timeout_cb(uv_timer_t *t)
{
	replica *r = child_owner(t);
	char     why[64];

	if (r->q_len == 0)
		return;
	snprintf(why, sizeof(why), "timed out after %" PRIu32 " ms",
	         replica_slot_at(r, 0)->timeout_ms);
	replica_broken(r, why, true);
}

void
replica_current(replica *r)
{
	uint32_t ms;

	r->since = uv_now(r->loop);
	if (r->stopping || r->c.exited)
		return;
	uv_timer_stop(&r->c.timer);
	if (r->q_len == 0) {
		replica_idle(r);
		return;
	}
	if ((ms = replica_slot_at(r, 0)->timeout_ms) > 0)
		uv_timer_start(&r->c.timer, replica_timeout_cb, ms, 0);
}

static void
replica_idle(replica *r)
{
	r->idle_since = uv_now(r->loop);
	if (!r->stopping && !r->c.exited)
		uv_timer_start(&r->c.timer, replica_ttl_cb, r->ttl_ms, 0);
}

/* The process. */

static void
replica_exit(void *owner)
{
	replica *r = owner;

	log_debug("replica %s (pid %d) exited: status %d, signal %d", r->id,
	          r->c.pid, r->c.exit_status, r->c.term_signal);
}

/* Start. */

static int
replica_spawn(replica *r, const replica_conf *c)
{
	const Troupe__ActorEnv *e = c->env;
	launch_args             args = {0};
	char                  **env = NULL;
	char                   *own[2] = {NULL, NULL};
	char *const            *sets[2] = {e->env, own};
	size_t                  sizes[2] = {e->n_env, 2};
	uint64_t mem = e->resources != NULL ? e->resources->mem_bytes : 0;
	char     why[256];
	int      rv;

	if (asprintf(&own[0], "TROUPE_REPLICA=%s", c->id) < 0)
		own[0] = NULL;
	if (asprintf(&own[1], "TROUPE_ACTOR=%s", c->env_key) < 0)
		own[1] = NULL;
	if (own[0] == NULL || own[1] == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	if ((rv = launch_env(sets, sizes, 2, &env)) != 0 ||
	    (rv = launch_args_make(&args, c->shim, e->command, mem, c->user)) !=
	        0)
		goto fail;
	child_spawn(&r->c, args.argv, env);
	if (r->c.spawn_err != 0) {
		int n =
		    snprintf(why, sizeof(why), "cannot start the replica: %s",
		             uv_strerror(r->c.spawn_err));

		child_tail_add(&r->c, why, (size_t)n);
		r->c.exit_status = 127;
	}
	rv = 0;
fail:
	launch_args_clear(&args);
	free(env);
	free(own[0]);
	free(own[1]);
	return rv;
}

int
replica_start(uv_loop_t *loop, const replica_conf *c,
              replica_answer_fn answered, replica_exit_fn exited, void *arg,
              replica **out)
{
	const Troupe__ActorEnv *e = c->env;
	replica                *r = NULL;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->id = strdup(c->id)) == NULL) {
		free(r);
		return TROUPE_ENOMEM;
	}
	r->loop = loop;
	r->answered = answered;
	r->exited = exited;
	r->arg = arg;
	r->frames = e->protocol == TROUPE__PROTOCOL__PROTOCOL_FRAMES;
	r->shim = c->shim != NULL;
	r->max_output = c->max_output > 0 ? c->max_output : RUNNER_MAX_OUTPUT;
	r->max_in = r->max_output + (r->frames ? REPLICA_FRAME_SLACK : 0);
	r->stop_grace_ms = c->stop_grace_ms > 0 ? c->stop_grace_ms : 2000;
	r->ttl_ms = (uint64_t)(e->ttl_seconds > 0 ? e->ttl_seconds
	                                          : REPLICA_TTL_DEFAULT_S) *
	            1000;
	child_init(&r->c, loop, r,
	           c->exit_grace_ms > 0 ? c->exit_grace_ms : 1000, replica_exit,
	           replica_closed);
	r->c.on_err = replica_err;
	if (replica_spawn(r, c) != 0) {
		static const char oom[] = "cannot start the replica: out of "
		                          "memory";

		child_tail_add(&r->c, oom, sizeof(oom) - 1);
		r->c.exit_status = 127;
	}
	*out = r;
	if (!r->c.spawned) {
		r->c.exited = r->c.out_done = r->c.err_done = true;
		r->stopping = true;
		child_finish(&r->c);
		return 0;
	}
	log_debug("replica %s of %s: pid %d", c->id, c->env_key, r->c.pid);
	child_read_start(&r->c, replica_out_alloc, replica_out_read);
	replica_idle(r);
	return 0;
}
