/*
 * The frames protocol, replica side: troupe_actor_serve in a forked child
 * and the Python helper (client/python/troupe_actor.py) in a real python3,
 * each spoken to over pipes with protobuf-c, as the worker will; the
 * delimited framing helpers; the seed's example actors.  Every wait is
 * bounded: waitpid by a deadline, blocking reads by an alarm.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "actor.pb-c.h"
#include "troupe/actor.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "skip.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
/* From the sanitizer runtime (gcc ships no header for it). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define TEST_GUARD_S 60
#define TEST_WAIT_MS 20000
#define TEST_BIG     (1u << 20)

/* One replica process and the worker's ends of its pipes. */
typedef struct peer {
	pid_t                pid;
	int                  status; /* once exited: see peer_wait */
	int                  to;     /* its stdin */
	int                  from;   /* its stdout */
	troupe_frame_reader *r;
} peer;

/* Reverses the input; "fail", "silent" and "print" do what they say. */
static int
test_handler(void *arg, const uint8_t *in, size_t len, uint8_t **out,
             size_t *out_len, char **error)
{
	int *calls = arg;

	(*calls)++;
	if (len == 4 && memcmp(in, "fail", 4) == 0) {
		*error = strdup("boom: fail");
		return 1;
	}
	if (len == 6 && memcmp(in, "silent", 6) == 0)
		return TROUPE_EINVAL;
	if (len == 5 && memcmp(in, "print", 5) == 0) {
		printf("stray output from the handler\n");
		fflush(stdout);
	}
	if (len == 0)
		return 0;
	if ((*out = malloc(len)) == NULL)
		return TROUPE_ENOMEM;
	for (size_t i = 0; i < len; i++)
		(*out)[i] = in[len - 1 - i];
	*out_len = len;
	return 0;
}

static const char python_actor[] =
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import troupe_actor\n"
    "def handle(b):\n"
    "    if b == b'fail':\n"
    "        raise ValueError('boom: fail')\n"
    "    if b == b'silent':\n"
    "        raise KeyError()\n"
    "    if b == b'print':\n"
    "        print('stray output from the handler')\n"
    "    return b[::-1]\n"
    "troupe_actor.serve(handle)\n";

/* The source tree, from this file's path (CMake compiles it by its
 * absolute path), or TROUPE_SOURCE_DIR. */
static const char *
test_src_dir(void)
{
	static char dir[4096];
	const char *env = getenv("TROUPE_SOURCE_DIR");
	const char *tail = "/tests/unit/test_actor.c";
	size_t      n = strlen(__FILE__);

	if (env != NULL && env[0] != '\0')
		return env;
	if (__FILE__[0] != '/' || n <= strlen(tail) ||
	    strcmp(__FILE__ + n - strlen(tail), tail) != 0)
		return NULL;
	snprintf(dir, sizeof(dir), "%.*s", (int)(n - strlen(tail)), __FILE__);
	return dir;
}

static bool
test_have_python(void)
{
	return system("python3 -c 'import sys; sys.exit(sys.version_info < "
	              "(3, 8))' >/dev/null 2>&1") == 0;
}

static int
guard_setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(TEST_GUARD_S);
	return 0;
}

static int
guard_teardown(void **state)
{
	alarm(0);
	return 0;
}

/* Starts a child on two pipes: argv is exec'd, or with argv NULL the
 * child serves test_handler with troupe_actor_serve and exits with -rv. */
static void
peer_start(peer *p, char *const argv[])
{
	int in[2];
	int out[2];

	memset(p, 0, sizeof(*p));
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		int calls = 0;
		int rv;

		signal(SIGPIPE, SIG_DFL);
		alarm(TEST_GUARD_S);
		if (dup2(in[0], STDIN_FILENO) < 0 ||
		    dup2(out[1], STDOUT_FILENO) < 0)
			_exit(120);
		/* Without exec, O_CLOEXEC does not close the worker's ends. */
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		if (argv != NULL) {
			execvp(argv[0], argv);
			_exit(127);
		}
		rv = troupe_actor_serve(test_handler, &calls);
		/* exit, not _exit: the leak checker runs on the child too. */
		exit(-rv);
	}
	close(in[0]);
	close(out[1]);
	p->to = in[1];
	p->from = out[0];
	assert_int_equal(
	    troupe_frame_reader_new(p->from, TROUPE_MAX_MSG, &p->r), 0);
}

/* Returns the child's exit status (or 128 + its signal), failing the
 * test if it has not exited within TEST_WAIT_MS. */
static int
peer_wait(peer *p)
{
	struct timespec nap = {0, 5 * 1000 * 1000};
	int             status = 0;

	if (p->pid == 0)
		return p->status;
	for (int waited = 0; waited < TEST_WAIT_MS; waited += 5) {
		pid_t rv = waitpid(p->pid, &status, WNOHANG);

		if (rv == p->pid) {
			p->pid = 0;
			p->status = WIFEXITED(status) ? WEXITSTATUS(status)
			                              : 128 + WTERMSIG(status);
			return p->status;
		}
		assert_int_equal(rv, 0);
		nanosleep(&nap, NULL);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	p->pid = 0;
	fail_msg("child did not exit within %d ms", TEST_WAIT_MS);
	return -1;
}

static void
peer_close_input(peer *p)
{
	if (p->to >= 0)
		close(p->to);
	p->to = -1;
}

/* Closes the pipes and returns the exit status. */
static int
peer_finish(peer *p)
{
	int status;

	peer_close_input(p);
	status = peer_wait(p);
	close(p->from);
	troupe_frame_reader_free(p->r);
	p->r = NULL;
	return status;
}

static size_t
test_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	for (; v >= 0x80; v >>= 7)
		out[n++] = (uint8_t)(v | 0x80);
	out[n++] = (uint8_t)v;
	return n;
}

static void
send_req(peer *p, uint64_t seq, const void *data, size_t len)
{
	Troupe__ActorRequest req = TROUPE__ACTOR_REQUEST__INIT;

	req.seq = seq;
	req.input.data = (uint8_t *)data;
	req.input.len = len;
	assert_int_equal(troupe_frame_write(p->to, &req.base), 0);
}

static void
send_raw(peer *p, const void *data, size_t len)
{
	assert_int_equal(write(p->to, data, len), (ssize_t)len);
}

/* Reads one reply; the caller frees it. */
static Troupe__ActorReply *
recv_reply(peer *p)
{
	Troupe__ActorReply *rep;
	const uint8_t      *data = NULL;
	size_t              len = 0;

	assert_int_equal(troupe_frame_read(p->r, &data, &len), 0);
	assert_non_null(data);
	rep = troupe__actor_reply__unpack(NULL, len, data);
	assert_non_null(rep);
	return rep;
}

static void
expect_output(peer *p, uint64_t seq, const void *want, size_t len)
{
	Troupe__ActorReply *rep = recv_reply(p);

	assert_int_equal(rep->seq, seq);
	assert_int_equal(rep->result_case, TROUPE__ACTOR_REPLY__RESULT_OUTPUT);
	assert_int_equal(rep->output.len, len);
	if (len > 0)
		assert_memory_equal(rep->output.data, want, len);
	troupe__actor_reply__free_unpacked(rep, NULL);
}

/* Expects an error reply whose message contains want. */
static void
expect_error(peer *p, uint64_t seq, const char *want)
{
	Troupe__ActorReply *rep = recv_reply(p);

	assert_int_equal(rep->seq, seq);
	assert_int_equal(rep->result_case, TROUPE__ACTOR_REPLY__RESULT_ERROR);
	if (strstr(rep->error, want) == NULL)
		fail_msg("error '%s' lacks '%s'", rep->error, want);
	troupe__actor_reply__free_unpacked(rep, NULL);
}

static void
expect_eof(peer *p)
{
	const uint8_t *data = (const uint8_t *)"";
	size_t         len = 1;

	assert_int_equal(troupe_frame_read(p->r, &data, &len), 0);
	assert_null(data);
}

/* The shared conversation: pipelined small items (binary, empty, errors,
 * a stray print), then a 1 MiB item, then EOF. */
static void
converse(peer *p, const char *silent_error)
{
	static const uint8_t bin[] = {'a', 0, 'b', 0, 0xff, 0x80, 0};
	static const uint8_t rev[] = {0, 0x80, 0xff, 0, 'b', 0, 'a'};
	uint8_t             *big = malloc(TEST_BIG);
	uint8_t             *bigrev = malloc(TEST_BIG);

	assert_non_null(big);
	assert_non_null(bigrev);
	for (size_t i = 0; i < TEST_BIG; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 11));
	for (size_t i = 0; i < TEST_BIG; i++)
		bigrev[i] = big[TEST_BIG - 1 - i];

	/* All sent before any reply is read: replies come back in order. */
	send_req(p, 1, "hello", 5);
	send_req(p, 2, bin, sizeof(bin));
	send_req(p, 3, NULL, 0);
	send_req(p, 4, "fail", 4);
	send_req(p, 0, "silent", 6);
	send_req(p, 6, "print", 5);
	send_req(p, UINT64_MAX, "x", 1);
	expect_output(p, 1, "olleh", 5);
	expect_output(p, 2, rev, sizeof(rev));
	expect_output(p, 3, NULL, 0);
	expect_error(p, 4, "boom: fail");
	expect_error(p, 0, silent_error);
	expect_output(p, 6, "tnirp", 5);
	expect_output(p, UINT64_MAX, "x", 1);

	/* Sent whole before its reply is read: the replica reads it all
	 * before answering. */
	send_req(p, 8, big, TEST_BIG);
	expect_output(p, 8, bigrev, TEST_BIG);

	send_req(p, 9, "after", 5);
	expect_output(p, 9, "retfa", 5);
	peer_close_input(p);
	expect_eof(p);
	free(big);
	free(bigrev);
}

static void
test_serve_conversation(void **state)
{
	peer p;

	peer_start(&p, NULL);
	converse(&p, "invalid argument");
	assert_int_equal(peer_finish(&p), 0);
}

static void
test_serve_clean_eof(void **state)
{
	peer p;

	peer_start(&p, NULL);
	peer_close_input(&p);
	expect_eof(&p);
	assert_int_equal(peer_finish(&p), 0);
}

static void
test_serve_malformed(void **state)
{
	static const uint8_t long_varint[] = {
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	/* A frame of 3 bytes: field 2 (bytes) claiming 5 bytes, holding 1. */
	static const uint8_t bad_body[] = {3, 0x12, 0x05, 'a'};
	/* A frame claiming 10 bytes, holding 3, then EOF. */
	static const uint8_t truncated[] = {10, 0x08, 0x01, 0x12};
	uint8_t              huge[TROUPE_FRAME_HDR_MAX];
	size_t               n;
	peer                 p;

	peer_start(&p, NULL);
	send_raw(&p, long_varint, sizeof(long_varint));
	assert_int_equal(peer_finish(&p), -TROUPE_EPROTO);

	/* The reply to a good request before the bad one still goes out. */
	peer_start(&p, NULL);
	send_req(&p, 1, "ok", 2);
	send_raw(&p, bad_body, sizeof(bad_body));
	expect_output(&p, 1, "ko", 2);
	assert_int_equal(peer_finish(&p), -TROUPE_EPROTO);

	peer_start(&p, NULL);
	send_raw(&p, truncated, sizeof(truncated));
	assert_int_equal(peer_finish(&p), -TROUPE_EPROTO);

	/* Over the limit: refused from its prefix alone, without waiting
	 * for the body. */
	n = test_varint(huge, (uint64_t)TROUPE_MAX_MSG + 1);
	peer_start(&p, NULL);
	send_raw(&p, huge, n);
	assert_int_equal(peer_wait(&p), -TROUPE_EFULL);
	peer_finish(&p);
}

static void
test_frame_header(void **state)
{
	static const uint8_t max64[] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t over64[] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                 0xff, 0xff, 0xff, 0xff, 0x02};
	static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	                                 0x80, 0x80, 0x80, 0x80, 0x00};
	size_t               h = 99;
	size_t               n = 99;

	assert_int_equal(troupe_frame_header(NULL, 0, 100, &h, &n), 0);
	assert_int_equal(h, 0);
	assert_int_equal(
	    troupe_frame_header((const uint8_t *)"\x05", 1, 100, &h, &n), 0);
	assert_int_equal(h, 1);
	assert_int_equal(n, 5);
	assert_int_equal(
	    troupe_frame_header((const uint8_t *)"\x00", 1, 0, &h, &n), 0);
	assert_int_equal(h, 1);
	assert_int_equal(n, 0);
	/* Incomplete, then complete: 128 = 0x80 0x01. */
	assert_int_equal(
	    troupe_frame_header((const uint8_t *)"\x80", 1, 200, &h, &n), 0);
	assert_int_equal(h, 0);
	assert_int_equal(
	    troupe_frame_header((const uint8_t *)"\x80\x01xyz", 5, 200, &h, &n),
	    0);
	assert_int_equal(h, 2);
	assert_int_equal(n, 128);
	assert_int_equal(
	    troupe_frame_header((const uint8_t *)"\x80\x01", 2, 127, &h, &n),
	    TROUPE_EFULL);
	assert_int_equal(
	    troupe_frame_header(max64, sizeof(max64), SIZE_MAX, &h, &n), 0);
	assert_int_equal(h, 10);
	assert_true(n == SIZE_MAX);
	assert_int_equal(
	    troupe_frame_header(max64, sizeof(max64), 1 << 20, &h, &n),
	    TROUPE_EFULL);
	assert_int_equal(
	    troupe_frame_header(over64, sizeof(over64), SIZE_MAX, &h, &n),
	    TROUPE_EPROTO);
	assert_int_equal(
	    troupe_frame_header(eleven, sizeof(eleven), SIZE_MAX, &h, &n),
	    TROUPE_EPROTO);
	/* Nine continuation bytes: still waiting for the tenth. */
	assert_int_equal(troupe_frame_header(eleven, 9, SIZE_MAX, &h, &n), 0);
	assert_int_equal(h, 0);
}

static void
test_frame_reader(void **state)
{
	Troupe__ActorRequest  req = TROUPE__ACTOR_REQUEST__INIT;
	Troupe__ActorRequest *got;
	troupe_frame_reader  *r = NULL;
	const uint8_t        *data;
	uint8_t              *enc = NULL;
	size_t                enc_len = 0;
	size_t                len;
	int                   fds[2];

	req.seq = 300;
	req.input.data = (uint8_t *)"abc";
	req.input.len = 3;
	assert_int_equal(troupe_frame_encode(&req.base, &enc, &enc_len), 0);
	assert_int_equal(enc_len,
	                 1 + protobuf_c_message_get_packed_size(&req.base));
	assert_int_equal(enc[0], enc_len - 1);

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_int_equal(troupe_frame_reader_new(fds[0], 64, &r), 0);
	assert_false(troupe_frame_reader_ready(r));
	/* An empty frame (seq 0, no input packs to nothing), then a request
	 * written a byte at a time, then one whole. */
	assert_int_equal(write(fds[1], "\x00", 1), 1);
	assert_int_equal(troupe_frame_read(r, &data, &len), 0);
	assert_non_null(data);
	assert_int_equal(len, 0);
	for (size_t i = 0; i < enc_len; i++)
		assert_int_equal(write(fds[1], enc + i, 1), 1);
	assert_int_equal(troupe_frame_write(fds[1], &req.base), 0);
	assert_int_equal(troupe_frame_read(r, &data, &len), 0);
	assert_non_null(data);
	got = troupe__actor_request__unpack(NULL, len, data);
	assert_non_null(got);
	assert_int_equal(got->seq, 300);
	assert_int_equal(got->input.len, 3);
	assert_memory_equal(got->input.data, "abc", 3);
	troupe__actor_request__free_unpacked(got, NULL);
	assert_true(troupe_frame_reader_ready(r));
	assert_int_equal(troupe_frame_read(r, &data, &len), 0);
	assert_int_equal(len, enc_len - 1);
	assert_memory_equal(data, enc + 1, len);
	assert_false(troupe_frame_reader_ready(r));

	close(fds[1]);
	assert_int_equal(troupe_frame_read(r, &data, &len), 0);
	assert_null(data);
	/* EOF stays EOF. */
	assert_int_equal(troupe_frame_read(r, &data, &len), 0);
	assert_null(data);
	troupe_frame_reader_free(r);
	troupe_frame_reader_free(NULL);
	close(fds[0]);

	/* Over the reader's limit of 64 bytes. */
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_int_equal(troupe_frame_reader_new(fds[0], 64, &r), 0);
	assert_int_equal(write(fds[1], "\x41", 1), 1);
	assert_true(troupe_frame_reader_ready(r) == false);
	assert_int_equal(troupe_frame_read(r, &data, &len), TROUPE_EFULL);
	troupe_frame_reader_free(r);
	close(fds[0]);
	close(fds[1]);
	free(enc);
}

/* Bytes the heap holds now, from the allocator that serves malloc. */
static size_t
heap_in_use(void)
{
#ifdef TEST_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
#endif
}

/* A header claiming a frame of almost TROUPE_MAX_MSG, then 1 KB of it and
 * EOF: the reader's buffer grows with what arrived, not with the claim
 * (a peer could otherwise cost 64 MB a pipe for a few bytes). */
static void
test_frame_reader_bound(void **state)
{
	troupe_frame_reader *r = NULL;
	const uint8_t       *data;
	uint8_t              head[16], body[1024] = {0};
	size_t               len, hl, before, held;
	int                  fds[2];

	hl = test_varint(head, TROUPE_MAX_MSG - 16);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_int_equal(write(fds[1], head, hl), (ssize_t)hl);
	assert_int_equal(write(fds[1], body, sizeof(body)), sizeof(body));
	close(fds[1]);
	before = heap_in_use();
	assert_int_equal(troupe_frame_reader_new(fds[0], TROUPE_MAX_MSG, &r),
	                 0);
	assert_int_equal(troupe_frame_read(r, &data, &len), TROUPE_EPROTO);
	held = heap_in_use() - before; /* the buffer is kept until freed */
	print_message("reader holds %zu bytes for a 1 KB part of a %u-byte "
	              "frame\n",
	              held, TROUPE_MAX_MSG - 16);
	assert_true(held < (1u << 20));
	troupe_frame_reader_free(r);
	close(fds[0]);
}

/* Writes the Python test actor to a temporary file: *path is the
 * caller's to unlink and free. */
static char *
python_actor_file(void)
{
	char path[] = "/tmp/troupe-test-actor-XXXXXX.py";
	int  fd = mkstemps(path, 3);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, python_actor, strlen(python_actor)),
	                 (ssize_t)strlen(python_actor));
	close(fd);
	return strdup(path);
}

static void
test_python_frames(void **state)
{
	const char *src = test_src_dir();
	char        pydir[4200];
	char       *script;
	peer        p;

	if (src == NULL || !test_have_python())
		T_SKIP("needs the source tree and python3 >= 3.8");
	snprintf(pydir, sizeof(pydir), "%s/client/python", src);
	script = python_actor_file();
	{
		char *argv[] = {"python3", script, pydir, NULL};

		peer_start(&p, argv);
		converse(&p, "KeyError");
		assert_int_equal(peer_finish(&p), 0);

		/* A malformed frame ends the replica with a failure. */
		peer_start(&p, argv);
		send_req(&p, 1, "ok", 2);
		expect_output(&p, 1, "ko", 2);
		send_raw(&p, "\x03\x12\x05\x61", 4);
		assert_int_not_equal(peer_finish(&p), 0);
	}
	unlink(script);
	free(script);
}

/* Reads exactly len bytes from fd. */
static void
read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		got += (size_t)n;
	}
	buf[got] = '\0';
}

static void
test_detect_actor(void **state)
{
	const char *src = test_src_dir();
	char        path[4200];
	char        buf[64];
	peer        p;

	if (src == NULL || !test_have_python())
		T_SKIP("needs the source tree and python3 >= 3.8");
	snprintf(path, sizeof(path), "%s/tests/bench/actors/detect.py", src);
	{
		char *lines[] = {"python3", path, "--work-ms", "1", NULL};
		char *frames[] = {"python3", path,   "--frames",
		                  "--boot",  "0.01", "--threshold",
		                  "31",      NULL};

		/* The seed's data points against its threshold of 11. */
		peer_start(&p, lines);
		send_raw(&p, "10\n12\n11\n100\n", 13);
		read_exact(p.from, buf, 22);
		assert_string_equal(buf, "false\ntrue\nfalse\ntrue\n");
		assert_int_equal(peer_finish(&p), 0);

		peer_start(&p, frames);
		send_req(&p, 1, "32", 2);
		send_req(&p, 2, "abc", 3);
		send_req(&p, 3, "31", 2);
		expect_output(&p, 1, "true", 4);
		expect_error(&p, 2, "invalid literal");
		expect_output(&p, 3, "false", 5);
		assert_int_equal(peer_finish(&p), 0);
	}
}

/* Runs detect_item.sh on item; returns its exit status and its stdout in
 * out. */
static int
run_detect_item(const char *src, const char *item, char *out, size_t size)
{
	char  cmd[4400];
	FILE *f;
	int   status;

	snprintf(cmd, sizeof(cmd),
	         "sh '%s/tests/bench/actors/detect_item.sh' --boot 0 "
	         "--work-ms 1 '%s' 2>/dev/null",
	         src, item);
	assert_non_null(f = popen(cmd, "r"));
	out[fread(out, 1, size - 1, f)] = '\0';
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_detect_item(void **state)
{
	const char *src = test_src_dir();
	char        out[64];

	if (src == NULL)
		T_SKIP("needs the source tree (TROUPE_SOURCE_DIR)");
	assert_int_equal(run_detect_item(src, "12", out, sizeof(out)), 0);
	assert_string_equal(out, "true\n");
	assert_int_equal(run_detect_item(src, "11", out, sizeof(out)), 0);
	assert_string_equal(out, "false\n");
	assert_int_equal(run_detect_item(src, "-3", out, sizeof(out)), 0);
	assert_string_equal(out, "false\n");
	assert_int_equal(run_detect_item(src, "x1", out, sizeof(out)), 1);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_frame_header, guard_setup,
	                                    guard_teardown),
	    cmocka_unit_test_setup_teardown(test_frame_reader, guard_setup,
	                                    guard_teardown),
	    cmocka_unit_test_setup_teardown(test_frame_reader_bound,
	                                    guard_setup, guard_teardown),
	    cmocka_unit_test_setup_teardown(test_serve_conversation,
	                                    guard_setup, guard_teardown),
	    cmocka_unit_test_setup_teardown(test_serve_clean_eof, guard_setup,
	                                    guard_teardown),
	    cmocka_unit_test_setup_teardown(test_serve_malformed, guard_setup,
	                                    guard_teardown),
	    cmocka_unit_test_setup_teardown(test_python_frames, guard_setup,
	                                    guard_teardown),
	    cmocka_unit_test_setup_teardown(test_detect_actor, guard_setup,
	                                    guard_teardown),
	    cmocka_unit_test_setup_teardown(test_detect_item, guard_setup,
	                                    guard_teardown),
	};

	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
