/*
 * The worker daemon (see workerd.h for the threading contract).
 *
 * The Pull channel of the link carries RegisterWorker and the Pull long
 * poll, one at a time; the Report channel carries the outbox.  Their
 * replies come back here, on the loop, through wlink_fn callbacks, which
 * never close the link themselves: stopping goes through stop_timer.
 *
 * Life cycle: RUN (pulling) -> DRAIN (SIGTERM: no more pulls; running
 * items finish and are reported; bounded by the drain timeout) -> HALT
 * (items killed, reports dropped, waiting for the processes to go) ->
 * DONE (link closed, handles closing; uv_run returns).
 */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "pool.h"
#include "report.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
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

enum { WK_RUN, WK_DRAIN, WK_HALT, WK_DONE };

/* One PullReply, kept until the last of its attempts ends: attempts point
 * into it (the task, the item's input) instead of copying. */
typedef struct wk_pull {
	Troupe__PullReply *reply;
	unsigned           refs;
} wk_pull;

typedef struct wk_attempt {
	struct wk_attempt      *prev, *next;
	workerd                *w;
	wk_pull                *pull;
	const Troupe__Shard    *shard;
	const Troupe__WorkItem *item;
	runner                 *r; /* NULL while queued */
	bool                    cancelled;
	bool                    actor; /* given to the pool, in w->actors */
	pool_item               pi;    /* when actor */
} wk_attempt;

typedef struct wk_list {
	wk_attempt *head, *tail;
	size_t      n;
} wk_list;

struct workerd {
	uv_loop_t *loop;
	wlink     *link;
	int        phase;
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

	/* Registration. */
	char    *worker_id; /* NULL: not registered (or forgotten) */
	uint32_t pull_timeout_ms;
	uint32_t lost_after_ms;
	bool     need_register;
	bool     pulling;    /* the Pull channel carries a Pull */
	unsigned gen;        /* bumped by every registration */
	unsigned report_gen; /* gen of the Report under way */
	bool     ever_registered;
	bool     sched_drain; /* the scheduler's drain flag */
	bool     warned;      /* "scheduler unreachable" said once */
	bool     beat_due;    /* send a Report even if empty */
	unsigned pull_backoff_ms;
	unsigned report_backoff_ms;

	wk_list running; /* runner != NULL */
	wk_list queued;  /* beyond the slots; started as slots free up */
	wk_list actors;  /* items of actor environments, in the pool */
	pool   *pool;    /* the actor replicas */
	char   *shim;    /* troupe-shim, or NULL */

	/* Results not yet acknowledged, oldest first; the first n_inflight
	 * travel in the Report under way. */
	Troupe__ItemReport **outbox;
	size_t               n_out, cap_out, n_inflight;

	uv_timer_t  pull_timer;   /* retry of register/pull */
	uv_timer_t  report_timer; /* retry of report */
	uv_timer_t  stop_timer;   /* drain timeout, final deadline, halt */
	uv_timer_t  beat_timer;   /* heartbeats while draining */
	uv_timer_t  watch_timer;  /* relinks a link silent too long */
	uv_signal_t sigterm, sigint, sighup;
	bool        signals;
	int64_t     last_ok_ms;     /* last reply from the scheduler */
	int64_t     last_relink_ms; /* last new link */
	bool        relink_due;     /* rebuild it at the next retry */
};

static void wk_next(workerd *w);
static void wk_report_kick(workerd *w);
static void wk_check_done(workerd *w);
static void wk_halt(workerd *w, int code);
static void wk_dispatch(workerd *w);

/* Lists. */

static void
wk_list_push(wk_list *l, wk_attempt *a)
{
	a->next = NULL;
	a->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = a;
	else
		l->head = a;
	l->tail = a;
	l->n++;
}

static void
wk_list_remove(wk_list *l, wk_attempt *a)
{
	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		l->head = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	else
		l->tail = a->prev;
	a->prev = a->next = NULL;
	l->n--;
}

static bool
wk_same(const wk_attempt *a, const char *execution, uint64_t index,
        uint32_t attempt)
{
	return a->item->index == index && a->item->attempt == attempt &&
	       strcmp(a->shard->execution, execution) == 0;
}

static wk_attempt *
wk_list_find(const wk_list *l, const char *execution, uint64_t index,
             uint32_t attempt)
{
	for (wk_attempt *a = l->head; a != NULL; a = a->next)
		if (wk_same(a, execution, index, attempt))
			return a;
	return NULL;
}

static void
wk_pull_unref(wk_pull *p)
{
	if (p != NULL && --p->refs == 0) {
		troupe__pull_reply__free_unpacked(p->reply, NULL);
		free(p);
	}
}

static void
wk_attempt_free(wk_attempt *a)
{
	if (a == NULL)
		return;
	wk_pull_unref(a->pull);
	free(a);
}

/* Backoff. */

static unsigned
wk_backoff(unsigned *cur)
{
	unsigned ms = *cur < WK_BACKOFF_MIN_MS ? WK_BACKOFF_MIN_MS : *cur;

	*cur = ms * 2 > WK_BACKOFF_MAX_MS ? WK_BACKOFF_MAX_MS : ms * 2;
	return ms;
}

/* Replaces the link with a new one (a new socket, dialing afresh).  What
 * was in flight on the old one is dropped: its callbacks never run; a
 * Pull is simply sent again and the results in flight stay in the outbox
 * to be reported again (the scheduler ignores duplicates). */
static void
wk_relink(workerd *w)
{
	wlink *l = NULL;
	char   err[256];
	int    rv;

	w->relink_due = false;
	w->last_relink_ms = troupe_now_ms();
	rv = wlink_open(w->loop, w->sched_url, w->token, w->tls_ca, &l, err,
	                sizeof(err));
	if (rv != 0) {
		log_error("cannot open a new link: %s", err);
		return;
	}
	log_warn("no reply from the scheduler for %d s: reconnecting on a "
	         "new socket",
	         (int)((w->last_relink_ms - w->last_ok_ms) / 1000));
	wlink_close(w->link);
	w->link = l;
	w->pulling = false;
	w->n_inflight = 0;
	uv_timer_stop(&w->report_timer);
	wk_report_kick(w);
}

/* A call can wait on a wedged socket for its whole timeout (a Report's
 * is a minute) without failing, so silence is also checked here: a call
 * outstanding and no reply for longer than a parked Pull may take. */
static void
wk_watch_cb(uv_timer_t *t)
{
	workerd *w = t->data;
	int64_t  now = troupe_now_ms();
	int64_t  since = w->last_ok_ms > w->last_relink_ms ? w->last_ok_ms
	                                                   : w->last_relink_ms;
	int64_t  limit = (int64_t)w->pull_timeout_ms + WK_PULL_SLACK_MS;

	if (limit < WK_RELINK_MS)
		limit = WK_RELINK_MS;
	if (w->phase >= WK_HALT || now - since <= limit ||
	    (!wlink_busy(w->link, WLINK_PULL) &&
	     !wlink_busy(w->link, WLINK_REPORT)))
		return;
	wk_relink(w);
	wk_next(w);
}

static void
wk_pull_timer_cb(uv_timer_t *t)
{
	workerd *w = t->data;

	if (w->relink_due)
		wk_relink(w);
	wk_next(w);
}

static void
wk_retry_later(workerd *w)
{
	if (w->phase >= WK_HALT)
		return;
	uv_timer_start(&w->pull_timer, wk_pull_timer_cb,
	               wk_backoff(&w->pull_backoff_ms), 0);
}

/* Says once that the scheduler does not answer; later failures go to
 * debug until something succeeds. */
static void
wk_unreachable(workerd *w, const char *what, int rv)
{
	int64_t now = troupe_now_ms();
	int64_t since = w->last_ok_ms > w->last_relink_ms ? w->last_ok_ms
	                                                  : w->last_relink_ms;

	if (!w->warned)
		log_warn("%s: no answer from the scheduler at %s (%s); "
		         "retrying",
		         what, wlink_url(w->link), troupe_strerror(rv));
	else
		log_debug("%s: %s", what, troupe_strerror(rv));
	w->warned = true;
	/* Not from inside this callback: at the next retry. */
	if (now - since > WK_RELINK_MS)
		w->relink_due = true;
}

/* The outbox. */

static void
wk_outbox_push(workerd *w, Troupe__ItemReport *rep)
{
	if (w->n_out == w->cap_out) {
		size_t               cap = w->cap_out ? w->cap_out * 2 : 16;
		Troupe__ItemReport **o = realloc(w->outbox, cap * sizeof(*o));

		if (o == NULL) {
			/* The scheduler re-runs it once we are declared lost
			 * or it times out; nothing better to do. */
			log_error(
			    "out of memory: dropping the result of %s/%" PRIu64,
			    rep->execution, rep->index);
			report_free(rep);
			return;
		}
		w->outbox = o;
		w->cap_out = cap;
	}
	w->outbox[w->n_out++] = rep;
}

/* Drops outbox[i] (not in flight). */
static void
wk_outbox_drop(workerd *w, size_t i)
{
	report_free(w->outbox[i]);
	memmove(&w->outbox[i], &w->outbox[i + 1],
	        (w->n_out - i - 1) * sizeof(*w->outbox));
	w->n_out--;
}

/* A report for an attempt the worker cannot run at all. */
static void
wk_fail_now(workerd *w, const char *execution, const Troupe__WorkItem *item,
            bool system_failure, const char *why)
{
	Troupe__ItemReport *rep =
	    report_new(execution, item->index, item->attempt);

	if (rep == NULL) {
		log_error("out of memory: cannot report %s/%" PRIu64, execution,
		          item->index);
		return;
	}
	rep->started_ms = rep->finished_ms = troupe_now_ms();
	rep->system_failure = system_failure;
	report_errorf(rep, "%s", why);
	wk_outbox_push(w, rep);
}

/* Running items. */

static void
wk_done(void *arg, Troupe__ItemReport *rep)
{
	wk_attempt *a = arg;
	workerd    *w = a->w;

	wk_list_remove(&w->running, a);
	log_debug("%s/%" PRIu64 " attempt %" PRIu32 ": %s, exit %d",
	          rep->execution, rep->index, rep->attempt,
	          rep->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED ? "succeeded"
	                                                           : "failed",
	          rep->exit_code);
	if (a->cancelled || w->phase >= WK_HALT)
		report_free(rep);
	else
		wk_outbox_push(w, rep);
	wk_attempt_free(a);
	wk_dispatch(w);
	wk_report_kick(w);
	wk_check_done(w);
}

/* An item run by an actor replica ended. */
static void
wk_actor_done(void *arg, pool_item *it, Troupe__ItemReport *rep)
{
	workerd    *w = arg;
	wk_attempt *a =
	    (wk_attempt *)(void *)((char *)it - offsetof(wk_attempt, pi));

	wk_list_remove(&w->actors, a);
	log_debug("%s/%" PRIu64 " attempt %" PRIu32 " (actor): %s",
	          rep->execution, rep->index, rep->attempt,
	          rep->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED ? "succeeded"
	                                                           : "failed");
	if (a->cancelled || w->phase >= WK_HALT)
		report_free(rep);
	else
		wk_outbox_push(w, rep);
	wk_attempt_free(a);
	wk_report_kick(w);
	wk_check_done(w);
}

/* A replica process exited: a halting worker may be done. */
static void
wk_actor_exit(void *arg)
{
	wk_check_done(arg);
}

/* Starts queued attempts while slots are free. */
static void
wk_dispatch(workerd *w)
{
	while (w->phase < WK_HALT && w->running.n < w->slots &&
	       w->queued.head != NULL) {
		wk_attempt *a = w->queued.head;

		wk_list_remove(&w->queued, a);
		wk_list_push(&w->running, a);
		if (runner_start(w->loop, &w->ropts, a->shard->task,
		                 a->shard->execution, a->item, wk_done, a,
		                 &a->r) != 0) {
			wk_list_remove(&w->running, a);
			wk_fail_now(w, a->shard->execution, a->item, true,
			            "the worker is out of memory");
			wk_attempt_free(a);
		}
	}
}

/* Kills every running item (their reports are a system failure) and fails
 * every queued one the same way; stops the actor replicas. */
static void
wk_kill_all(workerd *w, const char *why)
{
	wk_attempt *a;

	pool_shutdown(w->pool, why);
	while ((a = w->queued.head) != NULL) {
		wk_list_remove(&w->queued, a);
		if (w->phase < WK_HALT)
			wk_fail_now(w, a->shard->execution, a->item, true, why);
		wk_attempt_free(a);
	}
	for (a = w->running.head; a != NULL; a = a->next)
		runner_kill(a->r, why, true);
}

static void
wk_cancel(workerd *w, const Troupe__ItemRef *ref)
{
	wk_attempt *a;

	if ((a = wk_list_find(&w->running, ref->execution, ref->index,
	                      ref->attempt)) != NULL) {
		log_debug("cancel %s/%" PRIu64, ref->execution, ref->index);
		a->cancelled = true;
		runner_kill(a->r, "cancelled", false);
		return;
	}
	if ((a = wk_list_find(&w->actors, ref->execution, ref->index,
	                      ref->attempt)) != NULL) {
		log_debug("cancel %s/%" PRIu64 " (actor)", ref->execution,
		          ref->index);
		pool_cancel(w->pool, &a->pi);
		wk_list_remove(&w->actors, a);
		wk_attempt_free(a);
		return;
	}
	if ((a = wk_list_find(&w->queued, ref->execution, ref->index,
	                      ref->attempt)) != NULL) {
		wk_list_remove(&w->queued, a);
		wk_attempt_free(a);
		return;
	}
	/* Finished already: no need to send a result nobody wants. */
	for (size_t i = w->n_inflight; i < w->n_out; i++) {
		Troupe__ItemReport *r = w->outbox[i];

		if (r->index == ref->index && r->attempt == ref->attempt &&
		    strcmp(r->execution, ref->execution) == 0) {
			wk_outbox_drop(w, i);
			return;
		}
	}
}

/* Takes in a Pull reply: cancellations first, then the new work.  Owns
 * pr from here on. */
static void
wk_take(workerd *w, Troupe__PullReply *pr)
{
	wk_pull *p = NULL;

	for (size_t i = 0; i < pr->n_cancels; i++)
		wk_cancel(w, pr->cancels[i]);
	if (pr->drain != w->sched_drain)
		log_info(pr->drain ? "the scheduler drains this worker: no new "
		                     "items"
		                   : "the scheduler takes this worker back");
	w->sched_drain = pr->drain;
	/* Replicas first: the shards' items may be for them. */
	for (size_t i = 0; i < pr->n_stop_replicas; i++)
		pool_stop(w->pool, pr->stop_replicas[i]);
	for (size_t i = 0; i < pr->n_start_replicas; i++) {
		const Troupe__ReplicaStart *rs = pr->start_replicas[i];
		int                         rv = pool_start(w->pool, rs);

		if (rv != 0)
			log_error("cannot start replica %s of %s: %s",
			          rs->replica_id, rs->env_key,
			          troupe_strerror(rv));
	}
	if (pr->n_shards == 0 || (p = calloc(1, sizeof(*p))) == NULL) {
		if (pr->n_shards > 0)
			log_error("out of memory: dropping a shard");
		troupe__pull_reply__free_unpacked(pr, NULL);
		return;
	}
	p->reply = pr;
	p->refs = 1; /* ours, until the loop below is done */
	for (size_t s = 0; s < pr->n_shards; s++) {
		const Troupe__Shard *sh = pr->shards[s];

		for (size_t i = 0; i < sh->n_items; i++) {
			const Troupe__WorkItem *it = sh->items[i];
			wk_attempt             *a;
			char                    why[160];
			int                     rv;

			if (wk_list_find(&w->running, sh->execution, it->index,
			                 it->attempt) != NULL ||
			    wk_list_find(&w->queued, sh->execution, it->index,
			                 it->attempt) != NULL ||
			    wk_list_find(&w->actors, sh->execution, it->index,
			                 it->attempt) != NULL)
				continue; /* already here */
			if (sh->task == NULL || sh->task->command[0] == '\0') {
				wk_fail_now(w, sh->execution, it, true,
				            "the scheduler sent no command");
				continue;
			}
			if ((a = calloc(1, sizeof(*a))) == NULL) {
				wk_fail_now(w, sh->execution, it, true,
				            "the worker is out of memory");
				continue;
			}
			a->w = w;
			a->pull = p;
			a->shard = sh;
			a->item = it;
			p->refs++;
			if (sh->env_key[0] == '\0') {
				wk_list_push(&w->queued, a);
				continue;
			}
			a->actor = true;
			a->pi.execution = sh->execution;
			a->pi.item = it;
			a->pi.timeout_ms = sh->task->timeout_ms;
			wk_list_push(&w->actors, a);
			if ((rv = pool_submit(w->pool, sh->env_key, &a->pi, why,
			                      sizeof(why))) != 0) {
				wk_list_remove(&w->actors, a);
				wk_fail_now(w, sh->execution, it,
				            rv != TROUPE_EINVAL, why);
				wk_attempt_free(a);
			}
		}
	}
	wk_pull_unref(p);
	wk_dispatch(w);
	wk_report_kick(w);
}

/* Registration and the Pull loop. */

static void wk_on_register(void *arg, int rv, const Troupe__Reply *rep);
static void wk_on_pull(void *arg, int rv, const Troupe__Reply *rep);

/* Fills refs with every attempt this worker holds: running, queued, and
 * finished but not acknowledged.  Returns how many (refs has room for
 * running + queued + actors + outbox). */
static size_t
wk_held(workerd *w, Troupe__ItemRef *refs, Troupe__ItemRef **ptrs)
{
	const wk_list *lists[3] = {&w->running, &w->queued, &w->actors};
	size_t         n = 0;

	for (int l = 0; l < 3; l++)
		for (wk_attempt *a = lists[l]->head; a != NULL; a = a->next) {
			troupe__item_ref__init(&refs[n]);
			refs[n].execution = (char *)a->shard->execution;
			refs[n].index = a->item->index;
			refs[n].attempt = a->item->attempt;
			ptrs[n] = &refs[n];
			n++;
		}
	for (size_t i = 0; i < w->n_out; i++) {
		troupe__item_ref__init(&refs[n]);
		refs[n].execution = w->outbox[i]->execution;
		refs[n].index = w->outbox[i]->index;
		refs[n].attempt = w->outbox[i]->attempt;
		ptrs[n] = &refs[n];
		n++;
	}
	return n;
}

static void
wk_register(workerd *w)
{
	Troupe__RegisterWorkerRequest req =
	    TROUPE__REGISTER_WORKER_REQUEST__INIT;
	Troupe__Resources cap = TROUPE__RESOURCES__INIT;
	Troupe__RegisterWorkerRequest__LabelsEntry  *lab = NULL;
	Troupe__RegisterWorkerRequest__LabelsEntry **labp = NULL;
	Troupe__ItemRef                             *refs = NULL;
	Troupe__ItemRef                            **refp = NULL;
	size_t max = w->running.n + w->queued.n + w->actors.n + w->n_out + 1;
	int    rv;

	lab = calloc(w->n_labels + 1, sizeof(*lab));
	labp = calloc(w->n_labels + 1, sizeof(*labp));
	refs = calloc(max, sizeof(*refs));
	refp = calloc(max, sizeof(*refp));
	if (lab == NULL || labp == NULL || refs == NULL || refp == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < w->n_labels; i++) {
		troupe__register_worker_request__labels_entry__init(&lab[i]);
		lab[i].key = w->label_keys[i];
		lab[i].value = w->label_vals[i];
		labp[i] = &lab[i];
	}
	cap.cpu_milli = w->cpu_milli;
	cap.mem_bytes = w->mem_bytes;
	req.name = w->name;
	req.host = w->host;
	req.slots = w->slots;
	req.capacity = &cap;
	req.labels = labp;
	req.n_labels = w->n_labels;
	req.pid = (uint32_t)getpid();
	req.version = TROUPE_VERSION;
	req.held = refp;
	req.n_held = wk_held(w, refs, refp);
	rv = wlink_call(w->link, WLINK_PULL, "RegisterWorker", &req.base,
	                WK_REGISTER_TIMEOUT_MS, wk_on_register, w);
	if (rv == 0)
		w->need_register = false;
fail:
	if (rv != 0) {
		log_error("cannot register: %s", troupe_strerror(rv));
		wk_retry_later(w);
	}
	free(lab);
	free(labp);
	free(refs);
	free(refp);
}

static void
wk_send_pull(workerd *w)
{
	Troupe__PullRequest req = TROUPE__PULL_REQUEST__INIT;
	int                 rv;

	req.worker_id = w->worker_id;
	req.running = (uint32_t)(w->running.n + w->queued.n + w->actors.n);
	/* Every live replica, every time: the scheduler reconciles. */
	if ((rv = pool_status(w->pool, &req.replicas, &req.n_replicas)) != 0)
		log_error("cannot list the replicas: %s", troupe_strerror(rv));
	rv = wlink_call(w->link, WLINK_PULL, "Pull", &req.base,
	                (int)(w->pull_timeout_ms + WK_PULL_SLACK_MS),
	                wk_on_pull, w);
	if (rv != 0) {
		log_error("cannot pull: %s", troupe_strerror(rv));
		wk_retry_later(w);
		return;
	}
	w->pulling = true;
}

/* Decides what the Pull channel does next. */
static void
wk_next(workerd *w)
{
	if (w->phase >= WK_HALT || wlink_busy(w->link, WLINK_PULL) ||
	    uv_is_active((uv_handle_t *)&w->pull_timer))
		return;
	if (w->worker_id == NULL || w->need_register) {
		/* While draining, register only to hand in results. */
		if (w->phase == WK_RUN || w->n_out > 0)
			wk_register(w);
		return;
	}
	if (w->phase == WK_RUN)
		wk_send_pull(w);
}

/* The scheduler forgot this worker (it restarted, or declared us lost):
 * register again, holding what we have. */
static void
wk_forgotten(workerd *w, const char *what)
{
	/* Both channels may say so; the second finds the id gone already
	 * and only makes sure a registration follows. */
	if (w->worker_id != NULL) {
		log_info("%s: the scheduler does not know worker %s "
		         "(restarted, or it declared us lost); registering "
		         "again",
		         what, w->worker_id);
		free(w->worker_id);
		w->worker_id = NULL;
		w->need_register = true;
		/* A Pull parked under the forgotten id would only delay
		 * this. */
		if (w->pulling)
			wlink_cancel(w->link, WLINK_PULL);
	}
	wk_next(w);
}

/* Handles a reply code that is not OK; returns true if it was fatal. */
static bool
wk_refused(workerd *w, const char *what, const Troupe__Reply *rep)
{
	if (rep->code == TROUPE__CODE__UNAUTHENTICATED ||
	    rep->code == TROUPE__CODE__PERMISSION_DENIED) {
		log_error("%s: the scheduler at %s refused us: %s", what,
		          wlink_url(w->link), rep->message);
		wk_halt(w, 1);
		return true;
	}
	log_warn("%s: %s: %s", what, troupe_code_name(rep->code), rep->message);
	return false;
}

static void
wk_on_register(void *arg, int rv, const Troupe__Reply *rep)
{
	workerd                     *w = arg;
	Troupe__RegisterWorkerReply *rr = NULL;
	char                        *id = NULL;

	if (w->phase >= WK_HALT)
		return;
	if (rv == TROUPE_ECANCELED) {
		wk_next(w);
		return;
	}
	if (rv != 0) {
		wk_unreachable(w, "RegisterWorker", rv);
		wk_retry_later(w);
		return;
	}
	if (rep->code != TROUPE__CODE__OK) {
		if (wk_refused(w, "RegisterWorker", rep))
			return;
		if (rep->code == TROUPE__CODE__INVALID_ARGUMENT) {
			/* Our settings are wrong; retrying cannot help. */
			wk_halt(w, 1);
			return;
		}
		wk_retry_later(w);
		return;
	}
	rr = troupe__register_worker_reply__unpack(NULL, rep->body.len,
	                                           rep->body.data);
	if (rr == NULL || rr->worker_id[0] == '\0' ||
	    (id = strdup(rr->worker_id)) == NULL) {
		log_warn("RegisterWorker: malformed reply");
		if (rr != NULL)
			troupe__register_worker_reply__free_unpacked(rr, NULL);
		wk_retry_later(w);
		return;
	}
	free(w->worker_id);
	w->worker_id = id;
	w->gen++;
	w->pull_timeout_ms =
	    rr->pull_timeout_ms > 0 ? rr->pull_timeout_ms : 30000;
	w->lost_after_ms = rr->lost_after_ms;
	troupe__register_worker_reply__free_unpacked(rr, NULL);
	w->warned = false;
	w->last_ok_ms = troupe_now_ms();
	w->pull_backoff_ms = 0;
	if (!w->ever_registered) {
		log_info("registered with the scheduler at %s as %s",
		         wlink_url(w->link), w->worker_id);
		sd_notify(0, "READY=1");
	} else {
		log_info("registered again as %s, holding %zu items and %zu "
		         "results",
		         w->worker_id, w->running.n + w->queued.n + w->actors.n,
		         w->n_out);
	}
	w->ever_registered = true;
	wk_next(w);
	wk_report_kick(w);
}

static void
wk_on_pull(void *arg, int rv, const Troupe__Reply *rep)
{
	workerd           *w = arg;
	Troupe__PullReply *pr = NULL;

	w->pulling = false;
	if (w->phase >= WK_HALT)
		return;
	if (rv == TROUPE_ECANCELED) {
		wk_next(w);
		return;
	}
	if (rv != 0) {
		wk_unreachable(w, "Pull", rv);
		wk_retry_later(w);
		return;
	}
	if (rep->code == TROUPE__CODE__NOT_FOUND) {
		wk_forgotten(w, "Pull");
		return;
	}
	if (rep->code != TROUPE__CODE__OK) {
		if (!wk_refused(w, "Pull", rep))
			wk_retry_later(w);
		return;
	}
	pr = troupe__pull_reply__unpack(NULL, rep->body.len, rep->body.data);
	if (pr == NULL) {
		log_warn("Pull: malformed reply");
		wk_retry_later(w);
		return;
	}
	w->warned = false;
	w->last_ok_ms = troupe_now_ms();
	w->pull_backoff_ms = 0;
	wk_take(w, pr);
	wk_next(w);
}

/* Reports. */

static void
wk_report_timer_cb(uv_timer_t *t)
{
	workerd *w = t->data;

	if (w->relink_due)
		wk_relink(w); /* a draining worker reports only */
	wk_report_kick(w);
}

static void
wk_on_report(void *arg, int rv, const Troupe__Reply *rep)
{
	workerd *w = arg;
	size_t   n = w->n_inflight;

	if (w->phase >= WK_HALT)
		return;
	w->n_inflight = 0;
	if (rv == 0 && rep->code == TROUPE__CODE__OK) {
		Troupe__ReportReply *rr = troupe__report_reply__unpack(
		    NULL, rep->body.len, rep->body.data);

		for (size_t i = 0; i < n; i++)
			report_free(w->outbox[i]);
		if (n > 0)
			memmove(w->outbox, w->outbox + n,
			        (w->n_out - n) * sizeof(*w->outbox));
		w->n_out -= n;
		w->report_backoff_ms = 0;
		w->last_ok_ms = troupe_now_ms();
		if (n > 0)
			log_debug("reported %zu results", n);
		/* The results are committed either way; only the
		 * cancellations would be lost with a malformed body. */
		if (rr == NULL)
			log_warn("Report: malformed reply");
		for (size_t i = 0; rr != NULL && i < rr->n_cancels; i++)
			wk_cancel(w, rr->cancels[i]);
		if (rr != NULL)
			troupe__report_reply__free_unpacked(rr, NULL);
		wk_report_kick(w);
		wk_check_done(w);
		return;
	}
	if (rv == 0 && rep->code == TROUPE__CODE__NOT_FOUND) {
		if (w->report_gen == w->gen)
			wk_forgotten(w, "Report");
		else
			wk_report_kick(w); /* sent under the id before */
		return;
	}
	if (rv != 0)
		wk_unreachable(w, "Report", rv);
	else if (wk_refused(w, "Report", rep))
		return;
	uv_timer_start(&w->report_timer, wk_report_timer_cb,
	               wk_backoff(&w->report_backoff_ms), 0);
}

static void
wk_report_kick(workerd *w)
{
	Troupe__ReportRequest req = TROUPE__REPORT_REQUEST__INIT;
	size_t                n = 0, bytes = 0;
	int                   rv;

	if (w->worker_id == NULL) {
		wk_next(w); /* a draining worker registers only for this */
		return;
	}
	if (w->phase >= WK_HALT || (w->n_out == 0 && !w->beat_due) ||
	    wlink_busy(w->link, WLINK_REPORT) ||
	    uv_is_active((uv_handle_t *)&w->report_timer))
		return;
	/* Everything waiting, as far as one message holds. */
	while (n < w->n_out) {
		size_t sz =
		    protobuf_c_message_get_packed_size(&w->outbox[n]->base) +
		    16;

		if (n > 0 && bytes + sz > WK_REPORT_MAX_BYTES)
			break;
		bytes += sz;
		n++;
	}
	req.worker_id = w->worker_id;
	req.results = w->outbox;
	req.n_results = n;
	req.draining = w->phase != WK_RUN;
	rv = wlink_call(w->link, WLINK_REPORT, "Report", &req.base,
	                WK_REPORT_TIMEOUT_MS, wk_on_report, w);
	if (rv != 0) {
		log_error("cannot report: %s", troupe_strerror(rv));
		uv_timer_start(&w->report_timer, wk_report_timer_cb,
		               wk_backoff(&w->report_backoff_ms), 0);
		return;
	}
	w->n_inflight = n;
	w->report_gen = w->gen;
	w->beat_due = false;
}

/* Stopping. */

/* Closes the link and every handle of ours; uv_run then returns.  Only
 * once nothing runs any more, and never from inside a wlink_fn. */
static void
wk_finalize(workerd *w)
{
	if (w->phase == WK_DONE)
		return;
	w->phase = WK_DONE;
	wlink_close(w->link);
	w->link = NULL;
	uv_close((uv_handle_t *)&w->pull_timer, NULL);
	uv_close((uv_handle_t *)&w->report_timer, NULL);
	uv_close((uv_handle_t *)&w->stop_timer, NULL);
	uv_close((uv_handle_t *)&w->beat_timer, NULL);
	uv_close((uv_handle_t *)&w->watch_timer, NULL);
	if (w->signals) {
		uv_close((uv_handle_t *)&w->sigterm, NULL);
		uv_close((uv_handle_t *)&w->sigint, NULL);
		uv_close((uv_handle_t *)&w->sighup, NULL);
	}
	log_info("stopped");
}

static void
wk_halt_cb(uv_timer_t *t)
{
	workerd *w = t->data;

	if (w->running.n == 0 && pool_procs(w->pool) == 0)
		wk_finalize(w);
}

/* Kills what runs, drops what is unreported, and finalizes once the
 * processes are gone (wk_done calls wk_check_done). */
static void
wk_halt(workerd *w, int code)
{
	if (w->phase >= WK_HALT)
		return;
	w->exit_code = code;
	w->phase = WK_HALT;
	uv_timer_stop(&w->pull_timer);
	uv_timer_stop(&w->report_timer);
	uv_timer_stop(&w->beat_timer);
	uv_timer_stop(&w->watch_timer);
	wk_kill_all(w, "the worker stopped");
	if (w->n_out > 0)
		log_warn("exiting with %zu results not acknowledged; the "
		         "scheduler runs those items again",
		         w->n_out);
	/* Deferred: we may be inside a link callback. */
	uv_timer_start(&w->stop_timer, wk_halt_cb, 0, 0);
}

static void
wk_check_done(workerd *w)
{
	if (w->phase == WK_HALT && w->running.n == 0 &&
	    pool_procs(w->pool) == 0)
		uv_timer_start(&w->stop_timer, wk_halt_cb, 0, 0);
	else if (w->phase == WK_DRAIN && w->running.n == 0 &&
	         w->queued.n == 0 && w->actors.n == 0 && w->n_out == 0) {
		log_info("drained");
		wk_halt(w, 0);
	}
}

static void
wk_final_deadline(uv_timer_t *t)
{
	wk_halt(t->data, 0);
}

static void
wk_drain_timeout(uv_timer_t *t)
{
	workerd *w = t->data;

	log_warn("drain timeout: killing %zu running items",
	         w->running.n + w->actors.n);
	wk_kill_all(w, "the worker stopped (drain timeout)");
	/* Their reports get a last chance to reach the scheduler. */
	uv_timer_start(&w->stop_timer, wk_final_deadline, WK_FINAL_FLUSH_MS, 0);
	wk_report_kick(w);
}

static unsigned
wk_beat_ms(const workerd *w)
{
	unsigned ms = w->lost_after_ms > 0 ? w->lost_after_ms / 3 : 1000;

	return ms < 100 ? 100 : ms > 5000 ? 5000 : ms;
}

static void
wk_beat_cb(uv_timer_t *t)
{
	workerd *w = t->data;

	w->beat_due = true;
	wk_report_kick(w);
}

void
workerd_stop(workerd *w)
{
	if (w->phase == WK_RUN) {
		w->phase = WK_DRAIN;
		log_info("draining: %zu items running, %zu results to report; "
		         "killing what still runs in %u s",
		         w->running.n + w->queued.n + w->actors.n, w->n_out,
		         w->drain_timeout_ms / 1000);
		sd_notify(0, "STOPPING=1");
		/* A parked Pull could still bring work: end it.  Pull has no
		 * way to say "nothing new, please", so while draining an
		 * empty Report keeps us alive instead (any call does). */
		if (w->pulling)
			wlink_cancel(w->link, WLINK_PULL);
		uv_timer_start(&w->beat_timer, wk_beat_cb, wk_beat_ms(w),
		               wk_beat_ms(w));
		uv_timer_start(&w->stop_timer, wk_drain_timeout,
		               w->drain_timeout_ms, 0);
		/* Tell the scheduler now: it stops placing items here and
		 * sends cancellations with its Report replies. */
		w->beat_due = true;
		wk_report_kick(w);
		wk_check_done(w);
		return;
	}
	if (w->phase == WK_DRAIN) {
		log_warn("stopping now: killing %zu running items",
		         w->running.n + w->actors.n);
		wk_halt(w, 1);
	}
}

static void
wk_on_signal(uv_signal_t *h, int signum)
{
	workerd *w = h->data;

	log_info("got %s", strsignal(signum));
	workerd_stop(w);
}

/* Set-up. */

int
workerd_open(uv_loop_t *loop, const workerd_conf *c, workerd **out, char *err,
             size_t errlen)
{
	workerd *w = NULL;
	int      rv;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto nomem;
	w->loop = loop;
	w->slots = c->slots > 0 ? c->slots : 1;
	w->cpu_milli = c->cpu_milli;
	w->mem_bytes = c->mem_bytes;
	w->drain_timeout_ms = c->drain_timeout_ms;
	w->ropts = c->runner;
	w->last_ok_ms = troupe_now_ms();
	if ((w->name = strdup(c->name)) == NULL ||
	    (w->host = strdup(c->host)) == NULL ||
	    (w->sched_url = strdup(c->scheduler)) == NULL ||
	    (c->token != NULL && (w->token = strdup(c->token)) == NULL) ||
	    (c->tls_ca != NULL && (w->tls_ca = strdup(c->tls_ca)) == NULL) ||
	    (c->runner.shim != NULL &&
	     (w->shim = strdup(c->runner.shim)) == NULL))
		goto nomem;
	w->ropts.shim = w->shim;
	if (pool_new(loop,
	             &(pool_opts){.shim = w->shim,
	                          .max_output = w->ropts.max_output,
	                          .exit_grace_ms = w->ropts.exit_grace_ms},
	             wk_actor_done, wk_actor_exit, w, &w->pool) != 0)
		goto nomem;
	if (c->n_labels > 0) {
		w->label_keys = calloc(c->n_labels, sizeof(char *));
		w->label_vals = calloc(c->n_labels, sizeof(char *));
		if (w->label_keys == NULL || w->label_vals == NULL)
			goto nomem;
		for (size_t i = 0; i < c->n_labels; i++) {
			w->n_labels++;
			if ((w->label_keys[i] = strdup(c->label_keys[i])) ==
			        NULL ||
			    (w->label_vals[i] = strdup(c->label_vals[i])) ==
			        NULL)
				goto nomem;
		}
	}
	if ((rv = wlink_open(loop, c->scheduler, c->token, c->tls_ca, &w->link,
	                     err, errlen)) != 0)
		goto fail;
	uv_timer_init(loop, &w->pull_timer);
	uv_timer_init(loop, &w->report_timer);
	uv_timer_init(loop, &w->stop_timer);
	uv_timer_init(loop, &w->beat_timer);
	uv_timer_init(loop, &w->watch_timer);
	w->watch_timer.data = w;
	uv_timer_start(&w->watch_timer, wk_watch_cb, 1000, 1000);
	w->pull_timer.data = w->report_timer.data = w->stop_timer.data = w;
	w->beat_timer.data = w;
	if (c->signals) {
		w->signals = true;
		uv_signal_init(loop, &w->sigterm);
		uv_signal_init(loop, &w->sigint);
		uv_signal_init(loop, &w->sighup);
		w->sigterm.data = w->sigint.data = w->sighup.data = w;
		uv_signal_start(&w->sigterm, wk_on_signal, SIGTERM);
		uv_signal_start(&w->sigint, wk_on_signal, SIGINT);
		/* A closed terminal: nobody to ask, so drain as for SIGTERM
		 * rather than die and leave the items' processes behind. */
		uv_signal_start(&w->sighup, wk_on_signal, SIGHUP);
	}
	log_info("worker %s on %s: %u slots, scheduler %s", w->name, w->host,
	         w->slots, c->scheduler);
	wk_next(w);
	*out = w;
	return 0;
nomem:
	rv = TROUPE_ENOMEM;
	snprintf(err, errlen, "out of memory");
fail:
	workerd_free(w);
	return rv;
}

int
workerd_exit_code(const workerd *w)
{
	return w->exit_code;
}

void
workerd_free(workerd *w)
{
	wk_attempt *a;

	if (w == NULL)
		return;
	/* Normally empty by now; after a failed open, never started. */
	while ((a = w->queued.head) != NULL) {
		wk_list_remove(&w->queued, a);
		wk_attempt_free(a);
	}
	while ((a = w->actors.head) != NULL) {
		pool_cancel(w->pool, &a->pi);
		wk_list_remove(&w->actors, a);
		wk_attempt_free(a);
	}
	pool_free(w->pool);
	free(w->shim);
	wlink_close(w->link);
	for (size_t i = 0; i < w->n_out; i++)
		report_free(w->outbox[i]);
	free(w->outbox);
	for (size_t i = 0; i < w->n_labels; i++) {
		free(w->label_keys[i]);
		free(w->label_vals[i]);
	}
	free(w->label_keys);
	free(w->label_vals);
	free(w->worker_id);
	free(w->name);
	free(w->host);
	free(w->sched_url);
	free(w->token);
	free(w->tls_ca);
	free(w);
}
