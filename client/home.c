/* The local cluster's state directory and default addresses. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

bool
troupe_addr_is_local(const char *url)
{
	/* nng takes a scheme in any case (TCP://, Ipc://): so do we. */
	return strncasecmp(url, "ipc://", 6) == 0 ||
	       strncasecmp(url, "inproc://", 9) == 0;
}

static void
token_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

int
troupe_token_read(const char *file, char **out, char *why, size_t len)
{
	const char *env = getenv("TROUPE_TOKEN");
	const char *from = "TROUPE_TOKEN";
	char        line[1024];
	struct stat st;
	FILE       *f = NULL;
	size_t      n;
	int         rv;

	*out = NULL;
	token_why(why, len, "no error");
	if (file == NULL && env != NULL && env[0] != '\0') {
		snprintf(line, sizeof(line), "%s", env);
		n = strlen(env);
		goto check;
	}
	if (file == NULL)
		file = getenv("TROUPE_TOKEN_FILE");
	if (file == NULL || file[0] == '\0')
		return 0;
	from = file;
	if ((f = fopen(file, "r")) == NULL) {
		rv = troupe_err_from_errno(errno);
		token_why(why, len, "cannot read the token file %s: %s", file,
		          strerror(errno));
		return rv;
	}
	/* Checked on the open file, so that it is the file we read. */
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
		fclose(f);
		token_why(why, len,
		          "the token file %s may be read or written by its "
		          "group or others (mode %04o): run `chmod 600 %s`",
		          file, (unsigned)(st.st_mode & 07777), file);
		return TROUPE_EPERM;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		/* An empty token file is a mistake. */
		token_why(why, len, "the token file %s is empty", file);
		return TROUPE_EINVAL;
	}
check:
	if (n < TROUPE_TOKEN_MIN) {
		token_why(why, len,
		          "the token from %s is %zu characters long; at least "
		          "%d are required (make one with `head -c 32 "
		          "/dev/urandom | base64`)",
		          from, n, TROUPE_TOKEN_MIN);
		return TROUPE_EINVAL;
	}
	return (*out = strdup(line)) != NULL ? 0 : TROUPE_ENOMEM;
}

int
troupe_token_load(const char *file, char **out)
{
	return troupe_token_read(file, out, NULL, 0);
}
