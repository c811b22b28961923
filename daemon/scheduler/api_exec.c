/*
 * The API's execution calls (see api.h): create, append, seal, get,
 * list, watch, abort and outputs, and the parked WatchExecution calls
 * (the watchers), answered by the sched hook after the commit that
 * changes their execution, or at their deadline.
 *
 * Async contract: the scheduler's loop thread; calls down to core.c and
 * through it the layers below.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

/* Longest wait of a WatchExecution, and its default. */
#define API_WATCH_MAX_MS     60000
#define API_WATCH_DEFAULT_MS 10000
/* Largest GetOutputs page: items, and bytes of outputs and errors. */
#define API_OUTPUTS_MAX   10000
#define API_OUTPUTS_BYTES (8u << 20)
/* The most one item may take in a page: the receive limit less room for
 * the envelope and the page's own fields. */
#define API_OUTPUTS_ALONE (TROUPE_MAX_MSG - 4096u)

/* A parked WatchExecution. */
typedef struct watcher {
	list_node node; /* api's watchers */
	rpc_call *call;
	char      id[32];
	uint64_t  since;
	int64_t   deadline_ms;
} watcher;

/* Replies with {Execution execution = 1} for any of the *Reply messages
 * that hold only that: protoc-c generates the same struct for each (base,
 * then the one pointer), so one GetExecutionReply serves all of them with
 * the right descriptor.  The layout is checked here at compile time. */
#define API_SAME_LAYOUT(T)                                                     \
	_Static_assert(sizeof(T) == sizeof(Troupe__GetExecutionReply) &&       \
	                   offsetof(T, execution) ==                           \
	                       offsetof(Troupe__GetExecutionReply, execution), \
	               #T " differs from GetExecutionReply")
API_SAME_LAYOUT(Troupe__WatchExecutionReply);
API_SAME_LAYOUT(Troupe__SealExecutionReply);
API_SAME_LAYOUT(Troupe__AbortExecutionReply);

void
api_reply_execution(sched *s, rpc_call *call, const char *id,
                    const ProtobufCMessageDescriptor *desc)
{
	Troupe__GetExecutionReply rep = TROUPE__GET_EXECUTION_REPLY__INIT;
	Troupe__Execution         x, *row = NULL;
	Troupe__Counts            c;
	exec                     *e = NULL;

	if (api_lookup_or_fail(s, id, &e, &row, call) != 0)
		return;
	if (e != NULL) {
		exec_view(e, &x, &c);
		rep.execution = &x;
	} else
		rep.execution = row;
	rep.base.descriptor = desc;
	rpc_reply(call, &rep.base);
	if (row != NULL)
		troupe__execution__free_unpacked(row, NULL);
}

void
api_watchers_init(api_ctx *a)
{
	list_init(&a->watchers, offsetof(watcher, node));
}

void
api_watch_hook(void *arg, sched_event ev)
{
	api_ctx *a = arg;
	int64_t  now = troupe_now_ms();
	watcher *wt, *next;

	for (wt = list_first(&a->watchers); wt != NULL; wt = next) {
		exec *e;
		bool  changed;

		next = list_next(&a->watchers, wt);
		if (ev == SCHED_EV_CLOSING) {
			/* rpc_server_close frees the calls. */
			list_remove(&a->watchers, wt);
			free(wt);
			continue;
		}
		e = sched_find_exec(a->s, wt->id);
		changed = e == NULL || e->version > wt->since;
		if ((ev == SCHED_EV_TICK || !changed) && now < wt->deadline_ms)
			continue;
		list_remove(&a->watchers, wt);
		api_reply_execution(a->s, wt->call, wt->id,
		                    &troupe__watch_execution_reply__descriptor);
		free(wt);
	}
}

void
api_create_execution(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                              *a = ctx;
	sched                                *s = a->s;
	const Troupe__CreateExecutionRequest *in = msg;
	Troupe__CreateExecutionReply rep = TROUPE__CREATE_EXECUTION_REPLY__INIT;
	Troupe__TaskSpec            *task = NULL;
	Troupe__Execution            x;
	Troupe__Counts               c;
	exec                        *e = NULL;
	actor_env                   *env = NULL;
	Troupe__ExecutionSpec        spec;
	char                         why[256];
	int                          rv;

	if (in->spec == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "spec is required");
		return;
	}
	/* The execution belongs to the caller's project; only an admin
	 * acting in every project may name another in the spec. */
	spec = *in->spec;
	if (spec.project[0] != '\0' && api_list_project(call) != NULL &&
	    strcmp(spec.project, api_project(call)) != 0) {
		rpc_fail(call, TROUPE_EPERM,
		         "a token of project %s cannot submit to project %.64s",
		         api_project(call), spec.project);
		return;
	}
	if (spec.project[0] == '\0' || api_list_project(call) != NULL)
		spec.project = (char *)api_project(call);
	if (api_resolve_or_fail(s, &spec, &task, call) != 0)
		return;
	if (in->seal && in->n_items == 0) {
		rpc_fail(call, TROUPE_EINVAL,
		         "no items: a map needs at least one item");
		goto done;
	}
	if ((rv = exec_new(&spec, task, &e)) != 0) {
		rpc_fail(call, rv, "cannot create the execution: %s",
		         troupe_strerror(rv));
		goto done;
	}
	if ((e->proj = projects_get(&s->projects, spec.project)) == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		goto done;
	}
	if ((rv = actors_resolve(&s->act, &spec, task, &env, why,
	                         sizeof(why))) != 0) {
		rpc_fail(call, rv, "%s", why);
		goto done;
	}
	if ((rv = actors_bind(e, env)) != 0) {
		rpc_fail(call, rv, "out of memory");
		goto done;
	}
	if (api_check_lines_or_fail(e, 0, in->items, in->n_items, call) != 0)
		goto done;
	if ((rv = exec_append(e, in->items, in->n_items)) != 0) {
		rpc_fail(call, rv, "cannot create the execution: %s",
		         troupe_strerror(rv));
		goto done;
	}
	e->sealed = in->seal;
	sched_add_exec(s, e);
	if (api_commit_or_fail(s, call) != 0) {
		sched_remove_exec(s, e);
		goto done;
	}
	log_info("execution %s created: %llu items%s", e->id,
	         (unsigned long long)e->total, e->sealed ? "" : " so far");
	exec_view(e, &x, &c);
	rep.execution = &x;
	rpc_reply(call, &rep.base);
	e = NULL;
	sched_kick(s);
done:
	exec_free(e);
	if (task != NULL)
		troupe__task_spec__free_unpacked(task, NULL);
}

void
api_append_items(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                          *a = ctx;
	sched                            *s = a->s;
	const Troupe__AppendItemsRequest *in = msg;
	Troupe__AppendItemsReply rep = TROUPE__APPEND_ITEMS_REPLY__INIT;
	exec                    *e = api_open_exec_or_fail(s, in->id, call);
	uint64_t                 before;
	int                      rv;

	if (e == NULL)
		return;
	if (e->sealed) {
		rpc_fail(call, TROUPE_ESTATE, "execution %s is sealed", e->id);
		return;
	}
	/* Any call counts, even an empty one: a client that produces items
	 * slowly keeps its execution with empty appends. */
	e->upload_ms = troupe_now_ms();
	if (in->offset != e->total) {
		rpc_fail(call, TROUPE_ESTATE,
		         "offset %llu does not follow the %llu items uploaded",
		         (unsigned long long)in->offset,
		         (unsigned long long)e->total);
		return;
	}
	if (api_check_lines_or_fail(e, e->total, in->items, in->n_items,
	                            call) != 0)
		return;
	before = e->total;
	if ((rv = exec_append(e, in->items, in->n_items)) != 0) {
		exec_truncate(e, before);
		rpc_fail(call, rv, "cannot append: %s", troupe_strerror(rv));
		return;
	}
	if (api_commit_or_fail(s, call) != 0) {
		exec_truncate(e, before);
		return;
	}
	rep.total = e->total;
	rpc_reply(call, &rep.base);
	sched_kick(s);
}

void
api_seal_execution(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                            *a = ctx;
	sched                              *s = a->s;
	const Troupe__SealExecutionRequest *in = msg;
	exec *e = api_open_exec_or_fail(s, in->id, call);

	if (e == NULL)
		return;
	if (e->total == 0) {
		rpc_fail(call, TROUPE_EINVAL,
		         "no items: a map needs at least one item");
		return;
	}
	if (!e->sealed) {
		sched_seal(s, e);
		if (api_commit_or_fail(s, call) != 0) {
			e->sealed = false;
			return;
		}
	}
	api_reply_execution(s, call, in->id,
	                    &troupe__seal_execution_reply__descriptor);
	sched_kick(s);
}

void
api_get_execution(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                           *a = ctx;
	sched                             *s = a->s;
	const Troupe__GetExecutionRequest *in = msg;
	api_reply_execution(s, call, in->id,
	                    &troupe__get_execution_reply__descriptor);
}

typedef struct api_list {
	Troupe__Execution **xs;
	size_t              n;
	int64_t             last_seq;
} api_list;

static int
api_list_cb(void *arg, int64_t seq, Troupe__Execution *x)
{
	api_list *l = arg;

	l->xs[l->n++] = x;
	l->last_seq = seq;
	return 0;
}

void
api_list_executions(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                             *a = ctx;
	sched                               *s = a->s;
	const Troupe__ListExecutionsRequest *in = msg;
	Troupe__ListExecutionsReply rep = TROUPE__LIST_EXECUTIONS_REPLY__INIT;
	api_list                    l = {0};
	uint32_t                    limit = in->page_size;
	long long                   before = 0;
	char                        next[32] = "", *end = NULL;
	const char                 *project;
	int                         rv;

	if (limit == 0 || limit > 1000)
		limit = limit == 0 ? 100 : 1000;
	if (in->page_token[0] != '\0') {
		before = strtoll(in->page_token, &end, 10);
		if (*end != '\0' || before <= 0) {
			rpc_fail(call, TROUPE_EINVAL, "bad page token '%.32s'",
			         in->page_token);
			return;
		}
	}
	if ((l.xs = calloc(limit, sizeof(*l.xs))) == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return;
	}
	/* A project token lists its own project only. */
	project = api_list_project(call);
	if (project != NULL && in->project[0] != '\0' &&
	    strcmp(in->project, project) != 0) {
		rpc_fail(call, TROUPE_EPERM,
		         "a token of project %s cannot list project %.64s",
		         project, in->project);
		goto done;
	}
	if (project == NULL && in->project[0] != '\0')
		project = in->project;
	rv = store_list_executions(s->st, before, in->phase, project, limit,
	                           api_list_cb, &l);
	if (rv != 0) {
		rpc_fail(call, rv, "cannot list: %s", troupe_strerror(rv));
		goto done;
	}
	if (l.n == limit)
		snprintf(next, sizeof(next), "%lld", (long long)l.last_seq);
	rep.executions = l.xs;
	rep.n_executions = l.n;
	rep.next_page_token = next;
	rpc_reply(call, &rep.base);
done:
	for (size_t i = 0; i < l.n; i++)
		troupe__execution__free_unpacked(l.xs[i], NULL);
	free(l.xs);
}

void
api_watch_execution(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                             *a = ctx;
	sched                               *s = a->s;
	const Troupe__WatchExecutionRequest *in = msg;
	exec                                *e = NULL;
	Troupe__Execution                   *row = NULL;
	watcher                             *wt;
	uint32_t                             wait = in->timeout_ms;

	if (api_lookup_or_fail(s, in->id, &e, &row, call) != 0)
		return;
	if (row != NULL || e->version > in->since_version) {
		/* Finished executions change no more: answer at once. */
		if (row != NULL)
			troupe__execution__free_unpacked(row, NULL);
		api_reply_execution(s, call, in->id,
		                    &troupe__watch_execution_reply__descriptor);
		return;
	}
	if ((wt = calloc(1, sizeof(*wt))) == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return;
	}
	if (wait == 0)
		wait = API_WATCH_DEFAULT_MS;
	if (wait > API_WATCH_MAX_MS)
		wait = API_WATCH_MAX_MS;
	wt->call = call;
	snprintf(wt->id, sizeof(wt->id), "%s", e->id);
	wt->since = in->since_version;
	wt->deadline_ms = troupe_now_ms() + wait;
	list_append(&a->watchers, wt);
}

void
api_abort_execution(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                             *a = ctx;
	sched                               *s = a->s;
	const Troupe__AbortExecutionRequest *in = msg;
	exec                                *e = NULL;
	Troupe__Execution                   *row = NULL;
	int                                  rv;

	if (api_lookup_or_fail(s, in->id, &e, &row, call) != 0)
		return;
	if (row != NULL && !exec_terminal(row->phase)) {
		/* Unfinished, yet not in memory: the scheduler could not
		 * load it back (a damaged database).  The operator ends it
		 * here. */
		rv = store_end_execution(
		    s->st, row, TROUPE__PHASE__PHASE_FAILED,
		    in->reason[0] != '\0' ? in->reason
		                          : "ended by request: it could not "
		                            "be loaded",
		    troupe_now_ms());
		troupe__execution__free_unpacked(row, NULL);
		if (rv != 0) {
			rpc_fail(call, rv, "cannot end execution %s: %s",
			         in->id, store_errmsg(s->st));
			return;
		}
		log_info("execution %s (not loaded) marked FAILED by request",
		         in->id);
		api_reply_execution(s, call, in->id,
		                    &troupe__abort_execution_reply__descriptor);
		return;
	}
	if (row != NULL) {
		troupe__execution__free_unpacked(row, NULL);
		rpc_fail(call, TROUPE_ESTATE, "execution %s already finished",
		         in->id);
		return;
	}
	if (exec_terminal(e->phase)) {
		rpc_fail(call, TROUPE_ESTATE, "execution %s already finished",
		         in->id);
		return;
	}
	sched_abort(s, e, TROUPE__PHASE__PHASE_ABORTED,
	            in->reason[0] != '\0' ? in->reason : "aborted by request");
	/* An abort cannot be undone in memory (its workers were told), so
	 * a failed commit leaves it standing, retried every tick. */
	if ((rv = sched_flush(s)) != 0) {
		rpc_fail(call, rv,
		         "execution %s is aborted, but the scheduler cannot "
		         "record it yet (%s); it will when it can",
		         in->id, troupe_strerror(rv));
		return;
	}
	api_reply_execution(s, call, in->id,
	                    &troupe__abort_execution_reply__descriptor);
}

void
api_get_outputs(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                         *a = ctx;
	sched                           *s = a->s;
	const Troupe__GetOutputsRequest *in = msg;
	Troupe__GetOutputsReply          rep = TROUPE__GET_OUTPUTS_REPLY__INIT;
	exec                            *e = NULL;
	Troupe__Execution               *row = NULL;
	Troupe__ItemResult              *views = NULL, **ps = NULL;
	Troupe__ChunkResults            *res = NULL;
	Troupe__ItemResult               blank;
	uint64_t                         total, n = 0, bytes = 0;
	uint32_t                         want = in->count;
	int32_t                          loaded = -1;
	/* A page spans at most this many chunks besides the current one. */
	Troupe__ChunkResults *held[API_OUTPUTS_MAX / STORE_CHUNK_ITEMS + 2];
	size_t                n_held = 0;

	if (api_lookup_or_fail(s, in->id, &e, &row, call) != 0)
		return;
	total = e != NULL ? e->total : row->total;
	if (in->start > total) {
		rpc_fail(
		    call, TROUPE_ERANGE, "start %llu is past the %llu items",
		    (unsigned long long)in->start, (unsigned long long)total);
		goto done;
	}
	if (want == 0 || want > API_OUTPUTS_MAX)
		want = API_OUTPUTS_MAX;
	if (want > total - in->start)
		want = (uint32_t)(total - in->start);
	views = calloc(want + 1, sizeof(*views));
	ps = calloc(want + 1, sizeof(*ps));
	if (views == NULL || ps == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		goto done;
	}
	for (n = 0; n < want; n++) {
		uint64_t idx = in->start + n;
		size_t   size;

		if (e != NULL && exec_in_memory(e, idx))
			exec_item_view(e, idx, &views[n]);
		else {
			int32_t k = (int32_t)(idx / STORE_CHUNK_ITEMS);
			size_t  i = idx % STORE_CHUNK_ITEMS;
			int     rv;

			if (k != loaded) {
				/* The views point into every chunk read for
				 * this page: keep them all until the reply is
				 * packed. */
				if (res != NULL)
					held[n_held++] = res;
				res = NULL;
				rv = store_get_chunk(s->st, in->id, (uint32_t)k,
				                     NULL, &res);
				if (rv != 0) {
					rpc_fail(call, rv,
					         "cannot read outputs: %s",
					         troupe_strerror(rv));
					goto done;
				}
				loaded = k;
			}
			if (res != NULL && i < res->n_items)
				views[n] = *res->items[i];
			else {
				troupe__item_result__init(&blank);
				blank.index = idx;
				views[n] = blank;
			}
		}
		/* Its size in the reply (with its tag and length), counted
		 * before it is added: a page past the client's receive
		 * limit would never arrive.  The first item always goes,
		 * when it fits alone. */
		size = protobuf_c_message_get_packed_size(&views[n].base) + 16;
		if (n > 0 && bytes + size > API_OUTPUTS_BYTES)
			break;
		if (size > API_OUTPUTS_ALONE) {
			rpc_fail(
			    call, TROUPE_EFULL,
			    "the result of item %llu (%zu bytes) is larger "
			    "than a reply may be",
			    (unsigned long long)idx, size);
			goto done;
		}
		bytes += size;
		ps[n] = &views[n];
	}
	rep.items = ps;
	rep.n_items = n;
	rep.next = in->start + n;
	rep.total = total;
	rpc_reply(call, &rep.base);
done:
	if (res != NULL)
		troupe__chunk_results__free_unpacked(res, NULL);
	for (size_t h = 0; h < n_held; h++)
		troupe__chunk_results__free_unpacked(held[h], NULL);
	if (row != NULL)
		troupe__execution__free_unpacked(row, NULL);
	free(views);
	free(ps);
}
