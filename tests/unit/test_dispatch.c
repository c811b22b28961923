/*
 * The scheduler's envelope and dispatch layer (daemon/scheduler/rpc.c):
 * how a request on a troupe socket is unpacked, authenticated, routed to
 * a method of the service and answered.
 *
 * The real scheduler core runs in this process (sched_fixture.h: a
 * fresh one per test, on ipc://, or with the API on tcp:// behind a
 * token).  The test thread sends raw envelopes on nng req sockets.  Every
 * wait is bounded (socket and aio timeouts).
 *
 * Checks:
 * - bytes that are not a Request envelope: INVALID_ARGUMENT, and the
 *   server keeps answering
 * - an unknown method: UNIMPLEMENTED naming it; an API method sent to the
 *   worker link is unknown there
 * - a known method with a malformed body: INVALID_ARGUMENT naming it
 * - a token-protected tcp:// listener: no token, a wrong one, a prefix
 *   and an extension of it are UNAUTHENTICATED (before the method is even
 *   looked up); the right one is OK
 * - tcp:// and tls+tcp:// without a token: rpc_server_open refuses with
 *   TROUPE_EPERM and a message naming the url
 * - a message over TROUPE_MAX_MSG is dropped, unanswered, and later
 *   requests are answered
 * - 50 parked WatchExecution long polls do not stop GetHealth from being
 *   answered; a change answers all 50
 * - the ipc:// socket files are mode 0600
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <uv.h>

#include "troupe/sockclose.h"
#include "api.pb-c.h"
#include "link.pb-c.h"
#include "log.h"
#include "loopq.h"
#include "rpc.h"
#include "sched_fixture.h"
#include "scheduler.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "skip.h"

#define TOKEN      "s3cret-token"
#define N_WATCHERS 50

static const sfx_opts disp_ipc = {
    .dir_prefix = "troupe-disp",
    .pull_timeout_ms = 300,
    .lost_after_ms = 10000,
    .actor_prefetch = 2,
};

/* The API on tcp://127.0.0.1 with a token (the worker link stays on
 * ipc://, with the same token). */
static const sfx_opts disp_tcp = {
    .dir_prefix = "troupe-disp",
    .token = TOKEN,
    .tcp = true,
    .pull_timeout_ms = 300,
    .lost_after_ms = 10000,
    .actor_prefetch = 2,
};

#define DISP_TEST(fn, opts)                                                   \
	cmocka_unit_test_prestate_setup_teardown(fn, sfx_setup, sfx_teardown, \
	                                         (void *)&(opts))

/* ---- calls ---- */

/* Sends raw bytes as a request on a fresh context.  Returns the code. */
static int
call_raw(nng_socket sock, const void *bytes, size_t len, char *why,
         size_t whylen)
{
	sfx_chan c;
	nng_msg *m = NULL;
	int      code;

	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, bytes, len), 0);
	sfx_chan_open(&c, sock);
	sfx_chan_send_msg(&c, m, SFX_CALL_TIMEOUT_MS);
	code = sfx_chan_recv(&c, NULL, NULL, why, whylen);
	sfx_chan_close(&c);
	return code;
}

/* A request {method, token, body = raw bytes}. */
static int
call_body(nng_socket sock, const char *method, const void *body, size_t len,
          char *why, size_t whylen)
{
	Troupe__Request req = TROUPE__REQUEST__INIT;
	uint8_t        *buf = NULL;
	size_t          n = 0;
	int             code;

	req.method = (char *)method;
	req.body.data = (uint8_t *)body;
	req.body.len = len;
	assert_int_equal(troupe_pack(&req.base, &buf, &n), 0);
	code = call_raw(sock, buf, n, why, whylen);
	free(buf);
	return code;
}

/* GetHealth answers OK (with the token, if any). */
static void
assert_healthy(sfx *f)
{
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	char                     why[256];

	assert_int_equal(sfx_call(f->cli, "GetHealth", f->token, &req.base,
	                          &troupe__get_health_reply__descriptor,
	                          (void **)&rep, why, sizeof(why)),
	                 TROUPE__CODE__OK);
	assert_string_equal(rep->version, TROUPE_VERSION);
	assert_string_equal(rep->state_dir, f->dir);
	troupe__get_health_reply__free_unpacked(rep, NULL);
}

/* ---- tests ---- */

static void
test_malformed_envelope(void **state)
{
	sfx                 *f = *state;
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t bad_tag[] = {0x00, 0x01};
	char                 why[256];

	assert_int_equal(call_raw(f->cli, junk, sizeof(junk), why, sizeof(why)),
	                 TROUPE__CODE__INVALID_ARGUMENT);
	assert_non_null(strstr(why, "envelope"));
	assert_int_equal(
	    call_raw(f->cli, bad_tag, sizeof(bad_tag), why, sizeof(why)),
	    TROUPE__CODE__INVALID_ARGUMENT);
	/* An empty message is an empty Request: no method of that name. */
	assert_int_equal(call_raw(f->cli, "", 0, why, sizeof(why)),
	                 TROUPE__CODE__UNIMPLEMENTED);
	assert_healthy(f);
}

static void
test_unknown_method(void **state)
{
	sfx                           *f = *state;
	Troupe__GetHealthRequest       h = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__CreateExecutionRequest ce =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	nng_socket lnk;
	char       why[256];

	assert_int_equal(sfx_call(f->cli, "Frobnicate", NULL, &h.base, NULL,
	                          NULL, why, sizeof(why)),
	                 TROUPE__CODE__UNIMPLEMENTED);
	assert_non_null(strstr(why, "Frobnicate"));
	/* Method names are exact. */
	assert_int_equal(sfx_call(f->cli, "gethealth", NULL, &h.base, NULL,
	                          NULL, why, sizeof(why)),
	                 TROUPE__CODE__UNIMPLEMENTED);
	assert_non_null(strstr(why, "gethealth"));
	/* The worker link serves its own service only. */
	sfx_dial(f->link_url, &lnk);
	assert_int_equal(sfx_call(lnk, "CreateExecution", NULL, &ce.base, NULL,
	                          NULL, why, sizeof(why)),
	                 TROUPE__CODE__UNIMPLEMENTED);
	assert_non_null(strstr(why, "CreateExecution"));
	assert_non_null(strstr(why, "WorkerLink"));
	assert_int_equal(
	    sfx_call(lnk, "Pull", NULL, NULL, NULL, NULL, why, sizeof(why)),
	    TROUPE__CODE__NOT_FOUND); /* known: no such worker */
	(void)troupe_sock_close(lnk, TROUPE_SOCK_CLOSE_MS);
	assert_healthy(f);
}

static void
test_malformed_body(void **state)
{
	sfx                 *f = *state;
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x7f};
	char                 why[256];

	assert_int_equal(call_body(f->cli, "CreateExecution", junk,
	                           sizeof(junk), why, sizeof(why)),
	                 TROUPE__CODE__INVALID_ARGUMENT);
	assert_non_null(strstr(why, "CreateExecution"));
	assert_int_equal(call_body(f->cli, "GetExecution", junk, sizeof(junk),
	                           why, sizeof(why)),
	                 TROUPE__CODE__INVALID_ARGUMENT);
	assert_non_null(strstr(why, "GetExecution"));
	assert_healthy(f);
}

static void
test_token(void **state)
{
	sfx                     *f = *state;
	Troupe__GetHealthRequest h = TROUPE__GET_HEALTH_REQUEST__INIT;
	const char *wrong[] = {"nope", "s3cret-toke", "s3cret-tokenX",
	                       "S3CRET-TOKEN"};
	char        why[256];

	assert_int_equal(strncmp(f->api_url, "tcp://127.0.0.1:", 16), 0);
	assert_int_equal(sfx_call(f->cli, "GetHealth", NULL, &h.base, NULL,
	                          NULL, why, sizeof(why)),
	                 TROUPE__CODE__UNAUTHENTICATED);
	assert_non_null(strstr(why, "token"));
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		assert_int_equal(sfx_call(f->cli, "GetHealth", wrong[i],
		                          &h.base, NULL, NULL, why,
		                          sizeof(why)),
		                 TROUPE__CODE__UNAUTHENTICATED);
		assert_non_null(strstr(why, "wrong token"));
	}
	/* The token is checked before the method is looked up. */
	assert_int_equal(sfx_call(f->cli, "Frobnicate", NULL, &h.base, NULL,
	                          NULL, why, sizeof(why)),
	                 TROUPE__CODE__UNAUTHENTICATED);
	assert_int_equal(sfx_call(f->cli, "Frobnicate", TOKEN, &h.base, NULL,
	                          NULL, why, sizeof(why)),
	                 TROUPE__CODE__UNIMPLEMENTED);
	assert_healthy(f);
}

static void
test_tcp_needs_token(void **state)
{
	const char *urls[] = {"tcp://127.0.0.1:1", "tls+tcp://127.0.0.1:1"};
	const char *tokens[] = {NULL, ""};
	uv_loop_t   loop;
	loopq      *q = NULL;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(loopq_open(&loop, &q), 0);
	for (size_t i = 0; i < 2; i++)
		for (size_t k = 0; k < 2; k++) {
			rpc_listen_opts o = {.url = urls[i],
			                     .token = tokens[k]};
			rpc_server     *srv = (rpc_server *)&o; /* not NULL */
			char            err[512] = "";

			assert_int_equal(
			    rpc_server_open(&loop, q, &o, api_service(NULL),
			                    &srv, err, sizeof(err)),
			    TROUPE_EPERM);
			assert_null(srv);
			assert_non_null(strstr(err, urls[i]));
			assert_non_null(strstr(err, "token"));
		}
	loopq_close(q);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void __attribute__((unused)) test_oversize_dropped(void **state)
{
	sfx       *f = *state;
	nng_socket big;
	nng_dialer d;
	nng_msg   *m = NULL;
	int        rv;

	/* No reconnect while the test runs: req would resend the request on
	 * a new connection, and it would be dropped again. */
	assert_int_equal(nng_req0_open(&big), 0);
	nng_socket_set_ms(big, NNG_OPT_RECVTIMEO, 1000);
	nng_socket_set_ms(big, NNG_OPT_SENDTIMEO, SFX_CALL_TIMEOUT_MS);
	assert_int_equal(nng_dialer_create(&d, big, f->api_url), 0);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 60000);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 60000);
	assert_int_equal(nng_dialer_start(d, 0), 0);
	/* All zero bytes: were it read, it would be answered as malformed. */
	assert_int_equal(nng_msg_alloc(&m, TROUPE_MAX_MSG + 1), 0);
	memset(nng_msg_body(m), 0, nng_msg_len(m));
	assert_int_equal(nng_sendmsg(big, m, 0), 0);
	m = NULL;
	rv = nng_recvmsg(big, &m, 0);
	assert_int_equal(rv, NNG_ETIMEDOUT);
	assert_null(m);
	(void)troupe_sock_close(big, TROUPE_SOCK_CLOSE_MS);
	/* The server lives on, for old connections and new ones. */
	assert_healthy(f);
	(void)troupe_sock_close(f->cli, TROUPE_SOCK_CLOSE_MS);
	sfx_dial(f->api_url, &f->cli);
	assert_healthy(f);
}

static void
test_many_parked(void **state)
{
	sfx                           *f = *state;
	Troupe__CreateExecutionRequest ce =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         sp = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionReply *crep = NULL;
	Troupe__WatchExecutionRequest wr =
	    TROUPE__WATCH_EXECUTION_REQUEST__INIT;
	Troupe__AbortExecutionRequest ar =
	    TROUPE__ABORT_EXECUTION_REQUEST__INIT;
	ProtobufCBinaryData item = {2, (uint8_t *)"i0"};
	nng_socket          socks[N_WATCHERS];
	sfx_chan            ch[N_WATCHERS];
	char                id[32], why[256];
	uint64_t            version;
	long long           t0, t1;
	void               *out = NULL;

	sp.command = "echo {}";
	ce.spec = &sp;
	ce.items = &item;
	ce.n_items = 1;
	ce.seal = true;
	assert_int_equal(sfx_call(f->cli, "CreateExecution", NULL, &ce.base,
	                          &troupe__create_execution_reply__descriptor,
	                          (void **)&crep, why, sizeof(why)),
	                 TROUPE__CODE__OK);
	snprintf(id, sizeof(id), "%s", crep->execution->id);
	version = crep->execution->version;
	troupe__create_execution_reply__free_unpacked(crep, NULL);

	/* 50 clients, each with a WatchExecution parked (no worker: the
	 * execution does not change by itself). */
	wr.id = id;
	wr.since_version = version;
	wr.timeout_ms = 8000;
	for (int i = 0; i < N_WATCHERS; i++) {
		sfx_dial(f->api_url, &socks[i]);
		sfx_chan_open(&ch[i], socks[i]);
		sfx_chan_send(&ch[i], "WatchExecution", NULL, &wr.base, 10000);
	}
	t0 = troupe_now_ms();
	assert_healthy(f);
	t1 = troupe_now_ms();
	assert_true(t1 - t0 < 2000);
	for (int i = 0; i < N_WATCHERS; i++)
		assert_false(atomic_load(&ch[i].done));

	/* A change answers every one of them. */
	ar.id = id;
	ar.reason = "test";
	assert_int_equal(sfx_call(f->cli, "AbortExecution", NULL, &ar.base,
	                          &troupe__abort_execution_reply__descriptor,
	                          &out, why, sizeof(why)),
	                 TROUPE__CODE__OK);
	protobuf_c_message_free_unpacked(out, NULL);
	for (int i = 0; i < N_WATCHERS; i++) {
		Troupe__WatchExecutionReply *rep = NULL;

		assert_int_equal(
		    sfx_chan_recv(&ch[i],
		                  &troupe__watch_execution_reply__descriptor,
		                  (void **)&rep, why, sizeof(why)),
		    TROUPE__CODE__OK);
		assert_string_equal(rep->execution->id, id);
		assert_int_equal(rep->execution->phase,
		                 TROUPE__PHASE__PHASE_ABORTED);
		assert_true(rep->execution->version > version);
		troupe__watch_execution_reply__free_unpacked(rep, NULL);
		sfx_chan_close(&ch[i]);
		(void)troupe_sock_close(socks[i], TROUPE_SOCK_CLOSE_MS);
	}
	/* Answered at the change, not at their deadline. */
	assert_true(troupe_now_ms() - t0 < 5000);
	assert_healthy(f);
}

static void
test_ipc_mode(void **state)
{
	sfx        *f = *state;
	struct stat st;
	char        path[256];

	snprintf(path, sizeof(path), "%s/api.sock", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/worker.sock", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    DISP_TEST(test_malformed_envelope, disp_ipc),
	    DISP_TEST(test_unknown_method, disp_ipc),
	    DISP_TEST(test_malformed_body, disp_ipc),
	    DISP_TEST(test_token, disp_tcp),
	    cmocka_unit_test(test_tcp_needs_token),
	    /* test_oversize_dropped is not run here: under load nng 1.5.2
	     * can hang in-process after the peer resets the connection
	     * mid-message (seen even with troupe_sock_close bounding the
	     * close), which hangs the whole test.  The same check runs
	     * bounded, from an exec'd child, in
	     * tests/integration/test_bad_input.c. */
	    DISP_TEST(test_many_parked, disp_ipc),
	    DISP_TEST(test_ipc_mode, disp_ipc),
	};

	troupe_log_init("test_dispatch", LOG_LVL_ERROR);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
