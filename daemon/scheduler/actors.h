/*
 * Actor environments and their replicas: which environments are in use,
 * where each replica lives, and the placement of an environment's items
 * and replicas on workers (docs/design.md, "Actor semantics").  Above the
 * worker layer (it reads workers and their assignments, never writes them) and
 * below core.c, which asks it for room and tells it what workers report.
 *
 * Async contract: the scheduler's loop thread only.  News for the layer
 * above (a strike-out that frees replicas elsewhere) comes back as return
 * values; the replicas to start and stop leave with a worker's next Pull
 * reply (actors_reply_fill).
 */
#ifndef TROUPE_SCHED_ACTORS_H
#define TROUPE_SCHED_ACTORS_H

#include <stdbool.h>
#include <stdint.h>

#include "exec.h"
#include "link.pb-c.h"
#include "list.h"
#include "projects.h"
#include "store.h"
#include "worker.h"

/* Replicas an actor environment keeps alive when its ttl is unset. */
#define ACTORS_DEFAULT_TTL_S 90

/* Replicas of an environment failing on one worker: after
 * ACTORS_STRIKES_OUT system failures of its items there in a row (a
 * replica that dies at start, a crash loop given up), the worker gets no
 * more of that environment's items or replicas for ACTORS_STRIKE_OUT_MS,
 * as long as another worker could take them: a broken host (missing
 * library, full disk, bad GPU) must not eat every item's system retries. */
#define ACTORS_STRIKES_OUT   3
#define ACTORS_STRIKE_OUT_MS 30000

/* An actor environment in use: registered (key = its name) or ad hoc (key
 * = "adhoc-" and a hash of command, protocol, env and resources, so the
 * same command finds the same replicas).  Lives until the scheduler
 * stops. */
typedef struct actor_env {
	struct actor_env *next;
	char              key[160];
	Troupe__ActorEnv *env;        /* owned; ttl_seconds resolved */
	uint32_t          n_replicas; /* alive or starting, cluster-wide */
	project          *proj;       /* its project (projects.h) */
} actor_env;

/* One replica, as the scheduler tracks it: placed on a worker by the
 * scheduler, kept up to date from the worker's Pull requests. */
typedef struct replica {
	struct replica      *next; /* the worker's list */
	char                 id[24];
	actor_env           *env;
	uint32_t             pid;
	Troupe__ReplicaState state;
	uint64_t             items_served;
	uint32_t             idle_ms_left;
	bool                 announced; /* its ReplicaStart was sent */
	bool                 stopping;  /* asked to stop; counted until gone */
} replica;

/* The layer's state.  envs and replica_seq are actors.c's; st and
 * workers are the scheduler's, read here. */
typedef struct actors {
	actor_env  *envs;
	uint64_t    replica_seq;
	uint32_t    prefetch; /* items in flight per replica (>= 1) */
	store      *st;
	const list *workers;  /* core.c's list of worker */
	projects   *projects; /* core.c's */
} actors;

/* Finds or creates the environment an execution runs on: from the spec's
 * actor name, its ad hoc actor, or the task's actor.  *out is NULL when
 * the execution runs one process per item.  On error, err says why. */
int actors_resolve(actors *a, const Troupe__ExecutionSpec *spec,
                   const Troupe__TaskSpec *task, actor_env **out, char *err,
                   size_t errlen);
/* Binds e to env (NULL: per-item processes); an execution without a
 * command of its own takes the environment's. */
int actors_bind(exec *e, actor_env *env);

/* Whether w's declared capacity (cpu, memory) has room for want, counting
 * its replicas and its items run as processes. */
bool actors_resources_fit(const worker *w, const Troupe__Resources *want);
/* Slots of w in use: items run as processes, and replicas. */
uint32_t actors_used_slots(const worker *w);
/* Whether w can take one more item of env (for execution e) now,
 * placing a replica on it if the environment may have one more. */
bool actors_make_room(actors *a, worker *w, actor_env *env, const exec *e);
/* Reconciles w's replicas with the list in its Pull. */
void actors_reconcile(actors *a, worker *w, const Troupe__PullRequest *in);
/* Idle replicas hold their slots until their TTL, but not against waiting
 * work: asks idle replicas of w (of other environments than keep, idle the
 * longest first) to stop until `want` slots are on their way; each frees
 * once the worker reports its replica gone. */
void actors_evict_idle(worker *w, const actor_env *keep, uint32_t want);
/* Asks a draining w to stop its replicas that have no items left, so
 * their environments may start replicas elsewhere once they are gone. */
void actors_drain(worker *w);
/* Counts a result of an item of env that ran on w: system failures in a
 * row strike the environment out on w (see ACTORS_STRIKES_OUT); a success
 * clears them.  Returns true when env was just struck out there (its
 * items may now go elsewhere: the caller dispatches again). */
bool actors_note_result(worker *w, const actor_env *env, bool system_failure);
/* Forgets every replica of w (it is lost or freed), before worker_free. */
void actors_drop_worker(worker *w);
/* Whether w has replicas to announce (a Pull reply is worth sending). */
bool actors_have_news(const worker *w);

/* The replicas to start and stop in w's next Pull reply: fill points
 * rep's fields into b (0 or TROUPE_ENOMEM); sent marks them announced
 * once the reply is packed; free frees b. */
typedef struct actors_reply {
	Troupe__ReplicaStart *starts, **stp;
	size_t                n_starts;
} actors_reply;
int  actors_reply_fill(worker *w, Troupe__PullReply *rep, actors_reply *b);
void actors_reply_sent(worker *w, actors_reply *b);
void actors_reply_free(actors_reply *b);

/* Fills the ListActors reply (caller frees with actors_list_free): the
 * environments of project (NULL: every project), only the one keyed
 * `only` when that is not NULL (GetActor: store_key of project and
 * name). */
int  actors_list(actors *a, Troupe__ListActorsReply *rep, const char *only,
                 const char *project);
void actors_list_free(Troupe__ListActorsReply *rep);
void actors_free_all(actors *a);

#endif
