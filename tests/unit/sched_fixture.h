/*
 * An in-process scheduler for unit tests that speak the wire protocol to
 * it (test_dispatch, test_placement).
 *
 * The real scheduler core runs in the test process, as daemon/scheduler/
 * main.c runs it: sched_open on a temporary database, the API and the
 * worker link served by rpc_server_open, one libuv loop on a background
 * thread, stopped in main.c's order.  The test thread sends envelopes on
 * raw nng req sockets.  Every wait is bounded (socket and aio timeouts).
 *
 * Each test gets a fresh scheduler, set up from the options passed as
 * cmocka's initial state:
 *
 *	static const sfx_opts opts = {.dir_prefix = "troupe-x", ...};
 *	cmocka_unit_test_prestate_setup_teardown(test_a, sfx_setup,
 *	                                         sfx_teardown, (void *)&opts),
 *
 * Threading: the scheduler's state belongs to the loop thread; the test
 * thread only uses nng sockets and, in sfx_teardown, the stop async.
 */
#ifndef TROUPE_SCHED_FIXTURE_H
#define TROUPE_SCHED_FIXTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "loopq.h"
#include "rpc.h"
#include "scheduler.h"

#define SFX_CALL_TIMEOUT_MS 5000
#define SFX_NO_REPLY        (-1) /* sfx_chan_recv: no reply came */

typedef struct sfx_opts {
	const char *dir_prefix; /* the temporary directory: /tmp/PREFIX-* */
	const char *token;      /* required on both sockets; NULL: none */
	bool        tcp;        /* API on tcp://127.0.0.1 (needs token) */
	uint32_t    pull_timeout_ms; /* sched_opts */
	uint32_t    lost_after_ms;
	uint32_t    actor_prefetch;
} sfx_opts;

typedef struct sfx {
	char        dir[64];
	char        api_url[128], link_url[128], db[128];
	const char *token; /* opts->token */
	uv_loop_t   loop;
	uv_async_t  stop;
	uv_thread_t th;
	loopq      *q;
	sched      *s;
	rpc_server *api, *link;
	int         close_rv;
	nng_socket  cli; /* a client dialled to api_url */
} sfx;

/* cmocka setup: *state is a const sfx_opts * on entry and the started
 * sfx * on return (freed by sfx_teardown).  The worker link is always on
 * ipc:// in the directory; the API is too unless opts->tcp.  Returns 0;
 * fails the test on any error. */
int sfx_setup(void **state);

/* cmocka teardown: stops the scheduler in main.c's order, checks that its
 * loop closed cleanly, removes the directory and frees the sfx.
 * Returns 0. */
int sfx_teardown(void **state);

/* Opens a req socket *out dialled to url, with SFX_CALL_TIMEOUT_MS send
 * and receive timeouts; the caller closes it with nng_close. */
void sfx_dial(const char *url, nng_socket *out);

/* One request at a time on an nng context of a socket. */
typedef struct sfx_chan {
	nng_ctx     ctx;
	nng_aio    *aio;
	atomic_bool done; /* the receive finished */
} sfx_chan;

/* Opens a context of s; the caller closes it with sfx_chan_close. */
void sfx_chan_open(sfx_chan *c, nng_socket s);
void sfx_chan_close(sfx_chan *c);

/* Sends m (taken) and starts receiving the reply within timeout_ms. */
void sfx_chan_send_msg(sfx_chan *c, nng_msg *m, int timeout_ms);

/* Sends the request {method, token, in} (token and in may be NULL) and
 * starts receiving the reply within timeout_ms. */
void sfx_chan_send(sfx_chan *c, const char *method, const char *token,
                   const ProtobufCMessage *in, int timeout_ms);

/* Waits for the reply.  Returns its code (SFX_NO_REPLY if none came);
 * when it is OK and desc is set, *out is the unpacked body (the caller
 * frees it with protobuf_c_message_free_unpacked); why (may be NULL)
 * gets the reply's message. */
int sfx_chan_recv(sfx_chan *c, const ProtobufCMessageDescriptor *desc,
                  void **out, char *why, size_t whylen);

/* One call on a fresh context of sock, waiting SFX_CALL_TIMEOUT_MS.
 * Returns the reply code, with *out and why as sfx_chan_recv. */
int sfx_call(nng_socket sock, const char *method, const char *token,
             const ProtobufCMessage *in, const ProtobufCMessageDescriptor *desc,
             void **out, char *why, size_t whylen);

#endif
