/* Daemon configuration files (see conf.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "troupe/error.h"

/* Trims leading and trailing blanks in place; returns the new start. */
static char *
conf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int
conf_stream_each(FILE *f, const char *name, conf_fn fn, void *arg, char *err,
                 size_t errlen)
{
	char line[4096];
	int  lineno = 0;
	int  rv = 0;

	while (fgets(line, sizeof(line), f) != NULL) {
		char *key, *val, *eq;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			/* Its tail would be read as a line of its own. */
			snprintf(err, errlen,
			         "%s:%d: line longer than %zu bytes", name,
			         lineno, sizeof(line) - 2);
			rv = TROUPE_EINVAL;
			break;
		}
		key = conf_trim(line);
		if (key[0] == '\0' || key[0] == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'",
			         name, lineno);
			rv = TROUPE_EINVAL;
			break;
		}
		*eq = '\0';
		key = conf_trim(key);
		val = conf_trim(eq + 1);
		if ((rv = fn(arg, key, val)) != 0) {
			snprintf(err, errlen, "%s:%d: bad setting '%s'", name,
			         lineno, key);
			break;
		}
	}
	return rv;
}

int
conf_file_each(const char *path, conf_fn fn, void *arg, char *err,
               size_t errlen)
{
	FILE *f = fopen(path, "r");
	int   rv;

	if (f == NULL) {
		rv = troupe_err_from_errno(errno);
		snprintf(err, errlen, "cannot read config %s: %s", path,
		         strerror(errno));
		return rv;
	}
	rv = conf_stream_each(f, path, fn, arg, err, errlen);
	fclose(f);
	return rv;
}
