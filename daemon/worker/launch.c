/*
 * Argument vectors and environments of the worker's children (see
 * launch.h).
 */
#include <assert.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
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
launch_user_resolve(const char *who, launch_user *u, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	gid_t          groups[LAUNCH_MAX_GROUPS];
	int            ng = LAUNCH_MAX_GROUPS;
	char          *end = NULL;
	size_t         cap, len = 0;
	int            rv = TROUPE_EINVAL;

	memset(u, 0, sizeof(*u));
	if (who[0] != '\0')
		pw = getpwnam(who);
	if (pw == NULL && who[0] >= '0' && who[0] <= '9') {
		unsigned long v = strtoul(who, &end, 10);

		if (*end == '\0' && v == (uid_t)v)
			pw = getpwuid((uid_t)v);
	}
	if (pw == NULL) {
		snprintf(err, errlen,
		         "--run-as: no user '%.64s' on this host (give a user "
		         "name or uid from /etc/passwd)",
		         who);
		goto fail;
	}
	if (strlen(pw->pw_name) >= sizeof(u->name)) {
		snprintf(err, errlen,
		         "--run-as: the user name '%.64s...' is "
		         "too long",
		         pw->pw_name);
		goto fail;
	}
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	snprintf(u->uid, sizeof(u->uid), "%lu", (unsigned long)pw->pw_uid);
	snprintf(u->gid, sizeof(u->gid), "%lu", (unsigned long)pw->pw_gid);
	u->uid_n = pw->pw_uid;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0) {
		snprintf(err, errlen,
		         "--run-as: user '%s' is in more than %d groups",
		         u->name, LAUNCH_MAX_GROUPS);
		goto fail;
	}
	/* Never empty: getgrouplist puts the primary group in. */
	cap = (size_t)(ng > 0 ? ng : 1) * 24;
	rv = TROUPE_ENOMEM;
	if ((u->groups = malloc(cap)) == NULL ||
	    (u->home = strdup(pw->pw_dir != NULL && pw->pw_dir[0] == '/'
	                          ? pw->pw_dir
	                          : "/")) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	len =
	    (size_t)snprintf(u->groups, cap, "%lu", (unsigned long)pw->pw_gid);
	for (int i = 0; i < ng; i++)
		if (groups[i] != pw->pw_gid)
			len +=
			    (size_t)snprintf(u->groups + len, cap - len, ",%lu",
			                     (unsigned long)groups[i]);
	assert(len < cap);
	return 0;
fail:
	launch_user_free(u);
	return rv;
}

void
launch_user_free(launch_user *u)
{
	free(u->groups);
	free(u->home);
	memset(u, 0, sizeof(*u));
}

int
launch_args_make(launch_args *a, const char *shim, const char *cmd,
                 uint64_t mem_bytes, const launch_user *user)
{
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	if (user != NULL && shim == NULL)
		return TROUPE_EINVAL;
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
		if (user != NULL) {
			a->argv[n++] = "-u";
			a->argv[n++] = (char *)user->uid;
			a->argv[n++] = "-G";
			a->argv[n++] = (char *)user->gid;
			a->argv[n++] = "-S";
			a->argv[n++] = user->groups;
			a->argv[n++] = "-d";
			a->argv[n++] = user->home;
		}
		a->argv[n++] = "-c";
		a->argv[n++] = (char *)cmd;
		a->argv[n] = NULL;
		assert(n < sizeof(a->argv) / sizeof(a->argv[0]));
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
