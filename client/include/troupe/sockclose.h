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

#include <stdbool.h>

#include <nng/nng.h>

/* Closes s, waiting at most wait_ms for nng_close to return.  Returns 0,
 * or TROUPE_ETIMEDOUT when it did not: the close then goes on in a
 * detached thread (the socket is unusable either way), and the caller
 * carries on; it must have stopped every aio and callback of s first. */
int troupe_sock_close(nng_socket s, int wait_ms);

/* What the daemons and libtroupe wait: a healthy close takes microseconds. */
#define TROUPE_SOCK_CLOSE_MS 2000

/* Whether a troupe_sock_close of this process timed out.  nng's state is
 * then abandoned half closed, so a program that ends should leave with
 * troupe_exit (below) rather than return from main: exit handlers such
 * as LeakSanitizer's would report that state as leaks. */
bool troupe_sock_close_hung(void);

/* Flushes stdio and ends the process with code: _exit when a close hung
 * (see above), exit otherwise. */
void troupe_exit(int code) __attribute__((noreturn));

#endif
