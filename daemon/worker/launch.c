/*
 * Argument vectors and environments of the worker's children (see
 * launch.h).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"
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

/* True when entry (KEY=VALUE) sets the variable named in set (KEY=...). */
static bool
launch_same_key(const char *entry, const char *set)
{
	size_t n = strcspn(set, "=");

	return strncmp(entry, set, n) == 0 && entry[n] == '=';
}

/* True when a later entry (a later list, or later in the same list) sets
 * the same variable as sets[s][i]. */
static bool
launch_shadowed(char *const *const *sets, const size_t *sizes, size_t n_sets,
                size_t s, size_t i, const char *entry)
{
	for (size_t t = s; t < n_sets; t++)
		for (size_t j = t == s ? i + 1 : 0; j < sizes[t]; j++)
			if (strchr(sets[t][j], '=') != NULL &&
			    launch_same_key(entry, sets[t][j]))
				return true;
	return false;
}

int
launch_env(char *const *const *sets, const size_t *sizes, size_t n_sets,
           char ***envp)
{
	size_t n = 1, k = 0;
	char **env = NULL;

	for (char **e = environ; *e != NULL; e++)
		n++;
	for (size_t s = 0; s < n_sets; s++)
		n += sizes[s];
	if ((env = calloc(n, sizeof(*env))) == NULL)
		return TROUPE_ENOMEM;
	for (char **e = environ; *e != NULL; e++)
		if (!launch_shadowed(sets, sizes, n_sets, 0, (size_t)-1, *e))
			env[k++] = *e;
	for (size_t s = 0; s < n_sets; s++)
		for (size_t i = 0; i < sizes[s]; i++)
			if (strchr(sets[s][i], '=') != NULL &&
			    !launch_shadowed(sets, sizes, n_sets, s, i,
			                     sets[s][i]))
				env[k++] = sets[s][i];
	env[k] = NULL;
	*envp = env;
	return 0;
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
