/*
 * The actor replicas of one worker (docs/design.md, "Actor semantics"; the
 * worker's side of proto/link.proto's ReplicaStart, ReplicaStatus and
 * Shard.env_key): the replicas the scheduler placed here, by id, and per
 * environment a FIFO queue of items that the replicas of that environment
 * take.  A replica works on one item at a time but holds up to
 * POOL_PIPELINE (pool_int.h) written ahead to its stdin, each item going to
 * the replica with the fewest outstanding; none is given more than its
 * process may still serve under env.max_items.
 *
 * The scheduler decides how many replicas exist and where; the pool keeps
 * each replica id alive as long as it has work:
 *  - a replica that dies with work queued for its environment, is
 *    recycled after env.max_items items, or is killed by a timeout or a
 *    cancellation restarts in place, under the same id;
 *  - when a replica dies or is killed, only its current item fails (or,
 *    cancelled, reports nothing); the items written behind it go back to
 *    the queue, uncharged;
 *  - an idle replica stops at its TTL, and a replica the scheduler stops
 *    is not restarted; either way its id goes from the status list;
 *  - a replica id that dies 3 times in a row without finishing an item is
 *    given up, and the queued items that no other replica of its
 *    environment here can take fail as system failures with its stderr;
 *  - items for an environment with no replica here restart one the
 *    scheduler still counts (listed in the last status, since stopped by
 *    its TTL), or fail at once.
 * Nothing ever waits on a dead replica.
 *
 * Threading contract: a pool lives on one libuv loop; every function here
 * is called on that loop's thread, and its callbacks run there.  The done
 * callback may be called from inside pool_start, pool_submit (never for
 * the item submitted), pool_shutdown and from libuv callbacks; it may call
 * back into the pool except pool_free.
 */
#ifndef TROUPE_WORKER_POOL_H
#define TROUPE_WORKER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "link.pb-c.h"
#include "list.h"

typedef struct pool     pool;
typedef struct pool_env pool_env;
typedef struct pool_rep pool_rep;

/* One attempt given to the pool.  The caller allocates it (typically
 * inside its own record), fills the first fields, and keeps them valid
 * until done is called for it or pool_cancel takes it back. */
typedef struct pool_item {
	const char             *execution;
	const Troupe__WorkItem *item;
	uint32_t                timeout_ms; /* 0: none */

	/* The pool's (zero before the first pool_submit). */
	list_node node; /* in its environment's queue */
	pool_env *env;  /* NULL: not the pool's */
	pool_rep *rep;  /* holding it; NULL while queued */
	int64_t   started_ms;
} pool_item;

/* An item ended; the callee owns rep (report_free, or hand it on).  Called
 * once per item accepted by pool_submit, unless pool_cancel took it. */
typedef void (*pool_done_fn)(void *arg, pool_item *it, Troupe__ItemReport *rep);

/* A replica process exited (pool_procs went down). */
typedef void (*pool_exit_fn)(void *arg);

struct launch_user; /* launch.h */

typedef struct pool_opts {
	const char               *shim; /* troupe-shim or NULL; copied */
	const struct launch_user *user; /* replicas run as (launch.h), or
	                           NULL; not copied: must outlive the pool */
	size_t   max_output;            /* 0: RUNNER_MAX_OUTPUT */
	unsigned stop_grace_ms;         /* SIGTERM to SIGKILL; 0: 2000 */
	unsigned exit_grace_ms;         /* 0: 1000 */
} pool_opts;

/* Makes an empty pool on loop (o may be NULL).  Returns 0 or
 * TROUPE_ENOMEM; the caller owns *out (pool_free). */
int pool_new(uv_loop_t *loop, const pool_opts *o, pool_done_fn done,
             pool_exit_fn exited, void *arg, pool **out);

/* Frees p once no process is left (pool_procs(p) == 0: shut it down and
 * run the loop first) and no item is held.  Accepts NULL. */
void pool_free(pool *p);

/* Starts replica rs->replica_id of environment rs->env_key right away
 * (copies what it needs).  An id already running is left alone.  Returns
 * 0, TROUPE_EINVAL for a ReplicaStart without an id, key or command,
 * TROUPE_ESTATE after pool_shutdown, TROUPE_ENOMEM. */
int pool_start(pool *p, const Troupe__ReplicaStart *rs);

/* Stops replica id gracefully, after the items it holds, for good.
 * Unknown ids are ignored. */
void pool_stop(pool *p, const char *id);

/* Queues it for a replica of environment env_key.  Returns 0 (done will
 * report it), or TROUPE_ENOTFOUND when no replica of env_key is here or
 * can be restarted, TROUPE_EINVAL for an item that the environment's
 * protocol cannot carry (a newline in lines: the item's own failure),
 * TROUPE_ESTATE after pool_shutdown, TROUPE_ENOMEM: then it is not the
 * pool's and why holds the reason to report. */
int pool_submit(pool *p, const char *env_key, pool_item *it, char *why,
                size_t whylen);

/* Takes it back: out of the queue; if its replica is working on it, the
 * replica is killed (and restarted in place if its environment has more
 * work: the items behind it go back to the queue); if it waits in a
 * replica's stdin, its answer is dropped.  done is not called for it. */
void pool_cancel(pool *p, pool_item *it);

/* Fails every queued item with why (system failure), kills the replicas
 * that hold items (which fail with why) and stops the others gracefully;
 * none restarts and nothing new is accepted. */
void pool_shutdown(pool *p, const char *why);

/* Every live replica (not those stopped for good), for a PullRequest:
 * sets *out to an array of *n statuses that the pool owns until the next
 * call or pool_free.  Remembers the ids listed (see pool_submit).
 * Returns 0 or TROUPE_ENOMEM (*n is then 0). */
int pool_status(pool *p, Troupe__ReplicaStatus ***out, size_t *n);

/* The tallies of replica processes started and exited (per environment
 * and cause) since the pool was made: sets *out to an array of *n that the
 * pool owns until the next pool_tally_add or pool_free. */
void pool_tallies(pool *p, Troupe__ReplicaTally ***out, size_t *n);

/* Replica processes alive (started and not yet exited). */
size_t pool_procs(const pool *p);

/* Items held: queued or held by a replica. */
size_t pool_items(const pool *p);

#endif
