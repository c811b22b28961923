/*
 * The worker link's client end (see wlink.h for the threading contract).
 *
 * A channel's fields are shared with nng's threads only while a call is
 * under way: the loop thread fills them and submits the send; from then
 * on only the aio callback touches them, until it posts the outcome to the
 * loop (loopq's mutex orders the hand-over); the loop then reads the
 * outcome and the channel is the loop's again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "log.h"
#include "loopq.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "troupe/sockclose.h"
#include "wlink.h"

#define WLINK_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

typedef struct wlink_ch {
	wlink   *l;
	nng_ctx  ctx;
	nng_aio *aio;
	bool     open; /* ctx and aio exist */
	bool     busy; /* loop: a call is under way */
	wlink_fn fn;   /* loop: whom to tell */
	void    *arg;
	int      timeout; /* per step, ms */
	bool     recving; /* the send is done, waiting for the reply */
	int      rv;      /* outcome, an NNG_E* code */
	nng_msg *msg;     /* the reply when rv == 0 */
} wlink_ch;

struct wlink {
	nng_socket      sock;
	nng_dialer      dialer;
	nng_tls_config *tls;
	loopq          *q;
	char           *url;
	char           *token;
	wlink_ch        ch[2];
};

/* Loop thread: hands a finished call to its owner. */
static void
wlink_deliver(void *arg)
{
	wlink_ch      *c = arg;
	nng_msg       *msg = c->msg;
	Troupe__Reply *rep = NULL;
	int            rv = troupe_err_from_nng(c->rv);

	c->msg = NULL;
	c->busy = false;
	if (rv == 0) {
		rep = troupe__reply__unpack(NULL, nng_msg_len(msg),
		                            nng_msg_body(msg));
		if (rep == NULL)
			rv = TROUPE_EPROTO;
	}
	if (msg != NULL)
		nng_msg_free(msg);
	c->fn(c->arg, rv, rep);
	if (rep != NULL)
		troupe__reply__free_unpacked(rep, NULL);
}

/* nng thread: send done -> receive; receive done -> tell the loop. */
static void
wlink_aio_cb(void *arg)
{
	wlink_ch *c = arg;
	int       rv = nng_aio_result(c->aio);

	if (!c->recving && rv == 0) {
		c->recving = true;
		nng_aio_set_timeout(c->aio, c->timeout);
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (!c->recving) {
		/* A failed send gives the request back to us. */
		nng_msg *m = nng_aio_get_msg(c->aio);

		if (m != NULL)
			nng_msg_free(m);
		nng_aio_set_msg(c->aio, NULL);
	}
	c->rv = rv;
	c->msg = rv == 0 ? nng_aio_get_msg(c->aio) : NULL;
	/* Out of memory here would leave the channel busy for good; the
	 * worker then notices no progress, which beats touching loop state
	 * from this thread. */
	loopq_post(c->l->q, wlink_deliver, c);
}

static int
wlink_tls(wlink *l, const char *tls_ca, char *err, size_t errlen)
{
	int rv;

	if (tls_ca == NULL && access(WLINK_SYSTEM_CA, R_OK) == 0)
		tls_ca = WLINK_SYSTEM_CA;
	if ((rv = nng_tls_config_alloc(&l->tls, NNG_TLS_MODE_CLIENT)) != 0) {
		snprintf(err, errlen, "TLS for %s: %s", l->url,
		         nng_strerror(rv));
		return troupe_err_from_nng(rv);
	}
	if (tls_ca != NULL &&
	    (rv = nng_tls_config_ca_file(l->tls, tls_ca)) != 0) {
		snprintf(err, errlen, "cannot use CA file %s: %s", tls_ca,
		         nng_strerror(rv));
		return troupe_err_from_nng(rv);
	}
	if ((rv = nng_dialer_set_ptr(l->dialer, NNG_OPT_TLS_CONFIG, l->tls)) !=
	    0) {
		snprintf(err, errlen, "TLS for %s: %s", l->url,
		         nng_strerror(rv));
		return troupe_err_from_nng(rv);
	}
	return 0;
}

int
wlink_open(uv_loop_t *loop, const char *url, const char *token,
           const char *tls_ca, wlink **out, char *err, size_t errlen)
{
	wlink *l = NULL;
	int    rv;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->url = strdup(url)) == NULL ||
	    (token != NULL && (l->token = strdup(token)) == NULL)) {
		rv = TROUPE_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rv = loopq_open(loop, &l->q)) != 0) {
		snprintf(err, errlen, "cannot set up the loop: %s",
		         troupe_strerror(rv));
		goto fail;
	}
	if ((rv = nng_req0_open(&l->sock)) != 0)
		goto nng_fail;
	nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, TROUPE_MAX_MSG);
	nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 2000);
	for (int i = 0; i < 2; i++) {
		wlink_ch *c = &l->ch[i];

		c->l = l;
		if ((rv = nng_ctx_open(&c->ctx, l->sock)) != 0)
			goto nng_fail;
		if ((rv = nng_aio_alloc(&c->aio, wlink_aio_cb, c)) != 0) {
			nng_ctx_close(c->ctx);
			goto nng_fail;
		}
		c->open = true;
		/* Never resend behind our back: a second RegisterWorker or a
		 * second parked Pull would confuse the scheduler.  A request
		 * in flight when the connection drops is still sent again on
		 * the next connection, which is what we want. */
		nng_ctx_set_ms(c->ctx, NNG_OPT_REQ_RESENDTIME,
		               NNG_DURATION_INFINITE);
	}
	if ((rv = nng_dialer_create(&l->dialer, l->sock, url)) != 0) {
		snprintf(err, errlen, "bad scheduler address %s: %s", url,
		         nng_strerror(rv));
		rv = TROUPE_EINVAL;
		goto fail;
	}
	nng_dialer_set_size(l->dialer, NNG_OPT_RECVMAXSZ, TROUPE_MAX_MSG);
	nng_dialer_set_ms(l->dialer, NNG_OPT_RECONNMINT, 100);
	nng_dialer_set_ms(l->dialer, NNG_OPT_RECONNMAXT, 2000);
	if (strncasecmp(url, "tls+", 4) == 0 &&
	    (rv = wlink_tls(l, tls_ca, err, errlen)) != 0)
		goto fail;
	/* Non-blocking: a scheduler that is not up yet is retried. */
	if ((rv = nng_dialer_start(l->dialer, NNG_FLAG_NONBLOCK)) != 0)
		goto nng_fail;
	*out = l;
	return 0;
nng_fail:
	snprintf(err, errlen, "cannot open the link to %s: %s", url,
	         nng_strerror(rv));
	rv = troupe_err_from_nng(rv);
fail:
	wlink_close(l);
	return rv;
}

void
wlink_close(wlink *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		wlink_ch *c = &l->ch[i];

		if (!c->open)
			continue;
		/* Waits out a running callback; none runs after this. */
		nng_aio_stop(c->aio);
		if (c->msg != NULL)
			nng_msg_free(c->msg); /* posted, never delivered */
		nng_ctx_close(c->ctx);
		nng_aio_free(c->aio);
	}
	if (nng_socket_id(l->sock) > 0 &&
	    troupe_sock_close(l->sock, TROUPE_SOCK_CLOSE_MS) != 0)
		log_warn("the link's socket did not close in %d ms (nng "
		         "1.5.2's close deadlock); going on without it",
		         TROUPE_SOCK_CLOSE_MS);
	if (l->tls != NULL)
		nng_tls_config_free(l->tls);
	/* Deliveries still queued are dropped with the queue. */
	loopq_close(l->q);
	free(l->url);
	free(l->token);
	free(l);
}

int
wlink_call(wlink *l, wlink_chan ch, const char *method,
           const ProtobufCMessage *body, int timeout_ms, wlink_fn fn, void *arg)
{
	wlink_ch *c = &l->ch[ch];
	nng_msg  *msg = NULL;
	int       rv;

	if (c->busy)
		return TROUPE_ESTATE;
	if ((rv = troupe_envelope_request(method, l->token, body, &msg)) != 0)
		return rv;
	c->busy = true;
	c->fn = fn;
	c->arg = arg;
	c->timeout = timeout_ms;
	c->recving = false;
	c->rv = 0;
	c->msg = NULL;
	nng_aio_set_msg(c->aio, msg);
	nng_aio_set_timeout(c->aio, timeout_ms);
	nng_ctx_send(c->ctx, c->aio);
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
		nng_aio_cancel(l->ch[ch].aio);
}

const char *
wlink_url(const wlink *l)
{
	return l->url;
}
