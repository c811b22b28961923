/*
 * The worker's end of the worker link (proto/link.proto): one nng req
 * socket dialled to the scheduler, with two channels, each an nng context
 * with its own aio that carries one request at a time.  WLINK_PULL carries
 * RegisterWorker and the Pull long poll, WLINK_REPORT carries Report, so a
 * parked Pull never delays a result.
 *
 * Threading contract: everything here is called on the loop thread.  The
 * aio callbacks run on nng's threads; they only move a channel from
 * sending to receiving and hand the outcome to the loop through the link's
 * own loopq, where the caller's wlink_fn runs.
 *
 * The dial is non-blocking and nng redials on its own (100 ms growing to
 * 2 s), so a worker may start before its scheduler and outlives its
 * restarts: a call made while disconnected waits for the connection, up to
 * its timeout.
 */
#ifndef TROUPE_WORKER_WLINK_H
#define TROUPE_WORKER_WLINK_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "envelope.pb-c.h"

typedef struct wlink wlink;

typedef enum wlink_chan {
	WLINK_PULL = 0,
	WLINK_REPORT = 1,
} wlink_chan;

/* Called on the loop thread when a call ends.  rv is 0 when a reply came:
 * rep is then the unpacked envelope, whose code may still be an error; rep
 * is owned by the link and freed when the function returns.  Otherwise rv
 * is the transport's error (TROUPE_ETIMEDOUT, TROUPE_ECANCELED after
 * wlink_cancel, TROUPE_EPROTO for a malformed envelope) and rep is NULL.
 * The channel is idle again when this runs, so it may call wlink_call;
 * it must not call wlink_close. */
typedef void (*wlink_fn)(void *arg, int rv, const Troupe__Reply *rep);

/* Opens the socket and starts dialling url, presenting token (may be NULL)
 * with every request; tls_ca (may be NULL) is the CA file that checks a
 * tls+tcp:// scheduler's certificate.  On failure writes one line into err.
 * The caller owns *out (wlink_close). */
int wlink_open(uv_loop_t *loop, const char *url, const char *token,
               const char *tls_ca, wlink **out, char *err, size_t errlen);

/* Stops both channels (their wlink_fns are not called any more), closes
 * the socket and frees l.  Not from inside a wlink_fn.  Accepts NULL. */
void wlink_close(wlink *l);

/* Sends method with body on channel ch and waits for the reply, each of
 * the two steps bounded by timeout_ms; fn(arg, ...) gets the outcome.  The
 * request is packed before returning: body may be freed then.  Returns
 * TROUPE_ESTATE when ch is busy, TROUPE_ENOMEM; fn is then never called. */
int wlink_call(wlink *l, wlink_chan ch, const char *method,
               const ProtobufCMessage *body, int timeout_ms, wlink_fn fn,
               void *arg);

/* True while a call is under way on ch. */
bool wlink_busy(const wlink *l, wlink_chan ch);

/* Aborts the call on ch, if any: its fn gets TROUPE_ECANCELED (unless
 * the reply is already on its way to the loop). */
void wlink_cancel(wlink *l, wlink_chan ch);

/* The address it dials. */
const char *wlink_url(const wlink *l);

#endif
