/*
 * Executions and their items, in memory (see scheduler.h for the threading
 * contract: everything here runs on the scheduler's loop thread).
 *
 * An execution's items live in chunks of STORE_CHUNK_ITEMS, mirroring the
 * rows of the store: a chunk is dirty when its inputs or results changed
 * since the last commit, and exec_write writes exactly the dirty ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "scheduler.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

bool
exec_terminal(Troupe__Phase p)
{
	return p == TROUPE__PHASE__PHASE_SUCCEEDED ||
	       p == TROUPE__PHASE__PHASE_FAILED ||
	       p == TROUPE__PHASE__PHASE_ABORTED ||
	       p == TROUPE__PHASE__PHASE_TIMED_OUT;
}

/* Deep-copies msg by packing and unpacking it: protoc-c has no copy, and
 * this keeps ownership simple (free with free_unpacked).  NULL on OOM. */
static ProtobufCMessage *
exec_copy(const ProtobufCMessage *msg)
{
	uint8_t          *buf = NULL;
	size_t            len = 0;
	ProtobufCMessage *out;

	if (troupe_pack(msg, &buf, &len) != 0)
		return NULL;
	out = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
	free(buf);
	return out;
}

/* "ex-" and 10 characters of a lowercase base32 of random bytes. */
static void
exec_make_id(char *buf, size_t len)
{
	static const char abc[] = "abcdefghijkmnpqrstuvwxyz23456789";
	uint8_t           rnd[10];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		long long t = troupe_now_ms();
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (uint8_t)(t >> (i * 5)) ^ (uint8_t)rand();
	}
	snprintf(buf, len, "ex-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		buf[3 + i] = abc[rnd[i] & 31];
	buf[3 + sizeof(rnd)] = '\0';
}

/* Settings of the execution: the task's, overridden by the spec's. */
static void
exec_settings(exec *e)
{
	const Troupe__ExecutionSpec *sp = e->spec;

	e->retries = e->task->retries;
	e->timeout_ms = e->task->timeout_ms;
	e->ratio = 1.0;
	e->concurrency = sp->concurrency;
	if (sp->retries_opt_case == TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES)
		e->retries = sp->retries;
	if (sp->timeout_opt_case ==
	    TROUPE__EXECUTION_SPEC__TIMEOUT_OPT_TIMEOUT_MS)
		e->timeout_ms = sp->timeout_ms;
	if (sp->ratio_opt_case ==
	    TROUPE__EXECUTION_SPEC__RATIO_OPT_MIN_SUCCESS_RATIO)
		e->ratio = sp->min_success_ratio;
	/* The resolved task carries the per-item timeout to workers. */
	e->task->timeout_ms = e->timeout_ms;
}

int
exec_new(const Troupe__ExecutionSpec *spec, const Troupe__TaskSpec *task,
         exec **out)
{
	exec *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (e == NULL)
		return TROUPE_ENOMEM;
	e->spec = (Troupe__ExecutionSpec *)exec_copy(&spec->base);
	e->task = (Troupe__TaskSpec *)exec_copy(&task->base);
	if (e->spec == NULL || e->task == NULL) {
		exec_free(e);
		return TROUPE_ENOMEM;
	}
	exec_make_id(e->id, sizeof(e->id));
	exec_settings(e);
	e->phase = TROUPE__PHASE__PHASE_QUEUED;
	e->created_ms = e->upload_ms = troupe_now_ms();
	e->dirty = true;
	*out = e;
	return 0;
}

static void
exec_item_clear(item *it)
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
exec_chunk_drop(chunk *c, uint8_t mem)
{
	for (uint32_t i = 0; c->items != NULL && i < c->n; i++) {
		free(c->inputs[i].data);
		exec_item_clear(&c->items[i]);
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

static void
exec_chunk_free(chunk *c)
{
	if (c == NULL)
		return;
	exec_chunk_drop(c, CHUNK_GONE);
	free(c);
}

void
exec_free(exec *e)
{
	if (e == NULL)
		return;
	for (uint32_t i = 0; i < e->n_chunks; i++)
		exec_chunk_free(e->chunks[i]);
	free(e->chunks);
	free(e->retry);
	free(e->error);
	if (e->spec != NULL)
		troupe__execution_spec__free_unpacked(e->spec, NULL);
	if (e->task != NULL)
		troupe__task_spec__free_unpacked(e->task, NULL);
	free(e);
}

/* Returns chunk k, creating it (and the chunks before it) if needed. */
static chunk *
exec_chunk(exec *e, uint32_t k)
{
	while (e->n_chunks <= k) {
		chunk **cs =
		    realloc(e->chunks, (e->n_chunks + 1) * sizeof(*cs));
		chunk *c = calloc(1, sizeof(*c));

		if (cs != NULL)
			e->chunks = cs;
		if (cs == NULL || c == NULL ||
		    (c->inputs = calloc(STORE_CHUNK_ITEMS,
		                        sizeof(*c->inputs))) == NULL ||
		    (c->items = calloc(STORE_CHUNK_ITEMS, sizeof(*c->items))) ==
		        NULL) {
			exec_chunk_free(c);
			return NULL;
		}
		e->chunks[e->n_chunks++] = c;
	}
	return e->chunks[k];
}

int
exec_append(exec *e, ProtobufCBinaryData *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t idx = e->total;
		chunk   *c = exec_chunk(e, (uint32_t)(idx / STORE_CHUNK_ITEMS));
		uint8_t *copy;

		if (c == NULL || (copy = malloc(items[i].len > 0 ? items[i].len
		                                                 : 1)) == NULL)
			return TROUPE_ENOMEM;
		memcpy(copy, items[i].data, items[i].len);
		c->inputs[c->n].data = copy;
		c->inputs[c->n].len = items[i].len;
		c->items[c->n].state = TROUPE__ITEM_STATE__ITEM_PENDING;
		c->n++;
		c->inputs_dirty = true;
		e->total++;
		e->n_pending++;
	}
	e->dirty = true;
	return 0;
}

item *
exec_item(exec *e, uint64_t index)
{
	chunk *c;

	if (index >= e->total)
		return NULL;
	c = e->chunks[index / STORE_CHUNK_ITEMS];
	return c->mem == CHUNK_HOT ? &c->items[index % STORE_CHUNK_ITEMS]
	                           : NULL;
}

bool
exec_in_memory(const exec *e, uint64_t index)
{
	return index < e->total &&
	       e->chunks[index / STORE_CHUNK_ITEMS]->mem == CHUNK_HOT;
}

/* Cools chunk k if the dispatch has not reached it (nothing of it ran):
 * pending items cost nothing but a row in the store until their turn
 * comes (one read then), so neither a huge map nor a thousand queued ones
 * fill the scheduler's memory.  Only whole chunks (or a sealed
 * execution's last) whose inputs are committed. */
static void
exec_cool(exec *e, uint32_t k)
{
	chunk *c = e->chunks[k];

	if (c->mem != CHUNK_HOT || c->stored_results || c->inputs_dirty ||
	    c->results_dirty || (c->n < STORE_CHUNK_ITEMS && !e->sealed) ||
	    (uint64_t)k * STORE_CHUNK_ITEMS < e->cursor)
		return;
	exec_chunk_drop(c, CHUNK_COLD);
}

/* Adds chunk k (the next one) of n items, all PENDING, as cold: a
 * restart reads only what ran already. */
static int
exec_add_cold(exec *e, uint32_t k, uint32_t n)
{
	chunk *c = exec_chunk(e, k);

	if (c == NULL)
		return TROUPE_ENOMEM;
	exec_chunk_drop(c, CHUNK_COLD);
	c->n = n;
	e->total += n;
	e->n_pending += n;
	return 0;
}

/* Reads cold chunk k's inputs back; its items are all PENDING. */
static int
exec_warm(store *st, exec *e, uint32_t k)
{
	chunk               *c = e->chunks[k];
	Troupe__ChunkInputs *in = NULL;
	int                  rv;

	if ((rv = store_get_chunk(st, e->id, k, &in, NULL)) != 0)
		return rv;
	rv = TROUPE_ENOMEM;
	if (in == NULL || in->n_items != c->n) {
		rv = TROUPE_EIO;
		goto fail;
	}
	if ((c->inputs = calloc(STORE_CHUNK_ITEMS, sizeof(*c->inputs))) ==
	        NULL ||
	    (c->items = calloc(STORE_CHUNK_ITEMS, sizeof(*c->items))) == NULL)
		goto fail;
	for (uint32_t i = 0; i < c->n; i++) {
		size_t len = in->items[i].len;

		if ((c->inputs[i].data = malloc(len > 0 ? len : 1)) == NULL) {
			while (i-- > 0)
				free(c->inputs[i].data);
			goto fail;
		}
		memcpy(c->inputs[i].data, in->items[i].data, len);
		c->inputs[i].len = len;
		c->items[i].state = TROUPE__ITEM_STATE__ITEM_PENDING;
	}
	c->mem = CHUNK_HOT;
	troupe__chunk_inputs__free_unpacked(in, NULL);
	return 0;
fail:
	free(c->inputs);
	free(c->items);
	c->inputs = NULL;
	c->items = NULL;
	if (in != NULL)
		troupe__chunk_inputs__free_unpacked(in, NULL);
	return rv;
}

static bool exec_chunk_settled(const chunk *c);

/* Frees what a settled chunk holds once the store has all of it (written
 * whole, no deltas): its inputs and its items.  Nothing changes a settled
 * item again (a late result finds no item and is ignored), and the
 * outputs are read back from the store.  This keeps the scheduler's
 * memory to the chunks still running, whatever the map's size.  A chunk
 * still filling up (an unsealed execution's last) stays. */
static void
exec_evict(exec *e, chunk *c)
{
	if (c->mem != CHUNK_HOT || c->n_deltas > 0 || c->inputs_dirty ||
	    c->results_dirty || (c->n < STORE_CHUNK_ITEMS && !e->sealed) ||
	    !exec_chunk_settled(c))
		return;
	exec_chunk_drop(c, CHUNK_GONE);
}

static chunk *
exec_chunk_of(exec *e, uint64_t index)
{
	return e->chunks[index / STORE_CHUNK_ITEMS];
}

/* Notes that item i of c changed, for the next flush's delta.  Without
 * memory for the list, the chunk is rewritten whole instead. */
static void
exec_touch(chunk *c, uint32_t i)
{
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
			c->n_touched = STORE_CHUNK_ITEMS; /* whole */
			return;
		}
		c->touched = t;
		c->cap_touched = cap;
	}
	if (c->n_touched < c->cap_touched)
		c->touched[c->n_touched++] = (uint16_t)i;
}

void
exec_set_state(exec *e, uint64_t index, Troupe__ItemState to)
{
	item     *it = exec_item(e, index);
	uint64_t *counts[] = {&e->n_pending, &e->n_running, &e->n_succeeded,
	                      &e->n_failed, &e->n_aborted};

	if (it == NULL || it->state == to)
		return;
	(*counts[it->state])--;
	(*counts[to])++;
	it->state = (uint8_t)to;
	exec_touch(exec_chunk_of(e, index), index % STORE_CHUNK_ITEMS);
	e->dirty = true;
}

void
exec_requeue(exec *e, uint64_t index)
{
	if (e->retry_len == e->retry_cap) {
		size_t    cap = e->retry_cap ? e->retry_cap * 2 : 16;
		uint64_t *r = malloc(cap * sizeof(*r));

		if (r == NULL) {
			/* The cursor scan below still finds it, later. */
			if (index < e->cursor)
				e->cursor = index;
			return;
		}
		for (size_t i = 0; i < e->retry_len; i++)
			r[i] = e->retry[(e->retry_head + i) % e->retry_cap];
		free(e->retry);
		e->retry = r;
		e->retry_cap = cap;
		e->retry_head = 0;
	}
	e->retry[(e->retry_head + e->retry_len++) % e->retry_cap] = index;
}

int
exec_next_pending(store *st, exec *e, uint64_t *index)
{
	while (e->retry_len > 0) {
		uint64_t i = e->retry[e->retry_head];

		item *it = exec_item(e, i);

		e->retry_head = (e->retry_head + 1) % e->retry_cap;
		e->retry_len--;
		if (it != NULL &&
		    it->state == TROUPE__ITEM_STATE__ITEM_PENDING) {
			*index = i;
			return 1;
		}
	}
	while (e->cursor < e->total) {
		uint64_t i = e->cursor++;
		item    *it = exec_item(e, i);

		if (it == NULL) {
			uint32_t k = (uint32_t)(i / STORE_CHUNK_ITEMS);
			int      rv = 0;

			if (e->chunks[k]->mem == CHUNK_COLD &&
			    !e->chunks[k]->abort_cold &&
			    (rv = exec_warm(st, e, k)) == 0) {
				e->cursor = i; /* read it again, warm */
				continue;
			}
			if (rv != 0) {
				/* Tried again at the next dispatch. */
				log_error("execution %s: cannot read chunk %u "
				          "back: %s",
				          e->id, k, troupe_strerror(rv));
				e->cursor = i;
				return 0;
			}
			/* Settled, gone from memory. */
			e->cursor = (uint64_t)(k + 1) * STORE_CHUNK_ITEMS;
			continue;
		}
		if (it->state == TROUPE__ITEM_STATE__ITEM_PENDING) {
			*index = i;
			return 1;
		}
	}
	return 0;
}

static void
exec_set_error(exec *e, const char *why)
{
	free(e->error);
	e->error = why != NULL ? strdup(why) : NULL;
}

static void
exec_finish(sched *s, exec *e, Troupe__Phase phase, const char *why)
{
	e->phase = phase;
	e->finished_ms = troupe_now_ms();
	exec_set_error(e, why);
	e->dirty = true;
	sched_dirty(s);
	log_info("execution %s %s (%llu succeeded, %llu failed, %llu aborted)",
	         e->id,
	         protobuf_c_enum_descriptor_get_value(
	             &troupe__phase__descriptor, phase)
	             ->name,
	         (unsigned long long)e->n_succeeded,
	         (unsigned long long)e->n_failed,
	         (unsigned long long)e->n_aborted);
}

void
exec_abort(sched *s, exec *e, Troupe__Phase phase, const char *why)
{
	if (exec_terminal(e->phase))
		return;
	/* Finished items are kept; stop once nothing is left to abort. */
	for (uint64_t i = 0; i < e->total && e->n_pending + e->n_running > 0;
	     i++) {
		item *it = exec_item(e, i);

		if (it == NULL) {
			chunk *c = exec_chunk_of(e, i);

			/* Cold: every item pending; its ABORTED results are
			 * written without reading its inputs back. */
			if (c->mem == CHUNK_COLD && !c->abort_cold) {
				c->abort_cold = true;
				c->results_dirty = true;
				e->n_pending -= c->n;
				e->n_aborted += c->n;
				e->dirty = true;
			}
			i = (i / STORE_CHUNK_ITEMS + 1) * STORE_CHUNK_ITEMS - 1;
			continue;
		}
		if (it->state == TROUPE__ITEM_STATE__ITEM_RUNNING) {
			if (it->w != NULL) {
				worker_cancel(it->w, e->id, i, it->attempts);
				worker_drop_assignment(it->w, e, i);
			}
			it->w = NULL;
		} else if (it->state != TROUPE__ITEM_STATE__ITEM_PENDING)
			continue;
		exec_set_state(e, i, TROUPE__ITEM_STATE__ITEM_ABORTED);
		if (it->error == NULL)
			it->error = strdup(why);
	}
	exec_finish(s, e, phase, why);
}

/* The number of successes a ratio demands: ceil(ratio * total), with a
 * little slack so 0.7 * 10 is 7, not 8. */
static uint64_t
exec_required(const exec *e)
{
	double r = ceil(e->ratio * (double)e->total - 1e-9);
	return r < 0 ? 0 : (uint64_t)r;
}

void
exec_check_done(sched *s, exec *e)
{
	char     why[256];
	uint64_t required;

	if (exec_terminal(e->phase) || !e->sealed)
		return;
	required = exec_required(e);
	if (e->total - e->n_failed < required) {
		snprintf(why, sizeof(why),
		         "%llu of %llu items failed; min success ratio %g "
		         "needs %llu",
		         (unsigned long long)e->n_failed,
		         (unsigned long long)e->total, e->ratio,
		         (unsigned long long)required);
		exec_abort(s, e, TROUPE__PHASE__PHASE_FAILED, why);
		return;
	}
	if (e->n_pending > 0 || e->n_running > 0)
		return;
	if (e->n_succeeded >= required) {
		exec_finish(s, e, TROUPE__PHASE__PHASE_SUCCEEDED, NULL);
		return;
	}
	snprintf(why, sizeof(why), "%llu of %llu items failed",
	         (unsigned long long)e->n_failed, (unsigned long long)e->total);
	exec_finish(s, e, TROUPE__PHASE__PHASE_FAILED, why);
}

void
exec_view(exec *e, Troupe__Execution *x, Troupe__Counts *c)
{
	troupe__execution__init(x);
	troupe__counts__init(c);
	c->pending = e->n_pending;
	c->running = e->n_running;
	c->succeeded = e->n_succeeded;
	c->failed = e->n_failed;
	c->aborted = e->n_aborted;
	x->id = e->id;
	x->spec = e->spec;
	x->task = e->task;
	x->phase = e->phase;
	x->total = e->total;
	x->sealed = e->sealed;
	x->counts = c;
	x->created_ms = e->created_ms;
	x->started_ms = e->started_ms;
	x->finished_ms = e->finished_ms;
	x->version = e->version;
	x->error = e->error != NULL ? e->error : "";
}

/* Fills out (fields pointing into it) from one in-memory item. */
static void
exec_item_fill(const item *it, uint64_t index, Troupe__ItemResult *r)
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

void
exec_item_view(exec *e, uint64_t index, Troupe__ItemResult *out)
{
	exec_item_fill(exec_item(e, index), index, out);
}

/* A chunk is rewritten whole once this many deltas pile up, which bounds
 * what a restart reads; and when a quarter of it changed, or it settled
 * (nothing pending or running: it will not change again, and a finished
 * execution's chunks then hold no deltas). */
#define EXEC_MAX_DELTAS 32

static bool
exec_chunk_settled(const chunk *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->items[i].state == TROUPE__ITEM_STATE__ITEM_PENDING ||
		    c->items[i].state == TROUPE__ITEM_STATE__ITEM_RUNNING)
			return false;
	return true;
}

/* Writes chunk k's changed results: one delta row, or the whole chunk
 * (dropping its deltas).  c->wrote_all says which, for exec_clean. */
static int
exec_write_results(store *st, exec *e, uint32_t k, chunk *c)
{
	Troupe__ChunkResults res = TROUPE__CHUNK_RESULTS__INIT;
	Troupe__ItemResult  *rs = NULL;
	Troupe__ItemResult **ps = NULL;
	uint8_t             *uf = NULL, *sf = NULL;
	uint32_t             n;
	int                  rv = TROUPE_ENOMEM;

	c->wrote_all = c->n_deltas >= EXEC_MAX_DELTAS ||
	               (uint64_t)c->n_touched * 4 >= c->n ||
	               exec_chunk_settled(c);
	n = c->wrote_all ? c->n : c->n_touched;
	if ((rs = calloc(n + 1, sizeof(*rs))) == NULL ||
	    (ps = calloc(n + 1, sizeof(*ps))) == NULL ||
	    (uf = malloc(n + 1)) == NULL || (sf = malloc(n + 1)) == NULL)
		goto done;
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = c->wrote_all ? j : c->touched[j];

		uf[j] = c->items[i].user_fails;
		sf[j] = c->items[i].sys_fails;
		exec_item_fill(&c->items[i],
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
		rv = store_put_delta(st, e->id, k, c->n_deltas, &res);
	else if ((rv = store_put_results(st, e->id, k, &res)) == 0 &&
	         c->n_deltas > 0)
		rv = store_drop_deltas(st, e->id, k);
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
exec_write_cold_abort(store *st, exec *e, uint32_t k, chunk *c)
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
		rs[i].error = e->error != NULL ? e->error : "";
		ps[i] = &rs[i];
	}
	res.n_items = c->n;
	res.items = ps;
	rv = store_put_results(st, e->id, k, &res);
done:
	free(rs);
	free(ps);
	return rv;
}

int
exec_write(store *st, exec *e)
{
	int rv;

	if (e->dirty) {
		Troupe__Execution x;
		Troupe__Counts    c;

		e->version++;
		exec_view(e, &x, &c);
		if ((rv = store_put_execution(st, &x)) != 0)
			return rv;
	}
	for (uint32_t k = 0; k < e->n_chunks; k++) {
		chunk *c = e->chunks[k];

		if (c->mem == CHUNK_COLD && c->results_dirty &&
		    (rv = exec_write_cold_abort(st, e, k, c)) != 0)
			return rv;
		if (c->mem != CHUNK_HOT)
			continue; /* in the store */
		if (c->inputs_dirty) {
			Troupe__ChunkInputs in = TROUPE__CHUNK_INPUTS__INIT;
			in.n_items = c->n;
			in.items = c->inputs;
			if ((rv = store_put_inputs(st, e->id, k, &in)) != 0)
				return rv;
		}
		if (c->results_dirty &&
		    (rv = exec_write_results(st, e, k, c)) != 0)
			return rv;
	}
	return 0;
}

void
exec_clean(exec *e)
{
	e->dirty = false;
	for (uint32_t k = 0; k < e->n_chunks; k++) {
		chunk *c = e->chunks[k];

		bool wrote = c->results_dirty;

		if (c->mem == CHUNK_COLD && c->abort_cold && wrote) {
			c->results_dirty = false;
			c->stored_results = true;
			c->mem = CHUNK_GONE;
		}
		if (c->mem != CHUNK_HOT) {
			c->inputs_dirty = false;
			continue; /* in the store */
		}
		if (c->results_dirty) {
			c->n_deltas = c->wrote_all ? 0 : c->n_deltas + 1;
			c->stored_results = true;
		}
		for (uint32_t j = 0; j < c->n_touched && j < c->cap_touched;
		     j++)
			c->items[c->touched[j]].touched = 0;
		if (c->n_touched > c->cap_touched) /* the list overflowed */
			for (uint32_t i = 0; i < c->n; i++)
				c->items[i].touched = 0;
		c->n_touched = 0;
		c->inputs_dirty = c->results_dirty = false;
		if (wrote && c->wrote_all)
			exec_evict(e, c);
		else
			exec_cool(e, k);
	}
}

static char *
exec_strdup_nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* One chunk being read back: its row, then its deltas, into its items;
 * each item's state is kept aside and applied once all are read. */
typedef struct exec_loading {
	exec    *e;
	chunk   *c;
	uint32_t k;
	uint32_t n_deltas;
	uint8_t  states[STORE_CHUNK_ITEMS];
} exec_loading;

/* Applies one stored result to its item (replacing what it held). */
static int
exec_load_item(exec_loading *ld, uint32_t i, const Troupe__ItemResult *r,
               uint8_t user_fails, uint8_t sys_fails)
{
	item *it = &ld->c->items[i];

	free(it->error);
	free(it->worker_name);
	free(it->output);
	it->output = NULL;
	it->output_len = 0;
	it->attempts = r->attempts;
	it->user_fails = user_fails;
	it->sys_fails = sys_fails;
	it->exit_code = r->exit_code;
	it->started_ms = r->started_ms;
	it->finished_ms = r->finished_ms;
	it->error = exec_strdup_nonempty(r->error);
	it->worker_name = exec_strdup_nonempty(r->worker);
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
exec_load_results(exec_loading *ld, const Troupe__ChunkResults *res, bool delta)
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
		rv = exec_load_item(
		    ld, (uint32_t)i, r,
		    j < res->user_fails.len ? res->user_fails.data[j] : 0,
		    j < res->sys_fails.len ? res->sys_fails.data[j] : 0);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int
exec_load_delta(void *arg, uint32_t seq, Troupe__ChunkResults *delta)
{
	exec_loading *ld = arg;
	int           rv = exec_load_results(ld, delta, true);

	(void)seq;
	ld->n_deltas++;
	troupe__chunk_results__free_unpacked(delta, NULL);
	return rv;
}

int
exec_load(store *st, Troupe__Execution *row, exec **out)
{
	exec    *e = calloc(1, sizeof(*e));
	uint32_t nk;
	int      rv = TROUPE_ENOMEM;

	*out = NULL;
	if (e == NULL)
		return TROUPE_ENOMEM;
	if (row->spec == NULL || row->task == NULL) {
		rv = TROUPE_EIO;
		goto fail;
	}
	e->spec = (Troupe__ExecutionSpec *)exec_copy(&row->spec->base);
	e->task = (Troupe__TaskSpec *)exec_copy(&row->task->base);
	if (e->spec == NULL || e->task == NULL)
		goto fail;
	snprintf(e->id, sizeof(e->id), "%s", row->id);
	exec_settings(e);
	e->phase = row->phase;
	e->sealed = row->sealed;
	e->created_ms = row->created_ms;
	e->upload_ms = troupe_now_ms(); /* its client gets a full timeout */
	e->started_ms = row->started_ms;
	e->finished_ms = row->finished_ms;
	e->version = row->version;
	e->error = exec_strdup_nonempty(row->error);
	nk = (uint32_t)((row->total + STORE_CHUNK_ITEMS - 1) /
	                STORE_CHUNK_ITEMS);
	for (uint32_t k = 0; k < nk; k++) {
		Troupe__ChunkInputs  *in = NULL;
		Troupe__ChunkResults *res = NULL;
		exec_loading          ld = {.e = e, .k = k};

		uint64_t n = row->total - (uint64_t)k * STORE_CHUNK_ITEMS;
		bool     deltas = false;

		if (n > STORE_CHUNK_ITEMS)
			n = STORE_CHUNK_ITEMS;
		if ((rv = store_get_chunk(st, e->id, k, NULL, &res)) != 0 ||
		    (res == NULL &&
		     (rv = store_has_deltas(st, e->id, k, &deltas)) != 0))
			goto fail;
		/* Never dispatched: it stays in the store until its turn. */
		if (res == NULL && !deltas &&
		    (n == STORE_CHUNK_ITEMS || e->sealed)) {
			if ((rv = exec_add_cold(e, k, (uint32_t)n)) != 0)
				goto fail;
			continue;
		}
		if ((rv = store_get_chunk(st, e->id, k, &in, NULL)) != 0)
			goto fail;
		rv = in != NULL ? exec_append(e, in->items, in->n_items)
		                : TROUPE_EIO;
		if (in != NULL)
			troupe__chunk_inputs__free_unpacked(in, NULL);
		if (rv == 0) {
			ld.c = e->chunks[k];
			memset(ld.states, TROUPE__ITEM_STATE__ITEM_PENDING,
			       sizeof(ld.states));
		}
		if (rv == 0 && res != NULL) {
			ld.c->stored_results = true;
			rv = exec_load_results(&ld, res, false);
		}
		if (res != NULL)
			troupe__chunk_results__free_unpacked(res, NULL);
		if (rv == 0)
			rv = store_get_deltas(st, e->id, k, exec_load_delta,
			                      &ld);
		if (rv != 0)
			goto fail;
		for (uint32_t i = 0; i < ld.c->n; i++) {
			uint64_t idx = (uint64_t)k * STORE_CHUNK_ITEMS + i;

			/* An attempt that was running when the scheduler
			 * stopped runs again (its worker may still claim it
			 * when it registers again). */
			if (ld.states[i] == TROUPE__ITEM_STATE__ITEM_RUNNING) {
				ld.c->items[i].sys_fails++;
				e->sys_resumed++;
				continue;
			}
			exec_set_state(e, idx, ld.states[i]);
		}
		ld.c->n_deltas = ld.n_deltas;
		if (ld.n_deltas > 0)
			ld.c->stored_results = true;
	}
	/* What was read is stored already: not dirty, and no flush to
	 * count in n_deltas (exec_clean counts one for a dirty chunk). */
	for (uint32_t k = 0; k < e->n_chunks; k++)
		e->chunks[k]->results_dirty = false;
	exec_clean(e);
	for (uint32_t k = 0; k < e->n_chunks; k++)
		exec_evict(e, e->chunks[k]);
	*out = e;
	return 0;
fail:
	exec_free(e);
	return rv;
}

void
exec_truncate(exec *e, uint64_t total)
{
	while (e->total > total) {
		uint64_t idx = --e->total;
		chunk   *c = exec_chunk_of(e, idx);

		c->n--;
		free(c->inputs[c->n].data);
		c->inputs[c->n].data = NULL;
		exec_item_clear(&c->items[c->n]);
		e->n_pending--;
		c->inputs_dirty = true;
	}
	if (e->cursor > e->total)
		e->cursor = e->total;
}
