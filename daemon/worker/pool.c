/*
 * The worker's actor replicas and their queues (see pool.h for the
 * contract).
 *
 * Threading: everything runs on the loop thread.  Replica callbacks
 * (answered, exited) come from libuv callbacks; the pool brings its state
 * to a consistent point before each call of done, which may re-enter the
 * pool.  Environments are freed only from pool_status and never while a
 * callback of ours is under way (depth), so a re-entrant pool_status
 * cannot pull one from under a loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "replica.h"
#include "report.h"
#include "runner.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

/* Deaths in a row without finishing an item before an id is given up. */
#define POOL_MAX_DEATHS 3

/* The most items written ahead to one replica.  A replica works on one at
 * a time; the others wait in its stdin, so that one write and one wakeup
 * serve several items.  Items go to the replica with the fewest
 * outstanding, so a replica holds more than one only when every replica
 * of its environment has one. */
#define POOL_PIPELINE 16

struct pool_env {
	pool_env         *next;
	char             *key;
	Troupe__ActorEnv *env; /* the newest definition, owned */
	pool_item        *head, *tail;
	size_t            n_queued;
	size_t            n_reps;
};

struct pool_rep {
	pool_rep *next;
	pool     *p;
	char     *id;
	pool_env *env;
	replica  *proc; /* NULL: no process (about to go) */
	uint64_t  served;
	unsigned  deaths;      /* in a row, without finishing an item */
	bool      stop_wanted; /* stopped for good: never restarts */
	bool      recycle;     /* restart when the process is gone */
	bool      stop_after;  /* stop once its items are done */
};

struct pool {
	uv_loop_t   *loop;
	char        *shim;
	size_t       max_output;
	unsigned     stop_grace_ms;
	unsigned     exit_grace_ms;
	pool_done_fn done;
	pool_exit_fn exited;
	void        *arg;

	pool_env *envs;
	pool_rep *reps;
	size_t    n_procs;
	size_t    n_items;
	bool      shutting;
	unsigned  depth; /* our callbacks under way */

	/* The ids (and their environments) listed by the last pool_status. */
	char **last_ids, **last_keys;
	size_t n_last;

	/* pool_status's answer. */
	Troupe__ReplicaStatus  *st;
	Troupe__ReplicaStatus **stp;
	size_t                  st_cap;
};

static void pool_place(pool *p, pool_env *e);

/* Environments. */

static pool_env *
pool_env_find(const pool *p, const char *key)
{
	for (pool_env *e = p->envs; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* A deep copy of a (through its wire form: every field then belongs to
 * the copy). */
static Troupe__ActorEnv *
pool_env_copy(const Troupe__ActorEnv *a)
{
	Troupe__ActorEnv *c = NULL;
	uint8_t          *buf = NULL;
	size_t            len = 0;

	if (troupe_pack(&a->base, &buf, &len) == 0)
		c = troupe__actor_env__unpack(NULL, len, buf);
	free(buf);
	return c;
}

/* The environment key, created or brought up to date with def. */
static pool_env *
pool_env_put(pool *p, const char *key, const Troupe__ActorEnv *def)
{
	pool_env         *e = pool_env_find(p, key);
	Troupe__ActorEnv *c = pool_env_copy(def);

	if (c == NULL)
		return NULL;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    (e->key = strdup(key)) == NULL) {
			free(e);
			troupe__actor_env__free_unpacked(c, NULL);
			return NULL;
		}
		e->next = p->envs;
		p->envs = e;
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

/* Takes id off the last list: it must not come back by pool_submit (the
 * scheduler stopped it, or it was given up). */
static void
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
	for (pool_env **pp = &p->envs; *pp != NULL;) {
		pool_env *e = *pp;

		if (e->n_reps == 0 && e->n_queued == 0 &&
		    !pool_listed_env(p, e->key)) {
			*pp = e->next;
			pool_env_free(e);
			continue;
		}
		pp = &e->next;
	}
}

/* Queues. */

static void
pool_push(pool_env *e, pool_item *it, bool front)
{
	it->env = e;
	it->rep = NULL;
	if (front) {
		it->next = e->head;
		e->head = it;
		if (e->tail == NULL)
			e->tail = it;
	} else {
		it->next = NULL;
		if (e->tail != NULL)
			e->tail->next = it;
		else
			e->head = it;
		e->tail = it;
	}
	e->n_queued++;
}

static pool_item *
pool_pop(pool_env *e)
{
	pool_item *it = e->head;

	if (it == NULL)
		return NULL;
	e->head = it->next;
	if (e->head == NULL)
		e->tail = NULL;
	it->next = NULL;
	e->n_queued--;
	return it;
}

static void
pool_unqueue(pool_env *e, pool_item *it)
{
	pool_item *prev = NULL;

	for (pool_item *q = e->head; q != NULL; prev = q, q = q->next) {
		if (q != it)
			continue;
		if (prev != NULL)
			prev->next = q->next;
		else
			e->head = q->next;
		if (e->tail == q)
			e->tail = prev;
		q->next = NULL;
		e->n_queued--;
		return;
	}
}

/* Reports. */

/* Hands it back to the caller with a report (which may be NULL when out
 * of memory: the item is then lost here and the scheduler runs it again
 * once it gives up on this worker). */
static void
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

static Troupe__ItemReport *
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
static void
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
static void
pool_fail_queue(pool *p, pool_env *e, const char *msg)
{
	pool_item *it;

	if (e->n_queued > 0)
		log_warn("failing %zu queued items of %s: %s", e->n_queued,
		         e->key, msg);
	while ((it = pool_pop(e)) != NULL)
		pool_fail(p, it, msg);
}

/* Replicas. */

static pool_rep *
pool_rep_find(const pool *p, const char *id)
{
	for (pool_rep *r = p->reps; r != NULL; r = r->next)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

/* Whether r can take items now or after a restart of its own. */
static bool
pool_rep_usable(const pool_rep *r)
{
	return r->proc != NULL && !r->stop_wanted;
}

static bool
pool_env_has_usable(const pool *p, const pool_env *e, const pool_rep *but)
{
	for (const pool_rep *r = p->reps; r != NULL; r = r->next)
		if (r != but && r->env == e && pool_rep_usable(r))
			return true;
	return false;
}

static void
pool_rep_unlink(pool *p, pool_rep *r)
{
	for (pool_rep **pp = &p->reps; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	r->env->n_reps--;
	free(r->id);
	free(r);
}

static void pool_on_answer(void *arg, replica *proc, void *tag,
                           const replica_result *res);
static void pool_on_exit(void *arg, replica *proc);

/* Starts a process for r. */
static int
pool_rep_spawn(pool *p, pool_rep *r)
{
	replica_conf c = {0};
	int          rv;

	c.id = r->id;
	c.env_key = r->env->key;
	c.env = r->env->env;
	c.shim = p->shim;
	c.max_output = p->max_output;
	c.stop_grace_ms = p->stop_grace_ms;
	c.exit_grace_ms = p->exit_grace_ms;
	if ((rv = replica_start(p->loop, &c, pool_on_answer, pool_on_exit, r,
	                        &r->proc)) != 0) {
		log_error("cannot start replica %s of %s: %s", r->id,
		          r->env->key, troupe_strerror(rv));
		return rv;
	}
	p->n_procs++;
	log_debug("replica %s of %s started (pid %d)", r->id, r->env->key,
	          replica_pid(r->proc));
	return 0;
}

/* A new record for replica id of e, with its process started. */
static int
pool_rep_new(pool *p, pool_env *e, const char *id, pool_rep **out)
{
	pool_rep *r = NULL;
	int       rv;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->id = strdup(id)) == NULL) {
		free(r);
		return TROUPE_ENOMEM;
	}
	r->p = p;
	r->env = e;
	e->n_reps++;
	r->next = p->reps;
	p->reps = r;
	if ((rv = pool_rep_spawn(p, r)) != 0) {
		pool_rep_unlink(p, r);
		return rv;
	}
	if (out != NULL)
		*out = r;
	return 0;
}

/* How many more items r may be given now: none while it is going or
 * about to, and never more than its process may still serve
 * (env.max_items). */
static size_t
pool_rep_room(const pool_rep *r)
{
	uint32_t max = r->env->env->max_items;
	size_t   out, room;

	if (r->proc == NULL || r->stop_wanted || r->recycle || r->stop_after ||
	    replica_stopping(r->proc))
		return 0;
	out = replica_outstanding(r->proc);
	room = out < POOL_PIPELINE ? POOL_PIPELINE - out : 0;
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

/* Places queued items of e on its replicas with room, one at a time to
 * the one with the fewest outstanding. */
static void
pool_place(pool *p, pool_env *e)
{
	while (e->head != NULL) {
		pool_rep *best = NULL;
		size_t    least = 0;

		for (pool_rep *r = p->reps; r != NULL; r = r->next) {
			size_t out;

			if (r->env != e || pool_rep_room(r) == 0)
				continue;
			out = replica_outstanding(r->proc);
			if (best == NULL || out < least) {
				best = r;
				least = out;
			}
		}
		if (best == NULL || !pool_rep_take(p, best))
			return;
	}
}

static void
pool_on_answer(void *arg, replica *proc, void *tag, const replica_result *res)
{
	pool_rep           *r = arg;
	pool               *p = r->p;
	pool_item          *it = tag;
	Troupe__ItemReport *rep = NULL;
	uint32_t            max = r->env->env->max_items;

	p->depth++;
	if (res->unstarted) {
		/* Its replica went before starting it: it costs nothing and
		 * waits for another (pool_on_exit follows and places it). */
		if (p->shutting) {
			pool_fail(p, it, res->error);
		} else {
			pool_push(r->env, it, true);
			it->started_ms = 0;
		}
		p->depth--;
		return;
	}
	if (res->replied) {
		r->served++;
		r->deaths = 0;
	}
	if (it != NULL && (rep = pool_report(it)) != NULL) {
		/* It waited behind others in the replica's stdin: it started
		 * when it became the current one. */
		if (res->ran_ms > 0 &&
		    rep->finished_ms - (int64_t)res->ran_ms > rep->started_ms)
			rep->started_ms =
			    rep->finished_ms - (int64_t)res->ran_ms;
		if (res->ok) {
			rep->state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
			if (res->len > 0 &&
			    (rep->output.data = malloc(res->len)) != NULL) {
				memcpy(rep->output.data, res->output, res->len);
				rep->output.len = res->len;
			} else if (res->len > 0) {
				report_system_failure(rep, "the worker is out "
				                           "of memory");
			}
		} else {
			rep->system_failure = res->system_failure;
			rep->exit_code = res->exit_code;
			report_set_error(rep, res->error, strlen(res->error));
		}
	}
	/* What the replica does next, once nothing is outstanding. */
	if (replica_stopping(proc)) {
		/* Going: pool_on_exit decides. */
	} else if (p->shutting || r->stop_wanted || r->stop_after) {
		if (!replica_busy(proc)) {
			r->stop_wanted = true;
			replica_stop(proc, "the replica was stopped");
		}
	} else if (r->recycle || (max > 0 && replica_served(proc) >= max)) {
		if (!replica_busy(proc)) {
			log_debug("replica %s served %" PRIu64
			          " items: recycling it",
			          r->id, replica_served(proc));
			r->recycle = true;
			replica_stop(proc, "the replica was recycled");
		}
	} else {
		pool_place(p, r->env);
	}
	if (it != NULL)
		pool_finish(p, it, rep);
	p->depth--;
}

static void
pool_on_exit(void *arg, replica *proc)
{
	pool_rep *r = arg;
	pool     *p = r->p;
	pool_env *e = r->env;
	bool      crashed = !replica_requested(proc) && !replica_expired(proc);
	char   how[64], tail[RUNNER_STDERR_TAIL], msg[RUNNER_STDERR_TAIL + 256];
	size_t n;

	p->depth++;
	p->n_procs--;
	r->proc = NULL;
	replica_describe_exit(proc, how, sizeof(how));
	n = replica_stderr_tail(proc, tail, sizeof(tail));
	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
		tail[--n] = '\0';
	if (crashed) {
		r->deaths++;
		log_warn("replica %s of %s (pid %d) died (%s)%s%.200s", r->id,
		         e->key, replica_pid(proc), how,
		         tail[0] != '\0' ? ": " : "", tail);
	}
	if (p->shutting || r->stop_wanted) {
		pool_rep_unlink(p, r);
	} else if (crashed && r->deaths >= POOL_MAX_DEATHS) {
		snprintf(msg, sizeof(msg),
		         "replica %s of %s died %u times in a row without "
		         "finishing an item (last: %s)%s%s",
		         r->id, e->key, r->deaths, how,
		         tail[0] != '\0' ? ": " : "", tail);
		log_warn("%.300s; giving it up", msg);
		pool_unlist(p, r->id);
		pool_rep_unlink(p, r);
		if (!pool_env_has_usable(p, e, NULL))
			pool_fail_queue(p, e, msg);
	} else if (r->recycle || e->n_queued > 0) {
		r->recycle = false;
		if (pool_rep_spawn(p, r) != 0)
			pool_rep_unlink(p, r);
		else
			pool_place(p, e);
	} else {
		log_debug("replica %s of %s is gone (%s)", r->id, e->key,
		          replica_expired(proc) ? "idle past its TTL" : how);
		pool_rep_unlink(p, r);
	}
	/* Items that came back unstarted go to the others. */
	if (!p->shutting)
		pool_place(p, e);
	/* Nothing may wait on a replica that is not coming back. */
	if (e->n_queued > 0 && !pool_env_has_usable(p, e, NULL)) {
		snprintf(msg, sizeof(msg),
		         "no replica of %s left on this worker (last: %s)%s%s",
		         e->key, how, tail[0] != '\0' ? ": " : "", tail);
		pool_fail_queue(p, e, msg);
	}
	p->depth--;
	if (p->exited != NULL)
		p->exited(p->arg);
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
	p->loop = loop;
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
	while (p->reps != NULL)
		pool_rep_unlink(p, p->reps);
	while (p->envs != NULL) {
		pool_env *e = p->envs;

		p->envs = e->next;
		pool_env_free(e);
	}
	pool_forget_last(p);
	free(p->st);
	free(p->stp);
	free(p->shim);
	free(p);
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
	for (pool_rep *r = p->reps; r != NULL; r = r->next) {
		r->stop_wanted = true;
		if (r->proc == NULL)
			continue;
		if (replica_busy(r->proc))
			replica_kill(r->proc, why, false);
		else
			replica_stop(r->proc, why);
	}
	for (pool_env *e = p->envs; e != NULL; e = e->next)
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
	for (pool_rep *r = p->reps; r != NULL; r = r->next)
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
	for (pool_rep *r = p->reps; r != NULL; r = r->next) {
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
