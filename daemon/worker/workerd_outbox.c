/*
 * The worker's outbox: the results of attempts (ItemReports, built with
 * report.h) not yet acknowledged by the scheduler, oldest first, and the
 * Report channel of the link that carries them, as many as one message
 * holds per Report.  A result leaves the outbox only when a Report that
 * carried it is answered OK, when the scheduler cancels its attempt
 * before it was sent, or when the worker halts.  While draining, an empty
 * Report is the heartbeat (beat_due).  It owns w->outbox and its counts,
 * report_gen, beat_due and report_timer.
 *
 * Async contract: everything runs on the daemon's loop thread.  The
 * Report's reply comes back as a wlink_fn callback (wk_on_report), on the
 * loop, after the channel is idle again; it never closes the link.  The
 * cancellations a Report reply carries go to wk_cancel
 * (workerd_attempts.c); a NOT_FOUND to wk_forgotten (workerd_link.c).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "log.h"
#include "report.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "workerd_int.h"

void
wk_outbox_push(workerd *w, Troupe__ItemReport *rep)
{
	if (w->n_out == w->cap_out) {
		Troupe__ItemReport **o =
		    grow_array(w->outbox, &w->cap_out, sizeof(*o), 16);

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
	}
	w->outbox[w->n_out++] = rep;
}

bool
wk_outbox_forget(workerd *w, const Troupe__ItemRef *ref)
{
	assert(w->n_inflight <= w->n_out);
	for (size_t i = w->n_inflight; i < w->n_out; i++) {
		Troupe__ItemReport *r = w->outbox[i];

		if (r->index == ref->index && r->attempt == ref->attempt &&
		    strcmp(r->execution, ref->execution) == 0) {
			report_free(r);
			memmove(&w->outbox[i], &w->outbox[i + 1],
			        (w->n_out - i - 1) * sizeof(*w->outbox));
			w->n_out--;
			return true;
		}
	}
	return false;
}

/* The first n results were acknowledged. */
static void
wk_outbox_ack(workerd *w, size_t n)
{
	assert(n <= w->n_out);
	for (size_t i = 0; i < n; i++)
		report_free(w->outbox[i]);
	if (n > 0)
		memmove(w->outbox, w->outbox + n,
		        (w->n_out - n) * sizeof(*w->outbox));
	w->n_out -= n;
}

size_t
wk_outbox_held(const workerd *w, Troupe__ItemRef *refs, Troupe__ItemRef **ptrs)
{
	for (size_t i = 0; i < w->n_out; i++) {
		troupe__item_ref__init(&refs[i]);
		refs[i].execution = w->outbox[i]->execution;
		refs[i].index = w->outbox[i]->index;
		refs[i].attempt = w->outbox[i]->attempt;
		ptrs[i] = &refs[i];
	}
	return w->n_out;
}

void
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

		wk_outbox_ack(w, n);
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

void
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
	assert(w->n_inflight == 0);
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

void
wk_outbox_relinked(workerd *w)
{
	w->n_inflight = 0;
	uv_timer_stop(&w->report_timer);
	wk_report_kick(w);
}

void
wk_outbox_init(workerd *w)
{
	uv_timer_init(w->loop, &w->report_timer);
	w->report_timer.data = w;
}

void
wk_outbox_free(workerd *w)
{
	for (size_t i = 0; i < w->n_out; i++)
		report_free(w->outbox[i]);
	free(w->outbox);
	w->outbox = NULL;
	w->n_out = w->cap_out = w->n_inflight = 0;
}
