/*
 * One actor replica's wire (replica.h has the contract, replica_int.h how
 * replica.c and replica_io.c share the work): replica_send encodes an
 * item for stdin (lines: its bytes and "\n"; frames: a varint-delimited
 * ActorRequest, proto/actor.proto) into a buffer that the child's idle
 * handle writes once per turn of the loop; stdout is decoded into answers
 * for the items outstanding, in order (lines: up to each "\n"; frames:
 * one ActorReply each, its seq checked), and a replica that breaks the
 * protocol or answers too much is killed (replica_broken).
 *
 * Async contract: everything runs on the replica's loop thread.
 * replica_send is called by the owner (pool_rep.c, pool.c); the read, idle
 * and write callbacks come from libuv, and answered is called from them
 * only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.pb-c.h"
#include "log.h"
#include "replica_int.h"
#include "troupe/actor.h"

/* Answers. */

/* The current item was answered (res: ok or a frames error): the next one
 * becomes current, then res goes to the caller (a cancelled item's with a
 * NULL tag).  Returns whether the caller may go on reading answers (it
 * may have stopped or killed the replica meanwhile). */
static bool
replica_answer_current(replica *r, replica_result *res)
{
	replica_slot s;
	uint8_t     *log = NULL;

	/* Before the slot goes: what stderr holds now was written while
	 * this item was current (or idle before it). */
	replica_take_log(r, res, &log);
	s = replica_slot_shift(r);
	res->replied = true;
	res->ran_ms = replica_ran(r);
	r->served++;
	replica_current(r);
	r->answered(r->arg, r, s.tag, res);
	free(log);
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

void
replica_out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	replica *r = child_owner(h);

	child_out_room(&r->inbuf, &r->in_cap, r->in_len, r->max_in, buf);
}

void
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
