/* The error convention (see troupe/error.h) and its library adapters. */
#include <errno.h>
#include <nng/nng.h>
#include <sqlite3.h>
#include <uv.h>

#include "troupe/error.h"

const char *
troupe_strerror(int err)
{
	switch (err) {
	case TROUPE_OK: return "success";
	case TROUPE_ENOMEM: return "out of memory";
	case TROUPE_EINVAL: return "invalid argument";
	case TROUPE_ENOTFOUND: return "not found";
	case TROUPE_EEXIST: return "already exists";
	case TROUPE_EPERM: return "permission denied";
	case TROUPE_EAUTH: return "unauthenticated";
	case TROUPE_EFULL: return "resource exhausted";
	case TROUPE_ESTATE: return "failed precondition";
	case TROUPE_EUNAVAIL: return "unavailable";
	case TROUPE_ETIMEDOUT: return "timed out";
	case TROUPE_EPROTO: return "malformed message";
	case TROUPE_EIO: return "I/O error";
	case TROUPE_EINTERNAL: return "internal error";
	case TROUPE_ECANCELED: return "cancelled";
	case TROUPE_EUNIMPL: return "not implemented";
	case TROUPE_ERANGE: return "out of range";
	case TROUPE_EABORTED: return "aborted";
	}
	return "unknown error";
}

int
troupe_err_from_errno(int e)
{
	switch (e) {
	case 0: return TROUPE_OK;
	case ENOMEM: return TROUPE_ENOMEM;
	case EINVAL: return TROUPE_EINVAL;
	case ENOENT: return TROUPE_ENOTFOUND;
	case EEXIST: return TROUPE_EEXIST;
	case EACCES:
	case EPERM: return TROUPE_EPERM;
	case ENOSPC:
	case EDQUOT:
	case EMFILE:
	case ENFILE:
	case E2BIG: return TROUPE_EFULL;
	case ETIMEDOUT: return TROUPE_ETIMEDOUT;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ECONNRESET:
	case EPIPE: return TROUPE_EUNAVAIL;
	case ECANCELED: return TROUPE_ECANCELED;
	case ERANGE: return TROUPE_ERANGE;
	}
	return TROUPE_EIO;
}

int
troupe_err_from_nng(int rv)
{
	switch (rv) {
	case 0: return TROUPE_OK;
	case NNG_ENOMEM: return TROUPE_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EBADTYPE:
	case NNG_EREADONLY: return TROUPE_EINVAL;
	case NNG_ENOENT: return TROUPE_ENOTFOUND;
	case NNG_EADDRINUSE: return TROUPE_EEXIST;
	case NNG_EPERM: return TROUPE_EPERM;
	case NNG_EMSGSIZE:
	case NNG_ENOSPC:
	case NNG_ENOFILES: return TROUPE_EFULL;
	case NNG_ETIMEDOUT: return TROUPE_ETIMEDOUT;
	case NNG_ECANCELED:
	case NNG_ECLOSED: return TROUPE_ECANCELED;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
	case NNG_EAGAIN:
	case NNG_ESTATE: return TROUPE_EUNAVAIL;
	case NNG_EPROTO:
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH: return TROUPE_EAUTH;
	case NNG_ECONNABORTED: return TROUPE_EUNAVAIL;
	}
	if (rv & NNG_ESYSERR)
		return troupe_err_from_errno(rv & ~NNG_ESYSERR);
	return TROUPE_EINTERNAL;
}

int
troupe_err_from_uv(int rv)
{
	if (rv >= 0)
		return TROUPE_OK;
	if (rv == UV_EOF)
		return TROUPE_EUNAVAIL;
	if (rv == UV_ECANCELED)
		return TROUPE_ECANCELED;
	/* libuv's codes are negated errnos on Unix. */
	return troupe_err_from_errno(-rv);
}

int
troupe_err_from_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE: return TROUPE_OK;
	case SQLITE_NOMEM: return TROUPE_ENOMEM;
	case SQLITE_FULL: return TROUPE_EFULL;
	case SQLITE_CONSTRAINT: return TROUPE_EEXIST;
	case SQLITE_NOTFOUND: return TROUPE_ENOTFOUND;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH: return TROUPE_EPERM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return TROUPE_EUNAVAIL;
	case SQLITE_TOOBIG: return TROUPE_EFULL;
	case SQLITE_MISUSE:
	case SQLITE_RANGE: return TROUPE_EINTERNAL;
	}
	return TROUPE_EIO;
}

Troupe__Code
troupe_err_to_code(int err)
{
	switch (err) {
	case TROUPE_OK: return TROUPE__CODE__OK;
	case TROUPE_EINVAL:
	case TROUPE_EPROTO: return TROUPE__CODE__INVALID_ARGUMENT;
	case TROUPE_ENOTFOUND: return TROUPE__CODE__NOT_FOUND;
	case TROUPE_EEXIST: return TROUPE__CODE__ALREADY_EXISTS;
	case TROUPE_EPERM: return TROUPE__CODE__PERMISSION_DENIED;
	case TROUPE_EAUTH: return TROUPE__CODE__UNAUTHENTICATED;
	case TROUPE_ENOMEM:
	case TROUPE_EFULL: return TROUPE__CODE__RESOURCE_EXHAUSTED;
	case TROUPE_ESTATE: return TROUPE__CODE__FAILED_PRECONDITION;
	case TROUPE_EUNAVAIL: return TROUPE__CODE__UNAVAILABLE;
	case TROUPE_ETIMEDOUT: return TROUPE__CODE__DEADLINE_EXCEEDED;
	case TROUPE_ECANCELED: return TROUPE__CODE__CANCELLED;
	case TROUPE_EUNIMPL: return TROUPE__CODE__UNIMPLEMENTED;
	case TROUPE_ERANGE: return TROUPE__CODE__OUT_OF_RANGE;
	case TROUPE_EABORTED: return TROUPE__CODE__ABORTED;
	}
	return TROUPE__CODE__INTERNAL;
}

int
troupe_err_from_code(Troupe__Code code)
{
	switch (code) {
	case TROUPE__CODE__OK: return TROUPE_OK;
	case TROUPE__CODE__CANCELLED: return TROUPE_ECANCELED;
	case TROUPE__CODE__INVALID_ARGUMENT: return TROUPE_EINVAL;
	case TROUPE__CODE__DEADLINE_EXCEEDED: return TROUPE_ETIMEDOUT;
	case TROUPE__CODE__NOT_FOUND: return TROUPE_ENOTFOUND;
	case TROUPE__CODE__ALREADY_EXISTS: return TROUPE_EEXIST;
	case TROUPE__CODE__PERMISSION_DENIED: return TROUPE_EPERM;
	case TROUPE__CODE__RESOURCE_EXHAUSTED: return TROUPE_EFULL;
	case TROUPE__CODE__FAILED_PRECONDITION: return TROUPE_ESTATE;
	case TROUPE__CODE__ABORTED: return TROUPE_EABORTED;
	case TROUPE__CODE__OUT_OF_RANGE: return TROUPE_ERANGE;
	case TROUPE__CODE__UNIMPLEMENTED: return TROUPE_EUNIMPL;
	case TROUPE__CODE__UNAVAILABLE: return TROUPE_EUNAVAIL;
	case TROUPE__CODE__UNAUTHENTICATED: return TROUPE_EAUTH;
	case TROUPE__CODE__DATA_LOSS:
	case TROUPE__CODE__INTERNAL:
	case TROUPE__CODE__UNKNOWN:
	default: return TROUPE_EINTERNAL;
	}
}

const char *
troupe_code_name(Troupe__Code code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &troupe__code__descriptor, code);
	return v != NULL ? v->name : "UNKNOWN";
}
