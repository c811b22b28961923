/*
 * The scheduler's durable state: one SQLite database in WAL mode.
 *
 * Async contract: a store is used only on the scheduler's loop thread, one
 * connection, short transactions.  Callers batch writes between
 * store_begin and store_commit (group commit); nothing a client or worker
 * was told is acknowledged before the commit that holds it returns 0.
 *
 * Items are kept in chunks of STORE_CHUNK_ITEMS consecutive items: chunk k
 * of an execution holds items [k*STORE_CHUNK_ITEMS, (k+1)*STORE_CHUNK_ITEMS)
 * as one row with two blobs, the packed ChunkInputs (written when items are
 * uploaded) and the packed ChunkResults.  While results arrive, only the
 * items that changed are written, as numbered delta rows of the chunk
 * (result_deltas); the chunk's results row is rewritten whole now and then
 * (many deltas, or the chunk settled), which drops its deltas.  A chunk's
 * results are its row with its deltas applied in order.
 *
 * The schema is versioned with PRAGMA user_version and migrated forward
 * by store_open.
 *
 * Every function returns 0 or a TROUPE_E* code (SQLITE_FULL becomes
 * TROUPE_EFULL, so a full disk reaches clients as RESOURCE_EXHAUSTED).
 * Unpacked messages returned through out-parameters belong to the caller,
 * who frees them with the matching *__free_unpacked(msg, NULL).
 */
#ifndef TROUPE_STORE_H
#define TROUPE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "store.pb-c.h"

#define STORE_CHUNK_ITEMS 1024

typedef struct store store;

/* Opens (creating if missing) the database at path, sets WAL mode,
 * synchronous=FULL and a busy timeout, and migrates the schema.  The
 * caller owns *out and frees it with store_close.  A schema newer than
 * this build knows is refused with TROUPE_ESTATE; on failure
 * store_errmsg(NULL) says why. */
int store_open(const char *path, store **out);

/* Finalizes every prepared statement and closes the connection.  Accepts
 * NULL.  An open transaction is rolled back. */
void store_close(store *s);

/* Transactions.  store_rollback accepts being called with none open.
 * A failed store_commit has rolled the transaction back. */
int  store_begin(store *s);
int  store_commit(store *s);
void store_rollback(store *s);

/* Inserts or replaces the execution's row (keyed by ex->id), storing the
 * whole message packed plus the columns used to filter and order it.  The
 * first insert of an id assigns it the next sequence number (increasing,
 * with gaps); a replace keeps it.  TROUPE_EINVAL for an empty id. */
int store_put_execution(store *s, const Troupe__Execution *ex);

/* Ends an execution that is not in memory (one that could not be loaded
 * back from a damaged store) in its own transaction: rewrites row with
 * phase, error why and finished_ms (row itself is not changed). */
int store_end_execution(store *s, Troupe__Execution *row, Troupe__Phase phase,
                        const char *why, int64_t now_ms);

/* Loads one execution.  TROUPE_ENOTFOUND if there is none with that id. */
int store_get_execution(store *s, const char *id, Troupe__Execution **out);

/* Calls cb for each execution, newest first, whose sequence number is
 * below before_seq (0: no bound), whose phase is phase (0: any) and whose
 * spec.project is project (NULL or "": any), at most limit of them (0: no
 * limit).  cb owns ex (frees it) and returns 0 to go on, non-zero to stop:
 * a negative return is returned, a positive one stops with 0.  seq is the
 * row's sequence number, for the next page's before_seq.  The rows are
 * read before cb first runs, so cb may call any store function. */
typedef int (*store_exec_cb)(void *arg, int64_t seq, Troupe__Execution *ex);
int store_list_executions(store *s, int64_t before_seq, Troupe__Phase phase,
                          const char *project, uint32_t limit, store_exec_cb cb,
                          void *arg);

/* Counts the executions stored in each phase: out[p] for phase p below
 * n (out is the caller's, n entries, zeroed here; phases >= n are not
 * counted).  An index scan (executions_phase), for /metrics. */
int store_count_phases(store *s, uint64_t *out, size_t n);

/* Calls cb for each execution not in a terminal phase (QUEUED, RUNNING),
 * oldest first.  Ownership as for store_list_executions. */
int store_unfinished_executions(store *s, store_exec_cb cb, void *arg);

/* Writes chunk `chunk` of execution id: its inputs / its results.  Each
 * replaces what the row held for that blob; the other blob is kept. */
int store_put_inputs(store *s, const char *id, uint32_t chunk,
                     const Troupe__ChunkInputs *in);
int store_put_results(store *s, const char *id, uint32_t chunk,
                      const Troupe__ChunkResults *res);

/* Result deltas of a chunk: ChunkResults holding only the items that
 * changed (each ItemResult's index says which; user_fails and sys_fails
 * hold one byte per item of the delta, in its order).  put adds delta seq;
 * drop deletes them all (after a whole rewrite); get calls cb with each,
 * in seq order, cb owning the message and returning 0 to go on. */
typedef int (*store_delta_cb)(void *arg, uint32_t seq,
                              Troupe__ChunkResults *delta);
int store_put_delta(store *s, const char *id, uint32_t chunk, uint32_t seq,
                    const Troupe__ChunkResults *delta);
int store_drop_deltas(store *s, const char *id, uint32_t chunk);
int store_has_deltas(store *s, const char *id, uint32_t chunk, bool *out);
int store_get_deltas(store *s, const char *id, uint32_t chunk,
                     store_delta_cb cb, void *arg);

/* Reads chunk `chunk` of execution id (its row only, without deltas).  in or
 * res may be NULL to skip that blob; *res is NULL when no results were ever
 * written (and *in when only results were).  TROUPE_ENOTFOUND when the chunk
 * does not exist.  The caller owns *in and *res. */
int store_get_chunk(store *s, const char *id, uint32_t chunk,
                    Troupe__ChunkInputs **in, Troupe__ChunkResults **res);

/* Per-item logs (store_logs.c; README, "Per-item logs"): the stderr of
 * one attempt of one item, at most a row per (id, item, attempt); put
 * replaces the row (a re-sent result writes the same one again).  list
 * calls cb with each row of execution id from (item, attempt) >=
 * (from_item, from_attempt) on, by item then attempt, only item
 * only_item when only_item >= 0, only attempt only_attempt when > 0.
 * data lives only during the call, and cb must not use the store; cb
 * returns 0 to go on, > 0 to stop (list then returns 0), < 0 to fail
 * with it. */
typedef int (*store_log_cb)(void *arg, uint64_t item, uint32_t attempt,
                            const uint8_t *data, size_t len, uint64_t dropped);
int store_put_log(store *s, const char *id, uint64_t item, uint32_t attempt,
                  const uint8_t *data, size_t len, uint64_t dropped);
int store_list_logs(store *s, const char *id, uint64_t from_item,
                    uint32_t from_attempt, int64_t only_item,
                    uint32_t only_attempt, store_log_cb cb, void *arg);

/* The project of rows that name none (before projects existed). */
#define STORE_DEFAULT_PROJECT "default"

/* Named rows: tasks and actor environments (keyed by store_key of their
 * project and name), projects (by name) and tokens (by id).  put fails
 * with TROUPE_EEXIST when the key exists and replace is 0; get and
 * delete fail with TROUPE_ENOTFOUND; list calls cb with each row by key,
 * cb owning the message and returning 0 to go on. */
typedef enum {
	STORE_K_TASK,
	STORE_K_ACTOR,
	STORE_K_PROJECT,
	STORE_K_TOKEN,
} store_kind;
typedef int (*store_msg_cb)(void *arg, ProtobufCMessage *m);
int store_named_put(store *s, store_kind k, const char *key,
                    const ProtobufCMessage *m, int replace);
int store_named_get(store *s, store_kind k, const char *key,
                    ProtobufCMessage **out);
int store_named_delete(store *s, store_kind k, const char *key);
int store_named_list(store *s, store_kind k, store_msg_cb cb, void *arg);

/* The key of name in project: name itself in the default project (or
 * none), "project/name" in another (names hold no '/'); a buffer of
 * STORE_KEY_MAX holds any (two names of at most 63 bytes, '/', NUL). */
#define STORE_KEY_MAX 160
void store_key(const char *project, const char *name, char *buf, size_t len);

/* Registered tasks and actor environments, keyed by name.  put fails with
 * TROUPE_EEXIST when the name exists and replace is 0.  get and delete
 * fail with TROUPE_ENOTFOUND.  list calls cb with each, by name; cb owns
 * the message. */
typedef int (*store_task_cb)(void *arg, Troupe__TaskSpec *t);
typedef int (*store_actor_cb)(void *arg, Troupe__ActorEnv *a);
int store_put_task(store *s, const Troupe__TaskSpec *t, int replace);
int store_get_task(store *s, const char *name, Troupe__TaskSpec **out);
int store_list_tasks(store *s, store_task_cb cb, void *arg);
int store_delete_task(store *s, const char *name);
int store_put_actor(store *s, const Troupe__ActorEnv *a, int replace);
int store_get_actor(store *s, const char *name, Troupe__ActorEnv **out);
int store_list_actors(store *s, store_actor_cb cb, void *arg);
int store_delete_actor(store *s, const char *name);

/* The message of the last error of s (SQLite's or the store's own, e.g.
 * a corrupt blob, reported as TROUPE_EIO), for logs.  Owned by s.  With
 * s NULL: why the last store_open on this thread failed (static). */
const char *store_errmsg(store *s);

#endif
