/*
 * A spawned child process with its stdin, stdout and stderr on pipes: what
 * the per-item runner (runner.h) and an actor replica (replica.h) share.
 * It owns the handles and their closing, the kill of the process group,
 * the exit status, the last CHILD_STDERR_TAIL bytes of stderr, and the wait
 * for the output pipes after the exit.  What stdout means, what goes to
 * stdin and what the timer does before the exit stay the owner's.
 *
 * The owner embeds a child and passes itself as owner to child_init; every
 * handle's data is the child, so the owner's own callbacks (stdout reads,
 * its timer phases) find the owner with child_owner().  A child ends when
 * its process has exited and both output pipes reached EOF, or grace_ms
 * after the exit (a grandchild that left the process group may hold them
 * open).  Then every handle is closed and the last close callback calls
 * the owner's closed function, after which the owner may free the child.
 *
 * Threading contract: a child lives on one libuv loop; every function here
 * is called on that loop's thread and the callbacks run there, never from
 * inside a call to this module.
 */
#ifndef TROUPE_WORKER_CHILD_H
#define TROUPE_WORKER_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define CHILD_STDERR_TAIL 4096

/* Called with the owner given to child_init. */
typedef void (*child_fn)(void *owner);
/* Bytes the child wrote to stderr, as they are read (the owner's log). */
typedef void (*child_err_fn)(void *owner, const char *p, size_t n);

typedef struct child {
	uv_process_t proc;
	uv_pipe_t    in;
	uv_pipe_t    out;
	uv_pipe_t    err;
	uv_timer_t   timer; /* the owner's until the exit, then the wait */
	uv_idle_t    idle;  /* the owner's: work put off to the next turn of
	                       the loop (a replica's batched writes) */

	void    *owner;
	child_fn on_exit;   /* the exit was recorded; may be NULL */
	child_fn on_closed; /* every handle is closed */
	unsigned grace_ms;  /* exit to giving up on the pipes */

	char   tail[CHILD_STDERR_TAIL]; /* ring of the last stderr bytes */
	size_t tail_pos;                /* next write position */
	size_t tail_len;
	char   scratch[4096]; /* stderr reads land here first */

	int      pid;
	int      spawn_err; /* !spawned: uv_spawn's libuv error, else 0 */
	int      exit_status;
	int      term_signal;
	unsigned handles;   /* initialised handles not yet closed */
	bool     proc_init; /* uv_spawn was called: proc needs closing */
	bool     spawned;
	bool     exited;
	bool     out_done;
	bool     err_done;
	bool     finishing;

	child_err_fn on_err; /* the owner's, set after child_init; or NULL */
} child;

/* Initialises c's pipes, timer and idle handle on loop (c must be zeroed). From
 * here on the owner ends c with child_finish (or through the exit), and frees
 * it only from on_closed. */
void child_init(child *c, uv_loop_t *loop, void *owner, unsigned grace_ms,
                child_fn on_exit, child_fn on_closed);

/* Spawns argv[0] with argv and env (NULL-terminated; both may go on
 * return), detached in a session and process group of its own, its stdio
 * on c's pipes.  On failure c->spawned stays false and c->spawn_err holds
 * the libuv error, for the owner to word (E2BIG tells a command line too
 * long); c must then be ended with child_finish. */
void child_spawn(child *c, char **argv, char **env);

/* Starts reading stdout with the owner's callbacks and stderr into the
 * tail; a pipe that cannot be read counts as ended. */
void child_read_start(child *c, uv_alloc_cb out_alloc, uv_read_cb out_read);

/* Gives a stdout read room in *buf (grown with realloc, *cap its size),
 * past the len bytes already read: up to 64 KiB, and no more than one byte
 * past max (enough to tell there is too much).  On out of memory *out is
 * empty and libuv reports UV_ENOBUFS to the read callback. */
void child_out_room(uint8_t **buf, size_t *cap, size_t len, size_t max,
                    uv_buf_t *out);

/* stdout ended (EOF or an error): stops reading it; the child ends if the
 * rest is done too. */
void child_out_end(child *c);

/* Sends sig to the process group, unless the process did not start or has
 * exited (its group's id may be reused). */
void child_killpg(child *c, int sig);

/* Closes stdin (a child reading it sees EOF). */
void child_close_in(child *c);

/* Closes every handle; on_closed follows the last close.  Idempotent. */
void child_finish(child *c);

/* Reads, without waiting, whatever stderr holds now (as if libuv had
 * read it: the tail and on_err get it).  An owner about to close an
 * item's account calls it first, so that what the process wrote to
 * stderr before it answered on stdout counts for that item: the two
 * pipes are read in no particular order. */
void child_err_drain(child *c);

/* Appends n bytes to the stderr tail, as if the child wrote them. */
void child_tail_add(child *c, const char *p, size_t n);

/* Copies the newest bytes of the stderr tail (valid UTF-8 not guaranteed)
 * into buf, at most len - 1, NUL-terminated; returns how many. */
size_t child_tail(const child *c, char *buf, size_t len);

/* After the exit: the exit status, or -signal. */
int child_exit_code(const child *c);

/* The owner given to child_init, from any of its handles (their data). */
void *child_owner(const void *handle);

#endif
