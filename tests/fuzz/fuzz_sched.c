/*
 * libFuzzer target: the scheduler's two services (the API and the worker
 * link) fed hostile requests, as a client or a worker on the network
 * would send them.
 *
 * The inputs run against an in-process scheduler (sched_open on a
 * temporary database in /dev/shm, as daemon/scheduler/main.c opens it),
 * reopened on a fresh database every FZ_RESET_EVERY inputs (opening one
 * costs ~30 ms under ASan; TROUPE_FUZZ_RESET_EVERY=1 gives each input a
 * fresh one, to replay a crash alone).  Its services are served by
 * rpc_server_open_local: every request goes
 * through rpc_dispatch_bytes, the path rpc.c takes for each message a
 * socket receives (envelope unpack, token check, method lookup by name,
 * body unpack, the method's handler), minus nng.  Between requests the
 * loop turns once (UV_RUN_NOWAIT), so dispatch, the group commit and the
 * answers parked until it run as in the daemon.  Every answer must be a
 * well-formed troupe.Reply.
 *
 * An input is a sequence of up to FZ_MAX_RECORDS records:
 *
 *	sel:1  len:2 (little-endian)  data:len (cut short at the end)
 *
 * sel < 0xf0 picks a method, sel % 22: the API's 19 in api.proto's order,
 * then the link's RegisterWorker, Pull, Report; data is its body, sent in
 * an envelope with the right token.  sel 0xf0..0xfd: data is a whole
 * envelope, for the API (even) or the link (odd).  0xfe: the worker
 * link's connection closes (sched_on_disconnect).  0xff: the tick timer
 * fires now (timeouts, lost workers, long-poll deadlines).
 *
 * Ids: a request may name "the execution created last" and "the worker
 * registered last" by the placeholders FZ_EXEC_PH and FZ_WORKER_PH
 * (same length as the ids they stand for, so the protobuf framing holds):
 * before a request is dispatched, its bytes get the ids of the last
 * execution and worker that appeared in an answer.  The seeds use them
 * (tests/fuzz/seeds.c).  getrandom is a counter (fuzz_common.h), reset
 * with each scheduler.
 *
 * Threading: one thread; the libuv loop is run by this file only.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "scheduler.h"
#include "troupe/envelope.h"

#define FZ_MAX_RECORDS 16
#define FZ_TOKEN       "fuzz-token-0123456789"
#define FZ_PIPE        7
#define FZ_RESET_EVERY 200
#define FZ_EXEC_PH     "ex-@@@@@@@@@@"  /* exec.c's "ex-" and 10 chars */
#define FZ_WORKER_PH   "w-@@@@@@@@@@@@" /* worker.c's "w-" and 12 hex */

static char      fz_dir[256];
static char      fz_db[300];
static uv_loop_t fz_loop;
/* Sees every answer (seeds.c reads ids from them); NULL in the fuzzer. */
static void (*fz_reply_hook)(const Troupe__Reply *rep);

typedef struct fz_sched {
	sched      *s;
	rpc_server *api, *link;
} fz_sched;

/* The ids last seen in an answer ("" before any). */
static char fz_exec_id[sizeof(FZ_EXEC_PH)];
static char fz_worker_id[sizeof(FZ_WORKER_PH)];

static bool
fz_id_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Notes the first id with prefix pre and n more id characters in buf. */
static void
fz_scan_id(const uint8_t *buf, size_t len, const char *pre, size_t n, char *out)
{
	size_t pl = strlen(pre);

	for (size_t i = 0; i + pl + n <= len; i++) {
		size_t k = 0;

		if (buf[i] != (uint8_t)pre[0] || memcmp(buf + i, pre, pl) != 0)
			continue;
		while (k < n && fz_id_char(buf[i + pl + k]))
			k++;
		if (k == n &&
		    (i + pl + n == len || !fz_id_char(buf[i + pl + n]))) {
			memcpy(out, buf + i, pl + n);
			out[pl + n] = '\0';
			return;
		}
	}
}

/* Puts the ids last seen in place of their placeholders in buf. */
static void
fz_fill_ids(uint8_t *buf, size_t len)
{
	const char *ph[2] = {FZ_EXEC_PH, FZ_WORKER_PH};
	const char *id[2] = {fz_exec_id, fz_worker_id};

	for (int k = 0; k < 2; k++) {
		size_t n = strlen(ph[k]);

		if (id[k][0] == '\0')
			continue;
		for (size_t i = 0; i + n <= len; i++)
			if (buf[i] == ph[k][0] &&
			    memcmp(buf + i, ph[k], n) == 0)
				memcpy(buf + i, id[k], n);
	}
}

/* Every answer, now or after a commit, is a troupe.Reply. */
static void
fz_on_reply(void *arg, const void *buf, size_t len)
{
	Troupe__Reply *rep = troupe__reply__unpack(NULL, len, buf);

	(void)arg;
	if (rep == NULL)
		abort(); /* the scheduler sent bytes no client can read */
	if (rep->code == TROUPE__CODE__OK) {
		fz_scan_id(rep->body.data, rep->body.len, "ex-",
		           sizeof(FZ_EXEC_PH) - 4, fz_exec_id);
		fz_scan_id(rep->body.data, rep->body.len, "w-",
		           sizeof(FZ_WORKER_PH) - 3, fz_worker_id);
	}
	if (fz_reply_hook != NULL)
		fz_reply_hook(rep);
	troupe__reply__free_unpacked(rep, NULL);
}

static void
fz_unlink_db(void)
{
	char p[320];

	unlink(fz_db);
	snprintf(p, sizeof(p), "%s-wal", fz_db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", fz_db);
	unlink(p);
}

static void
fz_open(fz_sched *f)
{
	sched_opts so = {0};
	char       err[512] = "";

	fz_random_reset();
	fz_exec_id[0] = fz_worker_id[0] = '\0';
	so.db_path = fz_db;
	so.state_dir = fz_dir;
	so.pull_timeout_ms = 30000;
	so.lost_after_ms = 15000;
	so.actor_prefetch = 2;
	if (sched_open(&fz_loop, &so, &f->s, err, sizeof(err)) != 0 ||
	    rpc_server_open_local(api_service(f->s), FZ_TOKEN, fz_on_reply,
	                          NULL, &f->api) != 0 ||
	    rpc_server_open_local(link_service(f->s), FZ_TOKEN, fz_on_reply,
	                          NULL, &f->link) != 0) {
		fprintf(stderr, "fuzz_sched: cannot open: %s\n", err);
		abort();
	}
}

/* main.c's order: forget parked calls, close the servers, the core. */
static void
fz_close(fz_sched *f)
{
	sched_forget_calls(f->s);
	rpc_server_close(f->api);
	rpc_server_close(f->link);
	sched_close(f->s);
	uv_run(&fz_loop, UV_RUN_DEFAULT);
	fz_unlink_db();
}

static fz_sched fz_cur;
static long     fz_reset_every = FZ_RESET_EVERY, fz_runs;
static void     fz_close_at_exit(void);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	(void)argc;
	(void)argv;
	fz_quiet();
	snprintf(fz_dir, sizeof(fz_dir), "%s/troupe-fuzz-XXXXXX", base);
	if (mkdtemp(fz_dir) == NULL)
		abort();
	snprintf(fz_db, sizeof(fz_db), "%s/troupe.db", fz_dir);
	if (uv_loop_init(&fz_loop) != 0)
		abort();
	atexit(fz_cleanup_dir_at_exit);
	fz_cleanup_dir = fz_dir;
	atexit(fz_close_at_exit); /* runs first */
	if (getenv("TROUPE_FUZZ_RESET_EVERY") != NULL &&
	    (fz_reset_every = atol(getenv("TROUPE_FUZZ_RESET_EVERY"))) < 1)
		fz_reset_every = 1;
	return 0;
}

/* One record: a request to a service, or an event. */
static void
fz_record(fz_sched *f, uint8_t sel, const uint8_t *data, size_t len)
{
	const ProtobufCServiceDescriptor *api = &troupe__troupe__descriptor;
	const ProtobufCServiceDescriptor *lnk =
	    &troupe__worker_link__descriptor;
	unsigned        n_methods = api->n_methods + lnk->n_methods;
	Troupe__Request req = TROUPE__REQUEST__INIT;
	uint8_t        *buf;
	size_t          n;

	if (sel == 0xfe) {
		sched_on_disconnect(f->s, FZ_PIPE);
		return;
	}
	if (sel == 0xff) {
		/* The tick's callback now, as its timer would call it. */
		f->s->tick.timer_cb(&f->s->tick);
		return;
	}
	if (sel >= 0xf0) {
		if ((buf = malloc(len > 0 ? len : 1)) == NULL)
			return;
		if (len > 0)
			memcpy(buf, data, len);
		fz_fill_ids(buf, len);
		(void)rpc_dispatch_bytes((sel & 1) ? f->link : f->api, FZ_PIPE,
		                         buf, len);
		free(buf);
		return;
	}
	sel %= n_methods;
	req.method = (char *)(sel < api->n_methods
	                          ? api->methods[sel].name
	                          : lnk->methods[sel - api->n_methods].name);
	req.token = FZ_TOKEN;
	req.body.data = (uint8_t *)data;
	req.body.len = len;
	n = troupe__request__get_packed_size(&req);
	if ((buf = malloc(n > 0 ? n : 1)) == NULL)
		return;
	troupe__request__pack(&req, buf);
	fz_fill_ids(buf, n);
	(void)rpc_dispatch_bytes(sel < api->n_methods ? f->api : f->link,
	                         FZ_PIPE, buf, n);
	free(buf);
}

static void
fz_close_at_exit(void)
{
	if (fz_cur.s != NULL)
		fz_close(&fz_cur);
	fz_cur.s = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_reader      r = {data, size};
	uint8_t        sel;
	const uint8_t *p;
	size_t         len;

	if (fz_cur.s != NULL && fz_runs % fz_reset_every == 0)
		fz_close_at_exit();
	if (fz_cur.s == NULL)
		fz_open(&fz_cur);
	fz_runs++;
	for (int i = 0; i < FZ_MAX_RECORDS && fz_next(&r, &sel, &p, &len);
	     i++) {
		fz_record(&fz_cur, sel, p, len);
		uv_run(&fz_loop, UV_RUN_NOWAIT);
	}
	return 0;
}
