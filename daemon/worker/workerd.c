/*
 * The worker daemon (workerd.h): its set-up and freeing, and its phase,
 * RUN -> DRAIN -> HALT -> DONE (workerd_int.h, wk_phase): the graceful
 * drain on SIGTERM and its deadlines, the halt that kills what runs, and
 * the final close of the link and every handle.  The link's life, the
 * attempts and the outbox are in workerd_link.c, workerd_attempts.c and
 * workerd_outbox.c (docs/design.md, The worker's modules).
 *
 * Async contract: everything runs on the loop thread given to
 * workerd_open.  workerd_stop is called by main.c's owner of the loop, or
 * by our own signal handles; stop_timer and beat_timer are this file's
 * and their callbacks run on the loop.  wk_halt may be called from inside
 * a wlink_fn: the closing of the link is always deferred to stop_timer.
 */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "troupe/error.h"
#include "workerd_int.h"

/* Stopping. */

/* Closes the link and every handle of ours; uv_run then returns.  Only
 * once nothing runs any more, and never from inside a wlink_fn. */
static void
wk_finalize(workerd *w)
{
	if (w->phase == WK_DONE)
		return;
	assert(w->phase == WK_HALT && w->running.n == 0);
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
void
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

void
wk_check_done(workerd *w)
{
	assert(w->phase != WK_DONE || w->link == NULL);
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
		         wk_attempts_held(w), w->n_out,
		         w->drain_timeout_ms / 1000);
		sd_notify(0, "STOPPING=1");
		/* A parked Pull could still bring work: end it.  Pull has no
		 * way to say "nothing new, please", so while draining an
		 * empty Report keeps us alive instead (any call does). */
		if (w->link_state == WK_LINK_PULLING)
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
	if (wk_attempts_init(w) != 0 || (w->name = strdup(c->name)) == NULL ||
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
	                          .user = c->runner.user,
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
	wk_link_init(w);
	wk_outbox_init(w);
	uv_timer_init(loop, &w->stop_timer);
	uv_timer_init(loop, &w->beat_timer);
	w->stop_timer.data = w->beat_timer.data = w;
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
	if (w == NULL)
		return;
	wk_attempts_free(w);
	wlink_close(w->link);
	wk_outbox_free(w);
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
