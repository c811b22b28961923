/*
 * The input list of `troupe map`: one item per line, and its upload in
 * chunks that each fit in one request.
 *
 * Text mode: items are the lines of the input; the newline ending each
 * line is not part of the item, and neither is a carriage return right
 * before it (files written on Windows).  A last line without a newline is
 * an item too.  Empty lines are empty items.  Any other bytes pass
 * through untouched.
 */
#ifndef TROUPE_CLI_ITEMS_H
#define TROUPE_CLI_ITEMS_H

#include <stddef.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

typedef struct cli_items {
	char                *buf; /* the whole input; items point into it */
	size_t               len;
	ProtobufCBinaryData *v; /* one per item, ready for a request */
	size_t               n;
} cli_items;

/* Reads all of f and splits it into items in *it (which it initialises).
 * Returns 0 (even for no items: it->n == 0), TROUPE_ENOMEM, or TROUPE_EIO
 * when reading fails (errno is kept).  Free with cli_items_free. */
int cli_items_read(FILE *f, cli_items *it);

/* Splits the len bytes at buf, which *it takes over (buf must come from
 * malloc, or be NULL when len is 0).  Returns 0 or TROUPE_ENOMEM; on
 * failure buf is freed too. */
int cli_items_split(char *buf, size_t len, cli_items *it);

/* Frees what *it holds.  Accepts an empty or failed *it. */
void cli_items_free(cli_items *it);

/* The bytes one item adds to a request's repeated `bytes items` field:
 * tag, length varint, data. */
size_t cli_item_wire_size(size_t len);

/* Returns how many items, starting at it->v[start], fit in budget bytes of
 * encoded `items` (at least one while any remain, so a single item larger
 * than the budget still goes, alone). */
size_t cli_chunk_count(const cli_items *it, size_t start, size_t budget);

#endif
