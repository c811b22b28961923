/*
 * libtroupe's RPC client: a blocking request/reply client for the
 * scheduler's API (proto/api.proto's Troupe service).  One client may be
 * used by one thread at a time.
 */
#ifndef TROUPE_CLIENT_H
#define TROUPE_CLIENT_H

#include <protobuf-c/protobuf-c.h>

#include "api.pb-c.h"
#include "troupe/error.h"

typedef struct troupe_client troupe_client;

/* Connects to addr (NULL: TROUPE_ADDR, else the local cluster's API
 * socket), presenting token (NULL: troupe_token_load(NULL)).  Fails with
 * TROUPE_EUNAVAIL when nothing listens there; troupe_client_error() of the
 * returned NULL is not available then, so the caller reports the address.
 * The caller owns *out and frees it with troupe_client_close. */
int troupe_client_open(const char *addr, const char *token,
                       troupe_client **out);

/* Closes the socket and frees c.  Accepts NULL. */
void troupe_client_close(troupe_client *c);

/* The address this client talks to.  Owned by c. */
const char *troupe_client_addr(const troupe_client *c);

/* The message of the last failed call, one line.  Owned by c; valid until
 * the next call. */
const char *troupe_client_error(const troupe_client *c);

/* Sets the deadline for each call (default 30 s). */
void troupe_client_set_timeout(troupe_client *c, int ms);

/* Sets the project every later call acts in (the envelope's project; see
 * README, "Projects and roles").  project is copied; NULL or "" names none,
 * and the scheduler then uses the token's own project, else "default" (or,
 * for an admin's listings, every project).  Returns 0 or TROUPE_ENOMEM (c
 * unchanged). */
int troupe_client_set_project(troupe_client *c, const char *project);

/* The project set by troupe_client_set_project, "" when none.  Owned by
 * c. */
const char *troupe_client_project(const troupe_client *c);

/* The result of the last troupe_call: 0 or its TROUPE_E* (TROUPE_EPERM for
 * PERMISSION_DENIED, TROUPE_EAUTH for UNAUTHENTICATED). */
int troupe_client_last_err(const troupe_client *c);

/* Calls method with input and waits for the reply.  On success *output is
 * the unpacked reply body of type out_desc; the caller frees it with
 * protobuf_c_message_free_unpacked(*output, NULL).  On failure *output is
 * NULL, the return value is the error of the reply's status code (or of the
 * transport), and troupe_client_error() says why. */
int troupe_call(troupe_client *c, const char *method,
                const ProtobufCMessage           *input,
                const ProtobufCMessageDescriptor *out_desc,
                ProtobufCMessage                **output);

/* Typed shorthand for troupe_call: TROUPE_CALL(c, CreateExecution, &req,
 * create_execution, &reply) where reply is a Troupe__CreateExecutionReply *. */
#define TROUPE_CALL(c, Method, req, lower, replyp)                 \
	troupe_call((c), #Method, (const ProtobufCMessage *)(req), \
	            &troupe__##lower##_reply__descriptor,          \
	            (ProtobufCMessage **)(replyp))

#endif
