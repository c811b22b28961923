/*
 * One actor replica's insides, shared by its two files (replica.h has the
 * contract; docs/design.md, Actor semantics and How a task process
 * talks):
 *  - replica.c: the process's life: start, the timers (TTL, the current
 *    item's timeout, the grace after SIGTERM), stop, kill, cancel, and
 *    the answers owed when it is gone;
 *  - replica_io.c: the wire: items encoded for stdin (a line, or an
 *    ActorRequest frame) and written a turn of the loop at a time, and
 *    stdout decoded into answers (lines, or ActorReply frames).
 *
 * Async contract: everything runs on the loop thread that owns the
 * replica.  One timer (its child's, child.h) serves every phase,
 * restarted with the callback of the phase: the TTL while idle, the
 * current item's timeout while busy, the grace between SIGTERM and
 * SIGKILL while stopping, then the child's wait for the pipes after the
 * exit.  The child's idle handle writes the items sent during a turn of
 * the loop in one go (a write per item costs a wakeup of the replica per
 * item).  A replica ends when its child does; the last close callback
 * answers the items outstanding and calls exited.
 *
 * The items outstanding are a FIFO ring of slots; the first is the
 * current one.  A slot whose tag is NULL is not answered: cancelled, or
 * (the current one) already answered by a timeout or a kill.  Callbacks
 * may re-enter (send, cancel, stop, kill): a slot is taken off, or its tag
 * cleared, before its answer is delivered.
 *
 * Not a public header: only replica.c and replica_io.c include it.
 */
#ifndef TROUPE_WORKER_REPLICA_INT_H
#define TROUPE_WORKER_REPLICA_INT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "child.h"
#include "logcap.h"
#include "replica.h"
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
	/* stderr since the last item's account closed: the current item's
	 * log, or (idle) the next one's. */
	logcap log;
	bool   err_busy; /* it wrote stderr while it had an item */
};

/* The ring of slots: the items outstanding, oldest (the current one)
 * first. */

static inline replica_slot *
replica_slot_at(replica *r, size_t i)
{
	return &r->q[(r->q_head + i) % r->q_cap];
}

static inline int
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

static inline replica_slot
replica_slot_shift(replica *r)
{
	assert(r->q_len > 0);
	replica_slot s = r->q[r->q_head];

	r->q_head = (r->q_head + 1) % r->q_cap;
	r->q_len--;
	return s;
}

static inline replica_slot
replica_slot_pop(replica *r)
{
	assert(r->q_len > 0);
	r->q_len--;
	return *replica_slot_at(r, r->q_len);
}

/* replica.c */

/* Milliseconds since the current item became so. */
uint64_t replica_ran(const replica *r);

/* The current item changed (or there is none): its timeout from now, or
 * the TTL. */
void replica_current(replica *r);

/* The replica cannot go on (it broke the protocol, answered too much, or
 * closed a pipe while alive): kill it.  The current item fails with why:
 * at once as the item's failure when user, else at the exit as the
 * replica's death; the items behind it come back unstarted at the exit. */
void replica_broken(replica *r, const char *why, bool user);

/* Closes the current item's log into res (child_err_drain first, so
 * what the process wrote before answering counts); *own receives the
 * buffer res points to, for the caller to free after the answer. */
void replica_take_log(replica *r, replica_result *res, uint8_t **own);

/* replica_io.c: the stdout read callbacks (child_read_start). */
void replica_out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
void replica_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

#endif
