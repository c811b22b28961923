/*
 * What harness.c shares with harness_faults.c and no test needs: strings
 * kept by the cluster, the children's environment, starting, waiting for
 * and stopping processes, printing logs.  Defined in harness.c, so that
 * each helper exists once.  Tests include harness.h or harness_faults.h,
 * never this.
 *
 * Threading: the test's one thread, like the rest of the harness.
 */
#ifndef TROUPE_HARNESS_INTERNAL_H
#define TROUPE_HARNESS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

#define H_STOP_MS 20000 /* the longest a process may take to exit */

/* Sleeps ms milliseconds (resumed after a signal). */
void h_sleep_ms(int ms);

/* vasprintf that fails the test when out of memory.  The caller frees the
 * string. */
char *h_vasprintf(const char *fmt, va_list ap);

/* Printf-style strings kept by c (freed at h_done). */
char *h_vfmt(h_cluster *c, const char *fmt, va_list ap);
char *h_fmt(h_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The build directory under test ($TROUPE_BIN_DIR, else the one the
 * harness was built for).  Owned by c. */
const char *h_bin_dir(h_cluster *c);

/* The environment of a child: ours without TROUPE_* and PATH, plus
 * TROUPE_HOME, PATH with the build's binaries first, for a command run
 * against a TCP cluster (for_cli) TROUPE_ADDR and TROUPE_TOKEN_FILE, then
 * extra ("K=V" entries, NULL-terminated; may be NULL).  Kept by c. */
char **h_env(h_cluster *c, bool for_cli, char *const extra[]);

/* Forks a child in its own process group that dies with us, in the
 * network namespace netns (a name of `ip netns`; NULL or "": ours), with
 * stdin, stdout and stderr from the given files (out and err may be the
 * same path; they are appended to), in h_dir(c), and execs argv with env.
 * Returns its pid; fails the test when it cannot. */
pid_t h_fork_exec(h_cluster *c, char *const argv[], char **env,
                  const char *netns, const char *in, const char *out,
                  const char *err);

/* h_fork_exec of a daemon: a "== harness: starting" line and then its
 * stdout and stderr appended to log, stdin from /dev/null. */
pid_t h_launch(h_cluster *c, char *const argv[], char **env, const char *netns,
               const char *log);

/* Waits up to ms for pid; returns its wait status, or -1 if it is still
 * running. */
int h_wait_pid(pid_t pid, int ms);

/* A wait status for a person ("exit status 1"), kept by c. */
const char *h_status_str(h_cluster *c, int st);

/* Sends sig to *pid (the process called name) and waits at most
 * H_STOP_MS for it to exit; whatever is left of its process group is
 * killed and *pid set to 0.  Returns its wait status; fails the test
 * (after killing it) when it does not exit. */
int h_kill_pid(h_cluster *c, const char *name, pid_t *pid, int sig);

/* Stops *pid (the process called name) with SIGTERM; returns NULL when it
 * exited with status 0, else what went wrong (kept by c).  Whatever is
 * left of its process group is killed and *pid set to 0.  Nothing to do
 * when *pid is 0. */
const char *h_stop_pid(h_cluster *c, const char *name, pid_t *pid);

/* Prints the tail of the log at path to stderr under a header. */
void h_dump_file(const char *title, const char *path);

#endif
