/*
 * Tokens and identities (see auth.h for the contract).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/sha256.h>

#include "auth.h"
#include "log.h"
#include "names.h"
#include "store.pb-c.h"
#include "wirecheck.h"
#include "troupe/envelope.h"
#include "troupe/error.h"

#define AUTH_PREFIX "trp_"

static int
auth_hash(const char *token, uint8_t out[32])
{
	return mbedtls_sha256_ret((const unsigned char *)token, strlen(token),
	                          out, 0) == 0
	           ? 0
	           : TROUPE_EINTERNAL;
}

static void
auth_set(rpc_identity *who, const char *id, const char *project, int role)
{
	snprintf(who->token_id, sizeof(who->token_id), "%s", id);
	snprintf(who->project, sizeof(who->project), "%s", project);
	who->role = role;
}

/* Looks a store token up: 0 with *project and *role, or TROUPE_EAUTH. */
static int
auth_lookup(auth *a, const char *token, rpc_identity *who, char *why,
            size_t len)
{
	char                 id[40];
	const char          *p = token + strlen(AUTH_PREFIX), *sep;
	ProtobufCMessage    *m = NULL;
	Troupe__StoredToken *t;
	uint8_t              h[32];
	int                  rv = TROUPE_EAUTH;

	if ((sep = strchr(p, '_')) == NULL || sep == p ||
	    (size_t)(sep - p) >= sizeof(id)) {
		snprintf(why, len, "malformed token");
		return TROUPE_EAUTH;
	}
	memcpy(id, p, (size_t)(sep - p));
	id[sep - p] = '\0';
	if (store_named_get(a->st, STORE_K_TOKEN, id, &m) != 0) {
		snprintf(why, len, "unknown token");
		return TROUPE_EAUTH;
	}
	t = (Troupe__StoredToken *)m;
	if (t->info == NULL || auth_hash(token, h) != 0 ||
	    !wirecheck_same(h, sizeof(h), t->hash.data, t->hash.len))
		snprintf(why, len, "wrong token");
	else if (t->info->revoked)
		snprintf(why, len, "token %s was revoked", id);
	else if (t->info->expires_ms != 0 &&
	         troupe_now_ms() >= t->info->expires_ms)
		snprintf(why, len, "token %s expired", id);
	else {
		auth_set(who, id, t->info->project, t->info->role);
		rv = 0;
	}
	troupe__stored_token__free_unpacked(t, NULL);
	return rv;
}

int
auth_rpc(void *arg, const char *token, const char *project, bool required,
         rpc_identity *who, char *why, size_t len)
{
	auth *a = arg;
	int   rv;

	memset(who, 0, sizeof(*who));
	if (token[0] == '\0') {
		if (required) {
			snprintf(why, len, "a token is required");
			return TROUPE_EAUTH;
		}
		/* The owner of an owner-only socket: the local admin. */
		auth_set(who, "local", "", TROUPE__ROLE__ROLE_ADMIN);
	} else if (a->bootstrap != NULL &&
	           wirecheck_same(a->bootstrap, strlen(a->bootstrap), token,
	                          strlen(token)))
		auth_set(who, "bootstrap", "", TROUPE__ROLE__ROLE_ADMIN);
	else if (strncmp(token, AUTH_PREFIX, strlen(AUTH_PREFIX)) == 0) {
		if ((rv = auth_lookup(a, token, who, why, len)) != 0)
			return rv;
	} else if (!required) {
		/* An owner-only socket that asks for no token: a stray one
		 * (a TROUPE_TOKEN meant for another cluster) changes nothing;
		 * only a token of the store narrows what the caller may do. */
		auth_set(who, "local", "", TROUPE__ROLE__ROLE_ADMIN);
	} else {
		snprintf(why, len, "wrong token");
		return TROUPE_EAUTH;
	}
	if (project[0] != '\0' &&
	    names_check("project", project, why, len) != 0)
		return TROUPE_EINVAL;
	if (who->project[0] == '\0') {
		/* Every project: the one the call names ("" for any). */
		snprintf(who->project, sizeof(who->project), "%s", project);
		return 0;
	}
	if (project[0] != '\0' && strcmp(project, who->project) != 0) {
		snprintf(why, len,
		         "token %s belongs to project %s, not to project %s",
		         who->token_id, who->project, project);
		return TROUPE_EPERM;
	}
	return 0;
}

int
auth_create(auth *a, const char *project, Troupe__Role role, uint32_t expires_s,
            Troupe__TokenInfo **info, char **secret)
{
	static const char   abc[] = "abcdefghijkmnpqrstuvwxyz23456789";
	uint8_t             rnd[36], h[32];
	char                id[13], sec[25];
	Troupe__StoredToken st = TROUPE__STORED_TOKEN__INIT;
	Troupe__TokenInfo   ti = TROUPE__TOKEN_INFO__INIT;
	char               *token = NULL;
	int                 rv;

	*info = NULL;
	*secret = NULL;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return TROUPE_EIO;
	for (size_t i = 0; i < sizeof(id) - 1; i++)
		id[i] = abc[rnd[i] & 31];
	id[sizeof(id) - 1] = '\0';
	for (size_t i = 0; i < sizeof(sec) - 1; i++)
		sec[i] = abc[rnd[12 + i] & 31]; /* 120 bits */
	sec[sizeof(sec) - 1] = '\0';
	if (asprintf(&token, AUTH_PREFIX "%s_%s", id, sec) < 0)
		return TROUPE_ENOMEM;
	if ((rv = auth_hash(token, h)) != 0)
		goto fail;
	ti.id = id;
	ti.project = (char *)project;
	ti.role = role;
	ti.created_ms = troupe_now_ms();
	ti.expires_ms = expires_s > 0 ? ti.created_ms + expires_s * 1000LL : 0;
	st.info = &ti;
	st.hash.data = h;
	st.hash.len = sizeof(h);
	if ((rv = store_named_put(a->st, STORE_K_TOKEN, id, &st.base, 0)) != 0)
		goto fail;
	if ((*info = (Troupe__TokenInfo *)troupe_msg_copy(&ti.base)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	*secret = token;
	return 0;
fail:
	free(token);
	return rv;
}
