/*
 * The scheduler's in-memory state and the operations on it.
 *
 * Async contract: one libuv loop owns everything here; the API and worker
 * link handlers (api.c, link.c) run on it, called from rpc.c.  SQLite is
 * used on the same thread through store.h, in short transactions: a
 * request that creates or changes an execution commits before it is
 * answered, and results from workers are group-committed once per loop
 * turn (sched_flush) before their Report calls are answered.
 *
 * Executions that are not finished live in memory with all their items;
 * finished ones are dropped from memory and read back from the store.
 */
#ifndef TROUPE_SCHEDULER_H
#define TROUPE_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "api.pb-c.h"
#include "link.pb-c.h"
#include "loopq.h"
#include "rpc.h"
#include "store.h"

/* System failures (worker lost, scheduler restarted, spawn failed) an item
 * survives before it fails; separate from the user's --retries. */
#define SCHED_SYSTEM_RETRIES 3

typedef struct sched     sched;
typedef struct exec      exec;
typedef struct worker    worker;
typedef struct actor_env actor_env;

/* Replicas an actor environment keeps alive when its ttl is unset. */
#define SCHED_DEFAULT_TTL_S 90

/* An actor environment in use: registered (key = its name) or ad hoc (key
 * = "adhoc-" and a hash of command, protocol, env and resources, so the
 * same command finds the same replicas).  Lives until the scheduler
 * stops. */
struct actor_env {
	actor_env        *next;
	char              key[72];
	Troupe__ActorEnv *env;        /* owned; ttl_seconds resolved */
	uint32_t          n_replicas; /* alive or starting, cluster-wide */
};

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

/* Replicas of an environment failing on one worker: after
 * SCHED_STRIKES_OUT system failures of its items there in a row (a replica
 * that dies at start, a crash loop given up), the worker gets no more of
 * that environment's items or replicas for SCHED_STRIKE_OUT_MS, as long as
 * another worker could take them: a broken host (missing library, full
 * disk, bad GPU) must not eat every item's system retries. */
#define SCHED_STRIKES_OUT   3
#define SCHED_STRIKE_OUT_MS 30000

/* What one worker has of one environment: its items in flight there
 * (counted, so placement does not rescan the worker's assignments) and
 * its strikes. */
typedef struct worker_env {
	struct worker_env *next;
	const actor_env   *env;
	uint32_t           inflight; /* assignments of env's items on w */
	uint32_t           strikes;  /* system failures in a row */
	int64_t            until_ms; /* struck out until then, or 0 */
} worker_env;

/* One item's state.  Strings are malloc'd and owned by the item. */
typedef struct item {
	uint8_t  state;      /* Troupe__ItemState */
	uint8_t  user_fails; /* failed attempts charged to --retries */
	uint8_t  sys_fails;  /* failed attempts charged to the system */
	uint8_t  touched;    /* changed since the last flush (chunk list) */
	uint32_t slot;       /* its index in w->running while w != NULL */
	uint32_t attempts;   /* attempts started; the current one's number */
	int32_t  exit_code;
	int64_t  started_ms, finished_ms;
	uint8_t *output;
	size_t   output_len;
	char    *error;
	char    *worker_name;
	worker  *w; /* running on, or NULL */
} item;

/* STORE_CHUNK_ITEMS consecutive items: the unit of storage.  Results
 * changed since the last flush are listed in `touched` and written as one
 * delta row (store.h), or the whole chunk is rewritten when that is
 * cheaper or the chunk has settled. */
typedef struct chunk {
	uint32_t n; /* items present (< STORE_CHUNK_ITEMS while uploading) */
	ProtobufCBinaryData *inputs; /* n inputs, each malloc'd */
	item                *items;  /* STORE_CHUNK_ITEMS slots */
	bool                 inputs_dirty, results_dirty;
	uint16_t            *touched; /* positions changed, n_touched of them */
	uint32_t             n_touched, cap_touched;
	uint32_t             n_deltas;       /* delta rows in the store */
	bool                 wrote_all;      /* this flush rewrites it whole */
	bool                 stored_results; /* a results row or deltas exist */
	/* Where the chunk lives.  HOT: in memory.  COLD: never dispatched,
	 * every item PENDING, inputs only in the store (read back when the
	 * dispatch cursor reaches it).  GONE: settled, all in the store.
	 * inputs and items are NULL unless HOT. */
	uint8_t mem;
	bool    abort_cold; /* COLD, aborted: write its ABORTED results */
} chunk;

enum { CHUNK_HOT, CHUNK_COLD, CHUNK_GONE };

struct exec {
	exec *prev, *next; /* sched's list of active executions */
	char  id[32];
	Troupe__ExecutionSpec *spec; /* owned; freed with free_unpacked */
	Troupe__TaskSpec      *task; /* resolved task; owned likewise */
	actor_env             *env;  /* NULL: one process per item */
	uint32_t               retries, timeout_ms, concurrency;
	double                 ratio;
	Troupe__Phase          phase;
	bool                   sealed;
	uint64_t               total;
	uint64_t  n_pending, n_running, n_succeeded, n_failed, n_aborted;
	int64_t   created_ms, started_ms, finished_ms;
	int64_t   upload_ms; /* last upload call (in memory only) */
	uint64_t  version;
	char     *error;
	chunk   **chunks;
	uint32_t  n_chunks;
	uint64_t  cursor; /* items below were dispatched at least once */
	uint64_t *retry;  /* ring of indices to run again */
	size_t    retry_head, retry_len, retry_cap;
	bool      dirty;       /* header to write at the next flush */
	bool      dry;         /* no pending item found this dispatch */
	uint64_t  sys_resumed; /* items that were running at restart */
};

/* A piece of work handed to a worker: which attempt of which item. */
typedef struct assignment {
	exec    *e;
	uint64_t index;
	uint32_t attempt;
	bool     sent; /* already in a Pull reply */
} assignment;

struct worker {
	worker             *prev, *next;
	char                id[32];
	char               *name, *host;
	uint32_t            slots, pid;
	uint32_t            cpu_milli;
	uint64_t            mem_bytes;
	Troupe__WorkerState state;
	int64_t             registered_ms, last_seen_ms;
	uint64_t            items_done;
	uint32_t            pipe; /* connection of its last call */
	rpc_call           *pull; /* parked Pull, or NULL */
	int64_t             pull_deadline_ms;
	assignment         *running; /* attempts running there */
	size_t              n_running, cap_running;
	Troupe__ItemRef    *cancels;    /* to send with the next reply */
	char              **cancel_ids; /* cancels[i].execution, owned */
	size_t              n_cancels, cap_cancels;
	char              **label_keys, **label_vals;
	size_t              n_labels;
	replica            *replicas; /* replicas placed here */
	uint32_t            n_replicas;
	char              **stops; /* replica ids to stop, with a Pull */
	size_t              n_stops;
	worker_env         *envs;   /* per environment: in flight, strikes */
	uint32_t            n_proc; /* assignments run as processes */
};

/* A parked WatchExecution. */
typedef struct watcher {
	struct watcher *next;
	rpc_call       *call;
	char            id[32];
	uint64_t        since;
	int64_t         deadline_ms;
} watcher;

/* A parked Report, answered after the flush that commits its results. */
typedef struct pending_ack {
	struct pending_ack *next;
	rpc_call           *call;
	char                worker_id[32]; /* its reply carries w's cancels */
} pending_ack;

typedef struct sched_opts {
	const char *db_path;
	const char *state_dir;
	uint32_t    pull_timeout_ms; /* longest a Pull is held */
	uint32_t    lost_after_ms;   /* silence after which a worker is lost */
	uint32_t    actor_prefetch;  /* items in flight per replica (>= 1) */
	/* An execution still uploading (not sealed) with no upload call for
	 * this long was abandoned by its client: it FAILS.  0: never. */
	uint32_t upload_timeout_ms;
} sched_opts;

struct sched {
	uv_loop_t   *loop;
	store       *st;
	sched_opts   opts;
	exec        *execs; /* active executions */
	worker      *workers;
	watcher     *watchers;
	pending_ack *acks;
	uv_timer_t   tick;
	uv_idle_t    idle; /* runs dispatch + flush once per turn */
	bool         want_dispatch, want_flush;
	int64_t      started_ms;
	int64_t    dispatch_after_ms; /* grace after restart for re-registers */
	uint64_t   worker_seq;
	bool       storage_full; /* last flush failed for lack of space */
	bool       closing;
	actor_env *envs;
	uint64_t   replica_seq;
};

/* sched.c: life cycle, dispatch, group commit, liveness. */
int     sched_open(uv_loop_t *loop, const sched_opts *o, sched **out, char *err,
                   size_t errlen);
void    sched_close(sched *s);    /* drops parked calls unanswered, frees */
void    sched_dispatch(sched *s); /* place pending items on workers now */
void    sched_kick(sched *s);     /* dispatch at the end of this loop turn */
void    sched_dirty(sched *s);    /* flush at the end of this loop turn */
int     sched_flush(sched *s);    /* group commit now; answers acks */
exec   *sched_find_exec(sched *s, const char *id);
worker *sched_find_worker(sched *s, const char *id);
void    sched_worker_lost(sched *s, worker *w, const char *why);
void    sched_on_disconnect(void *arg, uint32_t pipe);
void    sched_forget_calls(sched *s); /* drop parked calls before shutdown */
void    sched_assign(sched *s, worker *w, exec *e, uint64_t index);
void    sched_apply_result(sched *s, worker *w, const Troupe__ItemReport *r);

/* exec.c: executions and their items. */
/* Creates an execution from a validated spec and resolved task (both are
 * deep-copied).  The caller links it into s and flushes. */
int  exec_new(const Troupe__ExecutionSpec *spec, const Troupe__TaskSpec *task,
              exec **out);
void exec_free(exec *e);
int  exec_append(exec *e, ProtobufCBinaryData *items, size_t n);
/* The item at index, or NULL: past the end, or settled in a chunk that
 * left memory (read it from the store; it does not change any more). */
item *exec_item(exec *e, uint64_t index);
bool  exec_in_memory(const exec *e, uint64_t index);
/* Builds the API view of e into *out (fields point into e; counts into
 * *counts).  Valid until e changes; pack or copy before that. */
void exec_view(exec *e, Troupe__Execution *out, Troupe__Counts *counts);
/* The next item to dispatch into *index: 1 if one, 0 if none.  Reads a
 * cold chunk's inputs back from st when it gets there. */
int  exec_next_pending(store *st, exec *e, uint64_t *index);
void exec_requeue(exec *e, uint64_t index);
void exec_set_state(exec *e, uint64_t index, Troupe__ItemState to);
void exec_check_done(sched *s, exec *e);
void exec_abort(sched *s, exec *e, Troupe__Phase phase, const char *why);
int  exec_write(store *st, exec *e);         /* dirty header + chunks */
void exec_clean(exec *e);                    /* after the commit held them */
void exec_truncate(exec *e, uint64_t total); /* undo an append */
int  exec_load(store *st, Troupe__Execution *row, exec **out);
void exec_item_view(exec *e, uint64_t index, Troupe__ItemResult *out);
bool exec_terminal(Troupe__Phase p);

/* actors.c: actor environments and replica placement. */
/* Finds or creates the environment an execution runs on: from the spec's
 * actor name, its ad hoc actor, or the task's actor.  *out is NULL when
 * the execution runs one process per item.  On error, err says why. */
int actors_resolve(sched *s, const Troupe__ExecutionSpec *spec,
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
 * starting a replica on it if the environment may have one more.
 * Returns true when it can. */
bool actors_make_room(sched *s, worker *w, actor_env *env, const exec *e);
/* Reconciles w's replicas with the list in its Pull. */
void actors_reconcile(sched *s, worker *w, const Troupe__PullRequest *in);
/* Idle replicas hold their slots until their TTL, but not against waiting
 * work: asks idle replicas of w (of other environments than keep, idle the
 * longest first) to stop until `want` slots are on their way; each frees
 * once the worker reports its replica gone. */
void actors_evict_idle(sched *s, worker *w, const actor_env *keep,
                       uint32_t want);
/* Asks a draining w to stop its replicas that have no items left, so
 * their environments may start replicas elsewhere once they are gone. */
void actors_drain(sched *s, worker *w);
/* Counts a result of an item of env that ran on w: system failures in a
 * row strike the environment out on w (see worker_env); a success
 * clears them. */
void actors_note_result(sched *s, worker *w, const actor_env *env,
                        bool system_failure);
/* Counts an assignment of an item of e added to (delta 1) or removed
 * from (-1) w, for placement. */
void actors_assigned(worker *w, const exec *e, int delta);
/* Forgets every replica and strike of w (it is lost or freed). */
void actors_drop_worker(worker *w);
/* Fills the ListActors reply (caller frees with actors_list_free). */
int  actors_list(sched *s, Troupe__ListActorsReply *rep, const char *only);
void actors_list_free(Troupe__ListActorsReply *rep);
void actors_free_all(sched *s);

/* api.c and link.c: the two services. */
ProtobufCService *api_service(sched *s);
ProtobufCService *link_service(sched *s);

/* Answers a parked WatchExecution with the current state of id. */
void api_answer_watch(sched *s, rpc_call *call, const char *id);

/* Workers (link.c). */
void worker_free(worker *w);
/* Removes the assignment of item index of e (running on w), in O(1). */
void worker_drop_assignment(worker *w, exec *e, uint64_t index);
/* Queues a cancellation of that attempt for w's next Pull or Report
 * reply (exec_id is copied). */
void worker_cancel(worker *w, const char *exec_id, uint64_t index,
                   uint32_t attempt);
/* An array of pointers to w's queued cancellations, for a reply; the
 * caller frees the array (not its elements).  NULL when out of memory.
 * Valid until worker_cancels_sent, which forgets them once sent. */
Troupe__ItemRef **worker_cancels_view(worker *w);
void              worker_cancels_sent(worker *w);
void              worker_answer_pull(sched *s, worker *w);

#endif
