/*
 * The worker's link with its scheduler, its life from the worker's side:
 * registration (with the attempts held), the Pull long poll, the backoff
 * of both, the "scheduler forgot us" path, and the watchdog that rebuilds
 * a link silent for too long (docs/design.md, Failure model).  It owns
 * w->link_state, the worker id and the Pull channel; the Report channel
 * is the outbox's (workerd_outbox.c).
 *
 * Async contract: everything runs on the daemon's loop thread.  The Pull
 * channel's replies come back as wlink_fn callbacks (wk_on_register,
 * wk_on_pull), on the loop, after the channel is idle again; they never
 * close the link (stopping goes through wk_halt).  pull_timer and
 * watch_timer are this file's; what a Pull reply brings goes to
 * wk_take (workerd_attempts.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "report.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "workerd_int.h"

/* The link state agrees with the worker id and the Pull channel. */
static void
wk_link_check(const workerd *w)
{
	bool registered =
	    w->link_state == WK_LINK_READY || w->link_state == WK_LINK_PULLING;

	(void)registered;
	assert(registered == (w->worker_id != NULL));
	assert(w->link == NULL ||
	       (w->link_state != WK_LINK_REGISTERING &&
	        w->link_state != WK_LINK_PULLING) ||
	       wlink_busy(w->link, WLINK_PULL));
}

unsigned
wk_backoff(unsigned *cur)
{
	unsigned ms = *cur < WK_BACKOFF_MIN_MS ? WK_BACKOFF_MIN_MS : *cur;

	*cur = ms * 2 > WK_BACKOFF_MAX_MS ? WK_BACKOFF_MAX_MS : ms * 2;
	return ms;
}

/* What was in flight on the old link is dropped: its callbacks never run;
 * a Pull is simply sent again and the results in flight stay in the
 * outbox to be reported again (the scheduler ignores duplicates). */
void
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
	/* The Pull channel's call went with the old link. */
	if (w->link_state == WK_LINK_REGISTERING)
		w->link_state = WK_LINK_UNREGISTERED;
	else if (w->link_state == WK_LINK_PULLING)
		w->link_state = WK_LINK_READY;
	wk_link_check(w);
	wk_outbox_relinked(w);
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
void
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

static void wk_on_register(void *arg, int rv, const Troupe__Reply *rep);
static void wk_on_pull(void *arg, int rv, const Troupe__Reply *rep);

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
	size_t max = wk_attempts_held(w) + w->n_out + 1;
	int    rv;

	assert(w->link_state == WK_LINK_UNREGISTERED);
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
		w->link_state = WK_LINK_REGISTERING;
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

	assert(w->link_state == WK_LINK_READY);
	req.worker_id = w->worker_id;
	req.running = (uint32_t)wk_attempts_held(w);
	/* Every live replica, every time: the scheduler reconciles. */
	if ((rv = pool_status(w->pool, &req.replicas, &req.n_replicas)) != 0)
		log_error("cannot list the replicas: %s", troupe_strerror(rv));
	pool_tallies(w->pool, &req.replica_tallies, &req.n_replica_tallies);
	rv = wlink_call(w->link, WLINK_PULL, "Pull", &req.base,
	                (int)(w->pull_timeout_ms + WK_PULL_SLACK_MS),
	                wk_on_pull, w);
	if (rv != 0) {
		log_error("cannot pull: %s", troupe_strerror(rv));
		wk_retry_later(w);
		return;
	}
	w->link_state = WK_LINK_PULLING;
}

void
wk_next(workerd *w)
{
	if (w->phase >= WK_HALT || wlink_busy(w->link, WLINK_PULL) ||
	    uv_is_active((uv_handle_t *)&w->pull_timer))
		return;
	wk_link_check(w);
	/* The channel is idle: no call can be under way. */
	assert(w->link_state == WK_LINK_UNREGISTERED ||
	       w->link_state == WK_LINK_READY);
	if (w->link_state == WK_LINK_UNREGISTERED) {
		/* While draining, register only to hand in results. */
		if (w->phase == WK_RUN || w->n_out > 0)
			wk_register(w);
		return;
	}
	if (w->phase == WK_RUN)
		wk_send_pull(w);
}

/* (The scheduler restarted, or declared us lost.) */
void
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
		/* A Pull parked under the forgotten id would only delay
		 * this. */
		if (w->link_state == WK_LINK_PULLING)
			wlink_cancel(w->link, WLINK_PULL);
		w->link_state = WK_LINK_UNREGISTERED;
	}
	wk_next(w);
}

bool
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
	bool                         first = w->gen == 0;

	assert(w->link_state == WK_LINK_REGISTERING);
	w->link_state = WK_LINK_UNREGISTERED; /* unless it worked */
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
	assert(w->worker_id == NULL);
	w->worker_id = id;
	w->link_state = WK_LINK_READY;
	w->gen++;
	w->pull_timeout_ms =
	    rr->pull_timeout_ms > 0 ? rr->pull_timeout_ms : 30000;
	w->lost_after_ms = rr->lost_after_ms;
	troupe__register_worker_reply__free_unpacked(rr, NULL);
	w->warned = false;
	w->last_ok_ms = troupe_now_ms();
	w->pull_backoff_ms = 0;
	if (first) {
		log_info("registered with the scheduler at %s as %s",
		         wlink_url(w->link), w->worker_id);
		sd_notify(0, "READY=1");
	} else {
		log_info("registered again as %s, holding %zu items and %zu "
		         "results",
		         w->worker_id, wk_attempts_held(w), w->n_out);
	}
	wk_next(w);
	wk_report_kick(w);
}

static void
wk_on_pull(void *arg, int rv, const Troupe__Reply *rep)
{
	workerd           *w = arg;
	Troupe__PullReply *pr = NULL;

	/* UNREGISTERED: the scheduler forgot us meanwhile (and this Pull
	 * was cancelled, unless its reply was already on its way). */
	assert(w->link_state == WK_LINK_PULLING ||
	       w->link_state == WK_LINK_UNREGISTERED);
	if (w->link_state == WK_LINK_PULLING)
		w->link_state = WK_LINK_READY;
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

void
wk_link_init(workerd *w)
{
	w->link_state = WK_LINK_UNREGISTERED;
	w->last_ok_ms = troupe_now_ms();
	uv_timer_init(w->loop, &w->pull_timer);
	uv_timer_init(w->loop, &w->watch_timer);
	w->pull_timer.data = w->watch_timer.data = w;
	uv_timer_start(&w->watch_timer, wk_watch_cb, 1000, 1000);
}
