/* nng thread -> libuv loop hand-off (see loopq.h for the contract). */
#include <stdlib.h>

#include "loopq.h"
#include "troupe/error.h"

typedef struct loopq_entry {
	struct loopq_entry *next;
	loopq_fn            fn;
	void               *arg;
} loopq_entry;

struct loopq {
	uv_async_t   async;
	uv_mutex_t   mtx;
	loopq_entry *head;
	loopq_entry *tail;
};

/* Loop thread: takes the whole list under the lock, runs it unlocked. */
static void
loopq_drain(uv_async_t *h)
{
	loopq       *q = h->data;
	loopq_entry *e;

	uv_mutex_lock(&q->mtx);
	e = q->head;
	q->head = q->tail = NULL;
	uv_mutex_unlock(&q->mtx);
	while (e != NULL) {
		loopq_entry *next = e->next;
		e->fn(e->arg);
		free(e);
		e = next;
	}
}

int
loopq_open(uv_loop_t *loop, loopq **out)
{
	loopq *q = calloc(1, sizeof(*q));
	int    rv;

	if (q == NULL)
		return TROUPE_ENOMEM;
	if ((rv = uv_mutex_init(&q->mtx)) != 0) {
		free(q);
		return troupe_err_from_uv(rv);
	}
	if ((rv = uv_async_init(loop, &q->async, loopq_drain)) != 0) {
		uv_mutex_destroy(&q->mtx);
		free(q);
		return troupe_err_from_uv(rv);
	}
	q->async.data = q;
	*out = q;
	return 0;
}

static void
loopq_closed(uv_handle_t *h)
{
	loopq       *q = h->data;
	loopq_entry *e = q->head;

	while (e != NULL) {
		loopq_entry *next = e->next;
		free(e);
		e = next;
	}
	uv_mutex_destroy(&q->mtx);
	free(q);
}

void
loopq_close(loopq *q)
{
	if (q != NULL)
		uv_close((uv_handle_t *)&q->async, loopq_closed);
}

int
loopq_post(loopq *q, loopq_fn fn, void *arg)
{
	loopq_entry *e = malloc(sizeof(*e));

	if (e == NULL)
		return TROUPE_ENOMEM;
	e->next = NULL;
	e->fn = fn;
	e->arg = arg;
	uv_mutex_lock(&q->mtx);
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	uv_mutex_unlock(&q->mtx);
	uv_async_send(&q->async);
	return 0;
}
