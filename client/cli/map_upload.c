/* ExecutionSpec from flags, and the chunked upload (see map_upload.h). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "map_upload.h"

void
cli_map_spec(const cli_map_opts *o, Troupe__ExecutionSpec *spec,
             Troupe__ActorEnv *actor, Troupe__Resources *res)
{
	troupe__execution_spec__init(spec);
	troupe__actor_env__init(actor);
	troupe__resources__init(res);
	if (o->cmd != NULL)
		spec->command = (char *)o->cmd;
	if (o->task != NULL)
		spec->task = (char *)o->task;
	if (o->actor != NULL)
		spec->actor = (char *)o->actor;
	if (o->name != NULL)
		spec->name = (char *)o->name;
	spec->concurrency = o->concurrency;
	spec->execution_timeout_s = o->exec_timeout_s;
	if (o->has_retries) {
		spec->retries_opt_case =
		    TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES;
		spec->retries = o->retries;
	}
	if (o->has_timeout) {
		spec->timeout_opt_case =
		    TROUPE__EXECUTION_SPEC__TIMEOUT_OPT_TIMEOUT_MS;
		spec->timeout_ms = o->timeout_ms;
	}
	if (o->has_ratio) {
		spec->ratio_opt_case =
		    TROUPE__EXECUTION_SPEC__RATIO_OPT_MIN_SUCCESS_RATIO;
		spec->min_success_ratio = o->ratio;
	}
	spec->n_env = o->env.n;
	spec->env = o->env.v;
	if (o->cpu_milli > 0 || o->mem_bytes > 0) {
		res->cpu_milli = o->cpu_milli;
		res->mem_bytes = o->mem_bytes;
		spec->resources = res;
	}
	if (o->has_replicas) {
		/* The ad hoc environment is keyed by a hash of what defines
		 * it, so the same command finds the same warm replicas. */
		actor->replica_count = o->replicas;
		actor->ttl_seconds = o->ttl_s;
		actor->command = (char *)o->cmd;
		actor->protocol = o->has_protocol
		                      ? (Troupe__Protocol)o->protocol
		                      : TROUPE__PROTOCOL__PROTOCOL_LINES;
		actor->n_env = o->env.n;
		actor->env = o->env.v;
		actor->resources = spec->resources;
		spec->adhoc_actor = actor;
	}
}

size_t
cli_map_budget(size_t limit, size_t fixed)
{
	size_t reserve = fixed + CLI_MAP_ENVELOPE_SLACK;

	return limit > reserve ? limit - reserve : 0;
}

int
cli_map_upload_with(cli_call_fn call, void *ctx,
                    const Troupe__ExecutionSpec *spec, const cli_items *it,
                    size_t limit, char **id)
{
	Troupe__CreateExecutionRequest creq =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__CreateExecutionReply *crep = NULL;
	Troupe__AppendItemsReply     *arep = NULL;
	Troupe__SealExecutionReply   *srep = NULL;
	size_t                        n, off;
	int                           rv;

	*id = NULL;
	creq.spec = (Troupe__ExecutionSpec *)spec;
	creq.seal = 1; /* counted in the fixed size whatever it ends up */
	n = cli_chunk_count(
	    it, 0,
	    cli_map_budget(limit,
	                   protobuf_c_message_get_packed_size(&creq.base)));
	creq.n_items = n;
	creq.items = it->v;
	creq.seal = n == it->n;
	rv = call(ctx, "CreateExecution", &creq.base,
	          &troupe__create_execution_reply__descriptor,
	          (ProtobufCMessage **)&crep);
	if (rv != 0)
		goto fail;
	if (crep->execution == NULL || crep->execution->id == NULL ||
	    crep->execution->id[0] == '\0') {
		rv = TROUPE_EPROTO;
		goto fail;
	}
	if ((*id = strdup(crep->execution->id)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	for (off = n; off < it->n; off += n) {
		Troupe__AppendItemsRequest areq =
		    TROUPE__APPEND_ITEMS_REQUEST__INIT;

		areq.id = *id;
		areq.offset = off;
		n = cli_chunk_count(
		    it, off,
		    cli_map_budget(
		        limit, protobuf_c_message_get_packed_size(&areq.base)));
		areq.n_items = n;
		areq.items = it->v + off;
		rv = call(ctx, "AppendItems", &areq.base,
		          &troupe__append_items_reply__descriptor,
		          (ProtobufCMessage **)&arep);
		if (rv != 0)
			goto fail;
		troupe__append_items_reply__free_unpacked(arep, NULL);
		arep = NULL;
	}
	if (!creq.seal) {
		Troupe__SealExecutionRequest sreq =
		    TROUPE__SEAL_EXECUTION_REQUEST__INIT;

		sreq.id = *id;
		rv = call(ctx, "SealExecution", &sreq.base,
		          &troupe__seal_execution_reply__descriptor,
		          (ProtobufCMessage **)&srep);
		if (rv != 0)
			goto fail;
		troupe__seal_execution_reply__free_unpacked(srep, NULL);
	}
	rv = 0;
fail:
	if (crep != NULL)
		troupe__create_execution_reply__free_unpacked(crep, NULL);
	return rv;
}

static int
upload_call(void *ctx, const char *method, const ProtobufCMessage *in,
            const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out)
{
	return troupe_call(ctx, method, in, out_desc, out);
}

int
cli_map_upload(troupe_client *c, const Troupe__ExecutionSpec *spec,
               const cli_items *it, size_t limit, char **id)
{
	Troupe__AbortExecutionRequest req =
	    TROUPE__ABORT_EXECUTION_REQUEST__INIT;
	Troupe__AbortExecutionReply *rep = NULL;
	char                        *msg = NULL;
	int                          rv, arv;

	rv = cli_map_upload_with(upload_call, c, spec, it, limit, id);
	if (rv == 0)
		return CLI_EXIT_OK;
	if (*id == NULL) {
		/* cli_call_err: a refusal (a read token) says so. */
		if (troupe_client_error(c)[0] != '\0')
			return cli_call_err(c);
		return cli_err("%s", troupe_strerror(rv));
	}
	/* Do not leave a half-uploaded execution waiting for a seal that
	 * will never come. */
	msg = strdup(troupe_client_error(c));
	req.id = *id;
	req.reason = "the upload of its items failed";
	arv = TROUPE_CALL(c, AbortExecution, &req, abort_execution, &rep);
	if (arv == 0) {
		troupe__abort_execution_reply__free_unpacked(rep, NULL);
		cli_err("uploading the items of %s failed (it was aborted): "
		        "%s",
		        *id, msg != NULL ? msg : troupe_strerror(rv));
	} else {
		cli_err("uploading the items of %s failed: %s; aborting it: %s",
		        *id, msg != NULL ? msg : troupe_strerror(rv),
		        troupe_client_error(c)[0] != '\0'
		            ? troupe_client_error(c)
		            : troupe_strerror(arv));
	}
	free(msg);
	free(*id);
	*id = NULL;
	return CLI_EXIT_FAIL;
}
