/*
 * Closing an nng socket without hanging the caller.
 *
 * nng 1.5.2 (Debian 12's) can deadlock inside nng_close: the reaper waits
 * for a pipe task that was prepared but never started (nanomsg/nng#1543,
 * fixed upstream after 1.5.2).  A worker stopping on SIGTERM, or the CLI
 * exiting, must not hang on it, so libtroupe and the daemons close their
 * sockets through this instead of nng_close.
 */
#ifndef TROUPE_SOCKCLOSE_H
#define TROUPE_SOCKCLOSE_H

#include <nng/nng.h>

/* Closes s, waiting at most wait_ms for nng_close to return.  Returns 0,
 * or TROUPE_ETIMEDOUT when it did not: the close then goes on in a
 * detached thread (the socket is unusable either way), and the caller
 * carries on; it must have stopped every aio and callback of s first. */
int troupe_sock_close(nng_socket s, int wait_ms);

/* What the daemons and libtroupe wait: a healthy close takes microseconds. */
#define TROUPE_SOCK_CLOSE_MS 2000

#endif
