/*
 * How the worker starts a command, for both per-item processes (runner.c)
 * and actor replicas (replica.c): the argument vector and the environment
 * handed to uv_spawn.
 *
 * A command runs as `/bin/sh -c CMD` under troupe-shim (shim/shim.c) when
 * the worker has one, so that it dies with the worker whatever happens;
 * without a shim it runs as `/bin/sh -c CMD` directly.  Either way the
 * process is spawned detached (UV_PROCESS_DETACHED): it leads a session
 * and a process group of its own, whose id is its pid, so killing that
 * group reaches everything the command started.
 *
 * No state, no threads: plain functions.
 */
#ifndef TROUPE_WORKER_LAUNCH_H
#define TROUPE_WORKER_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

/* The argument vector of one command.  Filled by launch_args_make, cleared
 * by launch_args_clear; argv points into the struct and into cmd. */
typedef struct launch_args {
	char *argv[10];
	char  ppid[24];
	char  mem[24];
	char *owned; /* the command rewritten for a memory cap, or NULL */
} launch_args;

/* Fills a for running cmd (which must outlive a) through shim (NULL: plain
 * /bin/sh), with its address space capped at mem_bytes when that is not
 * 0 (the shim sets RLIMIT_AS; plain sh gets `ulimit -v KiB; exec` in
 * front).  Returns 0 or TROUPE_ENOMEM. */
int launch_args_make(launch_args *a, const char *shim, const char *cmd,
                     uint64_t mem_bytes);

/* Frees what a holds.  Accepts a zeroed struct. */
void launch_args_clear(launch_args *a);

/* Most lists launch_env takes besides the daemon's own. */
#define LAUNCH_MAX_SETS 8

/* Builds a child's environment: the daemon's own, then each of the n_sets
 * (at most LAUNCH_MAX_SETS) lists sets[i] of sizes[i] KEY=VALUE strings, a
 * later value for a key overriding an earlier one (entries without '=' are
 * skipped).  *envp is a malloc'd NULL-terminated array the caller frees
 * (free(*envp) only: the strings stay the caller's and environ's).  Linear in
 * the entries (troupe_env_merge).  Returns 0 or TROUPE_ENOMEM. */
int launch_env(char *const *const *sets, const size_t *sizes, size_t n_sets,
               char ***envp);

/* Returns the path of troupe-shim beside the running executable
 * (/proc/self/exe) when it is there and executable, else NULL.  The
 * caller frees it. */
char *launch_find_shim(void);

#endif
