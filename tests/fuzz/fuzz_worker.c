/*
 * libFuzzer target: the worker daemon against a hostile scheduler.  The
 * replies the scheduler sends on the worker link (to RegisterWorker, Pull
 * and Report) come from the input, and go to the real worker daemon
 * (daemon/worker/workerd*.c: wk_on_register, wk_on_pull and wk_take,
 * wk_on_report and the cancels, the outbox, the drain), which runs its
 * items and replicas with the real runner, pool and replica code.
 *
 * What is fake: the link (this file defines wlink.h's functions, so the
 * library's wlink.c is not linked; a call is recorded, and answered by
 * the next record for its channel, exactly as wlink_deliver answers it:
 * the reply's bytes unpacked as a troupe.Reply, TROUPE_EPROTO when they
 * are not one) and processes (fuzz_spawn.h: every spawn fails, as for a
 * command that does not exist, so an item's attempt ends with a report
 * and nothing ever runs).  Each input gets a fresh worker (2 slots) that
 * registers at once; at the end it is stopped (SIGTERM twice) and must
 * finish and free everything.
 *
 * An input is a sequence of up to FZ_MAX_RECORDS records (fuzz_common.h:
 * sel:1 len:2 data:len).  For sel < 0xf0: bit 0 is the channel (0: the
 * Pull channel, which carries RegisterWorker and Pull; 1: Report), bits
 * 1-2 what the reply is: 0 data is the whole envelope, 1 an OK envelope
 * with data as its body (a RegisterWorkerReply, PullReply or
 * ReportReply), 2 an error envelope (code data[0] % 17, the rest as its
 * message), 3 a transport error (TROUPE_ETIMEDOUT).  A record for a
 * channel with no call under way is skipped.  0xf0: the worker is told to
 * stop (SIGTERM); 0xf1: every timer due later fires now (backoffs,
 * heartbeats, the drain timeout, the watchdog).  The loop turns after each
 * record.
 *
 * Threading: one thread; the libuv loop is run by this file only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.pb-c.h"
#include "fuzz_common.h"
#include "fuzz_spawn.h"
#include "troupe/error.h"
#include "wlink.h"
#include "workerd.h"

#define FZ_MAX_RECORDS 16

static uv_loop_t fz_loop;

/* The fake link. */

typedef struct fz_ch {
	bool     busy;
	bool     cancelled;
	wlink_fn fn;
	void    *arg;
} fz_ch;

struct wlink {
	char *url;
	fz_ch ch[2];
};

static wlink *fz_link; /* the worker's current link */

int
wlink_open(uv_loop_t *loop, const char *url, const char *token,
           const char *tls_ca, wlink **out, char *err, size_t errlen)
{
	wlink *l = calloc(1, sizeof(*l));

	(void)loop;
	(void)token;
	(void)tls_ca;
	*out = NULL;
	if (l == NULL || (l->url = strdup(url)) == NULL) {
		free(l);
		snprintf(err, errlen, "out of memory");
		return TROUPE_ENOMEM;
	}
	*out = fz_link = l;
	return 0;
}

void
wlink_close(wlink *l)
{
	if (l == NULL)
		return;
	if (fz_link == l)
		fz_link = NULL;
	free(l->url);
	free(l);
}

int
wlink_call(wlink *l, wlink_chan ch, const char *method,
           const ProtobufCMessage *body, int timeout_ms, wlink_fn fn, void *arg)
{
	size_t   n;
	uint8_t *buf;

	(void)timeout_ms;
	(void)method;
	if (l->ch[ch].busy)
		return TROUPE_ESTATE;
	/* What the worker sends must pack, as wlink_call packs it. */
	n = protobuf_c_message_get_packed_size(body);
	if ((buf = malloc(n > 0 ? n : 1)) == NULL)
		return TROUPE_ENOMEM;
	if (protobuf_c_message_pack(body, buf) != n)
		abort();
	free(buf);
	l->ch[ch] = (fz_ch){.busy = true, .fn = fn, .arg = arg};
	return 0;
}

bool
wlink_busy(const wlink *l, wlink_chan ch)
{
	return l->ch[ch].busy;
}

void
wlink_cancel(wlink *l, wlink_chan ch)
{
	if (l->ch[ch].busy)
		l->ch[ch].cancelled = true; /* told from the loop, later */
}

const char *
wlink_url(const wlink *l)
{
	return l->url;
}

/* Ends the call on ch with rv and the reply in buf (rv 0), as
 * wlink_deliver does. */
static void
fz_deliver(int ch, int rv, const uint8_t *buf, size_t len)
{
	fz_ch          c = fz_link->ch[ch];
	Troupe__Reply *rep = NULL;

	fz_link->ch[ch] = (fz_ch){0};
	if (rv == 0 && (rep = troupe__reply__unpack(NULL, len, buf)) == NULL)
		rv = TROUPE_EPROTO;
	c.fn(c.arg, rv, rep);
	if (rep != NULL)
		troupe__reply__free_unpacked(rep, NULL);
}

static void
fz_deliver_cancels(void)
{
	for (int ch = 0; ch < 2 && fz_link != NULL; ch++)
		if (fz_link->ch[ch].busy && fz_link->ch[ch].cancelled)
			fz_deliver(ch, TROUPE_ECANCELED, NULL, 0);
}

/* Time. */

static void
fz_collect_timer(uv_handle_t *h, void *arg)
{
	uv_timer_t **t = arg;

	if (h->type != UV_TIMER || !uv_is_active(h))
		return;
	for (int i = 0; i < 32; i++)
		if (t[i] == NULL) {
			t[i] = (uv_timer_t *)h;
			return;
		}
}

/* Every active timer fires now, as if its time had come. */
static void
fz_fire_timers(void)
{
	uv_timer_t *t[32] = {0};

	uv_walk(&fz_loop, fz_collect_timer, t);
	for (int i = 0; i < 32 && t[i] != NULL; i++) {
		uv_timer_cb cb = t[i]->timer_cb;
		uint64_t    repeat = uv_timer_get_repeat(t[i]);

		if (!uv_is_active((uv_handle_t *)t[i]))
			continue; /* stopped by an earlier one */
		uv_timer_stop(t[i]);
		if (repeat > 0)
			uv_timer_start(t[i], cb, repeat, repeat);
		cb(t[i]);
	}
}

static void
fz_turn(void)
{
	fz_deliver_cancels();
	uv_run(&fz_loop, UV_RUN_NOWAIT);
	fz_deliver_cancels();
}

/* One record. */
static void
fz_record(workerd *w, uint8_t sel, const uint8_t *data, size_t len)
{
	Troupe__Reply rep = TROUPE__REPLY__INIT;
	int           ch = sel & 1, mode = (sel >> 1) & 3;
	uint8_t      *buf = NULL;
	char         *msg = NULL;
	size_t        n;

	if (sel == 0xf0) {
		workerd_stop(w);
		return;
	}
	if (sel >= 0xf0) {
		fz_fire_timers();
		return;
	}
	if (fz_link == NULL || !fz_link->ch[ch].busy ||
	    fz_link->ch[ch].cancelled)
		return;
	switch (mode) {
	case 0: fz_deliver(ch, 0, data, len); return;
	case 3: fz_deliver(ch, TROUPE_ETIMEDOUT, NULL, 0); return;
	case 1:
		rep.code = TROUPE__CODE__OK;
		rep.body.data = (uint8_t *)data;
		rep.body.len = len;
		break;
	default:
		rep.code = len > 0 ? data[0] % 17 : TROUPE__CODE__INTERNAL;
		if ((msg = strndup(len > 0 ? (const char *)data + 1 : "",
		                   len > 0 ? len - 1 : 0)) == NULL)
			return;
		rep.message = msg;
		break;
	}
	n = troupe__reply__get_packed_size(&rep);
	if ((buf = malloc(n > 0 ? n : 1)) != NULL) {
		troupe__reply__pack(&rep, buf);
		fz_deliver(ch, 0, buf, n);
	}
	free(buf);
	free(msg);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	fz_spawn_mode = FZ_SPAWN_FAIL;
	if (uv_loop_init(&fz_loop) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	workerd_conf   c = {0};
	workerd       *w = NULL;
	fz_reader      r = {data, size};
	char           err[256];
	uint8_t        sel;
	const uint8_t *p;
	size_t         len;
	int            i;

	c.scheduler = "ipc:///nonexistent/troupe-fuzz.sock";
	c.name = "fuzz-worker";
	c.host = "fuzz-host";
	c.slots = 2;
	c.drain_timeout_ms = 1000;
	if (workerd_open(&fz_loop, &c, &w, err, sizeof(err)) != 0)
		abort();
	for (i = 0; i < FZ_MAX_RECORDS && fz_next(&r, &sel, &p, &len); i++) {
		fz_record(w, sel, p, len);
		fz_turn();
	}
	/* SIGTERM twice: halt; everything must end and close. */
	workerd_stop(w);
	fz_turn();
	workerd_stop(w);
	for (i = 0; i < 200 && uv_loop_alive(&fz_loop); i++) {
		fz_turn();
		fz_fire_timers();
	}
	if (uv_loop_alive(&fz_loop))
		abort(); /* the worker never finished */
	workerd_free(w);
	return 0;
}
