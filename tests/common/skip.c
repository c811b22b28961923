/*
 * Owns the count of skipped tests of one test program (see skip.h).
 */
#include "skip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_skips;

void
t_skip_note(const char *fmt, ...)
{
	const char *strict = getenv("TROUPE_TEST_NO_SKIP");
	char        why[512];
	va_list     ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (strict != NULL && strict[0] != '\0' && strcmp(strict, "0") != 0)
		fail_msg("cannot skip with TROUPE_TEST_NO_SKIP set: %s", why);
	fprintf(stderr, "SKIPPED: %s\n", why);
	t_skips++;
}

int
t_exit(int failed)
{
	if (failed != 0)
		return failed;
	return t_skips > 0 ? T_SKIP_STATUS : 0;
}
