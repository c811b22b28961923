/*
 * Executions in the store: the group commit's writes (a dirty header, the
 * dirty chunks) and the read-back of unfinished executions at start-up
 * (docs/design.md, "Storage").  See exec.h for the contract; runs on the
 * scheduler's loop thread only, inside the transaction its caller
 * (sched_flush) opened.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "exec.h"
#include "log.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

int
exec_write(store *st, exec *e)
{
	int rv;

	if (e->dirty) {
		Troupe__Execution x;
		Troupe__Counts    c;

		e->version++;
		exec_view(e, &x, &c);
		if ((rv = store_put_execution(st, &x)) != 0)
			return rv;
	}
	for (uint32_t k = 0; k < e->n_chunks; k++)
		if ((rv = chunk_write(e->chunks[k], st, e->id, k,
		                      e->error != NULL ? e->error : "")) != 0)
			return rv;
	/* One row per attempt that wrote stderr; kept until the commit,
	 * so a failed one writes them again (README, "Per-item logs"). */
	for (size_t i = 0; i < e->n_logs; i++) {
		const exec_log *l = &e->logs[i];

		if ((rv = store_put_log(st, e->id, l->index, l->attempt,
		                        l->data, l->len, l->dropped)) != 0)
			return rv;
	}
	return 0;
}

/* Whether chunk k is whole: full, or the last of a sealed execution. */
static bool
exec_chunk_complete(const exec *e, uint32_t k)
{
	return chunk_n(e->chunks[k]) == STORE_CHUNK_ITEMS || e->sealed;
}

void
exec_clean(exec *e)
{
	e->dirty = false;
	exec_logs_free(e);
	for (uint32_t k = 0; k < e->n_chunks; k++)
		chunk_clean(e->chunks[k],
		            (uint64_t)k * STORE_CHUNK_ITEMS < e->cursor,
		            exec_chunk_complete(e, k));
}

static char *
exec_strdup_nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

int
exec_load(store *st, const Troupe__Execution *row, exec **out)
{
	exec    *e = calloc(1, sizeof(*e));
	uint8_t  states[STORE_CHUNK_ITEMS];
	uint32_t nk;
	int      rv = TROUPE_ENOMEM;

	*out = NULL;
	if (e == NULL)
		return TROUPE_ENOMEM;
	if (row->spec == NULL || row->task == NULL) {
		rv = TROUPE_EIO;
		goto fail;
	}
	e->spec = (Troupe__ExecutionSpec *)troupe_msg_copy(&row->spec->base);
	e->task = (Troupe__TaskSpec *)troupe_msg_copy(&row->task->base);
	if (e->spec == NULL || e->task == NULL)
		goto fail;
	snprintf(e->id, sizeof(e->id), "%s", row->id);
	exec_settings(e);
	e->phase = row->phase;
	e->sealed = row->sealed;
	e->created_ms = row->created_ms;
	e->upload_ms = troupe_now_ms(); /* its client gets a full timeout */
	e->started_ms = row->started_ms;
	e->finished_ms = row->finished_ms;
	e->version = row->version;
	e->error = exec_strdup_nonempty(row->error);
	nk = (uint32_t)((row->total + STORE_CHUNK_ITEMS - 1) /
	                STORE_CHUNK_ITEMS);
	for (uint32_t k = 0; k < nk; k++) {
		uint64_t n = row->total - (uint64_t)k * STORE_CHUNK_ITEMS;
		uint64_t first = e->total;
		chunk   *c = NULL;

		if (n > STORE_CHUNK_ITEMS)
			n = STORE_CHUNK_ITEMS;
		if ((rv = chunk_load(st, e->id, k, (uint32_t)n, e->sealed, &c,
		                     states)) != 0)
			goto fail;
		if ((rv = exec_add_chunk(e, c)) != 0) {
			chunk_free(c);
			goto fail;
		}
		for (uint32_t i = 0;
		     chunk_mem(c) == CHUNK_HOT && i < chunk_n(c); i++) {
			/* An attempt that was running when the scheduler
			 * stopped runs again (its worker may still claim it
			 * when it registers again). */
			if (states[i] == TROUPE__ITEM_STATE__ITEM_RUNNING) {
				chunk_item(c, i)->sys_fails++;
				e->sys_resumed++;
				continue;
			}
			exec_set_state(e, first + i, states[i]);
		}
		chunk_loaded(c, exec_chunk_complete(e, k));
	}
	e->dirty = false;
	*out = e;
	return 0;
fail:
	exec_free(e);
	return rv;
}
