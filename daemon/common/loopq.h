/*
 * The bridge from nng's threads to a daemon's libuv loop.
 *
 * Async contract: nng completes aios on its own threads.  Their callbacks
 * must not touch loop state; they call loopq_post(), which appends to a
 * mutex-protected queue and wakes the loop with uv_async_send.  The loop
 * thread then runs each posted function, in order, with all of the
 * daemon's state to itself.  loopq_post is the only function here that may
 * be called off the loop thread.
 */
#ifndef TROUPE_LOOPQ_H
#define TROUPE_LOOPQ_H

#include <uv.h>

typedef void (*loopq_fn)(void *arg);
typedef struct loopq loopq;

/* Creates a queue bound to loop.  The caller owns *out; free it with
 * loopq_close (on the loop thread) which closes the async handle. */
int loopq_open(uv_loop_t *loop, loopq **out);

/* Closes the uv_async handle and frees q once it is closed; functions
 * still queued are dropped.  Accepts NULL. */
void loopq_close(loopq *q);

/* Any thread: runs fn(arg) on the loop thread soon.  Returns TROUPE_ENOMEM
 * if the entry cannot be allocated (then fn is never called). */
int loopq_post(loopq *q, loopq_fn fn, void *arg);

#endif
