/*
 * The scheduler's SQLite store (daemon/scheduler/store.h).
 *
 * Checks:
 * - open creates the schema, user_version = 2, journal_mode = wal; a
 *   version-1 database is migrated to 2
 * - reopening keeps what was committed
 * - a database from a newer troupe is refused (TROUPE_ESTATE)
 * - put/get execution round-trips every field
 * - put_execution on an existing id keeps its seq
 * - list: newest first, before_seq paging, phase / project filters, limit,
 *   a callback may stop it or fail it
 * - unfinished: only QUEUED/RUNNING, oldest first; the callback may
 *   rewrite the executions being listed
 * - result deltas: put in any order, read back in seq order, dropped per
 *   chunk only
 * - chunk inputs/results round-trip; each put keeps the other blob;
 *   results never written read back as NULL; missing chunk: ENOTFOUND
 * - tasks and actors: put/get/list/delete, EEXIST without replace,
 *   ENOTFOUND on get/delete of a missing name
 * - rollback discards, commit keeps, rollback with none open is harmless
 * - a corrupt stored blob reads as TROUPE_EIO with a message
 * - a full disk (SQLITE_FULL from a VFS shim) is TROUPE_EFULL, and the
 *   store works again once there is room
 * - 1000 chunk result writes in one commit are fast
 * - item logs: one row per (execution, item, attempt), put replaces,
 *   listed in key order from a key, filtered by item and attempt
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "troupe/error.h"
#include "skip.h"

static char test_dir[64];
static int  test_seq;

typedef struct test_state {
	char   path[256];
	store *s;
} test_state;

/* ---- a VFS that can pretend the disk is full ---- */

static sqlite3_vfs *full_real;
static sqlite3_vfs  full_vfs;
static int          full_on;

typedef struct full_file {
	sqlite3_file base;
	/* the real file follows */
} full_file;

#define FULL_REAL(f) ((sqlite3_file *)((full_file *)(f) + 1))

static int
full_close(sqlite3_file *f)
{
	return FULL_REAL(f)->pMethods->xClose(FULL_REAL(f));
}
static int
full_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return FULL_REAL(f)->pMethods->xRead(FULL_REAL(f), b, n, off);
}
static int
full_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	if (full_on)
		return SQLITE_FULL;
	return FULL_REAL(f)->pMethods->xWrite(FULL_REAL(f), b, n, off);
}
static int
full_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return FULL_REAL(f)->pMethods->xTruncate(FULL_REAL(f), size);
}
static int
full_sync(sqlite3_file *f, int flags)
{
	return FULL_REAL(f)->pMethods->xSync(FULL_REAL(f), flags);
}
static int
full_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return FULL_REAL(f)->pMethods->xFileSize(FULL_REAL(f), size);
}
static int
full_lock(sqlite3_file *f, int l)
{
	return FULL_REAL(f)->pMethods->xLock(FULL_REAL(f), l);
}
static int
full_unlock(sqlite3_file *f, int l)
{
	return FULL_REAL(f)->pMethods->xUnlock(FULL_REAL(f), l);
}
static int
full_check_lock(sqlite3_file *f, int *out)
{
	return FULL_REAL(f)->pMethods->xCheckReservedLock(FULL_REAL(f), out);
}
static int
full_fcntl(sqlite3_file *f, int op, void *arg)
{
	return FULL_REAL(f)->pMethods->xFileControl(FULL_REAL(f), op, arg);
}
static int
full_sector(sqlite3_file *f)
{
	return FULL_REAL(f)->pMethods->xSectorSize(FULL_REAL(f));
}
static int
full_devchar(sqlite3_file *f)
{
	return FULL_REAL(f)->pMethods->xDeviceCharacteristics(FULL_REAL(f));
}
static int
full_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	return FULL_REAL(f)->pMethods->xShmMap(FULL_REAL(f), pg, sz, ext, p);
}
static int
full_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return FULL_REAL(f)->pMethods->xShmLock(FULL_REAL(f), off, n, flags);
}
static void
full_shm_barrier(sqlite3_file *f)
{
	FULL_REAL(f)->pMethods->xShmBarrier(FULL_REAL(f));
}
static int
full_shm_unmap(sqlite3_file *f, int del)
{
	return FULL_REAL(f)->pMethods->xShmUnmap(FULL_REAL(f), del);
}

/* Version 2: shared memory (WAL needs it), no memory-mapped I/O. */
static const sqlite3_io_methods full_io = {2,
                                           full_close,
                                           full_read,
                                           full_write,
                                           full_truncate,
                                           full_sync,
                                           full_size,
                                           full_lock,
                                           full_unlock,
                                           full_check_lock,
                                           full_fcntl,
                                           full_sector,
                                           full_devchar,
                                           full_shm_map,
                                           full_shm_lock,
                                           full_shm_barrier,
                                           full_shm_unmap};

static int
full_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
          int *outflags)
{
	int rc =
	    full_real->xOpen(full_real, name, FULL_REAL(f), flags, outflags);

	f->pMethods = FULL_REAL(f)->pMethods != NULL ? &full_io : NULL;
	return rc;
}

static void
full_register(void)
{
	full_real = sqlite3_vfs_find(NULL);
	assert_non_null(full_real);
	full_vfs = *full_real;
	full_vfs.pNext = NULL;
	full_vfs.zName = "troupe-test-full";
	full_vfs.szOsFile = (int)sizeof(full_file) + full_real->szOsFile;
	full_vfs.xOpen = full_open;
	assert_int_equal(sqlite3_vfs_register(&full_vfs, 1), SQLITE_OK);
}

/* ---- helpers ---- */

static int
rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(p);
}

static int
group_setup(void **state)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(test_dir) == NULL)
		return -1;
	full_register();
	return 0;
}

static int
group_teardown(void **state)
{
	sqlite3_vfs_unregister(&full_vfs);
	return nftw(test_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int
setup(void **state)
{
	test_state *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/db%d.sqlite", test_dir,
	         ++test_seq);
	if (store_open(t->path, &t->s) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	test_state *t = *state;

	full_on = 0;
	store_close(t->s);
	free(t);
	return 0;
}

/* Runs a one-value query on a separate connection to the file. */
static int64_t
peek_int(const char *path, const char *sql)
{
	sqlite3      *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t       v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
poke(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Fills ex (stack storage) with an execution; strings are literals. */
typedef struct exec_buf {
	Troupe__Execution     ex;
	Troupe__ExecutionSpec spec;
	Troupe__Counts        counts;
	Troupe__TaskSpec      task;
	char                  id[32];
} exec_buf;

static Troupe__Execution *
mk_exec(exec_buf *b, const char *id, Troupe__Phase phase, const char *project)
{
	troupe__execution__init(&b->ex);
	troupe__execution_spec__init(&b->spec);
	troupe__counts__init(&b->counts);
	troupe__task_spec__init(&b->task);
	snprintf(b->id, sizeof(b->id), "%s", id);
	b->ex.id = b->id;
	b->ex.phase = phase;
	b->ex.spec = &b->spec;
	b->spec.project = (char *)project;
	b->spec.command = "echo hi";
	b->ex.created_ms = 1700000000000;
	return &b->ex;
}

static void
put(store *s, const char *id, Troupe__Phase phase, const char *project)
{
	exec_buf b;

	assert_int_equal(
	    store_put_execution(s, mk_exec(&b, id, phase, project)), 0);
}

/* Collects listed ids into a comma-separated string. */
typedef struct ids {
	char    buf[512];
	int64_t last_seq;
	int     n;
	int     stop_after; /* > 0: return 1 after this many */
	int     fail_after; /* > 0: return TROUPE_EIO after this many */
	store  *rewrite;    /* non-NULL: mark each one RUNNING->SUCCEEDED */
} ids;

static int
ids_cb(void *arg, int64_t seq, Troupe__Execution *ex)
{
	ids *c = arg;
	int  rv = 0;

	snprintf(c->buf + strlen(c->buf), sizeof(c->buf) - strlen(c->buf),
	         "%s%s", c->n ? "," : "", ex->id);
	c->last_seq = seq;
	c->n++;
	if (c->rewrite != NULL) {
		ex->phase = ex->phase == TROUPE__PHASE__PHASE_QUEUED
		                ? TROUPE__PHASE__PHASE_RUNNING
		                : TROUPE__PHASE__PHASE_SUCCEEDED;
		rv = store_put_execution(c->rewrite, ex);
	}
	troupe__execution__free_unpacked(ex, NULL);
	if (rv == 0 && c->stop_after > 0 && c->n >= c->stop_after)
		rv = 1;
	if (rv == 0 && c->fail_after > 0 && c->n >= c->fail_after)
		rv = TROUPE_EIO;
	return rv;
}

static const char *
list(store *s, int64_t before, Troupe__Phase phase, const char *project,
     uint32_t limit, ids *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(
	    store_list_executions(s, before, phase, project, limit, ids_cb, c),
	    0);
	return c->buf;
}

/* ---- tests ---- */

/* Per-item logs: collects "item.attempt:data(dropped)" of each row. */
typedef struct logs_seen {
	char buf[512];
	int  stop_after; /* 0: never */
	int  n;
} logs_seen;

static int
logs_cb(void *arg, uint64_t item, uint32_t attempt, const uint8_t *data,
        size_t len, uint64_t dropped)
{
	logs_seen *l = arg;
	size_t     at = strlen(l->buf);

	snprintf(l->buf + at, sizeof(l->buf) - at, "%llu.%u:%.*s(%llu) ",
	         (unsigned long long)item, attempt, (int)len,
	         (const char *)data, (unsigned long long)dropped);
	return ++l->n == l->stop_after ? 1 : 0;
}

static const char *
logs_list(store *s, const char *id, uint64_t item, uint32_t attempt,
          int64_t only_item, uint32_t only_attempt, int stop_after)
{
	static logs_seen l;

	memset(&l, 0, sizeof(l));
	l.stop_after = stop_after;
	assert_int_equal(store_list_logs(s, id, item, attempt, only_item,
	                                 only_attempt, logs_cb, &l),
	                 0);
	return l.buf;
}

/* Logs: one row per (execution, item, attempt), put replaces, listed
 * in key order from a starting key, filtered by item and attempt; they
 * survive a reopen. */
static void
test_item_logs(void **state)
{
	test_state *t = *state;

	assert_int_equal(store_begin(t->s), 0);
	assert_int_equal(
	    store_put_log(t->s, "e1", 2, 1, (const uint8_t *)"b1", 2, 0), 0);
	assert_int_equal(
	    store_put_log(t->s, "e1", 0, 1, (const uint8_t *)"a1", 2, 7), 0);
	assert_int_equal(
	    store_put_log(t->s, "e1", 2, 2, (const uint8_t *)"xx", 2, 0), 0);
	assert_int_equal(
	    store_put_log(t->s, "e2", 0, 1, (const uint8_t *)"other", 5, 0), 0);
	/* A re-sent result writes its row again. */
	assert_int_equal(
	    store_put_log(t->s, "e1", 2, 2, (const uint8_t *)"b2", 2, 0), 0);
	assert_int_equal(store_commit(t->s), 0);
	store_close(t->s);
	t->s = NULL;
	assert_int_equal(store_open(t->path, &t->s), 0);
	assert_string_equal(logs_list(t->s, "e1", 0, 0, -1, 0, 0),
	                    "0.1:a1(7) 2.1:b1(0) 2.2:b2(0) ");
	assert_string_equal(logs_list(t->s, "e1", 2, 2, -1, 0, 0),
	                    "2.2:b2(0) ");
	assert_string_equal(logs_list(t->s, "e1", 1, 0, -1, 0, 0),
	                    "2.1:b1(0) 2.2:b2(0) ");
	assert_string_equal(logs_list(t->s, "e1", 0, 0, 2, 0, 0),
	                    "2.1:b1(0) 2.2:b2(0) ");
	assert_string_equal(logs_list(t->s, "e1", 0, 0, 2, 1, 0), "2.1:b1(0) ");
	assert_string_equal(logs_list(t->s, "e1", 0, 0, 1, 0, 0), "");
	assert_string_equal(logs_list(t->s, "e1", 0, 0, -1, 0, 2),
	                    "0.1:a1(7) 2.1:b1(0) ");
	assert_string_equal(logs_list(t->s, "nope", 0, 0, -1, 0, 0), "");
}

static void
test_open_creates_schema(void **state)
{
	test_state *t = *state;

	assert_int_equal(peek_int(t->path, "PRAGMA user_version"), 4);
	assert_int_equal(
	    peek_int(t->path,
	             "SELECT count(*) FROM sqlite_master WHERE name IN "
	             "('executions','chunks','tasks','actors',"
	             "'executions_phase','result_deltas','projects','tokens',"
	             "'item_logs')"),
	    9);
	assert_int_equal(peek_int(t->path, "SELECT journal_mode = 'wal' "
	                                   "FROM pragma_journal_mode"),
	                 1);
}

static void
test_reopen_keeps_data(void **state)
{
	test_state        *t = *state;
	Troupe__Execution *ex = NULL;

	put(t->s, "e1", TROUPE__PHASE__PHASE_QUEUED, "p");
	store_close(t->s);
	t->s = NULL;
	assert_int_equal(store_open(t->path, &t->s), 0);
	assert_int_equal(store_get_execution(t->s, "e1", &ex), 0);
	assert_string_equal(ex->id, "e1");
	troupe__execution__free_unpacked(ex, NULL);
	assert_int_equal(peek_int(t->path, "PRAGMA user_version"), 4);
}

/* A database written by a version-1 troupe (no result_deltas) opens,
 * keeps its rows and gains the table. */
static void
test_migrates_v1(void **state)
{
	test_state        *t = *state;
	Troupe__Execution *ex = NULL;

	put(t->s, "old", TROUPE__PHASE__PHASE_RUNNING, "p");
	store_close(t->s);
	t->s = NULL;
	poke(t->path, "DROP TABLE result_deltas");
	poke(t->path, "DROP TABLE projects");
	poke(t->path, "DROP TABLE tokens");
	poke(t->path, "DROP TABLE item_logs");
	poke(t->path, "UPDATE executions SET project = ''");
	poke(t->path, "PRAGMA user_version = 1");
	assert_int_equal(store_open(t->path, &t->s), 0);
	assert_int_equal(peek_int(t->path, "PRAGMA user_version"), 4);
	/* v3: executions of before belong to the default project. */
	assert_int_equal(peek_int(t->path, "SELECT count(*) FROM executions "
	                                   "WHERE project = 'default'"),
	                 1);
	assert_int_equal(peek_int(t->path, "SELECT count(*) FROM sqlite_master "
	                                   "WHERE name = 'result_deltas'"),
	                 1);
	assert_int_equal(store_get_execution(t->s, "old", &ex), 0);
	troupe__execution__free_unpacked(ex, NULL);
}

static void
test_newer_schema_refused(void **state)
{
	test_state *t = *state;
	store      *s2 = NULL;

	store_close(t->s);
	t->s = NULL;
	poke(t->path, "PRAGMA user_version = 99");
	assert_int_equal(store_open(t->path, &s2), TROUPE_ESTATE);
	assert_null(s2);
	assert_non_null(strstr(store_errmsg(NULL), "99"));
	poke(t->path, "PRAGMA user_version = 4");
	assert_int_equal(store_open(t->path, &t->s), 0);
}

static void
test_execution_roundtrip(void **state)
{
	test_state        *t = *state;
	exec_buf           b;
	Troupe__Execution *in =
	    mk_exec(&b, "ex-1", TROUPE__PHASE__PHASE_RUNNING, "proj");
	Troupe__Execution *out = NULL;
	char              *env[] = {"A=1", "B=2"};

	in->total = 5000;
	in->sealed = 1;
	in->counts = &b.counts;
	b.counts.succeeded = 7;
	b.counts.failed = 2;
	in->started_ms = 11;
	in->finished_ms = 12;
	in->version = 42;
	in->error = "boom";
	in->task = &b.task;
	b.task.name = "t";
	b.task.command = "wc -c";
	b.spec.retries_opt_case = TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES;
	b.spec.retries = 0;
	b.spec.n_env = 2;
	b.spec.env = env;

	assert_int_equal(store_put_execution(t->s, in), 0);
	assert_int_equal(store_get_execution(t->s, "ex-1", &out), 0);
	assert_string_equal(out->id, "ex-1");
	assert_int_equal(out->phase, TROUPE__PHASE__PHASE_RUNNING);
	assert_int_equal(out->total, 5000);
	assert_true(out->sealed);
	assert_non_null(out->counts);
	assert_int_equal(out->counts->succeeded, 7);
	assert_int_equal(out->counts->failed, 2);
	assert_int_equal(out->created_ms, 1700000000000);
	assert_int_equal(out->started_ms, 11);
	assert_int_equal(out->finished_ms, 12);
	assert_int_equal(out->version, 42);
	assert_string_equal(out->error, "boom");
	assert_non_null(out->spec);
	assert_string_equal(out->spec->project, "proj");
	assert_string_equal(out->spec->command, "echo hi");
	assert_int_equal(out->spec->retries_opt_case,
	                 TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES);
	assert_int_equal(out->spec->n_env, 2);
	assert_string_equal(out->spec->env[1], "B=2");
	assert_non_null(out->task);
	assert_string_equal(out->task->command, "wc -c");
	troupe__execution__free_unpacked(out, NULL);

	assert_int_equal(store_get_execution(t->s, "nope", &out),
	                 TROUPE_ENOTFOUND);
	assert_non_null(strstr(store_errmsg(t->s), "nope"));

	b.ex.id = "";
	assert_int_equal(store_put_execution(t->s, &b.ex), TROUPE_EINVAL);
}

static void
test_upsert_keeps_seq(void **state)
{
	test_state        *t = *state;
	ids                c;
	int64_t            seq_a;
	Troupe__Execution *ex = NULL;

	put(t->s, "a", TROUPE__PHASE__PHASE_QUEUED, "");
	list(t->s, 0, 0, NULL, 0, &c);
	seq_a = c.last_seq;
	put(t->s, "b", TROUPE__PHASE__PHASE_QUEUED, "");
	put(t->s, "a", TROUPE__PHASE__PHASE_SUCCEEDED, "new");
	assert_string_equal(list(t->s, 0, 0, NULL, 0, &c), "b,a");
	assert_int_equal(c.last_seq, seq_a);
	assert_int_equal(store_get_execution(t->s, "a", &ex), 0);
	assert_int_equal(ex->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	troupe__execution__free_unpacked(ex, NULL);
	/* the filter columns follow the body */
	assert_string_equal(
	    list(t->s, 0, TROUPE__PHASE__PHASE_SUCCEEDED, "new", 0, &c), "a");
	assert_int_equal(peek_int(t->path, "SELECT count(*) FROM executions"),
	                 2);
}

static void
test_list_paging_and_filters(void **state)
{
	test_state *t = *state;
	ids         c;
	int64_t     before;
	int         rv;

	/* e0..e9: even ones in project x, phases cycle QUEUED..FAILED */
	for (int i = 0; i < 10; i++) {
		char id[8];

		snprintf(id, sizeof(id), "e%d", i);
		put(t->s, id, (Troupe__Phase)(1 + i % 4), i % 2 ? "y" : "x");
	}
	assert_string_equal(list(t->s, 0, 0, NULL, 0, &c),
	                    "e9,e8,e7,e6,e5,e4,e3,e2,e1,e0");
	assert_string_equal(list(t->s, 0, 0, "", 0, &c),
	                    "e9,e8,e7,e6,e5,e4,e3,e2,e1,e0");

	/* pages of 4 */
	assert_string_equal(list(t->s, 0, 0, NULL, 4, &c), "e9,e8,e7,e6");
	before = c.last_seq;
	assert_string_equal(list(t->s, before, 0, NULL, 4, &c), "e5,e4,e3,e2");
	before = c.last_seq;
	assert_string_equal(list(t->s, before, 0, NULL, 4, &c), "e1,e0");
	before = c.last_seq;
	assert_string_equal(list(t->s, before, 0, NULL, 4, &c), "");

	/* phase: QUEUED are e0,e4,e8 */
	assert_string_equal(
	    list(t->s, 0, TROUPE__PHASE__PHASE_QUEUED, NULL, 0, &c),
	    "e8,e4,e0");
	assert_string_equal(
	    list(t->s, 0, TROUPE__PHASE__PHASE_QUEUED, NULL, 2, &c), "e8,e4");
	assert_string_equal(
	    list(t->s, c.last_seq, TROUPE__PHASE__PHASE_QUEUED, NULL, 2, &c),
	    "e0");
	/* project */
	assert_string_equal(list(t->s, 0, 0, "y", 0, &c), "e9,e7,e5,e3,e1");
	assert_string_equal(list(t->s, 0, 0, "y", 2, &c), "e9,e7");
	assert_string_equal(list(t->s, 0, 0, "zz", 0, &c), "");
	/* both: RUNNING (e1,e5,e9) in y */
	assert_string_equal(
	    list(t->s, 0, TROUPE__PHASE__PHASE_RUNNING, "y", 0, &c),
	    "e9,e5,e1");
	assert_string_equal(
	    list(t->s, 0, TROUPE__PHASE__PHASE_RUNNING, "x", 0, &c), "");

	/* the callback stops it (positive: 0) or fails it (negative) */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(store_list_executions(t->s, 0, 0, NULL, 0, ids_cb, &c),
	                 0);
	assert_string_equal(c.buf, "e9,e8");
	memset(&c, 0, sizeof(c));
	c.fail_after = 3;
	rv = store_list_executions(t->s, 0, 0, NULL, 0, ids_cb, &c);
	assert_int_equal(rv, TROUPE_EIO);
	assert_string_equal(c.buf, "e9,e8,e7");
}

static void
test_unfinished(void **state)
{
	test_state *t = *state;
	ids         c;

	put(t->s, "q1", TROUPE__PHASE__PHASE_QUEUED, "");
	put(t->s, "s1", TROUPE__PHASE__PHASE_SUCCEEDED, "");
	put(t->s, "r1", TROUPE__PHASE__PHASE_RUNNING, "");
	put(t->s, "f1", TROUPE__PHASE__PHASE_FAILED, "");
	put(t->s, "a1", TROUPE__PHASE__PHASE_ABORTED, "");
	put(t->s, "t1", TROUPE__PHASE__PHASE_TIMED_OUT, "");
	put(t->s, "q2", TROUPE__PHASE__PHASE_QUEUED, "");

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_unfinished_executions(t->s, ids_cb, &c), 0);
	assert_string_equal(c.buf, "q1,r1,q2");

	/* each one moves a phase forward while the listing runs: each is
	 * still seen exactly once */
	memset(&c, 0, sizeof(c));
	c.rewrite = t->s;
	assert_int_equal(store_unfinished_executions(t->s, ids_cb, &c), 0);
	assert_string_equal(c.buf, "q1,r1,q2");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_unfinished_executions(t->s, ids_cb, &c), 0);
	assert_string_equal(c.buf, "q1,q2");
}

static void
fill_results(Troupe__ChunkResults *res, Troupe__ItemResult *items,
             Troupe__ItemResult **ptrs, size_t n, const char *out)
{
	troupe__chunk_results__init(res);
	for (size_t i = 0; i < n; i++) {
		troupe__item_result__init(&items[i]);
		items[i].index = i;
		items[i].state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
		items[i].output.data = (uint8_t *)out;
		items[i].output.len = strlen(out);
		items[i].attempts = 1;
		ptrs[i] = &items[i];
	}
	res->n_items = n;
	res->items = ptrs;
}

typedef struct delta_seen {
	uint32_t seqs[8];
	char     outs[8][8];
	int      n;
} delta_seen;

static int
delta_cb(void *arg, uint32_t seq, Troupe__ChunkResults *d)
{
	delta_seen *s = arg;

	assert_true(s->n < 8);
	assert_int_equal(d->n_items, 1);
	s->seqs[s->n] = seq;
	snprintf(s->outs[s->n], sizeof(s->outs[0]), "%.*s",
	         (int)d->items[0]->output.len,
	         (const char *)d->items[0]->output.data);
	s->n++;
	troupe__chunk_results__free_unpacked(d, NULL);
	return 0;
}

static void
test_deltas(void **state)
{
	test_state          *t = *state;
	Troupe__ChunkResults res;
	Troupe__ItemResult   items[1];
	Troupe__ItemResult  *ptrs[1];
	delta_seen           seen = {0};

	fill_results(&res, items, ptrs, 1, "b");
	assert_int_equal(store_put_delta(t->s, "x", 0, 1, &res), 0);
	fill_results(&res, items, ptrs, 1, "a");
	assert_int_equal(store_put_delta(t->s, "x", 0, 0, &res), 0);
	fill_results(&res, items, ptrs, 1, "other");
	assert_int_equal(store_put_delta(t->s, "x", 1, 0, &res), 0);
	assert_int_equal(store_put_delta(t->s, "y", 0, 0, &res), 0);
	/* a seq written twice is a bug: refused, not overwritten */
	assert_int_not_equal(store_put_delta(t->s, "x", 0, 0, &res), 0);

	assert_int_equal(store_get_deltas(t->s, "x", 0, delta_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.seqs[0], 0);
	assert_string_equal(seen.outs[0], "a");
	assert_int_equal(seen.seqs[1], 1);
	assert_string_equal(seen.outs[1], "b");

	assert_int_equal(store_drop_deltas(t->s, "x", 0), 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_get_deltas(t->s, "x", 0, delta_cb, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(store_get_deltas(t->s, "x", 1, delta_cb, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.outs[0], "other");
}

static void
test_chunks(void **state)
{
	test_state           *t = *state;
	Troupe__ChunkInputs   in;
	Troupe__ChunkResults  res;
	Troupe__ItemResult    items[3];
	Troupe__ItemResult   *ptrs[3];
	Troupe__ChunkInputs  *gi = NULL;
	Troupe__ChunkResults *gr = NULL;
	ProtobufCBinaryData   inb[2] = {{3, (uint8_t *)"abc"},
	                                {2, (uint8_t *)"de"}};

	troupe__chunk_inputs__init(&in);
	in.n_items = 2;
	in.items = inb;

	assert_int_equal(store_get_chunk(t->s, "x", 0, &gi, &gr),
	                 TROUPE_ENOTFOUND);

	/* inputs only: results read back NULL */
	assert_int_equal(store_put_inputs(t->s, "x", 3, &in), 0);
	assert_int_equal(store_get_chunk(t->s, "x", 3, &gi, &gr), 0);
	assert_non_null(gi);
	assert_null(gr);
	assert_int_equal(gi->n_items, 2);
	assert_memory_equal(gi->items[0].data, "abc", 3);
	assert_memory_equal(gi->items[1].data, "de", 2);
	troupe__chunk_inputs__free_unpacked(gi, NULL);
	assert_int_equal(store_get_chunk(t->s, "x", 2, &gi, &gr),
	                 TROUPE_ENOTFOUND);
	assert_int_equal(store_get_chunk(t->s, "y", 3, &gi, &gr),
	                 TROUPE_ENOTFOUND);

	/* results keep the inputs */
	fill_results(&res, items, ptrs, 3, "out");
	assert_int_equal(store_put_results(t->s, "x", 3, &res), 0);
	assert_int_equal(store_get_chunk(t->s, "x", 3, &gi, &gr), 0);
	assert_int_equal(gi->n_items, 2);
	assert_int_equal(gr->n_items, 3);
	assert_int_equal(gr->items[2]->index, 2);
	assert_int_equal(gr->items[2]->state,
	                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_memory_equal(gr->items[2]->output.data, "out", 3);
	troupe__chunk_inputs__free_unpacked(gi, NULL);
	troupe__chunk_results__free_unpacked(gr, NULL);

	/* new inputs keep the results; new results replace them */
	in.n_items = 1;
	assert_int_equal(store_put_inputs(t->s, "x", 3, &in), 0);
	fill_results(&res, items, ptrs, 2, "OUT2");
	assert_int_equal(store_put_results(t->s, "x", 3, &res), 0);
	assert_int_equal(store_get_chunk(t->s, "x", 3, &gi, &gr), 0);
	assert_int_equal(gi->n_items, 1);
	assert_int_equal(gr->n_items, 2);
	assert_memory_equal(gr->items[1]->output.data, "OUT2", 4);
	troupe__chunk_inputs__free_unpacked(gi, NULL);
	troupe__chunk_results__free_unpacked(gr, NULL);

	/* results written before inputs; empty results are not "none" */
	fill_results(&res, items, ptrs, 0, "");
	assert_int_equal(store_put_results(t->s, "x", 4, &res), 0);
	assert_int_equal(store_get_chunk(t->s, "x", 4, &gi, &gr), 0);
	assert_null(gi);
	assert_non_null(gr);
	assert_int_equal(gr->n_items, 0);
	troupe__chunk_results__free_unpacked(gr, NULL);
	assert_int_equal(store_put_inputs(t->s, "x", 4, &in), 0);

	/* either out-parameter may be skipped */
	gr = NULL;
	assert_int_equal(store_get_chunk(t->s, "x", 4, &gi, NULL), 0);
	assert_int_equal(gi->n_items, 1);
	troupe__chunk_inputs__free_unpacked(gi, NULL);
	gi = NULL;
	assert_int_equal(store_get_chunk(t->s, "x", 4, NULL, &gr), 0);
	assert_int_equal(gr->n_items, 0);
	troupe__chunk_results__free_unpacked(gr, NULL);
	assert_int_equal(store_get_chunk(t->s, "x", 4, NULL, NULL), 0);
}

typedef struct names {
	char buf[256];
} names;

static int
task_cb(void *arg, Troupe__TaskSpec *ts)
{
	names *n = arg;

	snprintf(n->buf + strlen(n->buf), sizeof(n->buf) - strlen(n->buf),
	         "%s%s=%s", n->buf[0] ? "," : "", ts->name, ts->command);
	troupe__task_spec__free_unpacked(ts, NULL);
	return 0;
}

static int
actor_cb(void *arg, Troupe__ActorEnv *a)
{
	names *n = arg;

	snprintf(n->buf + strlen(n->buf), sizeof(n->buf) - strlen(n->buf),
	         "%s%s/%u", n->buf[0] ? "," : "", a->name, a->replica_count);
	troupe__actor_env__free_unpacked(a, NULL);
	return 0;
}

static void
test_tasks(void **state)
{
	test_state       *t = *state;
	Troupe__TaskSpec  ts;
	Troupe__TaskSpec *got = NULL;
	names             n = {{0}};

	troupe__task_spec__init(&ts);
	ts.name = "wc";
	ts.command = "wc -c";
	ts.retries = 3;
	assert_int_equal(store_put_task(t->s, &ts, 0), 0);
	ts.command = "wc -l";
	assert_int_equal(store_put_task(t->s, &ts, 0), TROUPE_EEXIST);
	assert_non_null(strstr(store_errmsg(t->s), "wc"));
	assert_int_equal(store_get_task(t->s, "wc", &got), 0);
	assert_string_equal(got->command, "wc -c");
	assert_int_equal(got->retries, 3);
	troupe__task_spec__free_unpacked(got, NULL);
	assert_int_equal(store_put_task(t->s, &ts, 1), 0);
	assert_int_equal(store_get_task(t->s, "wc", &got), 0);
	assert_string_equal(got->command, "wc -l");
	troupe__task_spec__free_unpacked(got, NULL);

	ts.name = "cat";
	ts.command = "cat";
	assert_int_equal(store_put_task(t->s, &ts, 1), 0);
	assert_int_equal(store_list_tasks(t->s, task_cb, &n), 0);
	assert_string_equal(n.buf, "cat=cat,wc=wc -l");

	assert_int_equal(store_delete_task(t->s, "wc"), 0);
	assert_int_equal(store_delete_task(t->s, "wc"), TROUPE_ENOTFOUND);
	assert_int_equal(store_get_task(t->s, "wc", &got), TROUPE_ENOTFOUND);
	n.buf[0] = '\0';
	assert_int_equal(store_list_tasks(t->s, task_cb, &n), 0);
	assert_string_equal(n.buf, "cat=cat");

	ts.name = "";
	assert_int_equal(store_put_task(t->s, &ts, 1), TROUPE_EINVAL);
}

static void
test_actors(void **state)
{
	test_state       *t = *state;
	Troupe__ActorEnv  a;
	Troupe__ActorEnv *got = NULL;
	names             n = {{0}};

	troupe__actor_env__init(&a);
	a.name = "py";
	a.command = "python3 serve.py";
	a.replica_count = 2;
	assert_int_equal(store_put_actor(t->s, &a, 0), 0);
	a.replica_count = 4;
	assert_int_equal(store_put_actor(t->s, &a, 0), TROUPE_EEXIST);
	assert_int_equal(store_get_actor(t->s, "py", &got), 0);
	assert_int_equal(got->replica_count, 2);
	assert_string_equal(got->command, "python3 serve.py");
	troupe__actor_env__free_unpacked(got, NULL);
	assert_int_equal(store_put_actor(t->s, &a, 1), 0);

	a.name = "awk";
	a.replica_count = 1;
	assert_int_equal(store_put_actor(t->s, &a, 0), 0);
	assert_int_equal(store_list_actors(t->s, actor_cb, &n), 0);
	assert_string_equal(n.buf, "awk/1,py/4");

	assert_int_equal(store_delete_actor(t->s, "py"), 0);
	assert_int_equal(store_delete_actor(t->s, "py"), TROUPE_ENOTFOUND);
	assert_int_equal(store_get_actor(t->s, "py", &got), TROUPE_ENOTFOUND);
	/* tasks and actors are separate name spaces */
	assert_int_equal(store_delete_task(t->s, "awk"), TROUPE_ENOTFOUND);
	n.buf[0] = '\0';
	assert_int_equal(store_list_actors(t->s, actor_cb, &n), 0);
	assert_string_equal(n.buf, "awk/1");
}

static void
test_transactions(void **state)
{
	test_state        *t = *state;
	Troupe__Execution *ex = NULL;

	store_rollback(t->s); /* none open */

	assert_int_equal(store_begin(t->s), 0);
	put(t->s, "gone", TROUPE__PHASE__PHASE_QUEUED, "");
	assert_int_equal(store_get_execution(t->s, "gone", &ex), 0);
	troupe__execution__free_unpacked(ex, NULL);
	store_rollback(t->s);
	assert_int_equal(store_get_execution(t->s, "gone", &ex),
	                 TROUPE_ENOTFOUND);

	assert_int_equal(store_begin(t->s), 0);
	put(t->s, "kept", TROUPE__PHASE__PHASE_QUEUED, "");
	assert_int_equal(store_commit(t->s), 0);
	assert_int_equal(
	    peek_int(t->path,
	             "SELECT count(*) FROM executions WHERE id='kept'"),
	    1);

	/* a transaction left open is rolled back by close */
	assert_int_equal(store_begin(t->s), 0);
	put(t->s, "open", TROUPE__PHASE__PHASE_QUEUED, "");
	store_close(t->s);
	t->s = NULL;
	assert_int_equal(store_open(t->path, &t->s), 0);
	assert_int_equal(store_get_execution(t->s, "open", &ex),
	                 TROUPE_ENOTFOUND);
	assert_int_equal(store_get_execution(t->s, "kept", &ex), 0);
	troupe__execution__free_unpacked(ex, NULL);
}

static void
test_corrupt_blob(void **state)
{
	test_state           *t = *state;
	Troupe__Execution    *ex = NULL;
	Troupe__ChunkResults *res = NULL;
	ids                   c;

	put(t->s, "ok", TROUPE__PHASE__PHASE_QUEUED, "");
	poke(t->path,
	     "INSERT INTO executions(id, phase, project, created_ms, body) "
	     "VALUES('bad', 1, '', 0, x'ffffffff');"
	     "INSERT INTO chunks VALUES('bad', 0, NULL, x'0a05ff');");
	assert_int_equal(store_get_execution(t->s, "bad", &ex), TROUPE_EIO);
	assert_non_null(strstr(store_errmsg(t->s), "corrupt"));
	assert_int_equal(store_get_chunk(t->s, "bad", 0, NULL, &res),
	                 TROUPE_EIO);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_unfinished_executions(t->s, ids_cb, &c),
	                 TROUPE_EIO);
	assert_string_equal(c.buf, "ok");
	/* the store still works */
	assert_int_equal(store_get_execution(t->s, "ok", &ex), 0);
	troupe__execution__free_unpacked(ex, NULL);
}

static void
test_disk_full(void **state)
{
	test_state           *t = *state;
	Troupe__ChunkResults  res;
	Troupe__ItemResult    items[64];
	Troupe__ItemResult   *ptrs[64];
	Troupe__ChunkResults *got = NULL;
	int                   rv;

	fill_results(&res, items, ptrs, 64, "some output of an item");
	assert_int_equal(store_put_results(t->s, "e", 0, &res), 0);

	full_on = 1;
	/* one autocommit write */
	assert_int_equal(store_put_results(t->s, "e", 1, &res), TROUPE_EFULL);
	assert_true(strlen(store_errmsg(t->s)) > 0);
	/* a batch: SQLite writes at the latest at commit */
	assert_int_equal(store_begin(t->s), 0);
	rv = 0;
	for (uint32_t i = 2; i < 50 && rv == 0; i++)
		rv = store_put_results(t->s, "e", i, &res);
	if (rv == 0)
		rv = store_commit(t->s);
	else
		store_rollback(t->s);
	assert_int_equal(rv, TROUPE_EFULL);
	full_on = 0;

	/* nothing half-written; room again, it works again */
	assert_int_equal(store_get_chunk(t->s, "e", 1, NULL, &got),
	                 TROUPE_ENOTFOUND);
	assert_int_equal(store_get_chunk(t->s, "e", 2, NULL, &got),
	                 TROUPE_ENOTFOUND);
	assert_int_equal(store_put_results(t->s, "e", 1, &res), 0);
	assert_int_equal(store_get_chunk(t->s, "e", 0, NULL, &got), 0);
	assert_int_equal(got->n_items, 64);
	troupe__chunk_results__free_unpacked(got, NULL);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
test_bulk_commit_fast(void **state)
{
	test_state          *t = *state;
	Troupe__ChunkResults res;
	Troupe__ItemResult   items[16];
	Troupe__ItemResult  *ptrs[16];
	double               t0, ms;

	fill_results(&res, items, ptrs, 16, "result bytes");
	t0 = now_ms();
	assert_int_equal(store_begin(t->s), 0);
	for (uint32_t i = 0; i < 1000; i++)
		assert_int_equal(store_put_results(t->s, "bulk", i, &res), 0);
	assert_int_equal(store_commit(t->s), 0);
	ms = now_ms() - t0;
	print_message("1000 chunk result writes + commit: %.1f ms\n", ms);
	/* milliseconds normally; the bound leaves room for sanitizers and
	 * a slow disk's fsync */
	assert_true(ms < 3000);
	assert_int_equal(
	    peek_int(t->path,
	             "SELECT count(*) FROM chunks WHERE exec_id='bulk'"),
	    1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_open_creates_schema),
	    T(test_reopen_keeps_data),
	    T(test_newer_schema_refused),
	    T(test_item_logs),
	    T(test_migrates_v1),
	    T(test_execution_roundtrip),
	    T(test_upsert_keeps_seq),
	    T(test_list_paging_and_filters),
	    T(test_unfinished),
	    T(test_chunks),
	    T(test_deltas),
	    T(test_tasks),
	    T(test_actors),
	    T(test_transactions),
	    T(test_corrupt_blob),
	    T(test_disk_full),
	    T(test_bulk_commit_fast),
#undef T
	};

	return t_exit(
	    cmocka_run_group_tests(tests, group_setup, group_teardown));
}
