/*
 * Actor environments and the placement of their replicas (see actors.h
 * for the contract; docs/design.md, "Actor semantics").  Runs on the
 * scheduler's loop thread only.
 *
 * The scheduler decides where replicas live and counts them, so an
 * environment never has more than replica_count alive in the cluster; the
 * workers run them, stop idle ones when their TTL expires, and list the
 * replicas they have in every Pull, which is how the scheduler learns that
 * one is gone.  A replica holds one slot of its worker while it lives, as
 * an actor holds its resources in Ray.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "actors.h"
#include "troupe/env.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

static void actors_unlink(worker *w, replica **pp);
static void actors_stop(worker *w, const char *id);

/* FNV-1a, 64 bits: the key of an ad hoc environment. */
static uint64_t
actors_hash(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t
actors_adhoc_hash(const Troupe__ActorEnv *a, const Troupe__TaskSpec *task)
{
	uint64_t    h = 14695981039346656037ull;
	uint32_t    proto = (uint32_t)a->protocol;
	uint64_t    mem = a->resources ? a->resources->mem_bytes : 0;
	uint32_t    cpu = a->resources ? a->resources->cpu_milli : 0;
	const char *cmd = a->command[0] != '\0' ? a->command : task->command;

	h = actors_hash(h, cmd, strlen(cmd) + 1);
	h = actors_hash(h, &proto, sizeof(proto));
	h = actors_hash(h, &mem, sizeof(mem));
	h = actors_hash(h, &cpu, sizeof(cpu));
	for (size_t i = 0; i < task->n_env; i++)
		h = actors_hash(h, task->env[i], strlen(task->env[i]) + 1);
	for (size_t i = 0; i < a->n_env; i++)
		h = actors_hash(h, a->env[i], strlen(a->env[i]) + 1);
	return h;
}

static actor_env *
actors_find(actors *a, const char *key)
{
	for (actor_env *e = a->envs; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* A registered environment replaced (`troupe actor create --replace`)
 * with another command, protocol, resources, env or max_items: its live
 * replicas run the old definition, so they are stopped, and replicas of
 * the new one start as they go.  (An ad hoc key is a hash of these, so
 * only a registered name sees them change.) */
static void
actors_retire_changed(actors *s, actor_env *e, const Troupe__ActorEnv *def)
{
	Troupe__TaskSpec none = TROUPE__TASK_SPEC__INIT;

	if (actors_adhoc_hash(e->env, &none) == actors_adhoc_hash(def, &none) &&
	    e->env->max_items == def->max_items)
		return;
	for (worker *w = list_first(s->workers); w != NULL;
	     w = list_next(s->workers, w))
		for (replica *r = w->replicas; r != NULL; r = r->next)
			if (r->env == e && !r->stopping && r->announced) {
				log_info(
				    "replica %s of %s on %s: its "
				    "environment was replaced; stopping it",
				    r->id, e->key, w->name);
				r->stopping = true;
				actors_stop(w, r->id);
			}
}

/* Makes (or refreshes) the in-memory environment key from a, taking the
 * command and environment from task where a has none. */
static int
actors_put(actors *as, const char *key, const char *pname,
           const Troupe__ActorEnv *a, const Troupe__TaskSpec *task,
           actor_env **out)
{
	Troupe__ActorEnv  copy = *a;
	project          *proj = projects_get(as->projects, pname);
	Troupe__ActorEnv *owned = NULL;
	actor_env        *e = actors_find(as, key);
	char            **env = NULL;
	char *const      *sets[2] = {task->env, a->env};
	size_t            sizes[2] = {task->n_env, a->n_env}, n_env = 0;

	if (copy.command[0] == '\0')
		copy.command = task->command;
	if (copy.ttl_seconds == 0)
		copy.ttl_seconds = ACTORS_DEFAULT_TTL_S;
	if (proj == NULL)
		return TROUPE_ENOMEM;
	copy.project = proj->name;
	if (task->n_env > 0) {
		/* The task's environment, then the actor's own. */
		if (troupe_env_merge(sets, sizes, 2, &env, &n_env) != 0)
			return TROUPE_ENOMEM;
		copy.env = env;
		copy.n_env = n_env;
	}
	owned = (Troupe__ActorEnv *)troupe_msg_copy(&copy.base);
	free(env);
	if (owned == NULL)
		return TROUPE_ENOMEM;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			troupe__actor_env__free_unpacked(owned, NULL);
			return TROUPE_ENOMEM;
		}
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->proj = proj;
		e->next = as->envs;
		as->envs = e;
	} else {
		actors_retire_changed(as, e, owned);
		troupe__actor_env__free_unpacked(e->env, NULL);
	}
	/* New replicas start from the newest definition. */
	e->env = owned;
	*out = e;
	return 0;
}

int
actors_resolve(actors *s, const Troupe__ExecutionSpec *sp,
               const Troupe__TaskSpec *task, actor_env **out, char *err,
               size_t errlen)
{
	const char *name = sp->actor[0] != '\0' ? sp->actor : task->actor;
	const char *project =
	    sp->project[0] != '\0' ? sp->project : STORE_DEFAULT_PROJECT;
	Troupe__ActorEnv *reg = NULL;
	char              key[STORE_KEY_MAX];
	int               rv;

	*out = NULL;
	if (sp->adhoc_actor != NULL && sp->actor[0] != '\0') {
		snprintf(err, errlen,
		         "give either --actor or --replicas/--ttl, not both");
		return TROUPE_EINVAL;
	}
	if (sp->adhoc_actor != NULL) {
		const Troupe__ActorEnv *a = sp->adhoc_actor;

		if (a->replica_count == 0 || a->replica_count > 100000) {
			snprintf(err, errlen,
			         "replicas must be 1..100000, not %u",
			         a->replica_count);
			return TROUPE_EINVAL;
		}
		/* Projects never share replicas: another project's ad hoc
		 * environment of the same command is another one. */
		snprintf(key, sizeof(key), "adhoc-%016" PRIx64,
		         strcmp(project, STORE_DEFAULT_PROJECT) == 0
		             ? actors_adhoc_hash(a, task)
		             : actors_hash(actors_adhoc_hash(a, task), project,
		                           strlen(project) + 1));
		return actors_put(s, key, project, a, task, out);
	}
	if (name[0] == '\0')
		return 0;
	if (names_check("actor name", name, err, errlen) != 0)
		return TROUPE_EINVAL;
	store_key(project, name, key, sizeof(key));
	rv = store_get_actor(s->st, key, &reg);
	if (rv == TROUPE_ENOTFOUND)
		snprintf(
		    err, errlen,
		    "no actor environment '%s' (create it with `troupe actor "
		    "create`)",
		    name);
	else if (rv != 0)
		snprintf(err, errlen, "cannot read actor %s: %s", name,
		         troupe_strerror(rv));
	if (rv != 0)
		return rv;
	rv = actors_put(s, key, project, reg, task, out);
	troupe__actor_env__free_unpacked(reg, NULL);
	return rv;
}

uint32_t
actors_used_slots(const worker *w)
{
	return w->n_replicas + w->n_proc;
}

static uint32_t
actors_replicas_on(const worker *w, const actor_env *env)
{
	uint32_t n = 0;

	/* One being stopped takes no more items. */
	for (const replica *r = w->replicas; r != NULL; r = r->next)
		if (r->env == env && !r->stopping)
			n++;
	return n;
}

/* Whether w's declared capacity has room for one more replica of env. */
bool
actors_resources_fit(const worker *w, const Troupe__Resources *want)
{
	uint64_t cpu = 0, mem = 0;

	if (want == NULL || (want->cpu_milli == 0 && want->mem_bytes == 0))
		return true;
	/* What its replicas hold while they live, and what its items run as
	 * processes asked for. */
	for (const replica *r = w->replicas; r != NULL; r = r->next)
		if (r->env->env->resources != NULL) {
			cpu += r->env->env->resources->cpu_milli;
			mem += r->env->env->resources->mem_bytes;
		}
	for (size_t i = 0; i < w->n_running; i++) {
		const exec *e = w->running[i].e;
		if (e->env == NULL && e->task->resources != NULL) {
			cpu += e->task->resources->cpu_milli;
			mem += e->task->resources->mem_bytes;
		}
	}
	/* A worker that declared no capacity for a resource is not limited
	 * by it. */
	if (w->cpu_milli > 0 && cpu + want->cpu_milli > w->cpu_milli)
		return false;
	if (w->mem_bytes > 0 && mem + want->mem_bytes > w->mem_bytes)
		return false;
	return true;
}

static bool
actors_fits(const worker *w, const actor_env *env)
{
	return actors_used_slots(w) < w->slots &&
	       actors_resources_fit(w, env->env->resources);
}

static void
actors_stop(worker *w, const char *id)
{
	char **stops = realloc(w->stops, (w->n_stops + 1) * sizeof(*stops));

	if (stops == NULL)
		return; /* asked again at the next dispatch */
	w->stops = stops;
	if ((stops[w->n_stops] = strdup(id)) != NULL)
		w->n_stops++;
}

/* A replica left: it was asked to stop ("stopped"), went on its own
 * ("exited": its TTL, its item budget, a crash), or went with its worker
 * ("worker_lost"). */
static void
actors_count_exit(const replica *r, const char *cause)
{
	char labels[256];

	metrics_add(M_REPLICA_EXITS,
	            metrics_labels(labels, sizeof(labels), "environment",
	                           r->env->key, "cause", cause, NULL),
	            1);
}

/* Counts into the metrics what is new in the worker's replica tallies
 * since its last Pull: the totals only grow, so a Pull lost on the way
 * loses nothing, and one that repeats counts nothing twice. */
static void
actors_count_tallies(worker *w, const Troupe__PullRequest *in)
{
	char labels[320];

	for (size_t i = 0; i < in->n_replica_tallies; i++) {
		const Troupe__ReplicaTally *t = in->replica_tallies[i];
		worker_tally               *k = NULL;
		uint64_t                    was = 0;

		for (size_t j = 0; j < w->n_tallies && k == NULL; j++)
			if (strcmp(w->tallies[j].key, t->env_key) == 0 &&
			    strcmp(w->tallies[j].event, t->event) == 0)
				k = &w->tallies[j];
		if (k == NULL) {
			worker_tally *v = realloc(
			    w->tallies, (w->n_tallies + 1) * sizeof(*v));

			if (v == NULL)
				return; /* counted at the next Pull */
			w->tallies = v;
			k = &v[w->n_tallies];
			k->key = strdup(t->env_key);
			k->event = strdup(t->event);
			k->total = 0;
			if (k->key == NULL || k->event == NULL) {
				free(k->key);
				free(k->event);
				return;
			}
			w->n_tallies++;
		}
		was = k->total;
		if (t->total <= was)
			continue;
		k->total = t->total;
		if (strcmp(t->event, "start") == 0)
			metrics_add(M_REPLICA_PROC_STARTS,
			            metrics_labels(labels, sizeof(labels),
			                           "environment", t->env_key,
			                           NULL),
			            (double)(t->total - was));
		else
			metrics_add(M_REPLICA_PROC_EXITS,
			            metrics_labels(labels, sizeof(labels),
			                           "environment", t->env_key,
			                           "cause", t->event, NULL),
			            (double)(t->total - was));
	}
}

void
actors_reconcile(actors *s, worker *w, const Troupe__PullRequest *in)
{
	actors_count_tallies(w, in);
	/* Ours that the worker no longer lists are gone (TTL, recycled,
	 * crashed and given up), unless not yet announced to it. */
	for (replica **pp = &w->replicas; *pp != NULL;) {
		replica                     *r = *pp;
		const Troupe__ReplicaStatus *st = NULL;

		for (size_t i = 0; i < in->n_replicas && st == NULL; i++)
			if (strcmp(in->replicas[i]->replica_id, r->id) == 0)
				st = in->replicas[i];
		if (st == NULL && r->announced) {
			log_debug("replica %s of %s on %s is gone", r->id,
			          r->env->key, w->name);
			actors_count_exit(r,
			                  r->stopping ? "stopped" : "exited");
			actors_unlink(w, pp);
			continue;
		}
		if (st != NULL) {
			r->pid = st->pid;
			r->state = st->state;
			r->items_served = st->items_served;
			r->idle_ms_left = st->idle_ms_left;
		}
		pp = &r->next;
	}
	/* Theirs that we do not know (we restarted, or they re-registered):
	 * adopt those of known environments within the count, stop others. */
	for (size_t i = 0; i < in->n_replicas; i++) {
		const Troupe__ReplicaStatus *st = in->replicas[i];
		actor_env                   *env = actors_find(s, st->env_key);
		replica                     *r;
		bool                         known = false;

		for (r = w->replicas; r != NULL && !known; r = r->next)
			known = strcmp(r->id, st->replica_id) == 0;
		if (known)
			continue;
		if (env == NULL || env->n_replicas >= env->env->replica_count ||
		    !project_may_replicate(env->proj) ||
		    (r = calloc(1, sizeof(*r))) == NULL) {
			actors_stop(w, st->replica_id);
			continue;
		}
		snprintf(r->id, sizeof(r->id), "%s", st->replica_id);
		r->env = env;
		r->pid = st->pid;
		r->state = st->state;
		r->items_served = st->items_served;
		r->idle_ms_left = st->idle_ms_left;
		r->announced = true;
		r->next = w->replicas;
		w->replicas = r;
		w->n_replicas++;
		env->n_replicas++;
		env->proj->replicas++;
	}
}

void
actors_evict_idle(worker *w, const actor_env *keep, uint32_t want)
{
	uint32_t stopping = 0;

	for (replica *r = w->replicas; r != NULL; r = r->next)
		stopping += r->stopping;
	/* Slots already on their way count against what is wanted. */
	while (stopping < want) {
		replica *victim = NULL;

		for (replica *r = w->replicas; r != NULL; r = r->next) {
			if (r->stopping || r->env == keep || !r->announced ||
			    r->state == TROUPE__REPLICA_STATE__REPLICA_BUSY ||
			    worker_inflight(w, r->env) > 0)
				continue;
			if (victim == NULL ||
			    r->idle_ms_left < victim->idle_ms_left)
				victim = r;
		}
		if (victim == NULL)
			return;
		log_debug("replica %s of %s on %s yields its slot", victim->id,
		          victim->env->key, w->name);
		victim->stopping = true;
		actors_stop(w, victim->id);
		stopping++;
	}
}

static bool
actors_struck_out(const worker *w, const actor_env *env, int64_t now)
{
	const worker_env *k = worker_env_of((worker *)w, env, false);

	return k != NULL && k->until_ms > now;
}

bool
actors_note_result(worker *w, const actor_env *env, bool system_failure)
{
	worker_env *k = worker_env_of(w, env, system_failure);

	if (k == NULL)
		return false; /* no strikes, or no memory: placement worse */
	if (!system_failure) {
		k->strikes = 0;
		return false;
	}
	if (++k->strikes < ACTORS_STRIKES_OUT || k->until_ms > troupe_now_ms())
		return false;
	k->until_ms = troupe_now_ms() + ACTORS_STRIKE_OUT_MS;
	k->strikes = 0;
	log_warn("worker %s: %d items of %s in a row failed there (replicas "
	         "dying?); its items and replicas go to other workers for "
	         "%d s",
	         w->name, ACTORS_STRIKES_OUT, env->key,
	         ACTORS_STRIKE_OUT_MS / 1000);
	/* Its replicas there, if any still live, free their places in the
	 * count for replicas elsewhere. */
	for (replica *r = w->replicas; r != NULL; r = r->next)
		if (r->env == env && !r->stopping && r->announced) {
			r->stopping = true;
			actors_stop(w, r->id);
		}
	return true;
}

/* Whether env should stay off w for now: struck out there, while some
 * other ready worker is not. */
static bool
actors_avoid(const actors *s, const worker *w, const actor_env *env)
{
	int64_t now = troupe_now_ms();

	if (!actors_struck_out(w, env, now))
		return false;
	for (const worker *o = list_first(s->workers); o != NULL;
	     o = list_next(s->workers, o))
		if (o != w && o->state == TROUPE__WORKER_STATE__WORKER_READY &&
		    !actors_struck_out(o, env, now))
			return true;
	return false; /* nowhere better: keep trying here */
}

/* Items a replica of env may hold: --actor-prefetch, but no more than its
 * share of what e still has pending, so the end of a map spreads over
 * every replica instead of queueing behind the first worker's (the
 * prefetch trap of Celery's multiplier). */
static uint32_t
actors_prefetch(const actors *s, const actor_env *env, const exec *e)
{
	uint32_t n = env->env->replica_count > 0 ? env->env->replica_count : 1;
	uint64_t share = e->n_pending / n + 1;

	return share < s->prefetch ? (uint32_t)share : s->prefetch;
}

bool
actors_make_room(actors *s, worker *w, actor_env *env, const exec *e)
{
	uint32_t inflight = worker_inflight(w, env);
	uint32_t here = actors_replicas_on(w, env);
	bool     start = env->n_replicas < env->env->replica_count &&
	             project_may_replicate(env->proj) && actors_fits(w, env);
	replica *r;

	if (actors_avoid(s, w, env))
		return false;
	/* A replica here without an item takes it. */
	if (inflight < here)
		return true;
	/* Then one more replica here, up to the count, so work spreads over
	 * replicas before it queues behind them; but not while another
	 * worker that could take one has fewer of them (replicas spread over
	 * the workers with room, as their Pulls come). */
	for (const worker *o = list_first(s->workers); start && o != NULL;
	     o = list_next(s->workers, o))
		if (o != w && o->state == TROUPE__WORKER_STATE__WORKER_READY &&
		    actors_replicas_on(o, env) < here && actors_fits(o, env))
			start = false;
	if (!start) {
		/* Each replica gets `prefetch` items at a time, so the next
		 * one already waits on its worker when it finishes one: no
		 * replica idles for a round trip to the scheduler. */
		if (inflight < here * actors_prefetch(s, env, e))
			return true;
		if (env->n_replicas < env->env->replica_count &&
		    !actors_fits(w, env))
			actors_evict_idle(
			    w, env, env->env->replica_count - env->n_replicas);
		return false;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return false;
	snprintf(r->id, sizeof(r->id), "r-%" PRIu64, ++s->replica_seq);
	r->env = env;
	r->state = TROUPE__REPLICA_STATE__REPLICA_BOOTING;
	r->next = w->replicas;
	w->replicas = r;
	w->n_replicas++;
	env->n_replicas++;
	env->proj->replicas++;
	log_debug("replica %s of %s placed on %s", r->id, env->key, w->name);
	metrics_add(
	    M_REPLICA_STARTS,
	    metrics_labels((char[200]){0}, 200, "environment", env->key, NULL),
	    1);
	return true;
}

static void
actors_unlink(worker *w, replica **pp)
{
	replica *r = *pp;

	*pp = r->next;
	w->n_replicas--;
	r->env->n_replicas--;
	r->env->proj->replicas--;
	free(r);
}

void
actors_drain(worker *w)
{
	for (replica *r = w->replicas; r != NULL; r = r->next)
		if (!r->stopping && r->announced &&
		    worker_inflight(w, r->env) == 0) {
			r->stopping = true;
			actors_stop(w, r->id);
		}
}

void
actors_drop_worker(worker *w)
{
	while (w->replicas != NULL) {
		if (w->replicas->announced)
			actors_count_exit(w->replicas, "worker_lost");
		actors_unlink(w, &w->replicas);
	}
	for (size_t i = 0; i < w->n_stops; i++)
		free(w->stops[i]);
	free(w->stops);
	w->stops = NULL;
	w->n_stops = 0;
}

/* ListActors: every registered environment and every ad hoc one in
 * memory, each with its live replicas. */
typedef struct actors_acc {
	Troupe__ActorStatus **v;
	size_t                n, cap;
} actors_acc;

static Troupe__ActorStatus *
actors_acc_add(actors_acc *a, const char *key, Troupe__ActorEnv *env,
               bool owned_env)
{
	Troupe__ActorStatus *st;

	if (a->n == a->cap) {
		Troupe__ActorStatus **v =
		    grow_array(a->v, &a->cap, sizeof(*v), 16);

		if (v == NULL)
			return NULL;
		a->v = v;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	troupe__actor_status__init(st);
	st->key = strdup(key);
	/* Registered ones come from the store (owned); in-memory ones are
	 * borrowed and must not be freed: mark those by a NULL key copy. */
	st->env = env;
	if (!owned_env)
		st->env = (Troupe__ActorEnv *)troupe_msg_copy(&env->base);
	a->v[a->n++] = st;
	return st;
}

/* Whether an environment of project p (a row's: "" is the default)
 * is listed for `project` (NULL: every project). */
static bool
actors_listed(const char *p, const char *project)
{
	if (project == NULL)
		return true;
	if (p == NULL || p[0] == '\0')
		p = STORE_DEFAULT_PROJECT;
	return strcmp(p, project) == 0;
}

typedef struct actors_list_ctx {
	actors_acc *acc;
	const char *project;
} actors_list_ctx;

static int
actors_store_cb(void *arg, Troupe__ActorEnv *env)
{
	actors_list_ctx *c = arg;
	char             key[STORE_KEY_MAX];

	if (!actors_listed(env->project, c->project)) {
		troupe__actor_env__free_unpacked(env, NULL);
		return 0;
	}
	store_key(env->project, env->name, key, sizeof(key));
	if (actors_acc_add(c->acc, key, env, true) == NULL) {
		troupe__actor_env__free_unpacked(env, NULL);
		return TROUPE_ENOMEM;
	}
	return 0;
}

int
actors_list(actors *s, Troupe__ListActorsReply *rep, const char *only,
            const char *project)
{
	actors_acc      a = {0};
	actors_list_ctx ctx = {&a, project};
	int             rv = store_list_actors(s->st, actors_store_cb, &ctx);

	for (actor_env *e = s->envs; rv == 0 && e != NULL; e = e->next) {
		bool seen = false;

		if (!actors_listed(e->proj->name, project))
			continue;
		for (size_t i = 0; i < a.n && !seen; i++)
			seen = strcmp(a.v[i]->key, e->key) == 0;
		if (!seen && actors_acc_add(&a, e->key, e->env, false) == NULL)
			rv = TROUPE_ENOMEM;
	}
	for (size_t i = 0; rv == 0 && i < a.n; i++) {
		Troupe__ActorStatus *st = a.v[i];
		actor_env           *env = actors_find(s, st->key);
		size_t               n = env ? env->n_replicas : 0, k = 0;

		if (n == 0)
			continue;
		st->replicas = calloc(n, sizeof(*st->replicas));
		if (st->replicas == NULL) {
			rv = TROUPE_ENOMEM;
			break;
		}
		for (const worker *w = list_first(s->workers); w != NULL;
		     w = list_next(s->workers, w))
			for (replica *r = w->replicas; r != NULL && k < n;
			     r = r->next) {
				Troupe__ReplicaInfo *ri;
				if (r->env != env ||
				    (ri = calloc(1, sizeof(*ri))) == NULL)
					continue;
				troupe__replica_info__init(ri);
				ri->worker = strdup(w->name);
				ri->pid = r->pid;
				ri->state = r->state;
				ri->items_served = r->items_served;
				ri->idle_ms_left = r->idle_ms_left;
				st->replicas[k++] = ri;
			}
		st->n_replicas = k;
	}
	if (only != NULL) {
		/* GetActor: keep one. */
		for (size_t i = 0; i < a.n; i++)
			if (strcmp(a.v[i]->key, only) != 0) {
				troupe__actor_status__free_unpacked(a.v[i],
				                                    NULL);
				a.v[i--] = a.v[--a.n];
			}
	}
	rep->actors = a.v;
	rep->n_actors = a.n;
	return rv;
}

void
actors_list_free(Troupe__ListActorsReply *rep)
{
	/* Every piece was malloc'd the way protobuf-c's default allocator
	 * does, so free_unpacked releases each status whole. */
	for (size_t i = 0; i < rep->n_actors; i++)
		troupe__actor_status__free_unpacked(rep->actors[i], NULL);
	free(rep->actors);
	rep->actors = NULL;
	rep->n_actors = 0;
}

void
actors_free_all(actors *s)
{
	while (s->envs != NULL) {
		actor_env *e = s->envs;
		s->envs = e->next;
		troupe__actor_env__free_unpacked(e->env, NULL);
		free(e);
	}
}

int
actors_bind(exec *e, actor_env *env)
{
	e->env = env;
	e->env_key = env != NULL ? env->key : NULL;
	/* `--actor NAME` alone: the execution runs the environment's command,
	 * and says so (the unpacked empty string is protobuf-c's shared
	 * default, never freed, so it is simply replaced). */
	if (env != NULL && e->task->command[0] == '\0') {
		char *cmd = strdup(env->env->command);
		if (cmd == NULL)
			return TROUPE_ENOMEM;
		e->task->command = cmd;
	}
	return 0;
}

bool
actors_have_news(const worker *w)
{
	for (const replica *r = w->replicas; r != NULL; r = r->next)
		if (!r->announced)
			return true;
	return w->n_stops > 0;
}

int
actors_reply_fill(worker *w, Troupe__PullReply *rep, actors_reply *b)
{
	size_t n = 0;

	memset(b, 0, sizeof(*b));
	for (replica *r = w->replicas; r != NULL; r = r->next)
		n += !r->announced;
	if (n > 0 && ((b->starts = calloc(n, sizeof(*b->starts))) == NULL ||
	              (b->stp = calloc(n, sizeof(*b->stp))) == NULL)) {
		actors_reply_free(b);
		return TROUPE_ENOMEM;
	}
	for (replica *r = w->replicas; r != NULL; r = r->next) {
		Troupe__ReplicaStart *st;

		if (r->announced)
			continue;
		st = &b->starts[b->n_starts];
		troupe__replica_start__init(st);
		st->replica_id = r->id;
		st->env_key = r->env->key;
		st->env = r->env->env;
		b->stp[b->n_starts++] = st;
	}
	rep->start_replicas = b->stp;
	rep->n_start_replicas = b->n_starts;
	rep->stop_replicas = w->stops;
	rep->n_stop_replicas = w->n_stops;
	return 0;
}

void
actors_reply_sent(worker *w, actors_reply *b)
{
	(void)b;
	for (replica *r = w->replicas; r != NULL; r = r->next)
		r->announced = true;
	for (size_t i = 0; i < w->n_stops; i++)
		free(w->stops[i]);
	w->n_stops = 0;
}

void
actors_reply_free(actors_reply *b)
{
	free(b->starts);
	free(b->stp);
	memset(b, 0, sizeof(*b));
}
