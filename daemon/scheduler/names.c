/* Validation of names (see names.h). */
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "troupe/error.h"

int
names_check(const char *what, const char *name, char *err, size_t len)
{
	size_t n = strlen(name);

	if (n == 0) {
		snprintf(err, len, "%s is empty", what);
		return TROUPE_EINVAL;
	}
	if (n > 63) {
		snprintf(err, len, "%s '%.20s...' is longer than 63 characters",
		         what, name);
		return TROUPE_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int  ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') ||
		         (i > 0 && (c == '.' || c == '_' || c == '-'));
		if (!ok) {
			snprintf(
			    err, len,
			    "%s '%.63s' may hold only letters, digits, '.', "
			    "'_' and '-', and must start with a letter or "
			    "digit",
			    what, name);
			return TROUPE_EINVAL;
		}
	}
	return 0;
}
