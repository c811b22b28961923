/*
 * An in-process scheduler for unit tests (see sched_fixture.h).
 *
 * Threading: the loop thread (sfx_thread) owns the scheduler, its rpc
 * servers and the loopq; nng's threads only post to the loop through
 * loopq.  The test thread touches the loop only through the stop async.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "troupe/sockclose.h"
#include "api.pb-c.h"
#include "link.pb-c.h"
#include "sched_fixture.h"
#include "troupe/envelope.h"

/* Loop thread: what main.c's signal handler does. */
static void
sfx_stop_cb(uv_async_t *h)
{
	sfx *f = h->data;

	(void)sched_flush(f->s);
	uv_stop(&f->loop);
}

/* Loop thread: runs the loop, then shuts down in main.c's order. */
static void
sfx_thread(void *arg)
{
	sfx *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&f->stop, NULL);
	sched_forget_calls(f->s);
	rpc_server_close(f->api);
	rpc_server_close(f->link);
	loopq_close(f->q);
	sched_close(f->s);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	f->close_rv = uv_loop_close(&f->loop);
}

void
sfx_dial(const char *url, nng_socket *out)
{
	assert_int_equal(nng_req0_open(out), 0);
	nng_socket_set_ms(*out, NNG_OPT_RECVTIMEO, SFX_CALL_TIMEOUT_MS);
	nng_socket_set_ms(*out, NNG_OPT_SENDTIMEO, SFX_CALL_TIMEOUT_MS);
	nng_socket_set_size(*out, NNG_OPT_RECVMAXSZ, TROUPE_MAX_MSG);
	assert_int_equal(nng_dial(*out, url, NULL, 0), 0);
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static int
sfx_free_port(void)
{
	struct sockaddr_in sa = {0};
	socklen_t          len = sizeof(sa);
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	int                port;

	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Serves service at url (with the fixture's token) into *out. */
static void
sfx_listen(sfx *f, const char *url, const rpc_service *service,
           rpc_server **out)
{
	rpc_listen_opts lo = {.url = url, .token = f->token};
	char            err[512] = "";
	int rv = rpc_server_open(&f->loop, f->q, &lo, service, out, err,
	                         sizeof(err));

	if (rv != 0)
		print_error("%s: %s\n", url, err);
	assert_int_equal(rv, 0);
}

int
sfx_setup(void **state)
{
	const sfx_opts *o = *state;
	sfx            *f = calloc(1, sizeof(*f));
	sched_opts      so = {0};
	char            err[512] = "";

	assert_non_null(o);
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/%s-XXXXXX", o->dir_prefix);
	assert_non_null(mkdtemp(f->dir));
	f->token = o->token;
	if (o->tcp)
		snprintf(f->api_url, sizeof(f->api_url), "tcp://127.0.0.1:%d",
		         sfx_free_port());
	else
		snprintf(f->api_url, sizeof(f->api_url), "ipc://%s/api.sock",
		         f->dir);
	snprintf(f->link_url, sizeof(f->link_url), "ipc://%s/worker.sock",
	         f->dir);
	snprintf(f->db, sizeof(f->db), "%s/troupe.db", f->dir);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(loopq_open(&f->loop, &f->q), 0);
	so.db_path = f->db;
	so.state_dir = f->dir;
	so.pull_timeout_ms = o->pull_timeout_ms;
	so.lost_after_ms = o->lost_after_ms;
	so.actor_prefetch = o->actor_prefetch;
	assert_int_equal(sched_open(&f->loop, &so, &f->s, err, sizeof(err)), 0);
	sfx_listen(f, f->api_url, api_service(f->s), &f->api);
	sfx_listen(f, f->link_url, link_service(f->s), &f->link);
	rpc_server_on_disconnect(f->link, sched_on_disconnect, f->s);
	assert_int_equal(uv_async_init(&f->loop, &f->stop, sfx_stop_cb), 0);
	f->stop.data = f;
	assert_int_equal(uv_thread_create(&f->th, sfx_thread, f), 0);
	sfx_dial(f->api_url, &f->cli);
	*state = f;
	return 0;
}

int
sfx_teardown(void **state)
{
	sfx           *f = *state;
	DIR           *d;
	struct dirent *de;
	char           path[512];

	(void)troupe_sock_close(f->cli, TROUPE_SOCK_CLOSE_MS);
	uv_async_send(&f->stop);
	uv_thread_join(&f->th);
	assert_int_equal(f->close_rv, 0);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", f->dir,
			         de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
sfx_chan_cb(void *arg)
{
	sfx_chan *c = arg;

	atomic_store(&c->done, true);
}

void
sfx_chan_open(sfx_chan *c, nng_socket s)
{
	assert_int_equal(nng_ctx_open(&c->ctx, s), 0);
	assert_int_equal(nng_aio_alloc(&c->aio, sfx_chan_cb, c), 0);
}

void
sfx_chan_close(sfx_chan *c)
{
	nng_aio_stop(c->aio);
	if (nng_aio_get_msg(c->aio) != NULL)
		nng_msg_free(nng_aio_get_msg(c->aio));
	nng_aio_free(c->aio);
	nng_ctx_close(c->ctx);
}

void
sfx_chan_send_msg(sfx_chan *c, nng_msg *m, int timeout_ms)
{
	nng_aio_set_msg(c->aio, m);
	nng_aio_set_timeout(c->aio, SFX_CALL_TIMEOUT_MS);
	nng_ctx_send(c->ctx, c->aio);
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) != 0)
		nng_msg_free(m);
	assert_int_equal(nng_aio_result(c->aio), 0);
	atomic_store(&c->done, false);
	nng_aio_set_timeout(c->aio, timeout_ms);
	nng_ctx_recv(c->ctx, c->aio);
}

void
sfx_chan_send(sfx_chan *c, const char *method, const char *token,
              const ProtobufCMessage *in, int timeout_ms)
{
	nng_msg *m = NULL;

	assert_int_equal(troupe_envelope_request(method, token, in, &m), 0);
	sfx_chan_send_msg(c, m, timeout_ms);
}

int
sfx_chan_recv(sfx_chan *c, const ProtobufCMessageDescriptor *desc, void **out,
              char *why, size_t whylen)
{
	nng_msg       *m;
	Troupe__Reply *rep;
	int            code;

	if (out != NULL)
		*out = NULL;
	if (why != NULL)
		why[0] = '\0';
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) != 0)
		return SFX_NO_REPLY;
	m = nng_aio_get_msg(c->aio);
	nng_aio_set_msg(c->aio, NULL);
	rep = troupe__reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	assert_non_null(rep);
	code = rep->code;
	if (why != NULL)
		snprintf(why, whylen, "%s", rep->message);
	if (code == TROUPE__CODE__OK && desc != NULL && out != NULL) {
		*out = protobuf_c_message_unpack(desc, NULL, rep->body.len,
		                                 rep->body.data);
		assert_non_null(*out);
	}
	troupe__reply__free_unpacked(rep, NULL);
	return code;
}

int
sfx_call(nng_socket sock, const char *method, const char *token,
         const ProtobufCMessage *in, const ProtobufCMessageDescriptor *desc,
         void **out, char *why, size_t whylen)
{
	sfx_chan c;
	int      code;

	sfx_chan_open(&c, sock);
	sfx_chan_send(&c, method, token, in, SFX_CALL_TIMEOUT_MS);
	code = sfx_chan_recv(&c, desc, out, why, whylen);
	sfx_chan_close(&c);
	return code;
}
