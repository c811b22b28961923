/*
 * The scheduler's HTTP listener (--http-listen): the top layer, beside
 * main.c (docs/design.md, "The scheduler's layers").  Serves
 *
 *   POST /api      a troupe.Request envelope in, the troupe.Reply out
 *                  (application/x-protobuf), through the API's own
 *                  dispatch (rpc_dispatch_foreign): token, roles and
 *                  projects as on the nng API, a token always required;
 *   GET /metrics   Prometheus' text format, for a cluster-wide token given
 *                  as "Authorization: Bearer TOKEN";
 *   GET /...       the dashboard's files (web_assets.h), to anyone: they
 *                  hold no data.
 *
 * Async contract: nng's HTTP server runs the handlers on its threads.  A
 * static file is answered there (the asset table is constant); /api and
 * /metrics are posted to the loop (loopq), where every piece of the
 * scheduler's state lives, and their handler's aio is finished from the
 * loop when the answer is ready: a parked call (WatchExecution) holds no
 * nng thread.  A request's record is shared by the two sides under the
 * listener's mutex and freed when neither holds it.
 */
#ifndef TROUPE_SCHED_HTTP_H
#define TROUPE_SCHED_HTTP_H

#include <stddef.h>

#include "core.h"
#include "loopq.h"
#include "rpc.h"

typedef struct http_srv http_srv;

typedef struct http_opts {
	/* http://HOST:PORT or HOST:PORT; port 0 picks a free one. */
	const char *url;
	/* The token that guards it (required, non-empty; borrowed): the
	 * listener's bootstrap admin.  Tokens of the store count too. */
	const char *token;
} http_opts;

/* Loop thread: starts the listener serving api (the API's server, whose
 * dispatch /api uses; borrowed, it must outlive *out) and s's state.
 * Refuses (TROUPE_EPERM) without a token.  On failure err holds one line
 * for a person.  The caller owns *out (http_close). */
int http_open(sched *s, loopq *q, rpc_server *api, const http_opts *o,
              http_srv **out, char *err, size_t errlen);

/* "http://HOST:PORT/" with the port it listens on (owned by h). */
const char *http_url(const http_srv *h);

/* Loop thread: stops the listener, ending every request still open (the
 * API server must be closed first: it ends the calls HTTP parked in it),
 * and frees h.  Accepts NULL. */
void http_close(http_srv *h);

#endif
