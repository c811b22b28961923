/*
 * troupe-scheduler: parses flags, opens the state, listens, runs the loop.
 *
 * Async contract: one libuv loop owns all state (core.h); nng completes
 * on its threads and posts to the loop through loopq; SIGTERM/SIGINT stop
 * the daemon gracefully: stop accepting, commit what is pending, exit 0.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "loopq.h"
#include "metrics.h"
#include "rpc.h"
#include "scheduler.h"
#include "troupe/error.h"
#include "troupe/home.h"
#include "troupe/sockclose.h"

typedef struct opts {
	char    *home, *listen, *worker_listen, *db, *token_file;
	char    *tls_cert, *tls_key;
	char    *http_listen, *http_token_file;
	uint32_t worker_timeout_ms, pull_timeout_ms, actor_prefetch;
	uint32_t upload_timeout_s;
} opts;

static const struct option main_long[] = {
    {"home", required_argument, NULL, 'H'},
    {"listen", required_argument, NULL, 'l'},
    {"worker-listen", required_argument, NULL, 'w'},
    {"db", required_argument, NULL, 'd'},
    {"token-file", required_argument, NULL, 't'},
    {"tls-cert", required_argument, NULL, 'c'},
    {"tls-key", required_argument, NULL, 'k'},
    {"worker-timeout", required_argument, NULL, 'T'},
    {"pull-timeout", required_argument, NULL, 'P'},
    {"actor-prefetch", required_argument, NULL, 'A'},
    {"upload-timeout", required_argument, NULL, 'U'},
    {"http-listen", required_argument, NULL, 'L'},
    {"http-token-file", required_argument, NULL, 'K'},
    {"config", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void
main_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: troupe-scheduler [--home DIR] [--listen URL] "
	    "[--worker-listen URL]\n"
	    "                        [--db PATH] [--token-file FILE] "
	    "[--tls-cert PEM --tls-key PEM]\n"
	    "                        [--worker-timeout MS] [--pull-timeout MS] "
	    "[--actor-prefetch N]\n"
	    "                        [--upload-timeout S]\n"
	    "                        [--http-listen HOST:PORT "
	    "[--http-token-file FILE]]\n"
	    "                        [--config FILE]\n"
	    "Defaults: --home $TROUPE_HOME (or ~/.local/state/troupe), "
	    "--listen "
	    "ipc://HOME/api.sock,\n"
	    "--worker-listen ipc://HOME/worker.sock, --db HOME/troupe.db.  "
	    "Every listener\nbut ipc:// (tcp://, tls+tcp://, ws://, "
	    "abstract://, ...) needs --token-file.  --http-listen (off "
	    "by default) serves\n/metrics, POST /api and the dashboard; "
	    "it needs a token: --token-file's, or\n--http-token-file's "
	    "for HTTP alone.\n");
}

static int
main_ms(const char *v, uint32_t *out)
{
	char         *end = NULL;
	unsigned long n = strtoul(v, &end, 10);

	if (end == v || *end != '\0' || n == 0 || n > 3600000)
		return TROUPE_EINVAL;
	*out = (uint32_t)n;
	return 0;
}

static int
main_set(opts *o, int key, const char *v)
{
	char **slot = NULL;

	switch (key) {
	case 'H': slot = &o->home; break;
	case 'l': slot = &o->listen; break;
	case 'w': slot = &o->worker_listen; break;
	case 'd': slot = &o->db; break;
	case 't': slot = &o->token_file; break;
	case 'c': slot = &o->tls_cert; break;
	case 'k': slot = &o->tls_key; break;
	case 'L': slot = &o->http_listen; break;
	case 'K': slot = &o->http_token_file; break;
	case 'T': return main_ms(v, &o->worker_timeout_ms);
	case 'P': return main_ms(v, &o->pull_timeout_ms);
	case 'A': return main_ms(v, &o->actor_prefetch);
	case 'U': return main_ms(v, &o->upload_timeout_s);
	default: return TROUPE_EINVAL;
	}
	free(*slot);
	return (*slot = strdup(v)) != NULL ? 0 : TROUPE_ENOMEM;
}

static int
main_conf_cb(void *arg, const char *key, const char *val)
{
	for (const struct option *o = main_long; o->name != NULL; o++)
		if (strcmp(o->name, key) == 0 && o->val != 'C' && o->val != 'h')
			return main_set(arg, o->val, val);
	return TROUPE_EINVAL;
}

static void
main_opts_free(opts *o)
{
	free(o->home);
	free(o->listen);
	free(o->worker_listen);
	free(o->db);
	free(o->token_file);
	free(o->tls_cert);
	free(o->tls_key);
	free(o->http_listen);
	free(o->http_token_file);
}

/* Fills defaults from the state directory.  Returns 0 or an error. */
static int
main_defaults(opts *o, char *err, size_t errlen)
{
	char buf[4096];
	int  rv;

	if (o->home != NULL)
		setenv("TROUPE_HOME", o->home, 1);
	if ((rv = troupe_home(buf, sizeof(buf))) != 0) {
		snprintf(err, errlen,
		         "no state directory: set TROUPE_HOME or HOME");
		return rv;
	}
	if (o->home == NULL && (o->home = strdup(buf)) == NULL)
		return TROUPE_ENOMEM;
	if ((rv = troupe_home_make(o->home)) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", o->home,
		         troupe_strerror(rv));
		return rv;
	}
	if (o->listen == NULL) {
		snprintf(buf, sizeof(buf), "ipc://%s/api.sock", o->home);
		o->listen = strdup(buf);
	}
	if (o->worker_listen == NULL) {
		snprintf(buf, sizeof(buf), "ipc://%s/worker.sock", o->home);
		o->worker_listen = strdup(buf);
	}
	if (o->db == NULL) {
		snprintf(buf, sizeof(buf), "%s/troupe.db", o->home);
		o->db = strdup(buf);
	}
	if (o->listen == NULL || o->worker_listen == NULL || o->db == NULL)
		return TROUPE_ENOMEM;
	if (o->worker_timeout_ms == 0)
		o->worker_timeout_ms = 5000;
	if (o->actor_prefetch == 0)
		o->actor_prefetch = 64;
	if (o->upload_timeout_s == 0)
		o->upload_timeout_s = 60;
	if (o->pull_timeout_ms == 0)
		o->pull_timeout_ms = 2000;
	if (o->pull_timeout_ms >= o->worker_timeout_ms)
		o->pull_timeout_ms = o->worker_timeout_ms / 2;
	return 0;
}

typedef struct daemon_state {
	uv_loop_t   loop;
	uv_signal_t sigterm, sigint, sighup;
	loopq      *q;
	sched      *s;
	rpc_server *api, *link;
	http_srv   *http;
} daemon_state;

static void
main_stop(uv_signal_t *h, int signum)
{
	daemon_state *d = h->data;

	log_info("signal %d: committing and stopping", signum);
	sd_notify(0, "STOPPING=1");
	(void)sched_flush(d->s);
	uv_stop(&d->loop);
}

static void
main_hup(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	log_info("SIGHUP: nothing to reload; configuration is read at start");
}

int
main(int argc, char **argv)
{
	opts         o = {0};
	daemon_state d = {0};
	sched_opts   so = {0};
	char         err[1024] = "";
	char        *token = NULL, *http_token = NULL;
	int          c, rv, status = 1;

	troupe_log_init("troupe-scheduler", LOG_LVL_INFO);
	/* The database holds every command and its outputs: owner-only. */
	umask(077);
	while ((c = getopt_long(argc, argv, "h", main_long, NULL)) != -1) {
		if (c == 'h') {
			main_usage(stdout);
			main_opts_free(&o);
			return 0;
		}
		if (c == '?') {
			main_usage(stderr);
			main_opts_free(&o);
			return 2;
		}
		if (c == 'C')
			rv = conf_file_each(optarg, main_conf_cb, &o, err,
			                    sizeof(err));
		else if ((rv = main_set(&o, c, optarg)) != 0)
			snprintf(err, sizeof(err), "bad value for --%s: '%s'",
			         main_long[0].name, optarg);
		if (rv != 0) {
			for (const struct option *p = main_long; p->name; p++)
				if (p->val == c && c != 'C')
					snprintf(err, sizeof(err),
					         "bad value for --%s: '%s'",
					         p->name, optarg);
			fprintf(stderr, "troupe-scheduler: %s\n", err);
			main_opts_free(&o);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "troupe-scheduler: unexpected argument '%s'\n",
		        argv[optind]);
		main_opts_free(&o);
		return 2;
	}
	if ((rv = main_defaults(&o, err, sizeof(err))) != 0) {
		fprintf(stderr, "troupe-scheduler: %s\n", err);
		main_opts_free(&o);
		return 2;
	}
	if (o.token_file != NULL &&
	    (rv = troupe_token_read(o.token_file, &token, err, sizeof(err))) !=
	        0) {
		fprintf(stderr, "troupe-scheduler: %s\n", err);
		main_opts_free(&o);
		return 2;
	}
	if (o.http_token_file != NULL &&
	    (rv = troupe_token_read(o.http_token_file, &http_token, err,
	                            sizeof(err))) != 0) {
		fprintf(stderr, "troupe-scheduler: %s\n", err);
		free(token);
		main_opts_free(&o);
		return 2;
	}
	/* Nothing we start needs it. */
	unsetenv("TROUPE_TOKEN");
	uv_loop_init(&d.loop);
	if ((rv = loopq_open(&d.loop, &d.q)) != 0)
		goto fail;
	so.db_path = o.db;
	so.state_dir = o.home;
	so.pull_timeout_ms = o.pull_timeout_ms;
	so.lost_after_ms = o.worker_timeout_ms;
	so.actor_prefetch = o.actor_prefetch;
	so.upload_timeout_ms = o.upload_timeout_s * 1000;
	so.token = token;
	if ((rv = sched_open(&d.loop, &so, &d.s, err, sizeof(err))) != 0)
		goto fail;
	{
		rpc_listen_opts api = {.url = o.listen,
		                       .token = token,
		                       .auth = auth_rpc,
		                       .auth_arg = &d.s->auth,
		                       .tls_cert = o.tls_cert,
		                       .tls_key = o.tls_key};
		rpc_listen_opts lnk = api;

		lnk.url = o.worker_listen;
		if ((rv = rpc_server_open(&d.loop, d.q, &api, api_service(d.s),
		                          &d.api, err, sizeof(err))) != 0 ||
		    (rv = rpc_server_open(&d.loop, d.q, &lnk, link_service(d.s),
		                          &d.link, err, sizeof(err))) != 0)
			goto fail;
	}
	rpc_server_on_disconnect(d.link, sched_on_disconnect, d.s);
	if (o.http_listen != NULL) {
		http_opts ho = {.url = o.http_listen,
		                .token =
		                    http_token != NULL ? http_token : token};

		if ((rv = http_open(d.s, d.q, d.api, &ho, &d.http, err,
		                    sizeof(err))) != 0)
			goto fail;
	}
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	uv_signal_init(&d.loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, main_stop, SIGTERM);
	uv_signal_start(&d.sigint, main_stop, SIGINT);
	uv_signal_start(&d.sighup, main_hup, SIGHUP);
	log_info("listening: API %s, workers %s, state %s", o.listen,
	         o.worker_listen, o.db);
	if (d.http != NULL)
		log_info("dashboard and metrics: %s", http_url(d.http));
	sd_notify(0, "READY=1");
	uv_run(&d.loop, UV_RUN_DEFAULT);
	status = 0;
	uv_close((uv_handle_t *)&d.sigterm, NULL);
	uv_close((uv_handle_t *)&d.sigint, NULL);
	uv_close((uv_handle_t *)&d.sighup, NULL);
fail:
	/* A refused listener or a bad setting is a configuration error. */
	if (status != 0 && (rv == TROUPE_EPERM || rv == TROUPE_EINVAL))
		status = 2;
	if (status != 0 && err[0] != '\0')
		fprintf(stderr, "troupe-scheduler: %s\n", err);
	else if (status != 0)
		fprintf(stderr, "troupe-scheduler: %s\n", troupe_strerror(rv));
	if (d.s != NULL)
		sched_forget_calls(d.s);
	/* The API's server first: it ends the calls HTTP parked in it. */
	rpc_server_close(d.api);
	rpc_server_close(d.link);
	http_close(d.http);
	loopq_close(d.q);
	sched_close(d.s);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	uv_loop_close(&d.loop);
	free(token);
	free(http_token);
	metrics_reset();
	main_opts_free(&o);
	if (status == 0)
		log_info("stopped");
	troupe_exit(status);
}
