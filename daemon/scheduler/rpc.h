/*
 * The scheduler's RPC endpoints: an nng rep socket per listener, serving
 * one service of the .proto files (api.proto's Troupe or link.proto's
 * WorkerLink): methods are found by name in the service descriptor
 * protoc-c generates and bodies unpacked with its input descriptors, so
 * the .proto file is the only list of methods and types; a table of
 * handlers by method name says who serves each.
 *
 * Async contract: nng receives and sends on its own threads; every aio
 * callback only posts the call to the loop (loopq).  On the loop thread a
 * request is unpacked, its token checked, its method looked up by name in
 * the descriptor, its body unpacked with the method's input descriptor,
 * and the method's handler called.  A handler either
 * answers at once (rpc_reply or rpc_fail) or keeps the call and
 * answers later (a long poll, or a result waiting for its commit): a kept
 * ("parked") call holds its nng context, and the server opens another
 * context so that parked calls never stop it from receiving.
 */
#ifndef TROUPE_RPC_H
#define TROUPE_RPC_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "loopq.h"

typedef struct rpc_server rpc_server;
typedef struct rpc_call   rpc_call;

/* One method's handler: in is the request body (the method's input type,
 * e.g. const Troupe__GetHealthRequest *; owned by rpc.c, valid during the
 * call only), ctx the service's.  It answers call now or parks it. */
typedef void rpc_handler(void *ctx, const void *in, rpc_call *call);

/* Who is calling, as the service's authenticator decided (rpc_auth_fn):
 * valid while the call lives. */
typedef struct rpc_identity {
	char token_id[40]; /* "local", "bootstrap", or a token's id */
	char project[64];  /* the project it acts in; "" for an admin: any */
	int  role;         /* a Troupe__Role */
} rpc_identity;

/* Roles a method allows, as a mask of RPC_ROLE(Troupe__Role). */
#define RPC_ROLE(r) (1u << (r))

typedef struct rpc_method {
	const char  *name; /* as in the .proto service */
	rpc_handler *fn;
	unsigned     roles; /* RPC_ROLE mask; 0: anyone authenticated */
	bool         audit; /* it changes state: log who did what */
} rpc_method;

/* Decides who sent a request: token (the envelope's, "" for none) on a
 * listener that requires one or not, acting in project (the envelope's,
 * "" for none).  Fills *who and returns 0, or returns TROUPE_EAUTH (an
 * unknown, revoked or expired token) or TROUPE_EPERM (a token of another
 * project) with one line in why. */
typedef int rpc_auth_fn(void *arg, const char *token, const char *project,
                        bool required, rpc_identity *who, char *why,
                        size_t len);

/* A service: its descriptor, a handler for each of its methods, and the
 * handlers' context.  Not owned by the server; it must outlive it. */
typedef struct rpc_service {
	const ProtobufCServiceDescriptor *desc;
	const rpc_method                 *methods;
	size_t                            n_methods;
	void                             *ctx;
} rpc_service;

typedef struct rpc_listen_opts {
	const char *url;      /* ipc://, tcp:// or tls+tcp:// */
	const char *token;    /* a token is required when non-NULL */
	const char *tls_cert; /* PEM files, for tls+tcp:// */
	const char *tls_key;
	/* Who a token is (tokens of the store, the bootstrap token); NULL:
	 * only `token` itself is accepted, as the local admin. */
	rpc_auth_fn *auth;
	void        *auth_arg;
} rpc_listen_opts;

/* Opens a listener at opts->url serving service (not owned; it must
 * outlive the server; every method of its descriptor must have a handler,
 * checked under assert).  ipc:// sockets are created owner-only (0600).  A
 * url other than ipc:// (in any case: tcp://, TLS+TCP://, abstract://...)
 * without a token is refused (TROUPE_EPERM), so
 * the scheduler never runs commands for anybody on the network.  On
 * failure err holds one line for a person.  The caller owns *out and
 * frees it with rpc_server_close. */
int rpc_server_open(uv_loop_t *loop, loopq *q, const rpc_listen_opts *opts,
                    const rpc_service *service, rpc_server **out, char *err,
                    size_t errlen);

/* For the fuzzers (tests/fuzz): a server with no socket, serving service
 * (not owned; it must outlive the server) to requests handed to
 * rpc_dispatch_bytes, with token required as rpc_server_open requires it
 * (NULL: none).  Every answer, now or later, is handed packed (a
 * troupe.Reply) to on_reply(arg, bytes, len) (may be NULL) on the loop
 * thread, then dropped.  The caller owns *out (rpc_server_close).
 * Returns 0 or TROUPE_ENOMEM. */
int rpc_server_open_local(const rpc_service *service, const char *token,
                          void (*on_reply)(void *, const void *, size_t),
                          void *arg, rpc_server **out);

/* Loop thread: handles the len bytes at buf (not kept) as a request that
 * arrived on connection pipe of the local server s, by the path every
 * received request takes: envelope unpacked, token checked, method found,
 * body unpacked, handler called (which answers now or parks the call).
 * Returns 0 or TROUPE_ENOMEM. */
int rpc_dispatch_bytes(rpc_server *s, uint32_t pipe, const void *buf,
                       size_t len);

/* The answer to a call that came by another transport (the HTTP
 * listener, http.c): reply is the packed troupe.Reply (len bytes, valid
 * during the call only), or NULL when the call ends unanswered (its server
 * closing with the call parked, or rpc_drop).  Runs once per call, on the
 * loop thread. */
typedef void rpc_sink(void *arg, const void *reply, size_t len);

/* How a foreign request is served: who sent it, as auth (with arg) decides
 * with a token required or not, and where its answer goes. */
typedef struct rpc_foreign {
	rpc_auth_fn *auth;
	void        *auth_arg;
	bool         required;
	rpc_sink    *sink;
	void        *sink_arg;
} rpc_foreign;

/* Loop thread: serves the len bytes at buf (not kept) as a request to the
 * service of s by the path every received request takes (envelope
 * unpacked, token checked, method found, role checked, body unpacked,
 * handler called, now or parked), except that f->auth decides who sent it
 * and the answer is handed to f->sink instead of an nng context.  The call
 * is the server's (rpc_server_close ends it: sink with NULL).  Returns 0,
 * or TROUPE_ENOMEM (then the sink is never called). */
int rpc_dispatch_foreign(rpc_server *s, const void *buf, size_t len,
                         const rpc_foreign *f);

/* Stops the listener and frees every call, parked or not; callers must
 * forget the calls they parked first.  Accepts NULL. */
void rpc_server_close(rpc_server *s);

/* Pipe-removal notifications: fn(arg, pipe_id) runs on the loop thread
 * whenever a connection of this server closes (a worker went away). */
void rpc_server_on_disconnect(rpc_server *s, void (*fn)(void *, uint32_t),
                              void       *arg);

/* A handler that returns without answering has parked the call: it must
 * answer it later, exactly once, with rpc_reply or rpc_fail. */

/* Answers a call with OK and msg (packed now; msg stays the caller's). */
void rpc_reply(rpc_call *c, const ProtobufCMessage *msg);

/* Answers a call with an error: code from err (a TROUPE_E* code) and a
 * printf-style message for a person. */
void rpc_fail(rpc_call *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Releases a parked call without answering it, for a caller that gave it
 * up (a draining worker's Pull, a worker whose connection closed): a
 * reply would go into a closing pipe, where nng 1.5.2 can lose the
 * message.  The client's context sees no reply. */
void rpc_drop(rpc_call *c);

/* "read", "submit", "admin", "worker" for a Troupe__Role (static). */
const char *rpc_role_name(int role);

/* Who made the call (owned by the call). */
const rpc_identity *rpc_call_identity(const rpc_call *c);

/* The connection (nng pipe id) the call arrived on. */
uint32_t rpc_call_pipe(const rpc_call *c);

#endif
