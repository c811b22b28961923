/*
 * The frames protocol, replica side, and delimited framing (see
 * troupe/actor.h).  Blocking I/O on plain fds: a replica is a process of
 * its own that does one thing at a time, so it needs no event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor.pb-c.h"
#include "troupe/actor.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

/* The reader starts with this much room; a bigger frame grows it, and it
 * shrinks back once drained so one huge item does not pin its size. */
#define ACTOR_BUF_MIN (64u << 10)
/* serve() flushes its reply buffer at this size even mid-batch. */
#define ACTOR_FLUSH_MAX (64u << 10)
/* Room kept in a reply for its seq, oneof tag and length prefixes. */
#define ACTOR_REPLY_SLACK 64

struct troupe_frame_reader {
	int      fd;
	size_t   max;
	uint8_t *buf;
	size_t   cap;
	size_t   head; /* first byte not yet returned */
	size_t   tail; /* end of the bytes read */
	bool     eof;
};

/* A growable byte buffer for serve()'s replies. */
typedef struct actor_out {
	int      fd;
	uint8_t *buf;
	size_t   len;
	size_t   cap;
} actor_out;

static size_t
actor_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* Waits until fd is ready for events: for fds someone made non-blocking. */
static int
actor_wait(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};

	while (poll(&p, 1, -1) < 0) {
		if (errno != EINTR)
			return troupe_err_from_errno(errno);
	}
	return 0;
}

static int
actor_write_all(int fd, const uint8_t *buf, size_t len)
{
	int rv;

	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if ((rv = actor_wait(fd, POLLOUT)) != 0)
					return rv;
				continue;
			}
			return troupe_err_from_errno(errno);
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
troupe_frame_header(const uint8_t *buf, size_t avail, size_t max,
                    size_t *hdr_len, size_t *msg_len)
{
	uint64_t v = 0;
	size_t   i;

	for (i = 0; i < avail && i < TROUPE_FRAME_HDR_MAX; i++) {
		uint64_t b = buf[i] & 0x7f;

		/* The 10th byte holds only bit 63. */
		if (i == TROUPE_FRAME_HDR_MAX - 1 && b > 1)
			return TROUPE_EPROTO;
		v |= b << (7 * i);
		if ((buf[i] & 0x80) == 0) {
			if (v > max)
				return TROUPE_EFULL;
			*hdr_len = i + 1;
			*msg_len = (size_t)v;
			return 0;
		}
	}
	if (i == TROUPE_FRAME_HDR_MAX)
		return TROUPE_EPROTO;
	*hdr_len = 0;
	*msg_len = 0;
	return 0;
}

int
troupe_frame_encode(const ProtobufCMessage *m, uint8_t **buf, size_t *len)
{
	size_t   n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(TROUPE_FRAME_HDR_MAX + n);
	size_t   h;

	if (b == NULL)
		return TROUPE_ENOMEM;
	h = actor_varint(b, n);
	protobuf_c_message_pack(m, b + h);
	*buf = b;
	*len = h + n;
	return 0;
}

int
troupe_frame_write(int fd, const ProtobufCMessage *m)
{
	uint8_t *buf = NULL;
	size_t   len = 0;
	int      rv;

	if ((rv = troupe_frame_encode(m, &buf, &len)) != 0)
		return rv;
	rv = actor_write_all(fd, buf, len);
	free(buf);
	return rv;
}

int
troupe_frame_reader_new(int fd, size_t max, troupe_frame_reader **out)
{
	troupe_frame_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return TROUPE_ENOMEM;
	r->fd = fd;
	r->max = max;
	*out = r;
	return 0;
}

void
troupe_frame_reader_free(troupe_frame_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

bool
troupe_frame_reader_ready(const troupe_frame_reader *r)
{
	size_t h = 0;
	size_t n = 0;

	if (r->tail == r->head)
		return false;
	if (troupe_frame_header(r->buf + r->head, r->tail - r->head, r->max, &h,
	                        &n) != 0)
		return true; /* the next read returns the error at once */
	return h != 0 && r->tail - r->head >= h + n;
}

/* Makes room for need unread bytes in total, moving them to the front. */
static int
reader_reserve(troupe_frame_reader *r, size_t need)
{
	size_t   have = r->tail - r->head;
	size_t   cap;
	uint8_t *b;

	if (r->head > 0 && (have == 0 || r->cap - r->head < need)) {
		memmove(r->buf, r->buf + r->head, have);
		r->head = 0;
		r->tail = have;
	}
	if (have == 0 && r->cap > ACTOR_BUF_MIN && need <= ACTOR_BUF_MIN) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	if (r->cap >= need && r->cap > r->tail)
		return 0;
	cap = r->cap < ACTOR_BUF_MIN ? ACTOR_BUF_MIN : r->cap * 2;
	if (cap < need)
		cap = need;
	if ((b = realloc(r->buf, cap)) == NULL)
		return TROUPE_ENOMEM;
	r->buf = b;
	r->cap = cap;
	return 0;
}

/* The unread bytes to make room for: the whole frame if its header is in
 * (h != 0), capped at twice what has arrived (at least ACTOR_BUF_MIN). */
static size_t
reader_want(size_t have, size_t h, size_t n)
{
	size_t step = have < ACTOR_BUF_MIN ? ACTOR_BUF_MIN : have;

	if (h == 0 || h + n > have + step)
		return have + step;
	return h + n;
}

int
troupe_frame_read(troupe_frame_reader *r, const uint8_t **data, size_t *len)
{
	int rv;

	for (;;) {
		size_t  have = r->tail - r->head;
		size_t  h = 0;
		size_t  n = 0;
		ssize_t got;

		if (have > 0 &&
		    (rv = troupe_frame_header(r->buf + r->head, have, r->max,
		                              &h, &n)) != 0)
			return rv;
		if (h != 0 && have >= h + n) {
			*data = r->buf + r->head + h;
			*len = n;
			r->head += h + n;
			return 0;
		}
		if (r->eof) {
			if (have != 0)
				return TROUPE_EPROTO;
			*data = NULL;
			*len = 0;
			return 0;
		}
		/* Room for the frame, but never more than twice what has
		 * arrived: a header alone, claiming TROUPE_MAX_MSG, must not
		 * cost TROUPE_MAX_MSG of memory before its bytes come. */
		if ((rv = reader_reserve(r, reader_want(have, h, n))) != 0)
			return rv;
		got = read(r->fd, r->buf + r->tail, r->cap - r->tail);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if ((rv = actor_wait(r->fd, POLLIN)) != 0)
					return rv;
				continue;
			}
			return troupe_err_from_errno(errno);
		}
		if (got == 0)
			r->eof = true;
		r->tail += (size_t)got;
	}
}

static int
out_flush(actor_out *o)
{
	int rv = actor_write_all(o->fd, o->buf, o->len);

	o->len = 0;
	if (o->cap > ACTOR_FLUSH_MAX * 2) {
		free(o->buf);
		o->buf = NULL;
		o->cap = 0;
	}
	return rv;
}

/* Appends m as one frame. */
static int
out_frame(actor_out *o, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	size_t need = o->len + TROUPE_FRAME_HDR_MAX + n;

	if (need > o->cap) {
		size_t   cap = o->cap < 4096 ? 4096 : o->cap * 2;
		uint8_t *b;

		if (cap < need)
			cap = need;
		if ((b = realloc(o->buf, cap)) == NULL)
			return TROUPE_ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	o->len += actor_varint(o->buf + o->len, n);
	o->len += protobuf_c_message_pack(m, o->buf + o->len);
	return 0;
}

/* Runs the handler on req and appends its reply to o. */
static int
actor_handle(troupe_actor_fn fn, void *arg, const Troupe__ActorRequest *req,
             actor_out *o)
{
	static const uint8_t empty[1];
	Troupe__ActorReply   rep;
	uint8_t             *output = NULL;
	size_t               out_len = 0;
	char                *error = NULL;
	char                 msg[128];
	int                  hrv;
	int                  rv;

	/* Not TROUPE__ACTOR_REPLY__INIT: its {0} for the oneof's union
	 * trips -Wmissing-braces. */
	troupe__actor_reply__init(&rep);
	hrv = fn(arg, req->input.len > 0 ? req->input.data : empty,
	         req->input.len, &output, &out_len, &error);
	rep.seq = req->seq;
	if (hrv == 0 && out_len > TROUPE_MAX_MSG - ACTOR_REPLY_SLACK) {
		snprintf(msg, sizeof(msg),
		         "output too large: %zu bytes (limit %u)", out_len,
		         TROUPE_MAX_MSG - ACTOR_REPLY_SLACK);
		rep.result_case = TROUPE__ACTOR_REPLY__RESULT_ERROR;
		rep.error = msg;
	} else if (hrv == 0) {
		rep.result_case = TROUPE__ACTOR_REPLY__RESULT_OUTPUT;
		rep.output.data = output != NULL ? output : (uint8_t *)empty;
		rep.output.len = output != NULL ? out_len : 0;
	} else {
		/* An empty string would not be packed at all (protobuf-c skips
		 * a oneof string equal to its default), leaving no result. */
		if (error == NULL || error[0] == '\0') {
			snprintf(msg, sizeof(msg),
			         "actor handler failed (%d%s%s)", hrv,
			         hrv < 0 ? ": " : "",
			         hrv < 0 ? troupe_strerror(hrv) : "");
			rep.error = msg;
		} else {
			size_t n = strlen(error);

			if (n > TROUPE_MAX_MSG - ACTOR_REPLY_SLACK)
				error[TROUPE_MAX_MSG - ACTOR_REPLY_SLACK] =
				    '\0';
			rep.error = error;
		}
		rep.result_case = TROUPE__ACTOR_REPLY__RESULT_ERROR;
	}
	rv = out_frame(o, &rep.base);
	free(output);
	free(error);
	return rv;
}

/* Points fd 1 at stderr so the handler's stray output cannot interleave
 * with replies; returns the fd replies go to (the original stdout). */
static int
actor_take_stdout(void)
{
	int fd;

	fflush(stdout);
	/* Close-on-exec: processes the handler starts must not hold it. */
	if ((fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)) < 0)
		return troupe_err_from_errno(errno);
	/* Without a usable stderr, keep fd 1: nothing better to point it at. */
	(void)dup2(STDERR_FILENO, STDOUT_FILENO);
	return fd;
}

static void
actor_give_stdout(int fd)
{
	fflush(stdout);
	(void)dup2(fd, STDOUT_FILENO);
	close(fd);
}

int
troupe_actor_serve(troupe_actor_fn fn, void *arg)
{
	troupe_frame_reader *r = NULL;
	actor_out            o = {.fd = -1};
	int                  rv;
	int                  frv;

	if ((rv = troupe_frame_reader_new(STDIN_FILENO, TROUPE_MAX_MSG, &r)) !=
	    0)
		goto fail;
	if ((rv = actor_take_stdout()) < 0)
		goto fail;
	o.fd = rv;
	rv = 0;
	for (;;) {
		Troupe__ActorRequest *req;
		const uint8_t        *data;
		size_t                len;

		/* Never block on input while holding replies back. */
		if (o.len > 0 && (o.len >= ACTOR_FLUSH_MAX ||
		                  !troupe_frame_reader_ready(r))) {
			if ((rv = out_flush(&o)) != 0)
				goto fail;
		}
		if ((rv = troupe_frame_read(r, &data, &len)) != 0)
			goto fail;
		if (data == NULL)
			break;
		req = troupe__actor_request__unpack(NULL, len, data);
		if (req == NULL) {
			rv = TROUPE_EPROTO;
			goto fail;
		}
		rv = actor_handle(fn, arg, req, &o);
		troupe__actor_request__free_unpacked(req, NULL);
		if (rv != 0)
			goto fail;
	}

fail:
	/* Replies already computed still go out, even after a bad request. */
	if (o.fd >= 0) {
		if (o.len > 0 && (frv = out_flush(&o)) != 0 && rv == 0)
			rv = frv;
		actor_give_stdout(o.fd);
	}
	free(o.buf);
	troupe_frame_reader_free(r);
	return rv;
}
