/*
 * Shell quoting for the per-item process: `{}` in a task's command is
 * replaced by the item, quoted so that /bin/sh sees exactly the item's
 * bytes as one word whatever they hold.
 *
 * No state: plain functions, callable from any thread (runner.c calls
 * them on the loop thread).
 */
#ifndef TROUPE_WORKER_QUOTE_H
#define TROUPE_WORKER_QUOTE_H

#include <stddef.h>
#include <stdint.h>

/* Quotes s (n bytes) as one POSIX shell word, the way Python's
 * shlex.quote does: a word made only of letters, digits and @%+:,./_- is
 * left as it is (so `$(( {} + 1 ))` works on numbers); anything else goes
 * inside single quotes, each ' written as '\''; the empty string becomes
 * ''.  ('=' is quoted too, so an item never turns into an assignment.)
 * Returns TROUPE_EINVAL if s holds a NUL byte (no shell word can),
 * TROUPE_ENOMEM.  On success *out is a NUL-terminated string the caller
 * frees. */
int quote_word(const uint8_t *s, size_t n, char **out);

/* Copies cmd with every `{}` replaced by quote_word(item).  A command with
 * no `{}` is copied as is, and the item may then hold anything.  Returns
 * TROUPE_EPERM when a `{}` stands where the quoted item would not be one
 * word (placeholder_check says where), else the errors of quote_word
 * (only when cmd holds `{}`).  The caller frees *out. */
int quote_command(const char *cmd, const uint8_t *item, size_t n, char **out);

#endif
