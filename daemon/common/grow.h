/*
 * Growing an array of elements by doubling: the one place the daemons'
 * append-only arrays (a worker's running items and outbox, an execution's
 * logs, the rows of a list answer...) compute a new capacity and check it
 * for overflow.  Header-only; no state, any thread.
 *
 *	if (a->n == a->cap) {
 *		thing *v = grow_array(a->v, &a->cap, sizeof(*v), 16);
 *		if (v == NULL)
 *			return TROUPE_ENOMEM;
 *		a->v = v;
 *	}
 *	a->v[a->n++] = t;
 *
 * Byte buffers that grow to fit a length, under limits of their own
 * (frames, pipes, log heads), do their own arithmetic.
 */
#ifndef TROUPE_GROW_H
#define TROUPE_GROW_H

#include <stdint.h>
#include <stdlib.h>

/* v (of *cap elements of elem bytes) reallocated to twice *cap, or to
 * first when *cap is 0; *cap set to the new count.  NULL when memory or
 * size_t runs out: v is then untouched and still the caller's, and *cap
 * unchanged.  On success v is gone and the result is the caller's. */
static inline void *
grow_array(void *v, size_t *cap, size_t elem, size_t first)
{
	size_t n = *cap > 0 ? *cap : first;
	void  *nv;

	if (elem == 0 || n == 0 || n > SIZE_MAX / 2 / elem)
		return NULL;
	if (*cap > 0)
		n *= 2;
	if ((nv = realloc(v, n * elem)) != NULL)
		*cap = n;
	return nv;
}

#endif /* TROUPE_GROW_H */
