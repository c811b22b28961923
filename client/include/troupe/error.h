/*
 * troupe's one error convention.  Every function that can fail returns an
 * int: 0 on success, or a negative TROUPE_E* code.  Each library we use has
 * one adapter below that turns its own codes into ours, so callers never
 * test nng, libuv, SQLite or protobuf-c results directly.
 *
 * On the wire, errors travel as gRPC canonical status codes
 * (envelope.proto's Code); troupe_err_to_code/troupe_err_from_code convert.
 */
#ifndef TROUPE_ERROR_H
#define TROUPE_ERROR_H

#include "envelope.pb-c.h"

enum {
	TROUPE_OK = 0,
	TROUPE_ENOMEM = -1,     /* out of memory */
	TROUPE_EINVAL = -2,     /* invalid argument (INVALID_ARGUMENT) */
	TROUPE_ENOTFOUND = -3,  /* no such execution, task, ... (NOT_FOUND) */
	TROUPE_EEXIST = -4,     /* already exists (ALREADY_EXISTS) */
	TROUPE_EPERM = -5,      /* permission denied (PERMISSION_DENIED) */
	TROUPE_EAUTH = -6,      /* missing or wrong token (UNAUTHENTICATED) */
	TROUPE_EFULL = -7,      /* disk full, too large (RESOURCE_EXHAUSTED) */
	TROUPE_ESTATE = -8,     /* wrong state for this (FAILED_PRECONDITION) */
	TROUPE_EUNAVAIL = -9,   /* cannot reach the peer (UNAVAILABLE) */
	TROUPE_ETIMEDOUT = -10, /* deadline passed (DEADLINE_EXCEEDED) */
	TROUPE_EPROTO = -11,    /* malformed message (INVALID_ARGUMENT) */
	TROUPE_EIO = -12,       /* storage or OS I/O error (INTERNAL) */
	TROUPE_EINTERNAL = -13, /* a bug or an unexpected library error */
	TROUPE_ECANCELED = -14, /* cancelled (CANCELLED) */
	TROUPE_EUNIMPL = -15,   /* unknown method (UNIMPLEMENTED) */
	TROUPE_ERANGE = -16,    /* out of range (OUT_OF_RANGE) */
	TROUPE_EABORTED = -17,  /* conflict, retry (ABORTED) */
};

/* Returns a static, human-readable string for err (never NULL). */
const char *troupe_strerror(int err);

/* Adapters: each returns 0 for the library's success value. */
int troupe_err_from_nng(int nng_rv);   /* NNG_E* */
int troupe_err_from_uv(int uv_rv);     /* libuv's negative errnos */
int troupe_err_from_sqlite(int rc);    /* SQLITE_* (primary or extended) */
int troupe_err_from_errno(int errnum); /* positive errno values */

/* Wire status <-> error code. */
Troupe__Code troupe_err_to_code(int err);
int          troupe_err_from_code(Troupe__Code code);
/* Returns the gRPC name of code ("INVALID_ARGUMENT"), static. */
const char *troupe_code_name(Troupe__Code code);

#endif
