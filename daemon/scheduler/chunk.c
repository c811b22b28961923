/*
 * Chunks of items, their tiers and their rows in the store (see chunk.h
 * for the contract and docs/design.md, "Storage", for the format).
 *
 * Owns struct chunk: nothing outside this file reads a chunk's fields.
 * Runs on the scheduler's loop thread only.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "troupe/error.h"

/* A chunk is rewritten whole once this many deltas pile up, which bounds
 * what a restart reads; and when a quarter of it changed, or it settled
 * (nothing pending or running: it will not change again, and a finished
 * execution's chunks then hold no deltas). */
#define CHUNK_MAX_DELTAS 32

struct chunk {
	uint32_t n; /* items present (< STORE_CHUNK_ITEMS while uploading) */
	ProtobufCBinaryData *inputs; /* n inputs, each malloc'd */
	item                *items;  /* STORE_CHUNK_ITEMS slots */
	bool                 inputs_dirty, results_dirty;
	uint16_t            *touched; /* positions changed, n_touched of them */
	uint32_t             n_touched, cap_touched;
	uint32_t             n_deltas;       /* delta rows in the store */
	bool                 wrote_all;      /* this flush rewrites it whole */
	bool                 stored_results; /* a results row or deltas exist */
	uint8_t              mem;            /* CHUNK_HOT, _COLD or _GONE */
	bool                 abort_cold; /* COLD, aborted: write its ABORTED */
};

static void
chunk_item_clear(item *it)
{
	free(it->output);
	free(it->error);
	free(it->worker_name);
	it->output = NULL;
	it->error = NULL;
	it->worker_name = NULL;
	it->output_len = 0;
}

/* Frees a chunk's inputs and items (a HOT chunk's; the others have none)
 * and marks it `mem`: the store has them. */
static void
chunk_drop(chunk *c, uint8_t mem)
{
	for (uint32_t i = 0; c->items != NULL && i < c->n; i++) {
		free(c->inputs[i].data);
		chunk_item_clear(&c->items[i]);
	}
	free(c->inputs);
	free(c->items);
	free(c->touched);
	c->inputs = NULL;
	c->items = NULL;
	c->touched = NULL;
	c->n_touched = c->cap_touched = 0;
	c->mem = mem;
}

/* Gives c its two arrays (HOT).  Returns 0 or TROUPE_ENOMEM. */
static int
chunk_alloc(chunk *c)
{
	assert(c->inputs == NULL && c->items == NULL);
	if ((c->inputs = calloc(STORE_CHUNK_ITEMS, sizeof(*c->inputs))) ==
	        NULL ||
	    (c->items = calloc(STORE_CHUNK_ITEMS, sizeof(*c->items))) == NULL) {
		free(c->inputs);
		c->inputs = NULL;
		return TROUPE_ENOMEM;
	}
	c->mem = CHUNK_HOT;
	return 0;
}

chunk *
chunk_new(void)
{
	chunk *c = calloc(1, sizeof(*c));

	if (c != NULL && chunk_alloc(c) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

void
chunk_free(chunk *c)
{
	if (c == NULL)
		return;
	chunk_drop(c, CHUNK_GONE);
	free(c);
}

uint8_t
chunk_mem(const chunk *c)
{
	return c->mem;
}

uint32_t
chunk_n(const chunk *c)
{
	return c->n;
}

item *
chunk_item(chunk *c, uint32_t i)
{
	assert(i < STORE_CHUNK_ITEMS);
	return c->mem == CHUNK_HOT ? &c->items[i] : NULL;
}

ProtobufCBinaryData
chunk_input(const chunk *c, uint32_t i)
{
	assert(c->mem == CHUNK_HOT && i < c->n);
	return c->inputs[i];
}

int
chunk_push(chunk *c, const ProtobufCBinaryData *in)
{
	uint8_t *copy;

	assert(c->mem == CHUNK_HOT && c->n < STORE_CHUNK_ITEMS);
	if ((copy = malloc(in->len > 0 ? in->len : 1)) == NULL)
		return TROUPE_ENOMEM;
	if (in->len > 0)
		memcpy(copy, in->data, in->len);
	c->inputs[c->n].data = copy;
	c->inputs[c->n].len = in->len;
	c->items[c->n].state = TROUPE__ITEM_STATE__ITEM_PENDING;
	c->n++;
	c->inputs_dirty = true;
	return 0;
}

void
chunk_pop(chunk *c)
{
	assert(c->mem == CHUNK_HOT && c->n > 0);
	c->n--;
	free(c->inputs[c->n].data);
	c->inputs[c->n].data = NULL;
	c->inputs[c->n].len = 0;
	chunk_item_clear(&c->items[c->n]);
	memset(&c->items[c->n], 0, sizeof(c->items[c->n]));
	c->inputs_dirty = true;
}

void
chunk_touch(chunk *c, uint32_t i)
{
	assert(c->mem == CHUNK_HOT && i < c->n);
	c->results_dirty = true;
	if (c->items[i].touched)
		return;
	c->items[i].touched = 1;
	if (c->n_touched == c->cap_touched) {
		uint32_t  cap = c->cap_touched ? c->cap_touched * 2 : 64;
		uint16_t *t;

		if (cap > STORE_CHUNK_ITEMS)
			cap = STORE_CHUNK_ITEMS;
		if ((t = realloc(c->touched, cap * sizeof(*t))) == NULL) {
			/* Without memory for the list, the chunk is
			 * rewritten whole instead. */
			c->n_touched = STORE_CHUNK_ITEMS;
			return;
		}
		c->touched = t;
		c->cap_touched = cap;
	}
	if (c->n_touched < c->cap_touched)
		c->touched[c->n_touched++] = (uint16_t)i;
}

void
chunk_make_cold(chunk *c, uint32_t n)
{
	chunk_drop(c, CHUNK_COLD);
	c->n = n;
}

bool
chunk_waiting(const chunk *c)
{
	return c->mem == CHUNK_COLD && !c->abort_cold;
}

int
chunk_warm(chunk *c, store *st, const char *id, uint32_t k)
{
	Troupe__ChunkInputs *in = NULL;
	int                  rv;

	assert(chunk_waiting(c));
	if ((rv = store_get_chunk(st, id, k, &in, NULL)) != 0)
		return rv;
	if (in == NULL || in->n_items != c->n) {
		rv = TROUPE_EIO;
		goto done;
	}
	if ((rv = chunk_alloc(c)) != 0)
		goto done;
	for (uint32_t i = 0; i < c->n; i++) {
		size_t len = in->items[i].len;

		if ((c->inputs[i].data = malloc(len > 0 ? len : 1)) == NULL) {
			/* Back to COLD, as it was. */
			uint32_t n = c->n;
			c->n = i;
			chunk_make_cold(c, n);
			rv = TROUPE_ENOMEM;
			goto done;
		}
		if (len > 0)
			memcpy(c->inputs[i].data, in->items[i].data, len);
		c->inputs[i].len = len;
		c->items[i].state = TROUPE__ITEM_STATE__ITEM_PENDING;
	}
done:
	if (in != NULL)
		troupe__chunk_inputs__free_unpacked(in, NULL);
	return rv;
}

uint32_t
chunk_abort_cold(chunk *c)
{
	if (!chunk_waiting(c))
		return 0;
	c->abort_cold = true;
	c->results_dirty = true;
	return c->n;
}

bool
chunk_settled(const chunk *c)
{
	assert(c->mem == CHUNK_HOT);
	for (uint32_t i = 0; i < c->n; i++)
		if (c->items[i].state == TROUPE__ITEM_STATE__ITEM_PENDING ||
		    c->items[i].state == TROUPE__ITEM_STATE__ITEM_RUNNING)
			return false;
	return true;
}

void
chunk_item_view(const item *it, uint64_t index, Troupe__ItemResult *r)
{
	troupe__item_result__init(r);
	r->index = index;
	r->state = it->state;
	r->output.data = it->output;
	r->output.len = it->output_len;
	r->error = it->error != NULL ? it->error : "";
	r->attempts = it->attempts;
	r->exit_code = it->exit_code;
	r->started_ms = it->started_ms;
	r->finished_ms = it->finished_ms;
	r->worker = it->worker_name != NULL ? it->worker_name : "";
}

/* Writes chunk k's changed results: one delta row, or the whole chunk
 * (dropping its deltas).  c->wrote_all says which, for chunk_clean. */
static int
chunk_write_results(chunk *c, store *st, const char *id, uint32_t k)
{
	Troupe__ChunkResults res = TROUPE__CHUNK_RESULTS__INIT;
	Troupe__ItemResult  *rs = NULL;
	Troupe__ItemResult **ps = NULL;
	uint8_t             *uf = NULL, *sf = NULL;
	uint32_t             n;
	int                  rv = TROUPE_ENOMEM;

	c->wrote_all = c->n_deltas >= CHUNK_MAX_DELTAS ||
	               (uint64_t)c->n_touched * 4 >= c->n || chunk_settled(c);
	n = c->wrote_all ? c->n : c->n_touched;
	if ((rs = calloc(n + 1, sizeof(*rs))) == NULL ||
	    (ps = calloc(n + 1, sizeof(*ps))) == NULL ||
	    (uf = malloc(n + 1)) == NULL || (sf = malloc(n + 1)) == NULL)
		goto done;
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = c->wrote_all ? j : c->touched[j];

		uf[j] = c->items[i].user_fails;
		sf[j] = c->items[i].sys_fails;
		chunk_item_view(&c->items[i],
		                (uint64_t)k * STORE_CHUNK_ITEMS + i, &rs[j]);
		ps[j] = &rs[j];
	}
	res.n_items = n;
	res.items = ps;
	res.user_fails.data = uf;
	res.user_fails.len = n;
	res.sys_fails.data = sf;
	res.sys_fails.len = n;
	if (!c->wrote_all)
		rv = store_put_delta(st, id, k, c->n_deltas, &res);
	else if ((rv = store_put_results(st, id, k, &res)) == 0 &&
	         c->n_deltas > 0)
		rv = store_drop_deltas(st, id, k);
done:
	free(rs);
	free(ps);
	free(uf);
	free(sf);
	return rv;
}

/* Writes an aborted cold chunk's results: every item ABORTED with the
 * execution's error, never attempted. */
static int
chunk_write_cold_abort(chunk *c, store *st, const char *id, uint32_t k,
                       const char *error)
{
	Troupe__ChunkResults res = TROUPE__CHUNK_RESULTS__INIT;
	Troupe__ItemResult  *rs = calloc(c->n + 1, sizeof(*rs));
	Troupe__ItemResult **ps = calloc(c->n + 1, sizeof(*ps));
	int                  rv = TROUPE_ENOMEM;

	if (rs == NULL || ps == NULL)
		goto done;
	for (uint32_t i = 0; i < c->n; i++) {
		troupe__item_result__init(&rs[i]);
		rs[i].index = (uint64_t)k * STORE_CHUNK_ITEMS + i;
		rs[i].state = TROUPE__ITEM_STATE__ITEM_ABORTED;
		rs[i].error = (char *)error;
		ps[i] = &rs[i];
	}
	res.n_items = c->n;
	res.items = ps;
	rv = store_put_results(st, id, k, &res);
done:
	free(rs);
	free(ps);
	return rv;
}

int
chunk_write(chunk *c, store *st, const char *id, uint32_t k, const char *error)
{
	int rv;

	if (c->mem == CHUNK_COLD && c->results_dirty)
		return chunk_write_cold_abort(c, st, id, k, error);
	if (c->mem != CHUNK_HOT)
		return 0; /* in the store */
	if (c->inputs_dirty) {
		Troupe__ChunkInputs in = TROUPE__CHUNK_INPUTS__INIT;

		in.n_items = c->n;
		in.items = c->inputs;
		if ((rv = store_put_inputs(st, id, k, &in)) != 0)
			return rv;
	}
	if (c->results_dirty)
		return chunk_write_results(c, st, id, k);
	return 0;
}

/* Clears the touched marks and list. */
static void
chunk_untouch(chunk *c)
{
	for (uint32_t j = 0; j < c->n_touched && j < c->cap_touched; j++)
		c->items[c->touched[j]].touched = 0;
	if (c->n_touched > c->cap_touched) /* the list overflowed */
		for (uint32_t i = 0; i < c->n; i++)
			c->items[i].touched = 0;
	c->n_touched = 0;
}

/* Frees what a settled chunk holds once the store has all of it (written
 * whole, no deltas): its inputs and its items.  Nothing changes a settled
 * item again (a late result finds no item and is ignored), and the
 * outputs are read back from the store.  This keeps the scheduler's
 * memory to the chunks still running, whatever the map's size. */
static void
chunk_evict(chunk *c, bool complete)
{
	if (c->mem != CHUNK_HOT || c->n_deltas > 0 || c->inputs_dirty ||
	    c->results_dirty || !complete || !chunk_settled(c))
		return;
	chunk_drop(c, CHUNK_GONE);
}

/* Cools c if the dispatch has not reached it (nothing of it ran): pending
 * items cost nothing but a row in the store until their turn comes (one
 * read then), so neither a huge map nor a thousand queued ones fill the
 * scheduler's memory.  Only complete chunks whose inputs are committed. */
static void
chunk_cool(chunk *c, bool reached, bool complete)
{
	if (c->mem != CHUNK_HOT || c->stored_results || c->inputs_dirty ||
	    c->results_dirty || !complete || reached)
		return;
	chunk_drop(c, CHUNK_COLD);
}

void
chunk_clean(chunk *c, bool reached, bool complete)
{
	bool wrote = c->results_dirty;

	if (c->mem == CHUNK_COLD && c->abort_cold && wrote) {
		c->results_dirty = false;
		c->stored_results = true;
		c->mem = CHUNK_GONE;
	}
	if (c->mem != CHUNK_HOT) {
		c->inputs_dirty = false;
		return; /* in the store */
	}
	if (wrote) {
		c->n_deltas = c->wrote_all ? 0 : c->n_deltas + 1;
		c->stored_results = true;
	}
	chunk_untouch(c);
	c->inputs_dirty = c->results_dirty = false;
	if (wrote && c->wrote_all)
		chunk_evict(c, complete);
	else
		chunk_cool(c, reached, complete);
}

static char *
chunk_strdup_nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* One chunk being read back: its row, then its deltas, into its items;
 * each item's state is kept aside (states) for the caller. */
typedef struct chunk_loading {
	chunk   *c;
	uint32_t k;
	uint32_t n_deltas;
	uint8_t *states;
} chunk_loading;

/* Applies one stored result to its item (replacing what it held). */
static int
chunk_load_item(chunk_loading *ld, uint32_t i, const Troupe__ItemResult *r,
                uint8_t user_fails, uint8_t sys_fails)
{
	item *it = &ld->c->items[i];

	chunk_item_clear(it);
	it->attempts = r->attempts;
	it->user_fails = user_fails;
	it->sys_fails = sys_fails;
	it->exit_code = r->exit_code;
	it->started_ms = r->started_ms;
	it->finished_ms = r->finished_ms;
	it->error = chunk_strdup_nonempty(r->error);
	it->worker_name = chunk_strdup_nonempty(r->worker);
	if (r->output.len > 0) {
		if ((it->output = malloc(r->output.len)) == NULL)
			return TROUPE_ENOMEM;
		memcpy(it->output, r->output.data, r->output.len);
		it->output_len = r->output.len;
	}
	ld->states[i] = (uint8_t)r->state;
	return 0;
}

/* Applies a chunk's row (items by position) or a delta (by index). */
static int
chunk_load_results(chunk_loading *ld, const Troupe__ChunkResults *res,
                   bool delta)
{
	for (size_t j = 0; j < res->n_items; j++) {
		const Troupe__ItemResult *r = res->items[j];
		uint64_t                  i = j;
		int                       rv;

		if (delta) {
			if (r->index / STORE_CHUNK_ITEMS != ld->k)
				return TROUPE_EIO;
			i = r->index % STORE_CHUNK_ITEMS;
		}
		if (i >= ld->c->n)
			return delta ? TROUPE_EIO : 0;
		rv = chunk_load_item(
		    ld, (uint32_t)i, r,
		    j < res->user_fails.len ? res->user_fails.data[j] : 0,
		    j < res->sys_fails.len ? res->sys_fails.data[j] : 0);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int
chunk_load_delta(void *arg, uint32_t seq, Troupe__ChunkResults *delta)
{
	chunk_loading *ld = arg;
	int            rv = chunk_load_results(ld, delta, true);

	(void)seq;
	ld->n_deltas++;
	troupe__chunk_results__free_unpacked(delta, NULL);
	return rv;
}

int
chunk_load(store *st, const char *id, uint32_t k, uint32_t n, bool sealed,
           chunk **out, uint8_t *states)
{
	Troupe__ChunkInputs  *in = NULL;
	Troupe__ChunkResults *res = NULL;
	chunk_loading         ld = {.k = k, .states = states};
	bool                  deltas = false;
	int                   rv;

	*out = NULL;
	memset(states, TROUPE__ITEM_STATE__ITEM_PENDING, STORE_CHUNK_ITEMS);
	if ((ld.c = chunk_new()) == NULL)
		return TROUPE_ENOMEM;
	if ((rv = store_get_chunk(st, id, k, NULL, &res)) != 0 ||
	    (res == NULL && (rv = store_has_deltas(st, id, k, &deltas)) != 0))
		goto fail;
	/* Never dispatched: it stays in the store until its turn. */
	if (res == NULL && !deltas && (n == STORE_CHUNK_ITEMS || sealed)) {
		chunk_make_cold(ld.c, n);
		*out = ld.c;
		return 0;
	}
	if ((rv = store_get_chunk(st, id, k, &in, NULL)) != 0)
		goto fail;
	if (in == NULL || in->n_items > STORE_CHUNK_ITEMS) {
		rv = TROUPE_EIO;
		goto fail;
	}
	for (uint32_t i = 0; i < in->n_items; i++)
		if ((rv = chunk_push(ld.c, &in->items[i])) != 0)
			goto fail;
	if (res != NULL) {
		ld.c->stored_results = true;
		if ((rv = chunk_load_results(&ld, res, false)) != 0)
			goto fail;
	}
	if ((rv = store_get_deltas(st, id, k, chunk_load_delta, &ld)) != 0)
		goto fail;
	ld.c->n_deltas = ld.n_deltas;
	if (ld.n_deltas > 0)
		ld.c->stored_results = true;
	*out = ld.c;
	ld.c = NULL;
fail:
	chunk_free(ld.c);
	if (in != NULL)
		troupe__chunk_inputs__free_unpacked(in, NULL);
	if (res != NULL)
		troupe__chunk_results__free_unpacked(res, NULL);
	return rv;
}

void
chunk_loaded(chunk *c, bool complete)
{
	if (c->mem != CHUNK_HOT)
		return;
	/* What was read is stored already: not dirty, and no flush to count
	 * in n_deltas. */
	chunk_untouch(c);
	c->inputs_dirty = c->results_dirty = false;
	chunk_evict(c, complete);
}
