/*
 * Daemon configuration files.  A file holds one setting a line,
 * `name = value`, where name is a long flag's name without the dashes
 * (`slots = 4` is `--slots 4`); blank lines and lines starting with # are
 * skipped.  Each daemon feeds the pairs into the same function that handles
 * its flags, so a flag and a config line can never mean different things.
 */
#ifndef TROUPE_CONF_H
#define TROUPE_CONF_H

#include <stddef.h>
#include <stdio.h>

/* Called for each setting; returns 0 to go on or a TROUPE_E* code to stop
 * (conf_file_each then returns that code).  key and val are valid only
 * during the call. */
typedef int (*conf_fn)(void *arg, const char *key, const char *val);

/* Reads path and calls fn for each setting.  On a malformed line or an
 * unreadable file, writes one line for a person into err (errlen bytes)
 * and returns TROUPE_EINVAL (or the I/O error). */
int conf_file_each(const char *path, conf_fn fn, void *arg, char *err,
                   size_t errlen);

/* As conf_file_each, from the open stream f (not closed), with name for
 * the file in err. */
int conf_stream_each(FILE *f, const char *name, conf_fn fn, void *arg,
                     char *err, size_t errlen);

#endif
