/* Daemon logging (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char *log_name = "troupe";
static int         log_level = LOG_LVL_INFO;

void
troupe_log_init(const char *name, int level)
{
	const char *env = getenv("TROUPE_LOG");

	log_name = name;
	log_level = level;
	if (env != NULL && strcmp(env, "debug") == 0)
		log_level = LOG_LVL_DEBUG;
	else if (env != NULL && strcmp(env, "warn") == 0)
		log_level = LOG_LVL_WARN;
}

void
troupe_log(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char               line[2048];
	va_list            ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so lines of concurrent daemons do not mix. */
	fprintf(stderr, "%s[%s]: %s\n", log_name, names[level], line);
}

long long
troupe_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
