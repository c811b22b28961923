/*
 * Per-item logs in the store (see store.h for the contract; store_int.h
 * for what the store's files share): one row per attempt that wrote to
 * stderr, in the table item_logs (store.c's migration v4), written in the
 * flush's transaction (exec_store.c) and read by GetLogs (api_logs.c).
 *
 * Async contract: the scheduler's loop thread, like every store file.
 */
#include <stdlib.h>

#include "store_int.h"
#include "troupe/error.h"

int
store_put_log(store *s, const char *id, uint64_t item, uint32_t attempt,
              const uint8_t *data, size_t len, uint64_t dropped)
{
	sqlite3_stmt *st = s->st[STORE_LOG_PUT];
	int           rv;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)item);
	sqlite3_bind_int64(st, 3, attempt);
	sqlite3_bind_int64(st, 4, (int64_t)dropped);
	if ((rv = store_bind_blob(s, st, 5, len > 0 ? data : store_empty,
	                          len)) != 0) {
		store_done(st);
		return rv;
	}
	return store_run(s, st);
}

int
store_list_logs(store *s, const char *id, uint64_t from_item,
                uint32_t from_attempt, int64_t only_item, uint32_t only_attempt,
                store_log_cb cb, void *arg)
{
	sqlite3_stmt *st = s->st[STORE_LOG_LIST];
	int           rc;
	int           rv = 0;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)from_item);
	sqlite3_bind_int64(st, 3, from_attempt);
	if (only_item >= 0)
		sqlite3_bind_int64(st, 4, only_item);
	sqlite3_bind_int64(st, 5, only_attempt);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 3);
		int         len = sqlite3_column_bytes(st, 3);

		if (data == NULL && len > 0) {
			rv = store_failf(s, TROUPE_ENOMEM, "out of memory");
			break;
		}
		rv = cb(arg, (uint64_t)sqlite3_column_int64(st, 0),
		        (uint32_t)sqlite3_column_int64(st, 1),
		        data != NULL ? data : store_empty, (size_t)len,
		        (uint64_t)sqlite3_column_int64(st, 2));
		if (rv != 0)
			break;
	}
	if (rv == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = store_fail(s, rc);
	store_done(st);
	return rv < 0 ? rv : 0;
}
