/*
 * Argument vectors and environments of the worker's children (see
 * launch.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"
#include "troupe/env.h"
#include "troupe/error.h"

extern char **environ;

int
launch_args_make(launch_args *a, const char *shim, const char *cmd,
                 uint64_t mem_bytes)
{
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	if (shim != NULL) {
		/* The shim checks that we are still its parent after asking
		 * to die with us. */
		snprintf(a->ppid, sizeof(a->ppid), "%ld", (long)getpid());
		a->argv[n++] = (char *)shim;
		a->argv[n++] = "-p";
		a->argv[n++] = a->ppid;
		if (mem_bytes > 0) {
			snprintf(a->mem, sizeof(a->mem), "%" PRIu64, mem_bytes);
			a->argv[n++] = "-m";
			a->argv[n++] = a->mem;
		}
		a->argv[n++] = "-c";
		a->argv[n++] = (char *)cmd;
		a->argv[n] = NULL;
		return 0;
	}
	if (mem_bytes > 0) {
		/* ulimit -v counts KiB; round up so a cap never gets 0. */
		if (asprintf(&a->owned, "ulimit -v %" PRIu64 " && exec %s",
		             (mem_bytes + 1023) / 1024, cmd) < 0) {
			a->owned = NULL;
			return TROUPE_ENOMEM;
		}
		cmd = a->owned;
	}
	a->argv[n++] = "/bin/sh";
	a->argv[n++] = "-c";
	a->argv[n++] = (char *)cmd;
	a->argv[n] = NULL;
	return 0;
}

void
launch_args_clear(launch_args *a)
{
	free(a->owned);
	a->owned = NULL;
}

int
launch_env(char *const *const *sets, const size_t *sizes, size_t n_sets,
           char ***envp)
{
	char *const *all[LAUNCH_MAX_SETS + 1];
	size_t       n_all[LAUNCH_MAX_SETS + 1], n = 0, count;

	assert(n_sets <= LAUNCH_MAX_SETS);
	for (char **e = environ; *e != NULL; e++)
		n++;
	all[0] = environ;
	n_all[0] = n;
	for (size_t s = 0; s < n_sets; s++) {
		all[s + 1] = sets[s];
		n_all[s + 1] = sizes[s];
	}
	return troupe_env_merge(all, n_all, n_sets + 1, envp, &count);
}

char *
launch_find_shim(void)
{
	char    exe[PATH_MAX];
	char   *slash, *path = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return NULL;
	*slash = '\0';
	if (asprintf(&path, "%s/troupe-shim", exe) < 0)
		return NULL;
	if (access(path, X_OK) != 0) {
		free(path);
		return NULL;
	}
	return path;
}
