/*
 * The integration-test harness: starts the real troupe daemons in a fresh
 * temporary directory, runs the real CLI against them, kills and restarts
 * them, and cleans everything up.
 *
 * Every wait is bounded; when a bound passes, or a daemon dies when it
 * should not, the harness fails the current cmocka test with a message
 * saying what it waited for.  Strings the harness returns are owned by
 * the cluster and stay valid until h_done(), so tests never free them.
 *
 * A test reads as a list of checks:
 *
 *	static void
 *	test_order(void **state)
 *	{
 *		h_cluster *c = h_start(&(h_opts){.workers = 2, .slots = 4});
 *		char      *out;
 *
 *		assert_int_equal(h_run(c, &out, NULL, "seq 3 | troupe map "
 *		                       "--cmd 'echo {}'"), 0);
 *		assert_string_equal(out, "1\n2\n3\n");
 *		h_done(c);
 *	}
 *	...
 *	H_TEST(test_order),
 *
 * H_TEST installs h_teardown, which prints the daemons' logs and cleans
 * up when a check failed before h_done() was reached.
 *
 * Threading: single-threaded; one cluster at a time per test process.
 */
#ifndef TROUPE_HARNESS_H
#define TROUPE_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <setjmp.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "troupe/troupe.h"

typedef struct h_cluster h_cluster;

typedef struct {
	int         workers;      /* worker daemons to start (0: none) */
	int         slots;        /* --slots of each worker (0: default 4) */
	bool        tcp;          /* listen on 127.0.0.1 TCP with a token */
	bool        no_scheduler; /* create the directory only */
	const char *sched_args;   /* extra scheduler flags, space-separated */
	const char *worker_args;  /* extra flags for every worker */
} h_opts;

/* Creates a temporary directory (TROUPE_HOME for everything started),
 * starts a scheduler and o->workers workers (named w1, w2, ...) and waits
 * until the API answers GetHealth and every worker is READY.  o may be
 * NULL (a scheduler and no worker).  Fails the test on any error.  The
 * caller ends the test with h_done(). */
h_cluster *h_start(const h_opts *o);

/* Stops every daemon with SIGTERM and checks that each one exits with
 * status 0 (a crash, an ASan report or a leak at exit fails the test,
 * showing the logs), then removes the directory and frees c. */
void h_done(h_cluster *c);

/* cmocka teardown: when the test did not reach h_done(), prints the logs,
 * kills the daemons and removes the directory. */
int h_teardown(void **state);
#define H_TEST(fn) cmocka_unit_test_teardown(fn, h_teardown)

/* Runs `/bin/sh -c CMD` (printf-style) in the cluster's directory with
 * TROUPE_HOME set, the built `troupe`, `troupe-scheduler` and
 * `troupe-worker` first on PATH, and (for a TCP cluster) TROUPE_ADDR and
 * TROUPE_TOKEN_FILE set.  stdin is empty.  Waits at most h_set_timeout()
 * (default 120 s; past it the command is killed and the test fails).
 * Returns the exit status, or 128 + signal.  *out and *err (each may be
 * NULL) receive its stdout and stderr, owned by c. */
int h_run(h_cluster *c, char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* h_run with `input` on the command's stdin. */
int h_run_in(h_cluster *c, const char *input, char **out, char **err,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets the bound of each later h_run, in milliseconds. */
void h_set_timeout(h_cluster *c, int ms);

/* The cluster's directory, its API address (ipc:// or tcp://), the
 * worker link's address, and the token (NULL unless TCP).  Owned by c. */
const char *h_dir(h_cluster *c);
const char *h_api_addr(h_cluster *c);
const char *h_worker_addr(h_cluster *c);
const char *h_token(h_cluster *c);
const char *h_token_file(h_cluster *c);

/* dir/name (printf-style), owned by c. */
const char *h_path(h_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A connected client with the cluster's token, owned by c (reopened after
 * a scheduler restart).  Fails the test when the API cannot be reached. */
troupe_client *h_client(h_cluster *c);

/* Kills the scheduler with sig and waits (bounded) for it to exit.
 * Returns its wait status. */
int h_kill_scheduler(h_cluster *c, int sig);

/* Starts the scheduler again with the same flags and waits for GetHealth
 * and for every worker still running to be READY again. */
void h_restart_scheduler(h_cluster *c);

/* Waits until n workers are READY (ListWorkers), at most ms. */
void h_wait_workers(h_cluster *c, int n, int ms);

/* Kills worker i (0-based) with sig and waits (bounded) for it to exit;
 * returns its wait status.  Its leftover processes are killed too. */
int h_kill_worker(h_cluster *c, int i, int sig);

/* Pid of worker i (0-based), 0 if it is not running. */
int h_worker_pid(h_cluster *c, int i);

/* The scheduler's pid (0 when it is not running). */
int h_scheduler_pid(h_cluster *c);

/* Reads /proc/PID/WHAT (environ, stat, ...) into buf, NULs kept and
 * NUL-terminated; returns the length read, or -1. */
ssize_t h_proc_read(int pid, const char *what, char *buf, size_t len);

/* Prints every log file of the cluster to stderr (the tail of each). */
void h_dump_logs(h_cluster *c);

/* The contents of a file, owned by c; NULL when it cannot be read. */
char *h_slurp(h_cluster *c, const char *path);

/* A copy of s kept until h_done. */
char *h_keep(h_cluster *c, char *malloced);

/* Counts the lines of s (a final line without a newline counts). */
int h_lines(const char *s);

/* Waits (at most ms) until the file at path has want lines or more, as
 * items that append to it do some time after the scheduler counts them
 * running; returns the lines it has last. */
int h_wait_lines(h_cluster *c, const char *path, int want, int ms);

/* Splits s into lines (the newlines replaced by NULs in a copy owned by
 * c); returns the count and sets *lines to an array owned by c. */
int h_split(h_cluster *c, const char *s, char ***lines);

/* Given n intervals [start[i], end[i]), the most that overlap at once. */
int h_max_overlap(const int64_t *start, const int64_t *end, int n);

/* Reads a file of lines `START END ...` (as written by H_STAMP_CMD) into
 * arrays owned by c; returns the count. */
int h_read_stamps(h_cluster *c, const char *path, int64_t **start,
                  int64_t **end);

/* For items whose output is `START END` (H_STAMP_CMD): the most that ran
 * at once on the worker named worker (NULL: anywhere).  Only SUCCEEDED
 * items count; *count (may be NULL) receives how many did. */
int h_overlap_of(Troupe__ItemResult **items, size_t n, const char *worker,
                 int *count);

/* An item command that records its start and end times (ns) in FILE, one
 * `START END ITEM` line per run, sleeping SECS in between, and prints
 * `START END` as its output.  Use with printf: H_STAMP_CMD, file, secs. */
#define H_STAMP_CMD                                        \
	"s=$(date +%%s%%N); sleep %s; e=$(date +%%s%%N); " \
	"echo \"$s $e $TROUPE_ITEM\" >> %s; echo \"$s $e\""

/* Calls method on h_client(c) like troupe_call; the reply is kept by c
 * (freed at h_done).  Returns 0 or the TROUPE_E* of the reply's code;
 * troupe_client_error(h_client(c)) says why. */
int h_call(h_cluster *c, const char *method, const ProtobufCMessage *input,
           const ProtobufCMessageDescriptor *out_desc,
           ProtobufCMessage                **output);
#define H_CALL(c, Method, req, lower, replyp)                 \
	h_call((c), #Method, (const ProtobufCMessage *)(req), \
	       &troupe__##lower##_reply__descriptor,          \
	       (ProtobufCMessage **)(replyp))

/* GetExecution; fails the test when the call fails.  Kept by c. */
Troupe__Execution *h_execution(h_cluster *c, const char *id);

/* True for SUCCEEDED, FAILED, ABORTED and TIMED_OUT. */
bool h_phase_done(Troupe__Phase p);

/* Polls GetExecution until pred(execution, arg) holds, at most ms; fails
 * the test (naming what) otherwise.  Returns the execution, kept by c. */
typedef bool (*h_exec_pred)(const Troupe__Execution *e, void *arg);
Troupe__Execution *h_wait_exec(h_cluster *c, const char *id, h_exec_pred pred,
                               void *arg, int ms, const char *what);

/* Waits (at most ms) for a terminal phase and returns the execution. */
Troupe__Execution *h_wait_done(h_cluster *c, const char *id, int ms);

/* Every ItemResult of an execution, in index order (GetOutputs, paged);
 * returns the count, *items kept by c. */
size_t h_outputs(h_cluster *c, const char *id, Troupe__ItemResult ***items);

/* Runs `troupe map --detach ARGS` with input on stdin, checks that it
 * exits 0, and returns the execution id it printed (kept by c). */
const char *h_map_detach(h_cluster *c, const char *input, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses text as one JSON value, kept by c; fails the test when it is not
 * JSON. */
json_object *h_json(h_cluster *c, const char *text);

/* Parses text as one JSON value per non-empty line; returns the count and
 * sets *objs (kept by c).  Fails the test on a line that is not JSON. */
int h_json_lines(h_cluster *c, const char *text, json_object ***objs);

/* o[key] as a string (NULL when absent or null; numbers and booleans are
 * printed), or as an integer (-1 when absent).  Owned by o. */
const char *h_jstr(json_object *o, const char *key);
int64_t     h_jint(json_object *o, const char *key);

/* s without trailing whitespace, in place; returns s. */
char *h_chomp(char *s);

/* Shell-quotes s (single quotes), owned by c. */
const char *h_quote(h_cluster *c, const char *s);

/* Milliseconds on a monotonic clock. */
int64_t h_now_ms(void);

/* Fails the test with a message and the logs. */
#define h_fail(c, ...)                 \
	do {                           \
		h_dump_logs(c);        \
		fail_msg(__VA_ARGS__); \
	} while (0)

/* Asserts that haystack contains needle (icontains: ignoring case),
 * printing both and the logs when not. */
#define h_assert_contains(haystack, needle) \
	h_assert_contains_at((haystack), (needle), __FILE__, __LINE__)
#define h_assert_icontains(haystack, needle) \
	h_assert_icontains_at((haystack), (needle), __FILE__, __LINE__)
void h_assert_contains_at(const char *haystack, const char *needle,
                          const char *file, int line);
void h_assert_icontains_at(const char *haystack, const char *needle,
                           const char *file, int line);

#endif
