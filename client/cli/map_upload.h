/*
 * Turning `troupe map` options into an ExecutionSpec, and uploading the
 * items: CreateExecution with the first chunk, AppendItems with the rest,
 * then SealExecution (or CreateExecution with seal=true when everything
 * fits in one request).  Every request stays under the chunk limit.
 */
#ifndef TROUPE_CLI_MAP_UPLOAD_H
#define TROUPE_CLI_MAP_UPLOAD_H

#include <stddef.h>

#include "api.pb-c.h"
#include "args.h"
#include "items.h"
#include "troupe/client.h"

/* Fills *spec from o.  The oneofs (retries, timeout, ratio) are set only
 * for flags that were given.  actor and res are storage for the
 * submessages spec may point to; every string points into o, which must
 * outlive spec.  Nothing to free. */
void cli_map_spec(const cli_map_opts *o, Troupe__ExecutionSpec *spec,
                  Troupe__ActorEnv *actor, Troupe__Resources *res);

/* The bytes of `items` that fit in one request of at most limit bytes
 * once the rest of the request (fixed bytes of its own, plus the
 * envelope's method, token and framing) is counted. */
size_t cli_map_budget(size_t limit, size_t fixed);

/* Signature of the call that sends one request; troupe_call in real life,
 * a recorder in the tests. */
typedef int (*cli_call_fn)(void *ctx, const char *method,
                           const ProtobufCMessage           *in,
                           const ProtobufCMessageDescriptor *out_desc,
                           ProtobufCMessage                **out);

/* Room kept in each request for the envelope around it (method name,
 * token, framing). */
#define CLI_MAP_ENVELOPE_SLACK 2048

/* Uploads it under spec through call(ctx, ...), each request's packed
 * size (envelope slack included) at most limit.  Returns 0 with *id the
 * new execution's id, or a TROUPE_E* error with *id the id of an
 * execution created before a later request failed (else NULL).  The
 * caller frees *id either way. */
int cli_map_upload_with(cli_call_fn call, void *ctx,
                        const Troupe__ExecutionSpec *spec, const cli_items *it,
                        size_t limit, char **id);

/* cli_map_upload_with over client c.  On failure it aborts a half-uploaded
 * execution (best effort), prints the error, frees *id and returns
 * CLI_EXIT_FAIL; else returns 0 with *id (caller frees). */
int cli_map_upload(troupe_client *c, const Troupe__ExecutionSpec *spec,
                   const cli_items *it, size_t limit, char **id);

#endif
