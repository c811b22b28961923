/*
 * The public API service (api.proto's Troupe).  Each function is one rpc;
 * rpc.c dispatches to it through the descriptor protoc-c generated.  Runs
 * on the scheduler's loop thread (see scheduler.h).  Every change is committed
 * before it is answered: handlers call sched_flush and report its error.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "names.h"
#include "scheduler.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

/* Longest wait of a WatchExecution, and its default. */
#define API_WATCH_MAX_MS     60000
#define API_WATCH_DEFAULT_MS 10000
/* Largest GetOutputs page: items, and bytes of outputs and errors. */
#define API_OUTPUTS_MAX   10000
#define API_OUTPUTS_BYTES (8u << 20)

typedef struct api_svc {
	Troupe__Troupe_Service svc; /* first: rpc.c sees this */
	sched                 *s;
} api_svc;

static sched *
api_sched(Troupe__Troupe_Service *svc)
{
	return ((api_svc *)svc)->s;
}

/* Commits now; on failure answers call with the reason and returns it. */
static int
api_commit(sched *s, void *call)
{
	int rv = sched_flush(s);

	if (rv != 0)
		rpc_fail(
		    call, rv,
		    rv == TROUPE_EFULL
		        ? "the scheduler's disk is full; nothing was recorded"
		        : "cannot record the change: %s",
		    troupe_strerror(rv));
	return rv;
}

/* Loads the execution id, from memory or the store, into *out: either
 * *live (an active one) or *row (a finished one, caller frees). */
static int
api_lookup(sched *s, const char *id, exec **live, Troupe__Execution **row,
           void *call)
{
	int rv;

	*live = sched_find_exec(s, id);
	*row = NULL;
	if (*live != NULL)
		return 0;
	if (id[0] == '\0') {
		rpc_fail(call, TROUPE_EINVAL, "an execution id is required");
		return TROUPE_EINVAL;
	}
	rv = store_get_execution(s->st, id, row);
	if (rv == TROUPE_ENOTFOUND)
		rpc_fail(call, rv, "no execution '%.64s'", id);
	else if (rv != 0)
		rpc_fail(call, rv, "cannot read execution: %s",
		         troupe_strerror(rv));
	return rv;
}

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

static void
api_reply_execution(sched *s, void *call, const char *id,
                    const ProtobufCMessageDescriptor *desc)
{
	Troupe__GetExecutionReply rep = TROUPE__GET_EXECUTION_REPLY__INIT;
	Troupe__Execution         x, *row = NULL;
	Troupe__Counts            c;
	exec                     *e = NULL;

	if (api_lookup(s, id, &e, &row, call) != 0)
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
api_answer_watch(sched *s, rpc_call *call, const char *id)
{
	api_reply_execution(s, call, id,
	                    &troupe__watch_execution_reply__descriptor);
}

/* Checks a spec and resolves its task; on error answers call.  *task is
 * the caller's to free. */
static int
api_resolve(sched *s, const Troupe__ExecutionSpec *sp, Troupe__TaskSpec **task,
            void *call)
{
	char why[256];
	int  rv;

	*task = NULL;
	if (sp == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "spec is required");
		return TROUPE_EINVAL;
	}
	/* A registered actor environment brings its own command, so
	 * `--actor NAME` alone is a complete map. */
	if (sp->command[0] != '\0' && sp->task[0] != '\0') {
		rpc_fail(call, TROUPE_EINVAL,
		         "give a command or a task, not both");
		return TROUPE_EINVAL;
	}
	if (sp->command[0] == '\0' && sp->task[0] == '\0' &&
	    sp->actor[0] == '\0') {
		rpc_fail(
		    call, TROUPE_EINVAL,
		    "give a command (--cmd), a registered task (--task) or "
		    "an actor environment (--actor)");
		return TROUPE_EINVAL;
	}
	if (sp->project[0] != '\0' &&
	    names_check("project", sp->project, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return TROUPE_EINVAL;
	}
	if (sp->ratio_opt_case ==
	        TROUPE__EXECUTION_SPEC__RATIO_OPT_MIN_SUCCESS_RATIO &&
	    !(sp->min_success_ratio >= 0.0 && sp->min_success_ratio <= 1.0)) {
		rpc_fail(call, TROUPE_EINVAL,
		         "min success ratio must be between 0 and 1, not %g",
		         sp->min_success_ratio);
		return TROUPE_EINVAL;
	}
	if (sp->retries_opt_case ==
	        TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES &&
	    sp->retries > 100) {
		rpc_fail(call, TROUPE_EINVAL, "retries must be 0..100, not %u",
		         sp->retries);
		return TROUPE_EINVAL;
	}
	if (sp->task[0] != '\0') {
		if (names_check("task name", sp->task, why, sizeof(why)) != 0) {
			rpc_fail(call, TROUPE_EINVAL, "%s", why);
			return TROUPE_EINVAL;
		}
		rv = store_get_task(s->st, sp->task, task);
		if (rv == TROUPE_ENOTFOUND)
			rpc_fail(
			    call, rv,
			    "no task named '%s' (register it with `troupe task "
			    "register`)",
			    sp->task);
		else if (rv != 0)
			rpc_fail(call, rv, "cannot read task: %s",
			         troupe_strerror(rv));
		if (rv != 0)
			return rv;
		/* An execution's own environment adds to the task's. */
		if (sp->n_env > 0) {
			Troupe__TaskSpec  t = **task;
			Troupe__TaskSpec *copy;
			uint8_t          *buf = NULL;
			size_t            len = 0;
			char **env = calloc(t.n_env + sp->n_env, sizeof(*env));

			if (env == NULL)
				goto oom;
			memcpy(env, t.env, t.n_env * sizeof(*env));
			memcpy(env + t.n_env, sp->env,
			       sp->n_env * sizeof(*env));
			t.env = env;
			t.n_env += sp->n_env;
			rv = troupe_pack(&t.base, &buf, &len);
			free(env);
			if (rv != 0)
				goto oom;
			copy = troupe__task_spec__unpack(NULL, len, buf);
			free(buf);
			if (copy == NULL)
				goto oom;
			troupe__task_spec__free_unpacked(*task, NULL);
			*task = copy;
		}
	} else {
		Troupe__TaskSpec t = TROUPE__TASK_SPEC__INIT;
		uint8_t         *buf = NULL;
		size_t           len = 0;

		t.command = sp->command;
		t.env = sp->env;
		t.n_env = sp->n_env;
		t.resources = sp->resources;
		t.actor = sp->actor;
		if (troupe_pack(&t.base, &buf, &len) != 0)
			goto oom;
		*task = troupe__task_spec__unpack(NULL, len, buf);
		free(buf);
		if (*task == NULL)
			goto oom;
	}
	for (size_t i = 0; i < (*task)->n_env; i++)
		if (strchr((*task)->env[i], '=') == NULL ||
		    (*task)->env[i][0] == '=') {
			rpc_fail(call, TROUPE_EINVAL,
			         "environment entry '%.64s' is not KEY=VALUE",
			         (*task)->env[i]);
			goto fail;
		}
	return 0;
oom:
	rpc_fail(call, TROUPE_ENOMEM, "out of memory");
fail:
	if (*task != NULL)
		troupe__task_spec__free_unpacked(*task, NULL);
	*task = NULL;
	return TROUPE_EINVAL;
}

/* The lines protocol carries one line per item: refuse items that would
 * split.  Returns 0, or answers call and returns TROUPE_EINVAL. */
static int
api_check_lines(const exec *e, uint64_t first, const ProtobufCBinaryData *items,
                size_t n, void *call)
{
	if (e->env == NULL ||
	    e->env->env->protocol != TROUPE__PROTOCOL__PROTOCOL_LINES)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (memchr(items[i].data, '\n', items[i].len) != NULL) {
			rpc_fail(call, TROUPE_EINVAL,
			         "item %llu holds a newline, which the lines "
			         "protocol "
			         "cannot carry (use --protocol frames)",
			         (unsigned long long)(first + i));
			return TROUPE_EINVAL;
		}
	return 0;
}

static void
api_link_exec(sched *s, exec *e)
{
	exec **pp = &s->execs;
	exec  *prev = NULL;

	while (*pp != NULL) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = e;
	e->prev = prev;
}

static void
api_unlink_exec(sched *s, exec *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		s->execs = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void
api_create_execution(Troupe__Troupe_Service               *svc,
                     const Troupe__CreateExecutionRequest *in,
                     Troupe__CreateExecutionReply_Closure closure, void *call)
{
	sched                       *s = api_sched(svc);
	Troupe__CreateExecutionReply rep = TROUPE__CREATE_EXECUTION_REPLY__INIT;
	Troupe__TaskSpec            *task = NULL;
	Troupe__Execution            x;
	Troupe__Counts               c;
	exec                        *e = NULL;
	actor_env                   *env = NULL;
	char                         why[256];
	int                          rv;

	if (api_resolve(s, in->spec, &task, call) != 0)
		return;
	if (in->seal && in->n_items == 0) {
		rpc_fail(call, TROUPE_EINVAL,
		         "no items: a map needs at least one item");
		goto done;
	}
	if ((rv = exec_new(in->spec, task, &e)) != 0) {
		rpc_fail(call, rv, "cannot create the execution: %s",
		         troupe_strerror(rv));
		goto done;
	}
	if ((rv = actors_resolve(s, in->spec, task, &env, why, sizeof(why))) !=
	    0) {
		rpc_fail(call, rv, "%s", why);
		goto done;
	}
	if ((rv = actors_bind(e, env)) != 0) {
		rpc_fail(call, rv, "out of memory");
		goto done;
	}
	if (api_check_lines(e, 0, in->items, in->n_items, call) != 0)
		goto done;
	if ((rv = exec_append(e, in->items, in->n_items)) != 0) {
		rpc_fail(call, rv, "cannot create the execution: %s",
		         troupe_strerror(rv));
		goto done;
	}
	e->sealed = in->seal;
	api_link_exec(s, e);
	if (api_commit(s, call) != 0) {
		api_unlink_exec(s, e);
		goto done;
	}
	log_info("execution %s created: %llu items%s", e->id,
	         (unsigned long long)e->total, e->sealed ? "" : " so far");
	exec_view(e, &x, &c);
	rep.execution = &x;
	closure(&rep, call);
	e = NULL;
	sched_kick(s);
done:
	exec_free(e);
	if (task != NULL)
		troupe__task_spec__free_unpacked(task, NULL);
}

/* Finds an active execution that still takes changes, or answers why not. */
static exec *
api_open_exec(sched *s, const char *id, void *call)
{
	exec              *e = NULL;
	Troupe__Execution *row = NULL;

	if (api_lookup(s, id, &e, &row, call) != 0)
		return NULL;
	if (row != NULL || exec_terminal(e->phase)) {
		rpc_fail(call, TROUPE_ESTATE, "execution %s already finished",
		         id);
		if (row != NULL)
			troupe__execution__free_unpacked(row, NULL);
		return NULL;
	}
	return e;
}

static void
api_append_items(Troupe__Troupe_Service           *svc,
                 const Troupe__AppendItemsRequest *in,
                 Troupe__AppendItemsReply_Closure closure, void *call)
{
	sched                   *s = api_sched(svc);
	Troupe__AppendItemsReply rep = TROUPE__APPEND_ITEMS_REPLY__INIT;
	exec                    *e = api_open_exec(s, in->id, call);
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
	if (api_check_lines(e, e->total, in->items, in->n_items, call) != 0)
		return;
	before = e->total;
	if ((rv = exec_append(e, in->items, in->n_items)) != 0) {
		exec_truncate(e, before);
		rpc_fail(call, rv, "cannot append: %s", troupe_strerror(rv));
		return;
	}
	if (api_commit(s, call) != 0) {
		exec_truncate(e, before);
		return;
	}
	rep.total = e->total;
	closure(&rep, call);
	sched_kick(s);
}

static void
api_seal_execution(Troupe__Troupe_Service             *svc,
                   const Troupe__SealExecutionRequest *in,
                   Troupe__SealExecutionReply_Closure closure, void *call)
{
	sched *s = api_sched(svc);
	exec  *e = api_open_exec(s, in->id, call);

	(void)closure;
	if (e == NULL)
		return;
	if (e->total == 0) {
		rpc_fail(call, TROUPE_EINVAL,
		         "no items: a map needs at least one item");
		return;
	}
	if (!e->sealed) {
		e->sealed = true;
		e->dirty = true;
		exec_check_done(s, e);
		if (api_commit(s, call) != 0) {
			e->sealed = false;
			return;
		}
	}
	api_reply_execution(s, call, in->id,
	                    &troupe__seal_execution_reply__descriptor);
	sched_kick(s);
}

static void
api_get_execution(Troupe__Troupe_Service            *svc,
                  const Troupe__GetExecutionRequest *in,
                  Troupe__GetExecutionReply_Closure closure, void *call)
{
	(void)closure;
	api_reply_execution(api_sched(svc), call, in->id,
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

static void
api_list_executions(Troupe__Troupe_Service              *svc,
                    const Troupe__ListExecutionsRequest *in,
                    Troupe__ListExecutionsReply_Closure closure, void *call)
{
	sched                      *s = api_sched(svc);
	Troupe__ListExecutionsReply rep = TROUPE__LIST_EXECUTIONS_REPLY__INIT;
	api_list                    l = {0};
	uint32_t                    limit = in->page_size;
	long long                   before = 0;
	char                        next[32] = "", *end = NULL;
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
	rv = store_list_executions(s->st, before, in->phase, in->project, limit,
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
	closure(&rep, call);
done:
	for (size_t i = 0; i < l.n; i++)
		troupe__execution__free_unpacked(l.xs[i], NULL);
	free(l.xs);
}

static void
api_watch_execution(Troupe__Troupe_Service              *svc,
                    const Troupe__WatchExecutionRequest *in,
                    Troupe__WatchExecutionReply_Closure closure, void *call)
{
	sched             *s = api_sched(svc);
	exec              *e = NULL;
	Troupe__Execution *row = NULL;
	watcher           *wt;
	uint32_t           wait = in->timeout_ms;

	(void)closure;
	if (api_lookup(s, in->id, &e, &row, call) != 0)
		return;
	if (row != NULL || e->version > in->since_version) {
		/* Finished executions change no more: answer at once. */
		if (row != NULL)
			troupe__execution__free_unpacked(row, NULL);
		api_answer_watch(s, call, in->id);
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
	wt->next = s->watchers;
	s->watchers = wt;
}

static void
api_abort_execution(Troupe__Troupe_Service              *svc,
                    const Troupe__AbortExecutionRequest *in,
                    Troupe__AbortExecutionReply_Closure closure, void *call)
{
	sched *s = api_sched(svc);
	exec  *e = api_open_exec(s, in->id, call);

	(void)closure;
	if (e == NULL)
		return;
	exec_abort(s, e, TROUPE__PHASE__PHASE_ABORTED,
	           in->reason[0] != '\0' ? in->reason : "aborted by request");
	if (api_commit(s, call) != 0)
		return;
	api_reply_execution(s, call, in->id,
	                    &troupe__abort_execution_reply__descriptor);
	sched_kick(s); /* send the cancellations */
}

static void
api_get_outputs(Troupe__Troupe_Service          *svc,
                const Troupe__GetOutputsRequest *in,
                Troupe__GetOutputsReply_Closure closure, void *call)
{
	sched                  *s = api_sched(svc);
	Troupe__GetOutputsReply rep = TROUPE__GET_OUTPUTS_REPLY__INIT;
	exec                   *e = NULL;
	Troupe__Execution      *row = NULL;
	Troupe__ItemResult     *views = NULL, **ps = NULL;
	Troupe__ChunkResults   *res = NULL;
	Troupe__ItemResult      blank;
	uint64_t                total, n = 0, bytes = 0;
	uint32_t                want = in->count;
	int32_t                 loaded = -1;
	/* A page spans at most this many chunks besides the current one. */
	Troupe__ChunkResults *held[API_OUTPUTS_MAX / STORE_CHUNK_ITEMS + 2];
	size_t                n_held = 0;

	if (api_lookup(s, in->id, &e, &row, call) != 0)
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
	for (n = 0; n < want && bytes < API_OUTPUTS_BYTES; n++) {
		uint64_t idx = in->start + n;

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
		bytes += views[n].output.len + strlen(views[n].error) + 32;
		ps[n] = &views[n];
	}
	rep.items = ps;
	rep.n_items = n;
	rep.next = in->start + n;
	rep.total = total;
	closure(&rep, call);
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

/* Writes one registry change in its own transaction. */
static int
api_registry_commit(sched *s, int rv, void *call)
{
	if (rv == 0)
		rv = store_commit(s->st);
	if (rv != 0) {
		store_rollback(s->st);
		rpc_fail(call, rv,
		         rv == TROUPE_EFULL ? "the scheduler's disk is full"
		                            : "cannot save: %s",
		         troupe_strerror(rv));
	}
	return rv;
}

static void
api_register_task(Troupe__Troupe_Service            *svc,
                  const Troupe__RegisterTaskRequest *in,
                  Troupe__RegisterTaskReply_Closure closure, void *call)
{
	sched                    *s = api_sched(svc);
	Troupe__RegisterTaskReply rep = TROUPE__REGISTER_TASK_REPLY__INIT;
	char                      why[256];
	int                       rv;

	if (in->task == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "task is required");
		return;
	}
	if (names_check("task name", in->task->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if (in->task->retries > 100) {
		rpc_fail(call, TROUPE_EINVAL, "retries must be 0..100, not %u",
		         in->task->retries);
		return;
	}
	if (in->task->command[0] == '\0') {
		rpc_fail(call, TROUPE_EINVAL, "task %s needs a command (--cmd)",
		         in->task->name);
		return;
	}
	if (in->task->actor[0] != '\0' &&
	    names_check("actor name", in->task->actor, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if ((rv = store_begin(s->st)) == 0)
		rv = store_put_task(s->st, in->task, in->replace);
	if (rv == TROUPE_EEXIST) {
		store_rollback(s->st);
		rpc_fail(call, rv,
		         "task '%s' already exists (replace it with "
		         "--replace)",
		         in->task->name);
		return;
	}
	if (api_registry_commit(s, rv, call) != 0)
		return;
	rep.task = in->task;
	closure(&rep, call);
}

static void
api_get_task(Troupe__Troupe_Service *svc, const Troupe__GetTaskRequest *in,
             Troupe__GetTaskReply_Closure closure, void *call)
{
	Troupe__GetTaskReply rep = TROUPE__GET_TASK_REPLY__INIT;
	int rv = store_get_task(api_sched(svc)->st, in->name, &rep.task);

	if (rv != 0) {
		rpc_fail(call, rv,
		         rv == TROUPE_ENOTFOUND ? "no task '%.64s'"
		                                : "cannot read task %.64s",
		         in->name);
		return;
	}
	closure(&rep, call);
	troupe__task_spec__free_unpacked(rep.task, NULL);
}

typedef struct api_vec {
	void **v;
	size_t n, cap;
} api_vec;

static int
api_vec_push(void *arg, void *p)
{
	api_vec *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		void **v = realloc(a->v, cap * sizeof(*v));
		if (v == NULL)
			return TROUPE_ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = p;
	return 0;
}

static int
api_task_cb(void *arg, Troupe__TaskSpec *t)
{
	int rv = api_vec_push(arg, t);
	if (rv != 0)
		troupe__task_spec__free_unpacked(t, NULL);
	return rv;
}

static void
api_list_tasks(Troupe__Troupe_Service *svc, const Troupe__ListTasksRequest *in,
               Troupe__ListTasksReply_Closure closure, void *call)
{
	Troupe__ListTasksReply rep = TROUPE__LIST_TASKS_REPLY__INIT;
	api_vec                v = {0};
	int rv = store_list_tasks(api_sched(svc)->st, api_task_cb, &v);

	(void)in;
	if (rv != 0)
		rpc_fail(call, rv, "cannot list tasks: %s",
		         troupe_strerror(rv));
	else {
		rep.tasks = (Troupe__TaskSpec **)v.v;
		rep.n_tasks = v.n;
		closure(&rep, call);
	}
	for (size_t i = 0; i < v.n; i++)
		troupe__task_spec__free_unpacked(v.v[i], NULL);
	free(v.v);
}

static void
api_delete_task(Troupe__Troupe_Service          *svc,
                const Troupe__DeleteTaskRequest *in,
                Troupe__DeleteTaskReply_Closure closure, void *call)
{
	sched                  *s = api_sched(svc);
	Troupe__DeleteTaskReply rep = TROUPE__DELETE_TASK_REPLY__INIT;
	int                     rv;

	if ((rv = store_begin(s->st)) == 0)
		rv = store_delete_task(s->st, in->name);
	if (rv == TROUPE_ENOTFOUND) {
		store_rollback(s->st);
		rpc_fail(call, rv, "no task '%.64s'", in->name);
		return;
	}
	if (api_registry_commit(s, rv, call) == 0)
		closure(&rep, call);
}

static void
api_register_actor(Troupe__Troupe_Service             *svc,
                   const Troupe__RegisterActorRequest *in,
                   Troupe__RegisterActorReply_Closure closure, void *call)
{
	sched                     *s = api_sched(svc);
	Troupe__RegisterActorReply rep = TROUPE__REGISTER_ACTOR_REPLY__INIT;
	char                       why[256];
	int                        rv;

	if (in->env == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "env is required");
		return;
	}
	if (names_check("actor name", in->env->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if (in->env->command[0] == '\0' || in->env->replica_count == 0) {
		rpc_fail(
		    call, TROUPE_EINVAL,
		    "actor %s needs a command (--cmd) and at least one replica",
		    in->env->name);
		return;
	}
	if ((rv = store_begin(s->st)) == 0)
		rv = store_put_actor(s->st, in->env, in->replace);
	if (rv == TROUPE_EEXIST) {
		store_rollback(s->st);
		rpc_fail(call, rv,
		         "actor '%s' already exists (replace it with "
		         "--replace)",
		         in->env->name);
		return;
	}
	if (api_registry_commit(s, rv, call) != 0)
		return;
	rep.env = in->env;
	closure(&rep, call);
}

static void
api_get_actor(Troupe__Troupe_Service *svc, const Troupe__GetActorRequest *in,
              Troupe__GetActorReply_Closure closure, void *call)
{
	Troupe__GetActorReply   rep = TROUPE__GET_ACTOR_REPLY__INIT;
	Troupe__ListActorsReply all = TROUPE__LIST_ACTORS_REPLY__INIT;
	int rv = actors_list(api_sched(svc), &all, in->name);

	if (rv != 0)
		rpc_fail(call, rv, "cannot read actors: %s",
		         troupe_strerror(rv));
	else if (all.n_actors == 0)
		rpc_fail(call, TROUPE_ENOTFOUND, "no actor '%.64s'", in->name);
	else {
		rep.actor = all.actors[0];
		closure(&rep, call);
	}
	actors_list_free(&all);
}

static void
api_list_actors(Troupe__Troupe_Service          *svc,
                const Troupe__ListActorsRequest *in,
                Troupe__ListActorsReply_Closure closure, void *call)
{
	Troupe__ListActorsReply rep = TROUPE__LIST_ACTORS_REPLY__INIT;
	int                     rv = actors_list(api_sched(svc), &rep, NULL);

	(void)in;
	if (rv != 0)
		rpc_fail(call, rv, "cannot list actors: %s",
		         troupe_strerror(rv));
	else
		closure(&rep, call);
	actors_list_free(&rep);
}

static void
api_delete_actor(Troupe__Troupe_Service           *svc,
                 const Troupe__DeleteActorRequest *in,
                 Troupe__DeleteActorReply_Closure closure, void *call)
{
	sched                   *s = api_sched(svc);
	Troupe__DeleteActorReply rep = TROUPE__DELETE_ACTOR_REPLY__INIT;
	int                      rv;

	if ((rv = store_begin(s->st)) == 0)
		rv = store_delete_actor(s->st, in->name);
	if (rv == TROUPE_ENOTFOUND) {
		store_rollback(s->st);
		rpc_fail(call, rv, "no actor '%.64s'", in->name);
		return;
	}
	if (api_registry_commit(s, rv, call) == 0)
		closure(&rep, call);
}

/* Fills info (pointing into w) for ListWorkers/DrainWorker. */
static int
api_worker_view(const worker *w, Troupe__WorkerInfo *info,
                Troupe__Resources *cap)
{
	troupe__worker_info__init(info);
	troupe__resources__init(cap);
	info->id = (char *)w->id;
	info->name = w->name;
	info->host = w->host;
	info->slots = w->slots;
	info->running = (uint32_t)w->n_running;
	cap->cpu_milli = w->cpu_milli;
	cap->mem_bytes = w->mem_bytes;
	info->capacity = cap;
	info->state = w->state;
	info->registered_ms = w->registered_ms;
	info->last_seen_ms = w->last_seen_ms;
	info->items_done = w->items_done;
	info->pid = w->pid;
	if (w->n_labels > 0) {
		info->labels = calloc(w->n_labels, sizeof(*info->labels));
		if (info->labels == NULL)
			return TROUPE_ENOMEM;
		for (size_t i = 0; i < w->n_labels; i++) {
			info->labels[i] = malloc(sizeof(**info->labels));
			if (info->labels[i] == NULL)
				return TROUPE_ENOMEM;
			troupe__worker_info__labels_entry__init(
			    info->labels[i]);
			info->labels[i]->key = w->label_keys[i];
			info->labels[i]->value = w->label_vals[i];
			info->n_labels++;
		}
	}
	return 0;
}

static void
api_worker_view_free(Troupe__WorkerInfo *info)
{
	for (size_t i = 0; i < info->n_labels; i++)
		free(info->labels[i]);
	free(info->labels);
}

static void
api_list_workers(Troupe__Troupe_Service           *svc,
                 const Troupe__ListWorkersRequest *in,
                 Troupe__ListWorkersReply_Closure closure, void *call)
{
	sched                   *s = api_sched(svc);
	Troupe__ListWorkersReply rep = TROUPE__LIST_WORKERS_REPLY__INIT;
	Troupe__WorkerInfo      *infos = NULL, **ps = NULL;
	Troupe__Resources       *caps = NULL;
	size_t                   n = 0, i = 0;
	int                      rv = 0;

	(void)in;
	for (worker *w = s->workers; w != NULL; w = w->next)
		n++;
	infos = calloc(n + 1, sizeof(*infos));
	caps = calloc(n + 1, sizeof(*caps));
	ps = calloc(n + 1, sizeof(*ps));
	if (infos == NULL || caps == NULL || ps == NULL)
		rv = TROUPE_ENOMEM;
	for (worker *w = s->workers; rv == 0 && w != NULL; w = w->next, i++) {
		rv = api_worker_view(w, &infos[i], &caps[i]);
		ps[i] = &infos[i];
	}
	if (rv != 0)
		rpc_fail(call, rv, "out of memory");
	else {
		rep.workers = ps;
		rep.n_workers = n;
		closure(&rep, call);
	}
	for (size_t k = 0; infos != NULL && k < n; k++)
		api_worker_view_free(&infos[k]);
	free(infos);
	free(caps);
	free(ps);
}

static void
api_drain_worker(Troupe__Troupe_Service           *svc,
                 const Troupe__DrainWorkerRequest *in,
                 Troupe__DrainWorkerReply_Closure closure, void *call)
{
	sched                   *s = api_sched(svc);
	Troupe__DrainWorkerReply rep = TROUPE__DRAIN_WORKER_REPLY__INIT;
	Troupe__WorkerInfo       info;
	Troupe__Resources        cap;
	worker                  *w = NULL;

	for (worker *o = s->workers; o != NULL && w == NULL; o = o->next)
		if (strcmp(o->id, in->id) == 0 || strcmp(o->name, in->id) == 0)
			w = o;
	if (w == NULL) {
		rpc_fail(call, TROUPE_ENOTFOUND, "no worker '%.64s'", in->id);
		return;
	}
	w->state = TROUPE__WORKER_STATE__WORKER_DRAINING;
	worker_answer_pull(s, w);
	if (api_worker_view(w, &info, &cap) != 0)
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
	else {
		rep.worker = &info;
		closure(&rep, call);
	}
	api_worker_view_free(&info);
}

static void
api_get_health(Troupe__Troupe_Service *svc, const Troupe__GetHealthRequest *in,
               Troupe__GetHealthReply_Closure closure, void *call)
{
	sched                 *s = api_sched(svc);
	Troupe__GetHealthReply rep = TROUPE__GET_HEALTH_REPLY__INIT;

	(void)in;
	rep.version = TROUPE_VERSION;
	rep.uptime_ms = troupe_now_ms() - s->started_ms;
	for (worker *w = s->workers; w != NULL; w = w->next)
		rep.workers++;
	for (exec *e = s->execs; e != NULL; e = e->next)
		rep.active_executions++;
	rep.state_dir = (char *)s->opts.state_dir;
	closure(&rep, call);
}

ProtobufCService *
api_service(sched *s)
{
	static api_svc svc = {TROUPE__TROUPE__INIT(api_), NULL};

	svc.s = s;
	return &svc.svc.base;
}
