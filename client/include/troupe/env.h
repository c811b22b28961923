/*
 * Environment lists (KEY=VALUE strings) merged the way a shell would set
 * them one after another: the one merge both daemons use, for a task's
 * environment under an execution's, an actor environment's over its
 * task's, and a child process's over the worker's own.
 *
 * No state, no threads: a plain function.
 */
#ifndef TROUPE_ENV_H
#define TROUPE_ENV_H

#include <stddef.h>

/* Merges n_sets lists, sets[i] holding sizes[i] KEY=VALUE strings, in
 * order: for a key set more than once the last entry wins, and the result
 * lists each key once, at the place of its winning entry (so a list with
 * no repeated key comes out as it went in).  Entries without '=' are
 * skipped.  *out is a malloc'd array of *n_out pointers to the callers'
 * strings (borrowed, not copied), NULL-terminated so it can serve as an
 * envp; the caller frees the array only.  Linear in the entries (a hash of
 * the keys), so a list of 100,000 entries costs milliseconds, not
 * minutes.  Returns 0 or TROUPE_ENOMEM (then *out is NULL). */
int troupe_env_merge(char *const *const *sets, const size_t *sizes,
                     size_t n_sets, char ***out, size_t *n_out);

#endif
