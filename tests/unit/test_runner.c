/*
 * The per-item process runner (daemon/worker/runner.c), with real
 * processes on a real libuv loop: output, failures, stdin, {}, TROUPE_*
 * variables, timeouts, the output cap, kills.  Every wait is bounded.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "log.h"
#include "report.h"
#include "runner.h"
#include "skip.h"

#define TEST_GUARD_MS 20000

typedef struct run {
	uv_loop_t           loop;
	uv_timer_t          guard;
	runner             *r;
	Troupe__ItemReport *rep;
	bool                done;
	bool                guard_fired;
} run;

static void
run_done(void *arg, Troupe__ItemReport *rep)
{
	run *t = arg;

	t->rep = rep;
	t->done = true;
}

static void
run_guard(uv_timer_t *h)
{
	run *t = h->data;

	t->guard_fired = true;
	runner_kill(t->r, "test guard", false);
}

/* Starts cmd on item `input` and returns the runner (not yet finished). */
static void
run_start(run *t, const char *cmd, const void *input, size_t len,
          uint32_t timeout_ms, const runner_opts *opts, char **env,
          size_t n_env)
{
	Troupe__TaskSpec task = TROUPE__TASK_SPEC__INIT;
	Troupe__WorkItem item = TROUPE__WORK_ITEM__INIT;

	memset(t, 0, sizeof(*t));
	assert_int_equal(uv_loop_init(&t->loop), 0);
	uv_timer_init(&t->loop, &t->guard);
	t->guard.data = t;
	uv_timer_start(&t->guard, run_guard, TEST_GUARD_MS, 0);
	task.command = (char *)cmd;
	task.timeout_ms = timeout_ms;
	task.env = env;
	task.n_env = n_env;
	item.index = 7;
	item.attempt = 2;
	item.input.data = (uint8_t *)input;
	item.input.len = len;
	assert_int_equal(runner_start(&t->loop, opts, &task, "ex1", &item,
	                              run_done, t, &t->r),
	                 0);
	assert_non_null(t->r);
}

/* Runs the loop until the runner reports; returns the report (t owns). */
static Troupe__ItemReport *
run_wait(run *t)
{
	while (!t->done)
		uv_run(&t->loop, UV_RUN_ONCE);
	assert_false(t->guard_fired);
	uv_close((uv_handle_t *)&t->guard, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	return t->rep;
}

static Troupe__ItemReport *
run_cmd(run *t, const char *cmd, const char *input, uint32_t timeout_ms)
{
	run_start(t, cmd, input, input != NULL ? strlen(input) : 0, timeout_ms,
	          NULL, NULL, 0);
	return run_wait(t);
}

static void
assert_output(const Troupe__ItemReport *rep, const char *want)
{
	assert_int_equal(rep->output.len, strlen(want));
	if (rep->output.len > 0)
		assert_memory_equal(rep->output.data, want, rep->output.len);
}

/* The whole stderr is the attempt's log, for a success too (README,
 * "Per-item logs"). */
static void
test_stderr_log(void **state)
{
	run                 t;
	Troupe__ItemReport *rep =
	    run_cmd(&t, "echo one >&2; echo out; echo two >&2", NULL, 0);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(rep->stderr_log.len, 8);
	assert_memory_equal(rep->stderr_log.data, "one\ntwo\n", 8);
	assert_int_equal(rep->stderr_dropped, 0);
	report_free(rep);
}

/* Past 64 KiB the log keeps the first and the last 32 KiB around a line
 * saying how much was dropped. */
static void
test_stderr_log_cap(void **state)
{
	run         t;
	const char *mark = "\n[... 134472 bytes dropped ...]\n";
	/* "HEAD", 200,000 x's, "TAIL": 200,008 bytes, 65,536 kept. */
	Troupe__ItemReport *rep = run_cmd(
	    &t,
	    "printf HEAD >&2; head -c 200000 /dev/zero | tr '\\0' x >&2; "
	    "printf TAIL >&2; exit 3",
	    NULL, 0);
	const char *d = (const char *)rep->stderr_log.data;
	size_t      ml = strlen(mark);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_int_equal(rep->stderr_dropped, 200008 - 65536);
	assert_int_equal(rep->stderr_log.len, 65536 + ml);
	assert_memory_equal(d, "HEADxxxx", 8);
	assert_memory_equal(d + 32768, mark, ml);
	assert_memory_equal(d + rep->stderr_log.len - 8, "xxxxTAIL", 8);
	/* The error stays the tail. */
	assert_non_null(strstr(rep->error, "TAIL"));
	report_free(rep);
}

static void
test_success_output(void **state)
{
	run                 t;
	Troupe__ItemReport *rep =
	    run_cmd(&t, "echo hello; echo world", NULL, 0);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_output(rep, "hello\nworld\n");
	assert_int_equal(rep->exit_code, 0);
	assert_false(rep->system_failure);
	assert_string_equal(rep->execution, "ex1");
	assert_int_equal(rep->index, 7);
	assert_int_equal(rep->attempt, 2);
	assert_true(rep->started_ms > 0);
	assert_true(rep->finished_ms >= rep->started_ms);
	report_free(rep);
}

static void
test_failure_stderr(void **state)
{
	run                 t;
	Troupe__ItemReport *rep =
	    run_cmd(&t, "echo partial; echo oops >&2; exit 3", NULL, 0);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_int_equal(rep->exit_code, 3);
	assert_string_equal(rep->error, "oops\n");
	assert_false(rep->system_failure);
	assert_int_equal(rep->output.len, 0); /* outputs only on success */
	report_free(rep);

	rep = run_cmd(&t, "exit 4", NULL, 0);
	assert_int_equal(rep->exit_code, 4);
	assert_string_equal(rep->error, "exited with status 4");
	report_free(rep);
}

static void
test_stderr_tail(void **state)
{
	run                 t;
	Troupe__ItemReport *rep = run_cmd(
	    &t,
	    "head -c 10000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1",
	    NULL, 0);
	size_t n = strlen(rep->error);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_int_equal(n, RUNNER_STDERR_TAIL);
	assert_string_equal(rep->error + n - 4, "END\n");
	assert_int_equal(rep->error[0], 'x');
	report_free(rep);
}

static void
test_stdin_delivery(void **state)
{
	static const char   bin[] = {'a', '\0', 'b', '\n', '\xff'};
	run                 t;
	Troupe__ItemReport *rep = run_cmd(&t, "cat", "line one\nline two", 0);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_output(rep, "line one\nline two");
	report_free(rep);

	/* Binary items pass through stdin untouched. */
	run_start(&t, "cat", bin, sizeof(bin), 0, NULL, NULL, 0);
	rep = run_wait(&t);
	assert_int_equal(rep->output.len, sizeof(bin));
	assert_memory_equal(rep->output.data, bin, sizeof(bin));
	report_free(rep);

	/* A command that never reads a big stdin still succeeds. */
	{
		size_t len = 4u << 20;
		char  *big = malloc(len);

		assert_non_null(big);
		memset(big, 'z', len);
		run_start(&t, "echo ignored", big, len, 0, NULL, NULL, 0);
		rep = run_wait(&t);
		free(big);
	}
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_output(rep, "ignored\n");
	report_free(rep);
}

static void
test_substitution(void **state)
{
	const char         *item = "it's $HOME `id` ; {} \"q\"";
	run                 t;
	Troupe__ItemReport *rep = run_cmd(&t, "printf '%s|%s' {} {}", item, 0);
	char                want[128];

	snprintf(want, sizeof(want), "%s|%s", item, item);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_output(rep, want);
	report_free(rep);

	/* The example. */
	rep = run_cmd(&t, "test {} -gt 11 && echo true || echo false", "12", 0);
	assert_output(rep, "true\n");
	report_free(rep);

	/* {} cannot carry a NUL byte: a clear user error, not a system one. */
	run_start(&t, "echo {}", "a\0b", 3, 0, NULL, NULL, 0);
	rep = run_wait(&t);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_false(rep->system_failure);
	assert_non_null(strstr(rep->error, "NUL"));
	report_free(rep);
}

static void
test_too_long_for_argv(void **state)
{
	size_t              len = 512u << 10;
	char               *big = malloc(len + 1);
	run                 t;
	Troupe__ItemReport *rep;

	assert_non_null(big);
	memset(big, 'y', len);
	big[len] = '\0';
	rep = run_cmd(&t, "echo {}", big, 0);
	free(big);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_false(rep->system_failure);
	assert_non_null(strstr(rep->error, "too long"));
	report_free(rep);
}

static void
test_env(void **state)
{
	char               *env[] = {"TROUPE_TEST_FOO=bar", "TROUPE_ITEM=bogus",
	                             "TROUPE_TEST_FOO=baz", "NOEQUALS"};
	run                 t;
	Troupe__ItemReport *rep;

	setenv("TROUPE_TEST_INHERITED", "yes", 1);
	setenv("TROUPE_EXECUTION", "from-daemon", 1);
	run_start(&t,
	          "echo $TROUPE_EXECUTION $TROUPE_ITEM $TROUPE_ATTEMPT "
	          "$TROUPE_TEST_FOO $TROUPE_TEST_INHERITED; "
	          "env | grep -c '^TROUPE_ITEM='",
	          NULL, 0, 0, NULL, env, 4);
	rep = run_wait(&t);
	unsetenv("TROUPE_TEST_INHERITED");
	unsetenv("TROUPE_EXECUTION");
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_output(rep, "ex1 7 2 baz yes\n1\n");
	report_free(rep);
}

/* Waits up to 5 s for pid to be gone; returns true if it is. */
static bool
pid_gone(pid_t pid)
{
	for (int i = 0; i < 500; i++) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		usleep(10000);
	}
	return false;
}

static void
test_timeout_kills_group(void **state)
{
	char                dir[] = "/tmp/troupe-test-runner-XXXXXX";
	char                cmd[256], path[128];
	run                 t;
	Troupe__ItemReport *rep;
	uint64_t            t0 = uv_hrtime();
	FILE               *f;
	int                 child = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pid", dir);
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > %s; wait", path);
	rep = run_cmd(&t, cmd, NULL, 300);
	assert_true(uv_hrtime() - t0 < 5000000000ull);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_string_equal(rep->error, "timed out after 300 ms");
	assert_int_equal(rep->exit_code, -SIGKILL);
	assert_false(rep->system_failure);
	report_free(rep);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &child), 1);
	fclose(f);
	assert_true(child > 0);
	assert_true(pid_gone(child));
	unlink(path);
	rmdir(dir);
}

static void
test_leftover_background_killed(void **state)
{
	run                 t;
	uint64_t            t0 = uv_hrtime();
	Troupe__ItemReport *rep =
	    run_cmd(&t, "sleep 30 & echo started", NULL, 0);

	/* The background sleep holds stdout; it dies with its group. */
	assert_true(uv_hrtime() - t0 < 5000000000ull);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_output(rep, "started\n");
	report_free(rep);
}

static void
test_output_cap(void **state)
{
	runner_opts         opts = {.max_output = 1000};
	run                 t;
	Troupe__ItemReport *rep;

	run_start(&t, "head -c 1000 /dev/zero", NULL, 0, 0, &opts, NULL, 0);
	rep = run_wait(&t);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(rep->output.len, 1000);
	report_free(rep);

	run_start(&t, "head -c 5000 /dev/zero", NULL, 0, 0, &opts, NULL, 0);
	rep = run_wait(&t);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_non_null(strstr(rep->error, "exceeds"));
	assert_int_equal(rep->output.len, 0);
	report_free(rep);

	/* A command that writes forever is stopped too. */
	run_start(&t, "yes", NULL, 0, 0, &opts, NULL, 0);
	rep = run_wait(&t);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_non_null(strstr(rep->error, "exceeds"));
	report_free(rep);
}

static void
test_signalled(void **state)
{
	run                 t;
	Troupe__ItemReport *rep = run_cmd(&t, "kill -TERM $$", NULL, 0);

	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_int_equal(rep->exit_code, -SIGTERM);
	assert_non_null(strstr(rep->error, "signal 15"));
	report_free(rep);
}

static void
test_kill(void **state)
{
	run                 t;
	Troupe__ItemReport *rep;
	int                 pid;

	run_start(&t, "sleep 30", NULL, 0, 0, NULL, NULL, 0);
	pid = runner_pid(t.r);
	assert_true(pid > 0);
	runner_kill(t.r, "worker shutting down", true);
	runner_kill(t.r, "second reason is ignored", false);
	rep = run_wait(&t);
	assert_int_equal(rep->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_string_equal(rep->error, "worker shutting down");
	assert_true(rep->system_failure);
	assert_true(pid_gone(pid));
	report_free(rep);
}

static void
test_error_is_utf8(void **state)
{
	run                 t;
	Troupe__ItemReport *rep =
	    run_cmd(&t, "printf 'caf\\303\\251 \\377\\n' >&2; exit 1", NULL, 0);

	assert_string_equal(rep->error, "caf\xc3\xa9 ?\n");
	report_free(rep);
}

static void
test_many_at_once(void **state)
{
	enum { N = 20 };
	uv_loop_t           loop;
	Troupe__TaskSpec    task = TROUPE__TASK_SPEC__INIT;
	Troupe__ItemReport *reps[N] = {NULL};
	run                 runs[N];
	int                 finished = 0;

	assert_int_equal(uv_loop_init(&loop), 0);
	task.command = "cat; echo {}";
	for (int i = 0; i < N; i++) {
		Troupe__WorkItem item = TROUPE__WORK_ITEM__INIT;
		char             in[16];

		memset(&runs[i], 0, sizeof(runs[i]));
		snprintf(in, sizeof(in), "%d", i);
		item.index = (uint64_t)i;
		item.input.data = (uint8_t *)in;
		item.input.len = strlen(in);
		assert_int_equal(runner_start(&loop, NULL, &task, "ex", &item,
		                              run_done, &runs[i], NULL),
		                 0);
	}
	for (uint64_t t0 = uv_hrtime(); finished < N;) {
		assert_true(uv_hrtime() - t0 < 20000000000ull);
		uv_run(&loop, UV_RUN_ONCE);
		finished = 0;
		for (int i = 0; i < N; i++)
			finished += runs[i].done;
	}
	for (int i = 0; i < N; i++) {
		char want[32];

		reps[i] = runs[i].rep;
		snprintf(want, sizeof(want), "%d%d\n", i, i);
		assert_int_equal(reps[i]->index, (uint64_t)i);
		assert_output(reps[i], want);
		report_free(reps[i]);
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_success_output),
	    cmocka_unit_test(test_stderr_log),
	    cmocka_unit_test(test_stderr_log_cap),
	    cmocka_unit_test(test_failure_stderr),
	    cmocka_unit_test(test_stderr_tail),
	    cmocka_unit_test(test_stdin_delivery),
	    cmocka_unit_test(test_substitution),
	    cmocka_unit_test(test_too_long_for_argv),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_timeout_kills_group),
	    cmocka_unit_test(test_leftover_background_killed),
	    cmocka_unit_test(test_output_cap),
	    cmocka_unit_test(test_signalled),
	    cmocka_unit_test(test_kill),
	    cmocka_unit_test(test_error_is_utf8),
	    cmocka_unit_test(test_many_at_once),
	};

	signal(SIGPIPE, SIG_IGN);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
