/*
 * The scheduler's RPC endpoints (see rpc.h for the async contract).
 *
 * A call owns one nng context and one aio and moves through
 * RECV -> (loop) DISPATCH -> [PARKED] -> SEND -> RECV again, or is freed
 * after its send when enough other calls are receiving.  Completions of
 * the aio arrive on nng threads and are posted to the loop.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/ipc/ipc.h>

#include "grow.h"
#include "list.h"
#include "wirecheck.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"
#include "api.pb-c.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "troupe/home.h"
#include "troupe/sockclose.h"

/* Calls kept receiving at all times; more are opened while calls are
 * parked, and closed again when they finish. */
#define RPC_MIN_RECEIVERS 8

enum { RPC_RECV, RPC_DISPATCH, RPC_PARKED, RPC_SEND };

struct rpc_call {
	rpc_server *srv;
	list_node   node; /* the server's calls */
	nng_ctx     ctx;
	nng_aio    *aio;
	int         state;
	uint32_t    pipe;
	int         answered;
	/* What is being served, for the audit line at the answer. */
	const rpc_method *method;
	const char       *mname; /* the descriptor's, once found */
	rpc_identity      who;
	/* rpc_dispatch_foreign: no context or aio; the answer goes to
	 * f.sink, which has run once sunk is set. */
	bool        foreign, sunk;
	rpc_foreign f;
};

struct rpc_server {
	uv_loop_t         *loop;
	loopq             *q;
	nng_socket         sock;
	nng_listener       listener;
	nng_tls_config    *tls;
	const rpc_service *service;
	const rpc_method **handlers; /* by the descriptor's method index */
	rpc_auth_fn       *auth;
	void              *auth_arg;
	char              *token;
	list               calls;
	int                receiving;
	int                closing;
	uv_mutex_t         gone_mtx; /* guards gone: nng threads append */
	uint32_t          *gone;
	size_t             n_gone, cap_gone;
	void (*on_disconnect)(void *, uint32_t);
	void *on_disconnect_arg;
	/* rpc_server_open_local: no socket; calls have no context or aio,
	 * and a reply goes to on_reply instead of a client. */
	bool local;
	void (*on_reply)(void *, const void *, size_t);
	void *on_reply_arg;
};

static void rpc_call_recv(rpc_call *c);

/* A call with no nng context of its own: the fuzzers' (local server) or a
 * foreign transport's.  It is freed once answered, never received on. */
static bool
rpc_detached(const rpc_call *c)
{
	return c->srv->local || c->foreign;
}
static int rpc_bind_handlers(rpc_server *s);
static int rpc_call_new(rpc_server *s);

/* Whether got is the server's token (constant-time: wirecheck_same). */
static bool
rpc_token_ok(const char *want, const char *got)
{
	return wirecheck_same(want, strlen(want), got, strlen(got));
}

static void
rpc_call_free(rpc_call *c)
{
	rpc_server *s = c->srv;

	list_remove(&s->calls, c);
	if (rpc_detached(c)) {
		/* A foreign caller hears of every end, answered or not. */
		if (c->foreign && !c->sunk)
			c->f.sink(c->f.sink_arg, NULL, 0);
		free(c);
		return;
	}
	nng_aio_stop(c->aio);
	/* A message still on the aio was never handed to nng (a failed or
	 * cancelled send) or never taken by us (a receive cut short by
	 * shutdown): either way it is ours to free. */
	if (nng_aio_get_msg(c->aio) != NULL)
		nng_msg_free(nng_aio_get_msg(c->aio));
	nng_aio_free(c->aio);
	nng_ctx_close(c->ctx);
	free(c);
}

/* Loop thread: a send finished (or failed; the client is gone then and
 * nothing more can be done for it). */
static void
rpc_sent(rpc_call *c)
{
	rpc_server *s = c->srv;
	int         rv = rpc_detached(c) ? 0 : nng_aio_result(c->aio);

	if (rv != 0 && nng_aio_get_msg(c->aio) != NULL) {
		nng_msg_free(nng_aio_get_msg(c->aio));
		nng_aio_set_msg(c->aio, NULL);
	}
	if (rpc_detached(c) || s->receiving >= RPC_MIN_RECEIVERS)
		rpc_call_free(c);
	else
		rpc_call_recv(c);
}

const char *
rpc_role_name(int role)
{
	static const char *const names[] = {
	    [TROUPE__ROLE__ROLE_NONE] = "none",
	    [TROUPE__ROLE__ROLE_READ] = "read",
	    [TROUPE__ROLE__ROLE_SUBMIT] = "submit",
	    [TROUPE__ROLE__ROLE_ADMIN] = "admin",
	    [TROUPE__ROLE__ROLE_WORKER] = "worker",
	};

	return role >= 0 && role < (int)(sizeof(names) / sizeof(names[0]))
	           ? names[role]
	           : "unknown";
}

/* The audit line of a call that changes state: who, what, how it ended.
 * Never the token itself: its id. */
static void
rpc_audit(const rpc_call *c, int err, const char *text)
{
	if (c->method == NULL || !c->method->audit)
		return;
	log_info("audit: %s by token %s (project %s, role %s): %s%s%s",
	         c->method->name, c->who.token_id,
	         c->who.project[0] != '\0' ? c->who.project : "*",
	         rpc_role_name(c->who.role),
	         err == 0 ? "ok" : troupe_code_name(troupe_err_to_code(err)),
	         err == 0 ? "" : ": ", err == 0 ? "" : text);
}

/* Counts an answer by service, method ("-" before one is found) and
 * code. */
static void
rpc_count(const rpc_call *c, int code)
{
	char                      labels[256];
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &troupe__code__descriptor, code);

	metrics_add(M_API_REQUESTS,
	            metrics_labels(labels, sizeof(labels), "service",
	                           c->srv->service->desc->name, "method",
	                           c->mname != NULL ? c->mname : "-", "code",
	                           v != NULL ? v->name : "?", NULL),
	            1);
}

static void
rpc_send(rpc_call *c, nng_msg *m)
{
	int was = c->state;

	c->answered = 1;
	c->state = RPC_SEND;
	if (rpc_detached(c)) {
		/* "Sent" at once; a call answered inside its handler is
		 * freed by rpc_dispatch_buf, after the handler returned. */
		if (c->foreign) {
			c->sunk = true;
			c->f.sink(c->f.sink_arg, nng_msg_body(m),
			          nng_msg_len(m));
		} else if (c->srv->on_reply != NULL)
			c->srv->on_reply(c->srv->on_reply_arg, nng_msg_body(m),
			                 nng_msg_len(m));
		nng_msg_free(m);
		if (was != RPC_DISPATCH)
			rpc_sent(c);
		return;
	}
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

void
rpc_reply(rpc_call *c, const ProtobufCMessage *msg)
{
	nng_msg *m = NULL;

	if (troupe_envelope_reply(TROUPE__CODE__OK, NULL, msg, &m) != 0) {
		rpc_fail(c, TROUPE_ENOMEM, "out of memory packing the reply");
		return;
	}
	rpc_audit(c, 0, NULL);
	rpc_count(c, TROUPE__CODE__OK);
	rpc_send(c, m);
}

void
rpc_fail(rpc_call *c, int err, const char *fmt, ...)
{
	char     text[1024];
	nng_msg *m = NULL;
	va_list  ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Messages quote the caller's strings cut to a width, maybe inside
	 * a character: the reply is UTF-8 all the same. */
	for (size_t i = 0, n = strlen(text); i < n;) {
		size_t k = wirecheck_utf8_len((const uint8_t *)text + i, n - i);

		if (k == 0) {
			text[i] = '?';
			k = 1;
		}
		i += k;
	}
	rpc_audit(c, err, text);
	rpc_count(c, troupe_err_to_code(err));
	if (troupe_envelope_reply(troupe_err_to_code(err), text, NULL, &m) !=
	    0) {
		/* Not even an error reply fits in memory: drop the call; the
		 * client's deadline tells it. */
		c->answered = 1;
		if (!rpc_detached(c) || c->state != RPC_DISPATCH)
			rpc_sent(c);
		return;
	}
	rpc_send(c, m);
}

void
rpc_drop(rpc_call *c)
{
	assert(c->state == RPC_PARKED && !c->answered);
	/* A parked call is not one of the receivers: none to replace. */
	rpc_call_free(c);
}

const rpc_identity *
rpc_call_identity(const rpc_call *c)
{
	return &c->who;
}

uint32_t
rpc_call_pipe(const rpc_call *c)
{
	return c->pipe;
}

/* Loop thread: a request's len bytes at buf arrived on c.  Unpacks them,
 * checks the token, finds the method in the service descriptor and calls
 * its handler.  m (may be NULL), which holds buf, is freed once the
 * envelope is unpacked, before the handler runs. */
static void
rpc_dispatch_buf(rpc_call *c, const uint8_t *buf, size_t len, nng_msg *m)
{
	rpc_server                       *s = c->srv;
	const ProtobufCServiceDescriptor *desc = s->service->desc;
	const ProtobufCMethodDescriptor  *md = NULL;
	Troupe__Request                  *req = NULL;
	ProtobufCMessage                 *in = NULL;
	char                              why[512];

	c->state = RPC_DISPATCH;
	c->answered = 0;
	c->method = NULL;
	c->mname = NULL;
	memset(&c->who, 0, sizeof(c->who));
	if (wirecheck_strings(&troupe__request__descriptor, buf, len, 0, why,
	                      sizeof(why)) != 0) {
		if (m != NULL)
			nng_msg_free(m);
		rpc_fail(c, TROUPE_EINVAL,
		         "malformed request: envelope string field %s", why);
		goto done;
	}
	req = troupe__request__unpack(NULL, len, buf);
	if (m != NULL)
		nng_msg_free(m);
	if (req == NULL) {
		rpc_fail(c, TROUPE_EPROTO,
		         "malformed request: not a troupe.Request envelope");
		goto done;
	}
	if (c->foreign || s->auth != NULL) {
		char why[256];
		int  rv =
                    c->foreign
		         ? c->f.auth(c->f.auth_arg, req->token, req->project,
		                     c->f.required, &c->who, why, sizeof(why))
		         : s->auth(s->auth_arg, req->token, req->project,
		                   s->token != NULL, &c->who, why, sizeof(why));

		if (rv != 0) {
			rpc_fail(c, rv, "%s", why);
			goto done;
		}
	} else if (s->token != NULL && !rpc_token_ok(s->token, req->token)) {
		rpc_fail(c, TROUPE_EAUTH,
		         req->token[0] == '\0' ? "a token is required"
		                               : "wrong token");
		goto done;
	} else {
		/* Without an authenticator the one token (or none, on an
		 * owner-only socket) is the local admin. */
		snprintf(c->who.token_id, sizeof(c->who.token_id), "local");
		snprintf(c->who.project, sizeof(c->who.project), "%.63s",
		         req->project);
		c->who.role = TROUPE__ROLE__ROLE_ADMIN;
	}
	md =
	    protobuf_c_service_descriptor_get_method_by_name(desc, req->method);
	if (md != NULL)
		c->mname = md->name;
	if (md == NULL) {
		rpc_fail(c, TROUPE_EUNIMPL, "unknown method '%.64s' of %s",
		         req->method, desc->name);
		goto done;
	}
	if (wirecheck_strings(md->input, req->body.data, req->body.len, 0, why,
	                      sizeof(why)) != 0) {
		rpc_fail(c, TROUPE_EINVAL, "%s: string field %s", md->name,
		         why);
		goto done;
	}
	in = protobuf_c_message_unpack(md->input, NULL, req->body.len,
	                               req->body.data);
	if (in == NULL) {
		rpc_fail(c, TROUPE_EPROTO, "malformed %s body for %s",
		         md->input->name, md->name);
		goto done;
	}
	c->method = s->handlers[md - desc->methods];
	if (c->method->roles != 0 &&
	    (c->method->roles & RPC_ROLE(c->who.role)) == 0) {
		rpc_fail(c, TROUPE_EPERM, "a %s token cannot call %s",
		         rpc_role_name(c->who.role), md->name);
		goto done;
	}
	c->method->fn(s->service->ctx, in, c);
	if (!c->answered) {
		/* Parked: keep the server receiving without this context. */
		c->state = RPC_PARKED;
		if (!rpc_detached(c) && s->receiving < RPC_MIN_RECEIVERS)
			(void)rpc_call_new(s);
	}
done:
	if (in != NULL)
		protobuf_c_message_free_unpacked(in, NULL);
	if (req != NULL)
		troupe__request__free_unpacked(req, NULL);
	if (rpc_detached(c) && c->answered)
		rpc_call_free(c);
}

/* Loop thread: a request arrived on c. */
static void
rpc_dispatch(rpc_call *c, nng_msg *m)
{
	c->pipe = nng_pipe_id(nng_msg_get_pipe(m));
	rpc_dispatch_buf(c, nng_msg_body(m), nng_msg_len(m), m);
}

int
rpc_server_open_local(const rpc_service *service, const char *token,
                      void (*on_reply)(void *, const void *, size_t), void *arg,
                      rpc_server **out)
{
	rpc_server *s = NULL;
	int         rv;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TROUPE_ENOMEM;
	uv_mutex_init(&s->gone_mtx);
	list_init(&s->calls, offsetof(rpc_call, node));
	s->local = true;
	s->service = service;
	s->on_reply = on_reply;
	s->on_reply_arg = arg;
	if ((rv = rpc_bind_handlers(s)) != 0)
		goto fail;
	if (token != NULL && (s->token = strdup(token)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	rpc_server_close(s);
	return rv;
}

int
rpc_dispatch_bytes(rpc_server *s, uint32_t pipe, const void *buf, size_t len)
{
	rpc_call *c;

	assert(s->local);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TROUPE_ENOMEM;
	c->srv = s;
	c->pipe = pipe;
	list_append(&s->calls, c);
	rpc_dispatch_buf(c, buf, len, NULL);
	return 0;
}

int
rpc_dispatch_foreign(rpc_server *s, const void *buf, size_t len,
                     const rpc_foreign *f)
{
	rpc_call *c;

	assert(f->auth != NULL && f->sink != NULL);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TROUPE_ENOMEM;
	c->srv = s;
	c->foreign = true;
	c->f = *f;
	list_append(&s->calls, c);
	rpc_dispatch_buf(c, buf, len, NULL);
	return 0;
}

/* Loop thread: the aio of c completed (posted from rpc_aio_cb). */
static void
rpc_on_loop(void *arg)
{
	rpc_call   *c = arg;
	rpc_server *s = c->srv;
	nng_msg    *m;
	int         rv;

	if (c->state == RPC_SEND) {
		rpc_sent(c);
		return;
	}
	/* RPC_RECV */
	s->receiving--;
	rv = nng_aio_result(c->aio);
	if (rv != 0) {
		if (rv == NNG_ECLOSED || s->closing)
			return; /* freed by rpc_server_close */
		log_warn("receive failed: %s", nng_strerror(rv));
		rpc_call_recv(c);
		return;
	}
	m = nng_aio_get_msg(c->aio);
	nng_aio_set_msg(c->aio, NULL);
	rpc_dispatch(c, m);
}

/* nng thread: hand the completion to the loop, nothing else. */
static void
rpc_aio_cb(void *arg)
{
	rpc_call *c = arg;

	if (loopq_post(c->srv->q, rpc_on_loop, c) != 0)
		log_error("out of memory posting an RPC completion");
}

static void
rpc_call_recv(rpc_call *c)
{
	c->state = RPC_RECV;
	c->srv->receiving++;
	nng_ctx_recv(c->ctx, c->aio);
}

/* Opens one more receiving call.  Returns 0 or a TROUPE_E* code. */
static int
rpc_call_new(rpc_server *s)
{
	rpc_call *c = calloc(1, sizeof(*c));
	int       rv;

	if (c == NULL)
		return TROUPE_ENOMEM;
	c->srv = s;
	if ((rv = nng_ctx_open(&c->ctx, s->sock)) != 0) {
		free(c);
		return troupe_err_from_nng(rv);
	}
	if ((rv = nng_aio_alloc(&c->aio, rpc_aio_cb, c)) != 0) {
		nng_ctx_close(c->ctx);
		free(c);
		return troupe_err_from_nng(rv);
	}
	list_append(&s->calls, c);
	rpc_call_recv(c);
	return 0;
}

/* Loop thread: connections that closed since the last time.  The pipe ids
 * wait in a mutex-protected list owned by the server, so nothing is lost
 * or leaked if the server closes with notices still queued. */
static void
rpc_gone_on_loop(void *arg)
{
	rpc_server *s = arg;

	for (;;) {
		uint32_t pipe;
		bool     have = false;

		uv_mutex_lock(&s->gone_mtx);
		if (s->n_gone > 0) {
			pipe = s->gone[--s->n_gone];
			have = true;
		}
		uv_mutex_unlock(&s->gone_mtx);
		if (!have)
			return;
		if (!s->closing && s->on_disconnect != NULL)
			s->on_disconnect(s->on_disconnect_arg, pipe);
	}
}

/* nng thread: a connection closed. */
static void
rpc_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	rpc_server *s = arg;
	bool        post = false;

	(void)ev;
	uv_mutex_lock(&s->gone_mtx);
	if (s->n_gone == s->cap_gone) {
		uint32_t *g = grow_array(s->gone, &s->cap_gone, sizeof(*g), 16);

		if (g != NULL)
			s->gone = g;
	}
	if (s->n_gone < s->cap_gone) {
		post = s->n_gone == 0;
		s->gone[s->n_gone++] = nng_pipe_id(p);
	}
	uv_mutex_unlock(&s->gone_mtx);
	/* One wake-up per batch: the drain takes the whole list. */
	if (post)
		(void)loopq_post(s->q, rpc_gone_on_loop, s);
}

void
rpc_server_on_disconnect(rpc_server *s, void (*fn)(void *, uint32_t), void *arg)
{
	s->on_disconnect = fn;
	s->on_disconnect_arg = arg;
}

/* Reads a whole PEM file into a NUL-terminated string (caller frees);
 * NULL when it cannot be read. */
static char *
rpc_read_pem(const char *path)
{
	FILE  *f = fopen(path, "r");
	char  *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			char *b = realloc(buf, cap = (cap + 4096) * 2);
			if (b == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	} else
		buf[len] = '\0';
	fclose(f);
	return buf;
}

/* The listener's certificate and key from their two files (nng's
 * cert_key_file wants both in one file and takes a password third). */
static int
rpc_tls_own(nng_tls_config *tls, const char *cert_path, const char *key_path,
            char *err, size_t errlen)
{
	char *cert = rpc_read_pem(cert_path);
	char *key = rpc_read_pem(key_path);
	int   rv = NNG_ENOENT;

	if (cert == NULL || key == NULL)
		snprintf(err, errlen, "cannot read %s: %s",
		         cert == NULL ? cert_path : key_path, strerror(errno));
	else if ((rv = nng_tls_config_own_cert(tls, cert, key, NULL)) != 0)
		snprintf(err, errlen,
		         "cannot use certificate %s with key %s: %s", cert_path,
		         key_path, nng_strerror(rv));
	free(cert);
	free(key);
	return rv;
}

/* Everything but a file-permissioned ipc:// socket (in any spelling of
 * its scheme) may be reached by other users: tcp, tls+tcp, ws, abstract
 * sockets (which have no permissions), schemes nng learns later. */
static int
rpc_is_network(const char *url)
{
	return !troupe_addr_is_local(url);
}

/* The handler of each of the descriptor's methods, in its order, into
 * s->handlers.  Returns 0 or TROUPE_ENOMEM. */
static int
rpc_bind_handlers(rpc_server *s)
{
	const ProtobufCServiceDescriptor *d = s->service->desc;

	if ((s->handlers = calloc(d->n_methods + 1, sizeof(*s->handlers))) ==
	    NULL)
		return TROUPE_ENOMEM;
	for (unsigned i = 0; i < d->n_methods; i++)
		for (size_t k = 0; k < s->service->n_methods; k++)
			if (strcmp(d->methods[i].name,
			           s->service->methods[k].name) == 0)
				s->handlers[i] = &s->service->methods[k];
	for (unsigned i = 0; i < d->n_methods; i++)
		assert(s->handlers[i] != NULL); /* every method is served */
	return 0;
}

int
rpc_server_open(uv_loop_t *loop, loopq *q, const rpc_listen_opts *o,
                const rpc_service *service, rpc_server **out, char *err,
                size_t errlen)
{
	rpc_server *s = NULL;
	int         rv;

	*out = NULL;
	if (rpc_is_network(o->url) && (o->token == NULL || o->token[0] == 0)) {
		snprintf(err, errlen,
		         "refusing to listen on %s without a token: anyone who "
		         "can connect could run commands (give --token-file)",
		         o->url);
		return TROUPE_EPERM;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TROUPE_ENOMEM;
	uv_mutex_init(&s->gone_mtx);
	list_init(&s->calls, offsetof(rpc_call, node));
	s->loop = loop;
	s->q = q;
	s->service = service;
	s->auth = o->auth;
	s->auth_arg = o->auth_arg;
	if ((rv = rpc_bind_handlers(s)) != 0)
		goto fail;
	if (o->token != NULL && (s->token = strdup(o->token)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	if ((rv = nng_rep0_open(&s->sock)) != 0)
		goto nng_fail;
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, TROUPE_MAX_MSG);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, rpc_pipe_cb, s);
	if ((rv = nng_listener_create(&s->listener, s->sock, o->url)) != 0)
		goto nng_fail;
	if (strncasecmp(o->url, "ipc://", 6) == 0)
		nng_listener_set_int(s->listener, NNG_OPT_IPC_PERMISSIONS,
		                     0600);
	nng_listener_set_size(s->listener, NNG_OPT_RECVMAXSZ, TROUPE_MAX_MSG);
	if (strncasecmp(o->url, "tls+", 4) == 0) {
		if (o->tls_cert == NULL || o->tls_key == NULL) {
			snprintf(err, errlen,
			         "%s needs --tls-cert and --tls-key", o->url);
			rv = TROUPE_EINVAL;
			goto fail;
		}
		if ((rv = nng_tls_config_alloc(&s->tls, NNG_TLS_MODE_SERVER)) !=
		    0)
			goto nng_fail;
		if ((rv = rpc_tls_own(s->tls, o->tls_cert, o->tls_key, err,
		                      errlen)) != 0) {
			rv = troupe_err_from_nng(rv);
			goto fail;
		}
		if ((rv = nng_listener_set_ptr(s->listener, NNG_OPT_TLS_CONFIG,
		                               s->tls)) != 0)
			goto nng_fail;
	}
	if ((rv = nng_listener_start(s->listener, 0)) != 0)
		goto nng_fail;
	for (int i = 0; i < RPC_MIN_RECEIVERS; i++)
		if ((rv = rpc_call_new(s)) != 0)
			goto fail;
	*out = s;
	return 0;
nng_fail:
	snprintf(err, errlen, "cannot listen on %s: %s", o->url,
	         nng_strerror(rv));
	rv = troupe_err_from_nng(rv);
fail:
	rpc_server_close(s);
	return rv;
}

void
rpc_server_close(rpc_server *s)
{
	if (s == NULL)
		return;
	s->closing = 1;
	if (nng_socket_id(s->sock) > 0)
		nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
	/* Stop every aio first (waits out running callbacks), then close. */
	for (rpc_call *c = list_first(&s->calls); c != NULL;
	     c = list_next(&s->calls, c))
		if (c->aio != NULL)
			nng_aio_stop(c->aio);
	while (!list_empty(&s->calls))
		rpc_call_free(list_first(&s->calls));
	if (nng_socket_id(s->sock) > 0 &&
	    troupe_sock_close(s->sock, TROUPE_SOCK_CLOSE_MS) != 0)
		log_warn("a listening socket did not close in %d ms (nng "
		         "1.5.2's close deadlock); going on without it",
		         TROUPE_SOCK_CLOSE_MS);
	if (s->tls != NULL)
		nng_tls_config_free(s->tls);
	free(s->token);
	free(s->handlers);
	free(s->gone);
	uv_mutex_destroy(&s->gone_mtx);
	free(s);
}
