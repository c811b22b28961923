/*
 * The per-item process runner (see runner.h for the contract).
 *
 * Threading: everything here runs on the loop thread that owns the runner.
 * A runner finishes when its child (child.h) ends: the process exited and
 * its pipes are done.  The last close callback builds the report and
 * calls done.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "log.h"
#include "logcap.h"
#include "placeholder.h"
#include "quote.h"
#include "report.h"
#include "runner.h"
#include "launch.h"
#include "troupe/error.h"

struct runner {
	child      c; /* its timer: the item's timeout */
	uv_write_t wreq;

	runner_done_fn done;
	void          *arg;

	Troupe__ItemReport *rep;
	uint8_t            *input;
	size_t              input_len;
	uint32_t            timeout_ms;
	const char         *shim;
	const launch_user  *user;

	uint8_t *outbuf; /* stdout, up to max_output bytes */
	size_t   out_len;
	size_t   out_cap;
	size_t   max_output;

	logcap log; /* the attempt's stderr (README, "Per-item logs") */

	bool  failed; /* a reason was given */
	bool  system_failure;
	char *reason; /* why it failed regardless of its exit status */
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

void
runner_kill(runner *r, const char *reason, bool system_failure)
{
	/* Once the process exited its result stands. */
	if (r == NULL || r->c.finishing || r->c.exited)
		return;
	runner_set_reason(r, reason, system_failure);
	child_killpg(&r->c, SIGKILL);
}

int
runner_pid(const runner *r)
{
	return r->c.spawned ? r->c.pid : 0;
}

/* Builds the report of a finished attempt into r->rep. */
static void
runner_build_report(runner *r)
{
	Troupe__ItemReport *rep = r->rep;
	const child        *c = &r->c;
	char                text[CHILD_STDERR_TAIL + 1];
	size_t              n;

	rep->finished_ms = troupe_now_ms();
	rep->exit_code = child_exit_code(c);
	report_take_log(rep, &r->log);
	rep->system_failure = r->system_failure;
	if (!r->failed && c->spawned && c->exit_status == 0 &&
	    c->term_signal == 0) {
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
	if (!c->spawned) {
		report_system_failure(rep, "could not start the command");
		return;
	}
	if ((n = child_tail(c, text, sizeof(text))) > 0) {
		report_set_error(rep, text, n);
	} else if (c->term_signal != 0) {
		report_errorf(rep, "killed by signal %d (%s)", c->term_signal,
		              strsignal(c->term_signal));
	} else {
		report_errorf(rep, "exited with status %d", c->exit_status);
	}
}

/* Every handle is closed: report, then free. */
static void
runner_closed(void *owner)
{
	runner             *r = owner;
	Troupe__ItemReport *rep;

	runner_build_report(r);
	rep = r->rep;
	r->rep = NULL;
	r->done(r->arg, rep);
	free(r->outbuf);
	free(r->input);
	free(r->reason);
	logcap_clear(&r->log);
	free(r);
}

static void
runner_err(void *owner, const char *p, size_t n)
{
	runner *r = owner;

	logcap_add(&r->log, p, n);
}

static void
runner_timer_cb(uv_timer_t *t)
{
	runner *r = child_owner(t);
	char    why[64];

	snprintf(why, sizeof(why), "timed out after %" PRIu32 " ms",
	         r->timeout_ms);
	runner_kill(r, why, false);
}

static void
runner_out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	runner *r = child_owner(h);

	/* Read straight into the output buffer. */
	child_out_room(&r->outbuf, &r->out_cap, r->out_len, r->max_output, buf);
}

static void
runner_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	runner *r = child_owner(s);
	char    why[96];

	if (n == 0)
		return;
	if (n < 0) {
		if (n == UV_ENOBUFS) {
			runner_set_reason(r, "out of memory for the output",
			                  true);
			child_killpg(&r->c, SIGKILL);
		}
		child_out_end(&r->c);
		return;
	}
	r->out_len += (size_t)n;
	if (r->out_len > r->max_output) {
		snprintf(why, sizeof(why),
		         "output exceeds the limit of %zu bytes",
		         r->max_output);
		/* The output is lost even if the process already exited. */
		runner_set_reason(r, why, false);
		child_killpg(&r->c, SIGKILL);
		child_out_end(&r->c);
	}
}

static void
runner_write_cb(uv_write_t *w, int status)
{
	runner *r = w->data;

	/* EPIPE (the command did not read it all) is not our failure: its
	 * exit status says how the command fared. */
	child_close_in(&r->c);
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
runner_spawn(runner *r, const Troupe__TaskSpec *task)
{
	char       *cmd = NULL;
	char      **env = NULL;
	char       *own[3] = {NULL, NULL, NULL};
	launch_args args = {0};
	char        why[512];
	int         rv;

	rv = quote_command(task->command, r->input, r->input_len, &cmd);
	if (rv == TROUPE_EPERM) {
		(void)placeholder_check(task->command, why, sizeof(why));
		runner_set_reason(r, why, false);
		return 0;
	}
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
	if ((rv = launch_args_make(&args, r->shim, cmd, 0, r->user)) != 0)
		goto fail;
	r->rep->started_ms = troupe_now_ms();
	child_spawn(&r->c, args.argv, env);
	if (r->c.spawn_err == UV_E2BIG) {
		/* Retrying elsewhere would fail the same way. */
		snprintf(
		    why, sizeof(why),
		    "the command line is too long (%zu bytes with the item "
		    "in place of {}); read big items from stdin",
		    strlen(cmd));
		runner_set_reason(r, why, false);
	} else if (r->c.spawn_err != 0) {
		snprintf(why, sizeof(why), "cannot start /bin/sh: %s",
		         uv_strerror(r->c.spawn_err));
		runner_set_reason(r, why, true);
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

	child_read_start(&r->c, runner_out_alloc, runner_out_read);
	if (r->input_len == 0 || uv_write(&r->wreq, (uv_stream_t *)&r->c.in,
	                                  &buf, 1, runner_write_cb) != 0)
		child_close_in(&r->c);
	if (r->timeout_ms > 0)
		uv_timer_start(&r->c.timer, runner_timer_cb, r->timeout_ms, 0);
}

int
runner_start(uv_loop_t *loop, const runner_opts *opts,
             const Troupe__TaskSpec *task, const char *execution,
             const Troupe__WorkItem *item, runner_done_fn done, void *arg,
             runner **out)
{
	runner  *r = NULL;
	unsigned grace_ms;
	int      rv;

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
	grace_ms = opts != NULL && opts->exit_grace_ms > 0 ? opts->exit_grace_ms
	                                                   : 1000;
	r->shim = opts != NULL ? opts->shim : NULL;
	r->user = opts != NULL ? opts->user : NULL;
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
	child_init(&r->c, loop, r, grace_ms, NULL, runner_closed);
	r->c.on_err = runner_err;
	r->wreq.data = r;
	if ((rv = runner_spawn(r, task)) != 0)
		runner_set_reason(r, "out of memory starting the command",
		                  true);
	if (out != NULL)
		*out = r;
	if (r->c.spawned)
		runner_io(r);
	else
		child_finish(&r->c);
	return 0;
fail:
	if (r != NULL) {
		report_free(r->rep);
		free(r->input);
		free(r);
	}
	return rv;
}
