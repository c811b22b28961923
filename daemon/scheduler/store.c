/*
 * The scheduler's SQLite store (see store.h for the contract).
 *
 * Threading: a store belongs to one thread (the scheduler's loop); the
 * connection is opened without SQLite's own mutexes.
 *
 * Every statement is prepared once by store_open and kept in s->st[];
 * each use ends with store_done, which resets it and drops its bindings,
 * so blobs can be bound SQLITE_STATIC from s->buf or from the caller.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store_int.h"
#include "troupe/error.h"

/* In store_stmt_id order.  The listing queries take ?1 before_seq (always
 * bound, INT64_MAX for no bound, so the rowid range is searched), ?2
 * project (NULL: any), ?3 limit (-1: none) and ?4 phase. */
static const char *const store_sql[STORE_NSTMT] = {
    [STORE_BEGIN] = "BEGIN IMMEDIATE",
    [STORE_COMMIT] = "COMMIT",
    [STORE_ROLLBACK] = "ROLLBACK",
    [STORE_EXEC_PUT] =
        "INSERT INTO executions(id, phase, project, created_ms, body) "
        "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET "
        "phase = excluded.phase, project = excluded.project, "
        "created_ms = excluded.created_ms, body = excluded.body",
    [STORE_EXEC_GET] = "SELECT body FROM executions WHERE id = ?1",
    [STORE_EXEC_LIST] = "SELECT seq, body FROM executions WHERE seq < ?1 "
                        "AND (?2 IS NULL OR project = ?2) "
                        "ORDER BY seq DESC LIMIT ?3",
    [STORE_EXEC_LIST_PHASE] =
        "SELECT seq, body FROM executions WHERE phase = ?4 AND seq < ?1 "
        "AND (?2 IS NULL OR project = ?2) ORDER BY seq DESC LIMIT ?3",
    [STORE_EXEC_PHASES] =
        "SELECT phase, count(*) FROM executions GROUP BY phase",
    [STORE_EXEC_UNFINISHED] =
        "SELECT seq, body FROM executions WHERE phase IN (1, 2) "
        "ORDER BY seq ASC",
    [STORE_INPUTS_PUT] =
        "INSERT INTO chunks(exec_id, chunk, inputs) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(exec_id, chunk) DO UPDATE SET inputs = excluded.inputs",
    [STORE_RESULTS_PUT] =
        "INSERT INTO chunks(exec_id, chunk, results) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(exec_id, chunk) DO UPDATE SET "
        "results = excluded.results",
    [STORE_CHUNK_GET] = "SELECT inputs, results FROM chunks "
                        "WHERE exec_id = ?1 AND chunk = ?2",
    [STORE_DELTA_PUT] = "INSERT INTO result_deltas(exec_id, chunk, seq, "
                        "body) VALUES(?1, ?2, ?3, ?4)",
    [STORE_DELTA_LIST] = "SELECT seq, body FROM result_deltas "
                         "WHERE exec_id = ?1 AND chunk = ?2 ORDER BY seq",
    [STORE_DELTA_DROP] = "DELETE FROM result_deltas "
                         "WHERE exec_id = ?1 AND chunk = ?2",
    [STORE_DELTA_ANY] = "SELECT 1 FROM result_deltas "
                        "WHERE exec_id = ?1 AND chunk = ?2 LIMIT 1",
    [STORE_TASK_INSERT] = "INSERT INTO tasks(name, body) VALUES(?1, ?2)",
    [STORE_TASK_UPSERT] =
        "INSERT INTO tasks(name, body) VALUES(?1, ?2) "
        "ON CONFLICT(name) DO UPDATE SET body = excluded.body",
    [STORE_TASK_GET] = "SELECT body FROM tasks WHERE name = ?1",
    [STORE_TASK_LIST] = "SELECT 0, body FROM tasks ORDER BY name",
    [STORE_TASK_DELETE] = "DELETE FROM tasks WHERE name = ?1",
    [STORE_ACTOR_INSERT] = "INSERT INTO actors(name, body) VALUES(?1, ?2)",
    [STORE_ACTOR_UPSERT] =
        "INSERT INTO actors(name, body) VALUES(?1, ?2) "
        "ON CONFLICT(name) DO UPDATE SET body = excluded.body",
    [STORE_ACTOR_GET] = "SELECT body FROM actors WHERE name = ?1",
    [STORE_ACTOR_LIST] = "SELECT 0, body FROM actors ORDER BY name",
    [STORE_ACTOR_DELETE] = "DELETE FROM actors WHERE name = ?1",
    [STORE_PROJECT_INSERT] = "INSERT INTO projects(name, body) VALUES(?1, ?2)",
    [STORE_PROJECT_UPSERT] =
        "INSERT INTO projects(name, body) VALUES(?1, ?2) "
        "ON CONFLICT(name) DO UPDATE SET body = excluded.body",
    [STORE_PROJECT_GET] = "SELECT body FROM projects WHERE name = ?1",
    [STORE_PROJECT_LIST] = "SELECT 0, body FROM projects ORDER BY name",
    [STORE_PROJECT_DELETE] = "DELETE FROM projects WHERE name = ?1",
    [STORE_TOKEN_INSERT] = "INSERT INTO tokens(id, body) VALUES(?1, ?2)",
    [STORE_TOKEN_UPSERT] = "INSERT INTO tokens(id, body) VALUES(?1, ?2) "
                           "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
    [STORE_TOKEN_GET] = "SELECT body FROM tokens WHERE id = ?1",
    [STORE_TOKEN_LIST] = "SELECT 0, body FROM tokens ORDER BY id",
    [STORE_TOKEN_DELETE] = "DELETE FROM tokens WHERE id = ?1",
    /* Per-item logs (store_logs.c): ?2 item, ?3 attempt; the listing
     * starts at (?2, ?3), ?4 only that item (NULL: any), ?5 only that
     * attempt (0: any). */
    [STORE_LOG_PUT] = "INSERT OR REPLACE INTO item_logs(exec_id, item, "
                      "attempt, dropped, data) VALUES(?1, ?2, ?3, ?4, ?5)",
    [STORE_LOG_LIST] =
        "SELECT item, attempt, dropped, data FROM item_logs "
        "WHERE exec_id = ?1 AND (item, attempt) >= (?2, ?3) "
        "AND (?4 IS NULL OR item = ?4) AND (?5 = 0 OR attempt = ?5) "
        "ORDER BY item, attempt",
};

const uint8_t store_empty[1];

/* Why the last store_open failed, since there is no store to ask then. */
static _Thread_local char store_open_err[1024];

/* Records the connection's message for rc and returns rc as TROUPE_E*. */
int
store_fail(store *s, int rc)
{
	snprintf(s->err, sizeof(s->err), "%s", sqlite3_errmsg(s->db));
	s->has_err = 1;
	return troupe_err_from_sqlite(rc);
}

/* Records our own message and returns err. */
int
store_failf(store *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	s->has_err = 1;
	return err;
}

/* Ends a use of a statement.  The bindings are dropped so that no
 * SQLITE_STATIC pointer outlives the call that bound it. */
void
store_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows, then ends its use. */
int
store_run(store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int rv = 0;

	if (rc != SQLITE_DONE)
		rv = store_fail(s, rc);
	store_done(st);
	return rv;
}

/* Packs m into s->buf.  *data stays valid until the next store_pack. */
int
store_pack(store *s, const ProtobufCMessage *m, const void **data, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	if (n > s->bufcap) {
		size_t   cap = s->bufcap < 4096 ? 4096 : s->bufcap;
		uint8_t *nb;

		while (cap < n)
			cap *= 2;
		if ((nb = realloc(s->buf, cap)) == NULL)
			return store_failf(s, TROUPE_ENOMEM, "out of memory");
		s->buf = nb;
		s->bufcap = cap;
	}
	*len = n;
	if (n == 0) {
		*data = store_empty;
		return 0;
	}
	protobuf_c_message_pack(m, s->buf);
	*data = s->buf;
	return 0;
}

int
store_bind_blob(store *s, sqlite3_stmt *st, int i, const void *data, size_t len)
{
	int rc = sqlite3_bind_blob64(st, i, data, len, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

/* Unpacks column col of the current row, which must not be NULL.  The
 * result belongs to the caller; a blob that does not parse is corrupt. */
int
store_unpack(store *s, sqlite3_stmt *st, int col,
             const ProtobufCMessageDescriptor *d, const char *what,
             ProtobufCMessage **out)
{
	const void *data = sqlite3_column_blob(st, col);
	int         len = sqlite3_column_bytes(st, col);

	if (data == NULL && len > 0)
		return store_failf(s, TROUPE_ENOMEM, "out of memory");
	if (data == NULL)
		data = store_empty;
	*out = protobuf_c_message_unpack(d, NULL, (size_t)len, data);
	if (*out == NULL)
		return store_failf(s, TROUPE_EIO,
		                   "corrupt %s in the database (%d bytes "
		                   "do not unpack)",
		                   what, len);
	return 0;
}

/* Rows of a listing, copied out before any callback runs so callbacks may
 * use the store freely (even rerun the same listing, or change the rows
 * being listed) without disturbing the query. */
typedef struct store_row {
	int64_t seq;
	size_t  len;
	uint8_t data[];
} store_row;

typedef struct store_rows {
	store_row **v;
	size_t      n;
	size_t      cap;
} store_rows;

static void
store_rows_free(store_rows *r, size_t from)
{
	for (size_t i = from; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

/* Steps st to the end, copying (column 0: seq, column 1: body) of each
 * row into *r.  Ends the statement's use either way. */
static int
store_rows_collect(store *s, sqlite3_stmt *st, store_rows *r)
{
	int rc;
	int rv = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 1);
		size_t      len = (size_t)sqlite3_column_bytes(st, 1);
		store_row  *row;

		if (r->n == r->cap) {
			size_t      cap = r->cap ? r->cap * 2 : 16;
			store_row **nv = realloc(r->v, cap * sizeof(*nv));

			if (nv == NULL) {
				rv = store_failf(s, TROUPE_ENOMEM,
				                 "out of memory");
				goto fail;
			}
			r->v = nv;
			r->cap = cap;
		}
		if ((row = malloc(sizeof(*row) + len)) == NULL) {
			rv = store_failf(s, TROUPE_ENOMEM, "out of memory");
			goto fail;
		}
		row->seq = sqlite3_column_int64(st, 0);
		row->len = len;
		if (len > 0)
			memcpy(row->data, data, len);
		r->v[r->n++] = row;
	}
	if (rc != SQLITE_DONE)
		rv = store_fail(s, rc);
fail:
	store_done(st);
	if (rv != 0)
		store_rows_free(r, 0);
	return rv;
}

/* Calls fn on each unpacked row of st.  fn owns the message; a negative
 * return of fn is returned, a positive one stops the listing with 0. */

int
store_each(store *s, sqlite3_stmt *st, const ProtobufCMessageDescriptor *d,
           const char *what, store_row_fn fn, void *ctx)
{
	store_rows r = {0};
	size_t     i;
	int        rv;

	if ((rv = store_rows_collect(s, st, &r)) != 0)
		return rv;
	for (i = 0; i < r.n; i++) {
		store_row        *row = r.v[i];
		ProtobufCMessage *m;
		int64_t           seq;

		m = protobuf_c_message_unpack(
		    d, NULL, row->len, row->len ? row->data : store_empty);
		if (m == NULL) {
			rv = store_failf(s, TROUPE_EIO,
			                 "corrupt %s in the database "
			                 "(row %lld does not unpack)",
			                 what, (long long)row->seq);
			break;
		}
		seq = row->seq;
		free(row);
		r.v[i] = NULL;
		if ((rv = fn(ctx, seq, m)) != 0)
			break;
	}
	store_rows_free(&r, i);
	return rv < 0 ? rv : 0;
}

static int
store_exec_sql(store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

/* Schema migrations: store_migrations[v] takes the schema from version v
 * to v + 1.  They run inside the transaction store_migrate opens. */
static int
store_migrate_v1(store *s)
{
	return store_exec_sql(
	    s, "CREATE TABLE executions("
	       " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	       " id TEXT UNIQUE NOT NULL,"
	       " phase INTEGER NOT NULL,"
	       " project TEXT NOT NULL DEFAULT '',"
	       " created_ms INTEGER NOT NULL,"
	       " body BLOB NOT NULL /* packed Troupe__Execution */);"
	       "CREATE INDEX executions_phase ON executions(phase);"
	       "CREATE TABLE chunks("
	       " exec_id TEXT NOT NULL,"
	       " chunk INTEGER NOT NULL,"
	       " inputs BLOB /* packed Troupe__ChunkInputs */,"
	       " results BLOB /* packed Troupe__ChunkResults */,"
	       " PRIMARY KEY(exec_id, chunk)) WITHOUT ROWID;"
	       "CREATE TABLE tasks(name TEXT PRIMARY KEY,"
	       " body BLOB NOT NULL /* packed Troupe__TaskSpec */);"
	       "CREATE TABLE actors(name TEXT PRIMARY KEY,"
	       " body BLOB NOT NULL /* packed Troupe__ActorEnv */);");
}

/* v2: results written as deltas (only the items that changed) between
 * whole-chunk rewrites, so a flush writes what changed, not 1,024 items
 * per chunk touched. */
static int
store_migrate_v2(store *s)
{
	return store_exec_sql(
	    s, "CREATE TABLE result_deltas("
	       " exec_id TEXT NOT NULL,"
	       " chunk INTEGER NOT NULL,"
	       " seq INTEGER NOT NULL,"
	       " body BLOB NOT NULL /* packed Troupe__ChunkResults */,"
	       " PRIMARY KEY(exec_id, chunk, seq)) WITHOUT ROWID;");
}

/* v3: projects and tokens (README, "Projects and roles").  Executions
 * of before belong to the default project. */
static int
store_migrate_v3(store *s)
{
	return store_exec_sql(
	    s, "CREATE TABLE projects(name TEXT PRIMARY KEY,"
	       " body BLOB NOT NULL /* packed Troupe__Project */);"
	       "CREATE TABLE tokens(id TEXT PRIMARY KEY,"
	       " body BLOB NOT NULL /* packed Troupe__StoredToken */);"
	       "UPDATE executions SET project = 'default' WHERE project = '';");
}

/* v4: per-item logs (README, "Per-item logs"): each attempt's stderr,
 * one row per attempt that wrote any.  A rowid table, not WITHOUT ROWID:
 * its rows are large (up to 64 KiB). */
static int
store_migrate_v4(store *s)
{
	return store_exec_sql(
	    s, "CREATE TABLE item_logs("
	       " exec_id TEXT NOT NULL,"
	       " item INTEGER NOT NULL,"
	       " attempt INTEGER NOT NULL,"
	       " dropped INTEGER NOT NULL /* bytes cut from the middle */,"
	       " data BLOB NOT NULL,"
	       " PRIMARY KEY(exec_id, item, attempt));");
}

static int (*const store_migrations[])(store *) = {
    store_migrate_v1,
    store_migrate_v2,
    store_migrate_v3,
    store_migrate_v4,
};
#define STORE_VERSION \
	((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

static int
store_user_version(store *s, int *out)
{
	sqlite3_stmt *st = NULL;
	int           rc;
	int           rv = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		rv = store_fail(s, rc);
	else
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rv;
}

/* Brings the schema to STORE_VERSION in one transaction, so a crash
 * mid-migration leaves the old schema. */
static int
store_migrate(store *s)
{
	char sql[64];
	int  v = 0;
	int  rv;

	if ((rv = store_exec_sql(s, "BEGIN IMMEDIATE")) != 0)
		return rv;
	if ((rv = store_user_version(s, &v)) != 0)
		goto fail;
	if (v > STORE_VERSION || v < 0) {
		rv = store_failf(s, TROUPE_ESTATE,
		                 "database schema version %d is not one this "
		                 "troupe knows (it knows up to %d)",
		                 v, STORE_VERSION);
		goto fail;
	}
	for (; v < STORE_VERSION; v++)
		if ((rv = store_migrations[v](s)) != 0)
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_VERSION);
	if ((rv = store_exec_sql(s, sql)) != 0)
		goto fail;
	return store_exec_sql(s, "COMMIT");
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rv;
}

/* journal_mode answers with the mode it ended up in, which is not WAL
 * when the file system cannot do it; that must not pass silently. */
static int
store_set_wal(store *s)
{
	sqlite3_stmt *st = NULL;
	const char   *mode;
	int           rc;
	int           rv = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
	                        NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rv = store_fail(s, rc);
		goto fail;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL ||
	    (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0))
		rv = store_failf(s, TROUPE_EIO,
		                 "cannot put the database in WAL mode "
		                 "(journal_mode is %s)",
		                 mode ? mode : "unknown");
fail:
	sqlite3_finalize(st);
	return rv;
}

/* Runs a single-row `SELECT body ... WHERE key = ?1` statement. */
int
store_get_one(store *s, sqlite3_stmt *st, const char *key,
              const ProtobufCMessageDescriptor *d, const char *what,
              ProtobufCMessage **out)
{
	int rc;
	int rv = 0;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rv = store_unpack(s, st, 0, d, what, out);
	else if (rc == SQLITE_DONE)
		rv = store_failf(s, TROUPE_ENOTFOUND, "no %s '%s'", what, key);
	else
		rv = store_fail(s, rc);
	store_done(st);
	return rv;
}

/* An existing database (user_version > 0) must pass SQLite's quick_check
 * and have every table of the schema; else it is damaged (TROUPE_EIO,
 * with the first problem as the message).  A new one passes. */
static int
store_check(store *s)
{
	static const char *const tables[] = {
	    "executions", "chunks",        "tasks",
	    "actors",     "result_deltas", "item_logs",
	};
	/* The schema version that created each. */
	static const int since[] = {1, 1, 1, 1, 2, 4};
	sqlite3_stmt    *st = NULL;
	int              rc, v = 0, rv;

	if ((rv = store_user_version(s, &v)) != 0 || v == 0)
		return rv;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		rv = store_fail(s, rc);
	else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		/* One line: "*** in database main ***\nPage 2: ...". */
		rv = store_failf(s, TROUPE_EIO, "SQLite's quick_check: %.200s",
		                 (const char *)sqlite3_column_text(st, 0));
		for (char *p = s->err; *p != '\0'; p++)
			if (*p == '\n')
				*p = ' ';
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rv != 0)
		return rv;
	rc = sqlite3_prepare_v2(s->db,
	                        "SELECT 1 FROM sqlite_master WHERE type = "
	                        "'table' AND name = ?1",
	                        -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if (v < since[i])
			continue; /* created by a migration still to come */
		sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		store_done(st);
		if (rc == SQLITE_DONE) {
			rv = store_failf(
			    s, TROUPE_EIO,
			    "the table %s is missing (schema version "
			    "%d)",
			    tables[i], v);
			break;
		}
		if (rc != SQLITE_ROW) {
			rv = store_fail(s, rc);
			break;
		}
	}
	sqlite3_finalize(st);
	return rv;
}

int
store_open(const char *path, store **out)
{
	store *s = NULL;
	int    flags =
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int         rc;
	int         rv;
	bool        damaged = false;
	struct stat sb, wal;
	char        walpath[4200];

	store_open_err[0] = '\0';
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(store_open_err, sizeof(store_open_err),
		         "out of memory");
		return TROUPE_ENOMEM;
	}
	/* A troupe database is never empty (WAL mode writes its header
	 * first): an empty file where one was is a truncated one, and
	 * starting on it would drop all history without a word.  (A
	 * non-empty -wal beside it holds the data; SQLite reads it.) */
	snprintf(walpath, sizeof(walpath), "%s-wal", path);
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0 &&
	    !(stat(walpath, &wal) == 0 && wal.st_size > 0)) {
		rv = store_failf(s, TROUPE_EIO,
		                 "%s exists but is empty (0 bytes): it was "
		                 "truncated or replaced, and starting on it "
		                 "would lose all history.  Restore it from a "
		                 "backup, or remove it to start with an empty "
		                 "database",
		                 path);
		goto fail;
	}
	if ((rc = sqlite3_open_v2(path, &s->db, flags, NULL)) != SQLITE_OK) {
		if (s->db == NULL)
			rv = store_failf(s, TROUPE_ENOMEM, "out of memory");
		else
			rv = store_failf(s, troupe_err_from_sqlite(rc),
			                 "cannot open %s: %s", path,
			                 sqlite3_errmsg(s->db));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rv = store_check(s)) != 0) {
		damaged = true;
		goto fail;
	}
	if ((rv = store_set_wal(s)) != 0)
		goto fail;
	/* FULL: a commit that returned is on disk, which acknowledgements
	 * to clients and workers rely on. */
	if ((rv = store_exec_sql(s, "PRAGMA synchronous = FULL;"
	                            "PRAGMA foreign_keys = ON")) != 0)
		goto fail;
	if ((rv = store_migrate(s)) != 0)
		goto fail;
	for (int i = 0; i < STORE_NSTMT; i++) {
		rc = sqlite3_prepare_v3(s->db, store_sql[i], -1,
		                        SQLITE_PREPARE_PERSISTENT, &s->st[i],
		                        NULL);
		if (rc != SQLITE_OK) {
			rv = store_fail(s, rc);
			goto fail;
		}
	}
	*out = s;
	return 0;
fail : {
	const char *m = s->has_err ? s->err : troupe_strerror(rv);
	int ext = s->db != NULL ? sqlite3_extended_errcode(s->db) : SQLITE_OK;

	if ((ext & 0xff) == SQLITE_CORRUPT || (ext & 0xff) == SQLITE_NOTADB)
		damaged = true;
	if (damaged)
		snprintf(store_open_err, sizeof(store_open_err),
		         "%s is damaged: %s.  The scheduler will not "
		         "start on it: restore it from a backup, or move "
		         "it away to start with an empty database",
		         path, m);
	else
		snprintf(store_open_err, sizeof(store_open_err), "%s", m);
}
	store_close(s);
	return rv;
}

void
store_close(store *s)
{
	if (s == NULL)
		return;
	store_rollback(s);
	for (int i = 0; i < STORE_NSTMT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s->buf);
	free(s);
}

int
store_begin(store *s)
{
	return store_run(s, s->st[STORE_BEGIN]);
}

int
store_commit(store *s)
{
	int rv = store_run(s, s->st[STORE_COMMIT]);

	/* A failed COMMIT can leave the transaction open (SQLITE_BUSY);
	 * the batch is lost either way, so leave no half-state behind. */
	if (rv != 0)
		store_rollback(s);
	return rv;
}

void
store_rollback(store *s)
{
	if (s == NULL || s->db == NULL || sqlite3_get_autocommit(s->db))
		return;
	if (s->st[STORE_ROLLBACK] != NULL)
		store_run(s, s->st[STORE_ROLLBACK]);
	else
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

const char *
store_errmsg(store *s)
{
	if (s == NULL)
		return store_open_err;
	return s->has_err ? s->err : sqlite3_errmsg(s->db);
}
