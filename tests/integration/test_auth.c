/*
 * Authentication at its simplest: a TCP listener refuses to start without
 * a token file; on TCP, a missing or wrong token gets UNAUTHENTICATED and
 * a worker with a wrong token never joins; the local ipc API socket is
 * owner-only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"
#include "skip.h"

/* The scheduler and the worker refuse TCP without a token: non-zero exit
 * (no hang: h_run's bound would fail the test), one line saying why. */
static void
test_tcp_needs_token(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *err;
	int        rv;

	h_set_timeout(c, 20000);
	rv = h_run(c, NULL, &err,
	           "troupe-scheduler --home %s --listen tcp://127.0.0.1:0",
	           h_dir(c));
	assert_int_not_equal(rv, 0);
	h_assert_icontains(err, "token");
	rv = h_run(c, NULL, &err,
	           "troupe-scheduler --home %s --worker-listen "
	           "tcp://127.0.0.1:0",
	           h_dir(c));
	assert_int_not_equal(rv, 0);
	h_assert_icontains(err, "token");
	rv = h_run(c, NULL, &err,
	           "troupe-worker --home %s --scheduler tcp://127.0.0.1:9",
	           h_dir(c));
	assert_int_not_equal(rv, 0);
	h_assert_icontains(err, "token");
	h_done(c);
}

/* api.sock is 0600, and nobody else can use the worker link either. */
static void
test_ipc_owner_only(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1});
	struct stat st;

	assert_int_equal(stat(h_path(c, "api.sock"), &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(h_path(c, "worker.sock"), &st), 0);
	assert_int_equal(st.st_mode & 0077, 0);
	h_done(c);
}

static int
health_with(h_cluster *c, const char *token, char *msg, size_t len)
{
	troupe_client           *cl = NULL;
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	int                      rv;

	assert_int_equal(troupe_client_open(h_api_addr(c), token, &cl), 0);
	rv = TROUPE_CALL(cl, GetHealth, &req, get_health, &rep);
	snprintf(msg, len, "%s", troupe_client_error(cl));
	if (rep != NULL)
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	troupe_client_close(cl);
	return rv;
}

static void
test_tcp_token_checked(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .tcp = true});
	char       msg[512], *err, *out;

	/* The API: missing and wrong tokens are refused, the right one
	 * works. */
	assert_int_equal(health_with(c, "", msg, sizeof(msg)), TROUPE_EAUTH);
	fprintf(stderr, "no token: %s\n", msg);
	assert_int_equal(health_with(c, "wrong", msg, sizeof(msg)),
	                 TROUPE_EAUTH);
	fprintf(stderr, "wrong token: %s\n", msg);
	assert_int_equal(health_with(c, h_token(c), msg, sizeof(msg)), 0);

	/* The CLI: the same, with a message that says so. */
	assert_int_not_equal(
	    h_run(c, NULL, &err, "env -u TROUPE_TOKEN_FILE troupe list"), 0);
	h_assert_icontains(err, "token");
	assert_int_not_equal(h_run(c, NULL, &err,
	                           "TROUPE_TOKEN=wrong troupe "
	                           "list"),
	                     0);
	h_assert_icontains(err, "token");
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 2 | troupe map --cmd 'echo "
	                       "{}'"),
	                 0);
	assert_string_equal(out, "1\n2\n");

	/* A worker with a wrong token never joins. */
	assert_int_equal(h_run(c, NULL, NULL, "echo wrong > bad-token"), 0);
	h_set_timeout(c, 30000);
	h_run(c, NULL, NULL,
	      "timeout -s TERM 3 troupe-worker --home %s --scheduler %s "
	      "--token-file bad-token --name intruder --allow-root",
	      h_dir(c), h_worker_addr(c));
	assert_int_equal(h_run(c, &out, NULL, "troupe workers"), 0);
	assert_null(strstr(out, "intruder"));
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_tcp_needs_token),
	    H_TEST(test_ipc_owner_only),
	    H_TEST(test_tcp_token_checked),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
