/*
 * The worker daemon's state: registration with the scheduler, the Pull
 * loop that brings shards and cancellations, the attempts running here,
 * the outbox of results not yet acknowledged, and the graceful drain.
 *
 * Threading contract: one libuv loop owns all of it.  nng's threads reach
 * it only through the link (wlink.h), whose replies run on the loop;
 * child processes, timers and signals are libuv handles on the same loop.
 * Inside, it is split by job (workerd_int.h): the phase, the link, the
 * attempts, the outbox.
 *
 * (Named workerd_, not worker_, so it never clashes with the scheduler's
 * own worker records when tests link both daemons' libraries.)
 */
#ifndef TROUPE_WORKER_WORKERD_H
#define TROUPE_WORKER_WORKERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "runner.h"

typedef struct workerd workerd;

/* What the worker is and where it goes.  Strings are copied. */
typedef struct workerd_conf {
	const char  *scheduler; /* URL of the scheduler's worker link */
	const char  *token;     /* NULL: none */
	const char  *tls_ca;    /* NULL: the system's CA bundle */
	const char  *name;      /* unique per worker */
	const char  *host;
	uint32_t     slots;     /* items run at once */
	uint32_t     cpu_milli; /* capacity advertised */
	uint64_t     mem_bytes;
	const char **label_keys;
	const char **label_vals;
	size_t       n_labels;
	unsigned     drain_timeout_ms; /* after SIGTERM, before killing */
	bool         signals;          /* drain on SIGTERM/SIGINT/SIGHUP */
	runner_opts  runner;
} workerd_conf;

/* Creates the worker on loop and starts registering (the scheduler need
 * not be up).  On failure writes one line into err.  The caller owns *out
 * and frees it with workerd_free once uv_run has returned. */
int workerd_open(uv_loop_t *loop, const workerd_conf *conf, workerd **out,
                 char *err, size_t errlen);

/* Graceful stop (what SIGTERM does): stop taking work, let running items
 * finish and be reported, then close everything so uv_run returns.  A
 * second call kills the running items and closes now. */
void workerd_stop(workerd *w);

/* The process exit status once uv_run has returned: 0 after a drain, 1
 * after a fatal error (the scheduler refused our token, ...). */
int workerd_exit_code(const workerd *w);

/* Frees w (every handle must be closed: call after uv_run returned).
 * Accepts NULL. */
void workerd_free(workerd *w);

#endif
