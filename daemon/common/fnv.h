/*
 * FNV-1a, 32 bits: the hash of the daemons' in-memory indexes (metric
 * series by label text, a worker's held attempts by item).  Not for
 * anything a client could aim collisions at to cost more than a longer
 * chain.  Header-only; no state, any thread.
 */
#ifndef TROUPE_FNV_H
#define TROUPE_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV_INIT 2166136261u

/* h with the n bytes at p hashed in. */
static inline uint32_t
fnv_bytes(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* h with the string s (without its NUL) hashed in. */
static inline uint32_t
fnv_str(uint32_t h, const char *s)
{
	for (const unsigned char *b = (const unsigned char *)s; *b; b++)
		h = (h ^ *b) * 16777619u;
	return h;
}

#endif
