/*
 * libFuzzer target: libtroupe's replica side of the frames protocol
 * (client/actor.c, troupe_actor_serve), fed a hostile worker's stdin: the
 * input is what the replica reads on fd 0 (varint-delimited ActorRequest
 * frames, or anything).  The handler echoes its item, fails for items
 * starting with 'E' (its message the item's text) and returns nothing for
 * items starting with 'Z'.  Every reply written (fd 1, a memfd here) must
 * be a whole, decodable ActorReply frame with a result, and the serve
 * loop must return (EOF or a protocol error), never crash.
 *
 * Threading: one thread.  fd 0 and fd 1 are this file's while a run
 * lasts (libFuzzer writes to stderr).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actor.pb-c.h"
#include "fuzz_common.h"
#include "troupe/actor.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

static int fz_in = -1, fz_out = -1;

static int
fz_handler(void *arg, const uint8_t *in, size_t len, uint8_t **out,
           size_t *out_len, char **error)
{
	(void)arg;
	if (len > 0 && in[0] == 'E') {
		*error = strndup((const char *)in, len);
		return 1;
	}
	if (len > 0 && in[0] == 'Z')
		return 0;
	if ((*out = malloc(len > 0 ? len : 1)) == NULL)
		return TROUPE_ENOMEM;
	memcpy(*out, in, len);
	*out_len = len;
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	if ((fz_in = memfd_create("fuzz-stdin", 0)) < 0 ||
	    (fz_out = memfd_create("fuzz-stdout", 0)) < 0 ||
	    dup2(fz_in, STDIN_FILENO) < 0 || dup2(fz_out, STDOUT_FILENO) < 0)
		abort();
	return 0;
}

/* The replies written: whole frames, each an ActorReply with a result. */
static void
fz_check_replies(void)
{
	off_t    n = lseek(fz_out, 0, SEEK_END);
	uint8_t *buf;
	size_t   off = 0;

	if (n <= 0)
		return;
	if ((buf = malloc((size_t)n)) == NULL ||
	    pread(fz_out, buf, (size_t)n, 0) != n)
		abort();
	while (off < (size_t)n) {
		size_t              hl = 0, ml = 0;
		Troupe__ActorReply *rep;

		if (troupe_frame_header(buf + off, (size_t)n - off,
		                        TROUPE_MAX_MSG, &hl, &ml) != 0 ||
		    hl == 0 || (size_t)n - off - hl < ml)
			abort();
		rep = troupe__actor_reply__unpack(NULL, ml, buf + off + hl);
		if (rep == NULL ||
		    rep->result_case == TROUPE__ACTOR_REPLY__RESULT__NOT_SET)
			abort();
		troupe__actor_reply__free_unpacked(rep, NULL);
		off += hl + ml;
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rv;

	if (ftruncate(fz_in, 0) != 0 || ftruncate(fz_out, 0) != 0 ||
	    (size > 0 && pwrite(fz_in, data, size, 0) != (ssize_t)size) ||
	    lseek(STDIN_FILENO, 0, SEEK_SET) != 0 ||
	    lseek(STDOUT_FILENO, 0, SEEK_SET) != 0)
		abort();
	rv = troupe_actor_serve(fz_handler, NULL);
	if (rv != 0 && rv != TROUPE_EPROTO && rv != TROUPE_EFULL &&
	    rv != TROUPE_ENOMEM)
		abort();
	fz_check_replies();
	return 0;
}
