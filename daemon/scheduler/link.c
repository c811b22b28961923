/*
 * The worker link service (link.proto's WorkerLink): registration, the
 * Pull long poll that carries shards and cancellations, and Report, whose
 * answer waits for the commit of its results.  Runs on the scheduler's
 * loop thread (see scheduler.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "names.h"
#include "scheduler.h"
#include "troupe/error.h"

typedef struct link_svc {
	Troupe__WorkerLink_Service svc; /* first: rpc.c sees this */
	sched                     *s;
} link_svc;

static sched *
link_sched(Troupe__WorkerLink_Service *svc)
{
	return ((link_svc *)svc)->s;
}

void
worker_free(worker *w)
{
	if (w == NULL)
		return;
	actors_drop_worker(w);
	for (size_t i = 0; i < w->n_cancels; i++)
		free(w->cancel_ids[i]);
	for (size_t i = 0; i < w->n_labels; i++) {
		free(w->label_keys[i]);
		free(w->label_vals[i]);
	}
	free(w->label_keys);
	free(w->label_vals);
	free(w->cancels);
	free(w->cancel_ids);
	free(w->running);
	free(w->name);
	free(w->host);
	free(w);
}

void
worker_drop_assignment(worker *w, exec *e, uint64_t index)
{
	item  *it = exec_item(e, index);
	size_t i = it != NULL ? it->slot : w->n_running;
	item  *moved;

	/* The item knows its slot; a slot that does not hold it would be a
	 * bug, but costs only the search. */
	if (i >= w->n_running || w->running[i].e != e ||
	    w->running[i].index != index)
		for (i = 0; i < w->n_running; i++)
			if (w->running[i].e == e &&
			    w->running[i].index == index)
				break;
	if (i == w->n_running)
		return;
	actors_assigned(w, e, -1);
	w->running[i] = w->running[--w->n_running];
	if (i < w->n_running &&
	    (moved = exec_item(w->running[i].e, w->running[i].index)) != NULL)
		moved->slot = (uint32_t)i;
}

void
worker_cancel(worker *w, const char *exec_id, uint64_t index, uint32_t attempt)
{
	if (w->n_cancels == w->cap_cancels) {
		size_t           cap = w->cap_cancels ? w->cap_cancels * 2 : 8;
		Troupe__ItemRef *c = realloc(w->cancels, cap * sizeof(*c));
		char           **ids;

		if (c == NULL)
			return; /* its result will be ignored anyway */
		w->cancels = c;
		if ((ids = realloc(w->cancel_ids, cap * sizeof(*ids))) == NULL)
			return;
		w->cancel_ids = ids;
		w->cap_cancels = cap;
	}
	if ((w->cancel_ids[w->n_cancels] = strdup(exec_id)) == NULL)
		return;
	troupe__item_ref__init(&w->cancels[w->n_cancels]);
	w->cancels[w->n_cancels].index = index;
	w->cancels[w->n_cancels].attempt = attempt;
	w->n_cancels++;
}

Troupe__ItemRef **
worker_cancels_view(worker *w)
{
	Troupe__ItemRef **cp = calloc(w->n_cancels + 1, sizeof(*cp));

	if (cp == NULL)
		return NULL;
	for (size_t i = 0; i < w->n_cancels; i++) {
		w->cancels[i].execution = w->cancel_ids[i];
		cp[i] = &w->cancels[i];
	}
	return cp;
}

void
worker_cancels_sent(worker *w)
{
	for (size_t i = 0; i < w->n_cancels; i++)
		free(w->cancel_ids[i]);
	w->n_cancels = 0;
}

/* Answers w's parked Pull with every assignment not yet sent, grouped by
 * execution into shards, and every pending cancellation. */
void
worker_answer_pull(sched *s, worker *w)
{
	Troupe__PullReply     rep = TROUPE__PULL_REPLY__INIT;
	Troupe__Shard        *shards = NULL, **sp = NULL;
	Troupe__WorkItem     *items = NULL, **ip = NULL;
	Troupe__ItemRef     **cp = NULL;
	Troupe__ReplicaStart *starts = NULL, **stp = NULL;
	size_t                n_sh = 0, n_it = 0, n_st = 0;

	(void)s;
	if (w->pull == NULL)
		return;
	shards = calloc(w->n_running + 1, sizeof(*shards));
	sp = calloc(w->n_running + 1, sizeof(*sp));
	items = calloc(w->n_running + 1, sizeof(*items));
	ip = calloc(w->n_running + 1, sizeof(*ip));
	cp = worker_cancels_view(w);
	if (shards == NULL || sp == NULL || items == NULL || ip == NULL ||
	    cp == NULL) {
		rpc_fail(w->pull, TROUPE_ENOMEM, "out of memory");
		goto done;
	}
	/* Items of one execution are contiguous in ip[], one shard each. */
	for (size_t i = 0; i < w->n_running; i++) {
		assignment    *a = &w->running[i];
		Troupe__Shard *sh;

		if (a->sent)
			continue;
		sh = NULL;
		for (size_t k = 0; k < n_sh; k++)
			if (strcmp(shards[k].execution, a->e->id) == 0)
				sh = &shards[k];
		if (sh == NULL) {
			sh = &shards[n_sh];
			troupe__shard__init(sh);
			sh->execution = a->e->id;
			sh->task = a->e->task;
			if (a->e->env != NULL)
				sh->env_key = a->e->env->key;
			sp[n_sh++] = sh;
		}
		(void)sh;
	}
	for (size_t k = 0; k < n_sh; k++) {
		shards[k].items = &ip[n_it];
		for (size_t i = 0; i < w->n_running; i++) {
			assignment *a = &w->running[i];
			chunk      *c;

			if (a->sent ||
			    strcmp(a->e->id, shards[k].execution) != 0)
				continue;
			c = a->e->chunks[a->index / STORE_CHUNK_ITEMS];
			troupe__work_item__init(&items[n_it]);
			items[n_it].index = a->index;
			items[n_it].attempt = a->attempt;
			items[n_it].input =
			    c->inputs[a->index % STORE_CHUNK_ITEMS];
			ip[n_it] = &items[n_it];
			n_it++;
			shards[k].n_items++;
			a->sent = true;
		}
	}
	rep.n_shards = n_sh;
	rep.shards = sp;
	rep.n_cancels = w->n_cancels;
	rep.cancels = cp;
	rep.drain = w->state == TROUPE__WORKER_STATE__WORKER_DRAINING;
	for (replica *r = w->replicas; r != NULL; r = r->next)
		if (!r->announced)
			n_st++;
	if (n_st > 0 && ((starts = calloc(n_st, sizeof(*starts))) == NULL ||
	                 (stp = calloc(n_st, sizeof(*stp))) == NULL)) {
		rpc_fail(w->pull, TROUPE_ENOMEM, "out of memory");
		goto done;
	}
	n_st = 0;
	for (replica *r = w->replicas; r != NULL; r = r->next) {
		if (r->announced)
			continue;
		troupe__replica_start__init(&starts[n_st]);
		starts[n_st].replica_id = r->id;
		starts[n_st].env_key = r->env->key;
		starts[n_st].env = r->env->env;
		stp[n_st] = &starts[n_st];
		n_st++;
		r->announced = true;
	}
	rep.start_replicas = stp;
	rep.n_start_replicas = n_st;
	rep.stop_replicas = w->stops;
	rep.n_stop_replicas = w->n_stops;
	rpc_reply(w->pull, &rep.base);
	for (size_t i = 0; i < w->n_stops; i++)
		free(w->stops[i]);
	w->n_stops = 0;
	worker_cancels_sent(w);
done:
	w->pull = NULL;
	free(shards);
	free(sp);
	free(items);
	free(ip);
	free(cp);
	free(starts);
	free(stp);
}

static void
link_worker_id(char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t           rnd[6] = {0};

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd[0] = (uint8_t)troupe_now_ms();
	snprintf(buf, len, "w-");
	for (size_t i = 0; i < sizeof(rnd) && 2 + 2 * i + 2 < len; i++) {
		buf[2 + 2 * i] = hex[rnd[i] >> 4];
		buf[3 + 2 * i] = hex[rnd[i] & 15];
		buf[4 + 2 * i] = '\0';
	}
}

static void
link_register_worker(Troupe__WorkerLink_Service          *svc,
                     const Troupe__RegisterWorkerRequest *in,
                     Troupe__RegisterWorkerReply_Closure closure, void *call)
{
	sched                      *s = link_sched(svc);
	Troupe__RegisterWorkerReply rep = TROUPE__REGISTER_WORKER_REPLY__INIT;
	worker                     *w = NULL;
	char                        why[256];
	size_t                      adopted = 0;

	if (names_check("worker name", in->name, why, sizeof(why)) != 0) {
		rpc_fail(call, TROUPE_EINVAL, "%s", why);
		return;
	}
	if (in->slots == 0 || in->slots > 100000) {
		rpc_fail(call, TROUPE_EINVAL, "slots must be 1..100000, not %u",
		         in->slots);
		return;
	}
	/* A worker coming back under the same name replaces its old self. */
	for (worker *o = s->workers; o != NULL; o = o->next)
		if (strcmp(o->name, in->name) == 0) {
			sched_worker_lost(s, o, "registered again");
			break;
		}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->name = strdup(in->name)) == NULL ||
	    (w->host = strdup(in->host)) == NULL ||
	    (in->n_labels > 0 &&
	     ((w->label_keys = calloc(in->n_labels, sizeof(char *))) == NULL ||
	      (w->label_vals = calloc(in->n_labels, sizeof(char *))) ==
	          NULL))) {
		worker_free(w);
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < in->n_labels; i++) {
		w->label_keys[i] = strdup(in->labels[i]->key);
		w->label_vals[i] = strdup(in->labels[i]->value);
		w->n_labels++;
	}
	link_worker_id(w->id, sizeof(w->id));
	w->slots = in->slots;
	w->pid = in->pid;
	if (in->capacity != NULL) {
		w->cpu_milli = in->capacity->cpu_milli;
		w->mem_bytes = in->capacity->mem_bytes;
	}
	w->state = TROUPE__WORKER_STATE__WORKER_READY;
	w->registered_ms = w->last_seen_ms = troupe_now_ms();
	w->pipe = rpc_call_pipe(call);
	w->next = s->workers;
	if (s->workers != NULL)
		s->workers->prev = w;
	s->workers = w;
	/* Claim back the attempts it still runs, if nobody else has them,
	 * and cancel the rest: their item finished or went elsewhere, or
	 * their execution ended while the worker was away.  No slot limit:
	 * it runs them already (an actor worker holds up to its replicas'
	 * prefetch, more than its slots). */
	for (size_t i = 0; i < in->n_held; i++) {
		const Troupe__ItemRef *r = in->held[i];
		exec                  *e = sched_find_exec(s, r->execution);
		item                  *it = e ? exec_item(e, r->index) : NULL;

		if (it == NULL ||
		    it->state != TROUPE__ITEM_STATE__ITEM_PENDING ||
		    it->attempts != r->attempt || exec_terminal(e->phase)) {
			worker_cancel(w, r->execution, r->index, r->attempt);
			continue;
		}
		it->attempts--; /* sched_assign counts it again */
		sched_assign(s, w, e, r->index);
		w->running[w->n_running - 1].sent = true;
		if (it->sys_fails > 0)
			it->sys_fails--;
		adopted++;
	}
	log_info("worker %s registered as %s (host %s, %u slots; claimed %zu "
	         "running items, cancelled %zu)",
	         w->name, w->id, w->host, w->slots, adopted, w->n_cancels);
	rep.worker_id = w->id;
	rep.pull_timeout_ms = s->opts.pull_timeout_ms;
	rep.lost_after_ms = s->opts.lost_after_ms;
	closure(&rep, call);
	sched_kick(s);
}

/* Finds the caller's worker record, or answers NOT_FOUND. */
static worker *
link_worker(sched *s, const char *id, void *call)
{
	worker *w = sched_find_worker(s, id);

	if (w == NULL) {
		rpc_fail(call, TROUPE_ENOTFOUND,
		         "unknown worker '%.40s': register again", id);
		return NULL;
	}
	w->last_seen_ms = troupe_now_ms();
	w->pipe = rpc_call_pipe(call);
	return w;
}

static void
link_pull(Troupe__WorkerLink_Service *svc, const Troupe__PullRequest *in,
          Troupe__PullReply_Closure closure, void *call)
{
	sched  *s = link_sched(svc);
	worker *w = link_worker(s, in->worker_id, call);

	(void)closure;
	if (w == NULL)
		return;
	if (w->pull != NULL)
		worker_answer_pull(s, w); /* a stray duplicate: let it go */
	actors_reconcile(s, w, in);
	w->pull = call;
	w->pull_deadline_ms = troupe_now_ms() + s->opts.pull_timeout_ms;
	/* A draining worker's Pull is held like any other, so it cannot spin;
	 * the reply still says drain. */
	if (w->n_cancels > 0 || w->n_stops > 0)
		worker_answer_pull(s, w);
	else
		sched_kick(s);
}

static void
link_report(Troupe__WorkerLink_Service *svc, const Troupe__ReportRequest *in,
            Troupe__ReportReply_Closure closure, void *call)
{
	sched       *s = link_sched(svc);
	worker      *w = link_worker(s, in->worker_id, call);
	pending_ack *a;

	(void)closure;
	if (w == NULL)
		return;
	if (in->draining && w->state == TROUPE__WORKER_STATE__WORKER_READY) {
		log_info("worker %s (%s) is draining", w->name, w->id);
		w->state = TROUPE__WORKER_STATE__WORKER_DRAINING;
	}
	if (in->draining && w->pull != NULL) {
		/* The worker gave this Pull up; a reply would carry work
		 * and cancellations into the void. */
		rpc_fail(w->pull, TROUPE_ECANCELED, "the worker is draining");
		w->pull = NULL;
	}
	for (size_t i = 0; i < in->n_results; i++)
		sched_apply_result(s, w, in->results[i]);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		rpc_fail(call, TROUPE_ENOMEM, "out of memory");
		return;
	}
	/* Answered by the flush that commits these results. */
	a->call = call;
	snprintf(a->worker_id, sizeof(a->worker_id), "%s", w->id);
	a->next = s->acks;
	s->acks = a;
	sched_dirty(s);
}

ProtobufCService *
link_service(sched *s)
{
	static link_svc svc = {TROUPE__WORKER_LINK__INIT(link_), NULL};

	svc.s = s;
	return &svc.svc.base;
}
