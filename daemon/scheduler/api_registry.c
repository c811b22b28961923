/*
 * The API's registry and cluster calls (see api.h): tasks and actor
 * environments registered by name, workers, health.
 *
 * Async contract: the scheduler's loop thread; calls down to core.c,
 * actors.c and the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "grow.h"
#include "log.h"
#include "troupe/error.h"

void
api_register_task(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                           *a = ctx;
	sched                             *s = a->s;
	const Troupe__RegisterTaskRequest *in = msg;
	Troupe__RegisterTaskReply rep = TROUPE__REGISTER_TASK_REPLY__INIT;
	int                       rv;

	Troupe__TaskSpec t;

	if (api_check_task_or_fail(in->task, call) != 0)
		return;
	t = *in->task;
	t.project = (char *)api_project(call); /* the caller's, always */
	if ((rv = store_begin(s->st)) == 0)
		rv = store_put_task(s->st, &t, in->replace);
	if (rv == TROUPE_EEXIST) {
		store_rollback(s->st);
		rpc_fail(call, rv,
		         "task '%s' already exists (replace it with "
		         "--replace)",
		         in->task->name);
		return;
	}
	if (api_registry_commit_or_fail(s, rv, call) != 0)
		return;
	rep.task = &t;
	rpc_reply(call, &rep.base);
}

void
api_get_task(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                      *a = ctx;
	sched                        *s = a->s;
	const Troupe__GetTaskRequest *in = msg;
	Troupe__GetTaskReply          rep = TROUPE__GET_TASK_REPLY__INIT;
	char                          key[STORE_KEY_MAX];
	int                           rv;

	store_key(api_project(call), in->name, key, sizeof(key));
	rv = store_get_task(s->st, key, &rep.task);

	if (rv != 0) {
		rpc_fail(call, rv,
		         rv == TROUPE_ENOTFOUND ? "no task '%.64s'"
		                                : "cannot read task %.64s",
		         in->name);
		return;
	}
	rpc_reply(call, &rep.base);
	troupe__task_spec__free_unpacked(rep.task, NULL);
}

typedef struct api_vec {
	void      **v;
	size_t      n, cap;
	const char *project; /* keep only this project's (NULL: all) */
} api_vec;

static int
api_vec_push(void *arg, void *p)
{
	api_vec *a = arg;

	if (a->n == a->cap) {
		void **v = grow_array(a->v, &a->cap, sizeof(*v), 16);

		if (v == NULL)
			return TROUPE_ENOMEM;
		a->v = v;
	}
	a->v[a->n++] = p;
	return 0;
}

static int
api_task_cb(void *arg, Troupe__TaskSpec *t)
{
	api_vec *v = arg;
	int      rv;

	if (v->project != NULL &&
	    strcmp(t->project[0] != '\0' ? t->project : STORE_DEFAULT_PROJECT,
	           v->project) != 0) {
		troupe__task_spec__free_unpacked(t, NULL);
		return 0;
	}
	if ((rv = api_vec_push(arg, t)) != 0)
		troupe__task_spec__free_unpacked(t, NULL);
	return rv;
}

void
api_list_tasks(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                        *a = ctx;
	sched                          *s = a->s;
	const Troupe__ListTasksRequest *in = msg;
	Troupe__ListTasksReply          rep = TROUPE__LIST_TASKS_REPLY__INIT;
	api_vec                         v = {0};
	int                             rv;

	v.project = api_list_project(call);
	rv = store_list_tasks(s->st, api_task_cb, &v);

	(void)in;
	if (rv != 0)
		rpc_fail(call, rv, "cannot list tasks: %s",
		         troupe_strerror(rv));
	else {
		rep.tasks = (Troupe__TaskSpec **)v.v;
		rep.n_tasks = v.n;
		rpc_reply(call, &rep.base);
	}
	for (size_t i = 0; i < v.n; i++)
		troupe__task_spec__free_unpacked(v.v[i], NULL);
	free(v.v);
}

void
api_delete_task(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                         *a = ctx;
	sched                           *s = a->s;
	const Troupe__DeleteTaskRequest *in = msg;
	Troupe__DeleteTaskReply          rep = TROUPE__DELETE_TASK_REPLY__INIT;
	int                              rv;

	if ((rv = store_begin(s->st)) == 0)
		rv = store_delete_task(
		    s->st, api_key(call, in->name, (char[STORE_KEY_MAX]){0}));
	if (rv == TROUPE_ENOTFOUND) {
		store_rollback(s->st);
		rpc_fail(call, rv, "no task '%.64s'", in->name);
		return;
	}
	if (api_registry_commit_or_fail(s, rv, call) == 0)
		rpc_reply(call, &rep.base);
}

void
api_register_actor(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                            *a = ctx;
	sched                              *s = a->s;
	const Troupe__RegisterActorRequest *in = msg;
	Troupe__RegisterActorReply rep = TROUPE__REGISTER_ACTOR_REPLY__INIT;
	int                        rv;

	Troupe__ActorEnv env;

	if (api_check_actor_or_fail(in->env, call) != 0)
		return;
	env = *in->env;
	env.project = (char *)api_project(call); /* the caller's, always */
	if ((rv = store_begin(s->st)) == 0)
		rv = store_put_actor(s->st, &env, in->replace);
	if (rv == TROUPE_EEXIST) {
		store_rollback(s->st);
		rpc_fail(call, rv,
		         "actor '%s' already exists (replace it with "
		         "--replace)",
		         in->env->name);
		return;
	}
	if (api_registry_commit_or_fail(s, rv, call) != 0)
		return;
	rep.env = &env;
	rpc_reply(call, &rep.base);
}

void
api_get_actor(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                       *a = ctx;
	sched                         *s = a->s;
	const Troupe__GetActorRequest *in = msg;
	Troupe__GetActorReply          rep = TROUPE__GET_ACTOR_REPLY__INIT;
	Troupe__ListActorsReply        all = TROUPE__LIST_ACTORS_REPLY__INIT;
	int                            rv = actors_list(&s->act, &all,
	                                                api_key(call, in->name, (char[STORE_KEY_MAX]){0}),
	                                                api_project(call));

	if (rv != 0)
		rpc_fail(call, rv, "cannot read actors: %s",
		         troupe_strerror(rv));
	else if (all.n_actors == 0)
		rpc_fail(call, TROUPE_ENOTFOUND, "no actor '%.64s'", in->name);
	else {
		rep.actor = all.actors[0];
		rpc_reply(call, &rep.base);
	}
	actors_list_free(&all);
}

void
api_list_actors(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                         *a = ctx;
	sched                           *s = a->s;
	const Troupe__ListActorsRequest *in = msg;
	Troupe__ListActorsReply          rep = TROUPE__LIST_ACTORS_REPLY__INIT;
	int rv = actors_list(&s->act, &rep, NULL, api_list_project(call));

	(void)in;
	if (rv != 0)
		rpc_fail(call, rv, "cannot list actors: %s",
		         troupe_strerror(rv));
	else
		rpc_reply(call, &rep.base);
	actors_list_free(&rep);
}

void
api_delete_actor(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                          *a = ctx;
	sched                            *s = a->s;
	const Troupe__DeleteActorRequest *in = msg;
	Troupe__DeleteActorReply rep = TROUPE__DELETE_ACTOR_REPLY__INIT;
	int                      rv;

	if ((rv = store_begin(s->st)) == 0)
		rv = store_delete_actor(
		    s->st, api_key(call, in->name, (char[STORE_KEY_MAX]){0}));
	if (rv == TROUPE_ENOTFOUND) {
		store_rollback(s->st);
		rpc_fail(call, rv, "no actor '%.64s'", in->name);
		return;
	}
	if (api_registry_commit_or_fail(s, rv, call) == 0)
		rpc_reply(call, &rep.base);
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

void
api_list_workers(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                          *a = ctx;
	sched                            *s = a->s;
	const Troupe__ListWorkersRequest *in = msg;
	Troupe__ListWorkersReply rep = TROUPE__LIST_WORKERS_REPLY__INIT;
	Troupe__WorkerInfo      *infos = NULL, **ps = NULL;
	Troupe__Resources       *caps = NULL;
	size_t                   n = 0, i = 0;
	int                      rv = 0;

	(void)in;
	for (worker *w = list_first(&s->workers); w != NULL;
	     w = list_next(&s->workers, w))
		n++;
	infos = calloc(n + 1, sizeof(*infos));
	caps = calloc(n + 1, sizeof(*caps));
	ps = calloc(n + 1, sizeof(*ps));
	if (infos == NULL || caps == NULL || ps == NULL)
		rv = TROUPE_ENOMEM;
	for (worker *w = list_first(&s->workers); rv == 0 && w != NULL;
	     w = list_next(&s->workers, w), i++) {
		rv = api_worker_view(w, &infos[i], &caps[i]);
		ps[i] = &infos[i];
	}
	if (rv != 0)
		rpc_fail(call, rv, "out of memory");
	else {
		rep.workers = ps;
		rep.n_workers = n;
		rpc_reply(call, &rep.base);
	}
	for (size_t k = 0; infos != NULL && k < n; k++)
		api_worker_view_free(&infos[k]);
	free(infos);
	free(caps);
	free(ps);
}

void
api_drain_worker(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                          *a = ctx;
	sched                            *s = a->s;
	const Troupe__DrainWorkerRequest *in = msg;
	Troupe__DrainWorkerReply rep = TROUPE__DRAIN_WORKER_REPLY__INIT;
	Troupe__WorkerInfo       info;
	Troupe__Resources        cap;
	worker                  *w = NULL;

	for (worker *o = list_first(&s->workers); o != NULL && w == NULL;
	     o = list_next(&s->workers, o))
		if (strcmp(o->id, in->id) == 0 || strcmp(o->name, in->id) == 0)
			w = o;
	if (w == NULL) {
		rpc_fail(call, TROUPE_ENOTFOUND, "no worker '%.64s'", in->id);
		return;
	}
	sched_drain_worker(s, w);
	sched_answer_pull(s, w);
	if (api_worker_view(w, &info, &cap) != 0)
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
	else {
		rep.worker = &info;
		rpc_reply(call, &rep.base);
	}
	api_worker_view_free(&info);
}

void
api_get_health(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                        *a = ctx;
	sched                          *s = a->s;
	const Troupe__GetHealthRequest *in = msg;
	Troupe__GetHealthReply          rep = TROUPE__GET_HEALTH_REPLY__INIT;

	(void)in;
	rep.version = TROUPE_VERSION;
	rep.uptime_ms = troupe_now_ms() - s->started_ms;
	for (worker *w = list_first(&s->workers); w != NULL;
	     w = list_next(&s->workers, w))
		rep.workers++;
	for (exec *e = list_first(&s->execs); e != NULL;
	     e = list_next(&s->execs, e))
		rep.active_executions++;
	rep.state_dir = (char *)s->opts.state_dir;
	rpc_reply(call, &rep.base);
}
