/*
 * Where `{}` may stand in a per-item command.  The worker replaces each
 * `{}` with the item quoted as one shell word (worker/quote.h); that word
 * is one argument only where /bin/sh reads it as shell code at its top
 * level (or inside `$( )` or `( )`).  Inside quotes, backticks, `$(( ))`,
 * `${ }`, a comment, after a backslash, or in a command with a
 * here-document, the quotes around the item mean nothing and the item
 * would run as shell code: such commands are refused, by the scheduler
 * when they are submitted and by the worker before it runs them.
 *
 * No state: a plain function, callable from any thread.
 */
#ifndef TROUPE_PLACEHOLDER_H
#define TROUPE_PLACEHOLDER_H

#include <stddef.h>

/* Returns 0 when every `{}` in cmd stands where the quoted item is one
 * word (true of a command without `{}`), else TROUPE_EINVAL with why
 * (may be NULL) holding one line for a person: where the first unsafe
 * `{}` stands and what to write instead. */
int placeholder_check(const char *cmd, char *why, size_t len);

#endif
