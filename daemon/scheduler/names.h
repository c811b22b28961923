/*
 * Names people give things (tasks, actor environments, projects,
 * workers): 1 to 63 characters of letters, digits, '.', '_' and '-',
 * starting with a letter or digit.  They end up in file-like places (logs,
 * systemd, URLs of future UIs), so nothing that needs quoting.
 */
#ifndef TROUPE_NAMES_H
#define TROUPE_NAMES_H

#include <stddef.h>

/* Returns 0 when name is valid; otherwise TROUPE_EINVAL with one line in
 * err naming what (`what`, e.g. "task name") and why. */
int names_check(const char *what, const char *name, char *err, size_t len);

#endif
