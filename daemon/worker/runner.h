/*
 * The per-item process runner (docs/design.md, "How a task process talks"):
 * one `/bin/sh -c CMD` per item, `{}` replaced by the shell-quoted item,
 * the item's bytes on stdin, stdout as the output, the tail of stderr as
 * the error and the whole of it, capped (logcap.h), as the attempt's log
 * (ItemReport.stderr_log), TROUPE_EXECUTION/TROUPE_ITEM/TROUPE_ATTEMPT in the
 * environment.  Each process is the leader of a new session, so a timeout
 * or a kill reaches everything it started; under troupe-shim (launch.h) it
 * also dies with the worker.
 *
 * Threading contract: a runner lives on one libuv loop and every function
 * here is called on that loop's thread; its callback runs there too.  The
 * process must ignore SIGPIPE (a command that exits without reading its
 * stdin would otherwise kill the daemon while we write the item).
 *
 * An actor replica (replica.h) has the same shape for many items: both
 * sit on child.h, and both hand back one report per item through a
 * callback.
 */
#ifndef TROUPE_WORKER_RUNNER_H
#define TROUPE_WORKER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "api.pb-c.h"
#include "child.h"
#include "link.pb-c.h"

/* Default cap on an item's stdout: it must fit in one Report under the
 * receive limit (TROUPE_MAX_MSG) with room for the envelope. */
#define RUNNER_MAX_OUTPUT  ((size_t)63 << 20)
#define RUNNER_STDERR_TAIL CHILD_STDERR_TAIL

typedef struct runner runner;
struct launch_user; /* launch.h */

typedef struct runner_opts {
	size_t   max_output;    /* 0: RUNNER_MAX_OUTPUT */
	unsigned exit_grace_ms; /* how long to wait for the pipes to close
	                           after the process exits; 0: 1000 */
	const char *shim;       /* troupe-shim to run commands under (see
	                           launch.h), NULL: none; must outlive every
	                           runner started with these options */
	const struct launch_user *user; /* run commands as this user (the
	                           shim drops to it), NULL: as the worker;
	                           must outlive every runner, like shim */
} runner_opts;

/* Called exactly once per successful runner_start, after the process has
 * exited and every handle is closed.  The callee owns report (free it with
 * report_free, or hand it on).  The runner is freed right after the
 * callback returns. */
typedef void (*runner_done_fn)(void *arg, Troupe__ItemReport *report);

/* Starts attempt item->attempt of item item->index of execution with
 * task's command, timeout and env (opts may be NULL for defaults).  Copies
 * what it needs: task, execution and item may be freed on return.  A
 * command that cannot start (spawn failure, a NUL byte in an item that
 * `{}` must carry, ...) still returns 0 and reports a failure through done.
 * Returns TROUPE_ENOMEM (done is then never called).  *out (may be NULL)
 * stays valid until done is called; the caller never frees it. */
int runner_start(uv_loop_t *loop, const runner_opts *opts,
                 const Troupe__TaskSpec *task, const char *execution,
                 const Troupe__WorkItem *item, runner_done_fn done, void *arg,
                 runner **out);

/* Kills the process group of r with SIGKILL; the attempt fails with
 * reason as its error (the first reason given wins), as a system failure
 * when system_failure.  done is still called, once everything is closed.
 * Harmless after the process exited. */
void runner_kill(runner *r, const char *reason, bool system_failure);

/* The process id of r (its process group), 0 when it did not start. */
int runner_pid(const runner *r);

#endif
