/*
 * Where a local cluster lives, and where clients and workers find it.
 * TROUPE_HOME defaults to ${XDG_STATE_HOME:-$HOME/.local/state}/troupe and
 * holds troupe.db, api.sock (the API), worker.sock (the worker link) and
 * logs.
 */
#ifndef TROUPE_HOME_H
#define TROUPE_HOME_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the state directory into buf.  Returns TROUPE_EINVAL when it does
 * not fit or neither TROUPE_HOME nor HOME is set. */
int troupe_home(char *buf, size_t len);

/* Creates the state directory (and parents) owner-only (0700) if missing. */
int troupe_home_make(const char *dir);

/* The API address clients use: TROUPE_ADDR if set, else
 * ipc://$TROUPE_HOME/api.sock.  Written into buf. */
int troupe_default_api_addr(char *buf, size_t len);

/* The worker link address: ipc://$TROUPE_HOME/worker.sock. */
int troupe_default_worker_addr(char *buf, size_t len);

/* The shortest token accepted (characters). */
#define TROUPE_TOKEN_MIN 16

/* True when url is an ipc:// address (or inproc://, in-process only),
 * whatever the case of its scheme: a socket file whose permissions keep
 * other users out.  Everything else (tcp://, tls+tcp://, ws://,
 * abstract://, schemes unknown today) may be reached by others, so a
 * listener or a dialler there needs a token. */
bool troupe_addr_is_local(const char *url);

/* Reads a token: TROUPE_TOKEN if set, else the first line of the file
 * named by TROUPE_TOKEN_FILE (or `file` when non-NULL, which wins).
 * *out is NULL when no token is configured.  Refuses a token shorter than
 * TROUPE_TOKEN_MIN characters or an empty file (TROUPE_EINVAL) and a file
 * its group or others may read or write (TROUPE_EPERM); on failure why
 * (may be NULL) gets one line for a person, naming the file.  Caller
 * frees *out. */
int troupe_token_read(const char *file, char **out, char *why, size_t len);

/* troupe_token_read without the reason. */
int troupe_token_load(const char *file, char **out);

#endif
