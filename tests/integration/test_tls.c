/*
 * TLS, as a user sets it up: a scheduler listening on tls+tcp:// for the
 * API and the worker link, with a self-signed certificate and key in two
 * PEM files made by openssl for the test, and a token file.  The CLI
 * (trusting the certificate through TROUPE_TLS_CA) reaches it with the
 * token, a wrong or missing token gets UNAUTHENTICATED, a client that
 * does not trust the certificate or speaks plain TCP gets nothing; a
 * worker with --tls-ca joins over TLS and runs a map, a worker trusting
 * another CA never joins, and one with a wrong token stops saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "skip.h"

/* The daemons this test starts itself (the harness's own cannot speak
 * TLS); tls_teardown kills what a failed check left running. */
static pid_t tls_pids[4];

/* A self-signed certificate for 127.0.0.1 (cert.pem, key.pem), another
 * one nobody uses (other.pem), and a random token. */
#define TLS_SETUP_SCRIPT                                              \
	"set -e\n"                                                    \
	"for n in cert other; do\n"                                   \
	"  openssl req -x509 -newkey ec -pkeyopt "                    \
	"ec_paramgen_curve:prime256v1 "                               \
	"-nodes -days 2 -subj /CN=127.0.0.1 "                         \
	"-addext subjectAltName=IP:127.0.0.1 "                        \
	"-keyout $n-key.pem -out $n.pem 2> /dev/null\n"               \
	"done\n"                                                      \
	"mv cert-key.pem key.pem\n"                                   \
	"(umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \\n' > " \
	"tls-token)\n"                                                \
	"(umask 077; echo wrong-token-0123456789 > bad-token)\n"

/* Two free TCP ports on 127.0.0.1 (bound at once, so they differ). */
static void
free_ports(int ports[2])
{
	int fds[2];

	for (int i = 0; i < 2; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t          len = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(
		    bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(
		    getsockname(fds[i], (struct sockaddr *)&sa, &len), 0);
		ports[i] = ntohs(sa.sin_port);
	}
	close(fds[0]);
	close(fds[1]);
}

/* Starts bin/daemon/NAME with args (NULL-terminated) in the cluster's
 * directory, output appended to log, in its own process group that dies
 * with us; records the pid in tls_pids[slot]. */
static pid_t
spawn(h_cluster *c, int slot, const char *log, const char *name,
      const char *const args[])
{
	const char *bin = getenv("TROUPE_BIN_DIR");
	char        path[4200];
	char       *argv[24];
	int         n = 0;
	pid_t       pid;

	snprintf(path, sizeof(path), "%s/daemon/%s",
	         bin != NULL && bin[0] != '\0' ? bin : TROUPE_BIN_DIR, name);
	argv[n++] = path;
	while (args[n - 1] != NULL && n < 23) {
		argv[n] = (char *)args[n - 1];
		n++;
	}
	argv[n] = NULL;
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int in = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 ||
		    dup2(fd, 2) < 0 || chdir(h_dir(c)) != 0)
			_exit(126);
		/* Only the flags decide: no TROUPE_* from our environment. */
		unsetenv("TROUPE_ADDR");
		unsetenv("TROUPE_TOKEN");
		unsetenv("TROUPE_TOKEN_FILE");
		unsetenv("TROUPE_TLS_CA");
		setenv("TROUPE_HOME", h_dir(c), 1);
		execv(path, argv);
		_exit(127);
	}
	setpgid(pid, pid);
	tls_pids[slot] = pid;
	return pid;
}

/* Stops the daemon in tls_pids[slot] with SIGTERM and asserts a clean exit
 * (status 0: no crash, no sanitizer report), bounded. */
static void
stop(h_cluster *c, int slot, const char *what)
{
	pid_t   pid = tls_pids[slot];
	int     st = 0;
	int64_t deadline = h_now_ms() + 30000;

	if (waitpid(pid, &st, WNOHANG) == pid)
		h_fail(c, "%s died before the end of the test (status %d)",
		       what, st);
	kill(pid, SIGTERM);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (h_now_ms() > deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			tls_pids[slot] = 0;
			h_fail(c, "%s did not stop within 30 s", what);
		}
		usleep(20000);
	}
	kill(-pid, SIGKILL);
	tls_pids[slot] = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail(c, "%s: wait status %d after SIGTERM", what, st);
}

static int
tls_teardown(void **state)
{
	for (int i = 0; i < 4; i++)
		if (tls_pids[i] > 0) {
			kill(-tls_pids[i], SIGKILL);
			waitpid(tls_pids[i], NULL, 0);
			tls_pids[i] = 0;
		}
	return h_teardown(state);
}

static void
test_tls(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	int        ports[2];
	char       api[64], wlink[64], env[512], *out, *err;
	int        rv;

	h_set_timeout(c, 60000);
	if (h_run(c, NULL, NULL, "command -v openssl") != 0)
		T_SKIP("no openssl to make a certificate with");
	assert_int_equal(h_run(c, NULL, NULL, TLS_SETUP_SCRIPT), 0);
	free_ports(ports);
	snprintf(api, sizeof(api), "tls+tcp://127.0.0.1:%d", ports[0]);
	snprintf(wlink, sizeof(wlink), "tls+tcp://127.0.0.1:%d", ports[1]);
	/* What a user of the CLI sets: where, whom to trust, the token. */
	snprintf(env, sizeof(env),
	         "TROUPE_ADDR=%s TROUPE_TLS_CA=cert.pem "
	         "TROUPE_TOKEN_FILE=tls-token",
	         api);
	spawn(c, 0, h_path(c, "sched.log"), "troupe-scheduler",
	      (const char *[]){"--home", h_dir(c), "--listen", api,
	                       "--worker-listen", wlink, "--tls-cert",
	                       "cert.pem", "--tls-key", "key.pem",
	                       "--token-file", "tls-token", NULL});
	rv = h_run(c, NULL, NULL,
	           "end=$(($(date +%%s) + 30))\n"
	           "until %s troupe health > /dev/null 2>&1; do\n"
	           "  [ $(date +%%s) -gt $end ] && exit 9; sleep 0.1; done",
	           env);
	if (rv != 0)
		h_fail(c, "the TLS scheduler never answered over TLS: %s",
		       h_slurp(c, h_path(c, "sched.log")));

	/* The API over TLS: the token works, a wrong or no token is
	 * refused with a message that says so. */
	assert_int_equal(h_run(c, &out, NULL, "%s troupe list", env), 0);
	rv = h_run(c, NULL, &err,
	           "%s TROUPE_TOKEN=wrong-token-0123456789 troupe list", env);
	assert_int_not_equal(rv, 0);
	h_assert_icontains(err, "wrong token");
	rv = h_run(c, NULL, &err, "%s TROUPE_TOKEN_FILE= troupe list", env);
	assert_int_not_equal(rv, 0);
	h_assert_icontains(err, "token");
	/* No connection without trusting the certificate, nor in the
	 * clear. */
	rv = h_run(c, NULL, &err,
	           "%s TROUPE_TLS_CA=other.pem timeout 20 troupe list", env);
	assert_true(rv != 0 && rv != 124);
	rv = h_run(c, NULL, &err,
	           "%s TROUPE_ADDR=tcp://127.0.0.1:%d timeout 20 troupe list",
	           env, ports[0]);
	assert_true(rv != 0 && rv != 124);

	/* A worker that trusts another CA: while it keeps trying, it is
	 * never listed.  Polled 5 s: a worker that skipped the check
	 * would have registered long before. */
	assert_int_equal(mkdir(h_path(c, "w-other"), 0700), 0);
	spawn(c, 1, h_path(c, "w-other.log"), "troupe-worker",
	      (const char *[]){"--home", h_path(c, "w-other"), "--scheduler",
	                       wlink, "--token-file", "tls-token", "--tls-ca",
	                       "other.pem", "--name", "untrusting",
	                       "--allow-root", NULL});
	assert_int_equal(h_run(c, NULL, NULL,
	                       "i=0; while [ $i -lt 25 ]; do i=$((i+1))\n"
	                       "  %s troupe workers >> seen || exit 1\n"
	                       "  sleep 0.2; done",
	                       env),
	                 0);
	out = h_slurp(c, h_path(c, "seen"));
	assert_non_null(out);
	if (strstr(out, "untrusting") != NULL)
		h_fail(c, "a worker trusting another CA joined:\n%s", out);
	stop(c, 1, "the untrusting worker");

	/* A worker with the wrong token gets through TLS, is refused, and
	 * stops by itself (not killed by the 20 s bound, 124). */
	rv = h_run(c, NULL, &err,
	           "mkdir w-bad; timeout 20 troupe-worker --home $PWD/w-bad "
	           "--scheduler %s --token-file bad-token --tls-ca cert.pem "
	           "--name intruder --allow-root",
	           wlink);
	assert_int_equal(rv, 1);
	h_assert_icontains(err, "wrong token");

	/* A worker with --tls-ca joins over TLS and runs a map. */
	assert_int_equal(mkdir(h_path(c, "w1"), 0700), 0);
	spawn(c, 2, h_path(c, "w1.log"), "troupe-worker",
	      (const char *[]){"--home", h_path(c, "w1"), "--scheduler", wlink,
	                       "--token-file", "tls-token", "--tls-ca",
	                       "cert.pem", "--name", "tw1", "--allow-root",
	                       NULL});
	rv =
	    h_run(c, NULL, NULL,
	          "end=$(($(date +%%s) + 30))\n"
	          "until %s troupe workers | grep -i tw1 | grep -qi ready; do\n"
	          "  [ $(date +%%s) -gt $end ] && exit 9; sleep 0.1; done",
	          env);
	if (rv != 0)
		h_fail(c, "the worker never joined over TLS: %s",
		       h_slurp(c, h_path(c, "w1.log")));
	assert_int_equal(
	    h_run(c, &out, NULL, "seq 3 | %s troupe map --cmd 'echo {}'", env),
	    0);
	assert_string_equal(out, "1\n2\n3\n");
	assert_int_equal(h_run(c, &out, NULL, "%s troupe workers", env), 0);
	assert_null(strstr(out, "intruder"));
	assert_null(strstr(out, "untrusting"));

	stop(c, 2, "the TLS worker");
	stop(c, 0, "the TLS scheduler");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_tls, tls_teardown),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
