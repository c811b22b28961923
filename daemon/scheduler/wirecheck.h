/*
 * What rpc.c checks of a request's bytes before protobuf-c unpacks them:
 * every string field valid UTF-8 without NUL (protobuf-c checks no UTF-8
 * and cuts a string at a NUL, so the scheduler would store, echo and act
 * on what strict clients cannot parse, or on a name other than the one
 * sent), walking nested messages by their descriptors; and the one
 * constant-time comparison of a secret with bytes a client sent.
 *
 * No state, no threads: plain functions, the lowest layer of the
 * scheduler (docs/design.md, "The scheduler's layers").
 */
#ifndef TROUPE_SCHED_WIRECHECK_H
#define TROUPE_SCHED_WIRECHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Length of the valid UTF-8 sequence at s (n bytes left, n > 0), 0 if
 * none: no overlong forms, no surrogates, nothing past U+10FFFF. */
size_t wirecheck_utf8_len(const uint8_t *s, size_t n);

/* Checks every string field of a message of type d encoded in buf (len
 * bytes; buf may be NULL when len is 0), and of the messages inside it,
 * depth levels down so far.  Returns 0, or TROUPE_EINVAL with why (whylen
 * bytes) naming the field; a malformed encoding is left for the unpack
 * to refuse (0). */
int wirecheck_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                      size_t len, int depth, char *why, size_t whylen);

/* Whether a (an bytes) and b (bn bytes) are equal, in a time that depends
 * on an alone: the one comparison of a secret with what a client sent
 * (tokens, their hashes), so a token cannot be guessed a byte at a time
 * from reply latency. */
bool wirecheck_same(const void *a, size_t an, const void *b, size_t bn);

#endif
