/*
 * One actor replica process (see replica.h for the contract).
 *
 * Threading: everything runs on the loop thread that owns the replica.
 * One timer (its child's, child.h) serves every phase, restarted with the
 * callback of the phase: the TTL while idle, the item's timeout while
 * busy, the grace between SIGTERM and SIGKILL while stopping, then the
 * child's wait for the pipes after the exit.  A replica ends when its
 * child does; the last close callback answers an item still in hand and
 * calls exited.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.pb-c.h"
#include "child.h"
#include "log.h"
#include "replica.h"
#include "runner.h"
#include "launch.h"
#include "troupe/actor.h"
#include "troupe/error.h"

#define REPLICA_TTL_DEFAULT_S 90
#define REPLICA_FRAME_SLACK   64 /* an ActorReply's fields beyond output */

struct replica {
	child      c;
	uv_loop_t *loop;

	replica_answer_fn answered;
	replica_exit_fn   exited;
	void             *arg;

	char    *id;
	bool     frames;
	bool     shim;   /* SIGTERM goes to the shim, which passes it on */
	size_t   max_in; /* the most stdout one answer may take */
	size_t   max_output;
	unsigned stop_grace_ms;
	uint64_t ttl_ms;

	/* The item in hand. */
	bool     busy;
	uint64_t seq;
	uint32_t timeout_ms;

	uint8_t *inbuf; /* stdout not yet answered */
	size_t   in_len, in_cap;

	uint64_t idle_since; /* uv_now when it last became idle */
	uint64_t served;
	bool     stopping;  /* takes no more items */
	bool     requested; /* we stopped or killed it */
	bool     expired;   /* its TTL stopped it */
	char    *fail_why;  /* an item in hand fails with this */
};

static void replica_idle(replica *r);

/* Getters. */

size_t
replica_stderr_tail(const replica *r, char *buf, size_t len)
{
	return child_tail(&r->c, buf, len);
}

Troupe__ReplicaState
replica_state(const replica *r)
{
	if (r->stopping || r->c.exited)
		return TROUPE__REPLICA_STATE__REPLICA_STOPPING;
	if (r->served == 0)
		return TROUPE__REPLICA_STATE__REPLICA_BOOTING;
	return r->busy ? TROUPE__REPLICA_STATE__REPLICA_BUSY
	               : TROUPE__REPLICA_STATE__REPLICA_IDLE;
}

bool
replica_busy(const replica *r)
{
	return r->busy;
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

	if (r->busy || replica_stopping(r))
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

/* Ending. */

static void
replica_answer(replica *r, const replica_result *res)
{
	r->busy = false;
	r->answered(r->arg, r, res);
}

/* Answers the item in hand as died: why we stopped it, or what killed it
 * with the stderr tail. */
static void
replica_answer_died(replica *r)
{
	replica_result res = {0};
	char           how[64], tail[CHILD_STDERR_TAIL];
	char          *msg = NULL;

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
	replica_answer(r, &res);
	free(msg);
}

/* Every handle is closed: answer, tell, free. */
static void
replica_closed(void *owner)
{
	replica *r = owner;

	if (r->busy)
		replica_answer_died(r);
	r->exited(r->arg, r);
	free(r->inbuf);
	free(r->fail_why);
	free(r->id);
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
	if (abandon)
		r->busy = false;
	else
		replica_set_why(r, why);
	replica_begin_stop(r);
	child_killpg(&r->c, SIGKILL);
}

/* The replica cannot go on (it broke the protocol, answered too much, or
 * closed a pipe while alive): kill it.  An item in hand fails with why:
 * as the item's failure when user, else as the replica's death. */
static void
replica_broken(replica *r, const char *why, bool user)
{
	replica_result res = {0};

	if (r->busy && user) {
		replica_kill(r, NULL, true);
		res.error = why;
		replica_answer(r, &res);
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

	if (r->busy || r->stopping)
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

	if (!r->busy)
		return;
	snprintf(why, sizeof(why), "timed out after %" PRIu32 " ms",
	         r->timeout_ms);
	replica_broken(r, why, true);
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

/* Answers. */

static void
replica_answer_ok(replica *r, const uint8_t *out, size_t len)
{
	replica_result res = {0};

	res.ok = true;
	res.replied = true;
	res.output = out;
	res.len = len;
	r->served++;
	uv_timer_stop(&r->c.timer);
	replica_idle(r);
	replica_answer(r, &res);
}

static void
replica_answer_error(replica *r, const char *error)
{
	replica_result res = {0};

	res.error = error;
	res.replied = true;
	r->served++;
	uv_timer_stop(&r->c.timer);
	replica_idle(r);
	replica_answer(r, &res);
}

/* Lines: the first "\n" ends the answer; the rest is dropped. */
static void
replica_lines(replica *r, size_t from)
{
	uint8_t *nl = memchr(r->inbuf + from, '\n', r->in_len - from);
	char     why[96];

	if (nl != NULL) {
		size_t len = (size_t)(nl - r->inbuf);

		r->in_len = 0;
		replica_answer_ok(r, r->inbuf, len);
		return;
	}
	if (r->in_len > r->max_output) {
		snprintf(why, sizeof(why),
		         "output exceeds the limit of %zu bytes",
		         r->max_output);
		uv_read_stop((uv_stream_t *)&r->c.out);
		replica_broken(r, why, true);
	}
}

/* Frames: one ActorReply echoing the request's seq. */
static void
replica_frames(replica *r)
{
	Troupe__ActorReply *rep = NULL;
	size_t              hl = 0, ml = 0;
	char                why[160];
	int                 rv;

	rv = troupe_frame_header(r->inbuf, r->in_len, r->max_in, &hl, &ml);
	if (rv == TROUPE_EFULL) {
		snprintf(why, sizeof(why),
		         "output exceeds the limit of %zu bytes",
		         r->max_output);
		goto broken;
	}
	if (rv != 0) {
		snprintf(why, sizeof(why),
		         "replica %s broke the frames protocol: a bad length "
		         "prefix",
		         r->id);
		goto broken;
	}
	if (hl == 0 || r->in_len < hl + ml)
		return; /* more to come */
	rep = troupe__actor_reply__unpack(NULL, ml, r->inbuf + hl);
	if (rep == NULL || rep->seq != r->seq) {
		if (rep == NULL)
			snprintf(
			    why, sizeof(why),
			    "replica %s broke the frames protocol: a reply "
			    "that is not an ActorReply",
			    r->id);
		else
			snprintf(why, sizeof(why),
			         "replica %s broke the frames protocol: reply "
			         "%" PRIu64 " to request %" PRIu64,
			         r->id, rep->seq, r->seq);
		if (rep != NULL)
			troupe__actor_reply__free_unpacked(rep, NULL);
		goto broken;
	}
	r->in_len = 0;
	if (rep->result_case == TROUPE__ACTOR_REPLY__RESULT_ERROR) {
		const char *e =
		    rep->error[0] != '\0' ? rep->error : "the actor failed";

		replica_answer_error(r, e);
	} else if (rep->result_case == TROUPE__ACTOR_REPLY__RESULT_OUTPUT) {
		replica_answer_ok(r, rep->output.data, rep->output.len);
	} else {
		replica_answer_ok(r, NULL, 0);
	}
	troupe__actor_reply__free_unpacked(rep, NULL);
	return;
broken:
	uv_read_stop((uv_stream_t *)&r->c.out);
	replica_broken(r, why, true);
}

static void
replica_out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	replica *r = child_owner(h);

	child_out_room(&r->inbuf, &r->in_cap, r->in_len, r->max_in, buf);
}

static void
replica_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	replica *r = child_owner(s);
	size_t   from = r->in_len;

	if (n == 0)
		return;
	if (n < 0) {
		if (n == UV_ENOBUFS)
			replica_broken(r, "out of memory for the output",
			               false);
		else
			replica_broken(r, "it closed its stdout", false);
		child_out_end(&r->c);
		return;
	}
	if (!r->busy || r->stopping) {
		r->in_len = 0; /* no item asked for this */
		return;
	}
	r->in_len += (size_t)n;
	if (r->frames)
		replica_frames(r);
	else
		replica_lines(r, from);
}

/* One write to stdin with its bytes; freed by its callback (which libuv
 * calls, with UV_ECANCELED, for writes still pending when stdin closes). */
typedef struct replica_write {
	uv_write_t req;
	uint8_t    data[];
} replica_write;

static void
replica_write_cb(uv_write_t *w, int status)
{
	replica *r = w->data;

	free(w);
	/* A replica that stopped reading its stdin cannot serve: EPIPE means
	 * it closed it (it is probably exiting). */
	if (status != 0 && status != UV_ECANCELED)
		replica_broken(r, "it closed its stdin", false);
}

int
replica_send(replica *r, const uint8_t *input, size_t len, uint32_t timeout_ms)
{
	replica_write *w = NULL;
	uint8_t       *frame = NULL;
	size_t         n = 0;
	uv_buf_t       b;
	int            rv;

	if (r->busy || r->stopping || r->c.exited)
		return TROUPE_ESTATE;
	if (r->frames) {
		Troupe__ActorRequest req;

		troupe__actor_request__init(&req);
		req.seq = r->seq + 1;
		req.input.data = (uint8_t *)input;
		req.input.len = len;
		if ((rv = troupe_frame_encode(&req.base, &frame, &n)) != 0)
			return rv;
		if ((w = malloc(sizeof(*w) + n)) != NULL)
			memcpy(w->data, frame, n);
		free(frame);
	} else {
		n = len + 1;
		if ((w = malloc(sizeof(*w) + n)) != NULL) {
			if (len > 0)
				memcpy(w->data, input, len);
			w->data[len] = '\n';
		}
	}
	if (w == NULL)
		return TROUPE_ENOMEM;
	w->req.data = r;
	b = uv_buf_init((char *)w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&r->c.in, &b, 1,
	             replica_write_cb) != 0) {
		/* stdin is gone: it is dying; the exit will tell. */
		free(w);
		return TROUPE_ESTATE;
	}
	r->seq++;
	r->busy = true;
	r->in_len = 0;
	r->timeout_ms = timeout_ms;
	uv_timer_stop(&r->c.timer);
	if (timeout_ms > 0)
		uv_timer_start(&r->c.timer, replica_timeout_cb, timeout_ms, 0);
	return 0;
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
	    (rv = launch_args_make(&args, c->shim, e->command, mem)) != 0)
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
