/*
 * What the store's files share (store.c: the connection, schema and
 * statements; store_exec.c: executions, chunks and deltas;
 * store_registry.c: tasks and actor environments).  Private to them:
 * nothing outside the store includes it.  See store.h for the contract.
 */
#ifndef TROUPE_SCHED_STORE_INT_H
#define TROUPE_SCHED_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

enum store_stmt_id {
	STORE_BEGIN,
	STORE_COMMIT,
	STORE_ROLLBACK,
	STORE_EXEC_PUT,
	STORE_EXEC_GET,
	STORE_EXEC_LIST,
	STORE_EXEC_LIST_PHASE,
	STORE_EXEC_UNFINISHED,
	STORE_INPUTS_PUT,
	STORE_RESULTS_PUT,
	STORE_CHUNK_GET,
	STORE_DELTA_PUT,
	STORE_DELTA_LIST,
	STORE_DELTA_DROP,
	STORE_DELTA_ANY,
	STORE_TASK_INSERT,
	STORE_TASK_UPSERT,
	STORE_TASK_GET,
	STORE_TASK_LIST,
	STORE_TASK_DELETE,
	STORE_ACTOR_INSERT,
	STORE_ACTOR_UPSERT,
	STORE_ACTOR_GET,
	STORE_ACTOR_LIST,
	STORE_ACTOR_DELETE,
	STORE_PROJECT_INSERT,
	STORE_PROJECT_UPSERT,
	STORE_PROJECT_GET,
	STORE_PROJECT_LIST,
	STORE_PROJECT_DELETE,
	STORE_TOKEN_INSERT,
	STORE_TOKEN_UPSERT,
	STORE_TOKEN_GET,
	STORE_TOKEN_LIST,
	STORE_TOKEN_DELETE,
	STORE_LOG_PUT,
	STORE_LOG_LIST,
	STORE_EXEC_PHASES,
	STORE_NSTMT
};

struct store {
	sqlite3      *db;
	sqlite3_stmt *st[STORE_NSTMT];
	uint8_t      *buf; /* reused for packing, grows to the largest row */
	size_t        bufcap;
	int           has_err;
	char          err[256];
};

/* Zero-length blobs need a non-NULL pointer, or SQLite binds NULL. */
extern const uint8_t store_empty[1];

typedef int (*store_row_fn)(void *ctx, int64_t seq, ProtobufCMessage *m);

/* Records the connection's message for rc and returns rc as TROUPE_E*. */
int store_fail(store *s, int rc);

/* Records our own message and returns err. */
int store_failf(store *s, int err, const char *fmt, ...);

/* Ends a use of a statement.  The bindings are dropped so that no
 * SQLITE_STATIC pointer outlives the call that bound it. */
void store_done(sqlite3_stmt *st);

/* Steps a statement that returns no rows, then ends its use. */
int store_run(store *s, sqlite3_stmt *st);

/* Packs m into s->buf.  *data stays valid until the next store_pack. */
int store_pack(store *s, const ProtobufCMessage *m, const void **data,
               size_t *len);

int store_bind_blob(store *s, sqlite3_stmt *st, int i, const void *data,
                    size_t len);

/* Unpacks column col of the current row, which must not be NULL.  The
 * result belongs to the caller; a blob that does not parse is corrupt. */
int store_unpack(store *s, sqlite3_stmt *st, int col,
                 const ProtobufCMessageDescriptor *d, const char *what,
                 ProtobufCMessage **out);

int store_each(store *s, sqlite3_stmt *st, const ProtobufCMessageDescriptor *d,
               const char *what, store_row_fn fn, void *ctx);

/* Runs a single-row `SELECT body ... WHERE key = ?1` statement. */
int store_get_one(store *s, sqlite3_stmt *st, const char *key,
                  const ProtobufCMessageDescriptor *d, const char *what,
                  ProtobufCMessage **out);

#endif
