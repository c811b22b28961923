/*
 * The scheduler's core: dispatch, group commit, liveness of workers,
 * long-poll deadlines (see core.h for the contract).
 *
 * Placement: whenever a worker has a Pull parked and free slots, items are
 * handed to it one at a time, each time from the active execution with the
 * fewest items running (ties to the oldest) among those under their
 * --concurrency.  That is max-min fairness: a big map cannot starve a small
 * one, and --concurrency holds across the cluster because every running
 * item is counted here, whichever worker runs it.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "core.h"
#include "troupe/error.h"

#define SCHED_TICK_MS 100
/* After a restart with items that were running, wait for their workers
 * to register again and claim them before re-running any: until every
 * such item is claimed, or this long at most (a worker that does not come
 * back).  Generous, because it costs nothing when the workers return:
 * the wait ends with the last claim. */
#define SCHED_RESTART_GRACE_MS 5000

/* A parked Report, answered after the flush that commits its results. */
typedef struct sched_ack {
	list_node node;
	rpc_call *call;
	char      worker_id[32]; /* its reply carries w's cancels */
} sched_ack;

#define EXECS(s)   (&(s)->execs)
#define WORKERS(s) (&(s)->workers)

static void sched_dispatch(sched *s);

static void
sched_idle_cb(uv_idle_t *h)
{
	sched *s = h->data;

	uv_idle_stop(&s->idle);
	if (s->want_dispatch) {
		s->want_dispatch = false;
		sched_dispatch(s);
	}
	if (s->want_flush) {
		s->want_flush = false;
		(void)sched_flush(s);
	}
}

void
sched_kick(sched *s)
{
	s->want_dispatch = true;
	uv_idle_start(&s->idle, sched_idle_cb);
}

void
sched_dirty(sched *s)
{
	s->want_flush = true;
	uv_idle_start(&s->idle, sched_idle_cb);
}

void
sched_set_hook(sched *s, sched_hook fn, void *arg)
{
	s->hook = fn;
	s->hook_arg = arg;
}

static void
sched_notify(sched *s, sched_event ev)
{
	if (s->hook != NULL)
		s->hook(s->hook_arg, ev);
}

exec *
sched_find_exec(sched *s, const char *id)
{
	exec *e;

	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e))
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

worker *
sched_find_worker(sched *s, const char *id)
{
	worker *w;

	for (w = list_first(WORKERS(s)); w != NULL;
	     w = list_next(WORKERS(s), w))
		if (strcmp(w->id, id) == 0)
			return w;
	return NULL;
}

void
sched_add_exec(sched *s, exec *e)
{
	list_append(EXECS(s), e);
}

void
sched_remove_exec(sched *s, exec *e)
{
	list_remove(EXECS(s), e);
}

void
sched_abort(sched *s, exec *e, Troupe__Phase phase, const char *why)
{
	worker_abort_exec(e, phase, why);
	sched_dirty(s);
	sched_kick(s); /* send the cancellations */
}

void
sched_seal(sched *s, exec *e)
{
	exec_seal(e);
	worker_check_done(e);
	sched_dirty(s);
	sched_kick(s);
}

/* Picks the execution to take the next item from: runnable, under its
 * concurrency and its project's quota; of those, the one whose project
 * has the fewest items running, then the one with the fewest running
 * itself (ties to the oldest).  That is max-min fairness between
 * projects first, then between a project's executions: a team flooding
 * the cluster cannot starve another, nor a big map a small one.  NULL
 * when none; `dry` execs are skipped. */
static exec *
sched_pick(sched *s)
{
	exec *best = NULL, *e;

	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e)) {
		if (exec_terminal(e->phase) || e->n_pending == 0 || e->dry)
			continue;
		if (e->concurrency > 0 && e->n_running >= e->concurrency)
			continue;
		if (!project_may_run(e->proj))
			continue;
		if (best == NULL || e->proj->running < best->proj->running ||
		    (e->proj->running == best->proj->running &&
		     e->n_running < best->n_running))
			best = e;
	}
	return best;
}

/* Fills w's free capacity from the executions, fairly; true when it gave
 * w something. */
static bool
sched_fill(sched *s, worker *w)
{
	bool  gave = false;
	exec *e;

	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e))
		e->dry = false;
	while (w->state == TROUPE__WORKER_STATE__WORKER_READY) {
		uint64_t idx;

		if ((e = sched_pick(s)) == NULL)
			break;
		if (e->env == NULL && actors_used_slots(w) < w->slots &&
		    !actors_resources_fit(w, e->task->resources)) {
			e->dry = true; /* another worker may have room */
			continue;
		}
		if (e->env == NULL && actors_used_slots(w) >= w->slots) {
			actors_evict_idle(w, NULL,
			                  e->n_pending < w->slots
			                      ? (uint32_t)e->n_pending
			                      : w->slots);
			e->dry = true;
			continue;
		}
		if (e->env != NULL &&
		    !actors_make_room(&s->act, w, e->env, e)) {
			e->dry = true;
			continue;
		}
		if (!exec_next_pending(s->st, e, &idx)) {
			e->dry = true;
			continue;
		}
		if (worker_assign(w, e, idx) != 0) {
			e->dry = true; /* out of memory: try again later */
			continue;
		}
		gave = true;
		sched_dirty(s);
	}
	return gave;
}

static void
sched_dispatch(sched *s)
{
	worker *w;

	if (troupe_now_ms() < s->dispatch_after_ms)
		return; /* the tick kicks again when the grace is over */
	for (w = list_first(WORKERS(s)); w != NULL;
	     w = list_next(WORKERS(s), w)) {
		bool gave;

		if (w->pull == NULL)
			continue;
		if (w->state == TROUPE__WORKER_STATE__WORKER_DRAINING)
			actors_drain(w);
		gave = sched_fill(s, w);
		if (gave || w->n_cancels > 0 || actors_have_news(w))
			sched_answer_pull(s, w);
	}
}

void
sched_answer_pull(sched *s, worker *w)
{
	Troupe__PullReply rep = TROUPE__PULL_REPLY__INIT;
	worker_reply      wb;
	actors_reply      ab;

	(void)s;
	if (w->pull == NULL)
		return;
	if (worker_reply_fill(w, true, &wb) != 0) {
		rpc_fail(w->pull, TROUPE_ENOMEM, "out of memory");
		w->pull = NULL;
		return;
	}
	if (actors_reply_fill(w, &rep, &ab) != 0) {
		worker_reply_free(&wb);
		rpc_fail(w->pull, TROUPE_ENOMEM, "out of memory");
		w->pull = NULL;
		return;
	}
	rep.n_shards = wb.n_shards;
	rep.shards = wb.sp;
	rep.n_cancels = wb.n_cancels;
	rep.cancels = wb.cp;
	rep.drain = w->state == TROUPE__WORKER_STATE__WORKER_DRAINING;
	rpc_reply(w->pull, &rep.base);
	worker_reply_sent(w, &wb);
	actors_reply_sent(w, &ab);
	worker_reply_free(&wb);
	actors_reply_free(&ab);
	w->pull = NULL;
}

void
sched_park_pull(sched *s, worker *w, rpc_call *call,
                const Troupe__PullRequest *in)
{
	if (w->pull != NULL)
		sched_answer_pull(s, w); /* a stray duplicate: let it go */
	actors_reconcile(&s->act, w, in);
	w->pull = call;
	w->pull_deadline_ms = troupe_now_ms() + s->opts.pull_timeout_ms;
	/* A draining worker's Pull is held like any other, so it cannot spin;
	 * the reply still says drain. */
	if (w->n_cancels > 0 || w->n_stops > 0)
		sched_answer_pull(s, w);
	else
		sched_kick(s);
}

/* Applies one result from w.  A result counts only for the item's
 * current attempt, and only from the worker holding it; any other (a
 * late duplicate, a stale attempt of an item that was reassigned, a
 * finished execution's, another worker's forgery) is ignored. */
static void
sched_apply_result(sched *s, worker *w, const Troupe__ItemReport *r)
{
	exec *e = sched_find_exec(s, r->execution);

	if (e == NULL || !exec_attempt_current(e, r->index, r->attempt))
		return;
	if (exec_holder(e, r->index, NULL) != w) {
		log_warn("worker %s reported item %" PRIu64 " of %s, which "
		         "it does not hold: ignored",
		         w->name, r->index, r->execution);
		return;
	}
	(void)worker_release(e, r->index);
	w->items_done++;
	if (e->env != NULL &&
	    actors_note_result(w, e->env,
	                       r->state != TROUPE__ITEM_STATE__ITEM_SUCCEEDED &&
	                           r->system_failure))
		sched_kick(s);
	exec_record_result(e, r);
	worker_check_done(e);
	sched_dirty(s);
	sched_kick(s);
}

void
sched_drain_worker(sched *s, worker *w)
{
	if (w->state == TROUPE__WORKER_STATE__WORKER_READY)
		log_info("worker %s (%s) is draining", w->name, w->id);
	w->state = TROUPE__WORKER_STATE__WORKER_DRAINING;
	(void)s;
}

void
sched_report(sched *s, worker *w, const Troupe__ReportRequest *in,
             rpc_call *call)
{
	sched_ack *a;

	if (in->draining && w->state == TROUPE__WORKER_STATE__WORKER_READY)
		sched_drain_worker(s, w);
	if (in->draining && w->pull != NULL) {
		/* The worker gave this Pull up; a reply would carry work
		 * and cancellations into the void. */
		rpc_drop(w->pull);
		w->pull = NULL;
	}
	for (size_t i = 0; i < in->n_results; i++)
		sched_apply_result(s, w, in->results[i]);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return;
	}
	/* Answered by the flush that commits these results. */
	a->call = call;
	snprintf(a->worker_id, sizeof(a->worker_id), "%s", w->id);
	list_append(&s->acks, a);
	sched_dirty(s);
}

void
sched_add_worker(sched *s, worker *w, Troupe__ItemRef **held, size_t n_held)
{
	worker *o;
	size_t  adopted = 0;

	/* A worker coming back under the same name replaces its old self. */
	for (o = list_first(WORKERS(s)); o != NULL;
	     o = list_next(WORKERS(s), o))
		if (strcmp(o->name, w->name) == 0) {
			sched_worker_lost(s, o, "registered again");
			break;
		}
	list_prepend(WORKERS(s), w);
	/* Claim back the attempts it still runs, if nobody else has them,
	 * and cancel the rest: their item finished or went elsewhere, or
	 * their execution ended while the worker was away.  No slot limit:
	 * it runs them already (an actor worker holds up to its replicas'
	 * prefetch, more than its slots). */
	for (size_t i = 0; i < n_held; i++) {
		const Troupe__ItemRef *r = held[i];
		exec                  *e = sched_find_exec(s, r->execution);

		if (e == NULL)
			worker_cancel(w, r->execution, r->index, r->attempt);
		else if (worker_reclaim(w, e, r->index, r->attempt)) {
			adopted++;
			sched_dirty(s);
		}
	}
	/* Every attempt that ran before the restart is back: no need to
	 * wait for anyone else. */
	if (s->unclaimed > 0) {
		s->unclaimed =
		    adopted < s->unclaimed ? s->unclaimed - adopted : 0;
		if (s->unclaimed == 0 && s->dispatch_after_ms != 0) {
			log_info("every attempt running before the restart was "
			         "claimed back");
			s->dispatch_after_ms = 0;
		}
	}
	log_info("worker %s registered as %s (host %s, %u slots; claimed %zu "
	         "running items, cancelled %zu)",
	         w->name, w->id, w->host, w->slots, adopted, w->n_cancels);
	sched_kick(s);
}

/* w is gone (see sched_worker_lost); its connection too when gone is
 * set, and then its parked Pull is dropped, not answered. */
static void
sched_lose(sched *s, worker *w, const char *why, bool gone)
{
	log_warn("worker %s (%s) lost: %s; %zu items go back to the queue",
	         w->name, w->id, why, w->n_running);
	worker_lose_all(w, why);
	actors_drop_worker(w);
	if (w->pull != NULL && gone)
		rpc_drop(w->pull);
	else if (w->pull != NULL)
		rpc_fail(w->pull, TROUPE_ENOTFOUND, "worker declared lost");
	w->pull = NULL;
	list_remove(WORKERS(s), w);
	worker_free(w);
	sched_dirty(s);
	sched_kick(s);
}

void
sched_worker_lost(sched *s, worker *w, const char *why)
{
	sched_lose(s, w, why, false);
}

void
sched_on_disconnect(void *arg, uint32_t pipe)
{
	sched  *s = arg;
	worker *w;

	for (w = list_first(WORKERS(s)); w != NULL;
	     w = list_next(WORKERS(s), w))
		if (w->pipe == pipe) {
			sched_lose(s, w, "connection closed", true);
			return;
		}
}

/* Answers the parked Reports after a commit (ok) or with its error. */
static void
sched_answer_acks(sched *s, list *acks, int rv)
{
	sched_ack *a;

	while ((a = list_pop(acks)) != NULL) {
		Troupe__ReportReply rep = TROUPE__REPORT_REPLY__INIT;
		worker             *w = sched_find_worker(s, a->worker_id);
		worker_reply        wb;
		bool                filled = false;

		if (rv != 0)
			rpc_fail(a->call, rv, "scheduler cannot commit: %s",
			         troupe_strerror(rv));
		else {
			if (w != NULL && w->n_cancels > 0 &&
			    worker_reply_fill(w, false, &wb) == 0) {
				rep.cancels = wb.cp;
				rep.n_cancels = wb.n_cancels;
				filled = true;
			}
			rpc_reply(a->call, &rep.base);
			if (filled) {
				worker_reply_sent(w, &wb);
				worker_reply_free(&wb);
			}
		}
		free(a);
	}
}

int
sched_flush(sched *s)
{
	list       acks;
	sched_ack *a;
	exec      *e, *next;
	uint64_t   t0;
	unsigned   batch = 0;
	int        rv;

	/* The Reports parked until now wait for this commit. */
	list_init(&acks, offsetof(sched_ack, node));
	while ((a = list_pop(&s->acks)) != NULL)
		list_append(&acks, a);
	t0 = uv_hrtime();
	if ((rv = store_begin(s->st)) != 0)
		goto fail;
	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e)) {
		batch += e->dirty;
		if ((rv = exec_write(s->st, e)) != 0)
			goto fail;
	}
	if ((rv = store_commit(s->st)) != 0)
		goto fail;
	if (batch > 0) {
		metrics_observe(M_COMMIT_SECONDS, "",
		                (double)(uv_hrtime() - t0) / 1e9);
		metrics_observe(M_COMMIT_BATCH, "", (double)batch);
	}
	if (s->storage_full)
		log_info("storage writable again");
	s->storage_full = false;
	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e))
		exec_clean(e);
	sched_answer_acks(s, &acks, 0);
	sched_notify(s, SCHED_EV_COMMITTED);
	/* Finished executions leave memory; the store has them. */
	for (e = list_first(EXECS(s)); e != NULL; e = next) {
		next = list_next(EXECS(s), e);
		if (!exec_terminal(e->phase) || e->n_running > 0)
			continue;
		list_remove(EXECS(s), e);
		exec_free(e);
	}
	return 0;
fail:
	store_rollback(s->st);
	if (!s->storage_full)
		log_error("cannot commit: %s (%s); results will be retried",
		          troupe_strerror(rv), store_errmsg(s->st));
	s->storage_full = true;
	sched_answer_acks(s, &acks, rv);
	return rv;
}

/* Ends executions past their execution or upload timeout. */
static void
sched_timeouts(sched *s, int64_t now)
{
	exec *e;

	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e)) {
		uint32_t limit = e->spec->execution_timeout_s;
		char     why[128];

		if (!e->sealed && !exec_terminal(e->phase) &&
		    s->opts.upload_timeout_ms > 0 &&
		    now - e->upload_ms > (int64_t)s->opts.upload_timeout_ms) {
			snprintf(why, sizeof(why),
			         "upload abandoned: no items and no seal for "
			         "%u s",
			         s->opts.upload_timeout_ms / 1000);
			sched_abort(s, e, TROUPE__PHASE__PHASE_FAILED, why);
			continue;
		}
		if (limit > 0 && !exec_terminal(e->phase) &&
		    e->started_ms > 0 &&
		    now - e->started_ms > (int64_t)limit * 1000) {
			snprintf(why, sizeof(why),
			         "execution timed out after %u s", limit);
			sched_abort(s, e, TROUPE__PHASE__PHASE_TIMED_OUT, why);
		}
	}
}

static void
sched_tick(uv_timer_t *h)
{
	sched  *s = h->data;
	int64_t now = troupe_now_ms();
	worker *w, *next;

	for (w = list_first(WORKERS(s)); w != NULL; w = next) {
		next = list_next(WORKERS(s), w);
		if (w->pull != NULL && now >= w->pull_deadline_ms)
			sched_answer_pull(s, w);
		else if (w->pull == NULL &&
		         now - w->last_seen_ms > (int64_t)s->opts.lost_after_ms)
			sched_worker_lost(s, w, "no heartbeat");
	}
	sched_timeouts(s, now);
	sched_notify(s, SCHED_EV_TICK);
	if (s->dispatch_after_ms == INT64_MAX)
		s->dispatch_after_ms = now + SCHED_RESTART_GRACE_MS;
	if (s->dispatch_after_ms != 0 && now >= s->dispatch_after_ms) {
		s->dispatch_after_ms = 0;
		sched_kick(s);
	}
	if (s->storage_full)
		sched_dirty(s); /* try the commit again */
}

static int
sched_load_one(void *arg, int64_t seq, Troupe__Execution *row)
{
	sched     *s = arg;
	exec      *e = NULL;
	actor_env *env = NULL;
	char       why[256];
	int        rv = exec_load(s->st, row, &e);

	(void)seq;
	if (rv != 0) {
		/* Part of it is missing or damaged: it can never run, and
		 * must not look QUEUED forever.  The others still run. */
		char msg[512];

		snprintf(msg, sizeof(msg),
		         "cannot be resumed: the database lacks part of it "
		         "(%s)",
		         rv == TROUPE_ENOMEM ? "out of memory"
		                             : store_errmsg(s->st));
		log_error("execution %s %s; marking it FAILED", row->id, msg);
		if (rv != TROUPE_ENOMEM &&
		    (rv = store_end_execution(s->st, row,
		                              TROUPE__PHASE__PHASE_FAILED, msg,
		                              troupe_now_ms())) != 0)
			log_error("cannot mark execution %s FAILED: %s (end "
			          "it with `troupe abort %s`)",
			          row->id, store_errmsg(s->st), row->id);
		troupe__execution__free_unpacked(row, NULL);
		return 0;
	}
	troupe__execution__free_unpacked(row, NULL);
	if ((e->proj = projects_get(&s->projects, e->spec->project)) == NULL) {
		log_error("execution %s: out of memory", e->id);
		exec_free(e);
		return TROUPE_ENOMEM;
	}
	if (actors_resolve(&s->act, e->spec, e->task, &env, why, sizeof(why)) !=
	        0 ||
	    actors_bind(e, env) != 0) {
		/* Its environment is gone: it cannot run as it was asked. */
		log_error("execution %s: %s", e->id, why);
		worker_abort_exec(e, TROUPE__PHASE__PHASE_FAILED, why);
	}
	/* The grace starts with the first tick, once the daemon listens:
	 * reading a big database can take longer than the grace itself. */
	if (e->n_pending > 0 && e->sys_resumed > 0) {
		s->dispatch_after_ms = INT64_MAX;
		s->unclaimed += e->sys_resumed;
	}
	/* Append: the list stays oldest first. */
	list_append(EXECS(s), e);
	worker_check_done(e);
	if (e->dirty)
		sched_dirty(s);
	return 0;
}

int
sched_open(uv_loop_t *loop, const sched_opts *o, sched **out, char *err,
           size_t errlen)
{
	sched *s = calloc(1, sizeof(*s));
	int    rv, n = 0;
	exec  *e;

	*out = NULL;
	if (s == NULL)
		return TROUPE_ENOMEM;
	s->loop = loop;
	s->opts = *o;
	s->started_ms = troupe_now_ms();
	list_init(EXECS(s), offsetof(exec, node));
	list_init(WORKERS(s), offsetof(worker, node));
	list_init(&s->acks, offsetof(sched_ack, node));
	s->act.prefetch = o->actor_prefetch;
	s->act.workers = WORKERS(s);
	uv_idle_init(loop, &s->idle);
	s->idle.data = s;
	uv_timer_init(loop, &s->tick);
	s->tick.data = s;
	if ((rv = store_open(o->db_path, &s->st)) != 0) {
		snprintf(err, errlen, "cannot open the database %s: %s",
		         o->db_path, store_errmsg(NULL));
		goto fail;
	}
	s->act.st = s->st;
	s->auth.st = s->st;
	s->auth.bootstrap = o->token;
	s->act.projects = &s->projects;
	if ((rv = projects_load(&s->projects, s->st)) != 0) {
		snprintf(err, errlen, "cannot read projects from %s: %s",
		         o->db_path, store_errmsg(s->st));
		goto fail;
	}
	if ((rv = store_unfinished_executions(s->st, sched_load_one, s)) != 0) {
		snprintf(err, errlen, "cannot read executions from %s: %s",
		         o->db_path, store_errmsg(s->st));
		goto fail;
	}
	for (e = list_first(EXECS(s)); e != NULL; e = list_next(EXECS(s), e))
		n++;
	if (n > 0)
		log_info("resumed %d unfinished executions", n);
	uv_timer_start(&s->tick, sched_tick, SCHED_TICK_MS, SCHED_TICK_MS);
	*out = s;
	return 0;
fail:
	sched_close(s);
	return rv;
}

void
sched_forget_calls(sched *s)
{
	worker    *w;
	sched_ack *a;

	s->closing = true;
	for (w = list_first(WORKERS(s)); w != NULL;
	     w = list_next(WORKERS(s), w))
		w->pull = NULL;
	while ((a = list_pop(&s->acks)) != NULL)
		free(a);
	sched_notify(s, SCHED_EV_CLOSING);
}

static void
sched_free_cb(uv_handle_t *h)
{
	sched *s = h->data;

	if (h == (uv_handle_t *)&s->tick)
		free(s); /* closed last */
}

void
sched_close(sched *s)
{
	worker *w;
	exec   *e;

	if (s == NULL)
		return;
	sched_forget_calls(s);
	while ((w = list_pop(WORKERS(s))) != NULL) {
		actors_drop_worker(w);
		worker_free(w);
	}
	while ((e = list_pop(EXECS(s))) != NULL)
		exec_free(e);
	actors_free_all(&s->act);
	projects_free(&s->projects);
	store_close(s->st);
	s->st = NULL;
	uv_close((uv_handle_t *)&s->idle, NULL);
	uv_close((uv_handle_t *)&s->tick, sched_free_cb);
}
