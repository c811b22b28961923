/*
 * Checks of a request's bytes on the wire, before protobuf-c unpacks
 * them (see wirecheck.h).  No state, no threads: plain functions.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "troupe/error.h"
#include "wirecheck.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
size_t
wirecheck_utf8_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t  len;
	uint8_t lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	/* The second byte's range rules out overlongs and surrogates. */
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* Reads a varint at *p (before end) into *v.  Returns false when it is
 * cut short or longer than ten bytes. */
static bool
wirecheck_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		r |= (uint64_t)(b & 0x7F) << shift;
		if ((b & 0x80) == 0) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* Checks every string field of a message of type d encoded in buf (len
 * bytes), and of the messages inside it, on the wire, before protobuf-c
 * sees it: protobuf-c checks no UTF-8 and cuts a string at a NUL, so the
 * scheduler would store, echo and act on what strict clients cannot
 * parse, or a name other than the one sent.  Returns 0, or
 * TROUPE_EINVAL with why naming the field (a malformed encoding is left
 * for the unpack to refuse: 0). */
int
wirecheck_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                  size_t len, int depth, char *why, size_t whylen)
{
	const uint8_t *p, *end;

	if (len == 0)
		return 0; /* an empty message (its data may be NULL) */
	if (depth > 32)
		return 0; /* no such depth in our protocol; unpack decides */
	p = buf;
	end = buf + len;
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		uint64_t                        key, n;
		const uint8_t                  *s;

		if (!wirecheck_varint(&p, end, &key))
			return 0;
		switch (key & 7) {
		case 0:
			if (!wirecheck_varint(&p, end, &n))
				return 0;
			continue;
		case 1:
			if ((size_t)(end - p) < 8)
				return 0;
			p += 8;
			continue;
		case 5:
			if ((size_t)(end - p) < 4)
				return 0;
			p += 4;
			continue;
		case 2: break;
		default: return 0;
		}
		if (!wirecheck_varint(&p, end, &n) || n > (uint64_t)(end - p))
			return 0;
		s = p;
		p += n;
		if (key >> 3 > UINT32_MAX)
			continue;
		f = protobuf_c_message_descriptor_get_field(
		    d, (unsigned)(key >> 3));
		if (f == NULL)
			continue;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			if (wirecheck_strings(f->descriptor, s, (size_t)n,
			                      depth + 1, why, whylen) != 0) {
				/* Prefix the path: "spec.command". */
				char inner[256];

				snprintf(inner, sizeof(inner), "%s", why);
				snprintf(why, whylen, "%s.%s", f->name, inner);
				return TROUPE_EINVAL;
			}
			continue;
		}
		if (f->type != PROTOBUF_C_TYPE_STRING)
			continue;
		for (size_t i = 0; i < n;) {
			size_t k = wirecheck_utf8_len(s + i, (size_t)n - i);

			if (k == 0) {
				snprintf(why, whylen, "%s: not valid UTF-8",
				         f->name);
				return TROUPE_EINVAL;
			}
			if (s[i] == 0) {
				snprintf(why, whylen, "%s: holds a NUL byte",
				         f->name);
				return TROUPE_EINVAL;
			}
			i += k;
		}
	}
	return 0;
}

bool
wirecheck_same(const void *a, size_t an, const void *b, size_t bn)
{
	const unsigned char *x = a, *y = b;
	unsigned char        diff = (unsigned char)(an != bn);

	for (size_t i = 0; i < an; i++)
		diff |= x[i] ^ (i < bn ? y[i] : 0);
	return diff == 0;
}
