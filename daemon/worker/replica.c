/*
 * One actor replica process (see replica.h for the contract).
 *
 * Threading: everything runs on the loop thread that owns the replica.
 * One timer (its child's, child.h) serves every phase, restarted with the
 * callback of the phase: the TTL while idle, the current item's timeout
 * while busy, the grace between SIGTERM and SIGKILL while stopping, then
 * the child's wait for the pipes after the exit.  The child's idle handle
 * writes the items sent during a turn of the loop in one go (a write per
 * item costs a wakeup of the replica per item).  A replica ends when its
 * child does; the last close callback answers the items outstanding and
 * calls exited.
 *
 * The items outstanding are a FIFO ring of slots; the first is the
 * current one.  A slot whose tag is NULL is not answered: cancelled, or
 * (the current one) already answered by a timeout or a kill.  Callbacks
 * may re-enter (send, cancel, stop, kill): a slot is taken off, or its tag
 * cleared, before its answer is delivered.
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

/* An item outstanding. */
typedef struct replica_slot {
	void    *tag; /* NULL: answered already, or cancelled */
	uint64_t seq;
	uint32_t timeout_ms;
} replica_slot;

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

	/* The items outstanding, oldest (the current one) first. */
	replica_slot *q;
	size_t        q_head, q_len, q_cap;
	uint64_t      seq;   /* the last one sent */
	uint64_t      since; /* uv_now when the current one became so */
	uint8_t      *wbuf;  /* items sent, not yet written */
	size_t        w_len, w_cap;

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

/* The ring of slots. */

static replica_slot *
replica_slot_at(replica *r, size_t i)
{
	return &r->q[(r->q_head + i) % r->q_cap];
}

static int
replica_slot_push(replica *r, const replica_slot *s)
{
	if (r->q_len == r->q_cap) {
		size_t        cap = r->q_cap > 0 ? r->q_cap * 2 : 16;
		replica_slot *q = malloc(cap * sizeof(*q));

		if (q == NULL)
			return TROUPE_ENOMEM;
		for (size_t i = 0; i < r->q_len; i++)
			q[i] = *replica_slot_at(r, i);
		free(r->q);
		r->q = q;
		r->q_cap = cap;
		r->q_head = 0;
	}
	r->q[(r->q_head + r->q_len) % r->q_cap] = *s;
	r->q_len++;
	return 0;
}

static replica_slot
replica_slot_shift(replica *r)
{
	replica_slot s = r->q[r->q_head];

	r->q_head = (r->q_head + 1) % r->q_cap;
	r->q_len--;
	return s;
}

static replica_slot
replica_slot_pop(replica *r)
{
	r->q_len--;
	return *replica_slot_at(r, r->q_len);
}

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

/* Ending. */

static uint64_t
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
		if (s.tag != NULL)
			r->answered(r->arg, r, s.tag, &res);
	}
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

/* The replica cannot go on (it broke the protocol, answered too much, or
 * closed a pipe while alive): kill it.  The current item fails with why:
 * at once as the item's failure when user, else at the exit as the
 * replica's death; the items behind it come back unstarted at the exit. */
static void
replica_broken(replica *r, const char *why, bool user)
{
	replica_result res = {0};

	if (r->q_len > 0 && user) {
		void *tag = replica_slot_at(r, 0)->tag;

		res.ran_ms = replica_ran(r);
		replica_kill(r, NULL, true); /* clears the tag */
		res.error = why;
		if (tag != NULL)
			r->answered(r->arg, r, tag, &res);
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

/* The current item changed (or there is none): its timeout from now, or
 * the TTL. */
static void
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

/* Answers. */

/* The current item was answered (res: ok or a frames error): the next one
 * becomes current, then res goes to the caller (a cancelled item's with a
 * NULL tag).  Returns whether the caller may go on reading answers (it
 * may have stopped or killed the replica meanwhile). */
static bool
replica_answer_current(replica *r, replica_result *res)
{
	replica_slot s = replica_slot_shift(r);

	res->replied = true;
	res->ran_ms = replica_ran(r);
	r->served++;
	replica_current(r);
	r->answered(r->arg, r, s.tag, res);
	return !r->stopping && !r->c.exited;
}

/* Lines: each "\n" ends the answer of the current item.  Returns how many
 * bytes of inbuf were used; *more: go on reading answers. */
static size_t
replica_lines(replica *r, size_t from, bool *more)
{
	size_t off = 0;

	*more = true;
	while (r->q_len > 0) {
		uint8_t *nl = memchr(r->inbuf + from, '\n', r->in_len - from);
		replica_result res = {0};
		bool           last = r->q_len == 1;

		if (nl == NULL)
			break;
		res.ok = true;
		res.output = r->inbuf + off;
		res.len = (size_t)(nl - (r->inbuf + off));
		off = from = (size_t)(nl - r->inbuf) + 1;
		if (!replica_answer_current(r, &res) || last) {
			/* What follows the last answer no item asked for (an
			 * item sent during the callback has its own). */
			*more = false;
			break;
		}
	}
	return off;
}

/* Frames: one ActorReply per item, echoing its seq.  As replica_lines;
 * *why is set when the replica broke the protocol. */
static size_t
replica_frames(replica *r, bool *more, char *why, size_t whylen)
{
	size_t off = 0;

	*more = true;
	while (r->q_len > 0) {
		Troupe__ActorReply *rep = NULL;
		replica_result      res = {0};
		uint64_t            want = replica_slot_at(r, 0)->seq;
		size_t              hl = 0, ml = 0;
		bool                last = r->q_len == 1, go;
		int                 rv;

		rv = troupe_frame_header(r->inbuf + off, r->in_len - off,
		                         r->max_in, &hl, &ml);
		if (rv == TROUPE_EFULL) {
			snprintf(why, whylen,
			         "output exceeds the limit of %zu bytes",
			         r->max_output);
			break;
		}
		if (rv != 0) {
			snprintf(why, whylen,
			         "replica %s broke the frames protocol: a bad "
			         "length prefix",
			         r->id);
			break;
		}
		if (hl == 0 || r->in_len - off < hl + ml)
			break; /* more to come */
		rep =
		    troupe__actor_reply__unpack(NULL, ml, r->inbuf + off + hl);
		if (rep == NULL) {
			snprintf(
			    why, whylen,
			    "replica %s broke the frames protocol: a reply "
			    "that is not an ActorReply",
			    r->id);
			break;
		}
		if (rep->seq != want) {
			snprintf(why, whylen,
			         "replica %s broke the frames protocol: reply "
			         "%" PRIu64 " to request %" PRIu64,
			         r->id, rep->seq, want);
			troupe__actor_reply__free_unpacked(rep, NULL);
			break;
		}
		off += hl + ml;
		if (rep->result_case == TROUPE__ACTOR_REPLY__RESULT_ERROR) {
			res.error = rep->error[0] != '\0' ? rep->error
			                                  : "the actor failed";
		} else {
			res.ok = true;
			if (rep->result_case ==
			    TROUPE__ACTOR_REPLY__RESULT_OUTPUT) {
				res.output = rep->output.data;
				res.len = rep->output.len;
			}
		}
		go = replica_answer_current(r, &res);
		troupe__actor_reply__free_unpacked(rep, NULL);
		if (!go || last) {
			*more = false;
			break;
		}
	}
	return off;
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
	size_t   from = r->in_len, used;
	bool     more;
	char     why[160];

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
	if (r->q_len == 0 || r->stopping) {
		r->in_len = 0; /* no item asked for this */
		return;
	}
	r->in_len += (size_t)n;
	why[0] = '\0';
	if (r->frames)
		used = replica_frames(r, &more, why, sizeof(why));
	else
		used = replica_lines(r, from, &more);
	if (!more || r->q_len == 0 || r->stopping || r->c.exited) {
		r->in_len = 0;
		return;
	}
	/* Keep the start of the next answer. */
	if (used > 0) {
		memmove(r->inbuf, r->inbuf + used, r->in_len - used);
		r->in_len -= used;
	}
	if (why[0] == '\0' && !r->frames && r->in_len > r->max_output)
		snprintf(why, sizeof(why),
		         "output exceeds the limit of %zu bytes",
		         r->max_output);
	if (why[0] != '\0') {
		uv_read_stop((uv_stream_t *)&r->c.out);
		replica_broken(r, why, true);
	}
}

/* Writes. */

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

/* Writes what was sent during the last turn of the loop: as much as the
 * pipe takes now, the rest queued to libuv. */
static void
replica_flush_cb(uv_idle_t *h)
{
	replica       *r = child_owner(h);
	replica_write *w = NULL;
	uv_buf_t       b;
	size_t         done = 0;
	int            rv;

	uv_idle_stop(h);
	if (r->w_len == 0 || r->stopping || r->c.exited) {
		r->w_len = 0;
		return;
	}
	b = uv_buf_init((char *)r->wbuf, (unsigned)r->w_len);
	rv = uv_try_write((uv_stream_t *)&r->c.in, &b, 1);
	if (rv > 0)
		done = (size_t)rv;
	else if (rv != UV_EAGAIN)
		goto broken;
	if (done < r->w_len) {
		size_t n = r->w_len - done;

		if ((w = malloc(sizeof(*w) + n)) == NULL)
			goto broken;
		memcpy(w->data, r->wbuf + done, n);
		w->req.data = r;
		b = uv_buf_init((char *)w->data, (unsigned)n);
		if (uv_write(&w->req, (uv_stream_t *)&r->c.in, &b, 1,
		             replica_write_cb) != 0) {
			free(w);
			goto broken;
		}
	}
	r->w_len = 0;
	return;
broken:
	r->w_len = 0;
	replica_broken(r, "cannot write to its stdin", false);
}

/* Appends n bytes for stdin (p NULL: a "\n"). */
static int
replica_wbuf_add(replica *r, const uint8_t *p, size_t n)
{
	if (r->w_cap - r->w_len < n) {
		size_t   cap = r->w_cap > 0 ? r->w_cap : 4096;
		uint8_t *b;

		while (cap - r->w_len < n)
			cap *= 2;
		if ((b = realloc(r->wbuf, cap)) == NULL)
			return TROUPE_ENOMEM;
		r->wbuf = b;
		r->w_cap = cap;
	}
	if (n > 0)
		memcpy(r->wbuf + r->w_len, p, n);
	r->w_len += n;
	return 0;
}

int
replica_send(replica *r, void *tag, const uint8_t *input, size_t len,
             uint32_t timeout_ms)
{
	replica_slot s = {
	    .tag = tag, .seq = r->seq + 1, .timeout_ms = timeout_ms};
	size_t   mark = r->w_len;
	uint8_t *frame = NULL;
	size_t   n = 0;
	int      rv;

	if (tag == NULL)
		return TROUPE_EINVAL;
	if (r->stopping || r->c.exited)
		return TROUPE_ESTATE;
	if (r->frames) {
		Troupe__ActorRequest req;

		troupe__actor_request__init(&req);
		req.seq = s.seq;
		req.input.data = (uint8_t *)input;
		req.input.len = len;
		if ((rv = troupe_frame_encode(&req.base, &frame, &n)) != 0)
			return rv;
		rv = replica_wbuf_add(r, frame, n);
		free(frame);
	} else if ((rv = replica_wbuf_add(r, input, len)) == 0) {
		rv = replica_wbuf_add(r, (const uint8_t *)"\n", 1);
	}
	if (rv == 0)
		rv = replica_slot_push(r, &s);
	if (rv != 0) {
		r->w_len = mark;
		return rv;
	}
	r->seq = s.seq;
	if (r->q_len == 1)
		replica_current(r);
	uv_idle_start(&r->c.idle, replica_flush_cb);
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
