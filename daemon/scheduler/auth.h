/*
 * Who a caller is: the bootstrap token (--token-file), the tokens of the
 * store (README, "Projects and roles"), or the local owner of an
 * owner-only socket.  Provides the rpc_auth_fn both listeners use, and
 * makes new tokens.
 *
 * A token is "trp_<id>_<secret>": the id finds its row, which holds the
 * SHA-256 of the whole token (never the token), its project (empty: every
 * project, for admins), its role and its expiry.  Comparisons are
 * constant-time; tokens are never logged, only their ids.
 *
 * Async contract: the scheduler's loop thread; reads and writes the store
 * synchronously (a write joins the caller's transaction).
 */
#ifndef TROUPE_SCHED_AUTH_H
#define TROUPE_SCHED_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "rpc.h"
#include "store.h"

/* Shortest bootstrap token accepted (bytes). */
#define AUTH_MIN_TOKEN 16

typedef struct auth {
	store      *st;
	const char *bootstrap; /* the --token-file token, or NULL; borrowed */
} auth;

/* rpc_auth_fn over an auth (arg). */
int auth_rpc(void *arg, const char *token, const char *project, bool required,
             rpc_identity *who, char *why, size_t len);

/* Makes a token of role in project ("" for every project: admin only)
 * expiring after expires_s seconds (0: never), writing its row into the
 * open transaction.  *info (the caller's, free_unpacked) describes it and
 * *secret (the caller's, free) is the token itself, to show once.
 * Returns 0 or a TROUPE_E* code. */
int auth_create(auth *a, const char *project, Troupe__Role role,
                uint32_t expires_s, Troupe__TokenInfo **info, char **secret);

#endif
