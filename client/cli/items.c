/* Reading and chunking `troupe map` items (see items.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "items.h"
#include "troupe/error.h"

int
cli_items_read(FILE *f, cli_items *it)
{
	char  *buf = NULL;
	size_t cap = 0, len = 0;

	memset(it, 0, sizeof(*it));
	for (;;) {
		size_t got;

		/* Grow only when full: the read that meets the end finds
		 * room already, so a small input costs one 64 KiB buffer. */
		if (len == cap) {
			size_t ncap = cap == 0 ? 65536 : cap * 2;
			char  *nbuf = realloc(buf, ncap);

			if (nbuf == NULL) {
				free(buf);
				return TROUPE_ENOMEM;
			}
			buf = nbuf;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno;

		free(buf);
		errno = e;
		return TROUPE_EIO;
	}
	return cli_items_split(buf, len, it);
}

int
cli_items_split(char *buf, size_t len, cli_items *it)
{
	size_t n = 0, i, start;

	memset(it, 0, sizeof(*it));
	it->buf = buf;
	it->len = len;
	for (i = 0; i < len; i++)
		if (buf[i] == '\n')
			n++;
	if (len > 0 && buf[len - 1] != '\n')
		n++;
	if (n == 0)
		return 0;
	if ((it->v = calloc(n, sizeof(*it->v))) == NULL) {
		cli_items_free(it);
		return TROUPE_ENOMEM;
	}
	for (start = 0, i = 0; i <= len; i++) {
		size_t end = i;

		if (i < len && buf[i] != '\n')
			continue;
		if (i == len && start == len)
			break; /* the input ended with a newline */
		if (end > start && buf[end - 1] == '\r')
			end--;
		it->v[it->n].data = (uint8_t *)buf + start;
		it->v[it->n].len = end - start;
		it->n++;
		start = i + 1;
	}
	return 0;
}

void
cli_items_free(cli_items *it)
{
	free(it->buf);
	free(it->v);
	memset(it, 0, sizeof(*it));
}

size_t
cli_item_wire_size(size_t len)
{
	size_t v = 1; /* field 2 or 3, wire type 2: one tag byte */

	for (size_t l = len; l >= 0x80; l >>= 7)
		v++;
	return v + 1 + len;
}

size_t
cli_chunk_count(const cli_items *it, size_t start, size_t budget)
{
	size_t used = 0, k = start;

	while (k < it->n) {
		size_t s = cli_item_wire_size(it->v[k].len);

		if (k > start && used + s > budget)
			break;
		used += s;
		k++;
	}
	return k - start;
}
