/*
 * Tasks and actor environments registered by name, in the store (see
 * store.h for the contract).  Both kinds share their code; a store_named
 * says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "troupe/error.h"

/* What each kind of named row is: its statements and its message. */
typedef struct store_named {
	const char                       *what; /* for messages */
	const ProtobufCMessageDescriptor *desc;
	int                               insert, upsert, get, list, del;
} store_named;

static const store_named store_kinds[] = {
    [STORE_K_TASK] = {"task", &troupe__task_spec__descriptor, STORE_TASK_INSERT,
                      STORE_TASK_UPSERT, STORE_TASK_GET, STORE_TASK_LIST,
                      STORE_TASK_DELETE},
    [STORE_K_ACTOR] = {"actor environment", &troupe__actor_env__descriptor,
                       STORE_ACTOR_INSERT, STORE_ACTOR_UPSERT, STORE_ACTOR_GET,
                       STORE_ACTOR_LIST, STORE_ACTOR_DELETE},
    [STORE_K_PROJECT] = {"project", &troupe__project__descriptor,
                         STORE_PROJECT_INSERT, STORE_PROJECT_UPSERT,
                         STORE_PROJECT_GET, STORE_PROJECT_LIST,
                         STORE_PROJECT_DELETE},
    [STORE_K_TOKEN] = {"token", &troupe__stored_token__descriptor,
                       STORE_TOKEN_INSERT, STORE_TOKEN_UPSERT, STORE_TOKEN_GET,
                       STORE_TOKEN_LIST, STORE_TOKEN_DELETE},
};

void
store_key(const char *project, const char *name, char *buf, size_t len)
{
	if (project == NULL || project[0] == '\0' ||
	    strcmp(project, STORE_DEFAULT_PROJECT) == 0)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s/%s", project, name);
}

int
store_named_put(store *s, store_kind kind, const char *name,
                const ProtobufCMessage *m, int replace)
{
	const store_named *k = &store_kinds[kind];
	sqlite3_stmt      *st = s->st[replace ? k->upsert : k->insert];
	const void        *data = NULL;
	size_t             len = 0;
	int                rc;
	int                rv;

	if (name == NULL || name[0] == '\0')
		return store_failf(s, TROUPE_EINVAL, "%s has no name", k->what);
	if ((rv = store_pack(s, m, &data, &len)) != 0)
		return rv;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rv = store_bind_blob(s, st, 2, data, len)) != 0)
		goto fail;
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		rv = store_failf(s, TROUPE_EEXIST, "%s '%s' already exists",
		                 k->what, name);
	else if (rc != SQLITE_DONE)
		rv = store_fail(s, rc);
fail:
	store_done(st);
	return rv;
}

int
store_named_delete(store *s, store_kind kind, const char *name)
{
	const store_named *k = &store_kinds[kind];
	int                rv;

	sqlite3_bind_text(s->st[k->del], 1, name, -1, SQLITE_STATIC);
	if ((rv = store_run(s, s->st[k->del])) != 0)
		return rv;
	if (sqlite3_changes(s->db) == 0)
		return store_failf(s, TROUPE_ENOTFOUND, "no %s '%s'", k->what,
		                   name);
	return 0;
}

int
store_named_get(store *s, store_kind kind, const char *name,
                ProtobufCMessage **out)
{
	const store_named *k = &store_kinds[kind];

	return store_get_one(s, s->st[k->get], name, k->desc, k->what, out);
}

typedef struct store_named_ctx {
	store_msg_cb cb;
	void        *arg;
} store_named_ctx;

static int
store_named_row(void *ctx, int64_t seq, ProtobufCMessage *m)
{
	store_named_ctx *c = ctx;

	(void)seq;
	return c->cb(c->arg, m);
}

int
store_named_list(store *s, store_kind kind, store_msg_cb cb, void *arg)
{
	const store_named *k = &store_kinds[kind];
	store_named_ctx    ctx = {cb, arg};

	return store_each(s, s->st[k->list], k->desc, k->what, store_named_row,
	                  &ctx);
}

int
store_put_task(store *s, const Troupe__TaskSpec *t, int replace)
{
	char key[STORE_KEY_MAX];

	store_key(t->project, t->name, key, sizeof(key));
	return store_named_put(s, STORE_K_TASK, key, &t->base, replace);
}

int
store_get_task(store *s, const char *key, Troupe__TaskSpec **out)
{
	ProtobufCMessage *m = NULL;
	int               rv = store_named_get(s, STORE_K_TASK, key, &m);

	if (rv == 0)
		*out = (Troupe__TaskSpec *)m;
	return rv;
}

/* The typed callbacks of store_list_tasks and store_list_actors. */
typedef struct store_typed {
	store_task_cb  task;
	store_actor_cb actor;
	void          *arg;
} store_typed;

static int
store_typed_row(void *arg, ProtobufCMessage *m)
{
	store_typed *t = arg;

	if (t->task != NULL)
		return t->task(t->arg, (Troupe__TaskSpec *)m);
	return t->actor(t->arg, (Troupe__ActorEnv *)m);
}

int
store_list_tasks(store *s, store_task_cb cb, void *arg)
{
	store_typed t = {cb, NULL, arg};

	return store_named_list(s, STORE_K_TASK, store_typed_row, &t);
}

int
store_delete_task(store *s, const char *key)
{
	return store_named_delete(s, STORE_K_TASK, key);
}

int
store_put_actor(store *s, const Troupe__ActorEnv *a, int replace)
{
	char key[STORE_KEY_MAX];

	store_key(a->project, a->name, key, sizeof(key));
	return store_named_put(s, STORE_K_ACTOR, key, &a->base, replace);
}

int
store_get_actor(store *s, const char *key, Troupe__ActorEnv **out)
{
	ProtobufCMessage *m = NULL;
	int               rv = store_named_get(s, STORE_K_ACTOR, key, &m);

	if (rv == 0)
		*out = (Troupe__ActorEnv *)m;
	return rv;
}

int
store_list_actors(store *s, store_actor_cb cb, void *arg)
{
	store_typed t = {NULL, cb, arg};

	return store_named_list(s, STORE_K_ACTOR, store_typed_row, &t);
}

int
store_delete_actor(store *s, const char *key)
{
	return store_named_delete(s, STORE_K_ACTOR, key);
}
