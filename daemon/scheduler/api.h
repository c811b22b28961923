/*
 * The public API service (api.proto's Troupe): the top layer of the
 * scheduler with link.c (docs/design.md, "The scheduler's layers").  Its
 * handlers decode and check a request, call down into core.c (and
 * through it the layers below), and answer.
 *
 *   api.c           the service: its method table, the watchers' hook
 *   api_exec.c      executions: create, append, seal, get, list, watch,
 *                   abort, outputs
 *   api_registry.c  tasks, actor environments, workers, health
 *   api_admin.c     projects and tokens (admin only)
 *   api_logs.c      per-item logs (GetLogs)
 *   api_check.c     validation and resolution shared by the handlers;
 *                   each helper that answers the call on failure says so
 *                   in its name (..._or_fail)
 *
 * Async contract: the scheduler's loop thread, called by rpc.c with the
 * request unpacked.  Every change is committed before it is answered
 * (api_commit_or_fail); a WatchExecution is parked until the commit that
 * changes its execution, or its deadline (the sched hook).
 */
#ifndef TROUPE_SCHED_API_H
#define TROUPE_SCHED_API_H

#include "rpc.h"
#include "core.h"

/* The service for rpc_server_open, bound to s (static storage: one per
 * process, rebound by each call).  Registers the watchers' hook on s. */
const rpc_service *api_service(sched *s);

/* What the API's handlers share: the scheduler and the parked
 * WatchExecution calls (api_exec.c's). */
typedef struct api_ctx {
	sched *s;
	list   watchers;
} api_ctx;

/* The most an environment (an execution's, a task's, an actor
 * environment's) may hold: entries, and bytes counting a NUL each. */
#define API_ENV_MAX_ENTRIES 1024
#define API_ENV_MAX_BYTES   (1 << 20)
/* An actor environment's most replicas and longest TTL (7 days). */
#define API_MAX_REPLICAS 100000
#define API_MAX_TTL_S    (7 * 24 * 3600)

/* api_check.c */
/* The project a call acts in: its identity's, or "default" for an admin
 * naming none; the project to list (NULL: every one); whether the caller
 * may see something of project (""/NULL: the default project). */
const char *api_project(const rpc_call *call);
const char *api_list_project(const rpc_call *call);
bool        api_sees(const rpc_call *call, const char *project);
/* The store key of name in the caller's project, written into key (the
 * caller's) and returned. */
const char *api_key(const rpc_call *call, const char *name,
                    char key[STORE_KEY_MAX]);
int         api_commit_or_fail(sched *s, rpc_call *call);
int         api_registry_commit_or_fail(sched *s, int rv, rpc_call *call);
int         api_lookup_or_fail(sched *s, const char *id, exec **live,
                               Troupe__Execution **row, rpc_call *call);
exec       *api_open_exec_or_fail(sched *s, const char *id, rpc_call *call);
int         api_resolve_or_fail(sched *s, const Troupe__ExecutionSpec *sp,
                                Troupe__TaskSpec **task, rpc_call *call);
int         api_check_lines_or_fail(const exec *e, uint64_t first,
                                    const ProtobufCBinaryData *items, size_t n,
                                    rpc_call *call);
int         api_check_task_or_fail(const Troupe__TaskSpec *t, rpc_call *call);
int api_check_actor_or_fail(const Troupe__ActorEnv *env, rpc_call *call);

/* api_exec.c */
void        api_reply_execution(sched *s, rpc_call *call, const char *id,
                                const ProtobufCMessageDescriptor *desc);
void        api_watchers_init(api_ctx *a);
void        api_watch_hook(void *arg, sched_event ev);
rpc_handler api_create_execution, api_append_items, api_seal_execution,
    api_get_execution, api_list_executions, api_watch_execution,
    api_abort_execution, api_get_outputs;

/* api_admin.c */
rpc_handler api_create_project, api_list_projects, api_delete_project,
    api_create_token, api_list_tokens, api_revoke_token;

/* api_logs.c */
rpc_handler api_get_logs;

/* api_registry.c */
rpc_handler api_register_task, api_get_task, api_list_tasks, api_delete_task,
    api_register_actor, api_get_actor, api_list_actors, api_delete_actor,
    api_list_workers, api_drain_worker, api_get_health;

#endif
