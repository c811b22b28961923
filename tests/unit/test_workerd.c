/*
 * The worker daemon's state machine (daemon/worker/workerd.c) against a
 * fake scheduler: an nng rep socket served by two threads, scripted per
 * test.  Real processes run the items.  Every wait is bounded.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <uv.h>

#include "troupe/sockclose.h"
#include "link.pb-c.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "workerd.h"
#include "skip.h"

#define FAKE_THREADS  2
#define FAKE_MAX      16
#define TEST_GUARD_MS 15000

typedef struct fake_result {
	char     execution[32];
	uint64_t index;
	uint32_t attempt;
	int      state;
	char     output[64];
	char     error[128];
	int64_t  started_ms, finished_ms;
	bool     system_failure;
} fake_result;

typedef struct fake {
	nng_socket      sock;
	pthread_t       th[FAKE_THREADS];
	pthread_mutex_t mtx;
	bool            stop;
	char            url[256];
	char            dir[64];

	/* Script. */
	uint8_t *pull_body; /* a packed PullReply for the next Pull */
	size_t   pull_len;
	int      not_found_reports; /* answer these Reports NOT_FOUND */
	bool     unauth;

	/* What the worker did. */
	int         registers, pulls, reports;
	int         pulls_since_body; /* Pulls answered since pull_body went */
	char        worker_id[32];    /* the id that is valid now, or "" */
	char        reg_name[64], reg_version[32];
	uint32_t    reg_slots;
	size_t      reg_labels, n_held;
	fake_result held[FAKE_MAX];
	fake_result results[FAKE_MAX];
	size_t      n_results;

	/* The replicas listed by the last Pull, and what was seen. */
	size_t   n_replicas;
	char     replica_id[32];
	uint32_t replica_pid;
	uint64_t replica_served;
	int      replica_state;
	int      pulls_with_served;  /* listing a replica with >= 3 items */
	int      empty_after_served; /* then listing none */
} fake;

static nng_msg *
fake_reply(Troupe__Code code, const char *why, const ProtobufCMessage *body)
{
	nng_msg *m = NULL;

	assert_int_equal(troupe_envelope_reply(code, why, body, &m), 0);
	return m;
}

static nng_msg *
fake_register(fake *f, const Troupe__Request *req)
{
	Troupe__RegisterWorkerRequest *in =
	    troupe__register_worker_request__unpack(NULL, req->body.len,
	                                            req->body.data);
	Troupe__RegisterWorkerReply rep = TROUPE__REGISTER_WORKER_REPLY__INIT;
	nng_msg                    *m;

	assert_non_null(in);
	pthread_mutex_lock(&f->mtx);
	if (f->unauth) {
		pthread_mutex_unlock(&f->mtx);
		troupe__register_worker_request__free_unpacked(in, NULL);
		return fake_reply(TROUPE__CODE__UNAUTHENTICATED, "wrong token",
		                  NULL);
	}
	f->registers++;
	snprintf(f->worker_id, sizeof(f->worker_id), "w-%d", f->registers);
	snprintf(f->reg_name, sizeof(f->reg_name), "%s", in->name);
	snprintf(f->reg_version, sizeof(f->reg_version), "%s", in->version);
	f->reg_slots = in->slots;
	f->reg_labels = in->n_labels;
	f->n_held = 0;
	for (size_t i = 0; i < in->n_held && i < FAKE_MAX; i++) {
		fake_result *h = &f->held[f->n_held++];

		snprintf(h->execution, sizeof(h->execution), "%s",
		         in->held[i]->execution);
		h->index = in->held[i]->index;
		h->attempt = in->held[i]->attempt;
	}
	rep.worker_id = f->worker_id;
	rep.pull_timeout_ms = 500;
	rep.lost_after_ms = 2000;
	m = fake_reply(TROUPE__CODE__OK, NULL, &rep.base);
	pthread_mutex_unlock(&f->mtx);
	troupe__register_worker_request__free_unpacked(in, NULL);
	return m;
}

static nng_msg *
fake_pull(fake *f, const Troupe__Request *req)
{
	Troupe__PullRequest *in =
	    troupe__pull_request__unpack(NULL, req->body.len, req->body.data);
	Troupe__Reply env = TROUPE__REPLY__INIT;
	uint8_t      *body = NULL;
	size_t        len = 0;
	bool          known;
	nng_msg      *m = NULL;
	size_t        n;

	assert_non_null(in);
	pthread_mutex_lock(&f->mtx);
	f->pulls++;
	known = strcmp(in->worker_id, f->worker_id) == 0;
	if (known) {
		f->n_replicas = in->n_replicas;
		if (in->n_replicas > 0) {
			const Troupe__ReplicaStatus *r = in->replicas[0];

			snprintf(f->replica_id, sizeof(f->replica_id), "%s",
			         r->replica_id);
			f->replica_pid = r->pid;
			f->replica_served = r->items_served;
			f->replica_state = r->state;
			if (r->items_served >= 3)
				f->pulls_with_served++;
		} else if (f->pulls_with_served > 0) {
			f->empty_after_served++;
		}
		body = f->pull_body;
		len = f->pull_len;
		f->pull_body = NULL;
		f->pull_len = 0;
		if (body != NULL)
			f->pulls_since_body = 0;
		else
			f->pulls_since_body++;
	}
	pthread_mutex_unlock(&f->mtx);
	troupe__pull_request__free_unpacked(in, NULL);
	if (!known)
		return fake_reply(TROUPE__CODE__NOT_FOUND, "register again",
		                  NULL);
	if (body == NULL)
		usleep(30000); /* a short long poll */
	env.code = TROUPE__CODE__OK;
	env.message = "";
	env.body.data = body;
	env.body.len = len;
	n = protobuf_c_message_get_packed_size(&env.base);
	assert_int_equal(nng_msg_alloc(&m, n), 0);
	protobuf_c_message_pack(&env.base, nng_msg_body(m));
	free(body);
	return m;
}

static nng_msg *
fake_report(fake *f, const Troupe__Request *req)
{
	Troupe__ReportRequest *in =
	    troupe__report_request__unpack(NULL, req->body.len, req->body.data);
	Troupe__ReportReply rep = TROUPE__REPORT_REPLY__INIT;
	nng_msg            *m;

	assert_non_null(in);
	pthread_mutex_lock(&f->mtx);
	f->reports++;
	if (strcmp(in->worker_id, f->worker_id) != 0 ||
	    (in->n_results > 0 && f->not_found_reports > 0)) {
		if (in->n_results > 0 && f->not_found_reports > 0) {
			f->not_found_reports--;
			f->worker_id[0] = '\0'; /* as after a restart */
		}
		pthread_mutex_unlock(&f->mtx);
		troupe__report_request__free_unpacked(in, NULL);
		return fake_reply(TROUPE__CODE__NOT_FOUND, "register again",
		                  NULL);
	}
	for (size_t i = 0; i < in->n_results && f->n_results < FAKE_MAX; i++) {
		const Troupe__ItemReport *r = in->results[i];
		fake_result              *o = &f->results[f->n_results++];

		snprintf(o->execution, sizeof(o->execution), "%s",
		         r->execution);
		o->index = r->index;
		o->attempt = r->attempt;
		o->state = r->state;
		snprintf(o->output, sizeof(o->output), "%.*s",
		         (int)r->output.len, (const char *)r->output.data);
		snprintf(o->error, sizeof(o->error), "%s", r->error);
		o->started_ms = r->started_ms;
		o->finished_ms = r->finished_ms;
		o->system_failure = r->system_failure;
	}
	pthread_mutex_unlock(&f->mtx);
	troupe__report_request__free_unpacked(in, NULL);
	m = fake_reply(TROUPE__CODE__OK, NULL, &rep.base);
	return m;
}

static void *
fake_serve(void *arg)
{
	fake    *f = arg;
	nng_ctx  ctx;
	nng_aio *aio = NULL;

	assert_int_equal(nng_ctx_open(&ctx, f->sock), 0);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	for (;;) {
		Troupe__Request *req;
		nng_msg         *msg, *rep;
		bool             stop;

		pthread_mutex_lock(&f->mtx);
		stop = f->stop;
		pthread_mutex_unlock(&f->mtx);
		if (stop)
			break;
		nng_aio_set_timeout(aio, 50);
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			continue;
		msg = nng_aio_get_msg(aio);
		req = troupe__request__unpack(NULL, nng_msg_len(msg),
		                              nng_msg_body(msg));
		nng_msg_free(msg);
		assert_non_null(req);
		if (strcmp(req->method, "RegisterWorker") == 0)
			rep = fake_register(f, req);
		else if (strcmp(req->method, "Pull") == 0)
			rep = fake_pull(f, req);
		else if (strcmp(req->method, "Report") == 0)
			rep = fake_report(f, req);
		else
			rep =
			    fake_reply(TROUPE__CODE__UNIMPLEMENTED, "no", NULL);
		troupe__request__free_unpacked(req, NULL);
		nng_aio_set_msg(aio, rep);
		nng_aio_set_timeout(aio, 1000);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			nng_msg_free(rep);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

static void
fake_start(fake *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mtx, NULL);
	snprintf(f->dir, sizeof(f->dir), "/tmp/troupe-test-workerd-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "ipc://%s/w.sock", f->dir);
	assert_int_equal(nng_rep0_open(&f->sock), 0);
	assert_int_equal(nng_listen(f->sock, f->url, NULL, 0), 0);
	for (int i = 0; i < FAKE_THREADS; i++)
		assert_int_equal(pthread_create(&f->th[i], NULL, fake_serve, f),
		                 0);
}

static void
fake_stop(fake *f)
{
	char path[320];

	pthread_mutex_lock(&f->mtx);
	f->stop = true;
	pthread_mutex_unlock(&f->mtx);
	for (int i = 0; i < FAKE_THREADS; i++)
		pthread_join(f->th[i], NULL);
	(void)troupe_sock_close(f->sock, TROUPE_SOCK_CLOSE_MS);
	free(f->pull_body);
	pthread_mutex_destroy(&f->mtx);
	snprintf(path, sizeof(path), "%s/w.sock", f->dir);
	unlink(path);
	rmdir(f->dir);
}

/* Queues a Pull reply: one shard of items running cmd, and cancels. */
static void
fake_set_pull(fake *f, const char *cmd, const char **inputs, size_t n,
              const Troupe__ItemRef *cancels, size_t n_cancels)
{
	Troupe__PullReply pr = TROUPE__PULL_REPLY__INIT;
	Troupe__Shard     sh = TROUPE__SHARD__INIT;
	Troupe__Shard    *shp[1] = {&sh};
	Troupe__TaskSpec  task = TROUPE__TASK_SPEC__INIT;
	Troupe__WorkItem  items[FAKE_MAX];
	Troupe__WorkItem *itp[FAKE_MAX];
	Troupe__ItemRef  *cp[FAKE_MAX];
	uint8_t          *buf = NULL;
	size_t            len = 0;

	task.command = (char *)cmd;
	sh.execution = "ex-1";
	sh.task = &task;
	for (size_t i = 0; i < n; i++) {
		troupe__work_item__init(&items[i]);
		items[i].index = i;
		items[i].attempt = 1;
		items[i].input.data = (uint8_t *)inputs[i];
		items[i].input.len = strlen(inputs[i]);
		itp[i] = &items[i];
	}
	sh.items = itp;
	sh.n_items = n;
	if (n > 0) {
		pr.shards = shp;
		pr.n_shards = 1;
	}
	for (size_t i = 0; i < n_cancels; i++)
		cp[i] = (Troupe__ItemRef *)&cancels[i];
	pr.cancels = cp;
	pr.n_cancels = n_cancels;
	assert_int_equal(troupe_pack(&pr.base, &buf, &len), 0);
	pthread_mutex_lock(&f->mtx);
	free(f->pull_body);
	f->pull_body = buf;
	f->pull_len = len;
	pthread_mutex_unlock(&f->mtx);
}

/* Queues a Pull reply that starts replica r-1 of environment "e" (cmd,
 * lines, ttl seconds) when cmd is not NULL, with one shard of items for
 * environment env_key. */
static void
fake_set_pull_actor(fake *f, const char *cmd, uint32_t ttl, const char *env_key,
                    const char **inputs, size_t n)
{
	Troupe__PullReply     pr = TROUPE__PULL_REPLY__INIT;
	Troupe__Shard         sh = TROUPE__SHARD__INIT;
	Troupe__Shard        *shp[1] = {&sh};
	Troupe__TaskSpec      task = TROUPE__TASK_SPEC__INIT;
	Troupe__ReplicaStart  rs = TROUPE__REPLICA_START__INIT;
	Troupe__ReplicaStart *rsp[1] = {&rs};
	Troupe__ActorEnv      env = TROUPE__ACTOR_ENV__INIT;
	Troupe__WorkItem      items[FAKE_MAX];
	Troupe__WorkItem     *itp[FAKE_MAX];
	uint8_t              *buf = NULL;
	size_t                len = 0;

	task.command = "unused";
	sh.execution = "ex-1";
	sh.task = &task;
	sh.env_key = (char *)env_key;
	for (size_t i = 0; i < n; i++) {
		troupe__work_item__init(&items[i]);
		items[i].index = i;
		items[i].attempt = 1;
		items[i].input.data = (uint8_t *)inputs[i];
		items[i].input.len = strlen(inputs[i]);
		itp[i] = &items[i];
	}
	sh.items = itp;
	sh.n_items = n;
	pr.shards = shp;
	pr.n_shards = 1;
	if (cmd != NULL) {
		env.command = (char *)cmd;
		env.replica_count = 1;
		env.ttl_seconds = ttl;
		rs.replica_id = "r-1";
		rs.env_key = "e";
		rs.env = &env;
		pr.start_replicas = rsp;
		pr.n_start_replicas = 1;
	}
	assert_int_equal(troupe_pack(&pr.base, &buf, &len), 0);
	pthread_mutex_lock(&f->mtx);
	free(f->pull_body);
	f->pull_body = buf;
	f->pull_len = len;
	pthread_mutex_unlock(&f->mtx);
}

/* The worker under test, on its own loop, with a check that runs every
 * 10 ms and may stop it. */
typedef struct harness {
	uv_loop_t  loop;
	uv_timer_t poll;
	workerd   *w;
	fake      *f;
	bool (*check)(struct harness *h); /* true: stop the worker now */
	bool     stopped;
	uint64_t t0, stop_ms;
	int      step;
	int      pulls_at_stop;
} harness;

static void
harness_poll(uv_timer_t *t)
{
	harness *h = t->data;

	assert_true(uv_now(&h->loop) - h->t0 < TEST_GUARD_MS);
	if (!h->stopped && h->check != NULL && h->check(h)) {
		h->stopped = true;
		h->stop_ms = uv_now(&h->loop);
		pthread_mutex_lock(&h->f->mtx);
		h->pulls_at_stop = h->f->pulls;
		pthread_mutex_unlock(&h->f->mtx);
		workerd_stop(h->w);
	}
}

/* Runs a worker against f until it stops by itself; returns its exit
 * code. */
static int
harness_run(harness *h, fake *f, bool (*check)(harness *), unsigned slots)
{
	const char  *keys[] = {"zone"}, *vals[] = {"a"};
	workerd_conf c;
	char         err[256];
	int          code;

	memset(&c, 0, sizeof(c));
	c.scheduler = f->url;
	c.name = "t1";
	c.host = "testhost";
	c.slots = slots;
	c.cpu_milli = 1000;
	c.mem_bytes = 1 << 30;
	c.label_keys = keys;
	c.label_vals = vals;
	c.n_labels = 1;
	c.drain_timeout_ms = 10000;
	h->f = f;
	h->check = check;
	assert_int_equal(uv_loop_init(&h->loop), 0);
	h->t0 = uv_now(&h->loop);
	assert_int_equal(workerd_open(&h->loop, &c, &h->w, err, sizeof(err)),
	                 0);
	uv_timer_init(&h->loop, &h->poll);
	h->poll.data = h;
	uv_timer_start(&h->poll, harness_poll, 10, 10);
	/* Unreferenced: uv_run returns once the worker closed its handles. */
	uv_unref((uv_handle_t *)&h->poll);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&h->poll, NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	code = workerd_exit_code(h->w);
	workerd_free(h->w);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	return code;
}

static fake_result *
find_result(fake *f, uint64_t index)
{
	for (size_t i = 0; i < f->n_results; i++)
		if (f->results[i].index == index)
			return &f->results[i];
	return NULL;
}

static size_t
n_results(fake *f)
{
	size_t n;

	pthread_mutex_lock(&f->mtx);
	n = f->n_results;
	pthread_mutex_unlock(&f->mtx);
	return n;
}

static bool
check_three_done(harness *h)
{
	return n_results(h->f) == 3;
}

static void
test_runs_items_within_slots(void **state)
{
	const char *in[] = {"a", "b", "c"};
	fake        f;
	harness     h = {0};
	int64_t     first_end = INT64_MAX, last_start = 0;

	fake_start(&f);
	fake_set_pull(&f, "sleep 0.3; echo {}", in, 3, NULL, 0);
	assert_int_equal(harness_run(&h, &f, check_three_done, 2), 0);
	fake_stop(&f);
	assert_int_equal(f.registers, 1);
	assert_string_equal(f.reg_name, "t1");
	assert_string_equal(f.reg_version, TROUPE_VERSION);
	assert_int_equal(f.reg_slots, 2);
	assert_int_equal(f.reg_labels, 1);
	assert_int_equal(f.n_held, 0);
	assert_int_equal(f.n_results, 3);
	for (uint64_t i = 0; i < 3; i++) {
		fake_result *r = find_result(&f, i);
		char         want[8];

		assert_non_null(r);
		snprintf(want, sizeof(want), "%s\n", in[i]);
		assert_string_equal(r->execution, "ex-1");
		assert_int_equal(r->attempt, 1);
		assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_string_equal(r->output, want);
		if (r->finished_ms < first_end)
			first_end = r->finished_ms;
		if (r->started_ms > last_start)
			last_start = r->started_ms;
	}
	/* Two slots: the third item waited for one of the first two. */
	assert_true(last_start >= first_end - 5);
}

/* Sends the same four items again once the first Pull brought them (two
 * run, two wait for a slot), then drains once the second copy is in. */
static bool
check_resent(harness *h)
{
	static const char *in[] = {"a", "b", "c", "d"};
	int                pulls;
	bool               taken;

	pthread_mutex_lock(&h->f->mtx);
	pulls = h->f->pulls_since_body;
	taken = h->f->pull_body == NULL;
	pthread_mutex_unlock(&h->f->mtx);
	if (h->step == 0 && taken && pulls >= 1) {
		fake_set_pull(h->f, "sleep 0.3; echo {}", in, 4, NULL, 0);
		h->step = 1;
		return false;
	}
	/* The copy was taken, and a Pull came back after it. */
	return h->step == 1 && taken && pulls >= 1;
}

static void
test_resent_items_run_once(void **state)
{
	const char *in[] = {"a", "b", "c", "d"};
	fake        f;
	harness     h = {0};

	fake_start(&f);
	fake_set_pull(&f, "sleep 0.3; echo {}", in, 4, NULL, 0);
	assert_int_equal(harness_run(&h, &f, check_resent, 2), 0);
	fake_stop(&f);
	/* The copies of attempts already running or queued were dropped:
	 * each item ran, and reported, once. */
	assert_int_equal(f.n_results, 4);
	for (uint64_t i = 0; i < 4; i++)
		assert_non_null(find_result(&f, i));
}

static bool
check_one_done(harness *h)
{
	return n_results(h->f) == 1;
}

static void
test_reregisters_and_keeps_results(void **state)
{
	const char *in[] = {"hi"};
	fake        f;
	harness     h = {0};

	fake_start(&f);
	f.not_found_reports = 1;
	fake_set_pull(&f, "echo {}", in, 1, NULL, 0);
	assert_int_equal(harness_run(&h, &f, check_one_done, 2), 0);
	fake_stop(&f);
	/* The first Report was refused: the worker registered again,
	 * declaring the unacknowledged result, and sent it again. */
	assert_int_equal(f.registers, 2);
	assert_int_equal(f.n_held, 1);
	assert_string_equal(f.held[0].execution, "ex-1");
	assert_int_equal(f.held[0].index, 0);
	assert_int_equal(f.held[0].attempt, 1);
	assert_int_equal(f.n_results, 1);
	assert_string_equal(f.results[0].output, "hi\n");
}

static bool
check_cancel(harness *h)
{
	Troupe__ItemRef ref = TROUPE__ITEM_REF__INIT;
	int             pulls;

	pthread_mutex_lock(&h->f->mtx);
	pulls = h->f->pulls_since_body;
	pthread_mutex_unlock(&h->f->mtx);
	if (h->step == 0 && pulls >= 2) {
		/* The item runs (a Pull came back after it was sent). */
		ref.execution = "ex-1";
		ref.index = 0;
		ref.attempt = 1;
		fake_set_pull(h->f, NULL, NULL, 0, &ref, 1);
		h->step = 1;
		return false;
	}
	return h->step == 1 && pulls >= 3;
}

static void
test_cancel_kills_without_report(void **state)
{
	const char *in[] = {"x"};
	fake        f;
	harness     h = {0};

	uint64_t t0 = uv_hrtime();

	fake_start(&f);
	fake_set_pull(&f, "sleep 30", in, 1, NULL, 0);
	assert_int_equal(harness_run(&h, &f, check_cancel, 2), 0);
	fake_stop(&f);
	/* Had the kill failed, draining would have waited for sleep 30. */
	assert_true(uv_hrtime() - t0 < 5000000000ull);
	assert_int_equal(f.n_results, 0);
}

static bool
check_started(harness *h)
{
	int pulls;

	pthread_mutex_lock(&h->f->mtx);
	pulls = h->f->pulls_since_body;
	pthread_mutex_unlock(&h->f->mtx);
	return pulls >= 1;
}

static void
test_drain_finishes_and_reports(void **state)
{
	const char *in[] = {"d"};
	fake        f;
	harness     h = {0};

	fake_start(&f);
	fake_set_pull(&f, "sleep 0.5; echo done {}", in, 1, NULL, 0);
	assert_int_equal(harness_run(&h, &f, check_started, 2), 0);
	fake_stop(&f);
	assert_int_equal(f.n_results, 1);
	assert_int_equal(f.results[0].state,
	                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_string_equal(f.results[0].output, "done d\n");
	/* No Pull after the stop (one may have been on its way). */
	assert_true(f.pulls <= h.pulls_at_stop + 1);
}

static bool
check_ttl_seen(harness *h)
{
	bool done;

	pthread_mutex_lock(&h->f->mtx);
	done = h->f->n_results == 3 && h->f->empty_after_served > 0;
	pthread_mutex_unlock(&h->f->mtx);
	return done;
}

/* A replica started by the Pull reply serves the shard's items (lines:
 * the output is the line); every Pull lists it; idle past its TTL it
 * goes, and the next Pull lists nothing. */
static void
test_actor_replica_serves_and_expires(void **state)
{
	const char *in[] = {"a", "b", "c"};
	fake        f;
	harness     h = {0};

	fake_start(&f);
	fake_set_pull_actor(&f,
	                    "while read x; do echo \"$TROUPE_REPLICA $x\"; "
	                    "done",
	                    1, "e", in, 3);
	assert_int_equal(harness_run(&h, &f, check_ttl_seen, 1), 0);
	fake_stop(&f);
	for (uint64_t i = 0; i < 3; i++) {
		fake_result *r = find_result(&f, i);
		char         want[16];

		assert_non_null(r);
		snprintf(want, sizeof(want), "r-1 %s", in[i]);
		assert_int_equal(r->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_string_equal(r->output, want);
	}
	assert_true(f.pulls_with_served > 0);
	assert_int_equal(f.n_replicas, 0);
}

static bool
check_listed_busy_done(harness *h)
{
	bool done;

	pthread_mutex_lock(&h->f->mtx);
	done = h->f->n_results == 3 && h->f->pulls_with_served > 0;
	pthread_mutex_unlock(&h->f->mtx);
	return done;
}

/* Stopping the worker stops its replicas: it exits 0 with no replica
 * process left (the command ignores SIGTERM: SIGKILL after the grace). */
static void
test_actor_drain_stops_replicas(void **state)
{
	const char *in[] = {"a", "b", "c"};
	fake        f;
	harness     h = {0};
	int         gone = 0;

	fake_start(&f);
	fake_set_pull_actor(&f, "trap '' TERM; while read x; do echo $x; done",
	                    60, "e", in, 3);
	assert_int_equal(harness_run(&h, &f, check_listed_busy_done, 1), 0);
	fake_stop(&f);
	assert_string_equal(f.replica_id, "r-1");
	assert_true(f.replica_pid > 0);
	for (int i = 0; i < 300 && !gone; i++) {
		gone = kill(-(pid_t)f.replica_pid, 0) != 0 && errno == ESRCH;
		usleep(10000);
	}
	assert_true(gone);
}

static bool
check_one_result(harness *h)
{
	return n_results(h->f) >= 1;
}

/* Items for an environment with no replica here fail at once, as a
 * system failure, instead of waiting. */
static void
test_actor_no_replica_fails_fast(void **state)
{
	const char *in[] = {"a"};
	fake        f;
	harness     h = {0};

	fake_start(&f);
	fake_set_pull_actor(&f, NULL, 0, "nope", in, 1);
	assert_int_equal(harness_run(&h, &f, check_one_result, 1), 0);
	fake_stop(&f);
	assert_int_equal(f.results[0].state, TROUPE__ITEM_STATE__ITEM_FAILED);
	assert_true(f.results[0].system_failure);
	assert_non_null(strstr(f.results[0].error, "no replica of nope"));
}

static void
test_unauthenticated_exits_1(void **state)
{
	fake    f;
	harness h = {0};

	fake_start(&f);
	f.unauth = true;
	assert_int_equal(harness_run(&h, &f, NULL, 1), 1);
	fake_stop(&f);
	assert_int_equal(f.registers, 0);
}

static void
test_bad_address(void **state)
{
	uv_loop_t    loop;
	workerd_conf c;
	workerd     *w = NULL;
	char         err[256] = "";

	memset(&c, 0, sizeof(c));
	c.scheduler = "nosuch://x";
	c.name = "t1";
	c.host = "h";
	c.slots = 1;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_not_equal(workerd_open(&loop, &c, &w, err, sizeof(err)), 0);
	assert_null(w);
	assert_non_null(strstr(err, "nosuch://x"));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runs_items_within_slots),
	    cmocka_unit_test(test_resent_items_run_once),
	    cmocka_unit_test(test_reregisters_and_keeps_results),
	    cmocka_unit_test(test_cancel_kills_without_report),
	    cmocka_unit_test(test_drain_finishes_and_reports),
	    cmocka_unit_test(test_actor_replica_serves_and_expires),
	    cmocka_unit_test(test_actor_drain_stops_replicas),
	    cmocka_unit_test(test_actor_no_replica_fails_fast),
	    cmocka_unit_test(test_unauthenticated_exits_1),
	    cmocka_unit_test(test_bad_address),
	};

	signal(SIGPIPE, SIG_IGN);
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
