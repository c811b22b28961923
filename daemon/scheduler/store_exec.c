/*
 * Executions, chunks and result deltas in the store (see store.h for the
 * contract; store_int.h for what the store's files share).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "troupe/error.h"

int
store_end_execution(store *s, Troupe__Execution *row, Troupe__Phase phase,
                    const char *why, int64_t now_ms)
{
	Troupe__Execution x = *row;
	int               rv;

	x.phase = phase;
	x.error = (char *)why;
	x.finished_ms = now_ms;
	x.version = row->version + 1;
	if ((rv = store_begin(s)) == 0 &&
	    (rv = store_put_execution(s, &x)) == 0)
		rv = store_commit(s);
	if (rv != 0)
		store_rollback(s);
	return rv;
}

int
store_put_execution(store *s, const Troupe__Execution *ex)
{
	sqlite3_stmt *st = s->st[STORE_EXEC_PUT];
	const char   *project = "";
	const void   *data = NULL;
	size_t        len = 0;
	int           rv;

	if (ex->id == NULL || ex->id[0] == '\0')
		return store_failf(s, TROUPE_EINVAL, "execution has no id");
	if (ex->spec != NULL && ex->spec->project != NULL)
		project = ex->spec->project;
	if ((rv = store_pack(s, &ex->base, &data, &len)) != 0)
		return rv;
	sqlite3_bind_text(st, 1, ex->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)ex->phase);
	sqlite3_bind_text(st, 3, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, ex->created_ms);
	if ((rv = store_bind_blob(s, st, 5, data, len)) != 0) {
		store_done(st);
		return rv;
	}
	return store_run(s, st);
}

int
store_get_execution(store *s, const char *id, Troupe__Execution **out)
{
	ProtobufCMessage *m = NULL;
	int               rv;

	rv = store_get_one(s, s->st[STORE_EXEC_GET], id,
	                   &troupe__execution__descriptor, "execution", &m);
	if (rv == 0)
		*out = (Troupe__Execution *)m;
	return rv;
}

typedef struct store_exec_ctx {
	store_exec_cb cb;
	void         *arg;
} store_exec_ctx;

static int
store_exec_row(void *ctx, int64_t seq, ProtobufCMessage *m)
{
	store_exec_ctx *c = ctx;

	return c->cb(c->arg, seq, (Troupe__Execution *)m);
}

int
store_list_executions(store *s, int64_t before_seq, Troupe__Phase phase,
                      const char *project, uint32_t limit, store_exec_cb cb,
                      void *arg)
{
	store_exec_ctx ctx = {cb, arg};
	sqlite3_stmt  *st;

	st = s->st[phase != 0 ? STORE_EXEC_LIST_PHASE : STORE_EXEC_LIST];
	sqlite3_bind_int64(st, 1, before_seq > 0 ? before_seq : INT64_MAX);
	if (project != NULL && project[0] != '\0')
		sqlite3_bind_text(st, 2, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, limit > 0 ? (int64_t)limit : -1);
	if (phase != 0)
		sqlite3_bind_int(st, 4, (int)phase);
	return store_each(s, st, &troupe__execution__descriptor, "execution",
	                  store_exec_row, &ctx);
}

int
store_count_phases(store *s, uint64_t *out, size_t n)
{
	sqlite3_stmt *st = s->st[STORE_EXEC_PHASES];
	int           rc;

	memset(out, 0, n * sizeof(*out));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 phase = sqlite3_column_int64(st, 0);

		if (phase >= 0 && (uint64_t)phase < n)
			out[phase] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	store_done(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

int
store_unfinished_executions(store *s, store_exec_cb cb, void *arg)
{
	store_exec_ctx ctx = {cb, arg};

	return store_each(s, s->st[STORE_EXEC_UNFINISHED],
	                  &troupe__execution__descriptor, "execution",
	                  store_exec_row, &ctx);
}

/* Runs st with ?1 id, ?2 chunk, then ?3 seq when seq >= 0, and m packed
 * as the last parameter. */
static int
store_put_blob(store *s, sqlite3_stmt *st, const char *id, uint32_t chunk,
               int64_t seq, const ProtobufCMessage *m)
{
	const void *data = NULL;
	size_t      len = 0;
	int         col = 3;
	int         rv;

	if ((rv = store_pack(s, m, &data, &len)) != 0)
		return rv;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk);
	if (seq >= 0)
		sqlite3_bind_int64(st, col++, seq);
	if ((rv = store_bind_blob(s, st, col, data, len)) != 0) {
		store_done(st);
		return rv;
	}
	return store_run(s, st);
}

int
store_put_inputs(store *s, const char *id, uint32_t chunk,
                 const Troupe__ChunkInputs *in)
{
	return store_put_blob(s, s->st[STORE_INPUTS_PUT], id, chunk, -1,
	                      &in->base);
}

int
store_put_results(store *s, const char *id, uint32_t chunk,
                  const Troupe__ChunkResults *res)
{
	return store_put_blob(s, s->st[STORE_RESULTS_PUT], id, chunk, -1,
	                      &res->base);
}

int
store_put_delta(store *s, const char *id, uint32_t chunk, uint32_t seq,
                const Troupe__ChunkResults *delta)
{
	return store_put_blob(s, s->st[STORE_DELTA_PUT], id, chunk, seq,
	                      &delta->base);
}

int
store_drop_deltas(store *s, const char *id, uint32_t chunk)
{
	sqlite3_stmt *st = s->st[STORE_DELTA_DROP];

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk);
	return store_run(s, st);
}

typedef struct store_delta_ctx {
	store_delta_cb cb;
	void          *arg;
} store_delta_ctx;

static int
store_delta_row(void *ctx, int64_t seq, ProtobufCMessage *m)
{
	store_delta_ctx *c = ctx;

	return c->cb(c->arg, (uint32_t)seq, (Troupe__ChunkResults *)m);
}

int
store_has_deltas(store *s, const char *id, uint32_t chunk, bool *out)
{
	sqlite3_stmt *st = s->st[STORE_DELTA_ANY];
	int           rc;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk);
	rc = sqlite3_step(st);
	store_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, rc);
	*out = rc == SQLITE_ROW;
	return 0;
}

int
store_get_deltas(store *s, const char *id, uint32_t chunk, store_delta_cb cb,
                 void *arg)
{
	store_delta_ctx ctx = {cb, arg};
	sqlite3_stmt   *st = s->st[STORE_DELTA_LIST];

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk);
	return store_each(s, st, &troupe__chunk_results__descriptor,
	                  "result delta", store_delta_row, &ctx);
}

int
store_get_chunk(store *s, const char *id, uint32_t chunk,
                Troupe__ChunkInputs **in, Troupe__ChunkResults **res)
{
	sqlite3_stmt     *st = s->st[STORE_CHUNK_GET];
	ProtobufCMessage *mi = NULL;
	ProtobufCMessage *mr = NULL;
	int               rc;
	int               rv = 0;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rv = store_failf(s, TROUPE_ENOTFOUND,
		                 "execution '%s' has no chunk %u", id,
		                 (unsigned)chunk);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rv = store_fail(s, rc);
		goto fail;
	}
	if (in != NULL && sqlite3_column_type(st, 0) != SQLITE_NULL &&
	    (rv = store_unpack(s, st, 0, &troupe__chunk_inputs__descriptor,
	                       "chunk inputs", &mi)) != 0)
		goto fail;
	if (res != NULL && sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    (rv = store_unpack(s, st, 1, &troupe__chunk_results__descriptor,
	                       "chunk results", &mr)) != 0)
		goto fail;
	store_done(st);
	if (in != NULL)
		*in = (Troupe__ChunkInputs *)mi;
	if (res != NULL)
		*res = (Troupe__ChunkResults *)mr;
	return 0;
fail:
	store_done(st);
	if (mi != NULL)
		protobuf_c_message_free_unpacked(mi, NULL);
	return rv;
}
