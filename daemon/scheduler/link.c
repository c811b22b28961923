/*
 * The worker link service (link.proto's WorkerLink): registration, the
 * Pull long poll that carries shards and cancellations, and Report, whose
 * answer waits for the commit of its results.  Each handler decodes and
 * checks its request, calls down into core.c, and answers or leaves the
 * call parked there.
 *
 * Async contract: handlers run on the scheduler's loop thread, called by
 * rpc.c with the request unpacked; the top layer of the scheduler with
 * api*.c (docs/design.md, "The scheduler's layers").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "log.h"
#include "names.h"
#include "troupe/error.h"

static void
link_register_worker(void *ctx, const void *msg, rpc_call *call)
{
	sched                               *s = ctx;
	const Troupe__RegisterWorkerRequest *in = msg;
	Troupe__RegisterWorkerReply rep = TROUPE__REGISTER_WORKER_REPLY__INIT;
	worker                     *w = NULL;
	char                        why[256];

	if (names_check("worker name", in->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if (in->slots == 0 || in->slots > 100000) {
		rpc_fail(call, TROUPE_EINVAL, "slots must be 1..100000, not %u",
		         in->slots);
		return;
	}
	if (worker_new(in, rpc_call_pipe(call), &w) != 0) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return;
	}
	sched_add_worker(s, w, in->held, in->n_held);
	rep.worker_id = w->id;
	rep.pull_timeout_ms = s->opts.pull_timeout_ms;
	rep.lost_after_ms = s->opts.lost_after_ms;
	rpc_reply(call, &rep.base);
}

/* Finds the caller's worker record and notes that it was heard from; or
 * answers NOT_FOUND and returns NULL. */
static worker *
link_worker_or_fail(sched *s, const char *id, rpc_call *call)
{
	worker *w = sched_find_worker(s, id);

	if (w == NULL) {
		rpc_fail(call, TROUPE_ENOTFOUND,
		         "unknown worker '%.40s': register again", id);
		return NULL;
	}
	w->last_seen_ms = troupe_now_ms();
	w->pipe = rpc_call_pipe(call);
	return w;
}

static void
link_pull(void *ctx, const void *msg, rpc_call *call)
{
	sched                     *s = ctx;
	const Troupe__PullRequest *in = msg;
	worker *w = link_worker_or_fail(s, in->worker_id, call);

	if (w != NULL)
		sched_park_pull(s, w, call, in);
}

static void
link_report(void *ctx, const void *msg, rpc_call *call)
{
	sched                       *s = ctx;
	const Troupe__ReportRequest *in = msg;
	worker *w = link_worker_or_fail(s, in->worker_id, call);

	if (w != NULL)
		sched_report(s, w, in, call);
}

/* Worker tokens, and admin ones (the bootstrap token of clusters from
 * before roles); nobody else joins as a worker. */
#define WORKER                                 \
	(RPC_ROLE(TROUPE__ROLE__ROLE_WORKER) | \
	 RPC_ROLE(TROUPE__ROLE__ROLE_ADMIN))

static const rpc_method link_methods[] = {
    {"RegisterWorker", link_register_worker, WORKER, true},
    {"Pull", link_pull, WORKER, false},
    {"Report", link_report, WORKER, false},
};

const rpc_service *
link_service(sched *s)
{
	static rpc_service svc = {
	    &troupe__worker_link__descriptor, link_methods,
	    sizeof(link_methods) / sizeof(link_methods[0]), NULL};

	svc.ctx = s;
	return &svc;
}
