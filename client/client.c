/* libtroupe's blocking RPC client (see troupe/client.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "troupe/client.h"
#include "troupe/envelope.h"
#include "troupe/home.h"
#include "troupe/sockclose.h"

#define CLIENT_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

struct troupe_client {
	nng_socket sock;
	char      *addr;
	char      *token;
	char      *project; /* NULL: none named */
	char       err[512];
	int        timeout_ms;
	int        last_rv; /* the result of the last call */
};

static void
client_seterr(troupe_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* A tls+tcp:// scheduler's certificate is checked against the CA file
 * in TROUPE_TLS_CA, else the system's bundle, as the worker's --tls-ca. */
static int
client_dial_tls(troupe_client *c)
{
	const char     *ca = getenv("TROUPE_TLS_CA");
	nng_dialer      d;
	nng_tls_config *tls = NULL;
	int             rv;

	if ((ca == NULL || ca[0] == '\0') &&
	    access(CLIENT_SYSTEM_CA, R_OK) == 0)
		ca = CLIENT_SYSTEM_CA;
	if ((rv = nng_dialer_create(&d, c->sock, c->addr)) != 0 ||
	    (rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0)
		goto done;
	if (ca != NULL && ca[0] != '\0' &&
	    (rv = nng_tls_config_ca_file(tls, ca)) != 0) {
		client_seterr(c, "cannot use CA file %s: %s", ca,
		              nng_strerror(rv));
		goto done;
	}
	if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) == 0)
		rv = nng_dialer_start(d, 0);
done:
	/* The dialer holds its own reference. */
	if (tls != NULL)
		nng_tls_config_free(tls);
	return troupe_err_from_nng(rv);
}

int
troupe_client_open(const char *addr, const char *token, troupe_client **out)
{
	troupe_client *c = NULL;
	char           def[4096];
	int            rv;

	*out = NULL;
	if (addr == NULL) {
		if ((rv = troupe_default_api_addr(def, sizeof(def))) != 0)
			return rv;
		addr = def;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TROUPE_ENOMEM;
	c->timeout_ms = 30000;
	if ((c->addr = strdup(addr)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	if (token != NULL)
		c->token = strdup(token);
	else if ((rv = troupe_token_load(NULL, &c->token)) != 0)
		goto fail;
	if ((rv = troupe_err_from_nng(nng_req0_open(&c->sock))) != 0)
		goto fail;
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, TROUPE_MAX_MSG);
	/* Requests are not idempotent in general (CreateExecution): never let
	 * nng resend one behind our back; a call fails instead. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	                  NNG_DURATION_INFINITE);
	/* Dial synchronously so an unreachable scheduler is reported at once.
	 */
	if (strncmp(c->addr, "tls+", 4) == 0)
		rv = client_dial_tls(c);
	else
		rv = troupe_err_from_nng(nng_dial(c->sock, c->addr, NULL, 0));
	if (rv != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	troupe_client_close(c);
	return rv;
}

void
troupe_client_close(troupe_client *c)
{
	if (c == NULL)
		return;
	if (nng_socket_id(c->sock) > 0)
		(void)troupe_sock_close(c->sock, TROUPE_SOCK_CLOSE_MS);
	free(c->addr);
	free(c->token);
	free(c->project);
	free(c);
}

const char *
troupe_client_addr(const troupe_client *c)
{
	return c->addr;
}

const char *
troupe_client_error(const troupe_client *c)
{
	return c->err;
}

void
troupe_client_set_timeout(troupe_client *c, int ms)
{
	c->timeout_ms = ms;
}

int
troupe_client_set_project(troupe_client *c, const char *project)
{
	char *p = NULL;

	if (project != NULL && project[0] != '\0' &&
	    (p = strdup(project)) == NULL)
		return TROUPE_ENOMEM;
	free(c->project);
	c->project = p;
	return 0;
}

const char *
troupe_client_project(const troupe_client *c)
{
	return c->project != NULL ? c->project : "";
}

int
troupe_client_last_err(const troupe_client *c)
{
	return c->last_rv;
}

int
troupe_call(troupe_client *c, const char *method, const ProtobufCMessage *input,
            const ProtobufCMessageDescriptor *out_desc,
            ProtobufCMessage                **output)
{
	nng_msg       *req = NULL;
	nng_msg       *rep = NULL;
	Troupe__Reply *env = NULL;
	int            rv;

	*output = NULL;
	c->err[0] = '\0';
	if ((rv = troupe_envelope_request_in(method, c->token, c->project,
	                                     input, &req)) != 0)
		goto fail;
	/* One thread per client: the socket's own req state is enough. */
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, c->timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, c->timeout_ms);
	if ((rv = troupe_err_from_nng(nng_sendmsg(c->sock, req, 0))) != 0)
		goto fail;
	req = NULL;
	if ((rv = troupe_err_from_nng(nng_recvmsg(c->sock, &rep, 0))) != 0) {
		client_seterr(c, "no reply from %s: %s", c->addr,
		              troupe_strerror(rv));
		goto fail;
	}
	env = troupe__reply__unpack(NULL, nng_msg_len(rep), nng_msg_body(rep));
	if (env == NULL) {
		rv = TROUPE_EPROTO;
		client_seterr(c, "malformed reply from %s", c->addr);
		goto fail;
	}
	if (env->code != TROUPE__CODE__OK) {
		rv = troupe_err_from_code(env->code);
		client_seterr(c, "%s",
		              env->message[0] != '\0'
		                  ? env->message
		                  : troupe_code_name(env->code));
		goto fail;
	}
	*output = protobuf_c_message_unpack(out_desc, NULL, env->body.len,
	                                    env->body.data);
	if (*output == NULL) {
		rv = TROUPE_EPROTO;
		client_seterr(c, "malformed %s reply from %s", method, c->addr);
		goto fail;
	}
	rv = 0;
fail:
	if (rv != 0 && c->err[0] == '\0')
		client_seterr(c, "%s %s: %s", method, c->addr,
		              troupe_strerror(rv));
	c->last_rv = rv;
	if (env != NULL)
		troupe__reply__free_unpacked(env, NULL);
	if (rep != NULL)
		nng_msg_free(rep);
	if (req != NULL)
		nng_msg_free(req);
	return rv;
}
