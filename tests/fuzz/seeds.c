/*
 * Writes the seed corpus of the fuzz targets: a few valid inputs each (and
 * a few broken ones), so that the fuzzers start from messages that reach
 * deep into the handlers.  Run from the fuzz build after changing a
 * message format, then commit the files:
 *
 *	build-fuzz/tests/fuzz/troupe-fuzz-seeds tests/fuzz/corpus
 *
 * The scheduler's seeds are played against the same in-process scheduler
 * as fuzz_sched uses (this file includes fuzz_sched.c), so the execution
 * and worker ids in them are the ones the fuzzer's scheduler hands out
 * (getrandom is a counter there).  Files are named seed-*; the fuzzers
 * never write into this directory.
 *
 * Threading: one thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "fuzz_sched.c"

#include "actor.pb-c.h"
#include "link.pb-c.h"
#include "troupe/actor.h"

static const char *root;

/* An input under construction. */
typedef struct seed {
	uint8_t *b;
	size_t   n, cap;
} seed;

static void
seed_put(seed *s, const void *p, size_t n)
{
	if (s->n + n > s->cap) {
		s->cap = (s->n + n) * 2 + 64;
		if ((s->b = realloc(s->b, s->cap)) == NULL)
			abort();
	}
	if (n > 0)
		memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* One record (fuzz_common.h): sel, a 16-bit length, the bytes. */
static void
seed_rec(seed *s, uint8_t sel, const void *p, size_t n)
{
	uint8_t h[3] = {sel, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};

	if (n > 0xffff)
		abort();
	seed_put(s, h, 3);
	seed_put(s, p, n);
}

static void
seed_rec_msg(seed *s, uint8_t sel, const ProtobufCMessage *m)
{
	size_t   n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(n + 1);

	protobuf_c_message_pack(m, b);
	seed_rec(s, sel, b, n);
	free(b);
}

static void
seed_write(seed *s, const char *target, const char *name)
{
	char  p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, target);
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		abort();
	snprintf(p, sizeof(p), "%s/%s/seed-%s", root, target, name);
	if ((f = fopen(p, "wb")) == NULL || fwrite(s->b, 1, s->n, f) != s->n ||
	    fclose(f) != 0) {
		perror(p);
		exit(1);
	}
	free(s->b);
	memset(s, 0, sizeof(*s));
}

static void
seed_write_text(const char *target, const char *name, const char *text)
{
	seed s = {0};

	seed_put(&s, text, strlen(text));
	seed_write(&s, target, name);
}

/* Replaces every occurrence of real (as long as ph) by ph. */
static void
seed_subst(seed *s, const char *real, const char *ph)
{
	size_t n = strlen(real);

	if (n != strlen(ph))
		abort();
	for (size_t i = 0; i + n <= s->n; i++)
		if (memcmp(s->b + i, real, n) == 0)
			memcpy(s->b + i, ph, n);
}

/* The scheduler: each request is played as it is recorded, so later ones
 * can name what earlier ones created. */

static uint8_t
sel_of(const char *method)
{
	const ProtobufCServiceDescriptor *api = &troupe__troupe__descriptor;
	const ProtobufCServiceDescriptor *lnk =
	    &troupe__worker_link__descriptor;

	for (unsigned i = 0; i < api->n_methods; i++)
		if (strcmp(api->methods[i].name, method) == 0)
			return (uint8_t)i;
	for (unsigned i = 0; i < lnk->n_methods; i++)
		if (strcmp(lnk->methods[i].name, method) == 0)
			return (uint8_t)(api->n_methods + i);
	abort();
}

static Troupe__Reply *last_reply;

static void
capture(const Troupe__Reply *rep)
{
	size_t   n = troupe__reply__get_packed_size(rep);
	uint8_t *b = malloc(n + 1);

	if (last_reply != NULL)
		troupe__reply__free_unpacked(last_reply, NULL);
	troupe__reply__pack(rep, b);
	last_reply = troupe__reply__unpack(NULL, n, b);
	free(b);
}

/* Records the request and plays it; returns the reply's body unpacked
 * as desc (NULL when the reply is not OK or desc is NULL). */
static void *
play(fz_sched *f, seed *s, const char *method, const ProtobufCMessage *in,
     const ProtobufCMessageDescriptor *desc)
{
	size_t   n = protobuf_c_message_get_packed_size(in);
	uint8_t *b = malloc(n + 1);
	void    *out = NULL;

	protobuf_c_message_pack(in, b);
	seed_rec(s, sel_of(method), b, n);
	if (last_reply != NULL)
		troupe__reply__free_unpacked(last_reply, NULL);
	last_reply = NULL;
	fz_record(f, sel_of(method), b, n);
	uv_run(&fz_loop, UV_RUN_NOWAIT);
	free(b);
	if (desc != NULL && last_reply != NULL &&
	    last_reply->code == TROUPE__CODE__OK)
		out = protobuf_c_message_unpack(
		    desc, NULL, last_reply->body.len, last_reply->body.data);
	return out;
}

/* A map of three items run by one worker to its end. */
static void
seeds_sched_map(bool actor)
{
	fz_sched                       f = {0};
	seed                           s = {0};
	Troupe__ExecutionSpec          spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv               env = TROUPE__ACTOR_ENV__INIT;
	Troupe__CreateExecutionRequest cr =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__CreateExecutionReply *crr;
	Troupe__AppendItemsRequest    ar = TROUPE__APPEND_ITEMS_REQUEST__INIT;
	Troupe__SealExecutionRequest  sr = TROUPE__SEAL_EXECUTION_REQUEST__INIT;
	Troupe__RegisterWorkerRequest rw =
	    TROUPE__REGISTER_WORKER_REQUEST__INIT;
	Troupe__RegisterWorkerReply *rwr;
	Troupe__PullRequest          pr = TROUPE__PULL_REQUEST__INIT;
	Troupe__ReportRequest        rr = TROUPE__REPORT_REQUEST__INIT;
	Troupe__GetOutputsRequest    go = TROUPE__GET_OUTPUTS_REQUEST__INIT;
	Troupe__GetExecutionRequest  ge = TROUPE__GET_EXECUTION_REQUEST__INIT;
	Troupe__ItemReport           rep[3], *repp[3];
	ProtobufCBinaryData          items[3] = {
	             {1, (uint8_t *)"a"}, {2, (uint8_t *)"bb"}, {0, (uint8_t *)""}};
	char id[64], wid[64];

	fz_open(&f);
	fz_reply_hook = capture;
	spec.command = "echo {}";
	if (actor) {
		env.replica_count = 1;
		env.command = "cat";
		env.protocol = TROUPE__PROTOCOL__PROTOCOL_LINES;
		spec.adhoc_actor = &env;
	}
	cr.spec = &spec;
	crr = play(&f, &s, "CreateExecution", &cr.base,
	           &troupe__create_execution_reply__descriptor);
	if (crr == NULL || crr->execution == NULL)
		abort();
	snprintf(id, sizeof(id), "%s", crr->execution->id);
	troupe__create_execution_reply__free_unpacked(crr, NULL);
	ar.id = id;
	ar.items = items;
	ar.n_items = 3;
	play(&f, &s, "AppendItems", &ar.base, NULL);
	sr.id = id;
	play(&f, &s, "SealExecution", &sr.base, NULL);
	rw.name = "w1";
	rw.host = "h1";
	rw.slots = 4;
	rw.version = TROUPE_VERSION;
	rwr = play(&f, &s, "RegisterWorker", &rw.base,
	           &troupe__register_worker_reply__descriptor);
	if (rwr == NULL)
		abort();
	snprintf(wid, sizeof(wid), "%s", rwr->worker_id);
	troupe__register_worker_reply__free_unpacked(rwr, NULL);
	pr.worker_id = wid;
	play(&f, &s, "Pull", &pr.base, NULL);
	for (int i = 0; i < 3; i++) {
		troupe__item_report__init(&rep[i]);
		rep[i].execution = id;
		rep[i].index = (uint64_t)i;
		rep[i].attempt = 1;
		rep[i].state = i == 1 ? TROUPE__ITEM_STATE__ITEM_FAILED
		                      : TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
		rep[i].output.data = (uint8_t *)"out\n";
		rep[i].output.len = 4;
		rep[i].error = i == 1 ? "exit 1" : "";
		rep[i].exit_code = i == 1;
		repp[i] = &rep[i];
	}
	rr.worker_id = wid;
	rr.results = repp;
	rr.n_results = 3;
	play(&f, &s, "Report", &rr.base, NULL);
	go.id = id;
	play(&f, &s, "GetOutputs", &go.base, NULL);
	ge.id = id;
	play(&f, &s, "GetExecution", &ge.base, NULL);
	fz_reply_hook = NULL;
	fz_close(&f);
	/* The fuzzer fills in the ids its own scheduler handed out. */
	seed_subst(&s, id, FZ_EXEC_PH);
	seed_subst(&s, wid, FZ_WORKER_PH);
	seed_write(&s, "sched", actor ? "map-actor" : "map");
}

static void
seeds_sched(void)
{
	seed                          s = {0};
	Troupe__TaskSpec              t = TROUPE__TASK_SPEC__INIT;
	Troupe__RegisterTaskRequest   rt = TROUPE__REGISTER_TASK_REQUEST__INIT;
	Troupe__ActorEnv              env = TROUPE__ACTOR_ENV__INIT;
	Troupe__RegisterActorRequest  ra = TROUPE__REGISTER_ACTOR_REQUEST__INIT;
	Troupe__ListExecutionsRequest le =
	    TROUPE__LIST_EXECUTIONS_REQUEST__INIT;
	Troupe__GetHealthRequest       gh = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__ListWorkersRequest     lw = TROUPE__LIST_WORKERS_REQUEST__INIT;
	Troupe__ExecutionSpec          spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__CreateExecutionRequest cr =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__Request raw = TROUPE__REQUEST__INIT;
	static char    *envv[] = {"A=1", "B=two"};

	seeds_sched_map(false);
	seeds_sched_map(true);

	t.name = "upper";
	t.command = "tr a-z A-Z";
	t.retries = 2;
	t.timeout_ms = 1000;
	t.env = envv;
	t.n_env = 2;
	rt.task = &t;
	seed_rec_msg(&s, sel_of("RegisterTask"), &rt.base);
	spec.task = "upper";
	cr.spec = &spec;
	seed_rec_msg(&s, sel_of("CreateExecution"), &cr.base);
	seed_rec_msg(&s, sel_of("ListTasks"), &gh.base);
	seed_rec_msg(&s, sel_of("ListExecutions"), &le.base);
	seed_write(&s, "sched", "task");

	env.name = "det";
	env.replica_count = 2;
	env.ttl_seconds = 60;
	env.command = "troupe-detect";
	env.protocol = TROUPE__PROTOCOL__PROTOCOL_FRAMES;
	ra.env = &env;
	seed_rec_msg(&s, sel_of("RegisterActor"), &ra.base);
	seed_rec_msg(&s, sel_of("ListActors"), &gh.base);
	seed_rec_msg(&s, sel_of("ListWorkers"), &lw.base);
	seed_rec_msg(&s, sel_of("GetHealth"), &gh.base);
	seed_write(&s, "sched", "actor");

	/* Whole envelopes: right token, wrong token, unknown method. */
	raw.method = "GetHealth";
	raw.token = FZ_TOKEN;
	seed_rec_msg(&s, 0xf0, &raw.base);
	raw.token = "wrong";
	seed_rec_msg(&s, 0xf0, &raw.base);
	raw.token = FZ_TOKEN;
	raw.method = "Pull";
	seed_rec_msg(&s, 0xf1, &raw.base);
	raw.method = "NoSuchMethod";
	seed_rec_msg(&s, 0xf0, &raw.base);
	seed_rec(&s, 0xfe, NULL, 0);
	seed_rec(&s, 0xff, NULL, 0);
	seed_write(&s, "sched", "envelopes");
}

/* The worker: replies of a scheduler. */

static void
seeds_worker(void)
{
	seed                        s = {0};
	Troupe__RegisterWorkerReply rw = TROUPE__REGISTER_WORKER_REPLY__INIT;
	Troupe__PullReply           pr = TROUPE__PULL_REPLY__INIT;
	Troupe__Shard               sh = TROUPE__SHARD__INIT, *shp = &sh;
	Troupe__TaskSpec            t = TROUPE__TASK_SPEC__INIT;
	Troupe__WorkItem            it[3], *itp[3];
	Troupe__ReportReply         rr = TROUPE__REPORT_REPLY__INIT;
	Troupe__ItemRef             ref = TROUPE__ITEM_REF__INIT, *refp = &ref;
	Troupe__ReplicaStart rs = TROUPE__REPLICA_START__INIT, *rsp = &rs;
	Troupe__ActorEnv     env = TROUPE__ACTOR_ENV__INIT;
	Troupe__Reply        rep = TROUPE__REPLY__INIT;
	static char         *stop[] = {"r-1"};

	rw.worker_id = "w-1";
	rw.pull_timeout_ms = 30000;
	rw.lost_after_ms = 15000;
	t.command = "echo {}";
	t.timeout_ms = 1000;
	for (int i = 0; i < 3; i++) {
		troupe__work_item__init(&it[i]);
		it[i].index = (uint64_t)i;
		it[i].attempt = 1;
		it[i].input.data = (uint8_t *)"abc";
		it[i].input.len = (size_t)i;
		itp[i] = &it[i];
	}
	sh.execution = "ex-aaaaaaaaaa";
	sh.task = &t;
	sh.items = itp;
	sh.n_items = 3;
	pr.shards = &shp;
	pr.n_shards = 1;
	ref.execution = "ex-aaaaaaaaaa";
	ref.index = 1;
	ref.attempt = 1;
	rr.cancels = &refp;
	rr.n_cancels = 1;

	/* Register, a shard of three items, their reports acknowledged. */
	seed_rec_msg(&s, 2, &rw.base);
	seed_rec_msg(&s, 2, &pr.base);
	seed_rec(&s, 0xf1, NULL, 0);
	seed_rec_msg(&s, 3, &rr.base);
	seed_rec_msg(&s, 2, &pr.base);
	seed_rec(&s, 0xf0, NULL, 0);
	seed_rec_msg(&s, 3, &rr.base);
	seed_write(&s, "worker", "shard");

	/* Replicas started and stopped, a shard for them, cancels, drain. */
	env.command = "cat";
	env.replica_count = 1;
	env.protocol = TROUPE__PROTOCOL__PROTOCOL_FRAMES;
	rs.replica_id = "r-1";
	rs.env_key = "env-1";
	rs.env = &env;
	sh.env_key = "env-1";
	pr.start_replicas = &rsp;
	pr.n_start_replicas = 1;
	seed_rec_msg(&s, 2, &rw.base);
	seed_rec_msg(&s, 2, &pr.base);
	pr.n_start_replicas = 0;
	pr.n_shards = 0;
	pr.cancels = &refp;
	pr.n_cancels = 1;
	pr.stop_replicas = stop;
	pr.n_stop_replicas = 1;
	pr.drain = true;
	seed_rec(&s, 0xf1, NULL, 0);
	seed_rec_msg(&s, 2, &pr.base);
	seed_rec_msg(&s, 3, &rr.base);
	seed_write(&s, "worker", "actors");

	/* Errors: refused, forgotten, malformed, timeouts. */
	rep.code = TROUPE__CODE__NOT_FOUND;
	rep.message = "unknown worker";
	seed_rec_msg(&s, 2, &rw.base);
	seed_rec_msg(&s, 0, &rep.base);
	seed_rec(&s, 0xf1, NULL, 0);
	seed_rec_msg(&s, 2, &rw.base);
	seed_rec(&s, 6, NULL, 0);
	seed_rec(&s, 0xf1, NULL, 0);
	seed_rec(&s, 2, "\xff\xff", 2);
	seed_rec(&s, 4, "\x10no", 3);
	seed_write(&s, "worker", "errors");
}

/* Replica stdout: the first byte says frames, limit, items (see
 * fuzz_replica.c); the second how the rest is cut. */

static void
seeds_replica(void)
{
	seed               s = {0};
	Troupe__ActorReply r;
	uint8_t           *f;
	size_t             n;
	uint8_t            hdr[2];

	/* Frames, 64 KiB, 3 items, one read; then cut in 3-byte reads. */
	for (int cut = 0; cut < 2; cut++) {
		hdr[0] = 1 | 2 << 1 | 2 << 3;
		hdr[1] = cut ? 3 : 0;
		seed_put(&s, hdr, 2);
		for (uint64_t q = 1; q <= 3; q++) {
			troupe__actor_reply__init(&r);
			r.seq = q;
			if (q == 2) {
				r.result_case =
				    TROUPE__ACTOR_REPLY__RESULT_ERROR;
				r.error = "bad item";
			} else {
				r.result_case =
				    TROUPE__ACTOR_REPLY__RESULT_OUTPUT;
				r.output.data = (uint8_t *)"result";
				r.output.len = 6;
			}
			if (troupe_frame_encode(&r.base, &f, &n) != 0)
				abort();
			seed_put(&s, f, n);
			free(f);
		}
		seed_write(&s, "replica", cut ? "frames-cut" : "frames");
	}
	/* Lines, 1 KiB, 4 items. */
	hdr[0] = 0 | 1 << 1 | 3 << 3;
	hdr[1] = 0;
	seed_put(&s, hdr, 2);
	seed_put(&s, "one\ntwo\n\nfour\n", 14);
	seed_write(&s, "replica", "lines");
	/* Lines, 16 B: too long. */
	hdr[0] = 0;
	hdr[1] = 5;
	seed_put(&s, hdr, 2);
	seed_put(&s, "0123456789abcdefghij\n", 21);
	seed_write(&s, "replica", "lines-long");
}

static void
seeds_actor(void)
{
	seed                 s = {0};
	Troupe__ActorRequest q;
	static const char   *in[] = {"hello", "", "Eboom", "Zempty"};
	uint8_t             *f;
	size_t               n;

	for (int i = 0; i < 4; i++) {
		troupe__actor_request__init(&q);
		q.seq = (uint64_t)i + 1;
		q.input.data = (uint8_t *)in[i];
		q.input.len = strlen(in[i]);
		if (troupe_frame_encode(&q.base, &f, &n) != 0)
			abort();
		seed_put(&s, f, n);
		free(f);
	}
	seed_write(&s, "actor", "requests");
	seed_put(&s, "\x05\x08\x01\x12", 4); /* cut short */
	seed_write(&s, "actor", "truncated");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	LLVMFuzzerInitialize(&argc, &argv);
	seeds_sched();
	seeds_worker();
	seeds_replica();
	seeds_actor();
	seed_write_text("conf", "scheduler",
	                "# troupe-scheduler\nlisten = tcp://0.0.0.0:7070\n"
	                "token-file=/etc/troupe/token\n\n  db =  /var/lib/x "
	                "\nrefuse = 1\n");
	seed_write_text("conf", "worker",
	                "scheduler = ipc:///run/troupe/worker.sock\nslots = "
	                "4\r\nlabel = gpu=1\nbroken line\n");
	{
		/* A line longer than the parser's buffer, with a '=' in
		 * what would be its tail. */
		seed s = {0};

		seed_put(&s, "listen = ", 9);
		for (int i = 0; i < 5000; i++)
			seed_put(&s, "a", 1);
		seed_put(&s, "=b\nslots = 2\n", 13);
		seed_write(&s, "conf", "long-line");
	}
	seed_write_text("items", "lines", "a\nbb\r\n\nlast");
	{
		seed s = {0};

		seed_put(&s, "\xff\x00x\r\n\r\n\r", 8);
		seed_write(&s, "items", "crlf");
	}
	return 0;
}
