/*
 * Workers and their assignments (see worker.h for the contract).
 *
 * Invariant, checked under assert: an assignment a in w->running[i] is
 * the one holding its item, so exec_holder(a.e, a.index) is w with slot
 * i, and a.attempt is the item's current attempt; an item with a holder
 * is in exactly one worker's list.  Runs on the scheduler's loop thread.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "grow.h"
#include "log.h"
#include "troupe/error.h"
#include "worker.h"

/* Checks the invariant for slot i of w. */
static void
worker_check_slot(worker *w, size_t i)
{
#ifndef NDEBUG
	uint32_t slot = UINT32_MAX;

	assert(i < w->n_running);
	assert(exec_holder(w->running[i].e, w->running[i].index, &slot) == w);
	assert(slot == i);
	assert(exec_attempt_current(w->running[i].e, w->running[i].index,
	                            w->running[i].attempt));
#else
	(void)w;
	(void)i;
#endif
}

static void
worker_make_id(char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t           rnd[6] = {0};

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd[0] = (uint8_t)troupe_now_ms();
	snprintf(buf, len, "w-");
	for (size_t i = 0; i < sizeof(rnd) && 2 + 2 * i + 2 < len; i++) {
		buf[2 + 2 * i] = hex[rnd[i] >> 4];
		buf[3 + 2 * i] = hex[rnd[i] & 15];
		buf[4 + 2 * i] = '\0';
	}
}

int
worker_new(const Troupe__RegisterWorkerRequest *in, uint32_t pipe, worker **out)
{
	worker *w = NULL;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->name = strdup(in->name)) == NULL ||
	    (w->host = strdup(in->host)) == NULL ||
	    (in->n_labels > 0 &&
	     ((w->label_keys = calloc(in->n_labels, sizeof(char *))) == NULL ||
	      (w->label_vals = calloc(in->n_labels, sizeof(char *))) ==
	          NULL))) {
		worker_free(w);
		return TROUPE_ENOMEM;
	}
	for (size_t i = 0; i < in->n_labels; i++) {
		w->label_keys[i] = strdup(in->labels[i]->key);
		w->label_vals[i] = strdup(in->labels[i]->value);
		w->n_labels++;
	}
	worker_make_id(w->id, sizeof(w->id));
	w->slots = in->slots;
	w->pid = in->pid;
	if (in->capacity != NULL) {
		w->cpu_milli = in->capacity->cpu_milli;
		w->mem_bytes = in->capacity->mem_bytes;
	}
	w->state = TROUPE__WORKER_STATE__WORKER_READY;
	w->registered_ms = w->last_seen_ms = troupe_now_ms();
	w->pipe = pipe;
	*out = w;
	return 0;
}

void
worker_free(worker *w)
{
	if (w == NULL)
		return;
	assert(w->replicas == NULL && w->n_stops == 0);
	while (w->envs != NULL) {
		worker_env *k = w->envs;
		w->envs = k->next;
		free(k);
	}
	for (size_t i = 0; i < w->n_cancels; i++)
		free(w->cancel_ids[i]);
	for (size_t i = 0; i < w->n_labels; i++) {
		free(w->label_keys[i]);
		free(w->label_vals[i]);
	}
	for (size_t i = 0; i < w->n_tallies; i++) {
		free(w->tallies[i].key);
		free(w->tallies[i].event);
	}
	free(w->tallies);
	free(w->stops);
	free(w->label_keys);
	free(w->label_vals);
	free(w->cancels);
	free(w->cancel_ids);
	free(w->running);
	free(w->name);
	free(w->host);
	free(w);
}

worker_env *
worker_env_of(worker *w, const struct actor_env *env, bool create)
{
	worker_env *k;

	for (k = w->envs; k != NULL; k = k->next)
		if (k->env == env)
			return k;
	if (!create || (k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->env = env;
	k->next = w->envs;
	w->envs = k;
	return k;
}

uint32_t
worker_inflight(const worker *w, const struct actor_env *env)
{
	for (const worker_env *k = w->envs; k != NULL; k = k->next)
		if (k->env == env)
			return k->inflight;
	return 0;
}

/* Counts an assignment of an item of e added to (delta 1) or removed
 * from (-1) w, for placement. */
static void
worker_count(worker *w, const exec *e, int delta)
{
	worker_env *k;

	if (e->env == NULL) {
		assert(delta > 0 || w->n_proc > 0);
		w->n_proc += (uint32_t)delta;
	} else if ((k = worker_env_of(w, e->env, delta > 0)) != NULL) {
		assert(delta > 0 || k->inflight > 0);
		k->inflight += (uint32_t)delta;
	}
}

int
worker_assign(worker *w, exec *e, uint64_t index)
{
	assignment *a;

	if (w->n_running == w->cap_running) {
		a = grow_array(w->running, &w->cap_running, sizeof(*a), 8);
		if (a == NULL)
			return TROUPE_ENOMEM;
		w->running = a;
	}
	a = &w->running[w->n_running];
	a->e = e;
	a->index = index;
	a->attempt = exec_start_attempt(e, index, w->name);
	a->sent = false;
	exec_set_holder(e, index, w, (uint32_t)w->n_running);
	w->n_running++;
	worker_count(w, e, 1);
	worker_check_slot(w, w->n_running - 1);
	return 0;
}

bool
worker_reclaim(worker *w, exec *e, uint64_t index, uint32_t attempt)
{
	if (!exec_reclaim(e, index, attempt)) {
		worker_cancel(w, e->id, index, attempt);
		return false;
	}
	if (worker_assign(w, e, index) != 0) {
		/* Without memory it runs again elsewhere: cancel this one. */
		worker_cancel(w, e->id, index, attempt);
		return false;
	}
	assert(w->running[w->n_running - 1].attempt == attempt);
	w->running[w->n_running - 1].sent = true;
	return true;
}

worker *
worker_release(exec *e, uint64_t index)
{
	uint32_t slot = 0;
	worker  *w = exec_holder(e, index, &slot);
	size_t   last;

	if (w == NULL)
		return NULL;
	worker_check_slot(w, slot);
	worker_count(w, e, -1);
	exec_set_holder(e, index, NULL, 0);
	last = --w->n_running;
	if (slot < last) {
		w->running[slot] = w->running[last];
		exec_set_holder(w->running[slot].e, w->running[slot].index, w,
		                slot);
		worker_check_slot(w, slot);
	}
	return w;
}

void
worker_lose_all(worker *w, const char *why)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "worker %s lost: %s", w->name, why);
	/* Last first, so a release moves nothing; an abort below may release
	 * more of w's attempts, hence the re-read of n_running. */
	while (w->n_running > 0) {
		assignment a = w->running[w->n_running - 1];

		(void)worker_release(a.e, a.index);
		exec_attempt_lost(a.e, a.index, msg);
		worker_check_done(a.e);
	}
}

void
worker_abort_exec(exec *e, Troupe__Phase phase, const char *why)
{
	uint64_t index = 0;
	void    *holder;
	uint32_t attempt;

	if (exec_terminal(e->phase))
		return;
	while (exec_next_held(e, &index, &holder, &attempt)) {
		worker_cancel(holder, e->id, index, attempt);
		(void)worker_release(e, index);
	}
	exec_abort(e, phase, why);
}

void
worker_check_done(exec *e)
{
	char why[256];

	if (exec_check_done(e, why, sizeof(why)))
		worker_abort_exec(e, TROUPE__PHASE__PHASE_FAILED, why);
}

void
worker_cancel(worker *w, const char *exec_id, uint64_t index, uint32_t attempt)
{
	if (w->n_cancels == w->cap_cancels) {
		size_t           cap = w->cap_cancels ? w->cap_cancels * 2 : 8;
		Troupe__ItemRef *c = realloc(w->cancels, cap * sizeof(*c));
		char           **ids;

		if (c == NULL)
			return;
		w->cancels = c;
		if ((ids = realloc(w->cancel_ids, cap * sizeof(*ids))) == NULL)
			return;
		w->cancel_ids = ids;
		w->cap_cancels = cap;
	}
	if ((w->cancel_ids[w->n_cancels] = strdup(exec_id)) == NULL)
		return;
	troupe__item_ref__init(&w->cancels[w->n_cancels]);
	w->cancels[w->n_cancels].index = index;
	w->cancels[w->n_cancels].attempt = attempt;
	w->n_cancels++;
}

int
worker_reply_fill(worker *w, bool with_shards, worker_reply *b)
{
	size_t n = with_shards ? w->n_running : 0;

	memset(b, 0, sizeof(*b));
	if ((b->shards = calloc(n + 1, sizeof(*b->shards))) == NULL ||
	    (b->sp = calloc(n + 1, sizeof(*b->sp))) == NULL ||
	    (b->items = calloc(n + 1, sizeof(*b->items))) == NULL ||
	    (b->ip = calloc(n + 1, sizeof(*b->ip))) == NULL ||
	    (b->cp = calloc(w->n_cancels + 1, sizeof(*b->cp))) == NULL) {
		worker_reply_free(b);
		return TROUPE_ENOMEM;
	}
	for (size_t i = 0; i < w->n_cancels; i++) {
		w->cancels[i].execution = w->cancel_ids[i];
		b->cp[i] = &w->cancels[i];
	}
	b->n_cancels = w->n_cancels;
	/* One shard per execution, its items contiguous in ip[]. */
	for (size_t i = 0; i < n; i++) {
		assignment *a = &w->running[i];
		size_t      k;

		if (a->sent)
			continue;
		for (k = 0; k < b->n_shards; k++)
			if (strcmp(b->shards[k].execution, a->e->id) == 0)
				break;
		if (k == b->n_shards) {
			Troupe__Shard *sh = &b->shards[b->n_shards++];

			troupe__shard__init(sh);
			sh->execution = a->e->id;
			sh->task = a->e->task;
			if (a->e->env_key != NULL)
				sh->env_key = (char *)a->e->env_key;
			b->sp[k] = sh;
		}
	}
	n = 0;
	for (size_t k = 0; k < b->n_shards; k++) {
		b->shards[k].items = &b->ip[n];
		for (size_t i = 0; i < w->n_running; i++) {
			assignment *a = &w->running[i];

			if (a->sent ||
			    strcmp(a->e->id, b->shards[k].execution) != 0)
				continue;
			troupe__work_item__init(&b->items[n]);
			b->items[n].index = a->index;
			b->items[n].attempt = a->attempt;
			b->items[n].input = exec_item_input(a->e, a->index);
			b->ip[n] = &b->items[n];
			n++;
			b->shards[k].n_items++;
		}
	}
	return 0;
}

void
worker_reply_sent(worker *w, worker_reply *b)
{
	/* What the reply carried: every unsent assignment (when it carried
	 * shards) and every cancellation. */
	for (size_t i = 0; b->n_shards > 0 && i < w->n_running; i++)
		w->running[i].sent = true;
	assert(b->n_cancels == w->n_cancels);
	for (size_t i = 0; i < w->n_cancels; i++)
		free(w->cancel_ids[i]);
	w->n_cancels = 0;
}

void
worker_reply_free(worker_reply *b)
{
	free(b->shards);
	free(b->sp);
	free(b->items);
	free(b->ip);
	free(b->cp);
	memset(b, 0, sizeof(*b));
}
