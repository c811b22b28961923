/*
 * The actor pool's replicas (pool_int.h): a replica id's record and the
 * life of its processes (replica.h).  After each answer it decides what
 * the replica does next (take more, be recycled once env.max_items are
 * served, stop when told); after each exit, whether the id restarts in
 * place (recycled, or work is queued), is given up (POOL_MAX_DEATHS
 * deaths in a row without finishing an item: the queue fails unless
 * another replica can take it) or goes (its TTL, stopped).  An answer
 * becomes the item's report, handed back through pool_finish.
 *
 * Async contract: everything runs on the pool's loop thread.  pool.c
 * calls the record functions; the replica calls pool_on_answer and
 * pool_on_exit from libuv callbacks, never from inside a call to it.
 * Both raise p->depth while they run (done may re-enter the pool) and
 * pool_on_exit calls the pool's exited callback last.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool_int.h"
#include "report.h"
#include "runner.h"
#include "troupe/error.h"

pool_rep *
pool_rep_find(const pool *p, const char *id)
{
	for (pool_rep *r = list_first(&p->reps); r != NULL;
	     r = list_next(&p->reps, r))
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

bool
pool_rep_usable(const pool_rep *r)
{
	return r->proc != NULL && !r->stop_wanted;
}

bool
pool_env_has_usable(const pool *p, const pool_env *e, const pool_rep *but)
{
	for (const pool_rep *r = list_first(&p->reps); r != NULL;
	     r = list_next(&p->reps, r))
		if (r != but && r->env == e && pool_rep_usable(r))
			return true;
	return false;
}

void
pool_rep_unlink(pool *p, pool_rep *r)
{
	list_remove(&p->reps, r);
	assert(r->env->n_reps > 0);
	r->env->n_reps--;
	free(r->id);
	free(r);
}

static void pool_on_answer(void *arg, replica *proc, void *tag,
                           const replica_result *res);
static void pool_on_exit(void *arg, replica *proc);

/* Starts a process for r. */
static int
pool_rep_spawn(pool *p, pool_rep *r)
{
	replica_conf c = {0};
	int          rv;

	c.id = r->id;
	c.env_key = r->env->key;
	c.env = r->env->env;
	c.shim = p->shim;
	c.user = p->user;
	c.max_output = p->max_output;
	c.stop_grace_ms = p->stop_grace_ms;
	c.exit_grace_ms = p->exit_grace_ms;
	if ((rv = replica_start(p->loop, &c, pool_on_answer, pool_on_exit, r,
	                        &r->proc)) != 0) {
		log_error("cannot start replica %s of %s: %s", r->id,
		          r->env->key, troupe_strerror(rv));
		return rv;
	}
	p->n_procs++;
	pool_tally_add(p, r->env->key, "start");
	log_debug("replica %s of %s started (pid %d)", r->id, r->env->key,
	          replica_pid(r->proc));
	return 0;
}

int
pool_rep_new(pool *p, pool_env *e, const char *id, pool_rep **out)
{
	pool_rep *r = NULL;
	int       rv;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->id = strdup(id)) == NULL) {
		free(r);
		return TROUPE_ENOMEM;
	}
	r->p = p;
	r->env = e;
	e->n_reps++;
	list_prepend(&p->reps, r);
	if ((rv = pool_rep_spawn(p, r)) != 0) {
		pool_rep_unlink(p, r);
		return rv;
	}
	if (out != NULL)
		*out = r;
	return 0;
}

static void
pool_on_answer(void *arg, replica *proc, void *tag, const replica_result *res)
{
	pool_rep           *r = arg;
	pool               *p = r->p;
	pool_item          *it = tag;
	Troupe__ItemReport *rep = NULL;
	uint32_t            max = r->env->env->max_items;

	p->depth++;
	if (res->unstarted) {
		/* Its replica went before starting it: it costs nothing and
		 * waits for another (pool_on_exit follows and places it). */
		if (p->shutting) {
			pool_fail(p, it, res->error);
		} else {
			pool_push(r->env, it, true);
			it->started_ms = 0;
		}
		p->depth--;
		return;
	}
	if (res->replied) {
		r->served++;
		r->deaths = 0;
	}
	if (it != NULL && (rep = pool_report(it)) != NULL) {
		/* It waited behind others in the replica's stdin: it started
		 * when it became the current one. */
		if (res->ran_ms > 0 &&
		    rep->finished_ms - (int64_t)res->ran_ms > rep->started_ms)
			rep->started_ms =
			    rep->finished_ms - (int64_t)res->ran_ms;
		if (res->log_len > 0 &&
		    (rep->stderr_log.data = malloc(res->log_len)) != NULL) {
			memcpy(rep->stderr_log.data, res->log, res->log_len);
			rep->stderr_log.len = res->log_len;
			rep->stderr_dropped = res->log_dropped;
		}
		if (res->ok) {
			rep->state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
			if (res->len > 0 &&
			    (rep->output.data = malloc(res->len)) != NULL) {
				memcpy(rep->output.data, res->output, res->len);
				rep->output.len = res->len;
			} else if (res->len > 0) {
				report_system_failure(rep, "the worker is out "
				                           "of memory");
			}
		} else {
			rep->system_failure = res->system_failure;
			rep->exit_code = res->exit_code;
			report_set_error(rep, res->error, strlen(res->error));
		}
	}
	/* What the replica does next, once nothing is outstanding. */
	if (replica_stopping(proc)) {
		/* Going: pool_on_exit decides. */
	} else if (p->shutting || r->stop_wanted || r->stop_after) {
		if (!replica_busy(proc)) {
			r->stop_wanted = true;
			replica_stop(proc, "the replica was stopped");
		}
	} else if (r->recycle || (max > 0 && replica_served(proc) >= max)) {
		if (!replica_busy(proc)) {
			log_debug("replica %s served %" PRIu64
			          " items: recycling it",
			          r->id, replica_served(proc));
			r->recycle = true;
			replica_stop(proc, "the replica was recycled");
		}
	} else {
		pool_place(p, r->env);
	}
	if (it != NULL)
		pool_finish(p, it, rep);
	p->depth--;
}

static void
pool_on_exit(void *arg, replica *proc)
{
	pool_rep *r = arg;
	pool     *p = r->p;
	pool_env *e = r->env;
	bool      crashed = !replica_requested(proc) && !replica_expired(proc);
	char   how[64], tail[RUNNER_STDERR_TAIL], msg[RUNNER_STDERR_TAIL + 256];
	size_t n;

	p->depth++;
	p->n_procs--;
	r->proc = NULL;
	pool_tally_add(p, e->key,
	               crashed                 ? "crashed"
	               : replica_expired(proc) ? "ttl"
	               : r->recycle            ? "recycled"
	                                       : "stopped");
	replica_describe_exit(proc, how, sizeof(how));
	n = replica_stderr_tail(proc, tail, sizeof(tail));
	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
		tail[--n] = '\0';
	if (crashed) {
		r->deaths++;
		log_warn("replica %s of %s (pid %d) died (%s)%s%.200s", r->id,
		         e->key, replica_pid(proc), how,
		         tail[0] != '\0' ? ": " : "", tail);
	}
	if (p->shutting || r->stop_wanted) {
		pool_rep_unlink(p, r);
	} else if (crashed && r->deaths >= POOL_MAX_DEATHS) {
		snprintf(msg, sizeof(msg),
		         "replica %s of %s died %u times in a row without "
		         "finishing an item (last: %s)%s%s",
		         r->id, e->key, r->deaths, how,
		         tail[0] != '\0' ? ": " : "", tail);
		log_warn("%.300s; giving it up", msg);
		pool_unlist(p, r->id);
		pool_rep_unlink(p, r);
		if (!pool_env_has_usable(p, e, NULL))
			pool_fail_queue(p, e, msg);
	} else if (r->recycle || e->n_queued > 0) {
		r->recycle = false;
		if (pool_rep_spawn(p, r) != 0)
			pool_rep_unlink(p, r);
		else
			pool_place(p, e);
	} else {
		log_debug("replica %s of %s is gone (%s)", r->id, e->key,
		          replica_expired(proc) ? "idle past its TTL" : how);
		pool_rep_unlink(p, r);
	}
	/* Items that came back unstarted go to the others. */
	if (!p->shutting)
		pool_place(p, e);
	/* Nothing may wait on a replica that is not coming back. */
	if (e->n_queued > 0 && !pool_env_has_usable(p, e, NULL)) {
		snprintf(msg, sizeof(msg),
		         "no replica of %s left on this worker (last: %s)%s%s",
		         e->key, how, tail[0] != '\0' ? ": " : "", tail);
		pool_fail_queue(p, e, msg);
	}
	p->depth--;
	if (p->exited != NULL)
		p->exited(p->arg);
}
