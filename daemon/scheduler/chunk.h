/*
 * Chunks: STORE_CHUNK_ITEMS consecutive items of one execution, the unit
 * in which they are kept in memory and in the store (docs/design.md,
 * "Storage").  This header is private to the execution layer (exec.c,
 * exec_store.c and chunk.c): nothing above it sees an item or a chunk,
 * only exec.h's functions.
 *
 * A chunk lives in one of three tiers:
 *   HOT   in memory: inputs and item records;
 *   COLD  never dispatched, every item PENDING: only its count is in
 *         memory, the inputs are in the store and read back (chunk_warm)
 *         when the dispatch reaches it;
 *   GONE  settled (nothing pending or running) and written whole: all of
 *         it is in the store, nothing in memory.
 * Results changed since the last flush are listed (chunk_touch) and
 * written as one delta row, or the whole chunk is rewritten when that is
 * cheaper or it settled.
 *
 * Async contract: the scheduler's loop thread only; chunk_warm and
 * chunk_write call the store synchronously.
 */
#ifndef TROUPE_SCHED_CHUNK_H
#define TROUPE_SCHED_CHUNK_H

#include <stdbool.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "store.h"

/* One item's record.  Strings are malloc'd and owned by the item. */
typedef struct item {
	uint8_t  state;       /* Troupe__ItemState */
	uint8_t  user_fails;  /* failed attempts charged to --retries */
	uint8_t  sys_fails;   /* failed attempts charged to the system */
	uint8_t  touched;     /* changed since the last flush (chunk list) */
	uint32_t holder_slot; /* the holder's slot for it (worker.c's) */
	uint32_t attempts;    /* attempts started; the current one's number */
	int32_t  exit_code;
	int64_t  started_ms, finished_ms;
	uint8_t *output;
	size_t   output_len;
	char    *error;
	char    *worker_name;
	/* The worker running its current attempt, or NULL: opaque here,
	 * written only through exec_set_holder (by worker.c). */
	void *holder;
} item;

typedef struct chunk chunk;

enum { CHUNK_HOT, CHUNK_COLD, CHUNK_GONE };

/* A new, empty HOT chunk (caller frees with chunk_free), NULL on OOM. */
chunk *chunk_new(void);
/* Frees c and everything it holds.  Accepts NULL. */
void chunk_free(chunk *c);

uint8_t  chunk_mem(const chunk *c); /* CHUNK_HOT, _COLD or _GONE */
uint32_t chunk_n(const chunk *c);   /* items present */

/* Item i's record, or NULL unless c is HOT.  Owned by c. */
item *chunk_item(chunk *c, uint32_t i);
/* Item i's input (pointing into c; valid while c is HOT). */
ProtobufCBinaryData chunk_input(const chunk *c, uint32_t i);

/* Appends a copy of in as a PENDING item.  c must be HOT and not full.
 * Returns 0 or TROUPE_ENOMEM. */
int chunk_push(chunk *c, const ProtobufCBinaryData *in);
/* Removes the last item (undoes a chunk_push). */
void chunk_pop(chunk *c);

/* Notes that item i changed, for the next flush's delta. */
void chunk_touch(chunk *c, uint32_t i);

/* Makes c COLD with n PENDING items, dropping what it holds. */
void chunk_make_cold(chunk *c, uint32_t n);
/* Whether c is COLD and not aborted: the dispatch must warm it. */
bool chunk_waiting(const chunk *c);
/* Reads a COLD chunk's inputs back from st (chunk k of execution id);
 * its items are all PENDING.  Returns 0 or a TROUPE_E* code. */
int chunk_warm(chunk *c, store *st, const char *id, uint32_t k);
/* Aborts a COLD chunk: its ABORTED results are written at the next flush
 * without reading it back.  Returns the items aborted (0 unless COLD and
 * not aborted already). */
uint32_t chunk_abort_cold(chunk *c);

/* Whether nothing in c is PENDING or RUNNING (c HOT). */
bool chunk_settled(const chunk *c);

/* Writes what changed in c (chunk k of id) into the open transaction:
 * new inputs, then its results as a delta or whole; for an aborted COLD
 * chunk, every item ABORTED with `error`.  Returns 0 or TROUPE_E*. */
int chunk_write(chunk *c, store *st, const char *id, uint32_t k,
                const char *error);
/* After the commit that held chunk_write's rows: nothing is dirty any
 * more.  Then a chunk written whole that settled leaves memory (GONE), and
 * one the dispatch has not reached (reached false) cools (COLD); only a
 * complete chunk (full, or its execution sealed) moves. */
void chunk_clean(chunk *c, bool reached, bool complete);

/* Reads chunk k of id (n items by the execution's total) back from st at
 * start-up into *out: COLD when nothing of it ran, else HOT with the
 * stored inputs (chunk_n says how many) and its results and deltas
 * applied.
 * Each item's stored state goes into states[] (STORE_CHUNK_ITEMS), the
 * items themselves are left PENDING for the caller to count.  *out is
 * the caller's.  Returns 0 or a TROUPE_E* code. */
int chunk_load(store *st, const char *id, uint32_t k, uint32_t n, bool sealed,
               chunk **out, uint8_t *states);
/* After chunk_load's states were applied: nothing is dirty, and a
 * settled chunk leaves memory. */
void chunk_loaded(chunk *c, bool complete);

/* Fills r (pointing into it) from one item. */
void chunk_item_view(const item *it, uint64_t index, Troupe__ItemResult *r);

/* exec.c's, for exec_store.c (the execution layer's own use). */
struct exec;
/* Moves item index to state `to`, keeping the execution's counts. */
void exec_set_state(struct exec *e, uint64_t index, Troupe__ItemState to);
/* Item index's record, or NULL when it is not in memory. */
item *exec_item(struct exec *e, uint64_t index);
/* Adds c as e's next chunk (e owns it then), counting its items as
 * PENDING.  Returns 0 or TROUPE_ENOMEM (c is then the caller's). */
int exec_add_chunk(struct exec *e, chunk *c);
/* Settings of the execution: the task's, overridden by the spec's. */
void exec_settings(struct exec *e);
#endif
