/*
 * The scheduler's HTTP listener (see http.h for the routes and the async
 * contract).
 *
 * A request for /api or /metrics is an http_req: nng's handler fills it
 * on an nng thread, defers its aio (so that stopping the server can cancel
 * it) and posts it to the loop; the loop answers it with http_finish, from
 * the API's sink or the metrics' text.  Two holders share it under the
 * listener's mutex: the pending aio (released by the answer or by nng's
 * cancellation, whichever comes first) and the loop (released once the
 * answer is handed over).  It is freed when both have let go; http_close
 * frees those the loop never saw (posts dropped by a closing loopq).
 */
#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "api.pb-c.h"
#include "actors.h"
#include "auth.h"
#include "exec.h"
#include "worker.h"
#include "http.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "web_assets.h"
#include "wirecheck.h"

/* Phases counted for troupe_executions (api.proto's Phase values are
 * 0..6). */
#define HTTP_PHASES 8

enum { HTTP_API, HTTP_METRICS };

typedef struct http_req {
	http_srv *h;
	list_node node; /* h->reqs, under h->mtx */
	nng_aio  *aio;  /* nng's handler aio while unanswered, else NULL */
	int       holders;
	int       kind;
	uint8_t  *body; /* HTTP_API: the envelope (ours) */
	size_t    len;
	char     *bearer; /* HTTP_METRICS: the Authorization token (ours) */
} http_req;

struct http_srv {
	sched            *s;
	loopq            *q;
	rpc_server       *api;
	auth              guard; /* the store's tokens and ours */
	char             *token;
	nng_url          *url;
	nng_http_server  *srv;
	nng_http_handler *h_api, *h_metrics, *h_files;
	bool              started;
	uv_mutex_t        mtx; /* guards reqs, closing, each req's aio */
	list              reqs;
	bool              closing;
	char              url_text[300];
};

/* Any thread: an answer of status with a one-line reason as its body.
 * Returns NULL when out of memory (nng then closes the connection). */
static nng_http_res *
http_res_text(uint16_t status, const char *reason)
{
	nng_http_res *res = NULL;
	char          line[600];
	int           n = snprintf(line, sizeof(line), "%s\n", reason);

	if (nng_http_res_alloc(&res) != 0)
		return NULL;
	if (nng_http_res_set_status(res, status) != 0 ||
	    nng_http_res_set_header(res, "Content-Type",
	                            "text/plain; charset=utf-8") != 0 ||
	    nng_http_res_copy_data(
	        res, line,
	        (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) != 0) {
		nng_http_res_free(res);
		return NULL;
	}
	return res;
}

/* Any thread: finishes a handler's aio with res (taken; NULL: close the
 * connection) when nobody has yet. */
static void
http_aio_answer(nng_aio *aio, nng_http_res *res)
{
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, res != NULL ? 0 : NNG_ENOMEM);
}

/* Under h->mtx: one holder lets r go; frees it after the last. */
static void
http_req_release_locked(http_req *r)
{
	assert(r->holders > 0);
	if (--r->holders > 0)
		return;
	list_remove(&r->h->reqs, r);
	free(r->body);
	free(r->bearer);
	free(r);
}

/* Any thread: the loop's answer to r (res taken; may be NULL): finishes
 * the aio if it is still pending, and lets r go for the loop. */
static void
http_finish(http_req *r, nng_http_res *res)
{
	http_srv *h = r->h;
	nng_aio  *aio;

	uv_mutex_lock(&h->mtx);
	if ((aio = r->aio) != NULL) {
		r->aio = NULL;
		http_aio_answer(aio, res);
		res = NULL;
		/* The aio's hold goes with the loop's below: one release, so
		 * that r is never touched after it may be freed. */
		assert(r->holders >= 2);
		r->holders--;
	}
	http_req_release_locked(r);
	uv_mutex_unlock(&h->mtx);
	if (res != NULL)
		nng_http_res_free(res);
}

/* nng thread: the server stops (its connections close) while r waits for
 * the loop; the loop finds the aio gone when it answers. */
static void
http_cancel(nng_aio *aio, void *arg, int rv)
{
	http_req *r = arg;
	http_srv *h = r->h;

	uv_mutex_lock(&h->mtx);
	if (r->aio == aio) {
		r->aio = NULL;
		nng_aio_finish(aio, rv);
		http_req_release_locked(r);
	}
	uv_mutex_unlock(&h->mtx);
}

/* nng thread: hands r (kind and contents filled) to the loop's fn, or
 * answers now when the listener is closing or memory is short. */
static void
http_post(http_req *r, nng_aio *aio, loopq_fn fn)
{
	http_srv *h = r->h;

	r->aio = aio;
	r->holders = 2; /* the pending aio, the loop */
	uv_mutex_lock(&h->mtx);
	if (h->closing) {
		uv_mutex_unlock(&h->mtx);
		free(r->body);
		free(r->bearer);
		free(r);
		http_aio_answer(aio, http_res_text(503, "the scheduler is "
		                                        "stopping"));
		return;
	}
	list_append(&h->reqs, r);
	/* The server is not stopping (closing is set before it stops), so
	 * the aio takes the cancellation. */
	nng_aio_defer(aio, http_cancel, r);
	uv_mutex_unlock(&h->mtx);
	if (loopq_post(h->q, fn, r) != 0)
		http_finish(r, http_res_text(503, "out of memory"));
}

/* Loop thread: the API's answer to r's envelope. */
static void
http_api_sink(void *arg, const void *reply, size_t len)
{
	http_req     *r = arg;
	nng_http_res *res = NULL;

	if (reply == NULL) {
		http_finish(r, http_res_text(503, "the scheduler is stopping"));
		return;
	}
	if (nng_http_res_alloc(&res) == 0 &&
	    (nng_http_res_set_header(res, "Content-Type",
	                             "application/x-protobuf") != 0 ||
	     nng_http_res_set_header(res, "Cache-Control", "no-store") != 0 ||
	     /* An OK reply with an empty body is zero bytes, which
	      * nng cannot copy. */
	     (len > 0 && nng_http_res_copy_data(res, reply, len) != 0) ||
	     /* ...nor writes a Content-Length for, leaving keep-alive
	      * clients waiting for a body. */
	     (len == 0 &&
	      nng_http_res_set_header(res, "Content-Length", "0") != 0))) {
		nng_http_res_free(res);
		res = NULL;
	}
	http_finish(r, res);
}

/* Loop thread: replicas per environment, alive (placed and not yet
 * gone) and by state as their workers last said. */
static void
http_replicas(sched *s, FILE *f)
{
	static const struct {
		const char *name;
		int         state; /* -1: every one */
	} kinds[] = {
	    {"alive", -1},
	    {"booting", TROUPE__REPLICA_STATE__REPLICA_BOOTING},
	    {"idle", TROUPE__REPLICA_STATE__REPLICA_IDLE},
	    {"busy", TROUPE__REPLICA_STATE__REPLICA_BUSY},
	    {"stopping", TROUPE__REPLICA_STATE__REPLICA_STOPPING},
	};
	char l[512];

	metrics_head(f, "troupe_replicas", "gauge",
	             "Actor replicas per environment: alive, and by state.");
	for (actor_env *env = s->act.envs; env != NULL; env = env->next)
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			uint64_t n = 0;

			for (worker *w = list_first(&s->workers); w != NULL;
			     w = list_next(&s->workers, w))
				for (replica *r = w->replicas; r != NULL;
				     r = r->next)
					n += r->env == env &&
					     (kinds[k].state < 0 ||
					      (int)r->state == kinds[k].state);
			metrics_sample(f, "troupe_replicas",
			               metrics_labels(l, sizeof(l),
			                              "environment", env->key,
			                              "state", kinds[k].name,
			                              NULL),
			               (double)n);
		}
}

/* Loop thread: the gauges, a view of the state at this scrape. */
static void
http_gauges(sched *s, FILE *f)
{
	const ProtobufCEnumDescriptor *pd = &troupe__phase__descriptor;
	const ProtobufCEnumDescriptor *wd = &troupe__worker_state__descriptor;
	char                           l[512];
	uint64_t                       pending = 0, running = 0;
	uint64_t                       phases[HTTP_PHASES];

	/* Every execution kept, finished ones included, as of the last
	 * commit: the database knows them all (memory, only the active). */
	if (store_count_phases(s->st, phases, HTTP_PHASES) != 0) {
		log_warn("metrics: cannot count the executions: %s",
		         store_errmsg(s->st));
	} else {
		metrics_head(f, "troupe_executions", "gauge",
		             "Executions stored, finished ones included, by "
		             "phase (as of the last commit).");
		for (unsigned i = 0; i < pd->n_values; i++) {
			int v = pd->values[i].value;

			metrics_sample(
			    f, "troupe_executions",
			    metrics_labels(l, sizeof(l), "phase",
			                   pd->values[i].name, NULL),
			    v >= 0 && v < HTTP_PHASES ? (double)phases[v] : 0);
		}
	}
	for (exec *e = list_first(&s->execs); e != NULL;
	     e = list_next(&s->execs, e)) {
		pending += e->n_pending;
		running += e->n_running;
	}
	metrics_head(f, "troupe_queue_depth", "gauge",
	             "Items waiting for a slot (pending) in the executions "
	             "held.");
	metrics_sample(f, "troupe_queue_depth", "", (double)pending);
	metrics_head(f, "troupe_items_running", "gauge", "Items running now.");
	metrics_sample(f, "troupe_items_running", "", (double)running);
	metrics_head(f, "troupe_workers", "gauge",
	             "Registered workers, by state.");
	for (unsigned i = 0; i < wd->n_values; i++) {
		uint64_t n = 0;

		for (worker *w = list_first(&s->workers); w != NULL;
		     w = list_next(&s->workers, w))
			n += (int)w->state == wd->values[i].value;
		metrics_sample(f, "troupe_workers",
		               metrics_labels(l, sizeof(l), "state",
		                              wd->values[i].name, NULL),
		               (double)n);
	}
	metrics_head(f, "troupe_worker_slots", "gauge",
	             "Each worker's slots, used (items running, replicas "
	             "placed) or free.");
	for (worker *w = list_first(&s->workers); w != NULL;
	     w = list_next(&s->workers, w)) {
		uint32_t used = w->n_proc + actors_used_slots(w);

		used = used > w->slots ? w->slots : used;
		metrics_sample(f, "troupe_worker_slots",
		               metrics_labels(l, sizeof(l), "worker", w->name,
		                              "state", "used", NULL),
		               used);
		metrics_sample(f, "troupe_worker_slots",
		               metrics_labels(l, sizeof(l), "worker", w->name,
		                              "state", "free", NULL),
		               w->slots - used);
	}
	http_replicas(s, f);
}

/* Loop thread: an envelope for the API. */
static void
http_api_on_loop(void *arg)
{
	http_req         *r = arg;
	http_srv         *h = r->h;
	const rpc_foreign f = {.auth = auth_rpc,
	                       .auth_arg = &h->guard,
	                       .required = true,
	                       .sink = http_api_sink,
	                       .sink_arg = r};
	Troupe__Request  *req;
	char              why[300], line[400];

	/* A body that is no envelope is the HTTP request's fault (400); an
	 * envelope the API refuses gets the API's own reply, as on nng. */
	if (wirecheck_strings(&troupe__request__descriptor, r->body, r->len, 0,
	                      why, sizeof(why)) != 0) {
		snprintf(line, sizeof(line),
		         "malformed request: envelope string field %s", why);
		http_finish(r, http_res_text(400, line));
		return;
	}
	if ((req = troupe__request__unpack(NULL, r->len, r->body)) == NULL) {
		http_finish(r, http_res_text(400, "malformed request: not a "
		                                  "troupe.Request envelope"));
		return;
	}
	troupe__request__free_unpacked(req, NULL);
	if (rpc_dispatch_foreign(h->api, r->body, r->len, &f) != 0)
		http_finish(r, http_res_text(503, "out of memory"));
}

/* nng thread: POST /api. */
static void
http_on_api(nng_aio *aio)
{
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_handler *hh = nng_aio_get_input(aio, 1);
	http_srv         *h = nng_http_handler_get_data(hh);
	http_req         *r = NULL;
	void             *body = NULL;
	size_t            len = 0;

	nng_http_req_get_data(req, &body, &len);
	if (len == 0) {
		http_aio_answer(aio, http_res_text(400, "the body must be a "
		                                        "troupe.Request "
		                                        "envelope (protobuf)"));
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->body = malloc(len)) == NULL) {
		free(r);
		http_aio_answer(aio, http_res_text(503, "out of memory"));
		return;
	}
	memcpy(r->body, body, len);
	r->len = len;
	r->h = h;
	r->kind = HTTP_API;
	http_post(r, aio, http_api_on_loop);
}

/* Loop thread: the whole exposition into *text (the caller's, free) of
 * *len bytes: the counters of metrics.c and the gauges of the state.
 * Returns 0 or TROUPE_ENOMEM. */
static int
http_metrics_text(http_srv *h, char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);

	if (f == NULL)
		return TROUPE_ENOMEM;
	http_gauges(h->s, f);
	metrics_write(f);
	if (ferror(f)) {
		fclose(f);
		free(*text);
		*text = NULL;
		return TROUPE_ENOMEM;
	}
	fclose(f);
	return 0;
}

/* Loop thread: the metrics' text for a cluster-wide token. */
static void
http_metrics_on_loop(void *arg)
{
	http_req     *r = arg;
	http_srv     *h = r->h;
	rpc_identity  who;
	char          why[256];
	char         *text = NULL;
	size_t        len = 0;
	nng_http_res *res = NULL;
	int           rv;

	rv = auth_rpc(&h->guard, r->bearer != NULL ? r->bearer : "", "", true,
	              &who, why, sizeof(why));
	if (rv != 0) {
		if ((res = http_res_text(401, why)) != NULL)
			nng_http_res_set_header(res, "WWW-Authenticate",
			                        "Bearer realm=\"troupe\"");
		http_finish(r, res);
		return;
	}
	if (who.project[0] != '\0') {
		snprintf(why, sizeof(why),
		         "token %s belongs to project %s: /metrics wants a "
		         "cluster-wide (admin) token",
		         who.token_id, who.project);
		http_finish(r, http_res_text(403, why));
		return;
	}
	if (http_metrics_text(h, &text, &len) != 0) {
		http_finish(r, http_res_text(503, "out of memory"));
		return;
	}
	if (nng_http_res_alloc(&res) == 0 &&
	    (nng_http_res_set_header(res, "Content-Type",
	                             "text/plain; version=0.0.4; "
	                             "charset=utf-8") != 0 ||
	     nng_http_res_copy_data(res, text, len) != 0)) {
		nng_http_res_free(res);
		res = NULL;
	}
	free(text);
	http_finish(r, res);
}

/* nng thread: GET /metrics. */
static void
http_on_metrics(nng_aio *aio)
{
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_handler *hh = nng_aio_get_input(aio, 1);
	http_srv         *h = nng_http_handler_get_data(hh);
	const char       *az = nng_http_req_get_header(req, "Authorization");
	http_req         *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		http_aio_answer(aio, http_res_text(503, "out of memory"));
		return;
	}
	if (az != NULL && strncasecmp(az, "Bearer ", 7) == 0) {
		for (az += 7; *az == ' '; az++)
			;
		if ((r->bearer = strdup(az)) == NULL) {
			free(r);
			http_aio_answer(aio,
			                http_res_text(503, "out of memory"));
			return;
		}
		/* Trailing blanks are not part of the token. */
		for (size_t n = strlen(r->bearer);
		     n > 0 && isspace((unsigned char)r->bearer[n - 1]); n--)
			r->bearer[n - 1] = '\0';
	}
	r->h = h;
	r->kind = HTTP_METRICS;
	http_post(r, aio, http_metrics_on_loop);
}

/* nng thread: any other GET, from the dashboard's files. */
static void
http_on_file(nng_aio *aio)
{
	nng_http_req           *req = nng_aio_get_input(aio, 0);
	const char             *uri = nng_http_req_get_uri(req);
	const struct web_asset *a = NULL;
	nng_http_res           *res = NULL;
	char                    path[1024];
	size_t                  n = strcspn(uri, "?#");

	if (n < sizeof(path)) {
		memcpy(path, uri, n);
		path[n] = '\0';
		a = web_asset_find(path);
	}
	if (a == NULL) {
		http_aio_answer(aio, http_res_text(404, "no such page"));
		return;
	}
	if (nng_http_res_alloc(&res) == 0 &&
	    (nng_http_res_set_header(res, "Content-Type", a->content_type) !=
	         0 ||
	     nng_http_res_set_header(res, "Cache-Control", "no-cache") != 0 ||
	     nng_http_res_set_header(res, "X-Content-Type-Options",
	                             "nosniff") != 0 ||
	     nng_http_res_set_data(res, a->bytes, a->length) != 0)) {
		nng_http_res_free(res);
		res = NULL;
	}
	http_aio_answer(aio, res);
}

/* Adds a handler for path (method; NULL for GET) to h's server. */
static int
http_route(http_srv *h, nng_http_handler **out, const char *path,
           const char *method, void (*fn)(nng_aio *), size_t maxbody, bool tree)
{
	int rv;

	if ((rv = nng_http_handler_alloc(out, path, fn)) != 0)
		return rv;
	if ((method != NULL &&
	     (rv = nng_http_handler_set_method(*out, method)) != 0) ||
	    (rv = nng_http_handler_collect_body(*out, maxbody > 0, maxbody)) !=
	        0 ||
	    (tree && (rv = nng_http_handler_set_tree(*out)) != 0) ||
	    (rv = nng_http_handler_set_data(*out, h, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->srv, *out)) != 0) {
		nng_http_handler_free(*out);
		*out = NULL;
		return rv;
	}
	/* The server holds it now and frees it when released. */
	*out = NULL;
	return 0;
}

const char *
http_url(const http_srv *h)
{
	return h->url_text;
}

/* The address the server got (port 0 picks one) as "http://HOST:PORT/". */
static void
http_fill_url(http_srv *h)
{
	nng_sockaddr sa;
	const char  *host = h->url->u_hostname;
	unsigned     port = (unsigned)atoi(h->url->u_port);

	if (nng_http_server_get_addr(h->srv, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET)
			port = ntohs(sa.s_in.sa_port);
		else if (sa.s_family == NNG_AF_INET6)
			port = ntohs(sa.s_in6.sa_port);
	}
	if (host == NULL || host[0] == '\0')
		host = "0.0.0.0";
	snprintf(h->url_text, sizeof(h->url_text),
	         strchr(host, ':') != NULL ? "http://[%s]:%u/"
	                                   : "http://%s:%u/",
	         host, port);
}

int
http_open(sched *s, loopq *q, rpc_server *api, const http_opts *o,
          http_srv **out, char *err, size_t errlen)
{
	http_srv *h = NULL;
	char      url[512];
	int       rv;

	*out = NULL;
	if (o->token == NULL || o->token[0] == '\0') {
		snprintf(err, errlen,
		         "refusing to serve HTTP on %s without a token: anyone "
		         "who can connect could run commands (give "
		         "--token-file or --http-token-file)",
		         o->url);
		return TROUPE_EPERM;
	}
	if (strstr(o->url, "://") == NULL)
		snprintf(url, sizeof(url), "http://%s", o->url);
	else
		snprintf(url, sizeof(url), "%s", o->url);
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return TROUPE_ENOMEM;
	uv_mutex_init(&h->mtx);
	list_init(&h->reqs, offsetof(http_req, node));
	h->s = s;
	h->q = q;
	h->api = api;
	if ((h->token = strdup(o->token)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	h->guard.st = s->auth.st;
	h->guard.bootstrap = h->token;
	if ((rv = nng_url_parse(&h->url, url)) != 0 ||
	    strcmp(h->url->u_scheme, "http") != 0) {
		snprintf(err, errlen,
		         "bad --http-listen '%s': want http://HOST:PORT or "
		         "HOST:PORT",
		         o->url);
		rv = TROUPE_EINVAL;
		goto fail;
	}
	if ((rv = nng_http_server_hold(&h->srv, h->url)) != 0)
		goto nng_fail;
	if ((rv = http_route(h, &h->h_api, "/api", "POST", http_on_api,
	                     TROUPE_MAX_MSG, false)) != 0 ||
	    (rv = http_route(h, &h->h_metrics, "/metrics", NULL,
	                     http_on_metrics, 0, false)) != 0 ||
	    (rv = http_route(h, &h->h_files, "/", NULL, http_on_file, 0,
	                     true)) != 0)
		goto nng_fail;
	if ((rv = nng_http_server_start(h->srv)) != 0)
		goto nng_fail;
	h->started = true;
	http_fill_url(h);
	*out = h;
	return 0;
nng_fail:
	snprintf(err, errlen, "cannot serve HTTP on %s: %s", o->url,
	         nng_strerror(rv));
	rv = troupe_err_from_nng(rv);
fail:
	http_close(h);
	return rv;
}

void
http_close(http_srv *h)
{
	http_req *r;

	if (h == NULL)
		return;
	uv_mutex_lock(&h->mtx);
	h->closing = true;
	uv_mutex_unlock(&h->mtx);
	if (h->srv != NULL) {
		/* Cancels every pending aio (http_cancel) and waits for the
		 * connections to go. */
		if (h->started)
			nng_http_server_stop(h->srv);
		nng_http_server_release(h->srv);
	}
	/* What is left was posted to a loop that will not run it again. */
	uv_mutex_lock(&h->mtx);
	while ((r = list_first(&h->reqs)) != NULL) {
		assert(r->aio == NULL);
		r->holders = 1;
		http_req_release_locked(r);
	}
	uv_mutex_unlock(&h->mtx);
	if (h->url != NULL)
		nng_url_free(h->url);
	free(h->token);
	uv_mutex_destroy(&h->mtx);
	free(h);
}
