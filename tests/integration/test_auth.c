/*
 * Authentication at its simplest: a TCP or TLS listener (API or worker
 * link) refuses to start without a token file, and a worker refuses to
 * dial TCP without a token, each with exit status 2 and a message saying
 * why; on TCP, a missing or wrong token gets UNAUTHENTICATED, and a
 * worker with a wrong token never joins and exits by itself saying so;
 * the local ipc sockets and the database are owner-only, and a missing
 * state directory is created 0700 by the scheduler and by `troupe up`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"
#include "skip.h"

/* Runs the command (printf-style; bounded by `timeout`, so a daemon that
 * starts when it should refuse shows as 124, not a hang) and asserts the
 * refusal: exit status 2 (a configuration error) and one line naming the
 * token and the address url. */
static void __attribute__((format(printf, 3, 4)))
expect_refused(h_cluster *c, const char *url, const char *fmt, ...)
{
	char    cmd[1024], *err;
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rv = h_run(c, NULL, &err, "timeout -s KILL 15 %s", cmd);
	fprintf(stderr, "%s\n  -> %d: %s", cmd, rv, err);
	if (rv != 2)
		fail_msg("'%s' exited %d, want 2 (refused to start)", cmd, rv);
	h_assert_icontains(err, "refusing");
	h_assert_icontains(err, "token");
	h_assert_contains(err, url);
	assert_int_equal(h_lines(err), 1);
}

/* The scheduler and the worker refuse TCP and TLS without a token: exit
 * status 2, one line saying why. */
static void
test_tcp_needs_token(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.no_scheduler = true});
	const char *d = h_dir(c);
	const char *tcp = "tcp://127.0.0.1:0", *tls = "tls+tcp://127.0.0.1:0";

	h_set_timeout(c, 30000);
	expect_refused(c, tcp, "troupe-scheduler --home %s --listen %s", d,
	               tcp);
	expect_refused(c, tcp, "troupe-scheduler --home %s --worker-listen %s",
	               d, tcp);
	/* TLS encrypts, but without a token anyone may still connect. */
	expect_refused(c, tls,
	               "troupe-scheduler --home %s --listen %s --tls-cert "
	               "x.pem --tls-key x.pem",
	               d, tls);
	expect_refused(c, tls,
	               "troupe-scheduler --home %s --worker-listen %s "
	               "--tls-cert x.pem --tls-key x.pem",
	               d, tls);
	expect_refused(c, "tcp://127.0.0.1:9",
	               "troupe-worker --home %s --scheduler "
	               "tcp://127.0.0.1:9",
	               d);
	expect_refused(c, "tls+tcp://127.0.0.1:9",
	               "troupe-worker --home %s --scheduler "
	               "tls+tcp://127.0.0.1:9",
	               d);
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
	/* The database holds every command and output: owner-only too. */
	assert_int_equal(stat(h_path(c, "troupe.db"), &st), 0);
	assert_int_equal(st.st_mode & 0077, 0);
	h_done(c);
}

/* A state directory that does not exist yet is created 0700, by the
 * scheduler (--home) and by `troupe up` (--home), under a umask that
 * would otherwise let everyone in. */
#define HOME_SCRIPT                                                       \
	"umask 022\n"                                                     \
	"troupe-scheduler --home $PWD/s/state > s.log 2>&1 & p=$!\n"      \
	"end=$(($(date +%%s) + 30))\n"                                    \
	"until [ -S s/state/api.sock ]; do\n"                             \
	"  [ $(date +%%s) -gt $end ] && { kill $p; echo 'no api'; "       \
	"exit 9; }\n"                                                     \
	"  sleep 0.1; done\n"                                             \
	"stat -c %%a s/state\n"                                           \
	"kill -TERM $p; wait $p; echo \"sched=$?\"\n"                     \
	"troupe up --home $PWD/u/state --workers 1 > u.log 2>&1 & p=$!\n" \
	"end=$(($(date +%%s) + 30))\n"                                    \
	"until TROUPE_HOME=$PWD/u/state troupe health >/dev/null 2>&1; "  \
	"do\n"                                                            \
	"  [ $(date +%%s) -gt $end ] && { kill $p; echo 'no up'; "        \
	"exit 9; }\n"                                                     \
	"  sleep 0.1; done\n"                                             \
	"stat -c %%a u/state\n"                                           \
	"kill -INT $p; wait $p; echo \"up=$?\"\n"

static void
test_state_dir_0700(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *out;

	assert_int_equal(h_run(c, &out, NULL, HOME_SCRIPT), 0);
	if (strcmp(out, "700\nsched=0\n700\nup=0\n") != 0) {
		fprintf(stderr, "scheduler log:\n%s\nup log:\n%s\n",
		        h_slurp(c, h_path(c, "s.log")),
		        h_slurp(c, h_path(c, "u.log")));
		fail_msg("want both homes 0700 and clean stops, got:\n%s", out);
	}
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

/* Starts a worker with the wrong token, lists the workers every 0.2 s
 * into `seen` while it runs (at least once), and prints its exit status,
 * 124 when it was still running after 20 s. */
#define INTRUDER_SCRIPT                                            \
	"mkdir intruder\n"                                         \
	"troupe-worker --home %s/intruder --scheduler %s "         \
	"--token-file bad-token --name intruder --allow-root "     \
	"> intruder.log 2>&1 & w=$!\n"                             \
	"end=$(($(date +%%s) + 20)); : > seen; n=0\n"              \
	"while [ $n -eq 0 ] || kill -0 $w 2>/dev/null; do\n"       \
	"  n=1; [ $(date +%%s) -gt $end ] && { kill $w; wait $w; " \
	"echo rc=124; exit 0; }\n"                                 \
	"  troupe workers >> seen 2>&1; sleep 0.2; done\n"         \
	"wait $w; echo \"rc=$?\"\n"

static void
test_tcp_token_checked(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .tcp = true});
	char       msg[512], longer[128], *err, *out;

	/* The API: missing and wrong tokens are refused, the right one
	 * works. */
	assert_int_equal(health_with(c, "", msg, sizeof(msg)), TROUPE_EAUTH);
	fprintf(stderr, "no token: %s\n", msg);
	assert_int_equal(health_with(c, "wrong", msg, sizeof(msg)),
	                 TROUPE_EAUTH);
	fprintf(stderr, "wrong token: %s\n", msg);
	/* Compared whole: the right token with more after it is wrong. */
	snprintf(longer, sizeof(longer), "%sx", h_token(c));
	assert_int_equal(health_with(c, longer, msg, sizeof(msg)),
	                 TROUPE_EAUTH);
	assert_int_equal(health_with(c, h_token(c), msg, sizeof(msg)), 0);

	/* The CLI: the same, with a message that says so. */
	assert_int_not_equal(
	    h_run(c, NULL, &err, "env -u TROUPE_TOKEN_FILE troupe list"), 0);
	h_assert_icontains(err, "token");
	assert_int_not_equal(h_run(c, NULL, &err,
	                           "TROUPE_TOKEN=wrong-token-0123456789 troupe "
	                           "list"),
	                     0);
	h_assert_icontains(err, "wrong token");
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 2 | troupe map --cmd 'echo "
	                       "{}'"),
	                 0);
	assert_string_equal(out, "1\n2\n");

	/* A worker with a wrong token never joins: while it runs, the
	 * scheduler never lists it, and it gives up by itself (exit 1,
	 * before the 20 s bound, 124) saying the token was wrong. */
	assert_int_equal(h_run(c, NULL, NULL,
	                       "(umask 077; echo wrong-token-0123456789 > "
	                       "bad-token)"),
	                 0);
	h_set_timeout(c, 60000);
	assert_int_equal(
	    h_run(c, &out, NULL, INTRUDER_SCRIPT, h_dir(c), h_worker_addr(c)),
	    0);
	fprintf(stderr, "intruder: %s", out);
	if (strcmp(out, "rc=1\n") != 0) {
		fprintf(stderr, "intruder log:\n%s\nseen:\n%s\n",
		        h_slurp(c, h_path(c, "intruder.log")),
		        h_slurp(c, h_path(c, "seen")));
		fail_msg("the intruder exited '%s', want rc=1", out);
	}
	h_assert_icontains(h_slurp(c, h_path(c, "intruder.log")),
	                   "wrong token");
	out = h_slurp(c, h_path(c, "seen"));
	assert_non_null(out);
	assert_null(strstr(out, "intruder"));
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
	    H_TEST(test_state_dir_0700),
	    H_TEST(test_tcp_token_checked),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
