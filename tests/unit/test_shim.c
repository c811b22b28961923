/*
 * troupe-shim (daemon/worker/shim/shim.c), the built binary: per-item
 * processes run through it exactly as without it (output, stderr, exit
 * codes, deaths by signal, timeouts killing the whole group), and nothing
 * it runs outlives its parent, even one killed with SIGKILL, or a stop
 * whose command ignores SIGTERM.  Every wait is bounded.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "log.h"
#include "report.h"
#include "runner.h"
#include "skip.h"

extern char **environ;

static char shim_path[PATH_MAX + 64];

static void
done(void *arg, Troupe__ItemReport *res)
{
	*(Troupe__ItemReport **)arg = res;
}

/* Runs cmd as an item through the runner under the shim. */
static Troupe__ItemReport *
run(const char *cmd, uint32_t timeout_ms, int *pid)
{
	uv_loop_t           loop;
	Troupe__TaskSpec    task = TROUPE__TASK_SPEC__INIT;
	Troupe__WorkItem    item = TROUPE__WORK_ITEM__INIT;
	runner_opts         o = {0};
	runner             *r = NULL;
	Troupe__ItemReport *rep = NULL;

	assert_int_equal(uv_loop_init(&loop), 0);
	task.command = (char *)cmd;
	task.timeout_ms = timeout_ms;
	item.index = 1;
	item.attempt = 1;
	o.shim = shim_path;
	assert_int_equal(
	    runner_start(&loop, &o, &task, "ex1", &item, done, &rep, &r), 0);
	if (pid != NULL)
		*pid = runner_pid(r);
	/* The runner's own timeout bounds this; the test's does too. */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_non_null(rep);
	return rep;
}

/* Whether process group pgid still has a member after up to ms. */
static bool
group_alive(int pgid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (kill(-pgid, 0) != 0 && errno == ESRCH)
			return false;
		usleep(10000);
	}
	return true;
}

static void
test_faithful(void **state)
{
	Troupe__ItemReport *r;

	r = run("echo hi; echo oops >&2; exit 3", 10000, NULL);
	assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_int_equal(r->exit_code, 3);
	assert_string_equal(r->error, "oops\n");
	report_free(r);
	r = run("echo hello", 10000, NULL);
	assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(r->output.len, 6);
	assert_memory_equal(r->output.data, "hello\n", 6);
	report_free(r);
	r = run("kill -TERM $$", 10000, NULL);
	assert_int_equal(r->exit_code, -SIGTERM);
	report_free(r);
	r = run("kill -KILL $$", 10000, NULL);
	assert_int_equal(r->exit_code, -SIGKILL);
	report_free(r);
	r = run("echo $TROUPE_ITEM-$TROUPE_EXECUTION", 10000, NULL);
	assert_memory_equal(r->output.data, "1-ex1\n", 6);
	report_free(r);
}

/* A timeout kills the whole group, the shim included. */
static void
test_timeout(void **state)
{
	Troupe__ItemReport *r;
	int                 pid = 0;

	r = run("sleep 30 & sleep 31", 200, &pid);
	assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_string_equal(r->error, "timed out after 200 ms");
	assert_int_equal(r->exit_code, -SIGKILL);
	assert_true(pid > 0);
	assert_false(group_alive(pid, 3000));
	report_free(r);
}

/* Starts the shim with cmd from a child process (standing for the
 * worker) that then waits; returns the child, and the shim's pid (its
 * group) in *shim. */
static pid_t
fake_worker(const char *cmd, const char *grace_ms, pid_t *shim)
{
	int   fds[2];
	pid_t w;

	assert_int_equal(pipe(fds), 0);
	if ((w = fork()) == 0) {
		char  ppid[24];
		char *args[] = {shim_path,        "-p", ppid,        "-g",
		                (char *)grace_ms, "-c", (char *)cmd, NULL};
		posix_spawnattr_t at;
		pid_t             s;

		snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
		posix_spawnattr_init(&at);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
		if (posix_spawn(&s, shim_path, NULL, &at, args, environ) != 0)
			_exit(1);
		if (write(fds[1], &s, sizeof(s)) != sizeof(s))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], shim, sizeof(*shim)), sizeof(*shim));
	close(fds[0]);
	return w;
}

/* The parent dies by SIGKILL: the shim takes its whole group down, and
 * a command that ignores SIGTERM gets SIGKILL after the grace. */
static void
test_parent_killed(void **state)
{
	pid_t w, shim;
	int   st;

	w = fake_worker("sleep 60 & sleep 61", "2000", &shim);
	usleep(200000);
	assert_int_equal(kill(-shim, 0), 0);
	kill(w, SIGKILL);
	assert_int_equal(waitpid(w, &st, 0), w);
	assert_false(group_alive(shim, 5000));

	w = fake_worker("trap '' TERM; sleep 60 & sleep 61", "300", &shim);
	usleep(200000);
	kill(w, SIGKILL);
	assert_int_equal(waitpid(w, &st, 0), w);
	assert_false(group_alive(shim, 5000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_faithful),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_parent_killed),
	};
	char    exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	/* build/tests/test_shim -> build/daemon/troupe-shim */
	if (n <= 0)
		return 1;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(shim_path, sizeof(shim_path), "%s/../daemon/troupe-shim", exe);
	if (access(shim_path, X_OK) != 0) {
		fprintf(stderr, "no %s\n", shim_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	troupe_log_init("test_shim", LOG_LVL_ERROR);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
