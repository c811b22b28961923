/*
 * The API's GetLogs call (README, "Per-item logs"): the stderr logs of an
 * execution's attempts, read from the store (store_logs.c), paged, with
 * the project scoping and role of GetOutputs (a read token suffices; an
 * execution of another project does not exist for the caller).
 *
 * Logs reach the store with their results, in the flush that commits
 * them (exec_store.c), so a log is readable as soon as its result is.
 *
 * Async contract: the scheduler's loop thread, called by rpc.c with the
 * request unpacked; answers before it returns.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "grow.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

/* Bytes of logs in one reply: well under the receive limit, and at least
 * one log always fits (EXEC_LOG_MAX). */
#define API_LOGS_BYTES ((size_t)4 << 20)

/* The page being built. */
typedef struct api_logs_page {
	Troupe__ItemLog *logs;
	size_t           n, cap;
	size_t           bytes;
	bool             more; /* stopped before (next_item, next_attempt) */
	uint64_t         next_item;
	uint32_t         next_attempt;
} api_logs_page;

static int
api_logs_row(void *arg, uint64_t item, uint32_t attempt, const uint8_t *data,
             size_t len, uint64_t dropped)
{
	api_logs_page   *pg = arg;
	Troupe__ItemLog *l;

	if (pg->n > 0 && pg->bytes + len + 32 > API_LOGS_BYTES) {
		pg->more = true;
		pg->next_item = item;
		pg->next_attempt = attempt;
		return 1;
	}
	if (pg->n == pg->cap) {
		Troupe__ItemLog *v =
		    grow_array(pg->logs, &pg->cap, sizeof(*v), 16);

		if (v == NULL)
			return TROUPE_ENOMEM;
		pg->logs = v;
	}
	l = &pg->logs[pg->n];
	troupe__item_log__init(l);
	if (len > 0 && (l->data.data = malloc(len)) == NULL)
		return TROUPE_ENOMEM;
	if (len > 0)
		memcpy(l->data.data, data, len);
	l->data.len = len;
	l->index = item;
	l->attempt = attempt;
	l->dropped = dropped;
	pg->n++;
	pg->bytes += len + 32;
	return 0;
}

/* The attempts item index of execution id (e when in memory) has
 * started, into *out.  Answers call on failure. */
static int
api_logs_attempts_or_fail(sched *s, exec *e, const char *id, uint64_t index,
                          uint32_t *out, rpc_call *call)
{
	Troupe__ChunkResults *res = NULL;
	Troupe__ItemResult    view;
	size_t                i = index % STORE_CHUNK_ITEMS;
	int                   rv;

	if (e != NULL && exec_in_memory(e, index)) {
		exec_item_view(e, index, &view);
		*out = view.attempts;
		return 0;
	}
	rv = store_get_chunk(s->st, id, (uint32_t)(index / STORE_CHUNK_ITEMS),
	                     NULL, &res);
	if (rv != 0 && rv != TROUPE_ENOTFOUND) {
		rpc_fail(call, rv, "cannot read item %" PRIu64 ": %s", index,
		         troupe_strerror(rv));
		return rv;
	}
	*out = res != NULL && i < res->n_items ? res->items[i]->attempts : 0;
	if (res != NULL)
		troupe__chunk_results__free_unpacked(res, NULL);
	return 0;
}

/* Reads a page token "ITEM.ATTEMPT" (what a reply's next_page_token
 * holds). */
static bool
api_logs_token(const char *t, uint64_t *item, uint32_t *attempt)
{
	unsigned long long i;
	unsigned           a;
	int                end = 0;

	if (sscanf(t, "%llu.%u%n", &i, &a, &end) != 2 || t[end] != '\0' ||
	    t[0] < '0' || t[0] > '9')
		return false;
	*item = i;
	*attempt = a;
	return true;
}

void
api_get_logs(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                      *a = ctx;
	sched                        *s = a->s;
	const Troupe__GetLogsRequest *in = msg;
	Troupe__GetLogsReply          rep = TROUPE__GET_LOGS_REPLY__INIT;
	Troupe__ItemLog             **ps = NULL;
	api_logs_page                 pg = {0};
	exec                         *e = NULL;
	Troupe__Execution            *row = NULL;
	bool one = in->item_opt_case == TROUPE__GET_LOGS_REQUEST__ITEM_OPT_ITEM;
	uint64_t total, from_item = one ? in->item : 0;
	uint32_t from_attempt = 0, attempts = 0;
	char     token[48];
	int      rv;

	if (api_lookup_or_fail(s, in->id, &e, &row, call) != 0)
		return;
	total = e != NULL ? e->total : row->total;
	if (!one && in->attempt > 0) {
		rpc_fail(call, TROUPE_EINVAL,
		         "an attempt is asked for only with an item");
		goto done;
	}
	if (one && in->item >= total) {
		rpc_fail(call, TROUPE_ERANGE,
		         "execution %s has no item %" PRIu64 " (it has %" PRIu64
		         " items, from 0)",
		         in->id, in->item, total);
		goto done;
	}
	if (one && api_logs_attempts_or_fail(s, e, in->id, in->item, &attempts,
	                                     call) != 0)
		goto done;
	if (one && in->attempt > attempts) {
		rpc_fail(call, TROUPE_ERANGE,
		         "item %" PRIu64 " of %s has no attempt %" PRIu32
		         " (it has had %" PRIu32 ")",
		         in->item, in->id, in->attempt, attempts);
		goto done;
	}
	if (in->page_token[0] != '\0' &&
	    !api_logs_token(in->page_token, &from_item, &from_attempt)) {
		rpc_fail(call, TROUPE_EINVAL, "a malformed page token");
		goto done;
	}
	rv = store_list_logs(s->st, in->id, from_item, from_attempt,
	                     one ? (int64_t)in->item : -1,
	                     one ? in->attempt : 0, api_logs_row, &pg);
	if (rv != 0) {
		rpc_fail(call, rv, "cannot read logs: %s", troupe_strerror(rv));
		goto done;
	}
	if (pg.n > 0 && (ps = calloc(pg.n, sizeof(*ps))) == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < pg.n; i++)
		ps[i] = &pg.logs[i];
	rep.logs = ps;
	rep.n_logs = pg.n;
	rep.total = total;
	rep.attempts = attempts;
	if (pg.more) {
		snprintf(token, sizeof(token), "%" PRIu64 ".%" PRIu32,
		         pg.next_item, pg.next_attempt);
		rep.next_page_token = token;
	}
	rpc_reply(call, &rep.base);
done:
	for (size_t i = 0; i < pg.n; i++)
		free(pg.logs[i].data.data);
	free(pg.logs);
	free(ps);
	if (row != NULL)
		troupe__execution__free_unpacked(row, NULL);
}
