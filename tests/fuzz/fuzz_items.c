/*
 * libFuzzer target: the CLI's item reader (client/cli/items.c), what
 * `troupe map` makes of its input: cli_items_split on the input's bytes
 * (through cli_items_read on a stream of them for inputs whose first byte
 * is a multiple of 16: its 64 KiB buffers cost page faults that would
 * slow every run ten times), then cli_chunk_count cutting the items into
 * requests under a budget taken from the input's first bytes.  Checks the
 * promises of items.h: items point into the input in order, hold no newline,
 * lose only the newline and a carriage return before it, and a chunk takes at
 * least one item and stays within the budget unless it is one item.
 *
 * Threading: one thread.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "items.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE     *f = NULL;
	cli_items it;
	size_t    pos = 0, budget;
	char     *copy;

	if (size == 0)
		return 0;
	if (data[0] % 16 == 0) {
		if ((f = fmemopen((void *)data, size, "r")) == NULL)
			return 0;
		if (cli_items_read(f, &it) != 0)
			abort();
		fclose(f);
	} else {
		if ((copy = malloc(size)) == NULL)
			return 0;
		memcpy(copy, data, size);
		if (cli_items_split(copy, size, &it) != 0)
			abort();
	}
	if (it.len != size || memcmp(it.buf, data, size) != 0)
		abort();
	for (size_t i = 0; i < it.n; i++) {
		const uint8_t *d = it.v[i].data;
		size_t l = it.v[i].len, off = (size_t)((char *)d - it.buf);

		if (off != pos || off + l > size || memchr(d, '\n', l) != NULL)
			abort();
		pos = off + l;
		if (pos < size && data[pos] == '\r')
			pos++;
		if (pos < size && data[pos] != '\n')
			abort();
		if (pos < size)
			pos++;
	}
	if (pos != size)
		abort();
	budget = (size_t)data[0] * 3 + 1;
	for (size_t k = 0, c; k < it.n; k += c) {
		size_t used = 0;

		c = cli_chunk_count(&it, k, budget);
		if (c == 0 || k + c > it.n)
			abort();
		for (size_t j = k; j < k + c; j++)
			used += cli_item_wire_size(it.v[j].len);
		if (c > 1 && used > budget)
			abort();
	}
	cli_items_free(&it);
	return 0;
}
