/*
 * The API's administration calls (see api.h): projects with their quotas,
 * and the tokens that act in them (README, "Projects and roles").  Only
 * an admin token, or the local owner of the cluster, reaches these (the
 * method table says so).  A token's secret leaves the scheduler once, in
 * CreateToken's reply; it is stored hashed and never logged.
 *
 * Async contract: the scheduler's loop thread; each change is one
 * transaction, committed before it is answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "grow.h"
#include "log.h"
#include "names.h"
#include "store.pb-c.h"
#include "troupe/error.h"

/* Most items running and replicas alive a quota may name. */
#define API_QUOTA_MAX 1000000u

void
api_create_project(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                            *a = ctx;
	sched                              *s = a->s;
	const Troupe__CreateProjectRequest *in = msg;
	Troupe__CreateProjectReply rep = TROUPE__CREATE_PROJECT_REPLY__INIT;
	Troupe__Project            p;
	char                       why[256];
	int                        rv;

	if (in->project == NULL) {
		rpc_fail(call, TROUPE_EINVAL, "project is required");
		return;
	}
	if (names_check("project", in->project->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if (in->project->max_running > API_QUOTA_MAX ||
	    in->project->max_replicas > API_QUOTA_MAX) {
		rpc_fail(call, TROUPE_EINVAL, "quotas must be 0..%u",
		         API_QUOTA_MAX);
		return;
	}
	p = *in->project;
	p.created_ms = troupe_now_ms();
	if ((rv = store_begin(s->st)) == 0)
		rv = store_named_put(s->st, STORE_K_PROJECT, p.name, &p.base,
		                     in->replace);
	if (rv == TROUPE_EEXIST) {
		store_rollback(s->st);
		rpc_fail(call, rv,
		         "project '%s' already exists (change it with "
		         "--replace)",
		         p.name);
		return;
	}
	if (api_registry_commit_or_fail(s, rv, call) != 0)
		return;
	projects_set(&s->projects, p.name, &p);
	rep.project = &p;
	rpc_reply(call, &rep.base);
}

typedef struct api_rows {
	ProtobufCMessage **v;
	size_t             n, cap;
} api_rows;

static int
api_rows_add(void *arg, ProtobufCMessage *m)
{
	api_rows *r = arg;

	if (r->n == r->cap) {
		ProtobufCMessage **v =
		    grow_array(r->v, &r->cap, sizeof(*v), 16);

		if (v == NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			return TROUPE_ENOMEM;
		}
		r->v = v;
	}
	r->v[r->n++] = m;
	return 0;
}

static void
api_rows_free(api_rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		protobuf_c_message_free_unpacked(r->v[i], NULL);
	free(r->v);
}

void
api_list_projects(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                  *a = ctx;
	Troupe__ListProjectsReply rep = TROUPE__LIST_PROJECTS_REPLY__INIT;
	api_rows                  r = {0};
	int rv = store_named_list(a->s->st, STORE_K_PROJECT, api_rows_add, &r);

	(void)msg;
	if (rv != 0)
		rpc_fail(call, rv, "cannot list projects: %s",
		         troupe_strerror(rv));
	else {
		rep.projects = (Troupe__Project **)r.v;
		rep.n_projects = r.n;
		rpc_reply(call, &rep.base);
	}
	api_rows_free(&r);
}

void
api_delete_project(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                            *a = ctx;
	sched                              *s = a->s;
	const Troupe__DeleteProjectRequest *in = msg;
	Troupe__DeleteProjectReply rep = TROUPE__DELETE_PROJECT_REPLY__INIT;
	int                        rv;

	if ((rv = store_begin(s->st)) == 0)
		rv = store_named_delete(s->st, STORE_K_PROJECT, in->name);
	if (rv == TROUPE_ENOTFOUND) {
		store_rollback(s->st);
		rpc_fail(call, rv, "no project '%.64s'", in->name);
		return;
	}
	if (api_registry_commit_or_fail(s, rv, call) != 0)
		return;
	/* Its executions, tasks and environments stay, without quotas. */
	projects_set(&s->projects, in->name, NULL);
	rpc_reply(call, &rep.base);
}

void
api_create_token(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                          *a = ctx;
	sched                            *s = a->s;
	const Troupe__CreateTokenRequest *in = msg;
	Troupe__CreateTokenReply rep = TROUPE__CREATE_TOKEN_REPLY__INIT;
	Troupe__TokenInfo       *info = NULL;
	ProtobufCMessage        *p = NULL;
	const char              *project = in->project;
	char                    *secret = NULL;
	char                     why[256];
	int                      rv;

	if (in->role < TROUPE__ROLE__ROLE_READ ||
	    in->role > TROUPE__ROLE__ROLE_WORKER) {
		rpc_fail(call, TROUPE_EINVAL,
		         "role must be read, submit, admin or worker");
		return;
	}
	/* Workers serve every project; read and submit tokens act in one
	 * (the default unless named); an admin token in one, or in all when
	 * it names none. */
	if (in->role == TROUPE__ROLE__ROLE_WORKER)
		project = "";
	else if (project[0] == '\0' && in->role != TROUPE__ROLE__ROLE_ADMIN)
		project = STORE_DEFAULT_PROJECT;
	if (project[0] != '\0' &&
	    names_check("project", project, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if (project[0] != '\0' && strcmp(project, STORE_DEFAULT_PROJECT) != 0) {
		rv = store_named_get(s->st, STORE_K_PROJECT, project, &p);
		if (p != NULL)
			protobuf_c_message_free_unpacked(p, NULL);
		if (rv != 0) {
			rpc_fail(
			    call, rv,
			    rv == TROUPE_ENOTFOUND
			        ? "no project '%s' (create it with `troupe "
			          "project create`)"
			        : "cannot read project %s",
			    project);
			return;
		}
	}
	if ((rv = store_begin(s->st)) == 0)
		rv = auth_create(&s->auth, project, in->role, in->expires_s,
		                 &info, &secret);
	if (api_registry_commit_or_fail(s, rv, call) != 0)
		goto done;
	rep.token = info;
	rep.secret = secret;
	rpc_reply(call, &rep.base);
done:
	if (info != NULL)
		troupe__token_info__free_unpacked(info, NULL);
	if (secret != NULL) {
		memset(secret, 0, strlen(secret));
		free(secret);
	}
}

void
api_list_tokens(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                *a = ctx;
	Troupe__ListTokensReply rep = TROUPE__LIST_TOKENS_REPLY__INIT;
	Troupe__TokenInfo     **infos = NULL;
	api_rows                r = {0};
	int rv = store_named_list(a->s->st, STORE_K_TOKEN, api_rows_add, &r);

	(void)msg;
	if (rv == 0 && (infos = calloc(r.n + 1, sizeof(*infos))) == NULL)
		rv = TROUPE_ENOMEM;
	if (rv != 0)
		rpc_fail(call, rv, "cannot list tokens: %s",
		         troupe_strerror(rv));
	else {
		/* The infos only: the hashes stay in the scheduler. */
		for (size_t i = 0; i < r.n; i++)
			if (((Troupe__StoredToken *)r.v[i])->info != NULL)
				infos[rep.n_tokens++] =
				    ((Troupe__StoredToken *)r.v[i])->info;
		rep.tokens = infos;
		rpc_reply(call, &rep.base);
	}
	free(infos);
	api_rows_free(&r);
}

void
api_revoke_token(void *ctx, const void *msg, rpc_call *call)
{
	api_ctx                          *a = ctx;
	sched                            *s = a->s;
	const Troupe__RevokeTokenRequest *in = msg;
	Troupe__RevokeTokenReply rep = TROUPE__REVOKE_TOKEN_REPLY__INIT;
	ProtobufCMessage        *m = NULL;
	Troupe__StoredToken     *t;
	int                      rv;

	if ((rv = store_begin(s->st)) == 0)
		rv = store_named_get(s->st, STORE_K_TOKEN, in->id, &m);
	if (rv == TROUPE_ENOTFOUND) {
		store_rollback(s->st);
		rpc_fail(call, rv, "no token '%.64s'", in->id);
		return;
	}
	t = (Troupe__StoredToken *)m;
	if (rv == 0 && t->info != NULL) {
		t->info->revoked = true;
		rv = store_named_put(s->st, STORE_K_TOKEN, in->id, m, 1);
	}
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	if (api_registry_commit_or_fail(s, rv, call) == 0)
		rpc_reply(call, &rep.base);
}
