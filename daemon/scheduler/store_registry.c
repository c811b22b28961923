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

/* Tasks and actor environments share their code; this says which. */
typedef struct store_named {
	const char                       *what; /* for messages */
	const ProtobufCMessageDescriptor *desc;
	int                               insert, upsert, get, list, del;
} store_named;

static const store_named store_tasks = {"task",
                                        &troupe__task_spec__descriptor,
                                        STORE_TASK_INSERT,
                                        STORE_TASK_UPSERT,
                                        STORE_TASK_GET,
                                        STORE_TASK_LIST,
                                        STORE_TASK_DELETE};
static const store_named store_actors = {
    "actor environment", &troupe__actor_env__descriptor,
    STORE_ACTOR_INSERT,  STORE_ACTOR_UPSERT,
    STORE_ACTOR_GET,     STORE_ACTOR_LIST,
    STORE_ACTOR_DELETE};

static int
store_named_put(store *s, const store_named *k, const char *name,
                const ProtobufCMessage *m, int replace)
{
	sqlite3_stmt *st = s->st[replace ? k->upsert : k->insert];
	const void   *data = NULL;
	size_t        len = 0;
	int           rc;
	int           rv;

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

static int
store_named_delete(store *s, const store_named *k, const char *name)
{
	int rv;

	sqlite3_bind_text(s->st[k->del], 1, name, -1, SQLITE_STATIC);
	if ((rv = store_run(s, s->st[k->del])) != 0)
		return rv;
	if (sqlite3_changes(s->db) == 0)
		return store_failf(s, TROUPE_ENOTFOUND, "no %s '%s'", k->what,
		                   name);
	return 0;
}

static int
store_named_get(store *s, const store_named *k, const char *name,
                ProtobufCMessage **out)
{
	return store_get_one(s, s->st[k->get], name, k->desc, k->what, out);
}

/* The caller's callback of store_list_tasks or store_list_actors: the one
 * that is set. */
typedef struct store_named_ctx {
	store_task_cb  task;
	store_actor_cb actor;
	void          *arg;
} store_named_ctx;

static int
store_named_row(void *ctx, int64_t seq, ProtobufCMessage *m)
{
	store_named_ctx *c = ctx;

	if (c->task != NULL)
		return c->task(c->arg, (Troupe__TaskSpec *)m);
	return c->actor(c->arg, (Troupe__ActorEnv *)m);
}

static int
store_named_list(store *s, const store_named *k, store_named_ctx *ctx)
{
	return store_each(s, s->st[k->list], k->desc, k->what, store_named_row,
	                  ctx);
}

int
store_put_task(store *s, const Troupe__TaskSpec *t, int replace)
{
	return store_named_put(s, &store_tasks, t->name, &t->base, replace);
}

int
store_get_task(store *s, const char *name, Troupe__TaskSpec **out)
{
	ProtobufCMessage *m = NULL;
	int               rv = store_named_get(s, &store_tasks, name, &m);

	if (rv == 0)
		*out = (Troupe__TaskSpec *)m;
	return rv;
}

int
store_list_tasks(store *s, store_task_cb cb, void *arg)
{
	store_named_ctx ctx = {cb, NULL, arg};

	return store_named_list(s, &store_tasks, &ctx);
}

int
store_delete_task(store *s, const char *name)
{
	return store_named_delete(s, &store_tasks, name);
}

int
store_put_actor(store *s, const Troupe__ActorEnv *a, int replace)
{
	return store_named_put(s, &store_actors, a->name, &a->base, replace);
}

int
store_get_actor(store *s, const char *name, Troupe__ActorEnv **out)
{
	ProtobufCMessage *m = NULL;
	int               rv = store_named_get(s, &store_actors, name, &m);

	if (rv == 0)
		*out = (Troupe__ActorEnv *)m;
	return rv;
}

int
store_list_actors(store *s, store_actor_cb cb, void *arg)
{
	store_named_ctx ctx = {NULL, cb, arg};

	return store_named_list(s, &store_actors, &ctx);
}

int
store_delete_actor(store *s, const char *name)
{
	return store_named_delete(s, &store_actors, name);
}
