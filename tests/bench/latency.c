/*
 * troupe-latency: the latency of a one-item execution on a warm actor
 * replica, submit to result (docs/design.md, "Targets": p50 under
 * 1 ms), measured through libtroupe so the CLI's own start-up is not part
 * of the figure.
 *
 *	troupe-latency [--runs N] [--warmup N] [--cmd CMD] [--replicas N]
 *	               [--ttl SEC] [--addr URL]
 *
 * Each run is CreateExecution (one item, sealed, on the ad hoc environment
 * of CMD, default `cat`), WatchExecution until the phase is terminal, and
 * GetOutputs; the output must equal the item.  The first --warmup runs
 * (default 10) boot the replicas and are not counted.  Prints p50, p90,
 * p99, max and mean of the whole round trip and the p50 of each of its
 * three parts, in milliseconds.  Not a ctest test: a benchmark.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "troupe/client.h"

typedef struct {
	double create, wait, outputs, total;
} lat_run;

/* Monotonic time in milliseconds. */
static double
lat_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
lat_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of v[0..n), sorted in place (nearest rank). */
static double
lat_quantile(double *v, size_t n, double q)
{
	size_t k;

	qsort(v, n, sizeof(*v), lat_cmp);
	k = (size_t)(q * (double)n + 0.999999);
	if (k == 0)
		k = 1;
	return v[k > n ? n - 1 : k - 1];
}

static int
lat_terminal(Troupe__Phase p)
{
	return p == TROUPE__PHASE__PHASE_SUCCEEDED ||
	       p == TROUPE__PHASE__PHASE_FAILED ||
	       p == TROUPE__PHASE__PHASE_ABORTED ||
	       p == TROUPE__PHASE__PHASE_TIMED_OUT;
}

/* One execution of the single item "i<n>" on cmd's replicas.  Fills *out
 * with the time of each part.  Returns 0 or a negative TROUPE_E* (the
 * reason printed on stderr). */
static int
lat_once(troupe_client *c, const char *cmd, uint32_t replicas, uint32_t ttl,
         unsigned n, lat_run *out)
{
	Troupe__CreateExecutionRequest creq =
	    TROUPE__CREATE_EXECUTION_REQUEST__INIT;
	Troupe__ExecutionSpec         spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv              env = TROUPE__ACTOR_ENV__INIT;
	Troupe__WatchExecutionRequest wreq =
	    TROUPE__WATCH_EXECUTION_REQUEST__INIT;
	Troupe__GetOutputsRequest     oreq = TROUPE__GET_OUTPUTS_REQUEST__INIT;
	Troupe__CreateExecutionReply *crep = NULL;
	Troupe__WatchExecutionReply  *wrep = NULL;
	Troupe__GetOutputsReply      *orep = NULL;
	ProtobufCBinaryData           item;
	char                          in[32];
	char                         *id = NULL;
	double                        t0, t1, t2, t3;
	int                           rv;

	snprintf(in, sizeof(in), "i%u", n);
	item.data = (uint8_t *)in;
	item.len = strlen(in);
	env.replica_count = replicas;
	env.ttl_seconds = ttl;
	env.command = (char *)cmd;
	env.protocol = TROUPE__PROTOCOL__PROTOCOL_LINES;
	spec.command = (char *)cmd;
	spec.adhoc_actor = &env;
	creq.spec = &spec;
	creq.items = &item;
	creq.n_items = 1;
	creq.seal = 1;

	t0 = lat_now_ms();
	if ((rv = TROUPE_CALL(c, CreateExecution, &creq, create_execution,
	                      &crep)) != 0)
		goto fail;
	t1 = lat_now_ms();
	if (crep->execution == NULL ||
	    (id = strdup(crep->execution->id)) == NULL) {
		rv = TROUPE_EINTERNAL;
		goto fail;
	}
	wreq.id = id;
	wreq.since_version = crep->execution->version;
	wreq.timeout_ms = 10000;
	if (!lat_terminal(crep->execution->phase)) {
		for (;;) {
			if ((rv = TROUPE_CALL(c, WatchExecution, &wreq,
			                      watch_execution, &wrep)) != 0)
				goto fail;
			if (wrep->execution == NULL) {
				rv = TROUPE_EINTERNAL;
				goto fail;
			}
			if (lat_terminal(wrep->execution->phase))
				break;
			wreq.since_version = wrep->execution->version;
			troupe__watch_execution_reply__free_unpacked(wrep,
			                                             NULL);
			wrep = NULL;
		}
	}
	t2 = lat_now_ms();
	oreq.id = id;
	oreq.count = 1;
	if ((rv = TROUPE_CALL(c, GetOutputs, &oreq, get_outputs, &orep)) != 0)
		goto fail;
	t3 = lat_now_ms();
	if (orep->n_items != 1 ||
	    orep->items[0]->state != TROUPE__ITEM_STATE__ITEM_SUCCEEDED ||
	    orep->items[0]->output.len != item.len ||
	    memcmp(orep->items[0]->output.data, in, item.len) != 0) {
		fprintf(stderr, "troupe-latency: %s: wrong result for %s\n", id,
		        in);
		rv = TROUPE_EINTERNAL;
		goto fail;
	}
	out->create = t1 - t0;
	out->wait = t2 - t1;
	out->outputs = t3 - t2;
	out->total = t3 - t0;
	rv = 0;
fail:
	if (rv != 0 && troupe_client_error(c) != NULL)
		fprintf(stderr, "troupe-latency: run %u: %s (%s)\n", n,
		        troupe_strerror(rv), troupe_client_error(c));
	troupe__create_execution_reply__free_unpacked(crep, NULL);
	troupe__watch_execution_reply__free_unpacked(wrep, NULL);
	troupe__get_outputs_reply__free_unpacked(orep, NULL);
	free(id);
	return rv;
}

static void
lat_usage(FILE *f)
{
	fputs("usage: troupe-latency [--runs N] [--warmup N] [--cmd CMD] "
	      "[--replicas N]\n"
	      "                      [--ttl SEC] [--addr URL]\n",
	      f);
}

int
main(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"runs", required_argument, NULL, 'n'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"cmd", required_argument, NULL, 'c'},
	    {"replicas", required_argument, NULL, 'r'},
	    {"ttl", required_argument, NULL, 't'},
	    {"addr", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	troupe_client *c = NULL;
	lat_run       *runs = NULL;
	double        *v = NULL;
	const char    *cmd = "cat", *addr = NULL;
	unsigned       n = 1000, warm = 10, replicas = 1, ttl = 60;
	double         sum = 0, p50, p90, p99;
	int            opt, rv, code = 1;

	while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (opt) {
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': warm = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': cmd = optarg; break;
		case 'r': replicas = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': ttl = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'a': addr = optarg; break;
		case 'h': lat_usage(stdout); return 0;
		default: lat_usage(stderr); return 2;
		}
	}
	if (n == 0 || replicas == 0 || optind != argc) {
		lat_usage(stderr);
		return 2;
	}
	if ((rv = troupe_client_open(addr, NULL, &c)) != 0) {
		fprintf(stderr,
		        "troupe-latency: cannot reach the scheduler: %s\n",
		        troupe_strerror(rv));
		goto fail;
	}
	if ((runs = calloc(n, sizeof(*runs))) == NULL ||
	    (v = calloc(n, sizeof(*v))) == NULL)
		goto fail;
	for (unsigned i = 0; i < warm; i++) {
		lat_run r;

		if (lat_once(c, cmd, replicas, ttl, i, &r) != 0)
			goto fail;
	}
	for (unsigned i = 0; i < n; i++)
		if (lat_once(c, cmd, replicas, ttl, warm + i, &runs[i]) != 0)
			goto fail;

	for (unsigned i = 0; i < n; i++) {
		v[i] = runs[i].total;
		sum += runs[i].total;
	}
	/* One quantile per statement: each sorts v. */
	p50 = lat_quantile(v, n, 0.50);
	p90 = lat_quantile(v, n, 0.90);
	p99 = lat_quantile(v, n, 0.99);
	printf("one-item executions on a warm replica (%s), %u runs, "
	       "submit to result, ms:\n",
	       cmd, n);
	printf("  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n", p50,
	       p90, p99, v[n - 1], sum / n);
	for (unsigned i = 0; i < n; i++)
		v[i] = runs[i].create;
	p50 = lat_quantile(v, n, 0.50);
	printf("  p50 of its parts: CreateExecution %.3f", p50);
	for (unsigned i = 0; i < n; i++)
		v[i] = runs[i].wait;
	p50 = lat_quantile(v, n, 0.50);
	printf(", WatchExecution until done %.3f", p50);
	for (unsigned i = 0; i < n; i++)
		v[i] = runs[i].outputs;
	p50 = lat_quantile(v, n, 0.50);
	printf(", GetOutputs %.3f\n", p50);
	code = 0;
fail:
	free(runs);
	free(v);
	troupe_client_close(c);
	return code;
}
