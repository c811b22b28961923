/*
 * The worker daemon's insides, shared by the four files that make it up
 * (docs/design.md, The worker's modules):
 *  - workerd.c: set-up, the daemon's phase (RUN, DRAIN, HALT, DONE),
 *    signals, the drain and its deadlines, freeing;
 *  - workerd_link.c: the link's life: registration, the Pull loop on the
 *    Pull channel, the backoff, the watchdog that relinks a silent link;
 *  - workerd_attempts.c: the attempts held here (running, queued for a
 *    slot, given to the actor pool), what a Pull reply brings, cancels;
 *  - workerd_outbox.c: results not yet acknowledged and the Report
 *    channel that carries them.
 *
 * Async contract (docs/design.md, Threading): one libuv loop owns all of
 * it; every function here is called on that loop's thread.  nng's threads
 * reach the daemon only through the link (wlink.h), whose replies run on
 * the loop as wlink_fn callbacks; these never close the link themselves
 * (stopping goes through stop_timer).  Runner, pool, timer and signal
 * callbacks run on the loop too.
 *
 * Not a public header: only the workerd*.c files include it.
 */
#ifndef TROUPE_WORKER_WORKERD_INT_H
#define TROUPE_WORKER_WORKERD_INT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "link.pb-c.h"
#include "list.h"
#include "pool.h"
#include "runner.h"
#include "wlink.h"
#include "workerd.h"

#define WK_REGISTER_TIMEOUT_MS 10000
#define WK_REPORT_TIMEOUT_MS   60000
#define WK_PULL_SLACK_MS       5000 /* beyond pull_timeout_ms */
#define WK_BACKOFF_MIN_MS      100
#define WK_BACKOFF_MAX_MS      2000
/* Silence from the scheduler after which the link is rebuilt on a new
 * socket (then at most this often): nng 1.5.2 can wedge a socket whose
 * peer vanished (its pipe reaper deadlocks, nanomsg/nng#1543), and such
 * a socket never reconnects. */
#define WK_RELINK_MS        10000
#define WK_FINAL_FLUSH_MS   5000 /* after the drain timeout's kills */
#define WK_REPORT_MAX_BYTES (TROUPE_MAX_MSG - (1u << 20))

/* The daemon's life (docs/design.md, Failure model): RUN (pulling) ->
 * DRAIN (SIGTERM: no more pulls; running items finish and are reported;
 * bounded by the drain timeout) -> HALT (items killed, reports dropped,
 * waiting for the processes to go) -> DONE (link closed, handles
 * closing; uv_run returns).  Only ever moves forward; code compares with
 * < and >=. */
typedef enum wk_phase {
	WK_RUN,
	WK_DRAIN,
	WK_HALT,
	WK_DONE,
} wk_phase;

/* Where the worker stands with the scheduler, and what the Pull channel
 * carries.  READY and PULLING hold a worker id, the others none.
 * REGISTERING and PULLING have a call under way on the Pull channel
 * (wlink_busy); a Pull cancelled because the scheduler forgot us may
 * still be under way in UNREGISTERED, until its callback runs.
 *
 *	UNREGISTERED -> REGISTERING -> READY <-> PULLING
 *	      ^------------(failed)-------'--------'  (forgotten)
 *
 * A new link (relink) drops the call under way: REGISTERING becomes
 * UNREGISTERED, PULLING becomes READY. */
typedef enum wk_link_state {
	WK_LINK_UNREGISTERED, /* no id: never had one, or forgotten */
	WK_LINK_REGISTERING,  /* RegisterWorker under way */
	WK_LINK_READY,        /* registered; the Pull channel is idle */
	WK_LINK_PULLING,      /* registered; a Pull is parked */
} wk_link_state;

/* One PullReply, kept until the last of its attempts ends: attempts point
 * into it (the task, the item's input) instead of copying. */
typedef struct wk_pull {
	Troupe__PullReply *reply;
	unsigned           refs;
} wk_pull;

/* One attempt held here, on exactly one of the daemon's three lists, and
 * in the index by (execution, index, attempt). */
typedef struct wk_attempt {
	list_node               node;  /* on running, queued or actors */
	struct wk_attempt      *hnext; /* the index's chain */
	struct wk_alist        *on;    /* the list it is on */
	unsigned                hash;
	workerd                *w;
	wk_pull                *pull; /* a reference: the shard and item */
	const Troupe__Shard    *shard;
	const Troupe__WorkItem *item;
	runner                 *r; /* NULL while queued */
	bool                    cancelled;
	bool                    actor; /* given to the pool, in w->actors */
	pool_item               pi;    /* when actor */
} wk_attempt;

/* A list of attempts with its length (slots are counted). */
typedef struct wk_alist {
	list   l;
	size_t n;
} wk_alist;

struct workerd {
	uv_loop_t *loop;
	wlink     *link; /* NULL once DONE */
	wk_phase   phase;
	int        exit_code;

	/* Configuration, owned copies. */
	char       *name, *host;
	char       *sched_url, *token, *tls_ca; /* for a new link */
	uint32_t    slots, cpu_milli;
	uint64_t    mem_bytes;
	char      **label_keys, **label_vals;
	size_t      n_labels;
	unsigned    drain_timeout_ms;
	runner_opts ropts;

	/* The link (workerd_link.c). */
	wk_link_state link_state;
	char         *worker_id; /* NULL unless READY or PULLING */
	uint32_t      pull_timeout_ms;
	uint32_t      lost_after_ms;
	unsigned      gen;         /* bumped by every registration */
	bool          sched_drain; /* the scheduler's drain flag */
	bool          warned;      /* "scheduler unreachable" said once */
	/* Orthogonal to link_state: either channel's failure may ask for a
	 * new link whatever the Pull channel is doing. */
	bool       relink_due; /* rebuild it at the next retry */
	unsigned   pull_backoff_ms;
	int64_t    last_ok_ms;     /* last reply from the scheduler */
	int64_t    last_relink_ms; /* last new link */
	uv_timer_t pull_timer;     /* retry of register/pull */
	uv_timer_t watch_timer;    /* relinks a link silent too long */

	/* The attempts (workerd_attempts.c). */
	wk_alist running; /* runner != NULL */
	wk_alist queued;  /* beyond the slots; started as slots free up */
	wk_alist actors;  /* items of actor environments, in the pool */
	/* Every attempt on the three lists by hash of its item: a Pull
	 * brings hundreds of items, each checked against those held. */
	wk_attempt **index;
	size_t       index_cap; /* a power of two */
	size_t       index_n;
	pool        *pool; /* the actor replicas */
	char        *shim; /* troupe-shim, or NULL */

	/* The outbox (workerd_outbox.c): results not yet acknowledged,
	 * oldest first; the first n_inflight travel in the Report under
	 * way. */
	Troupe__ItemReport **outbox;
	size_t               n_out, cap_out, n_inflight;
	unsigned             report_gen; /* gen of the Report under way */
	bool                 beat_due;   /* send a Report even if empty */
	unsigned             report_backoff_ms;
	uv_timer_t           report_timer; /* retry of report */

	/* Stopping (workerd.c). */
	uv_timer_t  stop_timer; /* drain timeout, final deadline, halt */
	uv_timer_t  beat_timer; /* heartbeats while draining */
	uv_signal_t sigterm, sigint, sighup;
	bool        signals;
};

/* workerd.c: the phase. */

/* Finishes a HALT once nothing runs, or a DRAIN once nothing is held. */
void wk_check_done(workerd *w);

/* Kills what runs, drops what is unreported, and finalizes once the
 * processes are gone; code becomes the exit status.  Safe from inside a
 * wlink_fn (the finalizing is deferred to stop_timer). */
void wk_halt(workerd *w, int code);

/* workerd_link.c: the link's life. */

/* Initializes the link's timers on w->loop and starts the watchdog. */
void wk_link_init(workerd *w);

/* Decides what the Pull channel does next: register, pull, or nothing
 * (busy, waiting for a retry, draining with nothing to report). */
void wk_next(workerd *w);

/* Replaces the link with a new one: what was in flight on the old one is
 * dropped (its callbacks never run). */
void wk_relink(workerd *w);

/* Doubles *cur within the backoff bounds; returns the delay to use now. */
unsigned wk_backoff(unsigned *cur);

/* A call failed in transport (rv): says so once, and asks for a relink
 * at the next retry when the scheduler has been silent too long. */
void wk_unreachable(workerd *w, const char *what, int rv);

/* The scheduler does not know our id: forget it and register again,
 * holding what we have. */
void wk_forgotten(workerd *w, const char *what);

/* Handles a reply code that is not OK; returns true if it was fatal (the
 * worker then halts with exit status 1). */
bool wk_refused(workerd *w, const char *what, const Troupe__Reply *rep);

/* workerd_attempts.c: the attempts held here. */

/* Every attempt held: running, queued and in the pool. */
size_t wk_attempts_held(const workerd *w);

/* Takes in a Pull reply: cancellations, replicas, then the new work.
 * Owns pr from here on. */
void wk_take(workerd *w, Troupe__PullReply *pr);

/* Cancels the attempt ref names, wherever it is (its result, if already
 * in the outbox and not in flight, is dropped). */
void wk_cancel(workerd *w, const Troupe__ItemRef *ref);

/* Kills every running item (their reports are a system failure), fails
 * every queued one the same way (unless halting), stops the replicas. */
void wk_kill_all(workerd *w, const char *why);

/* Fills refs (and ptrs, pointing at them) with every attempt held,
 * running, queued, in the pool or in the outbox, for RegisterWorker; the
 * refs point into w.  Returns how many (room needed: wk_attempts_held +
 * n_out). */
size_t wk_held(const workerd *w, Troupe__ItemRef *refs, Troupe__ItemRef **ptrs);

/* The pool's callbacks (pool_new): an actor item ended (rep is ours), a
 * replica process exited. */
void wk_actor_done(void *arg, pool_item *it, Troupe__ItemReport *rep);
void wk_actor_exit(void *arg);

/* Makes the three lists and the index empty.  Returns 0 or
 * TROUPE_ENOMEM. */
int wk_attempts_init(workerd *w);

/* Frees what is still queued or in the pool (nothing runs: after uv_run,
 * or after a failed open). */
void wk_attempts_free(workerd *w);

/* workerd_outbox.c: results not yet acknowledged. */

/* Appends rep (the outbox owns it from here; dropped, with a log line,
 * when out of memory). */
void wk_outbox_push(workerd *w, Troupe__ItemReport *rep);

/* Drops the result of attempt ref if it waits in the outbox and is not in
 * flight; returns whether it did. */
bool wk_outbox_forget(workerd *w, const Troupe__ItemRef *ref);

/* Puts a report for an attempt the worker cannot run at all (why as its
 * error) into the outbox. */
void wk_fail_now(workerd *w, const char *execution,
                 const Troupe__WorkItem *item, bool system_failure,
                 const char *why);

/* Sends a Report with what waits (or an empty one when a beat is due),
 * unless one is under way or waiting for its retry. */
void wk_report_kick(workerd *w);

/* The link was replaced: the Report in flight is gone, its results wait
 * again; sends them on the new link. */
void wk_outbox_relinked(workerd *w);

/* Fills refs and ptrs as wk_held does with the results waiting (room:
 * n_out); returns how many. */
size_t wk_outbox_held(const workerd *w, Troupe__ItemRef *refs,
                      Troupe__ItemRef **ptrs);

/* Initializes the report timer on w->loop. */
void wk_outbox_init(workerd *w);

/* Frees every result still waiting. */
void wk_outbox_free(workerd *w);

#endif
