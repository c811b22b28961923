/*
 * A child process on pipes (see child.h for the contract).
 *
 * Threading: everything runs on the loop thread that owns the child.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"

#define CHILD_READ_CHUNK (64u << 10)

void *
child_owner(const void *handle)
{
	const child *c = ((const uv_handle_t *)handle)->data;

	return c->owner;
}

static void
child_closed(uv_handle_t *h)
{
	child *c = h->data;

	if (--c->handles > 0 || !c->finishing)
		return;
	c->on_closed(c->owner); /* may free c */
}

static void
child_close(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, child_closed);
}

void
child_close_in(child *c)
{
	child_close((uv_handle_t *)&c->in);
}

void
child_finish(child *c)
{
	if (c->finishing)
		return;
	c->finishing = true;
	if (c->proc_init)
		child_close((uv_handle_t *)&c->proc);
	child_close((uv_handle_t *)&c->in);
	child_close((uv_handle_t *)&c->out);
	child_close((uv_handle_t *)&c->err);
	child_close((uv_handle_t *)&c->timer);
	child_close((uv_handle_t *)&c->idle);
}

static void
child_maybe_finish(child *c)
{
	if (c->exited && c->out_done && c->err_done)
		child_finish(c);
}

void
child_killpg(child *c, int sig)
{
	/* The pid leads the group (a detached spawn called setsid); a group
	 * whose members are all gone gives ESRCH, which is fine. */
	if (c->spawned && !c->exited && c->pid > 0)
		kill(-c->pid, sig);
}

void
child_init(child *c, uv_loop_t *loop, void *owner, unsigned grace_ms,
           child_fn on_exit, child_fn on_closed)
{
	c->owner = owner;
	c->on_exit = on_exit;
	c->on_closed = on_closed;
	c->grace_ms = grace_ms;
	uv_pipe_init(loop, &c->in, 0);
	uv_pipe_init(loop, &c->out, 0);
	uv_pipe_init(loop, &c->err, 0);
	uv_timer_init(loop, &c->timer);
	uv_idle_init(loop, &c->idle);
	c->in.data = c->out.data = c->err.data = c->timer.data = c;
	c->idle.data = c;
	c->handles = 5;
}

static void
child_wait_cb(uv_timer_t *t)
{
	child *c = t->data;

	/* Something outside the process group holds the pipes: stop
	 * waiting for them. */
	c->out_done = c->err_done = true;
	child_finish(c);
}

static void
child_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
	child *c = p->data;

	/* Whatever the command left behind in its group dies with it. */
	child_killpg(c, SIGKILL);
	c->exited = true;
	c->exit_status = (int)status;
	c->term_signal = term_signal;
	if (c->on_exit != NULL)
		c->on_exit(c->owner);
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, child_wait_cb, c->grace_ms, 0);
	child_maybe_finish(c);
}

void
child_spawn(child *c, char **argv, char **env)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	int                  rv;

	memset(&opts, 0, sizeof(opts));
	opts.file = argv[0];
	opts.args = argv;
	opts.env = env;
	opts.exit_cb = child_exit_cb;
	opts.flags = UV_PROCESS_DETACHED;
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&c->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&c->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&c->err;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	rv = uv_spawn(c->timer.loop, &c->proc, &opts);
	/* uv_spawn initialises the handle even when it fails. */
	c->proc.data = c;
	c->proc_init = true;
	c->handles++;
	if (rv != 0) {
		c->spawn_err = rv;
		return;
	}
	c->spawned = true;
	c->pid = c->proc.pid;
}

void
child_out_room(uint8_t **buf, size_t *cap, size_t len, size_t max,
               uv_buf_t *out)
{
	size_t want = CHILD_READ_CHUNK;

	if (len + want > max + 1)
		want = max + 1 > len ? max + 1 - len : 0;
	if (want == 0)
		want = 1; /* past the limit already: it is being stopped */
	if (*cap - len < want) {
		size_t   ncap = *cap > 0 ? *cap : CHILD_READ_CHUNK;
		uint8_t *nb;

		while (ncap - len < want)
			ncap *= 2;
		if (ncap > max + 1 && len + want <= max + 1)
			ncap = max + 1;
		if ((nb = realloc(*buf, ncap)) == NULL) {
			*out = uv_buf_init(NULL, 0); /* libuv: ENOBUFS */
			return;
		}
		*buf = nb;
		*cap = ncap;
	}
	*out = uv_buf_init((char *)*buf + len, (unsigned)want);
}

void
child_out_end(child *c)
{
	uv_read_stop((uv_stream_t *)&c->out);
	c->out_done = true;
	child_maybe_finish(c);
}

void
child_tail_add(child *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		c->tail[c->tail_pos] = p[i];
		c->tail_pos = (c->tail_pos + 1) % sizeof(c->tail);
	}
	c->tail_len += n;
	if (c->tail_len > sizeof(c->tail))
		c->tail_len = sizeof(c->tail);
}

size_t
child_tail(const child *c, char *buf, size_t len)
{
	size_t n = c->tail_len, start;

	if (len == 0)
		return 0;
	/* Unroll the ring (the oldest byte is at tail_pos when it is full);
	 * the newest bytes matter most: drop the oldest beyond len. */
	start = n < sizeof(c->tail) ? 0 : c->tail_pos;
	if (n > len - 1) {
		start = (start + (n - (len - 1))) % sizeof(c->tail);
		n = len - 1;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = c->tail[(start + i) % sizeof(c->tail)];
	buf[n] = '\0';
	return n;
}

static void
child_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	child *c = h->data;

	*buf = uv_buf_init(c->scratch, sizeof(c->scratch));
}

static void
child_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	child *c = s->data;

	if (n < 0) {
		uv_read_stop(s);
		c->err_done = true;
		child_maybe_finish(c);
		return;
	}
	child_tail_add(c, buf->base, (size_t)n);
	if (c->on_err != NULL)
		c->on_err(c->owner, buf->base, (size_t)n);
}

void
child_err_drain(child *c)
{
	uv_os_fd_t fd;
	ssize_t    n;

	/* libuv's pipes are non-blocking: read() takes what is there and
	 * says EAGAIN after; libuv's own next read then finds EAGAIN too,
	 * or EOF, which it handles as ever.  Bounded, so a process that
	 * writes stderr without pause cannot hold the loop. */
	if (c->err_done || c->finishing ||
	    uv_fileno((const uv_handle_t *)&c->err, &fd) != 0)
		return;
	for (int i = 0; i < 64; i++) {
		n = read(fd, c->scratch, sizeof(c->scratch));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		child_tail_add(c, c->scratch, (size_t)n);
		if (c->on_err != NULL)
			c->on_err(c->owner, c->scratch, (size_t)n);
	}
}

void
child_read_start(child *c, uv_alloc_cb out_alloc, uv_read_cb out_read)
{
	if (uv_read_start((uv_stream_t *)&c->out, out_alloc, out_read) != 0)
		c->out_done = true;
	if (uv_read_start((uv_stream_t *)&c->err, child_err_alloc,
	                  child_err_read) != 0)
		c->err_done = true;
}

int
child_exit_code(const child *c)
{
	return c->term_signal != 0 ? -c->term_signal : c->exit_status;
}
