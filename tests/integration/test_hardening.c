/*
 * The defects of issue 10, each as a user or an attacker would meet it:
 * - 1, 2: every listener but ipc://, in any spelling (TCP://, Tcp://,
 *   WS://, TLS+TCP://, abstract://), refuses to start without a token;
 *   so does a worker dialling one
 * - 4: an environment of 50,000 entries is refused INVALID_ARGUMENT (map,
 *   task, actor); 1,000 entries run at once
 * - 5: {} inside quotes, `sh -c "... {}"` or $(( )) is refused at
 *   submission, and hostile items never run as code where {} is allowed
 * - 6: outputs of 30 MB each come out of `troupe outputs` (the page
 *   bound itself is tests/unit/test_placement.c's test_output_pages_fit)
 * - 7: an empty item, and `--actor ENV --env K=V` on an environment with no
 *   env of its own, run (and crash no ASan scheduler)
 * - 8: a damaged database (truncated to 0 bytes, garbage, a missing chunk)
 *   is refused with a message naming the file, or the broken execution
 *   is marked FAILED instead of staying QUEUED
 * - 9: invalid UTF-8 and NUL bytes in strings of the API and the worker
 *   link, and out-of-range actor settings, are refused INVALID_ARGUMENT
 * - 10: a worker does not pass TROUPE_TOKEN to items; short tokens and
 *   token files others can read are refused
 * (Defect 3, a Report from a worker not holding the attempt, is
 * tests/unit/test_placement.c's test_report_from_non_holder_ignored.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "harness.h"
#include "harness_faults.h"
#include "link.pb-c.h"
#include "skip.h"
#include "troupe/sockclose.h"

#define LONG_TOKEN "0123456789abcdef0123456789abcdef"

/* ---- raw calls ---- */

/* Sends a Request {method, token, body} on a fresh req socket to addr
 * and returns the unpacked reply (caller frees), failing the test when
 * none comes within 10 s. */
static Troupe__Reply *
raw_call(h_cluster *c, const char *addr, const char *method,
         const uint8_t *body, size_t blen)
{
	Troupe__Request req = TROUPE__REQUEST__INIT;
	nng_socket      s = NNG_SOCKET_INITIALIZER;
	uint8_t        *buf = NULL;
	void           *rbuf = NULL;
	size_t          len, rlen = 0;
	Troupe__Reply  *rep = NULL;
	int             rv;

	req.method = (char *)method;
	req.token = (char *)(h_token(c) != NULL ? h_token(c) : "");
	req.body.data = (uint8_t *)body;
	req.body.len = blen;
	assert_int_equal(troupe_pack(&req.base, &buf, &len), 0);
	if ((rv = nng_req0_open(&s)) == 0) {
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 10000);
		nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);
		if ((rv = nng_dial(s, addr, NULL, 0)) == 0 &&
		    (rv = nng_send(s, buf, len, 0)) == 0 &&
		    (rv = nng_recv(s, &rbuf, &rlen, NNG_FLAG_ALLOC)) == 0) {
			rep = troupe__reply__unpack(NULL, rlen, rbuf);
			nng_free(rbuf, rlen);
		}
		(void)troupe_sock_close(s, TROUPE_SOCK_CLOSE_MS);
	}
	free(buf);
	if (rep == NULL)
		h_fail(c, "%s on %s: no reply (%s)", method, addr,
		       nng_strerror(rv));
	return rep;
}

/* Packs msg, replaces the first occurrence of the marker "@@" in the
 * packed bytes by the two bytes sub (so that a string can hold what
 * protobuf-c would not pack), sends it and checks the reply's code and
 * that its message holds want; frees the reply. */
static void
raw_expect(h_cluster *c, const char *addr, const char *method,
           const ProtobufCMessage *msg, const char *sub, Troupe__Code code,
           const char *want)
{
	uint8_t       *buf = NULL;
	size_t         len;
	Troupe__Reply *rep;

	assert_int_equal(troupe_pack(msg, &buf, &len), 0);
	if (sub != NULL) {
		uint8_t *at = memmem(buf, len, "@@", 2);

		assert_non_null(at);
		memcpy(at, sub, 2);
	}
	rep = raw_call(c, addr, method, buf, len);
	free(buf);
	fprintf(stderr, "%s -> %s: %s\n", method, troupe_code_name(rep->code),
	        rep->message);
	if (rep->code != code) {
		Troupe__Code got = rep->code;

		troupe__reply__free_unpacked(rep, NULL);
		h_fail(c, "%s: got %s, want %s", method, troupe_code_name(got),
		       troupe_code_name(code));
	}
	if (want != NULL)
		h_assert_icontains(rep->message, want);
	troupe__reply__free_unpacked(rep, NULL);
}

static size_t
count_executions(h_cluster *c)
{
	Troupe__ListExecutionsRequest req =
	    TROUPE__LIST_EXECUTIONS_REQUEST__INIT;
	Troupe__ListExecutionsReply *rep = NULL;

	assert_int_equal(H_CALL(c, ListExecutions, &req, list_executions, &rep),
	                 0);
	return rep->n_executions;
}

/* ---- 1, 2: listeners ---- */

static void
test_listen_any_spelling(void **state)
{
	static const char *const urls[] = {
	    "TCP://127.0.0.1:0",           "Tcp://127.0.0.1:0",
	    "WS://127.0.0.1:0/x",          "TLS+TCP://127.0.0.1:0",
	    "abstract://troupe-hardening",
	};
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *err;
	int        rv;

	h_set_timeout(c, 60000);
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char url[128];

		snprintf(url, sizeof(url), "%s", urls[i]);
		if (strncmp(url, "abstract", 8) == 0)
			snprintf(url, sizeof(url), "%s-%d", urls[i],
			         (int)getpid());
		for (int link = 0; link < 2; link++) {
			/* One that starts would run until timeout's TERM: it
			 * exits 0 then, and timeout says 124. */
			rv = h_run(
			    c, NULL, &err,
			    "timeout -s TERM 15 troupe-scheduler --home %s "
			    "--%s %s",
			    h_dir(c), link ? "worker-listen" : "listen", url);
			fprintf(stderr, "--%s %s: %d %s",
			        link ? "worker-listen" : "listen", url, rv,
			        err);
			assert_int_equal(rv, 2);
			h_assert_icontains(err, "without a token");
		}
		rv = h_run(c, NULL, &err,
		           "timeout -s TERM 15 troupe-worker --home %s "
		           "--scheduler %s",
		           h_dir(c), url);
		assert_int_equal(rv, 2);
		h_assert_icontains(err, "without a token");
	}
	h_done(c);
}

/* ---- 10: tokens ---- */

static void
test_token_rules(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *err;

	h_set_timeout(c, 60000);
	assert_int_equal(h_run(c, NULL, NULL,
	                       "umask 077; echo short > short; "
	                       "echo " LONG_TOKEN " > open; chmod 644 open; "
	                       "echo " LONG_TOKEN " > grp; chmod 640 grp"),
	                 0);
	/* A one-line error naming what is wrong, before anything starts. */
	assert_int_equal(h_run(c, NULL, &err,
	                       "timeout -s TERM 15 troupe-scheduler --home %s "
	                       "--listen tcp://127.0.0.1:0 --token-file short",
	                       h_dir(c)),
	                 2);
	h_assert_contains(err, "at least 16");
	assert_int_equal(h_lines(err), 1);
	assert_int_equal(h_run(c, NULL, &err,
	                       "timeout -s TERM 15 troupe-scheduler --home %s "
	                       "--listen tcp://127.0.0.1:0 --token-file open",
	                       h_dir(c)),
	                 2);
	h_assert_contains(err, "chmod 600 open");
	assert_int_equal(h_lines(err), 1);
	assert_int_equal(h_run(c, NULL, &err,
	                       "timeout -s TERM 15 troupe-scheduler --home %s "
	                       "--listen tcp://127.0.0.1:0 --token-file grp",
	                       h_dir(c)),
	                 2);
	h_assert_contains(err, "mode 0640");
	assert_int_equal(
	    h_run(c, NULL, &err,
	          "timeout -s TERM 15 troupe-worker --home %s "
	          "--scheduler tcp://127.0.0.1:9 --token-file open",
	          h_dir(c)),
	    2);
	h_assert_contains(err, "chmod 600 open");
	assert_int_equal(
	    h_run(c, NULL, &err,
	          "TROUPE_TOKEN=x timeout -s TERM 15 troupe-worker "
	          "--home %s --scheduler tcp://127.0.0.1:9",
	          h_dir(c)),
	    2);
	h_assert_contains(err, "at least 16");
	/* The CLI too. */
	assert_int_not_equal(
	    h_run(c, NULL, &err,
	          "TROUPE_TOKEN=x troupe --addr tcp://127.0.0.1:9 list"),
	    0);
	h_assert_contains(err, "at least 16");
	assert_int_not_equal(h_run(c, NULL, &err,
	                           "troupe --addr tcp://127.0.0.1:9 "
	                           "--token-file open list"),
	                     0);
	h_assert_contains(err, "chmod 600 open");
	h_done(c);
}

/* A worker given its token in the environment does not hand it on. */
static void
test_token_not_in_items(void **state)
{
	h_cluster  *c = h_start(NULL);
	char *const env[] = {"TROUPE_TOKEN=" LONG_TOKEN,
	                     "TROUPE_TOKEN_FILE=/nonexistent", NULL};
	char       *out;

	hf_spawn_worker(c, "tw", 2, env);
	h_wait_workers(c, 1, 60000);
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 2 | troupe map --cmd 'echo "
	                       "${TROUPE_TOKEN:-none} "
	                       "${TROUPE_TOKEN_FILE:-none}'"),
	                 0);
	assert_string_equal(out, "none none\nnone none\n");
	hf_stop_all(c);
	h_done(c);
}

/* ---- 4: environments ---- */

static char **
many_env(h_cluster *c, size_t n)
{
	char **v = calloc(n, sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		char kv[48];

		snprintf(kv, sizeof(kv), "K%zu=v%zu", i, i);
		v[i] = h_keep(c, strdup(kv));
	}
	h_keep(c, (char *)v);
	return v;
}

static void
test_env_bounded(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1});
	char     **big = many_env(c, 50000);
	char      *out, *err, *flags;
	size_t     before = count_executions(c);
	int64_t    t0, ms;

	{
		Troupe__CreateExecutionRequest req =
		    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
		Troupe__ExecutionSpec         sp = TROUPE__EXECUTION_SPEC__INIT;
		Troupe__CreateExecutionReply *rep = NULL;
		ProtobufCBinaryData           item = {1, (uint8_t *)"x"};

		sp.command = "echo {}";
		sp.env = big;
		sp.n_env = 50000;
		req.spec = &sp;
		req.items = &item;
		req.n_items = 1;
		req.seal = true;
		assert_int_equal(
		    H_CALL(c, CreateExecution, &req, create_execution, &rep),
		    TROUPE_EINVAL);
		h_assert_contains(troupe_client_error(h_client(c)),
		                  "at most 1024");
	}
	{
		Troupe__RegisterTaskRequest req =
		    TROUPE__REGISTER_TASK_REQUEST__INIT;
		Troupe__TaskSpec           t = TROUPE__TASK_SPEC__INIT;
		Troupe__RegisterTaskReply *rep = NULL;

		t.name = "bigenv";
		t.command = "echo {}";
		t.env = big;
		t.n_env = 50000;
		req.task = &t;
		assert_int_equal(
		    H_CALL(c, RegisterTask, &req, register_task, &rep),
		    TROUPE_EINVAL);
		h_assert_contains(troupe_client_error(h_client(c)),
		                  "at most 1024");
	}
	{
		Troupe__RegisterActorRequest req =
		    TROUPE__REGISTER_ACTOR_REQUEST__INIT;
		Troupe__ActorEnv            a = TROUPE__ACTOR_ENV__INIT;
		Troupe__RegisterActorReply *rep = NULL;

		a.name = "bigenv";
		a.command = "cat";
		a.replica_count = 1;
		a.env = big;
		a.n_env = 50000;
		req.env = &a;
		assert_int_equal(
		    H_CALL(c, RegisterActor, &req, register_actor, &rep),
		    TROUPE_EINVAL);
		h_assert_contains(troupe_client_error(h_client(c)),
		                  "at most 1024");
	}
	/* Too many bytes in few entries (11 of 100 kB). */
	flags = h_keep(c, calloc(11, 32));
	for (int i = 0; i < 11; i++)
		sprintf(flags + strlen(flags), " --env A%d=$v", i);
	assert_int_not_equal(
	    h_run(c, NULL, &err,
	          "v=$(head -c 100000 /dev/zero | tr '\\0' a); echo x | "
	          "troupe map --cmd 'echo {}'%s",
	          flags),
	    0);
	h_assert_contains(err, "bytes");
	assert_int_equal(count_executions(c), before);

	/* 1,000 entries, under the bound: quick. */
	flags = h_keep(c, calloc(1000, 24));
	for (int i = 0; i < 1000; i++)
		sprintf(flags + strlen(flags), " --env K%d=v%d", i, i);
	t0 = h_now_ms();
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 3 | troupe map --cmd 'echo $K999 {}' %s",
	                       flags),
	                 0);
	ms = h_now_ms() - t0;
	fprintf(stderr, "3 items with 1,000 env entries: %lld ms\n",
	        (long long)ms);
	assert_string_equal(out, "v999 1\nv999 2\nv999 3\n");
	assert_true(ms < 30000);
	h_done(c);
}

/* ---- 5: {} ---- */

static void
test_placeholder_refused(void **state)
{
	static const char *const bad[] = {
	    "echo \"{}\"",
	    "echo '{}'",
	    "sh -c \"echo {}\"",
	    "echo $(( {} + 1 ))",
	};
	h_cluster  *c = h_start(&(h_opts){.workers = 1});
	const char *items = "$(touch pwned1)\n'; touch pwned2; '\n\"; touch "
	                    "pwned3; \"\n`touch pwned4`\n";
	size_t      before = count_executions(c);
	char       *out, *err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(h_run_in(c, items, NULL, &err,
		                              "troupe map --cmd %s",
		                              h_quote(c, bad[i])),
		                     0);
		h_assert_contains(err, "{} at offset");
		assert_int_equal(h_lines(err), 1);
	}
	assert_int_not_equal(h_run(c, NULL, &err,
	                           "troupe task register t --cmd "
	                           "'sh -c \"echo {}\"'"),
	                     0);
	h_assert_contains(err, "inside double quotes");
	assert_int_equal(count_executions(c), before);
	/* Where {} is allowed, the items are data. */
	assert_int_equal(h_run_in(c, items, &out, NULL,
	                          "troupe map --cmd 'printf \"%%s\\n\" {}'"),
	                 0);
	assert_string_equal(out, items);
	assert_int_equal(h_run(c, &out, NULL, "ls"), 0);
	assert_null(strstr(out, "pwned"));
	h_done(c);
}

/* ---- 6: output pages ---- */

static void
test_outputs_pages_fit(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 1});
	const char *id;
	char       *out, *err;

	h_set_timeout(c, 240000);
	/* Three of 30 MB, end to end (the page that held an 8.3 MB and a
	 * 60 MB output at once is test_placement's test_output_pages_fit:
	 * in process, it does not need a worker to carry 64 MB). */
	id = h_map_detach(c, "1\n2\n3\n",
	                  "--cmd 'head -c 30000000 /dev/zero | tr \"\\0\" "
	                  "a'");
	assert_int_equal(h_wait_done(c, id, 200000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_run(c, &out, &err,
	                       "troupe outputs %s > outs && wc -c < outs && "
	                       "rm outs",
	                       id),
	                 0);
	h_chomp(out);
	fprintf(stderr, "troupe outputs: %s bytes; %s\n", out, err);
	assert_string_equal(out, "90000003");
	assert_int_equal(strlen(err), 0);
	h_done(c);
}

/* ---- 7: empty things ---- */

static void
test_empty_item_and_actor_env(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1});
	char      *out;

	assert_int_equal(
	    h_run_in(c, "a\n\nb\n", &out, NULL, "troupe map --cmd 'echo {}'"),
	    0);
	assert_string_equal(out, "a\n\nb\n");
	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe actor create noenv --cmd 'while read "
	                       "x; do echo \"$K $x\"; done' --replicas 1"),
	                 0);
	/* An empty item to the lines protocol's check, too. */
	assert_int_equal(h_run_in(c, "1\n\n2\n", &out, NULL,
	                          "troupe map --actor noenv --env K=V"),
	                 0);
	assert_string_equal(out, "V 1\nV \nV 2\n");
	h_done(c);
}

/* ---- 8: a damaged database ---- */

static void
test_damaged_database(void **state)
{
	h_cluster  *c = h_start(NULL);
	const char *db = h_path(c, "troupe.db");
	const char *id;
	char       *out, *err;
	int         rv;

	h_set_timeout(c, 60000);
	/* 3,000 items: chunks 0..2, none dispatched (no worker). */
	{
		char *in = h_keep(c, calloc(3000, 6));

		for (int i = 1; i <= 3000; i++)
			sprintf(in + strlen(in), "%d\n", i);
		id = h_map_detach(c, in, "--cmd 'echo {}'");
	}
	assert_int_equal(h_kill_scheduler(c, SIGTERM), 0);
	assert_int_equal(h_run(c, NULL, NULL, "cp %s good.db", db), 0);

	/* Truncated to 0 bytes: refused, not started empty. */
	assert_int_equal(
	    h_run(c, NULL, NULL, "rm -f %s-wal %s-shm; : > %s", db, db, db), 0);
	rv = h_run(c, NULL, &err,
	           "timeout -s TERM 15 troupe-scheduler --home %s", h_dir(c));
	fprintf(stderr, "0 bytes: %d %s", rv, err);
	assert_int_equal(rv, 1);
	h_assert_contains(err, db);
	h_assert_contains(err, "empty (0 bytes)");
	/* Garbage: refused as damaged, naming the file. */
	assert_int_equal(
	    h_run(c, NULL, NULL, "head -c 65536 /dev/urandom > %s", db), 0);
	rv = h_run(c, NULL, &err,
	           "timeout -s TERM 15 troupe-scheduler --home %s", h_dir(c));
	fprintf(stderr, "garbage: %d %s", rv, err);
	assert_int_equal(rv, 1);
	h_assert_contains(err, db);
	h_assert_contains(err, "is damaged");
	/* Page 2's header overwritten: quick_check finds it. */
	assert_int_equal(
	    h_run(
	        c, NULL, NULL,
	        "cp good.db %s && python3 -c \"import sys; f=open(sys.argv[1],"
	        "'r+b'); f.seek(4096); f.write(b'\\xff'*200)\" %s",
	        db, db),
	    0);
	rv = h_run(c, NULL, &err,
	           "timeout -s TERM 15 troupe-scheduler --home %s", h_dir(c));
	fprintf(stderr, "overwritten page: %d %s", rv, err);
	assert_int_equal(rv, 1);
	h_assert_contains(err, "is damaged");

	/* A missing chunk: the scheduler starts, the execution FAILS with a
	 * reason instead of staying QUEUED forever. */
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "cp good.db %s && python3 -c \"import sqlite3, sys; "
	          "d=sqlite3.connect(sys.argv[1]); d.execute('DELETE FROM "
	          "chunks WHERE chunk = 1'); d.commit()\" %s",
	          db, db),
	    0);
	h_restart_scheduler(c);
	{
		Troupe__Execution *e = h_execution(c, id);

		fprintf(stderr, "missing chunk: %s: %s\n",
		        protobuf_c_enum_descriptor_get_value(
		            &troupe__phase__descriptor, e->phase)
		            ->name,
		        e->error);
		assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
		h_assert_contains(e->error, "no chunk 1");
	}
	assert_int_equal(h_run(c, &out, NULL, "troupe status %s", id), 0);
	h_assert_icontains(out, "failed");

	/* The same, but the database refuses the FAILED mark at start (a
	 * trigger stands in for a write that fails): the execution stays
	 * unfinished and the log names `troupe abort`.  Once writes work
	 * again, `troupe abort ID` ends it FAILED, and a second abort says
	 * it has finished. */
	assert_int_equal(h_kill_scheduler(c, SIGTERM), 0);
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "rm -f %s-wal %s-shm && cp good.db %s && python3 -c "
	          "\"import sqlite3, sys; d=sqlite3.connect(sys.argv[1]); "
	          "d.execute('DELETE FROM chunks WHERE chunk = 1'); "
	          "d.execute('CREATE TRIGGER hold BEFORE UPDATE ON executions "
	          "BEGIN SELECT RAISE(ABORT, \\'held\\'); END'); "
	          "d.commit()\" %s",
	          db, db, db, db),
	    0);
	h_restart_scheduler(c);
	{
		Troupe__Execution *e = h_execution(c, id);

		assert_false(h_phase_done(e->phase));
	}
	h_assert_contains(h_slurp(c, h_path(c, "h-scheduler.log")),
	                  "troupe abort");
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "python3 -c \"import sqlite3, sys; "
	          "d=sqlite3.connect(sys.argv[1]); "
	          "d.execute('DROP TRIGGER hold'); d.commit()\" %s",
	          db),
	    0);
	rv = h_run(c, &out, &err, "troupe abort %s", id);
	if (rv != 0)
		h_fail(c, "abort of an unloaded execution: exit %d: %s", rv,
		       err);
	{
		Troupe__Execution *e = h_execution(c, id);

		assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
		h_assert_contains(e->error, "troupe abort");
	}
	h_assert_contains(h_slurp(c, h_path(c, "h-scheduler.log")),
	                  "(not loaded) marked FAILED by request");
	rv = h_run(c, NULL, &err, "troupe abort %s", id);
	assert_int_equal(rv, 1);
	h_assert_contains(err, "already finished");
	h_done(c);
}

/* ---- 9: strings and bounds ---- */

static void
test_strings_and_bounds(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1});
	const char *api = h_api_addr(c);
	size_t      before = count_executions(c);

	{
		Troupe__CreateExecutionRequest req =
		    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
		Troupe__ExecutionSpec sp = TROUPE__EXECUTION_SPEC__INIT;
		Troupe__ActorEnv      a = TROUPE__ACTOR_ENV__INIT;
		ProtobufCBinaryData   item = {1, (uint8_t *)"x"};

		req.spec = &sp;
		req.items = &item;
		req.n_items = 1;
		req.seal = true;
		sp.command = "echo {} @@";
		raw_expect(c, api, "CreateExecution", &req.base, "\xff\xfe",
		           TROUPE__CODE__INVALID_ARGUMENT, "spec.command");
		sp.command = "echo {}";
		sp.name = "label@@";
		raw_expect(c, api, "CreateExecution", &req.base, "\xc3\x28",
		           TROUPE__CODE__INVALID_ARGUMENT, "spec.name");
		raw_expect(c, api, "CreateExecution", &req.base, "\xed\xa0",
		           TROUPE__CODE__INVALID_ARGUMENT, "UTF-8");
		raw_expect(c, api, "CreateExecution", &req.base, "a\0",
		           TROUPE__CODE__INVALID_ARGUMENT, "NUL");
		sp.name = "";
		/* Ad hoc actors are bounded the same way. */
		sp.adhoc_actor = &a;
		a.replica_count = 1;
		a.ttl_seconds = UINT32_MAX;
		raw_expect(c, api, "CreateExecution", &req.base, NULL,
		           TROUPE__CODE__INVALID_ARGUMENT, "TTL");
		/* Valid UTF-8 passes. */
		sp.adhoc_actor = NULL;
		sp.name = "caf\xc3\xa9 \xf0\x9f\x8e\xad";
		raw_expect(c, api, "CreateExecution", &req.base, NULL,
		           TROUPE__CODE__OK, NULL);
	}
	{
		Troupe__RegisterTaskRequest req =
		    TROUPE__REGISTER_TASK_REQUEST__INIT;
		Troupe__TaskSpec t = TROUPE__TASK_SPEC__INIT;

		/* A NUL would cut "ok@@evil" to "ok". */
		t.name = "ok@@evil";
		t.command = "echo {}";
		req.task = &t;
		raw_expect(c, api, "RegisterTask", &req.base, "\0x",
		           TROUPE__CODE__INVALID_ARGUMENT, "task.name");
	}
	{
		Troupe__RegisterActorRequest req =
		    TROUPE__REGISTER_ACTOR_REQUEST__INIT;
		Troupe__ActorEnv a = TROUPE__ACTOR_ENV__INIT;

		a.name = "bounded";
		a.command = "cat";
		req.env = &a;
		a.replica_count = UINT32_MAX;
		raw_expect(c, api, "RegisterActor", &req.base, NULL,
		           TROUPE__CODE__INVALID_ARGUMENT, "replicas");
		a.replica_count = 2;
		a.ttl_seconds = UINT32_MAX; /* 136 years */
		raw_expect(c, api, "RegisterActor", &req.base, NULL,
		           TROUPE__CODE__INVALID_ARGUMENT, "TTL");
		a.ttl_seconds = 7 * 24 * 3600 + 1;
		raw_expect(c, api, "RegisterActor", &req.base, NULL,
		           TROUPE__CODE__INVALID_ARGUMENT, "TTL");
		a.ttl_seconds = 60;
		a.protocol = (Troupe__Protocol)7;
		raw_expect(c, api, "RegisterActor", &req.base, NULL,
		           TROUPE__CODE__INVALID_ARGUMENT, "protocol");
		a.protocol = TROUPE__PROTOCOL__PROTOCOL_FRAMES;
		raw_expect(c, api, "RegisterActor", &req.base, NULL,
		           TROUPE__CODE__OK, NULL);
	}
	{
		/* The worker link too. */
		Troupe__RegisterWorkerRequest req =
		    TROUPE__REGISTER_WORKER_REQUEST__INIT;

		req.name = "evil@@";
		req.host = "h";
		req.slots = 1;
		raw_expect(c, h_worker_addr(c), "RegisterWorker", &req.base,
		           "\xff\xff", TROUPE__CODE__INVALID_ARGUMENT, "name");
	}
	/* Only the valid execution was created; every string listed is
	 * valid UTF-8 (it unpacked), and the cluster still works. */
	assert_int_equal(count_executions(c), before + 1);
	{
		char *out;

		assert_int_equal(
		    h_run(c, &out, NULL, "seq 2 | troupe map --cmd 'echo {}'"),
		    0);
		assert_string_equal(out, "1\n2\n");
	}
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_listen_any_spelling),
	    H_TEST(test_token_rules),
	    HF_TEST(test_token_not_in_items),
	    H_TEST(test_env_bounded),
	    H_TEST(test_placeholder_refused),
	    H_TEST(test_outputs_pages_fit),
	    H_TEST(test_empty_item_and_actor_env),
	    H_TEST(test_damaged_database),
	    H_TEST(test_strings_and_bounds),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
