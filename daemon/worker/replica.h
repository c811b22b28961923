/*
 * One process of an actor replica (docs/design.md, "Actor semantics" and "How a
 * task process talks"): `/bin/sh -c env.command` started once, detached in
 * a process group of its own (under troupe-shim when there is one, see
 * launch.h), with TROUPE_REPLICA and TROUPE_ACTOR in its environment and
 * its address space capped at env.resources.mem_bytes.  It serves its items
 * one at a time, in order, over the environment's protocol:
 *  - lines: the item and "\n" on stdin; the next line of stdout, without
 *    its "\n", is the output.  Bytes that arrive while no item is
 *    outstanding (a banner, extra lines after the last answer) are dropped.
 *  - frames: a varint-delimited ActorRequest{seq, input} on stdin, a
 *    varint-delimited ActorReply{seq, output | error} back on stdout
 *    (proto/actor.proto); an error fails that item alone.
 * The transport is pipelined: it may hold several items, written ahead to
 * its stdin (those queued in one turn of the loop in one write), and the
 * answers are matched to them in order (frames also check the seq).  The
 * first item outstanding is the current one: the process is working on it.
 * It keeps the last CHILD_STDERR_TAIL bytes of its stderr for messages
 * (child.h: the process, its pipes and its end, shared with runner.h),
 * and each item's log (replica_result.log): the stderr read while the
 * item was current, after what was read while the replica was idle
 * before it (boot, between items), stderr being drained just before each
 * answer is taken.
 *
 * Its own timers: an item's timeout, counted from when the item became
 * the current one (the previous answer came, or it was sent with nothing
 * ahead): the process is killed and the item fails, "timed out after N
 * ms"; and the TTL: with nothing outstanding for env.ttl_seconds (from the
 * last answer, or from its start) it stops itself.
 * Stopping is graceful: stdin closed, SIGTERM, SIGKILL to the group after
 * a grace period.  Restarting, recycling and queueing are the pool's
 * business (pool.h): a replica is one process, from spawn to exit.
 *
 * Threading contract: a replica lives on one libuv loop; every function
 * here is called on that loop's thread and the callbacks run there, never
 * from inside a call to this module (they come from libuv callbacks).  The
 * process must ignore SIGPIPE.
 */
#ifndef TROUPE_WORKER_REPLICA_H
#define TROUPE_WORKER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "api.pb-c.h"

typedef struct replica replica;
struct launch_user; /* launch.h */

typedef struct replica_conf {
	const char               *id;      /* replica id (TROUPE_REPLICA) */
	const char               *env_key; /* its environment (TROUPE_ACTOR) */
	const Troupe__ActorEnv   *env;  /* command, protocol, env, ttl, mem */
	const char               *shim; /* troupe-shim, or NULL */
	const struct launch_user *user; /* run as (launch.h), or NULL */
	size_t                    max_output; /* 0: RUNNER_MAX_OUTPUT */
	unsigned stop_grace_ms;               /* SIGTERM to SIGKILL; 0: 2000 */
	unsigned exit_grace_ms;               /* exit to giving up on the
	                                         pipes; 0: 1000 */
} replica_conf;

/* How an item ended. */
typedef struct replica_result {
	bool ok;               /* SUCCEEDED with output; else FAILED */
	bool replied;          /* the replica answered it (ok, or a frames
	                          error), rather than dying or timing out */
	bool unstarted;        /* !ok: it was queued behind the current item
	                          of a replica that is gone: it never began,
	                          and may run elsewhere at no cost */
	const uint8_t *output; /* ok: output bytes (len may be 0) */
	size_t         len;
	const char    *error;          /* !ok: why, NUL-terminated */
	bool           system_failure; /* !ok: the replica died, not the item */
	int            exit_code;      /* died: exit status or -signal */
	uint64_t       ran_ms;         /* !unstarted: since it became current */
	/* !unstarted: the item's stderr log (README, "Per-item logs"): what
	 * the process wrote while the item was current, after what it wrote
	 * idle before (booting, between items); capped as logcap.h says,
	 * dropped bytes in log_dropped.  log may be NULL (nothing). */
	const uint8_t *log;
	size_t         log_len;
	uint64_t       log_dropped;
} replica_result;

/* An item given by replica_send ended; tag is the one it was sent with,
 * or NULL for the answer of an item that replica_cancel took back (the
 * replica has one item fewer outstanding).  res and what it points to live
 * only during the call. */
typedef void (*replica_answer_fn)(void *arg, replica *r, void *tag,
                                  const replica_result *res);

/* The process exited and every handle is closed (the items still
 * outstanding were answered just before: the current one as died, the
 * others unstarted, the newest first).  r is freed when this returns; the
 * replica_* getters work on it until then. */
typedef void (*replica_exit_fn)(void *arg, replica *r);

/* Spawns a replica with c (copied: it may go on return).  A command that
 * cannot start still returns 0: the replica then exits at once, with the
 * reason in its stderr tail.  Returns TROUPE_ENOMEM (no callback then).
 * *out stays valid until exited has returned; the caller never frees it. */
int replica_start(uv_loop_t *loop, const replica_conf *c,
                  replica_answer_fn answered, replica_exit_fn exited, void *arg,
                  replica **out);

/* Queues one item (copied) behind those outstanding, tagged with tag (not
 * NULL; answered gives it back).  It goes to stdin at the next turn of
 * the loop, in one write with the others queued meanwhile.  timeout_ms 0:
 * none.  How many items to hold at once is the caller's choice.  Returns
 * 0 (answered will be called once for it, unless replica_cancel takes it
 * back), TROUPE_ESTATE when it is stopping, TROUPE_EINVAL for a NULL tag,
 * TROUPE_ENOMEM. */
int replica_send(replica *r, void *tag, const uint8_t *input, size_t len,
                 uint32_t timeout_ms);

/* Takes back the item tagged tag: if it is the current one, the process
 * is killed (as replica_kill with abandon) and true is returned; if it is
 * queued behind, its answer will be dropped (answered then comes with a
 * NULL tag).  Either way answered is never called with tag again; an
 * unknown tag is ignored. */
bool replica_cancel(replica *r, void *tag);

/* Stops the replica gracefully (stdin closed, SIGTERM, SIGKILL after the
 * grace).  Items still outstanding are answered at the exit: the current
 * one fails with why, as a system failure, the others come back unstarted
 * (with why). */
void replica_stop(replica *r, const char *why);

/* Kills the process group now with SIGKILL.  abandon: the current item
 * gets no answer at all; else it fails with why, as a system failure.  The
 * others come back unstarted at the exit. */
void replica_kill(replica *r, const char *why, bool abandon);

/* BOOTING (no item answered yet), IDLE, BUSY or STOPPING. */
Troupe__ReplicaState replica_state(const replica *r);

/* True while it has items outstanding. */
bool replica_busy(const replica *r);

/* Items outstanding: sent and not yet answered (those cancelled behind the
 * current one included, until their answers come). */
size_t replica_outstanding(const replica *r);

/* True once it is stopping or gone (it takes no more items). */
bool replica_stopping(const replica *r);

/* The process id (its process group), 0 if it did not start. */
int replica_pid(const replica *r);

/* Items answered by this process (cancelled ones included). */
uint64_t replica_served(const replica *r);

/* Milliseconds until the TTL stops it when nothing is outstanding, else
 * 0. */
uint32_t replica_idle_ms_left(const replica *r);

/* After exit: whether it exited because it was told to (replica_stop,
 * replica_kill, a timeout, an oversized answer) or idled out its TTL,
 * rather than dying on its own. */
bool replica_requested(const replica *r);
bool replica_expired(const replica *r);

/* After exit: the exit status, or -signal. */
int replica_exit_code(const replica *r);

/* Writes "exit N" or "signal S (NAME)" into buf. */
void replica_describe_exit(const replica *r, char *buf, size_t len);

/* Copies the stderr tail (valid UTF-8 not guaranteed) into buf, at most
 * len - 1 bytes, NUL-terminated; returns its length. */
size_t replica_stderr_tail(const replica *r, char *buf, size_t len);

/* Whether the process has written to stderr while it had an item, from
 * its second item on (during the first it may still be booting): its
 * owner then gives it one item at a time, so that what it writes can be
 * told apart item by item (stdout and stderr are two pipes, read in no
 * set order: with items written ahead, text about the next item could be
 * read before the answer to the current one). */
bool replica_logs_while_busy(const replica *r);

/* The replica id it was started with. */
const char *replica_id(const replica *r);

#endif
