/*
 * Bad input gets a clear error, changes nothing and crashes nothing: an
 * unreachable scheduler, malformed protobuf and unknown methods sent on a
 * raw nng socket (API and worker link), a message over the receive limit
 * (the connection is dropped, nothing is created), an empty item list,
 * bad names, mismatched uploads and unknown ids.
 * Every case ends by checking that the scheduler still answers, and
 * h_done() checks that no daemon crashed or leaked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "troupe/sockclose.h"
#include "harness.h"
#include "link.pb-c.h"
#include "skip.h"

/* Sends len bytes as one message on a fresh req socket to addr and waits
 * at most ms for the reply.  Returns the unpacked envelope (caller frees
 * with troupe__reply__free_unpacked), or NULL when there was no reply or
 * it was not an envelope; *nrv receives the nng result. */
static Troupe__Reply *
raw_send(const char *addr, const void *buf, size_t len, int ms, int *nrv)
{
	nng_socket     s = NNG_SOCKET_INITIALIZER;
	void          *rbuf = NULL;
	size_t         rlen = 0;
	Troupe__Reply *rep = NULL;
	int            rv;

	if ((rv = nng_req0_open(&s)) != 0)
		goto done;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dial(s, addr, NULL, 0)) != 0)
		goto done;
	if ((rv = nng_send(s, (void *)buf, len, 0)) != 0)
		goto done;
	if ((rv = nng_recv(s, &rbuf, &rlen, NNG_FLAG_ALLOC)) != 0)
		goto done;
	rep = troupe__reply__unpack(NULL, rlen, rbuf);
	nng_free(rbuf, rlen);
done:
	if (nng_socket_id(s) > 0)
		(void)troupe_sock_close(s, TROUPE_SOCK_CLOSE_MS);
	*nrv = rv;
	return rep;
}

/* Packs a Request envelope {method, token, body} and sends it raw. */
static Troupe__Reply *
raw_call(h_cluster *c, const char *addr, const char *method, const void *body,
         size_t blen)
{
	Troupe__Request req = TROUPE__REQUEST__INIT;
	uint8_t        *buf;
	size_t          len;
	Troupe__Reply  *rep;
	int             nrv;

	req.method = (char *)method;
	req.token = (char *)(h_token(c) != NULL ? h_token(c) : "");
	req.body.data = (uint8_t *)body;
	req.body.len = blen;
	assert_int_equal(troupe_pack(&req.base, &buf, &len), 0);
	rep = raw_send(addr, buf, len, 10000, &nrv);
	free(buf);
	if (rep == NULL)
		h_fail(c, "%s on %s: no reply (%s)", method, addr,
		       nng_strerror(nrv));
	return rep;
}

/* Asserts rep has code want and a message; frees rep. */
static void
expect_code(h_cluster *c, Troupe__Reply *rep, Troupe__Code want,
            const char *what)
{
	fprintf(stderr, "%s -> %s: %s\n", what, troupe_code_name(rep->code),
	        rep->message);
	if (rep->code != want) {
		Troupe__Code got = rep->code;
		troupe__reply__free_unpacked(rep, NULL);
		h_fail(c, "%s: got %s, want %s", what, troupe_code_name(got),
		       troupe_code_name(want));
	}
	assert_true(strlen(rep->message) > 0);
	troupe__reply__free_unpacked(rep, NULL);
}

static void
expect_healthy(h_cluster *c)
{
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;

	if (H_CALL(c, GetHealth, &req, get_health, &rep) != 0)
		h_fail(c, "GetHealth failed after bad input: %s",
		       troupe_client_error(h_client(c)));
}

/* How many executions the scheduler holds. */
static size_t
count_executions(h_cluster *c)
{
	Troupe__ListExecutionsRequest req =
	    TROUPE__LIST_EXECUTIONS_REQUEST__INIT;
	Troupe__ListExecutionsReply *rep = NULL;

	assert_int_equal(H_CALL(c, ListExecutions, &req, list_executions, &rep),
	                 0);
	return rep->n_executions;
}

/* The CLI says where it tried, with a non-zero exit. */
static void
test_unreachable(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.no_scheduler = true});
	const char *nowhere = h_path(c, "nowhere.sock");
	char       *err;

	assert_int_not_equal(h_run(c, NULL, &err, "troupe list"), 0);
	h_assert_contains(err, h_path(c, "api.sock"));
	assert_int_not_equal(h_run(c, NULL, &err,
	                           "TROUPE_ADDR=ipc://%s troupe status x",
	                           nowhere),
	                     0);
	h_assert_contains(err, nowhere);
	assert_int_not_equal(
	    h_run(c, NULL, &err,
	          "seq 3 | troupe --addr tcp://127.0.0.1:1 map "
	          "--cmd 'echo {}'"),
	    0);
	h_assert_contains(err, "tcp://127.0.0.1:1");
	assert_true(h_lines(err) <= 2);
	h_done(c);
}

/* Garbage, an unknown method, a good method with a garbage body, on the
 * API socket and on the worker link. */
static void
test_malformed_and_unknown(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1});
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	Troupe__Reply       *rep;
	int                  nrv;
	const char          *socks[2] = {h_api_addr(c), h_worker_addr(c)};

	for (int i = 0; i < 2; i++) {
		const char *a = socks[i];

		rep = raw_send(a, junk, sizeof(junk), 10000, &nrv);
		if (rep == NULL)
			h_fail(c, "junk on %s: no reply (%s)", a,
			       nng_strerror(nrv));
		expect_code(c, rep, TROUPE__CODE__INVALID_ARGUMENT,
		            "junk envelope");
		expect_code(c, raw_call(c, a, "NoSuchMethod", NULL, 0),
		            TROUPE__CODE__UNIMPLEMENTED, "unknown method");
		rep = raw_call(c, a, "", NULL, 0);
		if (rep->code != TROUPE__CODE__UNIMPLEMENTED)
			expect_code(c, rep, TROUPE__CODE__INVALID_ARGUMENT,
			            "empty method");
		else
			troupe__reply__free_unpacked(rep, NULL);
		expect_healthy(c);
	}
	expect_code(c,
	            raw_call(c, socks[0], "GetExecution", junk, sizeof(junk)),
	            TROUPE__CODE__INVALID_ARGUMENT, "GetExecution, junk body");
	expect_code(
	    c, raw_call(c, socks[0], "CreateExecution", junk, sizeof(junk)),
	    TROUPE__CODE__INVALID_ARGUMENT, "CreateExecution, junk body");
	expect_code(c, raw_call(c, socks[1], "Report", junk, sizeof(junk)),
	            TROUPE__CODE__INVALID_ARGUMENT, "Report, junk body");
	/* The link's methods are not on the API, nor the API's on the link. */
	expect_code(c, raw_call(c, socks[0], "Pull", NULL, 0),
	            TROUPE__CODE__UNIMPLEMENTED, "Pull on the API");
	expect_code(c, raw_call(c, socks[1], "CreateExecution", NULL, 0),
	            TROUPE__CODE__UNIMPLEMENTED, "CreateExecution on the link");

	/* A report from a worker nobody knows: NOT_FOUND, nothing changes. */
	{
		Troupe__ReportRequest r = TROUPE__REPORT_REQUEST__INIT;
		uint8_t              *buf;
		size_t                len;

		r.worker_id = "no-such-worker";
		assert_int_equal(troupe_pack(&r.base, &buf, &len), 0);
		rep = raw_call(c, socks[1], "Report", buf, len);
		free(buf);
		expect_code(c, rep, TROUPE__CODE__NOT_FOUND,
		            "Report from an unknown worker");
	}
	expect_healthy(c);
	assert_int_equal(count_executions(c), 0);

	/* The worker was not disturbed: a map still runs. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "seq 3 | troupe map --cmd 'echo "
	                       "{}'"),
	                 0);
	h_done(c);
}

/* The child's verdict when the scheduler drops its connection. */
static void
oversized_closed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	fprintf(stderr,
	        "oversized request to %s: the scheduler closed the "
	        "connection without a reply\n",
	        (const char *)arg);
	_exit(0);
}

/* Child mode (`test_bad_input --send-oversized URL METHOD`): sends one
 * well-formed request envelope over the receive limit to URL: for
 * CreateExecution a valid request of 1 MiB items (unsealed, so nothing
 * would run), for any other method a body of filler.  Refused means the
 * scheduler closes or resets the connection without a reply (exit 0);
 * any reply at all means it took the message in (exit 1); neither within
 * 60 s, 3; sending could not start, 2.  It never closes its socket: nng 1.5's
 * nng_close can hang after the peer reset a pipe mid-message, which is
 * the client's problem, not the daemon's; exiting drops the connection
 * anyway. */
static int
oversized_child(const char *url, const char *method)
{
	size_t                         mib = 1u << 20;
	size_t                         n = TROUPE_MAX_MSG / mib + 1;
	uint8_t                       *item = malloc(mib);
	ProtobufCBinaryData           *items = calloc(n, sizeof(*items));
	Troupe__CreateExecutionRequest cr =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__Request       req = TROUPE__REQUEST__INIT;
	nng_socket            s = NNG_SOCKET_INITIALIZER;
	nng_dialer            d;
	uint8_t              *body = NULL, *buf = NULL;
	size_t                blen = 0, len = 0, rlen = 0;
	void                 *rbuf = NULL;
	Troupe__Reply        *rep;
	int                   rv;

	if (item == NULL || items == NULL || nng_req0_open(&s) != 0)
		_exit(2);
	memset(item, 'x', mib);
	for (size_t i = 0; i < n; i++)
		items[i] = (ProtobufCBinaryData){mib, item};
	if (strcmp(method, "CreateExecution") == 0) {
		spec.command = "echo {}";
		cr.spec = &spec;
		cr.n_items = n;
		cr.items = items;
		if (troupe_pack(&cr.base, &body, &blen) != 0)
			_exit(2);
	} else {
		blen = n * mib;
		if ((body = malloc(blen)) == NULL)
			_exit(2);
		memset(body, 'x', blen);
	}
	req.method = (char *)method;
	req.token = "";
	req.body = (ProtobufCBinaryData){blen, body};
	if (troupe_pack(&req.base, &buf, &len) != 0 || len <= TROUPE_MAX_MSG)
		_exit(2);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 60000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 60000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, oversized_closed, (void *)url);
	if (nng_dialer_create(&d, s, url) != 0)
		_exit(2);
	/* One connection: no redial (and resend) after the reset. */
	nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 60000);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 60000);
	if (nng_dialer_start(d, 0) != 0)
		_exit(2);
	rv = nng_send(s, buf, len, 0);
	if (rv == 0)
		rv = nng_recv(s, &rbuf, &rlen, NNG_FLAG_ALLOC);
	if (rv == NNG_ECONNRESET || rv == NNG_ECONNSHUT) {
		/* The pipe went while the request was still being written. */
		fprintf(stderr, "oversized %s to %s: %s\n", method, url,
		        nng_strerror(rv));
		_exit(0);
	}
	if (rv != 0) {
		fprintf(stderr, "oversized %s to %s: %s, and still connected\n",
		        method, url, nng_strerror(rv));
		_exit(3);
	}
	rep = troupe__reply__unpack(NULL, rlen, rbuf);
	fprintf(stderr, "oversized %s to %s: taken in, reply %s: %s\n", method,
	        url, rep != NULL ? troupe_code_name(rep->code) : "?",
	        rep != NULL ? rep->message : "not an envelope");
	_exit(1);
}

/* Runs oversized_child in a fresh process (exec'd, so no nng state is
 * shared with ours), bounded; returns its exit status. */
static int
send_oversized(h_cluster *c, const char *url, const char *method)
{
	char   *argv[] = {"test_bad_input", "--send-oversized", (char *)url,
	                  (char *)method, NULL};
	pid_t   pid = fork();
	int     st = 0;
	int64_t deadline = h_now_ms() + 90000;

	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(2);
	}
	assert_true(pid > 0);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (h_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			h_fail(c, "the oversized sender to %s hung", url);
		}
		usleep(20000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A message over the 64 MiB receive limit is refused: the scheduler drops
 * the connection without taking the request in, so a valid but oversized
 * CreateExecution creates nothing; the daemon stays up and the next
 * request works. */
static void
test_over_receive_limit(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1});

	assert_int_equal(send_oversized(c, h_api_addr(c), "CreateExecution"),
	                 0);
	expect_healthy(c);
	assert_int_equal(count_executions(c), 0);
	assert_int_equal(send_oversized(c, h_worker_addr(c), "RegisterWorker"),
	                 0);
	expect_healthy(c);
	assert_int_equal(h_run(c, NULL, NULL,
	                       "seq 2 | troupe map --cmd 'echo "
	                       "{}'"),
	                 0);
	assert_int_equal(count_executions(c), 1);
	h_done(c);
}

/* Empty item lists, through the CLI and the API. */
static void
test_empty_items(void **state)
{
	h_cluster                     *c = h_start(&(h_opts){.workers = 1});
	Troupe__CreateExecutionRequest req =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionReply *rep = NULL;
	char                         *err;
	int                           rv;

	assert_int_not_equal(
	    h_run(c, NULL, &err, "troupe map --cmd 'echo {}' < /dev/null"), 0);
	h_assert_icontains(err, "item");
	assert_true(h_lines(err) <= 2);

	spec.command = "echo {}";
	req.spec = &spec;
	req.seal = true;
	rv = H_CALL(c, CreateExecution, &req, create_execution, &rep);
	assert_int_equal(rv, TROUPE_EINVAL);
	fprintf(stderr, "empty CreateExecution: %s\n",
	        troupe_client_error(h_client(c)));
	assert_int_equal(count_executions(c), 0);
	expect_healthy(c);
	h_done(c);
}

/* Bad names and missing commands: INVALID_ARGUMENT, nothing stored. */
static void
test_bad_names(void **state)
{
	h_cluster                     *c = h_start(&(h_opts){.workers = 1});
	static const char             *bad[] = {"has space", "a/b", "", "../x",
	                                        "new\nline"};
	Troupe__CreateExecutionRequest req =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionReply *rep = NULL;
	Troupe__ListTasksRequest      lreq = TROUPE__LIST_TASKS_REQUEST__INIT;
	Troupe__ListTasksReply       *lrep = NULL;
	uint8_t                       one = '1';
	ProtobufCBinaryData           item = {1, &one};
	char                         *err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Troupe__RegisterTaskRequest r =
		    TROUPE__REGISTER_TASK_REQUEST__INIT;
		Troupe__TaskSpec           t = TROUPE__TASK_SPEC__INIT;
		Troupe__RegisterTaskReply *rr = NULL;

		t.name = (char *)bad[i];
		t.command = "echo";
		r.task = &t;
		assert_int_equal(
		    H_CALL(c, RegisterTask, &r, register_task, &rr),
		    TROUPE_EINVAL);
		fprintf(stderr, "task name '%s': %s\n", bad[i],
		        troupe_client_error(h_client(c)));
	}
	assert_int_equal(H_CALL(c, ListTasks, &lreq, list_tasks, &lrep), 0);
	assert_int_equal(lrep->n_tasks, 0);

	assert_int_not_equal(
	    h_run(c, NULL, &err, "troupe task register 'bad name' --cmd echo"),
	    0);
	assert_true(strlen(err) > 0);
	assert_true(h_lines(err) <= 2);

	/* An execution of an unknown task, or of nothing at all. */
	assert_int_not_equal(
	    h_run(c, NULL, &err, "seq 2 | troupe map --task no-such-task"), 0);
	h_assert_contains(err, "no-such-task");
	req.spec = &spec;
	req.n_items = 1;
	req.items = &item;
	req.seal = true;
	assert_int_equal(
	    H_CALL(c, CreateExecution, &req, create_execution, &rep),
	    TROUPE_EINVAL);
	spec.task = "no/such task";
	assert_int_not_equal(
	    H_CALL(c, CreateExecution, &req, create_execution, &rep), 0);
	assert_int_equal(count_executions(c), 0);
	expect_healthy(c);
	h_done(c);
}

/* Uploads that do not line up: appending at the wrong offset, to a sealed
 * execution, or to one that does not exist. */
static void
test_mismatched_upload(void **state)
{
	h_cluster                     *c = h_start(&(h_opts){.workers = 1});
	Troupe__CreateExecutionRequest req =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionReply *rep = NULL;
	Troupe__AppendItemsRequest    app = TROUPE__APPEND_ITEMS_REQUEST__INIT;
	Troupe__AppendItemsReply     *arep = NULL;
	Troupe__SealExecutionRequest  seal =
	    TROUPE__SEAL_EXECUTION_REQUEST__INIT;
	Troupe__SealExecutionReply *srep = NULL;
	uint8_t                     a = 'a';
	ProtobufCBinaryData         items[2] = {{1, &a}, {1, &a}};
	int                         rv;
	char                       *id;

	spec.command = "echo {}";
	req.spec = &spec;
	req.n_items = 2;
	req.items = items;
	assert_int_equal(
	    H_CALL(c, CreateExecution, &req, create_execution, &rep), 0);
	id = rep->execution->id;
	assert_int_equal(rep->execution->total, 2);
	assert_false(rep->execution->sealed);

	app.id = id;
	app.offset = 5; /* total is 2 */
	app.n_items = 2;
	app.items = items;
	rv = H_CALL(c, AppendItems, &app, append_items, &arep);
	fprintf(stderr, "append at 5 of 2: %s (%s)\n", troupe_strerror(rv),
	        troupe_client_error(h_client(c)));
	assert_true(rv == TROUPE_EINVAL || rv == TROUPE_ESTATE ||
	            rv == TROUPE_ERANGE);
	app.offset = 2;
	assert_int_equal(H_CALL(c, AppendItems, &app, append_items, &arep), 0);
	assert_int_equal(arep->total, 4);
	seal.id = id;
	assert_int_equal(H_CALL(c, SealExecution, &seal, seal_execution, &srep),
	                 0);
	app.offset = 4;
	assert_int_not_equal(H_CALL(c, AppendItems, &app, append_items, &arep),
	                     0);
	app.id = "no-such-execution";
	app.offset = 0;
	assert_int_equal(H_CALL(c, AppendItems, &app, append_items, &arep),
	                 TROUPE_ENOTFOUND);
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_execution(c, id)->total, 4);
	h_done(c);
}

/* Unknown execution ids: NOT_FOUND from the API, a message naming the id
 * from every CLI command. */
static void
test_unknown_ids(void **state)
{
	h_cluster                  *c = h_start(&(h_opts){.workers = 1});
	Troupe__GetExecutionRequest g = TROUPE__GET_EXECUTION_REQUEST__INIT;
	Troupe__GetExecutionReply  *grep = NULL;
	static const char *cmds[] = {"status", "outputs", "watch", "abort"};
	char              *err;

	g.id = "nope-123";
	assert_int_equal(H_CALL(c, GetExecution, &g, get_execution, &grep),
	                 TROUPE_ENOTFOUND);
	for (size_t i = 0; i < 4; i++) {
		assert_int_not_equal(
		    h_run(c, NULL, &err, "troupe %s nope-123", cmds[i]), 0);
		h_assert_contains(err, "nope-123");
		assert_true(h_lines(err) <= 2);
	}
	expect_healthy(c);
	h_done(c);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_unreachable),        H_TEST(test_malformed_and_unknown),
	    H_TEST(test_over_receive_limit), H_TEST(test_empty_items),
	    H_TEST(test_bad_names),          H_TEST(test_mismatched_upload),
	    H_TEST(test_unknown_ids),
	};

	if (argc == 4 && strcmp(argv[1], "--send-oversized") == 0)
		return oversized_child(argv[2], argv[3]);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
