/*
 * The disk under the scheduler's database fills up.  The database lives
 * on a 16 MiB tmpfs of its own (--db; SQLite's WAL alone grows to 4 MiB
 * before it is checkpointed and reused), filled with a file while one map
 * is finished and another runs:
 * - a new submission gets RESOURCE_EXHAUSTED (API) and a message naming
 *   the full disk (CLI), and nothing of it is recorded; a CLI upload
 *   whose first chunk still fit (2 MB are left for it) ends ABORTED,
 *   which is written once there is room;
 * - the scheduler keeps running: GetHealth, the finished execution's
 *   status and outputs, the list, all still answer;
 * - the running map does not fail for it: its results wait (the worker
 *   keeps them until they are committed), and once the filler is deleted
 *   it completes with every output right;
 * - new maps succeed again, the database passes `PRAGMA
 *   integrity_check` (read through the SQLite library, so it always
 *   runs) and a restarted scheduler reads everything back.
 *
 * Needs root (mount); skipped otherwise.  Unmounted at the end whatever
 * happens.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness_faults.h"
#include "skip.h"

/* PRAGMA integrity_check on the database at path, opened read-only while
 * no scheduler runs: every row it returns must be "ok" (a damaged page, a
 * broken index or a torn WAL frame each yields a row naming it). */
static void
integrity_ok(const char *path)
{
	sqlite3      *db = NULL;
	sqlite3_stmt *st = NULL;
	int           rows = 0, rc;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	                 SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *row = (const char *)sqlite3_column_text(st, 0);

		fprintf(stderr, "integrity_check: %s\n", row ? row : "(null)");
		assert_non_null(row);
		assert_string_equal(row, "ok");
		rows++;
	}
	assert_int_equal(rc, SQLITE_DONE);
	assert_int_equal(rows, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
check_done1(h_cluster *c, const char *id)
{
	char *out;

	assert_int_equal(h_wait_done(c, id, 1000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	(void)hf_check_outputs(c, id, 200, hf_expect_seq, &(hf_seq){"s", "\n"});
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s | md5sum", id),
	                 0);
	assert_int_equal(h_run(c, NULL, NULL,
	                       "seq 200 | sed 's/^/s/' | md5sum | grep -qx %s",
	                       h_quote(c, h_chomp(out))),
	                 0);
}

/* The execution a failed `troupe map` names in its error, or NULL when
 * none was made. */
static const char *
upload_cut_short(h_cluster *c, const char *err)
{
	const char *p = strstr(err, "uploading the items of ");
	size_t      n;

	if (p == NULL)
		return NULL;
	p += strlen("uploading the items of ");
	n = strcspn(p, " ");
	return h_keep(c, strndup(p, n));
}

static void
test_disk_full(void **state)
{
	char        mnt[] = "/tmp/troupe-df-XXXXXX";
	char        args[200];
	h_cluster  *c;
	const char *done1, *running, *db;
	const char *half; /* the execution of an upload cut short */
	char       *out, *err;
	uint64_t    eight = 8;
	int         rv;

	hf_need_root("mounting a tmpfs");
	assert_non_null(mkdtemp(mnt));
	hf_at_end("rmdir %s", mnt);
	if (hf_sh("mount -t tmpfs -o size=16m,mode=0700 tmpfs %s", mnt) != 0) {
		T_SKIP("cannot mount a tmpfs here");
	}
	hf_at_end("umount -l %s", mnt);
	snprintf(args, sizeof(args), "--db %s/troupe.db", mnt);
	c = h_start(&(h_opts){.workers = 1, .slots = 4, .sched_args = args});
	db = h_keep(c, strdup(args + 5));

	/* Before: one finished map, one running. */
	/* big: 5,000 items of 2 KB, more than the room left plus any room
	 * the WAL has. */
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "seq 200 > items; seq 160 > items2; seq 100 > items3; "
	          "awk 'BEGIN { s = sprintf(\"%%2000s\", \"\"); "
	          "gsub(/ /, \"x\", s); for (i = 1; i <= 5000; i++) "
	          "print i \"-\" s }' > big"),
	    0);
	done1 = h_map_detach(c, NULL, "--items items --cmd 'echo s{}'");
	assert_int_equal(h_wait_done(c, done1, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	running = h_map_detach(c, NULL,
	                       "--items items2 --concurrency 4 --cmd 'sleep "
	                       "0.1; echo r{}'");
	(void)h_wait_exec(c, running, hf_succeeded_at_least, &eight, 30000,
	                  "8 items done");

	/* Nearly full: 2 MB left, room for the first chunk of an upload
	 * (about 1 MB) and not for the rest. */
	hf_sh("dd if=/dev/zero of=%s/filler bs=1k count=$(($(df -k "
	      "--output=avail %s | tail -1) - 2048)) 2>/dev/null; df -k %s",
	      mnt, mnt, mnt);

	/* A submission is refused, by the CLI... */
	rv = h_run(c, &out, &err, "troupe map --items big --cmd 'echo {}'");
	assert_int_not_equal(rv, 0);
	h_assert_icontains(err, "disk is full");
	/* Its first chunk made an execution; the CLI does not leave it
	 * waiting for a seal: it names it, and it is ABORTED. */
	half = upload_cut_short(c, err);
	assert_non_null(half);
	assert_int_equal(h_execution(c, half)->phase,
	                 TROUPE__PHASE__PHASE_ABORTED);
	/* Full. */
	hf_sh("dd if=/dev/zero of=%s/filler2 bs=4k 2>/dev/null; df -k %s", mnt,
	      mnt);
	/* ...and through the API, with RESOURCE_EXHAUSTED. */
	{
		Troupe__CreateExecutionRequest req =
		    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
		Troupe__ExecutionSpec spec = TROUPE__EXECUTION_SPEC__INIT;
		Troupe__CreateExecutionReply *rep = NULL;
		enum { N = 1500, LEN = 4000 };
		ProtobufCBinaryData *its = calloc(N, sizeof(*its));
		uint8_t             *bytes = malloc(LEN);

		assert_non_null(its);
		assert_non_null(bytes);
		memset(bytes, 'y', LEN);
		for (int i = 0; i < N; i++) {
			its[i].data = bytes;
			its[i].len = LEN;
		}
		spec.command = "echo {}";
		req.spec = &spec;
		req.items = its;
		req.n_items = N;
		req.seal = true;
		rv = H_CALL(c, CreateExecution, &req, create_execution, &rep);
		free(its);
		free(bytes);
		fprintf(stderr, "CreateExecution on a full disk: %s (%s)\n",
		        troupe_strerror(rv), troupe_client_error(h_client(c)));
		assert_int_equal(rv, TROUPE_EFULL);
	}

	/* The scheduler is up, and what it had is readable. */
	assert_int_equal(h_run(c, &out, NULL, "troupe health"), 0);
	check_done1(c, done1);
	assert_int_equal(h_run(c, &out, NULL, "troupe list"), 0);
	h_assert_contains(out, done1);
	h_assert_contains(out, running);
	assert_int_equal(h_lines(out), 4); /* a header and 3 executions */
	/* The running map does not fail for lack of disk (its results
	 * wait, or fit in what room the WAL has). */
	hf_sleep_ms(3000);
	{
		Troupe__Phase p = h_execution(c, running)->phase;

		assert_true(p == TROUPE__PHASE__PHASE_RUNNING ||
		            p == TROUPE__PHASE__PHASE_SUCCEEDED);
	}
	assert_int_equal(h_run(c, &out, NULL, "troupe health"), 0);

	/* Space comes back: the running map completes, all of it right. */
	assert_int_equal(hf_sh("rm -f %s/filler %s/filler2", mnt, mnt), 0);
	assert_int_equal(h_wait_done(c, running, 90000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	{
		hf_tally t = hf_check_outputs(c, running, 160, hf_expect_seq,
		                              &(hf_seq){"r", "\n"});

		fprintf(stderr, "%llu items of the running map ran again\n",
		        (unsigned long long)t.reruns);
	}
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe map --items items3 --cmd 'echo {}' | "
	                       "wc -l"),
	                 0);
	assert_int_equal(atoi(out), 100);

	/* Nothing corrupted: integrity check with the scheduler stopped,
	 * then everything read back by a new one. */
	rv = h_kill_scheduler(c, SIGTERM);
	assert_true(WIFEXITED(rv) && WEXITSTATUS(rv) == 0);
	integrity_ok(db);
	h_restart_scheduler(c);
	check_done1(c, done1);
	(void)hf_check_outputs(c, running, 160, hf_expect_seq,
	                       &(hf_seq){"r", "\n"});
	assert_int_equal(h_run(c, &out, NULL, "troupe list | wc -l"), 0);
	assert_int_equal(atoi(out), 5);
	/* The abort made while the disk was full was kept once it had room. */
	assert_int_equal(h_execution(c, half)->phase,
	                 TROUPE__PHASE__PHASE_ABORTED);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    HF_TEST(test_disk_full),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
