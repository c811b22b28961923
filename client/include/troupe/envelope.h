/*
 * Packing and unpacking of the envelope (proto/envelope.proto) that wraps
 * every request and reply on every troupe socket.
 */
#ifndef TROUPE_ENVELOPE_H
#define TROUPE_ENVELOPE_H

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "envelope.pb-c.h"

/* The receive limit set on every troupe socket.  A bigger message is
 * dropped by nng before we see it; senders keep well under it (the CLI
 * uploads items in chunks of TROUPE_CHUNK_BYTES, one item alone when it
 * is bigger).  The scheduler holds one upload message's items in memory
 * until their commit, so the chunk size bounds its memory on upload. */
#define TROUPE_MAX_MSG     (64u << 20)
#define TROUPE_CHUNK_BYTES (1u << 20)

/* Packs a Request {method, token, body} into a new nng message in *out.
 * token and body may be NULL.  The caller owns *out (nng_msg_free, or give
 * it to nng_send/nng_ctx_send, which then owns it). */
int troupe_envelope_request(const char *method, const char *token,
                            const ProtobufCMessage *body, nng_msg **out);

/* troupe_envelope_request with the project the call acts in (envelope's
 * Request.project; NULL or "" leaves it to the scheduler: the token's own
 * project, else "default").  Ownership of *out as above. */
int troupe_envelope_request_in(const char *method, const char *token,
                               const char             *project,
                               const ProtobufCMessage *body, nng_msg **out);

/* Packs a Reply {code, message, body} into a new nng message in *out.
 * message and body may be NULL.  Ownership of *out as above. */
int troupe_envelope_reply(Troupe__Code code, const char *message,
                          const ProtobufCMessage *body, nng_msg **out);

/* Packs msg into a fresh malloc'd buffer: *buf (caller frees), *len. */
int troupe_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *len);

/* A deep copy of msg, by packing and unpacking it (protobuf-c has no copy
 * of its own): one malloc'd tree the caller frees with the type's
 * free_unpacked (or protobuf_c_message_free_unpacked).  NULL when out of
 * memory.  Used wherever a message must outlive the buffer it came in. */
ProtobufCMessage *troupe_msg_copy(const ProtobufCMessage *msg);

#endif
