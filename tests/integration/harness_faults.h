/*
 * Helpers for the fault tests, on top of harness.h: daemons started by the
 * test itself (in a network namespace, with extra environment), shell
 * commands to run when the test ends however it ends (deleting network
 * namespaces, unmounting a tmpfs), item-by-item checks of outputs, and
 * the pids of actor replicas.
 *
 * Processes started here are not the harness's: h_done() does not stop
 * them, hf_stop_all() does (and checks that each exits 0 on SIGTERM).
 * Tests using any of this are declared with HF_TEST instead of H_TEST, so
 * that a failing test still kills them and runs the cleanup commands.
 *
 * Threading: single-threaded, like the harness; one test at a time.
 */
#ifndef TROUPE_HARNESS_FAULTS_H
#define TROUPE_HARNESS_FAULTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

typedef struct hf_proc hf_proc;

/* Starts argv[0] with arguments argv (NULL-terminated; argv[0] is a path)
 * in a new process group that dies with the test, stdin from /dev/null,
 * stdout and stderr appended to DIR/h-NAME.log, in the network namespace
 * netns (a name of `ip netns`, or NULL for the test's own), with env
 * (NULL-terminated "K=V" entries, or NULL) added to the test's
 * environment minus TROUPE_*.  Returns the process, owned by the fault
 * helpers (freed when the test ends). */
hf_proc *hf_spawn(h_cluster *c, const char *name, const char *netns,
                  char *const env[], char *const argv[]);

/* A worker of cluster c started with hf_spawn: named name, home
 * DIR/name, joining h_worker_addr(c) (with the cluster's token file for a
 * TCP cluster), with slots slots and env added to its environment (may
 * be NULL). */
hf_proc *hf_spawn_worker(h_cluster *c, const char *name, int slots,
                         char *const env[]);

/* The daemon binaries of the build under test: "troupe-scheduler",
 * "troupe-worker" or "troupe" (CLI).  Owned by c. */
const char *hf_bin(h_cluster *c, const char *name);

/* Sends sig to p and waits (at most 20 s) for it to exit; returns its
 * wait status (fails the test when it does not exit).  Whatever is left
 * of its process group is killed. */
int hf_kill(h_cluster *c, hf_proc *p, int sig);

/* Starts p again with the same arguments (after hf_kill). */
void hf_respawn(h_cluster *c, hf_proc *p);

/* p's pid, 0 when it is not running; whether it still runs (a process
 * that exited is reaped and its status printed to stderr). */
pid_t hf_pid(const hf_proc *p);
bool  hf_alive(h_cluster *c, hf_proc *p);

/* Stops every process started with hf_spawn with SIGTERM and fails the
 * test (with the logs) unless each exits with status 0. */
void hf_stop_all(h_cluster *c);

/* Prints the logs of the processes started here (h_dump_logs prints the
 * harness's own). */
void hf_dump_logs(h_cluster *c);

/* Registers a shell command to run at the end of the test, whether it
 * passes or fails (last registered, first run); its output is ignored.
 * Printf-style. */
void hf_at_end(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs `/bin/sh -c CMD` (printf-style) right now, outside any cluster;
 * returns its exit status (128 + signal when killed).  For setup steps
 * such as `ip netns add`. */
int hf_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cmocka teardown: kills what hf_spawn started, runs the hf_at_end
 * commands, then h_teardown. */
int hf_teardown(void **state);
#define HF_TEST(fn) cmocka_unit_test_teardown(fn, hf_teardown)

/* Skips the test (cmocka skip, with the reason on stderr) unless it runs
 * as root; returns normally when it does. */
void hf_need_root(const char *why);

/* The result of checking the outputs of one execution item by item. */
typedef struct {
	uint64_t n;            /* items */
	uint64_t reruns;       /* sum over items of attempts - 1 */
	uint32_t max_attempts; /* the most attempts of one item */
	uint64_t bad;          /* items not as expected (0 when it passed) */
} hf_tally;

/* Expected output of item i (0-based) written to buf (at most len bytes);
 * returns its length. */
typedef size_t (*hf_expect_fn)(uint64_t i, char *buf, size_t len, void *arg);

/* Reads every output of execution id (GetOutputs, paged) and checks that
 * there are n, each SUCCEEDED with exactly the expected output and at
 * least one attempt.  Prints the first few differences and fails the test
 * when any item differs; otherwise returns the tally. */
hf_tally hf_check_outputs(h_cluster *c, const char *id, uint64_t n,
                          hf_expect_fn expect, void *arg);

/* An hf_expect_fn for outputs "PREFIX<i+1>SUFFIX" (arg: an hf_seq). */
typedef struct {
	const char *prefix, *suffix;
} hf_seq;
size_t hf_expect_seq(uint64_t i, char *buf, size_t len, void *arg);

/* The pids of the replicas the scheduler lists (ListActors) for the
 * environment key (NULL: every environment) on worker (NULL: any), at
 * most max into pids; returns how many.  busy_only: only BUSY ones. */
int hf_replica_pids(h_cluster *c, const char *key, const char *worker,
                    bool busy_only, int *pids, int max);

/* The live processes (zombies excluded) whose environment holds the
 * entry env exactly ("K=V") and, when comm is not NULL, whose command name
 * is comm: up to max pids into pids (may be NULL); returns how many. */
int hf_procs_with(const char *env, const char *comm, int *pids, int max);

/* Waits (at most ms) until want processes match hf_procs_with(env, comm);
 * returns how many matched last (want unless the wait ran out). */
int hf_wait_procs(const char *env, const char *comm, int want, int ms);

/* Waits (at most ms) until no process matches hf_procs_with(env, comm);
 * fails the test naming what otherwise (after killing them). */
void hf_wait_no_procs(h_cluster *c, const char *env, const char *comm, int ms,
                      const char *what);

/* Sleeps ms milliseconds. */
void hf_sleep_ms(int ms);

/* A small seeded random generator (xorshift64*), so a schedule can be
 * replayed from its seed. */
uint64_t hf_rand(uint64_t *state);

/* Execution predicates for h_wait_exec: at least *(uint64_t *)arg items
 * SUCCEEDED; at least *(uint64_t *)arg items RUNNING. */
bool hf_succeeded_at_least(const Troupe__Execution *e, void *arg);
bool hf_running_at_least(const Troupe__Execution *e, void *arg);

#endif
