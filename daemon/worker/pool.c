/*
 * The worker's actor pool (pool.h has the contract; pool_int.h how its
 * two files share the work): the API, the environments and their FIFO
 * queues of items, the reports handed back to the caller, and placement:
 * which replica of an environment takes the next item (the one with the
 * fewest outstanding) and how many it may hold (POOL_PIPELINE, and what
 * its process may still serve under env.max_items).  The replicas' life
 * (restarts, recycling, giving up) is pool_rep.c's.
 *
 * Async contract: everything runs on the pool's loop thread.  The API is
 * called by the worker daemon (workerd_attempts.c); done runs from here
 * (placement failures, pool_shutdown) and from pool_rep.c's replica
 * callbacks, which libuv calls on the same loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool_int.h"
#include "report.h"
#include "runner.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

/* Environments. */

static pool_env *
pool_env_find(const pool *p, const char *key)
{
	for (pool_env *e = list_first(&p->envs); e != NULL;
	     e = list_next(&p->envs, e))
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* The environment key, created or brought up to date with def. */
static pool_env *
pool_env_put(pool *p, const char *key, const Troupe__ActorEnv *def)
{
	pool_env         *e = pool_env_find(p, key);
	Troupe__ActorEnv *c =
	    (Troupe__ActorEnv *)(void *)troupe_msg_copy(&def->base);

	if (c == NULL)
		return NULL;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    (e->key = strdup(key)) == NULL) {
			free(e);
			troupe__actor_env__free_unpacked(c, NULL);
			return NULL;
		}
		list_init(&e->queue, offsetof(pool_item, node));
		list_prepend(&p->envs, e);
	} else {
		troupe__actor_env__free_unpacked(e->env, NULL);
	}
	/* Replicas started from now on run the newest definition. */
	e->env = c;
	return e;
}

static void
pool_env_free(pool_env *e)
{
	if (e == NULL)
		return;
	assert(e->n_reps == 0);
	if (e->env != NULL)
		troupe__actor_env__free_unpacked(e->env, NULL);
	free(e->key);
	free(e);
}

static bool
pool_listed_env(const pool *p, const char *key)
{
	for (size_t i = 0; i < p->n_last; i++)
		if (strcmp(p->last_keys[i], key) == 0)
			return true;
	return false;
}

void
pool_unlist(pool *p, const char *id)
{
	for (size_t i = 0; i < p->n_last; i++)
		if (strcmp(p->last_ids[i], id) == 0) {
			free(p->last_ids[i]);
			free(p->last_keys[i]);
			p->last_ids[i] = p->last_ids[p->n_last - 1];
			p->last_keys[i] = p->last_keys[p->n_last - 1];
			p->n_last--;
			return;
		}
}

/* Frees the environments nothing refers to any more. */
static void
pool_env_gc(pool *p)
{
	if (p->depth > 0)
		return;
	for (pool_env *e = list_first(&p->envs), *next; e != NULL; e = next) {
		next = list_next(&p->envs, e);
		if (e->n_reps == 0 && e->n_queued == 0 &&
		    !pool_listed_env(p, e->key)) {
			list_remove(&p->envs, e);
			pool_env_free(e);
		}
	}
}

/* Queues. */

void
pool_push(pool_env *e, pool_item *it, bool front)
{
	it->env = e;
	it->rep = NULL;
	if (front)
		list_prepend(&e->queue, it);
	else
		list_append(&e->queue, it);
	e->n_queued++;
}

static pool_item *
pool_pop(pool_env *e)
{
	pool_item *it = list_pop(&e->queue);

	if (it != NULL)
		e->n_queued--;
	return it;
}

/* Takes it (queued) out of e's queue. */
static void
pool_unqueue(pool_env *e, pool_item *it)
{
	list_remove(&e->queue, it);
	e->n_queued--;
}

/* Reports. */

/* Hands it back to the caller with a report (which may be NULL when out
 * of memory: the item is then lost here and the scheduler runs it again
 * once it gives up on this worker). */
void
pool_finish(pool *p, pool_item *it, Troupe__ItemReport *rep)
{
	p->n_items--;
	it->rep = NULL;
	it->env = NULL;
	if (rep == NULL) {
		log_error("out of memory: cannot report %s/%" PRIu64,
		          it->execution, it->item->index);
		return;
	}
	p->done(p->arg, it, rep);
}

Troupe__ItemReport *
pool_report(const pool_item *it)
{
	Troupe__ItemReport *rep =
	    report_new(it->execution, it->item->index, it->item->attempt);

	if (rep != NULL) {
		rep->started_ms = it->started_ms;
		rep->finished_ms = troupe_now_ms();
		if (rep->started_ms == 0)
			rep->started_ms = rep->finished_ms;
	}
	return rep;
}

/* Fails it now as a system failure with msg. */
void
pool_fail(pool *p, pool_item *it, const char *msg)
{
	Troupe__ItemReport *rep = pool_report(it);

	if (rep != NULL) {
		rep->system_failure = true;
		report_set_error(rep, msg, strlen(msg));
	}
	pool_finish(p, it, rep);
}

/* Fails every item queued for e with msg. */
void
pool_fail_queue(pool *p, pool_env *e, const char *msg)
{
	pool_item *it;

	if (e->n_queued > 0)
		log_warn("failing %zu queued items of %s: %s", e->n_queued,
		         e->key, msg);
	while ((it = pool_pop(e)) != NULL)
		pool_fail(p, it, msg);
}

/* Placement. */

/* Whether r takes items: it has a process that is not going or about
 * to (booting counts: its first items wait in its stdin). */
static bool
pool_rep_serving(const pool_rep *r)
{
	return r->proc != NULL && !r->stop_wanted && !r->recycle &&
	       !r->stop_after && !replica_stopping(r->proc);
}

/* How many more items r may be given now: none unless it is serving,
 * and never more than its process may still serve (env.max_items). */
static size_t
pool_rep_room(const pool_rep *r)
{
	uint32_t max = r->env->env->max_items;
	size_t   out, room, depth;

	if (!pool_rep_serving(r))
		return 0;
	out = replica_outstanding(r->proc);
	/* One at a time for its first two items, and for good once it has
	 * written stderr while working on an item after its first (what it
	 * writes during the first may be boot text): then each item's log
	 * holds only its own text (README, "Per-item logs"). */
	depth = replica_served(r->proc) < 2 || replica_logs_while_busy(r->proc)
	            ? 1
	            : POOL_PIPELINE;
	room = out < depth ? depth - out : 0;
	if (max > 0) {
		uint64_t used = replica_served(r->proc) + out;
		uint64_t left = used < max ? max - used : 0;

		if (left < room)
			room = (size_t)left;
	}
	return room;
}

/* Gives r the next queued item of its environment. */
static bool
pool_rep_take(pool *p, pool_rep *r)
{
	pool_env  *e = r->env;
	pool_item *it;
	int        rv;

	if ((it = pool_pop(e)) == NULL)
		return false;
	rv = replica_send(r->proc, it, it->item->input.data,
	                  it->item->input.len, it->timeout_ms);
	if (rv == TROUPE_ESTATE) {
		/* It is on its way out: the item waits for another. */
		pool_push(e, it, true);
		return false;
	}
	if (rv != 0) {
		pool_fail(p, it, "the worker is out of memory");
		return false;
	}
	it->rep = r;
	it->started_ms = troupe_now_ms();
	return true;
}

void
pool_place(pool *p, pool_env *e)
{
	while (!list_empty(&e->queue)) {
		pool_rep *best = NULL;
		size_t    least = 0, floor = SIZE_MAX;

		for (pool_rep *r = list_first(&p->reps); r != NULL;
		     r = list_next(&p->reps, r)) {
			size_t out;

			if (r->env != e || !pool_rep_serving(r))
				continue;
			out = replica_outstanding(r->proc);
			if (out < floor)
				floor = out;
			if (pool_rep_room(r) == 0)
				continue;
			if (best == NULL || out < least) {
				best = r;
				least = out;
			}
		}
		/* One past the least loaded at most: a sibling still on its
		 * first items (or booting) gets the next ones, rather than
		 * see them queued behind a replica that may turn slow. */
		if (best == NULL || least > floor || !pool_rep_take(p, best))
			return;
	}
}

/* The API. */

int
pool_new(uv_loop_t *loop, const pool_opts *o, pool_done_fn done,
         pool_exit_fn exited, void *arg, pool **out)
{
	pool *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (p == NULL)
		return TROUPE_ENOMEM;
	if (o != NULL && o->shim != NULL &&
	    (p->shim = strdup(o->shim)) == NULL) {
		free(p);
		return TROUPE_ENOMEM;
	}
	list_init(&p->envs, offsetof(pool_env, node));
	list_init(&p->reps, offsetof(pool_rep, node));
	p->loop = loop;
	p->user = o != NULL ? o->user : NULL;
	p->max_output = o != NULL ? o->max_output : 0;
	p->stop_grace_ms = o != NULL ? o->stop_grace_ms : 0;
	p->exit_grace_ms = o != NULL ? o->exit_grace_ms : 0;
	p->done = done;
	p->exited = exited;
	p->arg = arg;
	*out = p;
	return 0;
}

static void
pool_forget_last(pool *p)
{
	for (size_t i = 0; i < p->n_last; i++) {
		free(p->last_ids[i]);
		free(p->last_keys[i]);
	}
	free(p->last_ids);
	free(p->last_keys);
	p->last_ids = p->last_keys = NULL;
	p->n_last = 0;
}

void
pool_free(pool *p)
{
	if (p == NULL)
		return;
	if (p->n_procs > 0 || p->n_items > 0)
		log_error("pool freed with %zu replicas and %zu items left",
		          p->n_procs, p->n_items);
	while (!list_empty(&p->reps))
		pool_rep_unlink(p, list_first(&p->reps));
	for (pool_env *e; (e = list_pop(&p->envs)) != NULL;)
		pool_env_free(e);
	pool_forget_last(p);
	free(p->st);
	free(p->stp);
	for (size_t i = 0; i < p->n_tally; i++) {
		free(p->tally[i].env_key);
		free(p->tally[i].event);
	}
	free(p->tally);
	free(p->tallyp);
	free(p->shim);
	free(p);
}

void
pool_tally_add(pool *p, const char *key, const char *event)
{
	Troupe__ReplicaTally *t;

	for (size_t i = 0; i < p->n_tally; i++)
		if (strcmp(p->tally[i].env_key, key) == 0 &&
		    strcmp(p->tally[i].event, event) == 0) {
			p->tally[i].total++;
			return;
		}
	if (p->n_tally == p->tally_cap) {
		size_t                cap = p->tally_cap ? p->tally_cap * 2 : 8;
		Troupe__ReplicaTally *nt = realloc(p->tally, cap * sizeof(*nt));
		Troupe__ReplicaTally **np;

		if (nt == NULL)
			return;
		p->tally = nt;
		if ((np = realloc(p->tallyp, cap * sizeof(*np))) == NULL)
			return;
		p->tallyp = np;
		p->tally_cap = cap;
	}
	t = &p->tally[p->n_tally];
	troupe__replica_tally__init(t);
	if ((t->env_key = strdup(key)) == NULL ||
	    (t->event = strdup(event)) == NULL) {
		free(t->env_key);
		return;
	}
	t->total = 1;
	p->n_tally++;
}

void
pool_tallies(pool *p, Troupe__ReplicaTally ***out, size_t *n)
{
	/* The array may have moved since the last call. */
	for (size_t i = 0; i < p->n_tally; i++)
		p->tallyp[i] = &p->tally[i];
	*out = p->tallyp;
	*n = p->n_tally;
}

int
pool_start(pool *p, const Troupe__ReplicaStart *rs)
{
	pool_rep *r;
	pool_env *e;

	if (rs->replica_id[0] == '\0' || rs->env_key[0] == '\0' ||
	    rs->env == NULL || rs->env->command[0] == '\0')
		return TROUPE_EINVAL;
	if (p->shutting)
		return TROUPE_ESTATE;
	if ((e = pool_env_put(p, rs->env_key, rs->env)) == NULL)
		return TROUPE_ENOMEM;
	if ((r = pool_rep_find(p, rs->replica_id)) != NULL) {
		/* Told to start what we have: keep it (or bring it back). */
		if (r->stop_wanted && r->proc != NULL) {
			r->stop_wanted = r->stop_after = false;
			r->recycle = true;
		}
		return 0;
	}
	return pool_rep_new(p, e, rs->replica_id, NULL);
}

void
pool_stop(pool *p, const char *id)
{
	pool_rep *r = pool_rep_find(p, id);

	if (r == NULL || r->stop_wanted)
		return;
	log_debug("replica %s of %s: the scheduler stops it", id, r->env->key);
	pool_unlist(p, id);
	r->stop_wanted = true;
	r->recycle = false;
	if (r->proc == NULL)
		return;
	if (replica_busy(r->proc))
		r->stop_after = true;
	else
		replica_stop(r->proc, "the replica was stopped");
}

int
pool_submit(pool *p, const char *env_key, pool_item *it, char *why,
            size_t whylen)
{
	pool_env *e = pool_env_find(p, env_key);

	if (p->shutting) {
		snprintf(why, whylen, "the worker is stopping");
		return TROUPE_ESTATE;
	}
	if (e != NULL && !pool_env_has_usable(p, e, NULL)) {
		/* The scheduler counts the ids we listed last: one of this
		 * environment that its TTL stopped since can come back. */
		for (size_t i = 0; i < p->n_last; i++) {
			if (strcmp(p->last_keys[i], env_key) != 0 ||
			    pool_rep_find(p, p->last_ids[i]) != NULL)
				continue;
			log_debug("replica %s of %s: restarted for new items",
			          p->last_ids[i], env_key);
			if (pool_rep_new(p, e, p->last_ids[i], NULL) == 0)
				break;
		}
	}
	if (e == NULL || !pool_env_has_usable(p, e, NULL)) {
		snprintf(why, whylen, "no replica of %s on this worker",
		         env_key);
		return TROUPE_ENOTFOUND;
	}
	/* The scheduler refuses these; one that slipped through would put
	 * the replica's answers out of step with its items. */
	if (e->env->protocol == TROUPE__PROTOCOL__PROTOCOL_LINES &&
	    it->item->input.len > 0 &&
	    memchr(it->item->input.data, '\n', it->item->input.len) != NULL) {
		snprintf(why, whylen,
		         "the item holds a newline, which the lines protocol "
		         "cannot carry (use --protocol frames)");
		return TROUPE_EINVAL;
	}
	it->started_ms = 0;
	pool_push(e, it, false);
	p->n_items++;
	pool_place(p, e);
	return 0;
}

void
pool_cancel(pool *p, pool_item *it)
{
	pool_rep *r = it->rep;

	if (it->env == NULL)
		return; /* not ours */
	if (r == NULL)
		pool_unqueue(it->env, it);
	else if (replica_cancel(r->proc, it))
		log_debug("replica %s of %s: its current item is cancelled: "
		          "killing it",
		          r->id, r->env->key);
	p->n_items--;
	it->rep = NULL;
	it->env = NULL;
}

void
pool_shutdown(pool *p, const char *why)
{
	if (p->shutting)
		return;
	p->shutting = true;
	p->depth++;
	for (pool_rep *r = list_first(&p->reps); r != NULL;
	     r = list_next(&p->reps, r)) {
		r->stop_wanted = true;
		if (r->proc == NULL)
			continue;
		if (replica_busy(r->proc))
			replica_kill(r->proc, why, false);
		else
			replica_stop(r->proc, why);
	}
	for (pool_env *e = list_first(&p->envs); e != NULL;
	     e = list_next(&p->envs, e))
		pool_fail_queue(p, e, why);
	p->depth--;
}

int
pool_status(pool *p, Troupe__ReplicaStatus ***out, size_t *n)
{
	size_t k = 0, want = 0;
	char **ids = NULL, **keys = NULL;

	*out = NULL;
	*n = 0;
	for (pool_rep *r = list_first(&p->reps); r != NULL;
	     r = list_next(&p->reps, r))
		want++;
	if (want > p->st_cap) {
		Troupe__ReplicaStatus  *st = calloc(want, sizeof(*st));
		Troupe__ReplicaStatus **stp = calloc(want, sizeof(*stp));

		if (st == NULL || stp == NULL) {
			free(st);
			free(stp);
			return TROUPE_ENOMEM;
		}
		free(p->st);
		free(p->stp);
		p->st = st;
		p->stp = stp;
		p->st_cap = want;
	}
	if (want > 0 && ((ids = calloc(want, sizeof(*ids))) == NULL ||
	                 (keys = calloc(want, sizeof(*keys))) == NULL)) {
		free(ids);
		return TROUPE_ENOMEM;
	}
	for (pool_rep *r = list_first(&p->reps); r != NULL;
	     r = list_next(&p->reps, r)) {
		Troupe__ReplicaStatus *s = &p->st[k];

		/* One stopped for good is gone as far as the scheduler is
		 * concerned; one on its way to a restart is still here. */
		if (!pool_rep_usable(r))
			continue;
		if ((ids[k] = strdup(r->id)) == NULL ||
		    (keys[k] = strdup(r->env->key)) == NULL) {
			free(ids[k]);
			break;
		}
		troupe__replica_status__init(s);
		s->replica_id = r->id;
		s->env_key = r->env->key;
		s->pid = (uint32_t)replica_pid(r->proc);
		s->state = replica_state(r->proc);
		s->items_served = r->served;
		s->idle_ms_left = replica_idle_ms_left(r->proc);
		p->stp[k] = s;
		k++;
	}
	pool_forget_last(p);
	p->last_ids = ids;
	p->last_keys = keys;
	p->n_last = k;
	pool_env_gc(p);
	*out = p->stp;
	*n = k;
	return 0;
}

size_t
pool_procs(const pool *p)
{
	return p->n_procs;
}

size_t
pool_items(const pool *p)
{
	return p->n_items;
}
