/*
 * Daemon logging: one line per event to stderr (journald adds the time
 * under systemd), prefixed with the daemon's name and the level.
 */
#ifndef TROUPE_LOG_H
#define TROUPE_LOG_H

enum {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3
};

/* Sets the name printed on every line and the most verbose level shown
 * (default LOG_LVL_INFO; TROUPE_LOG=debug raises it).  name is not copied. */
void troupe_log_init(const char *name, int level);

void troupe_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) troupe_log(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  troupe_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  troupe_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) troupe_log(LOG_LVL_DEBUG, __VA_ARGS__)

/* Milliseconds since the Unix epoch (wall clock, for records). */
long long troupe_now_ms(void);

#endif
