/*
 * Workers as the scheduler sees them, and what runs where (docs/design.md,
 * "The scheduler's layers").  worker.c is the only writer of a worker's
 * assignments and of each item's holder: every attempt starts, ends and
 * is cancelled through here, so "what runs where" has one author.  It
 * calls down to the execution layer (exec.h) only.
 *
 * Async contract: the scheduler's loop thread only; nothing here answers
 * a call.  Cancellations are queued on the worker and leave with its next
 * Pull or Report reply, which core.c sends.
 */
#ifndef TROUPE_SCHED_WORKER_H
#define TROUPE_SCHED_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "exec.h"
#include "link.pb-c.h"
#include "list.h"
#include "rpc.h"

struct actor_env;
struct replica;

/* A piece of work handed to a worker: which attempt of which item. */
typedef struct assignment {
	exec    *e;
	uint64_t index;
	uint32_t attempt;
	bool     sent; /* already in a Pull reply */
} assignment;

/* What one worker has of one environment: its items in flight there
 * (worker.c's, so placement does not rescan the assignments) and its
 * strikes (actors.c's: system failures in a row, and the time it is
 * struck out until). */
typedef struct worker_env {
	struct worker_env      *next;
	const struct actor_env *env;
	uint32_t                inflight;
	uint32_t                strikes;
	int64_t                 until_ms;
} worker_env;

typedef struct worker {
	list_node           node; /* core.c's list of workers */
	char                id[32];
	char               *name, *host;
	uint32_t            slots, pid;
	uint32_t            cpu_milli;
	uint64_t            mem_bytes;
	Troupe__WorkerState state;
	int64_t             registered_ms, last_seen_ms;
	uint64_t            items_done;
	uint32_t            pipe; /* connection of its last call */
	/* core.c's: the parked Pull, answered by sched_answer_pull. */
	rpc_call *pull;
	int64_t   pull_deadline_ms;
	/* worker.c's: the attempts running there. */
	assignment *running;
	size_t      n_running, cap_running;
	uint32_t    n_proc; /* of them, run as processes (not replicas) */
	worker_env *envs;   /* per environment: in flight, strikes */
	/* worker.c's: cancellations for its next reply. */
	Troupe__ItemRef *cancels;
	char           **cancel_ids; /* cancels[i].execution, owned */
	size_t           n_cancels, cap_cancels;
	char           **label_keys, **label_vals;
	size_t           n_labels;
	/* actors.c's: the replicas placed here, and those to stop. */
	struct replica *replicas;
	uint32_t        n_replicas;
	char          **stops;
	size_t          n_stops;
	/* actors.c's: the worker's replica tallies as last reported (see
	 * ReplicaTally in link.proto), to count only what is new. */
	struct worker_tally *tallies;
	size_t               n_tallies;
} worker;

/* One tally a worker reported: its environment key, event, total. */
typedef struct worker_tally {
	char    *key;
	char    *event;
	uint64_t total;
} worker_tally;

/* A new READY worker from its registration, into *out (the caller's:
 * worker_free).  Returns 0 or TROUPE_ENOMEM. */
int worker_new(const Troupe__RegisterWorkerRequest *in, uint32_t pipe,
               worker **out);
/* Frees w, which must hold no replicas (actors_drop_worker first).  Its
 * assignments are forgotten, not released: use worker_lose_all for a
 * worker that goes while the scheduler runs.  Accepts NULL. */
void worker_free(worker *w);

/* Starts the next attempt of PENDING item index of e on w.  Returns 0, or
 * TROUPE_ENOMEM with nothing changed. */
int worker_assign(worker *w, exec *e, uint64_t index);
/* w registered again still running attempt of item index: takes it back
 * (already sent, it keeps running there) and returns true, or returns
 * false and queues its cancellation. */
bool worker_reclaim(worker *w, exec *e, uint64_t index, uint32_t attempt);
/* Ends the holding of item index's current attempt, wherever it runs
 * (its result came, or it is aborted).  Returns the worker it was on, or
 * NULL when nobody held it. */
worker *worker_release(exec *e, uint64_t index);
/* w went away: each attempt it held is lost (a system failure, retried
 * within the system's budget), and each execution touched is checked for
 * its end. */
void worker_lose_all(worker *w, const char *why);

/* Aborts e: its running attempts are released and their cancellations
 * queued on their workers, then exec_abort. */
void worker_abort_exec(exec *e, Troupe__Phase phase, const char *why);
/* exec_check_done, aborting e (worker_abort_exec) when its min success
 * ratio can no longer be met. */
void worker_check_done(exec *e);

/* Queues a cancellation of that attempt for w's next reply (exec_id is
 * copied; without memory the cancel is dropped: its result is ignored
 * anyway). */
void worker_cancel(worker *w, const char *exec_id, uint64_t index,
                   uint32_t attempt);

/* w's record of env (NULL when there is none and create is false, or
 * without memory). */
worker_env *worker_env_of(worker *w, const struct actor_env *env, bool create);
/* Items of env in flight on w. */
uint32_t worker_inflight(const worker *w, const struct actor_env *env);

/* What a Pull or Report reply carries from the worker layer: the
 * assignments not yet sent, as one shard per execution, and the queued
 * cancellations.  worker_reply_fill points rep's fields into b and w;
 * worker_reply_sent marks them sent once the reply is packed, and
 * worker_reply_free frees b.  fill returns 0 or TROUPE_ENOMEM. */
typedef struct worker_reply {
	Troupe__Shard    *shards, **sp;
	Troupe__WorkItem *items, **ip;
	Troupe__ItemRef **cp;
	size_t            n_shards, n_cancels;
} worker_reply;
int  worker_reply_fill(worker *w, bool with_shards, worker_reply *b);
void worker_reply_sent(worker *w, worker_reply *b);
void worker_reply_free(worker_reply *b);

#endif
