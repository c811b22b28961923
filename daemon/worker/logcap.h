/*
 * One attempt's stderr, kept bounded (README, "Per-item logs"): the first
 * LOGCAP_HEAD bytes and the last LOGCAP_TAIL bytes, counting what falls
 * between.  Head and tail, not the tail alone: the head holds what a
 * process says as it starts (a bad flag, a missing file, its version,
 * where it loads its model from) and the tail how it ended (the
 * traceback); a chatty item loses its middle.  logcap_take renders them
 * as head, a "\n[... N bytes dropped ...]\n" line, tail.
 *
 * Memory: nothing until the first byte; the head grows as bytes come, the
 * tail ring is allocated whole (LOGCAP_TAIL) once the head is full.
 *
 * No state beyond the struct; not thread-safe (the worker's loop thread
 * owns each one).
 */
#ifndef TROUPE_WORKER_LOGCAP_H
#define TROUPE_WORKER_LOGCAP_H

#include <stddef.h>
#include <stdint.h>

#define LOGCAP_HEAD ((size_t)32 << 10)
#define LOGCAP_TAIL ((size_t)32 << 10)
#define LOGCAP_MAX  (LOGCAP_HEAD + LOGCAP_TAIL)

typedef struct logcap {
	uint8_t *head; /* the first bytes, up to LOGCAP_HEAD */
	size_t   head_len, head_cap;
	uint8_t *tail;     /* ring of the last LOGCAP_TAIL bytes past head */
	size_t   tail_pos; /* next write position in the ring */
	uint64_t past;     /* bytes written after the head filled */
	int      oom;      /* bytes were lost for lack of memory */
} logcap;

/* Appends n bytes.  Out of memory loses them (counted as dropped). */
void logcap_add(logcap *l, const void *p, size_t n);

/* Bytes written since the last take (or ever). */
uint64_t logcap_written(const logcap *l);

/* Renders what was kept into *data (malloc'd, the caller's; NULL when
 * nothing was written) and *len, with the bytes dropped in *dropped,
 * then empties l for the next attempt.  Returns 0 or TROUPE_ENOMEM (l is
 * emptied either way). */
int logcap_take(logcap *l, uint8_t **data, size_t *len, uint64_t *dropped);

/* Frees what l holds; l is then empty.  Accepts an empty l. */
void logcap_clear(logcap *l);

#endif
