/*
 * The item state machine (see exec.h for the contract).
 *
 *   PENDING --exec_start_attempt--> RUNNING --exec_record_result--> SUCCEEDED
 *      ^                              |  \                          FAILED
 *      +----- a budget left ---------+   exec_attempt_lost (system)
 *   PENDING / RUNNING --exec_abort--> ABORTED
 *
 * Owns an execution's counts, retries ring, cursor and phase; the items
 * themselves live in chunks (chunk.c).  Runs on the scheduler's loop
 * thread only.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "chunk.h"
#include "exec.h"
#include "grow.h"
#include "log.h"
#include "metrics.h"
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

void
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
	e->spec = (Troupe__ExecutionSpec *)troupe_msg_copy(&spec->base);
	e->task = (Troupe__TaskSpec *)troupe_msg_copy(&task->base);
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

void
exec_free(exec *e)
{
	if (e == NULL)
		return;
	for (uint32_t i = 0; i < e->n_chunks; i++)
		chunk_free(e->chunks[i]);
	free(e->chunks);
	free(e->retry);
	free(e->error);
	exec_logs_free(e);
	if (e->spec != NULL)
		troupe__execution_spec__free_unpacked(e->spec, NULL);
	if (e->task != NULL)
		troupe__task_spec__free_unpacked(e->task, NULL);
	free(e);
}

int
exec_add_chunk(exec *e, chunk *c)
{
	chunk **cs = realloc(e->chunks, (e->n_chunks + 1) * sizeof(*cs));

	if (cs == NULL)
		return TROUPE_ENOMEM;
	e->chunks = cs;
	e->chunks[e->n_chunks++] = c;
	e->total += chunk_n(c);
	e->n_pending += chunk_n(c);
	return 0;
}

static chunk *
exec_chunk_of(exec *e, uint64_t index)
{
	assert(index / STORE_CHUNK_ITEMS < e->n_chunks);
	return e->chunks[index / STORE_CHUNK_ITEMS];
}

int
exec_append(exec *e, const ProtobufCBinaryData *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t k = (uint32_t)(e->total / STORE_CHUNK_ITEMS);
		chunk   *c;

		if (k == e->n_chunks) {
			if ((c = chunk_new()) == NULL)
				return TROUPE_ENOMEM;
			if (exec_add_chunk(e, c) != 0) {
				chunk_free(c);
				return TROUPE_ENOMEM;
			}
		}
		if (chunk_push(e->chunks[k], &items[i]) != 0)
			return TROUPE_ENOMEM;
		e->total++;
		e->n_pending++;
	}
	e->dirty = true;
	return 0;
}

void
exec_truncate(exec *e, uint64_t total)
{
	while (e->total > total) {
		chunk_pop(exec_chunk_of(e, --e->total));
		e->n_pending--;
	}
	if (e->cursor > e->total)
		e->cursor = e->total;
}

void
exec_seal(exec *e)
{
	e->sealed = true;
	e->dirty = true;
}

item *
exec_item(exec *e, uint64_t index)
{
	if (index >= e->total)
		return NULL;
	return chunk_item(exec_chunk_of(e, index), index % STORE_CHUNK_ITEMS);
}

bool
exec_in_memory(const exec *e, uint64_t index)
{
	return index < e->total &&
	       chunk_mem(e->chunks[index / STORE_CHUNK_ITEMS]) == CHUNK_HOT;
}

ProtobufCBinaryData
exec_item_input(exec *e, uint64_t index)
{
	return chunk_input(exec_chunk_of(e, index), index % STORE_CHUNK_ITEMS);
}

void
exec_set_state(exec *e, uint64_t index, Troupe__ItemState to)
{
	item     *it = exec_item(e, index);
	uint64_t *counts[] = {&e->n_pending, &e->n_running, &e->n_succeeded,
	                      &e->n_failed, &e->n_aborted};

	if (it == NULL || it->state == to)
		return;
	assert(*counts[it->state] > 0);
	(*counts[it->state])--;
	(*counts[to])++;
	if (e->proj != NULL && it->state == TROUPE__ITEM_STATE__ITEM_RUNNING)
		e->proj->running--;
	if (e->proj != NULL && to == TROUPE__ITEM_STATE__ITEM_RUNNING)
		e->proj->running++;
	it->state = (uint8_t)to;
	chunk_touch(exec_chunk_of(e, index), index % STORE_CHUNK_ITEMS);
	e->dirty = true;
}

/* Puts index on the ring of items to run again, before the cursor's. */
static void
exec_requeue(exec *e, uint64_t index)
{
	if (e->retry_len == e->retry_cap) {
		size_t    cap = e->retry_cap ? e->retry_cap * 2 : 16;
		uint64_t *r = malloc(cap * sizeof(*r));

		if (r == NULL) {
			/* The cursor scan still finds it, later. */
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
		item    *it = exec_item(e, i);

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

			if (chunk_waiting(e->chunks[k]) &&
			    (rv = chunk_warm(e->chunks[k], st, e->id, k)) ==
			        0) {
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

uint32_t
exec_start_attempt(exec *e, uint64_t index, const char *worker_name)
{
	item *it = exec_item(e, index);

	assert(it != NULL && it->state == TROUPE__ITEM_STATE__ITEM_PENDING);
	assert(it->holder == NULL);
	it->attempts++;
	it->started_ms = troupe_now_ms();
	free(it->worker_name);
	it->worker_name = strdup(worker_name);
	exec_set_state(e, index, TROUPE__ITEM_STATE__ITEM_RUNNING);
	if (e->phase == TROUPE__PHASE__PHASE_QUEUED) {
		e->phase = TROUPE__PHASE__PHASE_RUNNING;
		e->started_ms = it->started_ms;
	}
	return it->attempts;
}

bool
exec_attempt_current(exec *e, uint64_t index, uint32_t attempt)
{
	item *it = exec_item(e, index);

	return it != NULL && it->state == TROUPE__ITEM_STATE__ITEM_RUNNING &&
	       it->attempts == attempt;
}

bool
exec_reclaim(exec *e, uint64_t index, uint32_t attempt)
{
	item *it = exec_item(e, index);

	if (it == NULL || it->state != TROUPE__ITEM_STATE__ITEM_PENDING ||
	    it->attempts != attempt || exec_terminal(e->phase))
		return false;
	it->attempts--; /* exec_start_attempt counts it again */
	if (it->sys_fails > 0)
		it->sys_fails--;
	return true;
}

/* The series labels of e's items: its task's name ("(inline)" for a
 * command given with the map) and environment ("" for processes), into
 * buf; with a third pair (name, value) when name is not NULL. */
static const char *
exec_labels(const exec *e, char *buf, size_t len, const char *name,
            const char *value)
{
	const char *task =
	    e->task != NULL && e->task->name != NULL && e->task->name[0] != '\0'
	        ? e->task->name
	        : "(inline)";
	const char *env = e->env_key != NULL ? e->env_key : "";

	return metrics_labels(buf, len, "task", task, "environment", env, name,
	                      value, NULL);
}

/* An item reached a final state by an attempt that ran from started_ms
 * (0: unknown) to now. */
static void
exec_count_final(const exec *e, const item *it, const char *outcome)
{
	char labels[512];

	metrics_add(M_ITEMS_FINISHED,
	            exec_labels(e, labels, sizeof(labels), "outcome", outcome),
	            1);
	if (it->started_ms > 0 && it->finished_ms >= it->started_ms)
		metrics_observe(
		    M_ITEM_SECONDS,
		    exec_labels(e, labels, sizeof(labels), NULL, NULL),
		    (double)(it->finished_ms - it->started_ms) / 1000.0);
}

/* Charges a failure of item index to the user's budget or the system's;
 * PENDING again while it lasts, else FAILED. */
static void
exec_fail_attempt(exec *e, uint64_t index, item *it, bool system,
                  const char *cause)
{
	bool retry = system ? ++it->sys_fails <= EXEC_SYSTEM_RETRIES
	                    : ++it->user_fails <= e->retries;

	if (retry) {
		exec_set_state(e, index, TROUPE__ITEM_STATE__ITEM_PENDING);
		exec_requeue(e, index);
		if (system)
			metrics_add(M_SYSTEM_RETRIES,
			            metrics_labels((char[64]){0}, 64, "cause",
			                           cause, NULL),
			            1);
	} else {
		exec_set_state(e, index, TROUPE__ITEM_STATE__ITEM_FAILED);
		exec_count_final(e, it, "failed");
	}
}

/* Keeps a copy of r's stderr log for the next flush.  Out of memory
 * loses the log, never the result. */
static void
exec_keep_log(exec *e, const Troupe__ItemReport *r)
{
	exec_log *l;
	size_t    len = r->stderr_log.len;
	uint64_t  dropped = r->stderr_dropped;

	if (len == 0)
		return;
	if (len > EXEC_LOG_MAX) {
		dropped += len - EXEC_LOG_MAX;
		len = EXEC_LOG_MAX;
	}
	if (e->n_logs == e->cap_logs) {
		exec_log *v = grow_array(e->logs, &e->cap_logs, sizeof(*v), 8);

		if (v == NULL)
			return;
		e->logs = v;
	}
	l = &e->logs[e->n_logs];
	if ((l->data = malloc(len)) == NULL)
		return;
	memcpy(l->data, r->stderr_log.data, len);
	l->len = len;
	l->index = r->index;
	l->attempt = r->attempt;
	l->dropped = dropped;
	e->n_logs++;
}

void
exec_logs_free(exec *e)
{
	for (size_t i = 0; i < e->n_logs; i++)
		free(e->logs[i].data);
	free(e->logs);
	e->logs = NULL;
	e->n_logs = e->cap_logs = 0;
}

void
exec_record_result(exec *e, const Troupe__ItemReport *r)
{
	item *it = exec_item(e, r->index);
	char  labels[512];

	assert(exec_attempt_current(e, r->index, r->attempt));
	assert(it->holder == NULL);
	exec_keep_log(e, r);
	it->exit_code = r->exit_code;
	it->started_ms = r->started_ms;
	it->finished_ms = r->finished_ms;
	free(it->error);
	it->error = NULL;
	free(it->output);
	it->output = NULL;
	it->output_len = 0;
	if (r->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED) {
		if (r->output.len > 0 &&
		    (it->output = malloc(r->output.len)) != NULL) {
			memcpy(it->output, r->output.data, r->output.len);
			it->output_len = r->output.len;
		}
		exec_set_state(e, r->index, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		exec_count_final(e, it, "succeeded");
		metrics_add(M_ATTEMPTS_FINISHED,
		            exec_labels(e, labels, sizeof(labels), "result",
		                        "succeeded"),
		            1);
		return;
	}
	it->error = strdup(r->error);
	metrics_add(
	    M_ATTEMPTS_FINISHED,
	    exec_labels(e, labels, sizeof(labels), "result",
	                r->system_failure ? "system_failure" : "failed"),
	    1);
	exec_fail_attempt(e, r->index, it, r->system_failure,
	                  "worker_reported");
}

void
exec_attempt_lost(exec *e, uint64_t index, const char *why)
{
	item *it = exec_item(e, index);
	char  labels[512];

	if (it == NULL || it->state != TROUPE__ITEM_STATE__ITEM_RUNNING)
		return;
	assert(it->holder == NULL);
	free(it->error);
	it->error = strdup(why);
	metrics_add(M_ATTEMPTS_FINISHED,
	            exec_labels(e, labels, sizeof(labels), "result", "lost"),
	            1);
	exec_fail_attempt(e, index, it, true, "worker_lost");
}

void *
exec_holder(exec *e, uint64_t index, uint32_t *slot)
{
	item *it = exec_item(e, index);

	if (it == NULL)
		return NULL;
	if (slot != NULL)
		*slot = it->holder_slot;
	return it->holder;
}

void
exec_set_holder(exec *e, uint64_t index, void *holder, uint32_t slot)
{
	item *it = exec_item(e, index);

	assert(it != NULL);
	/* Only a running attempt is held. */
	assert(holder == NULL || it->state == TROUPE__ITEM_STATE__ITEM_RUNNING);
	it->holder = holder;
	it->holder_slot = slot;
}

bool
exec_next_held(exec *e, uint64_t *index, void **holder, uint32_t *attempt)
{
	for (uint64_t i = *index; i < e->total && e->n_running > 0; i++) {
		item *it = exec_item(e, i);

		if (it == NULL) {
			/* Not in memory: nothing of it runs. */
			i = (i / STORE_CHUNK_ITEMS + 1) * STORE_CHUNK_ITEMS - 1;
			continue;
		}
		if (it->holder != NULL) {
			*index = i;
			*holder = it->holder;
			*attempt = it->attempts;
			return true;
		}
	}
	return false;
}

static void
exec_set_error(exec *e, const char *why)
{
	free(e->error);
	e->error = why != NULL ? strdup(why) : NULL;
}

static void
exec_finish(exec *e, Troupe__Phase phase, const char *why)
{
	e->phase = phase;
	e->finished_ms = troupe_now_ms();
	metrics_add(M_EXECS_FINISHED,
	            metrics_labels((char[64]){0}, 64, "phase",
	                           protobuf_c_enum_descriptor_get_value(
	                               &troupe__phase__descriptor, phase)
	                               ->name,
	                           NULL),
	            1);
	exec_set_error(e, why);
	e->dirty = true;
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
exec_abort(exec *e, Troupe__Phase phase, const char *why)
{
	uint64_t aborted = e->n_aborted;
	char     labels[512];

	if (exec_terminal(e->phase))
		return;
	/* Finished items are kept; stop once nothing is left to abort. */
	for (uint64_t i = 0; i < e->total && e->n_pending + e->n_running > 0;
	     i++) {
		item *it = exec_item(e, i);

		if (it == NULL) {
			/* Cold: every item pending; its ABORTED results are
			 * written without reading its inputs back. */
			uint32_t n = chunk_abort_cold(exec_chunk_of(e, i));

			e->n_pending -= n;
			e->n_aborted += n;
			if (n > 0)
				e->dirty = true;
			i = (i / STORE_CHUNK_ITEMS + 1) * STORE_CHUNK_ITEMS - 1;
			continue;
		}
		assert(it->holder == NULL); /* released by the worker layer */
		if (it->state != TROUPE__ITEM_STATE__ITEM_RUNNING &&
		    it->state != TROUPE__ITEM_STATE__ITEM_PENDING)
			continue;
		exec_set_state(e, i, TROUPE__ITEM_STATE__ITEM_ABORTED);
		if (it->error == NULL)
			it->error = strdup(why);
	}
	if (e->n_aborted > aborted)
		metrics_add(M_ITEMS_FINISHED,
		            exec_labels(e, labels, sizeof(labels), "outcome",
		                        "aborted"),
		            (double)(e->n_aborted - aborted));
	exec_finish(e, phase, why);
}

/* The number of successes a ratio demands: ceil(ratio * total), with a
 * little slack so 0.7 * 10 is 7, not 8. */
static uint64_t
exec_required(const exec *e)
{
	double r = ceil(e->ratio * (double)e->total - 1e-9);
	return r < 0 ? 0 : (uint64_t)r;
}

bool
exec_check_done(exec *e, char *why, size_t len)
{
	uint64_t required;

	if (exec_terminal(e->phase) || !e->sealed)
		return false;
	required = exec_required(e);
	if (e->total - e->n_failed < required) {
		snprintf(why, len,
		         "%llu of %llu items failed; min success ratio %g "
		         "needs %llu",
		         (unsigned long long)e->n_failed,
		         (unsigned long long)e->total, e->ratio,
		         (unsigned long long)required);
		return true;
	}
	if (e->n_pending > 0 || e->n_running > 0)
		return false;
	if (e->n_succeeded >= required) {
		exec_finish(e, TROUPE__PHASE__PHASE_SUCCEEDED, NULL);
		return false;
	}
	snprintf(why, len, "%llu of %llu items failed",
	         (unsigned long long)e->n_failed, (unsigned long long)e->total);
	exec_finish(e, TROUPE__PHASE__PHASE_FAILED, why);
	return false;
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

void
exec_item_view(exec *e, uint64_t index, Troupe__ItemResult *out)
{
	item *it = exec_item(e, index);

	assert(it != NULL);
	chunk_item_view(it, index, out);
}
