/*
 * The per-item process runner (see runner.h for the contract).
 *
 * Threading: everything here runs on the loop thread that owns the runner.
 * A runner finishes when its process has exited and both output pipes
 * reached EOF (or the grace period after the exit passed: a grandchild
 * that left the process group may hold them open).  Then every handle is
 * closed, and the last close callback builds the report and calls done.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "quote.h"
#include "report.h"
#include "runner.h"
#include "launch.h"
#include "troupe/error.h"

#define RUNNER_READ_CHUNK (64u << 10)

struct runner {
	uv_process_t proc;
	uv_pipe_t    in;
	uv_pipe_t    out;
	uv_pipe_t    err;
	uv_timer_t   timer; /* the item's timeout, then the exit grace */
	uv_write_t   wreq;

	runner_done_fn done;
	void          *arg;

	Troupe__ItemReport *rep;
	uint8_t            *input;
	size_t              input_len;
	uint32_t            timeout_ms;
	unsigned            grace_ms;
	const char         *shim;

	uint8_t *outbuf; /* stdout, up to max_output bytes */
	size_t   out_len;
	size_t   out_cap;
	size_t   max_output;

	char   tail[RUNNER_STDERR_TAIL]; /* ring of the last stderr bytes */
	size_t tail_pos;                 /* next write position */
	size_t tail_len;
	char   scratch[4096]; /* stderr reads land here first */

	int      pid;
	int      exit_status;
	int      term_signal;
	unsigned handles;   /* initialised handles not yet closed */
	bool     proc_init; /* uv_spawn was called: proc needs closing */
	bool     spawned;
	bool     exited;
	bool     out_done;
	bool     err_done;
	bool     finishing;
	bool     failed; /* a reason was given */
	bool     system_failure;
	char    *reason; /* why it failed regardless of its exit status */
};

/* Records the first reason the attempt fails for. */
static void
runner_set_reason(runner *r, const char *reason, bool system_failure)
{
	if (r->failed)
		return;
	/* Out of memory here still fails the attempt, with a vaguer text. */
	r->failed = true;
	r->reason = strdup(reason);
	r->system_failure = system_failure;
}

static void
runner_killpg(runner *r)
{
	if (r->exited)
		return;
	/* The pid is the process group's id (the child called setsid).  A
	 * group whose members are all gone gives ESRCH, which is fine. */
	if (r->spawned && r->pid > 0)
		kill(-r->pid, SIGKILL);
}

void
runner_kill(runner *r, const char *reason, bool system_failure)
{
	/* Once the process exited its result stands. */
	if (r == NULL || r->finishing || r->exited)
		return;
	runner_set_reason(r, reason, system_failure);
	runner_killpg(r);
}

int
runner_pid(const runner *r)
{
	return r->spawned ? r->pid : 0;
}

/* Builds the report of a finished attempt into r->rep. */
static void
runner_build_report(runner *r)
{
	Troupe__ItemReport *rep = r->rep;
	char                text[RUNNER_STDERR_TAIL];
	size_t              n = r->tail_len;
	size_t              start;

	rep->finished_ms = troupe_now_ms();
	rep->exit_code = r->term_signal != 0 ? -r->term_signal : r->exit_status;
	rep->system_failure = r->system_failure;
	if (!r->failed && r->spawned && r->exit_status == 0 &&
	    r->term_signal == 0) {
		rep->state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
		rep->output.data = r->outbuf;
		rep->output.len = r->out_len;
		r->outbuf = NULL;
		return;
	}
	rep->state = TROUPE__ITEM_STATE__ITEM_FAILED;
	if (r->failed) {
		if (r->reason != NULL)
			report_set_error(rep, r->reason, strlen(r->reason));
		else
			report_errorf(rep, "failed (out of memory)");
		return;
	}
	if (!r->spawned) {
		report_system_failure(rep, "could not start the command");
		return;
	}
	/* Unroll the ring: the oldest byte is at tail_pos when it is full. */
	start = n < sizeof(r->tail) ? 0 : r->tail_pos;
	for (size_t i = 0; i < n; i++)
		text[i] = r->tail[(start + i) % sizeof(r->tail)];
	if (n > 0) {
		report_set_error(rep, text, n);
	} else if (r->term_signal != 0) {
		report_errorf(rep, "killed by signal %d (%s)", r->term_signal,
		              strsignal(r->term_signal));
	} else {
		report_errorf(rep, "exited with status %d", r->exit_status);
	}
}

static void
runner_closed(uv_handle_t *h)
{
	runner             *r = h->data;
	Troupe__ItemReport *rep;

	if (--r->handles > 0 || !r->finishing)
		return;
	runner_build_report(r);
	rep = r->rep;
	r->rep = NULL;
	r->done(r->arg, rep);
	free(r->outbuf);
	free(r->input);
	free(r->reason);
	free(r);
}

static void
runner_close(runner *r, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, runner_closed);
}

/* Closes everything; the last close callback reports.  Called once. */
static void
runner_finish(runner *r)
{
	if (r->finishing)
		return;
	r->finishing = true;
	if (r->proc_init)
		runner_close(r, (uv_handle_t *)&r->proc);
	runner_close(r, (uv_handle_t *)&r->in);
	runner_close(r, (uv_handle_t *)&r->out);
	runner_close(r, (uv_handle_t *)&r->err);
	runner_close(r, (uv_handle_t *)&r->timer);
}

static void
runner_maybe_finish(runner *r)
{
	if (r->exited && r->out_done && r->err_done)
		runner_finish(r);
}

static void
runner_timer_cb(uv_timer_t *t)
{
	runner *r = t->data;
	char    why[64];

	if (!r->exited) {
		snprintf(why, sizeof(why), "timed out after %" PRIu32 " ms",
		         r->timeout_ms);
		runner_kill(r, why, false);
		return;
	}
	/* The grace after exit is over: something outside the process group
	 * holds the pipes; stop waiting for them. */
	r->out_done = r->err_done = true;
	runner_finish(r);
}

static void
runner_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
	runner *r = p->data;

	/* Whatever the command left behind in its group dies with it. */
	runner_killpg(r);
	r->exited = true;
	r->exit_status = (int)status;
	r->term_signal = term_signal;
	uv_timer_stop(&r->timer);
	uv_timer_start(&r->timer, runner_timer_cb, r->grace_ms, 0);
	runner_maybe_finish(r);
}

static void
runner_out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	runner *r = h->data;
	size_t  want = RUNNER_READ_CHUNK;

	/* Read straight into the output buffer; one byte past the cap is
	 * enough to tell the output is too big. */
	if (r->out_len + want > r->max_output + 1)
		want = r->max_output + 1 - r->out_len;
	if (r->out_cap - r->out_len < want) {
		size_t   cap = r->out_cap > 0 ? r->out_cap : RUNNER_READ_CHUNK;
		uint8_t *nb;

		while (cap - r->out_len < want)
			cap *= 2;
		if (cap > r->max_output + 1)
			cap = r->max_output + 1;
		if ((nb = realloc(r->outbuf, cap)) == NULL) {
			*buf = uv_buf_init(NULL, 0); /* libuv reports ENOBUFS */
			return;
		}
		r->outbuf = nb;
		r->out_cap = cap;
	}
	*buf = uv_buf_init((char *)r->outbuf + r->out_len, (unsigned)want);
}

static void
runner_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	runner *r = s->data;
	char    why[96];

	if (n == 0)
		return;
	if (n < 0) {
		if (n == UV_ENOBUFS) {
			runner_set_reason(r, "out of memory for the output",
			                  true);
			runner_killpg(r);
		}
		uv_read_stop(s);
		r->out_done = true;
		runner_maybe_finish(r);
		return;
	}
	r->out_len += (size_t)n;
	if (r->out_len > r->max_output) {
		snprintf(why, sizeof(why),
		         "output exceeds the limit of %zu bytes",
		         r->max_output);
		/* The output is lost even if the process already exited. */
		runner_set_reason(r, why, false);
		runner_killpg(r);
		uv_read_stop(s);
		r->out_done = true;
		runner_maybe_finish(r);
	}
}

static void
runner_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	runner *r = h->data;

	*buf = uv_buf_init(r->scratch, sizeof(r->scratch));
}

static void
runner_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	runner *r = s->data;

	if (n < 0) {
		uv_read_stop(s);
		r->err_done = true;
		runner_maybe_finish(r);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		r->tail[r->tail_pos] = buf->base[i];
		r->tail_pos = (r->tail_pos + 1) % sizeof(r->tail);
	}
	r->tail_len += (size_t)n;
	if (r->tail_len > sizeof(r->tail))
		r->tail_len = sizeof(r->tail);
}

static void
runner_write_cb(uv_write_t *w, int status)
{
	runner *r = w->data;

	/* EPIPE (the command did not read it all) is not our failure: its
	 * exit status says how the command fared. */
	runner_close(r, (uv_handle_t *)&r->in);
}

/* Builds the child's environment: ours, then the task's, then TROUPE_*,
 * each overriding the ones before.  *own receives the strings we
 * allocated (the caller frees them and *envp). */
static int
runner_env(const Troupe__TaskSpec *task, const Troupe__ItemReport *rep,
           char ***envp, char **own)
{
	char *const *sets[2] = {task->env, own};
	size_t       sizes[2] = {task->n_env, 3};

	/* asprintf leaves junk behind on failure: NULL it. */
	if (asprintf(&own[0], "TROUPE_EXECUTION=%s", rep->execution) < 0)
		own[0] = NULL;
	if (asprintf(&own[1], "TROUPE_ITEM=%" PRIu64, rep->index) < 0)
		own[1] = NULL;
	if (asprintf(&own[2], "TROUPE_ATTEMPT=%" PRIu32, rep->attempt) < 0)
		own[2] = NULL;
	if (own[0] == NULL || own[1] == NULL || own[2] == NULL)
		return TROUPE_ENOMEM;
	return launch_env(sets, sizes, 2, envp);
}

/* Spawns the command; on failure records why (the attempt then fails
 * without a process).  Returns only TROUPE_ENOMEM as an error. */
static int
runner_spawn(runner *r, uv_loop_t *loop, const Troupe__TaskSpec *task)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	char                *cmd = NULL;
	char               **env = NULL;
	char                *own[3] = {NULL, NULL, NULL};
	launch_args          args = {0};
	char                 why[256];
	int                  rv;

	rv = quote_command(task->command, r->input, r->input_len, &cmd);
	if (rv == TROUPE_EINVAL) {
		runner_set_reason(r,
		                  "the item holds a NUL byte, which {} cannot "
		                  "pass to a command line; read it from stdin",
		                  false);
		return 0;
	}
	if (rv != 0)
		goto fail;
	if ((rv = runner_env(task, r->rep, &env, own)) != 0)
		goto fail;
	if ((rv = launch_args_make(&args, r->shim, cmd, 0)) != 0)
		goto fail;
	memset(&opts, 0, sizeof(opts));
	opts.file = args.argv[0];
	opts.args = args.argv;
	opts.env = env;
	opts.exit_cb = runner_exit_cb;
	opts.flags = UV_PROCESS_DETACHED;
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&r->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&r->err;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	r->rep->started_ms = troupe_now_ms();
	rv = uv_spawn(loop, &r->proc, &opts);
	/* uv_spawn initialises the handle even when it fails. */
	r->proc.data = r;
	r->proc_init = true;
	r->handles++;
	if (rv == UV_E2BIG) {
		/* Retrying elsewhere would fail the same way. */
		snprintf(
		    why, sizeof(why),
		    "the command line is too long (%zu bytes with the item "
		    "in place of {}); read big items from stdin",
		    strlen(cmd));
		runner_set_reason(r, why, false);
	} else if (rv != 0) {
		snprintf(why, sizeof(why), "cannot start /bin/sh: %s",
		         uv_strerror(rv));
		runner_set_reason(r, why, true);
	} else {
		r->spawned = true;
		r->pid = r->proc.pid;
	}
	rv = 0;
fail:
	launch_args_clear(&args);
	free(cmd);
	free(env);
	for (size_t i = 0; i < 3; i++)
		free(own[i]);
	return rv;
}

/* Starts the I/O of a spawned process: the item to stdin, both outputs,
 * the timeout. */
static void
runner_io(runner *r)
{
	uv_buf_t buf = uv_buf_init((char *)r->input, (unsigned)r->input_len);
	int      rv;

	rv = uv_read_start((uv_stream_t *)&r->out, runner_out_alloc,
	                   runner_out_read);
	if (rv != 0)
		r->out_done = true;
	rv = uv_read_start((uv_stream_t *)&r->err, runner_err_alloc,
	                   runner_err_read);
	if (rv != 0)
		r->err_done = true;
	if (r->input_len == 0 || uv_write(&r->wreq, (uv_stream_t *)&r->in, &buf,
	                                  1, runner_write_cb) != 0)
		runner_close(r, (uv_handle_t *)&r->in);
	if (r->timeout_ms > 0)
		uv_timer_start(&r->timer, runner_timer_cb, r->timeout_ms, 0);
}

int
runner_start(uv_loop_t *loop, const runner_opts *opts,
             const Troupe__TaskSpec *task, const char *execution,
             const Troupe__WorkItem *item, runner_done_fn done, void *arg,
             runner **out)
{
	runner *r = NULL;
	int     rv;

	if (out != NULL)
		*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return TROUPE_ENOMEM;
	r->done = done;
	r->arg = arg;
	r->timeout_ms = task->timeout_ms;
	r->max_output = opts != NULL && opts->max_output > 0
	                    ? opts->max_output
	                    : RUNNER_MAX_OUTPUT;
	r->grace_ms = opts != NULL && opts->exit_grace_ms > 0
	                  ? opts->exit_grace_ms
	                  : 1000;
	r->shim = opts != NULL ? opts->shim : NULL;
	r->input_len = item->input.len;
	if ((r->input = malloc(r->input_len > 0 ? r->input_len : 1)) == NULL ||
	    (r->rep = report_new(execution, item->index, item->attempt)) ==
	        NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	if (r->input_len > 0)
		memcpy(r->input, item->input.data, r->input_len);
	/* Past this point every failure goes through done. */
	uv_pipe_init(loop, &r->in, 0);
	uv_pipe_init(loop, &r->out, 0);
	uv_pipe_init(loop, &r->err, 0);
	uv_timer_init(loop, &r->timer);
	r->in.data = r->out.data = r->err.data = r->timer.data = r;
	r->wreq.data = r;
	r->handles = 4;
	if ((rv = runner_spawn(r, loop, task)) != 0)
		runner_set_reason(r, "out of memory starting the command",
		                  true);
	if (out != NULL)
		*out = r;
	if (r->spawned)
		runner_io(r);
	else
		runner_finish(r);
	return 0;
fail:
	if (r != NULL) {
		report_free(r->rep);
		free(r->input);
		free(r);
	}
	return rv;
}
