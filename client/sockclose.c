/*
 * troupe_sock_close: nng_close on a helper thread, waited for with a
 * deadline (see sockclose.h for why).  The helper and the caller share
 * one small record; whichever of the two lets go of it last frees it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "troupe/error.h"
#include "troupe/sockclose.h"

/* Set once a close timed out; never cleared. */
static atomic_bool sockclose_hung;

bool
troupe_sock_close_hung(void)
{
	return atomic_load(&sockclose_hung);
}

void
troupe_exit(int code)
{
	fflush(stdout);
	fflush(stderr);
	if (troupe_sock_close_hung())
		_exit(code);
	exit(code);
}

typedef struct sockclose {
	nng_socket      s;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	int             refs;
} sockclose;

/* Drops one reference; frees c with the last one. */
static void
sockclose_release(sockclose *c)
{
	bool last;

	pthread_mutex_lock(&c->mtx);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->mtx);
	if (!last)
		return;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

static void *
sockclose_main(void *arg)
{
	sockclose *c = arg;

	nng_close(c->s);
	pthread_mutex_lock(&c->mtx);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	sockclose_release(c);
	return NULL;
}

int
troupe_sock_close(nng_socket s, int wait_ms)
{
	sockclose         *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	pthread_attr_t     ta;
	pthread_t          th;
	struct timespec    until;
	bool               done;
	int                rv = 0;

	if (c == NULL) {
		nng_close(s); /* no memory to wait with: wait forever */
		return 0;
	}
	c->s = s;
	c->refs = 2;
	pthread_mutex_init(&c->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &ta, sockclose_main, c) != 0) {
		pthread_attr_destroy(&ta);
		nng_close(s);
		c->refs = 1;
		sockclose_release(c);
		return 0;
	}
	pthread_attr_destroy(&ta);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mtx);
	while (!c->done && rv != ETIMEDOUT)
		rv = pthread_cond_timedwait(&c->cv, &c->mtx, &until);
	done = c->done;
	pthread_mutex_unlock(&c->mtx);
	sockclose_release(c);
	if (!done)
		atomic_store(&sockclose_hung, true);
	return done ? 0 : TROUPE_ETIMEDOUT;
}
