/* Envelope packing (see troupe/envelope.h). */
#include <stdlib.h>
#include <string.h>

#include "troupe/envelope.h"
#include "troupe/error.h"

int
troupe_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *len)
{
	size_t   n = protobuf_c_message_get_packed_size(msg);
	uint8_t *b = malloc(n > 0 ? n : 1);

	if (b == NULL)
		return TROUPE_ENOMEM;
	protobuf_c_message_pack(msg, b);
	*buf = b;
	*len = n;
	return 0;
}

ProtobufCMessage *
troupe_msg_copy(const ProtobufCMessage *msg)
{
	uint8_t          *buf = NULL;
	size_t            len = 0;
	ProtobufCMessage *out;

	if (troupe_pack(msg, &buf, &len) != 0)
		return NULL;
	out = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
	free(buf);
	return out;
}

/* Packs env into a new nng message.  body is packed straight into the
 * envelope's bytes field, so the message is built with one copy. */
static int
envelope_to_msg(const ProtobufCMessage *env, nng_msg **out)
{
	nng_msg *m = NULL;
	size_t   n = protobuf_c_message_get_packed_size(env);
	int      rv;

	if ((rv = nng_msg_alloc(&m, n)) != 0)
		return troupe_err_from_nng(rv);
	protobuf_c_message_pack(env, nng_msg_body(m));
	*out = m;
	return 0;
}

int
troupe_envelope_request(const char *method, const char *token,
                        const ProtobufCMessage *body, nng_msg **out)
{
	return troupe_envelope_request_in(method, token, NULL, body, out);
}

int
troupe_envelope_request_in(const char *method, const char *token,
                           const char *project, const ProtobufCMessage *body,
                           nng_msg **out)
{
	Troupe__Request req = TROUPE__REQUEST__INIT;
	uint8_t        *buf = NULL;
	size_t          len = 0;
	int             rv;

	req.method = (char *)method;
	req.token = token != NULL ? (char *)token : "";
	req.project = project != NULL ? (char *)project : "";
	if (body != NULL && (rv = troupe_pack(body, &buf, &len)) != 0)
		return rv;
	req.body.data = buf;
	req.body.len = len;
	rv = envelope_to_msg(&req.base, out);
	free(buf);
	return rv;
}

int
troupe_envelope_reply(Troupe__Code code, const char *message,
                      const ProtobufCMessage *body, nng_msg **out)
{
	Troupe__Reply rep = TROUPE__REPLY__INIT;
	uint8_t      *buf = NULL;
	size_t        len = 0;
	int           rv;

	rep.code = code;
	rep.message = message != NULL ? (char *)message : "";
	if (body != NULL && (rv = troupe_pack(body, &buf, &len)) != 0)
		return rv;
	rep.body.data = buf;
	rep.body.len = len;
	rv = envelope_to_msg(&rep.base, out);
	free(buf);
	return rv;
}
