/*
 * The public API service (see api.h): the method table rpc.c serves on
 * the API listener, and the hook through which the scheduler tells the
 * watchers of api_exec.c that a commit landed or time passed.
 *
 * Async contract: the scheduler's loop thread.
 */
#include "api.h"

static const rpc_method api_methods[] = {
    {"CreateExecution", api_create_execution},
    {"AppendItems", api_append_items},
    {"SealExecution", api_seal_execution},
    {"GetExecution", api_get_execution},
    {"ListExecutions", api_list_executions},
    {"WatchExecution", api_watch_execution},
    {"AbortExecution", api_abort_execution},
    {"GetOutputs", api_get_outputs},
    {"RegisterTask", api_register_task},
    {"GetTask", api_get_task},
    {"ListTasks", api_list_tasks},
    {"DeleteTask", api_delete_task},
    {"RegisterActor", api_register_actor},
    {"GetActor", api_get_actor},
    {"ListActors", api_list_actors},
    {"DeleteActor", api_delete_actor},
    {"ListWorkers", api_list_workers},
    {"DrainWorker", api_drain_worker},
    {"GetHealth", api_get_health},
};

const rpc_service *
api_service(sched *s)
{
	static api_ctx     a;
	static rpc_service svc = {&troupe__troupe__descriptor, api_methods,
	                          sizeof(api_methods) / sizeof(api_methods[0]),
	                          &a};

	a.s = s;
	api_watchers_init(&a);
	if (s != NULL)
		sched_set_hook(s, api_watch_hook, &a);
	return &svc;
}
