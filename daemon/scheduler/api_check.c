/*
 * Checks and resolution shared by the API's handlers (see api.h): commit
 * or fail, look an execution up, validate a spec and resolve its task, a
 * task and an actor environment to register, the lines protocol's items.
 * Each function answers the call when it fails and says so in its name.
 *
 * Async contract: the scheduler's loop thread; calls down to core.c,
 * actors.c and the store only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "names.h"
#include "placeholder.h"
#include "troupe/env.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

static int api_check_actor_fields_or_fail(const Troupe__ActorEnv *env,
                                          rpc_call               *call);

/* Commits now; on failure answers call with the reason and returns it. */
int
api_commit_or_fail(sched *s, rpc_call *call)
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

/* Writes one registry change in its own transaction. */
int
api_registry_commit_or_fail(sched *s, int rv, rpc_call *call)
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

/* Loads the execution id, from memory or the store, into *out: either
 * *live (an active one) or *row (a finished one, caller frees). */
int
api_lookup_or_fail(sched *s, const char *id, exec **live,
                   Troupe__Execution **row, rpc_call *call)
{
	int rv;

	*live = sched_find_exec(s, id);
	*row = NULL;
	if (*live != NULL) {
		if (api_sees(call, (*live)->spec->project))
			return 0;
		*live = NULL;
		/* Another project's: it does not exist for this caller. */
		rpc_fail(call, TROUPE_ENOTFOUND, "no execution '%.64s'", id);
		return TROUPE_ENOTFOUND;
	}
	if (id[0] == '\0') {
		rpc_fail(call, TROUPE_EINVAL, "an execution id is required");
		return TROUPE_EINVAL;
	}
	rv = store_get_execution(s->st, id, row);
	if (rv == 0 &&
	    ((*row)->spec == NULL || !api_sees(call, (*row)->spec->project))) {
		troupe__execution__free_unpacked(*row, NULL);
		*row = NULL;
		rv = TROUPE_ENOTFOUND;
	}
	if (rv == TROUPE_ENOTFOUND)
		rpc_fail(call, rv, "no execution '%.64s'", id);
	else if (rv != 0)
		rpc_fail(call, rv, "cannot read execution: %s",
		         troupe_strerror(rv));
	return rv;
}

const char *
api_project(const rpc_call *call)
{
	const rpc_identity *who = rpc_call_identity(call);

	return who->project[0] != '\0' ? who->project : STORE_DEFAULT_PROJECT;
}

const char *
api_list_project(const rpc_call *call)
{
	const rpc_identity *who = rpc_call_identity(call);

	return who->project[0] != '\0' ? who->project : NULL;
}

const char *
api_key(const rpc_call *call, const char *name, char key[STORE_KEY_MAX])
{
	store_key(api_project(call), name, key, STORE_KEY_MAX);
	return key;
}

bool
api_sees(const rpc_call *call, const char *project)
{
	const char *mine = api_list_project(call);

	if (mine == NULL)
		return true; /* an admin naming no project sees them all */
	if (project == NULL || project[0] == '\0')
		project = STORE_DEFAULT_PROJECT;
	return strcmp(mine, project) == 0;
}

/* Finds an active execution that still takes changes, or answers why not. */
exec *
api_open_exec_or_fail(sched *s, const char *id, rpc_call *call)
{
	exec              *e = NULL;
	Troupe__Execution *row = NULL;

	if (api_lookup_or_fail(s, id, &e, &row, call) != 0)
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

/* Checks that an environment (what's names it) has at most
 * API_ENV_MAX_ENTRIES entries of API_ENV_MAX_BYTES in all, each KEY=VALUE;
 * else answers call. */
static int
api_check_env_or_fail(const char *what, char *const *env, size_t n,
                      rpc_call *call)
{
	size_t bytes = 0;

	if (n > API_ENV_MAX_ENTRIES) {
		rpc_fail(call, TROUPE_EINVAL,
		         "%s has %zu environment entries; at most %d are "
		         "allowed",
		         what, n, API_ENV_MAX_ENTRIES);
		return TROUPE_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (strchr(env[i], '=') == NULL || env[i][0] == '=') {
			rpc_fail(call, TROUPE_EINVAL,
			         "environment entry '%.64s' is not KEY=VALUE",
			         env[i]);
			return TROUPE_EINVAL;
		}
		bytes += strlen(env[i]) + 1;
	}
	if (bytes > API_ENV_MAX_BYTES) {
		rpc_fail(call, TROUPE_EINVAL,
		         "%s's environment holds %zu bytes; at most %d are "
		         "allowed",
		         what, bytes, API_ENV_MAX_BYTES);
		return TROUPE_EINVAL;
	}
	return 0;
}

/* Refuses a per-item command whose {} would not be one word (see
 * placeholder.h); else answers call. */
static int
api_check_placeholder_or_fail(const char *cmd, rpc_call *call)
{
	char why[512];
	int  rv = placeholder_check(cmd, why, sizeof(why));

	if (rv == TROUPE_ENOMEM)
		rpc_fail(call, rv, "out of memory");
	else if (rv != 0)
		rpc_fail(call, rv, "%s", why);
	return rv;
}

/* Adds the spec's environment to *task's (a registered task's): one
 * list, the spec's entries winning.  On failure answers call. */
static int
api_merge_env_or_fail(Troupe__TaskSpec **task, const Troupe__ExecutionSpec *sp,
                      rpc_call *call)
{
	Troupe__TaskSpec  t = **task;
	Troupe__TaskSpec *copy;
	char *const      *sets[2] = {(*task)->env, sp->env};
	size_t            sizes[2] = {(*task)->n_env, sp->n_env}, n = 0;
	char            **env = NULL;

	if (api_check_env_or_fail("the task", sets[0], sizes[0], call) != 0)
		return TROUPE_EINVAL;
	if (troupe_env_merge(sets, sizes, 2, &env, &n) != 0) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return TROUPE_ENOMEM;
	}
	t.env = env;
	t.n_env = n;
	copy = (Troupe__TaskSpec *)troupe_msg_copy(&t.base);
	free(env);
	if (copy == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return TROUPE_ENOMEM;
	}
	troupe__task_spec__free_unpacked(*task, NULL);
	*task = copy;
	return 0;
}

/* Checks a spec and resolves its task; on error answers call.  *task is
 * the caller's to free. */
int
api_resolve_or_fail(sched *s, const Troupe__ExecutionSpec *sp,
                    Troupe__TaskSpec **task, rpc_call *call)
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
	/* Bounded before anything is done with it. */
	if (api_check_env_or_fail("the execution", sp->env, sp->n_env, call) !=
	        0 ||
	    (sp->adhoc_actor != NULL &&
	     api_check_actor_fields_or_fail(sp->adhoc_actor, call) != 0))
		return TROUPE_EINVAL;
	if (sp->task[0] != '\0') {
		if (names_check("task name", sp->task, why, sizeof(why)) != 0) {
			rpc_fail(call, TROUPE_EINVAL, "%s", why);
			return TROUPE_EINVAL;
		}
		char key[STORE_KEY_MAX];

		store_key(sp->project, sp->task, key, sizeof(key));
		rv = store_get_task(s->st, key, task);
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
		if (sp->n_env > 0 && api_merge_env_or_fail(task, sp, call) != 0)
			goto fail;
	} else {
		Troupe__TaskSpec t = TROUPE__TASK_SPEC__INIT;

		t.command = sp->command;
		t.env = sp->env;
		t.n_env = sp->n_env;
		t.resources = sp->resources;
		t.actor = sp->actor;
		*task = (Troupe__TaskSpec *)troupe_msg_copy(&t.base);
		if (*task == NULL)
			goto oom;
	}
	/* The merge of the two: what the items get. */
	if (api_check_env_or_fail("the execution", (*task)->env, (*task)->n_env,
	                          call) != 0)
		goto fail;
	/* Per-item processes get the item in place of {}; replicas read
	 * items from stdin and never see it. */
	if (sp->actor[0] == '\0' && sp->adhoc_actor == NULL &&
	    (*task)->actor[0] == '\0' &&
	    api_check_placeholder_or_fail((*task)->command, call) != 0)
		goto fail;
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
int
api_check_lines_or_fail(const exec *e, uint64_t first,
                        const ProtobufCBinaryData *items, size_t n,
                        rpc_call *call)
{
	if (e->env == NULL ||
	    e->env->env->protocol != TROUPE__PROTOCOL__PROTOCOL_LINES)
		return 0;
	for (size_t i = 0; i < n; i++)
		/* An empty item's data may be NULL: memchr must not see
		 * it. */
		if (items[i].len > 0 &&
		    memchr(items[i].data, '\n', items[i].len) != NULL) {
			rpc_fail(call, TROUPE_EINVAL,
			         "item %llu holds a newline, which the lines "
			         "protocol "
			         "cannot carry (use --protocol frames)",
			         (unsigned long long)(first + i));
			return TROUPE_EINVAL;
		}
	return 0;
}

int
api_check_task_or_fail(const Troupe__TaskSpec *t, rpc_call *call)
{
	char why[256];

	if (t == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "task is required");
		return TROUPE_EINVAL;
	}
	if (names_check("task name", t->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return TROUPE_EINVAL;
	}
	if (t->retries > 100) {
		rpc_fail(call, TROUPE_EINVAL, "retries must be 0..100, not %u",
		         t->retries);
		return TROUPE_EINVAL;
	}
	if (t->command[0] == '\0') {
		rpc_fail(call, TROUPE_EINVAL, "task %s needs a command (--cmd)",
		         t->name);
		return TROUPE_EINVAL;
	}
	if (t->actor[0] != '\0' &&
	    names_check("actor name", t->actor, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return TROUPE_EINVAL;
	}
	if (api_check_env_or_fail("the task", t->env, t->n_env, call) != 0)
		return TROUPE_EINVAL;
	if (t->actor[0] == '\0' &&
	    api_check_placeholder_or_fail(t->command, call) != 0)
		return TROUPE_EINVAL;
	return 0;
}

/* The bounds of an actor environment, registered or ad hoc: replicas
 * 1..API_MAX_REPLICAS, a TTL of at most API_MAX_TTL_S, a protocol this
 * scheduler knows, a bounded environment.  Else answers call. */
static int
api_check_actor_fields_or_fail(const Troupe__ActorEnv *env, rpc_call *call)
{
	if (env->replica_count == 0 || env->replica_count > API_MAX_REPLICAS) {
		rpc_fail(call, TROUPE_EINVAL, "replicas must be 1..%d, not %u",
		         API_MAX_REPLICAS, env->replica_count);
		return TROUPE_EINVAL;
	}
	if (env->ttl_seconds > API_MAX_TTL_S) {
		rpc_fail(call, TROUPE_EINVAL,
		         "an actor's TTL must be at most %d seconds (7 days), "
		         "not %u",
		         API_MAX_TTL_S, env->ttl_seconds);
		return TROUPE_EINVAL;
	}
	if (protobuf_c_enum_descriptor_get_value(&troupe__protocol__descriptor,
	                                         (int)env->protocol) == NULL) {
		rpc_fail(call, TROUPE_EINVAL,
		         "unknown actor protocol %d (0 lines, 1 frames)",
		         (int)env->protocol);
		return TROUPE_EINVAL;
	}
	return api_check_env_or_fail("the actor environment", env->env,
	                             env->n_env, call);
}

int
api_check_actor_or_fail(const Troupe__ActorEnv *env, rpc_call *call)
{
	char why[256];

	if (env == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "env is required");
		return TROUPE_EINVAL;
	}
	if (names_check("actor name", env->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return TROUPE_EINVAL;
	}
	if (env->command[0] == '\0' || env->replica_count == 0) {
		rpc_fail(
		    call, TROUPE_EINVAL,
		    "actor %s needs a command (--cmd) and at least one replica",
		    env->name);
		return TROUPE_EINVAL;
	}
	return api_check_actor_fields_or_fail(env, call);
}
