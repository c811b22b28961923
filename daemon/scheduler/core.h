/*
 * The scheduler's core (docs/design.md, "The scheduler's layers"): the
 * active executions and the workers, the dispatch of pending items onto
 * workers (max-min fair), the group commit (flush) and the answers that
 * wait for it, the parked Pulls, and the timers (worker liveness,
 * execution and upload timeouts, long-poll deadlines).  It calls down to
 * actors, workers, executions and the store; the two services above it
 * (api, link) call into it.
 *
 * Async contract: one libuv loop owns everything here.  sched_kick and
 * sched_dirty ask for a dispatch and a flush at the end of the current
 * loop turn (an idle handle), so a burst of changes costs one of each.
 * News for the layer above travels through one hook (sched_set_hook):
 * after every commit, at every tick, and once when closing.
 */
#ifndef TROUPE_SCHED_CORE_H
#define TROUPE_SCHED_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "actors.h"
#include "auth.h"
#include "exec.h"
#include "link.pb-c.h"
#include "list.h"
#include "projects.h"
#include "rpc.h"
#include "store.h"
#include "worker.h"

typedef struct sched_opts {
	const char *db_path;
	const char *state_dir;
	uint32_t    pull_timeout_ms; /* longest a Pull is held */
	uint32_t    lost_after_ms;   /* silence after which a worker is lost */
	uint32_t    actor_prefetch;  /* items in flight per replica (>= 1) */
	/* An execution still uploading (not sealed) with no upload call for
	 * this long was abandoned by its client: it FAILS.  0: never. */
	uint32_t upload_timeout_ms;
	/* The bootstrap admin token (--token-file), or NULL; borrowed. */
	const char *token;
} sched_opts;

/* What the hook hears: a commit landed (answer who waited for it), a
 * tick (answer who waited too long), or the scheduler is closing (forget
 * every parked call: rpc_server_close frees them). */
typedef enum {
	SCHED_EV_COMMITTED,
	SCHED_EV_TICK,
	SCHED_EV_CLOSING,
} sched_event;
typedef void (*sched_hook)(void *arg, sched_event ev);

typedef struct sched {
	uv_loop_t *loop;
	store     *st;
	sched_opts opts;
	list       execs;    /* exec: active ones, oldest first */
	list       workers;  /* worker */
	list       acks;     /* parked Reports, answered after the flush */
	actors     act;      /* actors.c's */
	projects   projects; /* quotas and use, per project */
	auth       auth;     /* tokens (auth.c's) */
	uv_timer_t tick;
	uv_idle_t  idle; /* runs dispatch + flush once per turn */
	bool       want_dispatch, want_flush;
	int64_t    started_ms;
	int64_t    dispatch_after_ms; /* grace after restart for re-registers */
	uint64_t   unclaimed;    /* attempts running at restart, not claimed */
	bool       storage_full; /* last flush failed for lack of space */
	bool       closing;
	sched_hook hook;
	void      *hook_arg;
} sched;

/* Opens the store at o->db_path and resumes its unfinished executions.
 * The caller owns *out (sched_close).  On failure err says why. */
int  sched_open(uv_loop_t *loop, const sched_opts *o, sched **out, char *err,
                size_t errlen);
void sched_close(sched *s); /* frees everything; accepts NULL */
/* Forgets every parked call (before the rpc servers close). */
void sched_forget_calls(sched *s);
/* The one hook of the layer above (api.c's watchers). */
void sched_set_hook(sched *s, sched_hook fn, void *arg);

void sched_kick(sched *s);  /* dispatch at the end of this loop turn */
void sched_dirty(sched *s); /* flush at the end of this loop turn */
/* Group commit now: writes every dirty execution, then answers the
 * parked Reports and calls the hook.  Returns 0 or TROUPE_E* (the disk is
 * full: the answers fail and the commit is retried every tick). */
int sched_flush(sched *s);

exec   *sched_find_exec(sched *s, const char *id);
worker *sched_find_worker(sched *s, const char *id);
/* Adds a new execution (the scheduler owns it from now on), or takes back
 * one whose creation could not be committed (the caller frees it). */
void sched_add_exec(sched *s, exec *e);
void sched_remove_exec(sched *s, exec *e);
/* Ends e (abort, timeout) and schedules the flush and the dispatch that
 * send its cancellations. */
void sched_abort(sched *s, exec *e, Troupe__Phase phase, const char *why);
/* Seals e and checks whether that ended it. */
void sched_seal(sched *s, exec *e);

/* Adds a registered worker, replacing one of the same name, and claims
 * back the attempts it says it still runs (cancelling the others). */
void sched_add_worker(sched *s, worker *w, Troupe__ItemRef **held,
                      size_t n_held);
/* w is gone: its attempts go back to the queue, its parked Pull fails,
 * and it is freed. */
void sched_worker_lost(sched *s, worker *w, const char *why);
/* rpc_server_on_disconnect's callback (arg: the sched). */
void sched_on_disconnect(void *arg, uint32_t pipe);
/* w starts draining (it said so, or an operator asked). */
void sched_drain_worker(sched *s, worker *w);

/* The link's calls.  sched_park_pull holds w's Pull until there is work,
 * cancellations or its deadline; sched_answer_pull answers it now (no-op
 * without one).  sched_report applies a Report's results and parks the
 * call until the flush that commits them. */
void sched_park_pull(sched *s, worker *w, rpc_call *call,
                     const Troupe__PullRequest *in);
void sched_answer_pull(sched *s, worker *w);
void sched_report(sched *s, worker *w, const Troupe__ReportRequest *in,
                  rpc_call *call);

#endif
