/*
 * The scheduler's core: placement of items on workers, group commit,
 * liveness of workers, long-poll deadlines.  See scheduler.h for the threading
 * contract (one loop thread owns all of it).
 *
 * Placement: whenever a worker has a Pull parked and free slots, items are
 * handed to it one at a time, each time from the active execution with the
 * fewest items running (ties to the oldest) among those under their
 * --concurrency.  That is max-min fairness: a big map cannot starve a small
 * one, and --concurrency holds across the cluster because every running
 * item is counted here, whichever worker runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scheduler.h"
#include "troupe/error.h"

#define SCHED_TICK_MS 100
/* After a restart with items that were running, wait this long for their
 * workers to register again and claim them before re-running them. */
#define SCHED_RESTART_GRACE_MS 1500

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

exec *
sched_find_exec(sched *s, const char *id)
{
	for (exec *e = s->execs; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

worker *
sched_find_worker(sched *s, const char *id)
{
	for (worker *w = s->workers; w != NULL; w = w->next)
		if (strcmp(w->id, id) == 0)
			return w;
	return NULL;
}

/* Picks the execution to take the next item from: runnable, under its
 * concurrency, fewest running; NULL when none.  `dry` execs are skipped. */
static exec *
sched_pick(sched *s)
{
	exec *best = NULL;

	for (exec *e = s->execs; e != NULL; e = e->next) {
		if (exec_terminal(e->phase) || e->n_pending == 0 || e->dry)
			continue;
		if (e->concurrency > 0 && e->n_running >= e->concurrency)
			continue;
		if (best == NULL || e->n_running < best->n_running)
			best = e;
	}
	return best;
}

void
sched_assign(sched *s, worker *w, exec *e, uint64_t index)
{
	item *it = exec_item(e, index);

	if (w->n_running == w->cap_running) {
		size_t      cap = w->cap_running ? w->cap_running * 2 : 8;
		assignment *a = realloc(w->running, cap * sizeof(*a));
		if (a == NULL) {
			exec_requeue(e, index);
			return;
		}
		w->running = a;
		w->cap_running = cap;
	}
	it->attempts++;
	it->w = w;
	it->started_ms = troupe_now_ms();
	free(it->worker_name);
	it->worker_name = strdup(w->name);
	exec_set_state(e, index, TROUPE__ITEM_STATE__ITEM_RUNNING);
	it->slot = (uint32_t)w->n_running;
	w->running[w->n_running].e = e;
	w->running[w->n_running].index = index;
	w->running[w->n_running].attempt = it->attempts;
	w->running[w->n_running].sent = false;
	w->n_running++;
	actors_assigned(w, e, 1);
	if (e->phase == TROUPE__PHASE__PHASE_QUEUED) {
		e->phase = TROUPE__PHASE__PHASE_RUNNING;
		e->started_ms = it->started_ms;
	}
	sched_dirty(s);
}

void
sched_dispatch(sched *s)
{
	if (troupe_now_ms() < s->dispatch_after_ms)
		return; /* the tick kicks again when the grace is over */
	for (worker *w = s->workers; w != NULL; w = w->next) {
		bool gave = false;

		if (w->pull == NULL)
			continue;
		if (w->state == TROUPE__WORKER_STATE__WORKER_DRAINING)
			actors_drain(s, w);
		for (exec *e = s->execs; e != NULL; e = e->next)
			e->dry = false;
		while (w->state == TROUPE__WORKER_STATE__WORKER_READY) {
			exec    *e = sched_pick(s);
			uint64_t idx;

			if (e == NULL)
				break;
			if (e->env == NULL && actors_used_slots(w) < w->slots &&
			    !actors_resources_fit(w, e->task->resources)) {
				e->dry =
				    true; /* another worker may have room */
				continue;
			}
			if (e->env == NULL &&
			    actors_used_slots(w) >= w->slots) {
				actors_evict_idle(s, w, NULL,
				                  e->n_pending < w->slots
				                      ? (uint32_t)e->n_pending
				                      : w->slots);
				e->dry = true;
				continue;
			}
			if (e->env != NULL &&
			    !actors_make_room(s, w, e->env, e)) {
				e->dry = true;
				continue;
			}
			if (!exec_next_pending(s->st, e, &idx)) {
				e->dry = true;
				continue;
			}
			sched_assign(s, w, e, idx);
			gave = true;
		}
		for (replica *r = w->replicas; r != NULL && !gave; r = r->next)
			gave = !r->announced;
		if (gave || w->n_cancels > 0 || w->n_stops > 0)
			worker_answer_pull(s, w);
	}
}

void
sched_apply_result(sched *s, worker *w, const Troupe__ItemReport *r)
{
	exec *e = sched_find_exec(s, r->execution);
	item *it;
	bool  retry;

	if (e == NULL || (it = exec_item(e, r->index)) == NULL)
		return; /* finished, or never ours: a late duplicate */
	if (it->state != TROUPE__ITEM_STATE__ITEM_RUNNING ||
	    it->attempts != r->attempt)
		return; /* a stale attempt: the item was reassigned */
	if (it->w != NULL)
		worker_drop_assignment(it->w, e, r->index);
	it->w = NULL;
	w->items_done++;
	if (e->env != NULL)
		actors_note_result(s, w, e->env,
		                   r->state !=
		                           TROUPE__ITEM_STATE__ITEM_SUCCEEDED &&
		                       r->system_failure);
	it->exit_code = r->exit_code;
	it->started_ms = r->started_ms;
	it->finished_ms = r->finished_ms;
	free(it->error);
	it->error = NULL;
	free(it->output);
	it->output = NULL;
	it->output_len = 0;
	if (r->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED) {
		if (r->output.len > 0 &&
		    (it->output = malloc(r->output.len)) != NULL) {
			memcpy(it->output, r->output.data, r->output.len);
			it->output_len = r->output.len;
		}
		exec_set_state(e, r->index, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	} else {
		it->error = strdup(r->error);
		if (r->system_failure)
			retry = ++it->sys_fails <= SCHED_SYSTEM_RETRIES;
		else
			retry = ++it->user_fails <= e->retries;
		if (retry) {
			exec_set_state(e, r->index,
			               TROUPE__ITEM_STATE__ITEM_PENDING);
			exec_requeue(e, r->index);
		} else
			exec_set_state(e, r->index,
			               TROUPE__ITEM_STATE__ITEM_FAILED);
	}
	exec_check_done(s, e);
	sched_dirty(s);
	sched_kick(s);
}

void
sched_worker_lost(sched *s, worker *w, const char *why)
{
	log_warn("worker %s (%s) lost: %s; %zu items go back to the queue",
	         w->name, w->id, why, w->n_running);
	while (w->n_running > 0) {
		assignment a = w->running[--w->n_running];
		item      *it = exec_item(a.e, a.index);
		char       msg[256];

		if (it == NULL ||
		    it->state != TROUPE__ITEM_STATE__ITEM_RUNNING || it->w != w)
			continue;
		it->w = NULL;
		snprintf(msg, sizeof(msg), "worker %s lost: %s", w->name, why);
		free(it->error);
		it->error = strdup(msg);
		if (++it->sys_fails <= SCHED_SYSTEM_RETRIES) {
			exec_set_state(a.e, a.index,
			               TROUPE__ITEM_STATE__ITEM_PENDING);
			exec_requeue(a.e, a.index);
		} else
			exec_set_state(a.e, a.index,
			               TROUPE__ITEM_STATE__ITEM_FAILED);
		exec_check_done(s, a.e);
	}
	actors_drop_worker(w);
	if (w->pull != NULL)
		rpc_fail(w->pull, TROUPE_ENOTFOUND, "worker declared lost");
	w->pull = NULL;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		s->workers = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	worker_free(w);
	sched_dirty(s);
	sched_kick(s);
}

void
sched_on_disconnect(void *arg, uint32_t pipe)
{
	sched *s = arg;

	for (worker *w = s->workers; w != NULL; w = w->next)
		if (w->pipe == pipe) {
			sched_worker_lost(s, w, "connection closed");
			return;
		}
}

/* Answers the watchers whose execution changed, or whose wait is over. */
static void
sched_answer_watchers(sched *s, bool only_expired)
{
	int64_t   now = troupe_now_ms();
	watcher **pp = &s->watchers;

	while (*pp != NULL) {
		watcher *wt = *pp;
		exec    *e = sched_find_exec(s, wt->id);
		bool     changed = e == NULL || e->version > wt->since;

		if ((only_expired || !changed) && now < wt->deadline_ms) {
			pp = &wt->next;
			continue;
		}
		*pp = wt->next;
		api_answer_watch(s, wt->call, wt->id);
		free(wt);
	}
}

int
sched_flush(sched *s)
{
	pending_ack *acks = s->acks;
	int          rv;

	s->acks = NULL;
	if ((rv = store_begin(s->st)) != 0)
		goto fail;
	for (exec *e = s->execs; e != NULL; e = e->next)
		if ((rv = exec_write(s->st, e)) != 0)
			goto fail;
	if ((rv = store_commit(s->st)) != 0)
		goto fail;
	if (s->storage_full)
		log_info("storage writable again");
	s->storage_full = false;
	for (exec *e = s->execs; e != NULL; e = e->next)
		exec_clean(e);
	while (acks != NULL) {
		pending_ack        *a = acks;
		Troupe__ReportReply rep = TROUPE__REPORT_REPLY__INIT;
		worker             *w = sched_find_worker(s, a->worker_id);
		Troupe__ItemRef   **cp = NULL;

		acks = a->next;
		if (w != NULL && w->n_cancels > 0 &&
		    (cp = worker_cancels_view(w)) != NULL) {
			rep.cancels = cp;
			rep.n_cancels = w->n_cancels;
		}
		rpc_reply(a->call, &rep.base);
		if (cp != NULL)
			worker_cancels_sent(w);
		free(cp);
		free(a);
	}
	sched_answer_watchers(s, false);
	/* Finished executions leave memory; the store has them. */
	for (exec *e = s->execs, *next; e != NULL; e = next) {
		next = e->next;
		if (!exec_terminal(e->phase) || e->n_running > 0)
			continue;
		if (e->prev != NULL)
			e->prev->next = e->next;
		else
			s->execs = e->next;
		if (e->next != NULL)
			e->next->prev = e->prev;
		exec_free(e);
	}
	return 0;
fail:
	store_rollback(s->st);
	if (!s->storage_full)
		log_error("cannot commit: %s (%s); results will be retried",
		          troupe_strerror(rv), store_errmsg(s->st));
	s->storage_full = true;
	while (acks != NULL) {
		pending_ack *a = acks;
		acks = a->next;
		rpc_fail(a->call, rv, "scheduler cannot commit: %s",
		         troupe_strerror(rv));
		free(a);
	}
	return rv;
}

static void
sched_tick(uv_timer_t *h)
{
	sched  *s = h->data;
	int64_t now = troupe_now_ms();

	for (worker *w = s->workers, *next; w != NULL; w = next) {
		next = w->next;
		if (w->pull != NULL && now >= w->pull_deadline_ms)
			worker_answer_pull(s, w);
		else if (w->pull == NULL &&
		         now - w->last_seen_ms > (int64_t)s->opts.lost_after_ms)
			sched_worker_lost(s, w, "no heartbeat");
	}
	for (exec *e = s->execs; e != NULL; e = e->next) {
		uint32_t limit = e->spec->execution_timeout_s;

		if (!e->sealed && !exec_terminal(e->phase) &&
		    s->opts.upload_timeout_ms > 0 &&
		    now - e->upload_ms > (int64_t)s->opts.upload_timeout_ms) {
			char why[128];
			snprintf(why, sizeof(why),
			         "upload abandoned: no items and no seal for "
			         "%u s",
			         s->opts.upload_timeout_ms / 1000);
			exec_abort(s, e, TROUPE__PHASE__PHASE_FAILED, why);
			continue;
		}
		if (limit > 0 && !exec_terminal(e->phase) &&
		    e->started_ms > 0 &&
		    now - e->started_ms > (int64_t)limit * 1000) {
			char why[128];
			snprintf(why, sizeof(why),
			         "execution timed out after %u s", limit);
			exec_abort(s, e, TROUPE__PHASE__PHASE_TIMED_OUT, why);
		}
	}
	sched_answer_watchers(s, true);
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
	sched *s = arg;
	exec  *e = NULL;
	char   why[256];
	int    rv = exec_load(s->st, row, &e);

	(void)seq;
	if (rv != 0) {
		log_error("cannot load execution %s: %s", row->id,
		          troupe_strerror(rv));
		troupe__execution__free_unpacked(row, NULL);
		return 0; /* the others still run */
	}
	troupe__execution__free_unpacked(row, NULL);
	actor_env *env = NULL;

	if (actors_resolve(s, e->spec, e->task, &env, why, sizeof(why)) != 0 ||
	    actors_bind(e, env) != 0) {
		/* Its environment is gone: it cannot run as it was asked. */
		log_error("execution %s: %s", e->id, why);
		exec_abort(s, e, TROUPE__PHASE__PHASE_FAILED, why);
	}
	/* The grace starts with the first tick, once the daemon listens:
	 * reading a big database can take longer than the grace itself. */
	if (e->n_pending > 0 && e->sys_resumed > 0)
		s->dispatch_after_ms = INT64_MAX;
	/* Append: the list stays oldest first. */
	if (s->execs == NULL)
		s->execs = e;
	else {
		exec *t = s->execs;
		while (t->next != NULL)
			t = t->next;
		t->next = e;
		e->prev = t;
	}
	exec_check_done(s, e);
	return 0;
}

int
sched_open(uv_loop_t *loop, const sched_opts *o, sched **out, char *err,
           size_t errlen)
{
	sched *s = calloc(1, sizeof(*s));
	int    rv, n = 0;

	*out = NULL;
	if (s == NULL)
		return TROUPE_ENOMEM;
	s->loop = loop;
	s->opts = *o;
	s->started_ms = troupe_now_ms();
	uv_idle_init(loop, &s->idle);
	s->idle.data = s;
	uv_timer_init(loop, &s->tick);
	s->tick.data = s;
	if ((rv = store_open(o->db_path, &s->st)) != 0) {
		snprintf(err, errlen, "cannot open database %s: %s", o->db_path,
		         troupe_strerror(rv));
		goto fail;
	}
	if ((rv = store_unfinished_executions(s->st, sched_load_one, s)) != 0) {
		snprintf(err, errlen, "cannot read executions from %s: %s",
		         o->db_path, store_errmsg(s->st));
		goto fail;
	}
	for (exec *e = s->execs; e != NULL; e = e->next)
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
	s->closing = true;
	for (worker *w = s->workers; w != NULL; w = w->next)
		w->pull = NULL;
	while (s->watchers != NULL) {
		watcher *wt = s->watchers;
		s->watchers = wt->next;
		free(wt);
	}
	while (s->acks != NULL) {
		pending_ack *a = s->acks;
		s->acks = a->next;
		free(a);
	}
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
	if (s == NULL)
		return;
	sched_forget_calls(s);
	while (s->workers != NULL) {
		worker *w = s->workers;
		s->workers = w->next;
		worker_free(w);
	}
	while (s->execs != NULL) {
		exec *e = s->execs;
		s->execs = e->next;
		exec_free(e);
	}
	actors_free_all(s);
	store_close(s->st);
	s->st = NULL;
	uv_close((uv_handle_t *)&s->idle, NULL);
	uv_close((uv_handle_t *)&s->tick, sched_free_cb);
}
