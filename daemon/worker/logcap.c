/* One attempt's stderr, bounded (see logcap.h: no threads, no state
 * beyond the struct). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logcap.h"
#include "troupe/error.h"

static void
logcap_head_add(logcap *l, const uint8_t *p, size_t n)
{
	if (l->head_cap - l->head_len < n) {
		size_t   cap = l->head_cap > 0 ? l->head_cap : 4096;
		uint8_t *nb;

		while (cap - l->head_len < n)
			cap *= 2;
		if (cap > LOGCAP_HEAD)
			cap = LOGCAP_HEAD;
		if ((nb = realloc(l->head, cap)) == NULL) {
			l->oom = 1;
			l->past += n; /* lost: counted as dropped */
			return;
		}
		l->head = nb;
		l->head_cap = cap;
	}
	memcpy(l->head + l->head_len, p, n);
	l->head_len += n;
}

void
logcap_add(logcap *l, const void *data, size_t n)
{
	const uint8_t *p = data;
	size_t         room = LOGCAP_HEAD - l->head_len;

	if (n == 0)
		return;
	if (room > 0 && l->past == 0) {
		size_t k = n < room ? n : room;

		logcap_head_add(l, p, k);
		p += k;
		n -= k;
		if (n == 0)
			return;
	}
	if (l->tail == NULL && (l->tail = malloc(LOGCAP_TAIL)) == NULL) {
		l->oom = 1;
		l->past += n;
		return;
	}
	/* Only the last LOGCAP_TAIL bytes of this write can survive. */
	l->past += n;
	if (n > LOGCAP_TAIL) {
		p += n - LOGCAP_TAIL;
		n = LOGCAP_TAIL;
	}
	while (n > 0) {
		size_t k = LOGCAP_TAIL - l->tail_pos;

		if (k > n)
			k = n;
		memcpy(l->tail + l->tail_pos, p, k);
		l->tail_pos = (l->tail_pos + k) % LOGCAP_TAIL;
		p += k;
		n -= k;
	}
}

uint64_t
logcap_written(const logcap *l)
{
	return l->head_len + l->past;
}

void
logcap_clear(logcap *l)
{
	free(l->head);
	free(l->tail);
	memset(l, 0, sizeof(*l));
}

int
logcap_take(logcap *l, uint8_t **data, size_t *len, uint64_t *dropped)
{
	uint64_t kept_tail, drop;
	char     mark[64];
	int      ml = 0;
	uint8_t *out, *q;
	int      rv = 0;

	*data = NULL;
	*len = 0;
	*dropped = 0;
	if (logcap_written(l) == 0)
		goto done;
	/* The ring holds the last min(past, LOGCAP_TAIL) bytes, unless out
	 * of memory kept it from existing. */
	kept_tail = l->tail == NULL         ? 0
	            : l->past < LOGCAP_TAIL ? l->past
	                                    : LOGCAP_TAIL;
	drop = l->past - kept_tail;
	if (drop > 0)
		ml = snprintf(
		    mark, sizeof(mark), "%s[... %llu bytes dropped ...]\n",
		    l->head_len > 0 && l->head[l->head_len - 1] != '\n' ? "\n"
		                                                        : "",
		    (unsigned long long)drop);
	if ((out = malloc(l->head_len + (size_t)ml + kept_tail + 1)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto done;
	}
	q = out;
	if (l->head_len > 0)
		memcpy(q, l->head, l->head_len);
	q += l->head_len;
	memcpy(q, mark, (size_t)ml);
	q += ml;
	if (kept_tail > 0) {
		/* The oldest kept byte is at tail_pos once the ring wrapped. */
		size_t start = l->past < LOGCAP_TAIL ? 0 : l->tail_pos;
		size_t first = LOGCAP_TAIL - start;

		if (first > kept_tail)
			first = (size_t)kept_tail;
		memcpy(q, l->tail + start, first);
		memcpy(q + first, l->tail, (size_t)kept_tail - first);
		q += kept_tail;
	}
	*data = out;
	*len = (size_t)(q - out);
	*dropped = drop;
done:
	logcap_clear(l);
	return rv;
}
