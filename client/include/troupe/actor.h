/*
 * The replica side of the `frames` actor protocol (proto/actor.proto), and
 * the varint-length-delimited framing it rides on (protobuf's standard
 * delimited format: each message preceded by its length as a varint).
 *
 * A C actor is one call:
 *
 *	static int
 *	upper(void *arg, const uint8_t *in, size_t len, uint8_t **out,
 *	      size_t *out_len, char **error)
 *	{
 *		...  *out = malloc(len); ...; *out_len = len; return 0;
 *	}
 *	int main(void) { return troupe_actor_serve(upper, NULL) == 0 ? 0 : 1; }
 *
 * The framing helpers are shared with the worker, which speaks the other
 * side of the same protocol.  Everything here is blocking and
 * single-threaded except troupe_frame_header and troupe_frame_encode, which
 * do no I/O and suit an event loop.
 */
#ifndef TROUPE_ACTOR_H
#define TROUPE_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* A varint length prefix is at most this many bytes. */
#define TROUPE_FRAME_HDR_MAX 10

/* Handles one item.  input is never NULL (an empty item has len 0) and is
 * owned by the library, valid only during the call.  On success returns 0
 * and sets *output to a malloc'd buffer of *out_len bytes (or leaves it
 * NULL for an empty output); the library frees it.  On a per-item failure
 * returns non-zero and sets *error to a malloc'd NUL-terminated message
 * (the library frees it; if left NULL, a generic message is used), and
 * the replica goes on serving.  To stop the replica altogether, exit. */
typedef int (*troupe_actor_fn)(void *arg, const uint8_t *input, size_t len,
                               uint8_t **output, size_t *out_len, char **error);

/* Serves the frames protocol: reads ActorRequests from stdin (fd 0) until
 * EOF and writes one ActorReply per request, in order, echoing seq.
 * Replies are buffered and flushed whenever no further request is already
 * buffered, so a pipelining worker gets them in batches and a lock-step
 * worker is never kept waiting.  While serving, fd 1 points at stderr so a
 * stray printf in the handler cannot corrupt the reply stream (replies go
 * to a private duplicate of the original stdout); it is restored on return.
 * An output larger than the message limit (TROUPE_MAX_MSG) becomes a
 * per-item error.  Returns 0 at a clean EOF (between requests),
 * TROUPE_EPROTO for a malformed or truncated request, TROUPE_EFULL for a
 * request over TROUPE_MAX_MSG, TROUPE_ENOMEM, or the errno-derived code of
 * a failed read or write.  As usual, a write to a closed pipe raises
 * SIGPIPE unless the caller ignores it. */
int troupe_actor_serve(troupe_actor_fn fn, void *arg);

/* Parses the varint length prefix at the start of buf (avail bytes) for a
 * frame of at most max bytes.  Returns 0 and sets *hdr_len (1..10) and
 * *msg_len when the prefix is complete; returns 0 with *hdr_len = 0 when
 * more bytes are needed; TROUPE_EPROTO for a varint over 10 bytes or 64
 * bits; TROUPE_EFULL when the length exceeds max.  No I/O, no allocation. */
int troupe_frame_header(const uint8_t *buf, size_t avail, size_t max,
                        size_t *hdr_len, size_t *msg_len);

/* Packs m with its varint length prefix into a new malloc'd buffer: *buf
 * (the caller frees it) of *len bytes.  Returns 0 or TROUPE_ENOMEM. */
int troupe_frame_encode(const ProtobufCMessage *m, uint8_t **buf, size_t *len);

/* Writes m as one delimited frame to the blocking or non-blocking fd,
 * retrying partial writes, EINTR and EAGAIN.  m stays the caller's.
 * Returns 0, TROUPE_ENOMEM or the errno-derived code of the write. */
int troupe_frame_write(int fd, const ProtobufCMessage *m);

/* A buffered reader of delimited frames from one fd. */
typedef struct troupe_frame_reader troupe_frame_reader;

/* Makes a reader of fd (which stays the caller's to close) that refuses
 * frames over max bytes.  *out is the caller's (troupe_frame_reader_free).
 * Returns 0 or TROUPE_ENOMEM. */
int troupe_frame_reader_new(int fd, size_t max, troupe_frame_reader **out);

/* Frees r (NULL is fine); does not close its fd. */
void troupe_frame_reader_free(troupe_frame_reader *r);

/* Reads the next frame, blocking as needed.  Returns 0 and points *data at
 * its *len bytes, owned by r and valid until the next call on r; at a
 * clean EOF (between frames) returns 0 with *data = NULL (an empty frame
 * has a non-NULL *data and *len = 0).  Returns TROUPE_EPROTO for a bad
 * prefix or EOF inside a frame, TROUPE_EFULL for a frame over max,
 * TROUPE_ENOMEM, or the errno-derived code of a failed read. */
int troupe_frame_read(troupe_frame_reader *r, const uint8_t **data,
                      size_t *len);

/* Returns true when a whole frame is already buffered in r, so the next
 * troupe_frame_read will not block. */
bool troupe_frame_reader_ready(const troupe_frame_reader *r);

#endif
