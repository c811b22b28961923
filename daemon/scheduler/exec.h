/*
 * Executions in memory: each item's state machine, its attempts and
 * retries, the execution's phase and counts (docs/design.md, "The
 * scheduler's layers").  The execution layer is exec.c (the state
 * machine), chunk.c (where items live: the chunk tiers) and exec_store.c
 * (writing and reading executions in the store); it calls only the store.
 *
 * Async contract: the scheduler's loop thread only.  Nothing here answers
 * a call or schedules work: a function changes the execution, marks it
 * `dirty` (its header is written at the next flush) and says through its
 * return value what the caller must do next (abort, requeue, kick).
 *
 * What runs where is the worker layer's (worker.c): an item here knows
 * only an opaque `holder` and a slot, written by exec_set_holder, which
 * only worker.c calls.
 */
#ifndef TROUPE_SCHED_EXEC_H
#define TROUPE_SCHED_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "link.pb-c.h"
#include "list.h"
#include "projects.h"
#include "store.h"

/* System failures (worker lost, scheduler restarted, spawn failed) an item
 * survives before it fails; separate from the user's --retries. */
#define EXEC_SYSTEM_RETRIES 3

struct chunk;
struct actor_env;

/* The most of an attempt's log the scheduler keeps: the worker's cap
 * (64 KiB) and room for its "[... N bytes dropped ...]" line.  A longer
 * one (a worker not keeping the cap) is cut to this. */
#define EXEC_LOG_MAX ((size_t)(64 << 10) + 256)

/* An attempt's stderr log, recorded with its result and written to the
 * store by the next flush (README, "Per-item logs"). */
typedef struct exec_log {
	uint64_t index;
	uint32_t attempt;
	uint64_t dropped;
	uint8_t *data; /* owned */
	size_t   len;
} exec_log;

typedef struct exec {
	list_node              node; /* core.c's list of active ones */
	char                   id[32];
	Troupe__ExecutionSpec *spec; /* owned; freed with free_unpacked */
	Troupe__TaskSpec      *task; /* resolved task; owned likewise */
	/* The actor environment it runs on (actors.c's, set by
	 * actors_bind), or NULL: one process per item. */
	struct actor_env *env;
	const char       *env_key; /* env's key (borrowed), or NULL */
	/* Its project's record (core.c sets it; exec.c counts running). */
	project       *proj;
	uint32_t       retries, timeout_ms, concurrency;
	double         ratio;
	Troupe__Phase  phase;
	bool           sealed;
	uint64_t       total;
	uint64_t       n_pending, n_running, n_succeeded, n_failed, n_aborted;
	int64_t        created_ms, started_ms, finished_ms;
	int64_t        upload_ms; /* last upload call (in memory only) */
	uint64_t       version;
	char          *error;
	struct chunk **chunks;
	uint32_t       n_chunks;
	uint64_t       cursor; /* items below were dispatched at least once */
	uint64_t      *retry;  /* ring of indices to run again */
	size_t         retry_head, retry_len, retry_cap;
	bool           dirty;       /* header to write at the next flush */
	bool           dry;         /* core.c's: no item placeable now */
	uint64_t       sys_resumed; /* items that were running at restart */
	exec_log      *logs;        /* recorded since the last commit */
	size_t         n_logs, cap_logs;
} exec;

bool exec_terminal(Troupe__Phase p);

/* Creates an execution from a validated spec and resolved task (both are
 * deep-copied) into *out, the caller's (exec_free).  Returns 0 or
 * TROUPE_ENOMEM. */
int  exec_new(const Troupe__ExecutionSpec *spec, const Troupe__TaskSpec *task,
              exec **out);
void exec_free(exec *e); /* accepts NULL */

/* Appends copies of n items, PENDING.  On TROUPE_ENOMEM some may have been
 * added: exec_truncate undoes them. */
int  exec_append(exec *e, const ProtobufCBinaryData *items, size_t n);
void exec_truncate(exec *e, uint64_t total); /* undo an append */
/* Marks e sealed (no more items).  The caller then calls
 * worker_check_done, since a sealed execution may be done. */
void exec_seal(exec *e);

/* Builds the API view of e into *out (fields point into e; counts into
 * *counts).  Valid until e changes; pack or copy before that. */
void exec_view(exec *e, Troupe__Execution *out, Troupe__Counts *counts);
/* Whether item index is in memory (else settled in the store, or past the
 * end), and its view (index in memory). */
bool exec_in_memory(const exec *e, uint64_t index);
void exec_item_view(exec *e, uint64_t index, Troupe__ItemResult *out);
/* Item index's input (in memory; points into e). */
ProtobufCBinaryData exec_item_input(exec *e, uint64_t index);

/* The next item to dispatch into *index: 1 if one, 0 if none.  Reads a
 * cold chunk's inputs back from st when it gets there. */
int exec_next_pending(store *st, exec *e, uint64_t *index);

/* Attempts.  exec_start_attempt moves a PENDING item to RUNNING under a
 * new attempt, run by worker_name, and returns the attempt's number. */
uint32_t exec_start_attempt(exec *e, uint64_t index, const char *worker_name);
/* Whether attempt is item index's current, running one: a result of any
 * other is stale and must be ignored. */
bool exec_attempt_current(exec *e, uint64_t index, uint32_t attempt);
/* A worker registering again still runs attempt of item index: when that
 * is the attempt a restart put back to PENDING, it is taken back (the
 * system failure the restart charged is undone and the attempt number is
 * given back for exec_start_attempt to count again) and true is
 * returned; false when it must be cancelled. */
bool exec_reclaim(exec *e, uint64_t index, uint32_t attempt);
/* Records r, the result of item index's current attempt (whose holder was
 * released): SUCCEEDED, or a failure charged to the user's retries or to
 * the system's, the item going back to PENDING while a budget lasts.  Its
 * stderr log, if any, waits in e->logs for the next flush. */
void exec_record_result(exec *e, const Troupe__ItemReport *r);
/* Item index's current attempt was lost (its worker went away): a system
 * failure with why as the error. */
void exec_attempt_lost(exec *e, uint64_t index, const char *why);

/* The holder of item index's current attempt (NULL if none) and its slot
 * there; exec_set_holder is worker.c's alone. */
void *exec_holder(exec *e, uint64_t index, uint32_t *slot);
void  exec_set_holder(exec *e, uint64_t index, void *holder, uint32_t slot);
/* From *index on, the next in-memory item with a holder: sets *index,
 * *holder and *attempt and returns true; false when there is none. */
bool exec_next_held(exec *e, uint64_t *index, void **holder, uint32_t *attempt);

/* Finishes a sealed e whose items all ended (SUCCEEDED, or FAILED saying
 * how many failed).  Returns true, with why, when the min success ratio
 * can no longer be met: the caller must then abort e as FAILED (through
 * worker_abort_exec, which cancels its running attempts). */
bool exec_check_done(exec *e, char *why, size_t len);
/* Ends e in phase (ABORTED, TIMED_OUT, FAILED) with why: pending items
 * never start, finished ones are kept.  No item may have a holder (the
 * worker layer released them first). */
void exec_abort(exec *e, Troupe__Phase phase, const char *why);

/* exec_store.c: executions in the store. */
/* Writes e's dirty header and chunks, and the logs recorded since the
 * last commit, into the open transaction. */
int exec_write(store *st, exec *e);
/* After the commit that held exec_write's rows. */
void exec_clean(exec *e);
/* Frees the logs waiting in e->logs (exec_clean, after their commit, and
 * exec_free). */
void exec_logs_free(exec *e);
/* Reads an unfinished execution back from its row (st's) at start-up into
 * *out, the caller's: items that were RUNNING are PENDING again with a
 * system failure charged (a worker may still reclaim them). */
int exec_load(store *st, const Troupe__Execution *row, exec **out);

#endif
