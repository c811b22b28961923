/*
 * The attempts held by the worker: what a Pull reply brings (shards of
 * items, cancellations, replicas to start and stop), the per-item
 * processes running within the slots (runner.h), those queued for a slot,
 * and those given to the actor pool (pool.h).  It owns w->running,
 * w->queued, w->actors, every wk_attempt on them and their index by item
 * (found in O(1): a Pull of hundreds of items is checked against
 * everything held), and the pool; an
 * attempt's result goes to the outbox (workerd_outbox.c).
 *
 * Async contract: everything runs on the daemon's loop thread.  wk_take
 * is called from the Pull reply, wk_cancel from Pull and Report replies;
 * runners call wk_done and the pool calls wk_actor_done/wk_actor_exit
 * from libuv callbacks on the same loop (the pool also from inside
 * pool_shutdown and pool_start).  Each of those may end the drain or the
 * halt (wk_check_done).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "log.h"
#include "report.h"
#include "troupe/error.h"
#include "workerd_int.h"

static void wk_dispatch(workerd *w);

#define WK_INDEX_MIN 1024 /* buckets of the attempts' index at first */

/* The hash of an item's execution, index and attempt. */
static unsigned
wk_hash(const char *execution, uint64_t index, uint32_t attempt)
{
	uint32_t h = fnv_str(FNV_INIT, execution);

	h = fnv_bytes(h, &index, sizeof(index));
	return fnv_bytes(h, &attempt, sizeof(attempt));
}

/* Doubles the index once it holds as many attempts as buckets; a failed
 * allocation keeps the old table (longer chains, still right). */
static void
wk_index_grow(workerd *w)
{
	size_t       cap = w->index_cap * 2;
	wk_attempt **t;

	if (w->index_n < w->index_cap || (t = calloc(cap, sizeof(*t))) == NULL)
		return;
	for (size_t i = 0; i < w->index_cap; i++)
		while (w->index[i] != NULL) {
			wk_attempt *a = w->index[i];

			w->index[i] = a->hnext;
			a->hnext = t[a->hash & (cap - 1)];
			t[a->hash & (cap - 1)] = a;
		}
	free(w->index);
	w->index = t;
	w->index_cap = cap;
}

/* Puts a (not on any list) on l, and in the index. */
static void
wk_alist_add(wk_alist *l, wk_attempt *a)
{
	workerd     *w = a->w;
	wk_attempt **b;

	assert(a->on == NULL);
	list_append(&l->l, a);
	l->n++;
	a->on = l;
	wk_index_grow(w);
	b = &w->index[a->hash & (w->index_cap - 1)];
	a->hnext = *b;
	*b = a;
	w->index_n++;
}

/* Takes a off l, and out of the index. */
static void
wk_alist_remove(wk_alist *l, wk_attempt *a)
{
	wk_attempt **b = &a->w->index[a->hash & (a->w->index_cap - 1)];

	assert(l->n > 0 && a->on == l);
	list_remove(&l->l, a);
	l->n--;
	a->on = NULL;
	while (*b != a) {
		assert(*b != NULL);
		b = &(*b)->hnext;
	}
	*b = a->hnext;
	a->hnext = NULL;
	a->w->index_n--;
}

/* The attempt held of an item, on whichever list, or NULL. */
static wk_attempt *
wk_find(const workerd *w, const char *execution, uint64_t index,
        uint32_t attempt)
{
	unsigned h = wk_hash(execution, index, attempt);

	for (wk_attempt *a = w->index[h & (w->index_cap - 1)]; a != NULL;
	     a = a->hnext)
		if (a->hash == h && a->item->index == index &&
		    a->item->attempt == attempt &&
		    strcmp(a->shard->execution, execution) == 0)
			return a;
	return NULL;
}

static void
wk_pull_unref(wk_pull *p)
{
	if (p != NULL && --p->refs == 0) {
		troupe__pull_reply__free_unpacked(p->reply, NULL);
		free(p);
	}
}

/* Frees a (on no list) and its reference to the Pull reply. */
static void
wk_attempt_free(wk_attempt *a)
{
	if (a == NULL)
		return;
	assert(a->node.next == NULL);
	wk_pull_unref(a->pull);
	free(a);
}

int
wk_attempts_init(workerd *w)
{
	list_init(&w->running.l, offsetof(wk_attempt, node));
	list_init(&w->queued.l, offsetof(wk_attempt, node));
	list_init(&w->actors.l, offsetof(wk_attempt, node));
	if ((w->index = calloc(WK_INDEX_MIN, sizeof(*w->index))) == NULL)
		return TROUPE_ENOMEM;
	w->index_cap = WK_INDEX_MIN;
	return 0;
}

size_t
wk_attempts_held(const workerd *w)
{
	return w->running.n + w->queued.n + w->actors.n;
}

/* A per-item process ended (runner_done_fn). */
static void
wk_done(void *arg, Troupe__ItemReport *rep)
{
	wk_attempt *a = arg;
	workerd    *w = a->w;

	wk_alist_remove(&w->running, a);
	log_debug("%s/%" PRIu64 " attempt %" PRIu32 ": %s, exit %d",
	          rep->execution, rep->index, rep->attempt,
	          rep->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED ? "succeeded"
	                                                           : "failed",
	          rep->exit_code);
	if (a->cancelled || w->phase >= WK_HALT)
		report_free(rep);
	else
		wk_outbox_push(w, rep);
	wk_attempt_free(a);
	wk_dispatch(w);
	wk_report_kick(w);
	wk_check_done(w);
}

void
wk_actor_done(void *arg, pool_item *it, Troupe__ItemReport *rep)
{
	workerd    *w = arg;
	wk_attempt *a =
	    (wk_attempt *)(void *)((char *)it - offsetof(wk_attempt, pi));

	assert(a->actor);
	wk_alist_remove(&w->actors, a);
	log_debug("%s/%" PRIu64 " attempt %" PRIu32 " (actor): %s",
	          rep->execution, rep->index, rep->attempt,
	          rep->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED ? "succeeded"
	                                                           : "failed");
	if (a->cancelled || w->phase >= WK_HALT)
		report_free(rep);
	else
		wk_outbox_push(w, rep);
	wk_attempt_free(a);
	wk_report_kick(w);
	wk_check_done(w);
}

/* A replica process exited: a halting worker may be done. */
void
wk_actor_exit(void *arg)
{
	wk_check_done(arg);
}

/* Starts queued attempts while slots are free. */
static void
wk_dispatch(workerd *w)
{
	while (w->phase < WK_HALT && w->running.n < w->slots &&
	       !list_empty(&w->queued.l)) {
		wk_attempt *a = list_first(&w->queued.l);

		wk_alist_remove(&w->queued, a);
		wk_alist_add(&w->running, a);
		if (runner_start(w->loop, &w->ropts, a->shard->task,
		                 a->shard->execution, a->item, wk_done, a,
		                 &a->r) != 0) {
			wk_alist_remove(&w->running, a);
			wk_fail_now(w, a->shard->execution, a->item, true,
			            "the worker is out of memory");
			wk_attempt_free(a);
		}
	}
	assert(w->running.n <= w->slots);
}

void
wk_kill_all(workerd *w, const char *why)
{
	wk_attempt *a;

	pool_shutdown(w->pool, why);
	while ((a = list_first(&w->queued.l)) != NULL) {
		wk_alist_remove(&w->queued, a);
		if (w->phase < WK_HALT)
			wk_fail_now(w, a->shard->execution, a->item, true, why);
		wk_attempt_free(a);
	}
	for (a = list_first(&w->running.l); a != NULL;
	     a = list_next(&w->running.l, a))
		runner_kill(a->r, why, true);
}

void
wk_cancel(workerd *w, const Troupe__ItemRef *ref)
{
	wk_attempt *a = wk_find(w, ref->execution, ref->index, ref->attempt);

	if (a != NULL && a->on == &w->running) {
		log_debug("cancel %s/%" PRIu64, ref->execution, ref->index);
		a->cancelled = true;
		runner_kill(a->r, "cancelled", false);
		return;
	}
	if (a != NULL && a->on == &w->actors) {
		log_debug("cancel %s/%" PRIu64 " (actor)", ref->execution,
		          ref->index);
		pool_cancel(w->pool, &a->pi);
		wk_alist_remove(&w->actors, a);
		wk_attempt_free(a);
		return;
	}
	if (a != NULL) {
		assert(a->on == &w->queued);
		wk_alist_remove(&w->queued, a);
		wk_attempt_free(a);
		return;
	}
	/* Finished already: no need to send a result nobody wants. */
	wk_outbox_forget(w, ref);
}

/* Makes an attempt of item it of shard sh (referring to p) and queues it
 * for a slot, or gives it to the pool. */
static void
wk_take_item(workerd *w, wk_pull *p, const Troupe__Shard *sh,
             const Troupe__WorkItem *it)
{
	wk_attempt *a;
	char        why[160];
	int         rv;

	if (wk_find(w, sh->execution, it->index, it->attempt) != NULL)
		return; /* already here */
	if (sh->task == NULL || sh->task->command[0] == '\0') {
		wk_fail_now(w, sh->execution, it, true,
		            "the scheduler sent no command");
		return;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		wk_fail_now(w, sh->execution, it, true,
		            "the worker is out of memory");
		return;
	}
	a->w = w;
	a->pull = p;
	a->shard = sh;
	a->item = it;
	a->hash = wk_hash(sh->execution, it->index, it->attempt);
	p->refs++;
	if (sh->env_key[0] == '\0') {
		wk_alist_add(&w->queued, a);
		return;
	}
	a->actor = true;
	a->pi.execution = sh->execution;
	a->pi.item = it;
	a->pi.timeout_ms = sh->task->timeout_ms;
	wk_alist_add(&w->actors, a);
	if ((rv = pool_submit(w->pool, sh->env_key, &a->pi, why,
	                      sizeof(why))) != 0) {
		wk_alist_remove(&w->actors, a);
		wk_fail_now(w, sh->execution, it, rv != TROUPE_EINVAL, why);
		wk_attempt_free(a);
	}
}

void
wk_take(workerd *w, Troupe__PullReply *pr)
{
	wk_pull *p = NULL;

	for (size_t i = 0; i < pr->n_cancels; i++)
		wk_cancel(w, pr->cancels[i]);
	if (pr->drain != w->sched_drain)
		log_info(pr->drain ? "the scheduler drains this worker: no new "
		                     "items"
		                   : "the scheduler takes this worker back");
	w->sched_drain = pr->drain;
	/* Replicas first: the shards' items may be for them. */
	for (size_t i = 0; i < pr->n_stop_replicas; i++)
		pool_stop(w->pool, pr->stop_replicas[i]);
	for (size_t i = 0; i < pr->n_start_replicas; i++) {
		const Troupe__ReplicaStart *rs = pr->start_replicas[i];
		int                         rv = pool_start(w->pool, rs);

		if (rv != 0)
			log_error("cannot start replica %s of %s: %s",
			          rs->replica_id, rs->env_key,
			          troupe_strerror(rv));
	}
	if (pr->n_shards == 0 || (p = calloc(1, sizeof(*p))) == NULL) {
		if (pr->n_shards > 0)
			log_error("out of memory: dropping a shard");
		troupe__pull_reply__free_unpacked(pr, NULL);
		return;
	}
	p->reply = pr;
	p->refs = 1; /* ours, until the loop below is done */
	for (size_t s = 0; s < pr->n_shards; s++)
		for (size_t i = 0; i < pr->shards[s]->n_items; i++)
			wk_take_item(w, p, pr->shards[s],
			             pr->shards[s]->items[i]);
	wk_pull_unref(p);
	wk_dispatch(w);
	wk_report_kick(w);
}

size_t
wk_held(const workerd *w, Troupe__ItemRef *refs, Troupe__ItemRef **ptrs)
{
	const wk_alist *lists[3] = {&w->running, &w->queued, &w->actors};
	size_t          n = 0;

	for (int l = 0; l < 3; l++)
		for (wk_attempt *a = list_first(&lists[l]->l); a != NULL;
		     a = list_next(&lists[l]->l, a)) {
			troupe__item_ref__init(&refs[n]);
			refs[n].execution = (char *)a->shard->execution;
			refs[n].index = a->item->index;
			refs[n].attempt = a->item->attempt;
			ptrs[n] = &refs[n];
			n++;
		}
	return n + wk_outbox_held(w, refs + n, ptrs + n);
}

void
wk_attempts_free(workerd *w)
{
	wk_attempt *a;

	/* Normally empty by now; after a failed open, never started. */
	assert(w->running.n == 0);
	while ((a = list_first(&w->queued.l)) != NULL) {
		wk_alist_remove(&w->queued, a);
		wk_attempt_free(a);
	}
	while ((a = list_first(&w->actors.l)) != NULL) {
		pool_cancel(w->pool, &a->pi);
		wk_alist_remove(&w->actors, a);
		wk_attempt_free(a);
	}
	pool_free(w->pool);
	w->pool = NULL;
	assert(w->index_n == 0);
	free(w->index);
	w->index = NULL;
	free(w->shim);
	w->shim = NULL;
}
