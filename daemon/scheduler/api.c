/*
 * The public API service (see api.h): the method table rpc.c serves on
 * the API listener, and the hook through which the scheduler tells the
 * watchers of api_exec.c that a commit landed or time passed.
 *
 * Async contract: the scheduler's loop thread.
 */
#include "api.h"

/* Roles each method allows (README, "Projects and roles"): reading is
 * for read, submit and admin tokens; changing executions, tasks and
 * environments for submit and admin; the cluster's administration for
 * admin.  Worker tokens call nothing here.  Changes are audited. */
#define READ   (RPC_ROLE(TROUPE__ROLE__ROLE_READ) | SUBMIT)
#define SUBMIT (RPC_ROLE(TROUPE__ROLE__ROLE_SUBMIT) | ADMIN)
#define ADMIN  RPC_ROLE(TROUPE__ROLE__ROLE_ADMIN)

static const rpc_method api_methods[] = {
    {"CreateExecution", api_create_execution, SUBMIT, true},
    {"AppendItems", api_append_items, SUBMIT, false},
    {"SealExecution", api_seal_execution, SUBMIT, true},
    {"GetExecution", api_get_execution, READ, false},
    {"ListExecutions", api_list_executions, READ, false},
    {"WatchExecution", api_watch_execution, READ, false},
    {"AbortExecution", api_abort_execution, SUBMIT, true},
    {"GetOutputs", api_get_outputs, READ, false},
    {"RegisterTask", api_register_task, SUBMIT, true},
    {"GetTask", api_get_task, READ, false},
    {"ListTasks", api_list_tasks, READ, false},
    {"DeleteTask", api_delete_task, SUBMIT, true},
    {"RegisterActor", api_register_actor, SUBMIT, true},
    {"GetActor", api_get_actor, READ, false},
    {"ListActors", api_list_actors, READ, false},
    {"DeleteActor", api_delete_actor, SUBMIT, true},
    {"ListWorkers", api_list_workers, READ, false},
    {"DrainWorker", api_drain_worker, ADMIN, true},
    {"GetHealth", api_get_health, READ, false},
    {"CreateProject", api_create_project, ADMIN, true},
    {"ListProjects", api_list_projects, ADMIN, false},
    {"DeleteProject", api_delete_project, ADMIN, true},
    {"CreateToken", api_create_token, ADMIN, true},
    {"ListTokens", api_list_tokens, ADMIN, false},
    {"RevokeToken", api_revoke_token, ADMIN, true},
    {"GetLogs", api_get_logs, READ, false},
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
