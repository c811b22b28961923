/* The local cluster's state directory and default addresses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "troupe/error.h"
#include "troupe/home.h"

int
troupe_home(char *buf, size_t len)
{
	const char *h = getenv("TROUPE_HOME");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int         n;

	if (h != NULL && h[0] != '\0')
		n = snprintf(buf, len, "%s", h);
	else if (xdg != NULL && xdg[0] != '\0')
		n = snprintf(buf, len, "%s/troupe", xdg);
	else if (home != NULL && home[0] != '\0')
		n = snprintf(buf, len, "%s/.local/state/troupe", home);
	else
		return TROUPE_EINVAL;
	return (n < 0 || (size_t)n >= len) ? TROUPE_EINVAL : 0;
}

int
troupe_home_make(const char *dir)
{
	char   path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return TROUPE_EINVAL;
	memcpy(path, dir, n + 1);
	/* mkdir -p: parents get the umask's mode, the home itself 0700. */
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return troupe_err_from_errno(errno);
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return troupe_err_from_errno(errno);
	return 0;
}

static int
home_sock(const char *name, char *buf, size_t len)
{
	char home[4000];
	int  rv, n;

	if ((rv = troupe_home(home, sizeof(home))) != 0)
		return rv;
	n = snprintf(buf, len, "ipc://%s/%s", home, name);
	return (n < 0 || (size_t)n >= len) ? TROUPE_EINVAL : 0;
}

int
troupe_default_api_addr(char *buf, size_t len)
{
	const char *a = getenv("TROUPE_ADDR");
	int         n;

	if (a != NULL && a[0] != '\0') {
		n = snprintf(buf, len, "%s", a);
		return (n < 0 || (size_t)n >= len) ? TROUPE_EINVAL : 0;
	}
	return home_sock("api.sock", buf, len);
}

int
troupe_default_worker_addr(char *buf, size_t len)
{
	return home_sock("worker.sock", buf, len);
}

int
troupe_token_load(const char *file, char **out)
{
	const char *env = getenv("TROUPE_TOKEN");
	char        line[1024];
	FILE       *f = NULL;
	size_t      n;

	*out = NULL;
	if (file == NULL && env != NULL && env[0] != '\0')
		return (*out = strdup(env)) != NULL ? 0 : TROUPE_ENOMEM;
	if (file == NULL)
		file = getenv("TROUPE_TOKEN_FILE");
	if (file == NULL || file[0] == '\0')
		return 0;
	if ((f = fopen(file, "r")) == NULL)
		return troupe_err_from_errno(errno);
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0)
		return TROUPE_EINVAL; /* an empty token file is a mistake */
	return (*out = strdup(line)) != NULL ? 0 : TROUPE_ENOMEM;
}
