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
 * When the worker runs items as another user (--run-as, main.c), the shim
 * drops to that user (its uid, primary gid and supplementary groups, from
 * launch_user_resolve) before it runs the command, and the command starts
 * in that user's home directory (/ when it cannot be entered).  Without a
 * shim there is nothing to drop privileges with: main.c refuses --run-as.
 *
 * No state, no threads: plain functions.
 */
#ifndef TROUPE_WORKER_LAUNCH_H
#define TROUPE_WORKER_LAUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Most supplementary groups a --run-as user may have (the shim keeps them
 * in a fixed array). */
#define LAUNCH_MAX_GROUPS 1024

/* Who commands run as, resolved once at start (launch_user_resolve); the
 * strings are the shim's arguments.  Owned by whoever resolved it
 * (launch_user_free). */
typedef struct launch_user {
	char  name[64]; /* the user's name, for messages and USER/LOGNAME */
	char  uid[24];  /* -u */
	char  gid[24];  /* -G: the primary group */
	char *groups;   /* -S: every group, comma-separated; never empty */
	char *home;     /* -d: where commands start; its HOME */
	uid_t uid_n;    /* the uid as a number */
} launch_user;

/* Looks up who (a user name, or a uid that has a passwd entry) with
 * getpwnam/getpwuid and getgrouplist and fills *u.  On failure writes one
 * line for a person into err and returns TROUPE_EINVAL (unknown user, too
 * many groups) or TROUPE_ENOMEM; *u then holds nothing. */
int launch_user_resolve(const char *who, launch_user *u, char *err,
                        size_t errlen);

/* Frees what u holds.  Accepts a zeroed struct. */
void launch_user_free(launch_user *u);

/* The argument vector of one command.  Filled by launch_args_make, cleared
 * by launch_args_clear; argv points into the struct, into cmd and into the
 * user. */
typedef struct launch_args {
	char *argv[20];
	char  ppid[24];
	char  mem[24];
	char *owned; /* the command rewritten for a memory cap, or NULL */
} launch_args;

/* Fills a for running cmd (which must outlive a) through shim (NULL: plain
 * /bin/sh), with its address space capped at mem_bytes when that is not
 * 0 (the shim sets RLIMIT_AS; plain sh gets `ulimit -v KiB; exec` in
 * front), as user when that is not NULL (the shim drops to it; user must
 * outlive a).  Returns 0, TROUPE_ENOMEM, or TROUPE_EINVAL for a user
 * without a shim (which must never happen: main.c refuses it). */
int launch_args_make(launch_args *a, const char *shim, const char *cmd,
                     uint64_t mem_bytes, const launch_user *user);

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
