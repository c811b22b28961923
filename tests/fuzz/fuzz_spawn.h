/*
 * No processes in the fuzzers: uv_spawn, as the worker's child.c calls it,
 * replaced by a fake.  The real uv_spawn is still called, with a stdio it
 * refuses before forking, so that it initialises the process handle as
 * child.c expects (closed later with uv_close); then:
 *  - FZ_SPAWN_FAIL: the spawn fails (UV_ENOENT), as for a command that
 *    does not exist; the runner or replica reports that;
 *  - FZ_SPAWN_FAKE: it "succeeds" with a pid no process can have
 *    (FZ_FAKE_PID, above any pid_max, so a kill finds nobody), stdin
 *    goes to /dev/null and stdout and stderr are never readable (the
 *    fuzzer hands stdout's bytes to the read callback itself).  The
 *    process exits when the fuzzer calls its exit_cb.
 * Either way nothing is ever forked or executed.
 *
 * Header-only, for one program.  Threading: the loop's thread.
 */
#ifndef TROUPE_FUZZ_SPAWN_H
#define TROUPE_FUZZ_SPAWN_H

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#define FZ_FAKE_PID 0x3fffffff

enum { FZ_SPAWN_FAIL, FZ_SPAWN_FAKE };
static int fz_spawn_mode = FZ_SPAWN_FAIL;

int
uv_spawn(uv_loop_t *loop, uv_process_t *p, const uv_process_options_t *o)
{
	static int (*real)(uv_loop_t *, uv_process_t *,
	                   const uv_process_options_t *);
	uv_process_options_t bad = *o;
	uv_stdio_container_t none = {.flags = UV_INHERIT_FD, .data.fd = -1};
	int                  rv, fd;

	if (real == NULL && (real = (int (*)(uv_loop_t *, uv_process_t *,
	                                     const uv_process_options_t *))
	                         dlsym(RTLD_NEXT, "uv_spawn")) == NULL)
		abort();
	bad.stdio = &none;
	bad.stdio_count = 1;
	if ((rv = real(loop, p, &bad)) != UV_EINVAL)
		abort(); /* it must refuse before forking */
	if (fz_spawn_mode == FZ_SPAWN_FAIL)
		return UV_ENOENT;
	p->pid = FZ_FAKE_PID;
	p->exit_cb = o->exit_cb;
	if (o->stdio_count > 0 && (o->stdio[0].flags & UV_CREATE_PIPE)) {
		if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0 ||
		    uv_pipe_open((uv_pipe_t *)o->stdio[0].data.stream, fd) != 0)
			abort();
	}
	return 0;
}

#endif
