/*
 * The actor pool's insides, shared by its two files (pool.h has the
 * contract; docs/design.md, Actor semantics):
 *  - pool.c: the API, the environments and their FIFO queues of items,
 *    the reports handed back, and placement (which replica takes the
 *    next item, and how many it may hold);
 *  - pool_rep.c: a replica id's record and the life of its processes:
 *    spawning, what it does after each answer (go on, recycle after
 *    env.max_items, stop), and after each exit (restart in place, give up
 *    after POOL_MAX_DEATHS, go).
 *
 * Async contract: everything runs on the pool's loop thread.  Replica
 * callbacks (pool_on_answer, pool_on_exit) come from libuv callbacks; the
 * pool brings its state to a consistent point before each call of done,
 * which may re-enter the pool.  Environments are freed only from
 * pool_status and never while a callback of ours is under way (depth),
 * so a re-entrant pool_status cannot pull one from under a loop.
 *
 * Not a public header: only pool.c and pool_rep.c include it.
 */
#ifndef TROUPE_WORKER_POOL_INT_H
#define TROUPE_WORKER_POOL_INT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "list.h"
#include "pool.h"
#include "replica.h"

/* Deaths in a row without finishing an item before an id is given up. */
#define POOL_MAX_DEATHS 3

/* The most items written ahead to one replica.  A replica works on one at
 * a time; the others wait in its stdin, so that one write and one wakeup
 * serve several items.  An item written ahead cannot be taken back, and
 * waits however long the one before it takes, while a sibling may idle;
 * so items go to the replica with the fewest outstanding, and none holds
 * more than one past the least loaded of its siblings (pool_place), even
 * one still booting or on its first items. */
#define POOL_PIPELINE 16

/* An environment: owned by the pool, on p->envs. */
struct pool_env {
	list_node         node; /* on p->envs */
	char             *key;
	Troupe__ActorEnv *env;   /* the newest definition, owned */
	list              queue; /* of pool_item, oldest first */
	size_t            n_queued;
	size_t            n_reps;
};

/* A replica id: owned by the pool, on p->reps, for as long as the id
 * lives here (across the restarts of its process). */
struct pool_rep {
	list_node node; /* on p->reps */
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
	uv_loop_t                *loop;
	char                     *shim;
	const struct launch_user *user; /* not ours (pool_opts) */
	size_t                    max_output;
	unsigned                  stop_grace_ms;
	unsigned                  exit_grace_ms;
	pool_done_fn              done;
	pool_exit_fn              exited;
	void                     *arg;

	list     envs; /* of pool_env, newest first */
	list     reps; /* of pool_rep, newest first */
	size_t   n_procs;
	size_t   n_items;
	bool     shutting;
	unsigned depth; /* our callbacks under way */

	/* The ids (and their environments) listed by the last pool_status. */
	char **last_ids, **last_keys;
	size_t n_last;

	/* pool_status's answer. */
	Troupe__ReplicaStatus  *st;
	Troupe__ReplicaStatus **stp;
	size_t                  st_cap;

	/* Replica processes started and exited, per environment and cause,
	 * since the pool was made (never shrinks: environments are few);
	 * pool_tallies' answer points into it. */
	Troupe__ReplicaTally  *tally;
	Troupe__ReplicaTally **tallyp;
	size_t                 n_tally, tally_cap;
};

/* pool.c */

/* Puts it back at the front (front) or the back of e's queue. */
void pool_push(pool_env *e, pool_item *it, bool front);

/* Places queued items of e on its replicas with room, one at a time to
 * the one with the fewest outstanding, never more than one past the
 * fewest any serving replica of e holds. */
void pool_place(pool *p, pool_env *e);

/* A report for it, failed, with its start and end times (NULL when out of
 * memory); the caller owns it. */
Troupe__ItemReport *pool_report(const pool_item *it);

/* Hands it back to the caller with rep (which the caller then owns; NULL
 * when out of memory: the item is then lost here). */
void pool_finish(pool *p, pool_item *it, Troupe__ItemReport *rep);

/* Fails it now as a system failure with msg. */
void pool_fail(pool *p, pool_item *it, const char *msg);

/* Fails every item queued for e with msg. */
void pool_fail_queue(pool *p, pool_env *e, const char *msg);

/* Takes id off the list of the last pool_status: it must not come back by
 * pool_submit (the scheduler stopped it, or it was given up). */
void pool_unlist(pool *p, const char *id);

/* Adds one to the tally of event ("start", or an exit's cause) for the
 * environment key; out of memory, the event goes uncounted. */
void pool_tally_add(pool *p, const char *key, const char *event);

/* pool_rep.c */

/* The record of replica id, or NULL. */
pool_rep *pool_rep_find(const pool *p, const char *id);

/* Whether r can take items now or after a restart of its own. */
bool pool_rep_usable(const pool_rep *r);

/* Whether a replica of e other than but (may be NULL) is usable. */
bool pool_env_has_usable(const pool *p, const pool_env *e, const pool_rep *but);

/* A new record for replica id of e, with its process started (*out may be
 * NULL).  Returns 0, or the error of replica_start (no record then). */
int pool_rep_new(pool *p, pool_env *e, const char *id, pool_rep **out);

/* Takes r off p->reps and frees it (its process, if any, is not ours any
 * more: only at the exit or in pool_free). */
void pool_rep_unlink(pool *p, pool_rep *r);

#endif
