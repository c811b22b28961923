/*
 * libFuzzer target: the worker's decoder of an actor replica's stdout
 * (daemon/worker/replica_io.c: lines, or varint-delimited ActorReply
 * frames with their seq checked), fed what a hostile replica could write.
 *
 * A real replica is started with replica_start (replica.c), with uv_spawn
 * faked (fuzz_spawn.h): no process runs, stdin goes to /dev/null.  The
 * first byte of the input chooses the protocol (bit 0: frames), the
 * output limit (bits 1-2: 16 B, 1 KiB, 64 KiB, 1 MiB) and how many items
 * are outstanding (bits 3-5: 1..8); the second how the rest is cut into
 * reads (0: one read, else reads of that many bytes).  The rest is handed
 * to the replica's own read callbacks (replica_out_alloc,
 * replica_out_read) as libuv would, until the replica stops reading; then
 * the process "exits" and the replica ends.  Checked: every item sent is
 * answered exactly once (answered's contract in replica.h), an answer
 * with output stays within the limit, and the replica ends.
 *
 * Threading: one thread; the libuv loop is run by this file only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_spawn.h"
#include "replica_int.h"

#define FZ_ITEMS_MAX 8

static uv_loop_t fz_loop;

typedef struct fz_state {
	int    answers[FZ_ITEMS_MAX];
	bool   exited;
	size_t max_output;
} fz_state;

static fz_state fz;

static void
fz_answered(void *arg, replica *r, void *tag, const replica_result *res)
{
	int *slot = tag;

	(void)arg;
	(void)r;
	if (tag == NULL)
		return; /* cancelled: none here */
	if (slot < fz.answers || slot >= fz.answers + FZ_ITEMS_MAX)
		abort();
	if (++*slot > 1)
		abort(); /* answered twice */
	if (res->ok && res->len > fz.max_output)
		abort();
	if (!res->ok && res->error == NULL)
		abort();
}

static void
fz_exited(void *arg, replica *r)
{
	(void)arg;
	(void)r;
	fz.exited = true;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	fz_spawn_mode = FZ_SPAWN_FAKE;
	if (uv_loop_init(&fz_loop) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[4] = {16, 1024, 65536, 1 << 20};
	Troupe__ActorEnv    env = TROUPE__ACTOR_ENV__INIT;
	replica_conf        c = {0};
	replica            *r = NULL;
	size_t              n_items, cut, off = 2;

	if (size < 2)
		return 0;
	memset(&fz, 0, sizeof(fz));
	env.command = "fuzz-replica";
	env.protocol = (data[0] & 1) ? TROUPE__PROTOCOL__PROTOCOL_FRAMES
	                             : TROUPE__PROTOCOL__PROTOCOL_LINES;
	fz.max_output = limits[(data[0] >> 1) & 3];
	n_items = 1 + ((data[0] >> 3) & 7);
	cut = data[1];
	c.id = "r-1";
	c.env_key = "env-1";
	c.env = &env;
	c.max_output = fz.max_output;
	if (replica_start(&fz_loop, &c, fz_answered, fz_exited, NULL, &r) != 0)
		return 0;
	for (size_t i = 0; i < n_items; i++)
		if (replica_send(r, &fz.answers[i], (const uint8_t *)"item", 4,
		                 0) != 0)
			abort();
	uv_run(&fz_loop, UV_RUN_NOWAIT); /* the items go to "stdin" */
	while (off < size && !r->stopping && !r->c.exited) {
		uv_buf_t b;
		size_t   n = cut == 0 ? size - off : cut;

		replica_out_alloc((uv_handle_t *)&r->c.out, 65536, &b);
		if (n > b.len)
			n = b.len;
		if (n > size - off)
			n = size - off;
		memcpy(b.base, data + off, n);
		off += n;
		replica_out_read((uv_stream_t *)&r->c.out, (ssize_t)n, &b);
	}
	/* The process exits (status 0); the replica ends. */
	if (!r->c.exited)
		r->c.proc.exit_cb(&r->c.proc, 0, 0);
	for (int i = 0; i < 1000 && !fz.exited; i++)
		uv_run(&fz_loop, UV_RUN_NOWAIT);
	if (!fz.exited)
		abort(); /* the replica never ended */
	uv_run(&fz_loop, UV_RUN_NOWAIT);
	for (size_t i = 0; i < n_items; i++)
		if (fz.answers[i] != 1)
			abort(); /* an item never answered */
	return 0;
}
