/*
 * The troupe CLI's flag parsing, item reading and upload chunking, without
 * a scheduler: each test is a list of checks on the pure functions.  And
 * libtroupe's plumbing of the project: the envelope, and a real client
 * against a one-request stand-in for the scheduler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "args.h"
#include "cli.h"
#include "items.h"
#include "map_upload.h"
#include "troupe/client.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "skip.h"

/* Parses a map command line given as a NULL-terminated list. */
static int
parse_map(cli_map_opts *o, char *err, size_t errlen, ...)
{
	char   *argv[64];
	int     argc = 0;
	va_list ap;
	int     rv;

	argv[argc++] = "troupe";
	argv[argc++] = "map";
	va_start(ap, errlen);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	rv = cli_parse_map(argc, argv, 2, o, err, errlen);
	return rv;
}

/* Checks that a map command line is refused with a message holding
 * `want`. */
#define MAP_BAD(want, ...)                                                    \
	do {                                                                  \
		cli_map_opts o_;                                              \
		char         e_[256];                                         \
		assert_int_equal(                                             \
		    parse_map(&o_, e_, sizeof(e_), __VA_ARGS__, NULL),        \
		    CLI_EUSAGE);                                              \
		if (strstr(e_, (want)) == NULL)                               \
			fail_msg("error '%s' does not say '%s'", e_, (want)); \
		cli_map_opts_free(&o_);                                       \
	} while (0)

static void
test_map_all_flags(void **state)
{
	cli_map_opts o;
	char         err[256];

	(void)state;
	assert_int_equal(
	    parse_map(&o, err, sizeof(err), "--cmd", "echo {}", "--items",
	              "in.txt", "--concurrency", "10", "--retries=2",
	              "--timeout", "1.5", "--min-success-ratio", "0.9",
	              "--replicas", "4", "--ttl", "30", "--protocol", "frames",
	              "--env", "A=1", "--env", "B_2=x=y", "--name", "job",
	              "--detach", "--json", "--cpu", "500m", "--mem", "64M",
	              "--execution-timeout", "60", "--addr", "ipc:///tmp/a",
	              "--token-file", "/tmp/tok", NULL),
	    0);
	assert_string_equal(o.cmd, "echo {}");
	assert_null(o.task);
	assert_string_equal(o.items, "in.txt");
	assert_int_equal(o.concurrency, 10);
	assert_true(o.has_retries);
	assert_int_equal(o.retries, 2);
	assert_true(o.has_timeout);
	assert_int_equal(o.timeout_ms, 1500);
	assert_true(o.has_ratio);
	assert_true(o.ratio > 0.8999 && o.ratio < 0.9001);
	assert_true(o.has_replicas);
	assert_int_equal(o.replicas, 4);
	assert_true(o.has_ttl);
	assert_int_equal(o.ttl_s, 30);
	assert_int_equal(o.protocol, 1);
	assert_int_equal(o.env.n, 2);
	assert_string_equal(o.env.v[0], "A=1");
	assert_string_equal(o.env.v[1], "B_2=x=y");
	assert_string_equal(o.name, "job");
	assert_true(o.detach);
	assert_true(o.json);
	assert_int_equal(o.cpu_milli, 500);
	assert_int_equal(o.mem_bytes, 64u << 20);
	assert_int_equal(o.exec_timeout_s, 60);
	assert_string_equal(o.g.addr, "ipc:///tmp/a");
	assert_string_equal(o.g.token_file, "/tmp/tok");
	cli_map_opts_free(&o);
}

static void
test_map_defaults(void **state)
{
	cli_map_opts o;
	char         err[256];

	(void)state;
	assert_int_equal(parse_map(&o, err, sizeof(err), "--task", "t", NULL),
	                 0);
	assert_string_equal(o.task, "t");
	assert_null(o.cmd);
	assert_null(o.items);
	assert_false(o.has_retries);
	assert_false(o.has_timeout);
	assert_false(o.has_ratio);
	assert_false(o.has_replicas);
	assert_false(o.detach);
	assert_false(o.json);
	assert_int_equal(o.concurrency, 0);
	assert_null(o.g.addr);
	cli_map_opts_free(&o);

	/* --help wins over missing flags. */
	assert_int_equal(parse_map(&o, err, sizeof(err), "--help", NULL), 0);
	assert_true(o.help);
	cli_map_opts_free(&o);
	assert_int_equal(parse_map(&o, err, sizeof(err), "-h", NULL), 0);
	assert_true(o.help);
	cli_map_opts_free(&o);

	/* "--" ends flags; "-" is stdin for --items. */
	assert_int_equal(parse_map(&o, err, sizeof(err), "--items", "-",
	                           "--cmd", "--weird", NULL),
	                 0);
	assert_string_equal(o.items, "-");
	assert_string_equal(o.cmd, "--weird");
	cli_map_opts_free(&o);
}

static void
test_map_cmd_task_exclusive(void **state)
{
	(void)state;
	MAP_BAD("exclude", "--cmd", "x", "--task", "t");
	MAP_BAD("--cmd 'CMD', --task NAME or --actor ENV", "--concurrency",
	        "2");
	MAP_BAD("--cmd is empty", "--cmd", "");
	MAP_BAD("--task is empty", "--task", "");
	/* A registered actor environment brings its own command. */
	{
		cli_map_opts o;
		char         e[256];
		assert_int_equal(
		    parse_map(&o, e, sizeof(e), "--actor", "anomaly", NULL), 0);
		assert_string_equal(o.actor, "anomaly");
		cli_map_opts_free(&o);
	}
}

static void
test_map_actor_flags(void **state)
{
	cli_map_opts o;
	char         err[256];

	(void)state;
	/* --replicas alone: the TTL is the scheduler's default. */
	assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "x",
	                           "--replicas", "3", NULL),
	                 0);
	assert_true(o.has_replicas);
	assert_false(o.has_ttl);
	assert_int_equal(o.ttl_s, 0);
	assert_false(o.has_protocol);
	cli_map_opts_free(&o);
	/* --actor with a task is fine. */
	assert_int_equal(parse_map(&o, err, sizeof(err), "--task", "t",
	                           "--actor", "py", NULL),
	                 0);
	assert_string_equal(o.actor, "py");
	cli_map_opts_free(&o);

	MAP_BAD("--ttl needs --replicas", "--cmd", "x", "--ttl", "5");
	MAP_BAD("exclude", "--cmd", "x", "--replicas", "2", "--actor", "e");
	MAP_BAD("at least 1", "--cmd", "x", "--replicas", "0");
	MAP_BAD("--replicas needs --cmd", "--task", "t", "--replicas", "2");
	MAP_BAD("--protocol needs --replicas", "--cmd", "x", "--protocol",
	        "lines");
	MAP_BAD("--actor is empty", "--cmd", "x", "--actor", "");
}

static void
test_map_protocol(void **state)
{
	cli_map_opts o;
	char         err[256];

	(void)state;
	assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "x",
	                           "--replicas", "1", "--protocol", "lines",
	                           NULL),
	                 0);
	assert_true(o.has_protocol);
	assert_int_equal(o.protocol, 0);
	cli_map_opts_free(&o);
	MAP_BAD("not a protocol", "--cmd", "x", "--replicas", "1", "--protocol",
	        "json");
	MAP_BAD("not a protocol", "--cmd", "x", "--replicas", "1", "--protocol",
	        "LINES");
}

static void
test_map_bad_numbers(void **state)
{
	(void)state;
	MAP_BAD("not a whole number", "--cmd", "x", "--concurrency", "abc");
	MAP_BAD("not a whole number", "--cmd", "x", "--concurrency", "-1");
	MAP_BAD("not a whole number", "--cmd", "x", "--concurrency", "+1");
	MAP_BAD("not a whole number", "--cmd", "x", "--concurrency", "1x");
	MAP_BAD("not a whole number", "--cmd", "x", "--concurrency", " 1");
	MAP_BAD("not a whole number", "--cmd", "x", "--retries", "");
	MAP_BAD("not a whole number", "--cmd", "x", "--retries", "1.5");
	MAP_BAD("too large", "--cmd", "x", "--retries", "4294967296");
	MAP_BAD("too large", "--cmd", "x", "--concurrency",
	        "99999999999999999999999");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "abc");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "-1");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "1e3");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "inf");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "nan");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "0x10");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", "1.2.3");
	MAP_BAD("not a number of seconds", "--cmd", "x", "--timeout", ".");
	MAP_BAD("too long", "--cmd", "x", "--timeout", "99999999");
	MAP_BAD("not thousandths of a CPU", "--cmd", "x", "--cpu", "0.5");
	MAP_BAD("not a size", "--cmd", "x", "--mem", "12Q");
	MAP_BAD("not a size", "--cmd", "x", "--mem", "M");
}

static void
test_map_timeouts(void **state)
{
	cli_map_opts o;
	char         err[256];
	static const struct {
		const char *in;
		uint32_t    ms;
	} cases[] = {
	    {"0", 0},     {"1", 1000},  {"1.5", 1500},       {"0.0001", 1},
	    {".25", 250}, {"2.", 2000}, {"86400", 86400000},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "x",
		                           "--timeout", cases[i].in, NULL),
		                 0);
		assert_true(o.has_timeout);
		assert_int_equal(o.timeout_ms, cases[i].ms);
		cli_map_opts_free(&o);
	}
}

static void
test_map_ratio(void **state)
{
	cli_map_opts o;
	char         err[256];

	(void)state;
	assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "x",
	                           "--min-success-ratio", "0", NULL),
	                 0);
	assert_true(o.has_ratio);
	assert_true(o.ratio == 0.0);
	cli_map_opts_free(&o);
	assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "x",
	                           "--min-success-ratio=1", NULL),
	                 0);
	assert_true(o.ratio == 1.0);
	cli_map_opts_free(&o);
	MAP_BAD("between 0 and 1", "--cmd", "x", "--min-success-ratio", "1.5");
	MAP_BAD("between 0 and 1", "--cmd", "x", "--min-success-ratio", "-0.1");
	MAP_BAD("between 0 and 1", "--cmd", "x", "--min-success-ratio", "x");
	MAP_BAD("between 0 and 1", "--cmd", "x", "--min-success-ratio",
	        "1.0001");
}

static void
test_map_unknown_and_malformed(void **state)
{
	(void)state;
	MAP_BAD("unknown flag --bogus", "--cmd", "x", "--bogus");
	MAP_BAD("unknown flag --bogus", "--cmd", "x", "--bogus=1");
	MAP_BAD("unknown flag -c", "-c", "x");
	MAP_BAD("--cmd needs a value", "--cmd");
	MAP_BAD("--concurrency needs a value", "--cmd", "x", "--concurrency");
	MAP_BAD("--detach takes no value", "--cmd", "x", "--detach=yes");
	MAP_BAD("unexpected argument 'extra'", "--cmd", "x", "extra");
	MAP_BAD("not KEY=VALUE", "--cmd", "x", "--env", "NOEQUALS");
	MAP_BAD("not KEY=VALUE", "--cmd", "x", "--env", "=v");
	MAP_BAD("not KEY=VALUE", "--cmd", "x", "--env", "1A=v");
	MAP_BAD("not KEY=VALUE", "--cmd", "x", "--env", "A-B=v");
}

static void
test_map_spec(void **state)
{
	cli_map_opts          o;
	Troupe__ExecutionSpec spec;
	Troupe__ActorEnv      act;
	Troupe__Resources     res;
	char                  err[256];

	(void)state;
	/* Oneofs stay unset when their flags are absent. */
	assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "c", NULL),
	                 0);
	cli_map_spec(&o, &spec, &act, &res);
	assert_string_equal(spec.command, "c");
	assert_string_equal(spec.task, "");
	assert_int_equal(spec.retries_opt_case,
	                 TROUPE__EXECUTION_SPEC__RETRIES_OPT__NOT_SET);
	assert_int_equal(spec.timeout_opt_case,
	                 TROUPE__EXECUTION_SPEC__TIMEOUT_OPT__NOT_SET);
	assert_int_equal(spec.ratio_opt_case,
	                 TROUPE__EXECUTION_SPEC__RATIO_OPT__NOT_SET);
	assert_null(spec.adhoc_actor);
	assert_null(spec.resources);
	cli_map_opts_free(&o);

	/* ... and set, even to zero, when given. */
	assert_int_equal(parse_map(&o, err, sizeof(err), "--cmd", "c",
	                           "--retries", "0", "--timeout", "0",
	                           "--min-success-ratio", "0.5", "--replicas",
	                           "2", "--ttl", "9", "--env", "K=V", "--mem",
	                           "1K", NULL),
	                 0);
	cli_map_spec(&o, &spec, &act, &res);
	assert_int_equal(spec.retries_opt_case,
	                 TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES);
	assert_int_equal(spec.retries, 0);
	assert_int_equal(spec.timeout_opt_case,
	                 TROUPE__EXECUTION_SPEC__TIMEOUT_OPT_TIMEOUT_MS);
	assert_int_equal(spec.timeout_ms, 0);
	assert_int_equal(spec.ratio_opt_case,
	                 TROUPE__EXECUTION_SPEC__RATIO_OPT_MIN_SUCCESS_RATIO);
	assert_non_null(spec.adhoc_actor);
	assert_int_equal(spec.adhoc_actor->replica_count, 2);
	assert_int_equal(spec.adhoc_actor->ttl_seconds, 9);
	assert_string_equal(spec.adhoc_actor->command, "c");
	assert_int_equal(spec.adhoc_actor->protocol,
	                 TROUPE__PROTOCOL__PROTOCOL_LINES);
	assert_int_equal(spec.adhoc_actor->n_env, 1);
	assert_int_equal(spec.n_env, 1);
	assert_string_equal(spec.env[0], "K=V");
	assert_non_null(spec.resources);
	assert_int_equal(spec.resources->mem_bytes, 1024);
	cli_map_opts_free(&o);
}

static void
test_value_parsers(void **state)
{
	char     err[256];
	uint32_t u;
	uint64_t b;
	int      ph;

	(void)state;
	assert_int_equal(cli_parse_cpu("cpu", "1500", &u, err, sizeof(err)), 0);
	assert_int_equal(u, 1500);
	assert_int_equal(cli_parse_cpu("cpu", "m", &u, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_int_equal(cli_parse_bytes("mem", "512", &b, err, sizeof(err)),
	                 0);
	assert_int_equal(b, 512);
	assert_int_equal(cli_parse_bytes("mem", "2Gi", &b, err, sizeof(err)),
	                 0);
	assert_int_equal(b, 2ull << 30);
	assert_int_equal(cli_parse_bytes("mem", "1.5k", &b, err, sizeof(err)),
	                 0);
	assert_int_equal(b, 1536);
	assert_int_equal(cli_parse_bytes("mem", "1MiB", &b, err, sizeof(err)),
	                 0);
	assert_int_equal(b, 1u << 20);
	assert_int_equal(cli_parse_bytes("mem", "1MBx", &b, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_int_equal(
	    cli_parse_phase("phase", "running", &ph, err, sizeof(err)), 0);
	assert_int_equal(ph, TROUPE__PHASE__PHASE_RUNNING);
	assert_int_equal(
	    cli_parse_phase("phase", "PHASE_TIMED_OUT", &ph, err, sizeof(err)),
	    0);
	assert_int_equal(ph, TROUPE__PHASE__PHASE_TIMED_OUT);
	assert_int_equal(
	    cli_parse_phase("phase", "unspecified", &ph, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_int_equal(
	    cli_parse_phase("phase", "done", &ph, err, sizeof(err)),
	    CLI_EUSAGE);
}

/* Runs a parse function over a NULL-terminated command line whose first
 * `first` words are the command. */
static char *cl[32];
static int
cl_set(const char *first, ...)
{
	va_list ap;
	int     n = 0;

	cl[n++] = "troupe";
	cl[n++] = (char *)first;
	va_start(ap, first);
	while ((cl[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	return n;
}

/* `troupe logs ID [--item N] [--attempt K]`. */
static void
test_logs_args(void **state)
{
	cli_logs_opts o;
	char          err[256];
	int           n;

	(void)state;
	n = cl_set("logs", "ex-1", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_string_equal(o.id, "ex-1");
	assert_false(o.has_item);
	n = cl_set("logs", "--item", "18446744073709551615", "ex-1",
	           "--attempt", "2", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_true(o.has_item);
	assert_true(o.item == UINT64_MAX);
	assert_int_equal(o.attempt, 2);
	n = cl_set("logs", "ex-1", "--item=0", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_true(o.has_item);
	assert_int_equal(o.item, 0);
	assert_int_equal(o.attempt, 0);
	n = cl_set("logs", "ex-1", "--attempt", "1", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_string_equal(err, "--attempt needs --item");
	n = cl_set("logs", "ex-1", "--item", "1", "--attempt", "0", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "count from 1"));
	n = cl_set("logs", "ex-1", "--item", "-1", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	n = cl_set("logs", "ex-1", "--item", "18446744073709551616", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "too large"));
	n = cl_set("logs", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "missing the execution ID"));
	n = cl_set("logs", "a", "b", NULL);
	assert_int_equal(cli_parse_logs(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
}

static void
test_other_commands(void **state)
{
	cli_id_opts    id;
	cli_list_opts  l;
	cli_def_opts   d;
	cli_up_opts    up;
	cli_plain_opts p;
	char           err[256];
	int            n;

	(void)state;
	n = cl_set("status", "ex-1", "--json", NULL);
	assert_int_equal(cli_parse_id(n, cl, 2, 1, 0, &id, err, sizeof(err)),
	                 0);
	assert_string_equal(id.id, "ex-1");
	assert_true(id.json);
	n = cl_set("watch", "ex-1", "--json", NULL);
	assert_int_equal(cli_parse_id(n, cl, 2, 0, 0, &id, err, sizeof(err)),
	                 CLI_EUSAGE);
	n = cl_set("status", NULL);
	assert_int_equal(cli_parse_id(n, cl, 2, 1, 0, &id, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "missing the execution ID"));
	n = cl_set("status", "a", "b", NULL);
	assert_int_equal(cli_parse_id(n, cl, 2, 1, 0, &id, err, sizeof(err)),
	                 CLI_EUSAGE);
	n = cl_set("abort", "--reason", "why", "ex-2", NULL);
	assert_int_equal(cli_parse_id(n, cl, 2, 0, 1, &id, err, sizeof(err)),
	                 0);
	assert_string_equal(id.reason, "why");
	assert_string_equal(id.id, "ex-2");

	n = cl_set("list", NULL);
	assert_int_equal(cli_parse_list(n, cl, 2, &l, err, sizeof(err)), 0);
	assert_int_equal(l.limit, 20);
	assert_int_equal(l.phase, 0);
	n = cl_set("list", "--phase", "failed", "--limit", "0", "--json", NULL);
	assert_int_equal(cli_parse_list(n, cl, 2, &l, err, sizeof(err)), 0);
	assert_int_equal(l.limit, 0);
	assert_int_equal(l.phase, TROUPE__PHASE__PHASE_FAILED);
	assert_true(l.json);
	n = cl_set("list", "--phase", "nope", NULL);
	assert_int_equal(cli_parse_list(n, cl, 2, &l, err, sizeof(err)),
	                 CLI_EUSAGE);

	n = cl_set("register", "t1", "--cmd", "echo", "--retries", "3",
	           "--timeout", "2", "--actor", "a", "--env", "X=1", NULL);
	assert_int_equal(
	    cli_parse_task_register(n, cl, 2, &d, err, sizeof(err)), 0);
	assert_string_equal(d.name, "t1");
	assert_string_equal(d.cmd, "echo");
	assert_int_equal(d.retries, 3);
	assert_int_equal(d.timeout_ms, 2000);
	assert_string_equal(d.actor, "a");
	assert_int_equal(d.env.n, 1);
	cli_def_opts_free(&d);
	n = cl_set("register", "t1", NULL);
	assert_int_equal(
	    cli_parse_task_register(n, cl, 2, &d, err, sizeof(err)),
	    CLI_EUSAGE);
	cli_def_opts_free(&d);
	n = cl_set("register", "--cmd", "x", NULL);
	assert_int_equal(
	    cli_parse_task_register(n, cl, 2, &d, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "NAME"));
	cli_def_opts_free(&d);

	n = cl_set("create", "py", "--cmd", "python3 srv.py", "--replicas",
	           "10", "--ttl", "90", "--protocol", "frames", "--max-items",
	           "100", "--cpu", "250", "--mem", "1G", NULL);
	assert_int_equal(cli_parse_actor_create(n, cl, 2, &d, err, sizeof(err)),
	                 0);
	assert_int_equal(d.replicas, 10);
	assert_int_equal(d.ttl_s, 90);
	assert_int_equal(d.protocol, 1);
	assert_int_equal(d.max_items, 100);
	assert_int_equal(d.cpu_milli, 250);
	assert_int_equal(d.mem_bytes, 1ull << 30);
	cli_def_opts_free(&d);
	n = cl_set("create", "py", "--cmd", "x", NULL);
	assert_int_equal(cli_parse_actor_create(n, cl, 2, &d, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "--replicas"));
	cli_def_opts_free(&d);
	n = cl_set("create", "py", "--cmd", "x", "--replicas", "1", "--retries",
	           "1", NULL);
	assert_int_equal(cli_parse_actor_create(n, cl, 2, &d, err, sizeof(err)),
	                 CLI_EUSAGE);
	cli_def_opts_free(&d);

	n = cl_set("up", NULL);
	assert_int_equal(cli_parse_up(n, cl, 2, &up, err, sizeof(err)), 0);
	assert_int_equal(up.workers, 1);
	assert_int_equal(up.slots, 0);
	assert_null(up.home);
	n = cl_set("up", "--workers", "3", "--slots", "4", "--home", "/tmp/h",
	           NULL);
	assert_int_equal(cli_parse_up(n, cl, 2, &up, err, sizeof(err)), 0);
	assert_int_equal(up.workers, 3);
	assert_int_equal(up.slots, 4);
	assert_string_equal(up.home, "/tmp/h");
	n = cl_set("up", "--slots", "0", NULL);
	assert_int_equal(cli_parse_up(n, cl, 2, &up, err, sizeof(err)),
	                 CLI_EUSAGE);
	n = cl_set("up", "--addr", "tcp://x:1", NULL);
	assert_int_equal(cli_parse_up(n, cl, 2, &up, err, sizeof(err)),
	                 CLI_EUSAGE);

	n = cl_set("workers", "--json", "--addr=ipc:///x", NULL);
	assert_int_equal(cli_parse_plain(n, cl, 2, &p, err, sizeof(err)), 0);
	assert_true(p.json);
	assert_string_equal(p.g.addr, "ipc:///x");
	n = cl_set("workers", "extra", NULL);
	assert_int_equal(cli_parse_plain(n, cl, 2, &p, err, sizeof(err)),
	                 CLI_EUSAGE);
}

/* Splits a copy of s into *it. */
static void
split(const char *s, size_t len, cli_items *it)
{
	char *buf = NULL;

	if (len > 0) {
		buf = malloc(len);
		assert_non_null(buf);
		memcpy(buf, s, len);
	}
	assert_int_equal(cli_items_split(buf, len, it), 0);
}

/* Splits a string literal, NULs included. */
#define SPLIT(lit, it) split((lit), sizeof(lit) - 1, (it))

static void
assert_item(const cli_items *it, size_t i, const char *want)
{
	assert_true(i < it->n);
	assert_int_equal(it->v[i].len, strlen(want));
	assert_memory_equal(it->v[i].data, want, strlen(want));
}

static void
test_items_lines(void **state)
{
	cli_items it;

	(void)state;
	SPLIT("a\nbb\nccc\n", &it);
	assert_int_equal(it.n, 3);
	assert_item(&it, 0, "a");
	assert_item(&it, 1, "bb");
	assert_item(&it, 2, "ccc");
	cli_items_free(&it);

	/* No trailing newline: the last line is an item all the same. */
	SPLIT("a\nb", &it);
	assert_int_equal(it.n, 2);
	assert_item(&it, 1, "b");
	cli_items_free(&it);

	/* Empty lines are empty items. */
	SPLIT("\n\nx\n", &it);
	assert_int_equal(it.n, 3);
	assert_item(&it, 0, "");
	assert_item(&it, 1, "");
	assert_item(&it, 2, "x");
	cli_items_free(&it);
	SPLIT("\n", &it);
	assert_int_equal(it.n, 1);
	assert_item(&it, 0, "");
	cli_items_free(&it);

	/* CRLF endings lose the CR; a CR elsewhere stays. */
	SPLIT("a\r\nb\rc\r\nd\r", &it);
	assert_int_equal(it.n, 3);
	assert_item(&it, 0, "a");
	assert_item(&it, 1, "b\rc");
	assert_item(&it, 2, "d");
	cli_items_free(&it);

	/* Bytes pass through: NUL and non-UTF-8. */
	SPLIT("\x00\xff\n", &it);
	assert_int_equal(it.n, 1);
	assert_int_equal(it.v[0].len, 2);
	assert_int_equal(it.v[0].data[0], 0);
	assert_int_equal(it.v[0].data[1], 0xff);
	cli_items_free(&it);
}

static void
test_items_empty(void **state)
{
	cli_items it;
	FILE     *f;

	(void)state;
	SPLIT("", &it);
	assert_int_equal(it.n, 0);
	cli_items_free(&it);

	/* Reading an empty stream gives no items (map then says "no
	 * items"). */
	f = tmpfile();
	assert_non_null(f);
	assert_int_equal(cli_items_read(f, &it), 0);
	assert_int_equal(it.n, 0);
	cli_items_free(&it);
	fclose(f);
}

static void
test_items_read_large(void **state)
{
	cli_items it;
	FILE     *f = tmpfile();

	(void)state;
	assert_non_null(f);
	/* More than the reader's first buffer. */
	for (int i = 0; i < 100000; i++)
		fprintf(f, "%d\n", i);
	rewind(f);
	assert_int_equal(cli_items_read(f, &it), 0);
	assert_int_equal(it.n, 100000);
	assert_item(&it, 0, "0");
	assert_item(&it, 12345, "12345");
	assert_item(&it, 99999, "99999");
	cli_items_free(&it);
	fclose(f);
}

static void
test_chunk_count(void **state)
{
	cli_items it;
	char      buf[300];

	(void)state;
	assert_int_equal(cli_item_wire_size(0), 2);
	assert_int_equal(cli_item_wire_size(127), 129);
	assert_int_equal(cli_item_wire_size(128), 131);
	/* Ten items of 9 bytes and a newline: 11 bytes each on the wire. */
	for (int i = 0; i < 10; i++)
		memcpy(buf + i * 10, "123456789\n", 10);
	split(buf, 100, &it);
	assert_int_equal(it.n, 10);
	assert_int_equal(cli_chunk_count(&it, 0, 1000), 10);
	assert_int_equal(cli_chunk_count(&it, 0, 33), 3);
	assert_int_equal(cli_chunk_count(&it, 0, 32), 2);
	assert_int_equal(cli_chunk_count(&it, 8, 1000), 2);
	/* An item bigger than the budget still goes, alone. */
	assert_int_equal(cli_chunk_count(&it, 0, 5), 1);
	assert_int_equal(cli_chunk_count(&it, 0, 0), 1);
	assert_int_equal(cli_chunk_count(&it, 10, 100), 0);
	cli_items_free(&it);
}

/* A fake scheduler that records each upload request. */
typedef struct rec {
	int      calls;
	int      fail_at; /* fail this call (1-based); 0 = never */
	size_t   limit;
	size_t   max_size;
	uint64_t next_offset;
	size_t   items;
	int      create_seal;
	int      sealed;
	int      order_ok;
} rec;

static int
rec_call(void *ctx, const char *method, const ProtobufCMessage *in,
         const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out)
{
	rec    *r = ctx;
	size_t  size = protobuf_c_message_get_packed_size(in);
	uint8_t buf[256];
	size_t  len = 0;

	*out = NULL;
	r->calls++;
	if (size + CLI_MAP_ENVELOPE_SLACK > r->max_size)
		r->max_size = size + CLI_MAP_ENVELOPE_SLACK;
	if (r->calls == r->fail_at)
		return TROUPE_EUNAVAIL;
	if (strcmp(method, "CreateExecution") == 0) {
		const Troupe__CreateExecutionRequest *q = (const void *)in;
		Troupe__CreateExecutionReply          rep =
		    TROUPE__CREATE_EXECUTION_REPLY__INIT;
		Troupe__Execution ex = TROUPE__EXECUTION__INIT;

		r->order_ok = r->calls == 1;
		r->create_seal = q->seal;
		r->items += q->n_items;
		r->next_offset = q->n_items;
		ex.id = "ex-test";
		rep.execution = &ex;
		len = protobuf_c_message_pack(&rep.base, buf);
	} else if (strcmp(method, "AppendItems") == 0) {
		const Troupe__AppendItemsRequest *q = (const void *)in;

		if (q->offset != r->next_offset ||
		    strcmp(q->id, "ex-test") != 0)
			r->order_ok = 0;
		r->items += q->n_items;
		r->next_offset += q->n_items;
	} else if (strcmp(method, "SealExecution") == 0) {
		r->sealed++;
	} else {
		r->order_ok = 0;
	}
	*out = protobuf_c_message_unpack(out_desc, NULL, len, buf);
	return *out != NULL ? 0 : TROUPE_ENOMEM;
}

/* Makes n items of len bytes each. */
static void
make_items(cli_items *it, size_t n, size_t len)
{
	size_t total = n * (len + 1);
	char  *buf = malloc(total);

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++) {
		memset(buf + i * (len + 1), 'a' + (int)(i % 26), len);
		buf[i * (len + 1) + len] = '\n';
	}
	assert_int_equal(cli_items_split(buf, total, it), 0);
	assert_int_equal(it->n, n);
}

static void
test_upload_one_message(void **state)
{
	Troupe__ExecutionSpec spec = TROUPE__EXECUTION_SPEC__INIT;
	cli_items             it;
	rec                   r = {0};
	char                 *id = NULL;

	(void)state;
	spec.command = "echo {}";
	make_items(&it, 100, 3);
	assert_int_equal(cli_map_upload_with(rec_call, &r, &spec, &it,
	                                     TROUPE_CHUNK_BYTES, &id),
	                 0);
	assert_string_equal(id, "ex-test");
	/* Everything fit: one CreateExecution with seal, nothing else. */
	assert_int_equal(r.calls, 1);
	assert_true(r.create_seal);
	assert_int_equal(r.sealed, 0);
	assert_int_equal(r.items, 100);
	assert_true(r.order_ok);
	free(id);
	cli_items_free(&it);
}

static void
test_upload_chunks(void **state)
{
	Troupe__ExecutionSpec spec = TROUPE__EXECUTION_SPEC__INIT;
	cli_items             it;
	rec                   r = {0};
	char                 *id = NULL;
	size_t                limit = 8192;

	(void)state;
	spec.command = "echo {}";
	make_items(&it, 1000, 50);
	assert_int_equal(
	    cli_map_upload_with(rec_call, &r, &spec, &it, limit, &id), 0);
	assert_string_equal(id, "ex-test");
	assert_false(r.create_seal);
	assert_int_equal(r.sealed, 1);
	assert_int_equal(r.items, 1000);
	assert_true(r.order_ok);
	assert_true(r.calls > 3);
	/* Every request, envelope slack included, under the limit. */
	assert_true(r.max_size <= limit);
	free(id);
	cli_items_free(&it);

	/* At the real limit: TROUPE_CHUNK_BYTES-sized requests for ~10 MiB of
	 * items. */
	memset(&r, 0, sizeof(r));
	make_items(&it, 10000, 1000);
	assert_int_equal(cli_map_upload_with(rec_call, &r, &spec, &it,
	                                     TROUPE_CHUNK_BYTES, &id),
	                 0);
	/* 10,000 x 1,003 bytes in 1 MiB requests: create, 9 appends, seal. */
	assert_int_equal(r.calls, 1 + 9 + 1);
	assert_int_equal(r.items, 10000);
	assert_true(r.max_size <= TROUPE_CHUNK_BYTES);
	assert_true(r.order_ok);
	free(id);
	cli_items_free(&it);
}

static void
test_upload_failure(void **state)
{
	Troupe__ExecutionSpec spec = TROUPE__EXECUTION_SPEC__INIT;
	cli_items             it;
	rec                   r = {0};
	char                 *id = NULL;

	(void)state;
	spec.command = "x";
	make_items(&it, 1000, 50);
	/* Creation fails: no id. */
	r.fail_at = 1;
	assert_int_equal(
	    cli_map_upload_with(rec_call, &r, &spec, &it, 8192, &id),
	    TROUPE_EUNAVAIL);
	assert_null(id);
	/* A later chunk fails: the id names what to abort. */
	memset(&r, 0, sizeof(r));
	r.fail_at = 3;
	assert_int_equal(
	    cli_map_upload_with(rec_call, &r, &spec, &it, 8192, &id),
	    TROUPE_EUNAVAIL);
	assert_non_null(id);
	assert_string_equal(id, "ex-test");
	assert_int_equal(r.sealed, 0);
	free(id);
	cli_items_free(&it);
}

/* --project is a global flag: every command takes it, in either form,
 * and a command's own wins over the one before the command word. */
static void
test_global_project(void **state)
{
	cli_map_opts   m;
	cli_plain_opts p;
	cli_list_opts  l;
	cli_def_opts   d;
	char           err[256];
	int            n;

	(void)state;
	assert_int_equal(parse_map(&m, err, sizeof(err), "--cmd", "x",
	                           "--project", "team-a", NULL),
	                 0);
	assert_string_equal(m.g.project, "team-a");
	cli_map_opts_free(&m);
	assert_int_equal(
	    parse_map(&m, err, sizeof(err), "--project=b", "--cmd", "x", NULL),
	    0);
	assert_string_equal(m.g.project, "b");
	cli_map_opts_free(&m);
	assert_int_equal(parse_map(&m, err, sizeof(err), "--cmd", "x", NULL),
	                 0);
	assert_null(m.g.project);
	cli_map_opts_free(&m);
	MAP_BAD("--project needs a value", "--cmd", "x", "--project");

	n = cl_set("list", "--project", "p1", "--json", NULL);
	assert_int_equal(cli_parse_list(n, cl, 2, &l, err, sizeof(err)), 0);
	assert_string_equal(l.g.project, "p1");
	n = cl_set("workers", "--project", "p2", NULL);
	assert_int_equal(cli_parse_plain(n, cl, 2, &p, err, sizeof(err)), 0);
	assert_string_equal(p.g.project, "p2");
	n = cl_set("register", "t", "--cmd", "c", "--project", "p3", NULL);
	assert_int_equal(
	    cli_parse_task_register(n, cl, 2, &d, err, sizeof(err)), 0);
	assert_string_equal(d.g.project, "p3");
	cli_def_opts_free(&d);

	/* Resolution: the command's flag, else the one before the command
	 * word, else TROUPE_PROJECT, else none ("" counts as none). */
	memset(&cli_pre_global, 0, sizeof(cli_pre_global));
	unsetenv("TROUPE_PROJECT");
	memset(&p, 0, sizeof(p));
	assert_null(cli_project(&p.g));
	assert_int_equal(setenv("TROUPE_PROJECT", "from-env", 1), 0);
	assert_string_equal(cli_project(&p.g), "from-env");
	cli_pre_global.project = "pre";
	assert_string_equal(cli_project(&p.g), "pre");
	p.g.project = "own";
	assert_string_equal(cli_project(&p.g), "own");
	p.g.project = "";
	assert_null(cli_project(&p.g));
	assert_int_equal(setenv("TROUPE_PROJECT", "", 1), 0);
	cli_pre_global.project = NULL;
	p.g.project = NULL;
	assert_null(cli_project(&p.g));
	unsetenv("TROUPE_PROJECT");
	memset(&cli_pre_global, 0, sizeof(cli_pre_global));
}

static void
test_project_commands(void **state)
{
	cli_project_opts o;
	char             err[256];
	int              n;

	(void)state;
	n = cl_set("create", "team-a", "--max-running", "4", "--max-replicas=2",
	           "--replace", "--json", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_string_equal(o.name, "team-a");
	assert_int_equal(o.max_running, 4);
	assert_int_equal(o.max_replicas, 2);
	assert_true(o.replace);
	assert_true(o.json);
	n = cl_set("create", "b", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_int_equal(o.max_running, 0);
	assert_int_equal(o.max_replicas, 0);
	assert_false(o.replace);
	assert_false(o.json);
	n = cl_set("create", "--help", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_true(o.help);

	n = cl_set("create", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "NAME"));
	n = cl_set("create", "", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	n = cl_set("create", "a", "b", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "unexpected argument 'b'"));
	n = cl_set("create", "a", "--max-running", "-1", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "--max-running"));
	n = cl_set("create", "a", "--max-replicas", "4294967296", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	n = cl_set("create", "a", "--max-running", NULL);
	assert_int_equal(
	    cli_parse_project_create(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "needs a value"));

	n = cl_set("delete", "team-a", NULL);
	assert_int_equal(
	    cli_parse_project_delete(n, cl, 2, &o, err, sizeof(err)), 0);
	assert_string_equal(o.name, "team-a");
	n = cl_set("delete", "team-a", "--max-running", "3", NULL);
	assert_int_equal(
	    cli_parse_project_delete(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "unknown flag --max-running"));
	n = cl_set("delete", NULL);
	assert_int_equal(
	    cli_parse_project_delete(n, cl, 2, &o, err, sizeof(err)),
	    CLI_EUSAGE);
}

static void
test_token_commands(void **state)
{
	static const struct {
		const char *s;
		int         role;
	} roles[] = {
	    {"read", TROUPE__ROLE__ROLE_READ},
	    {"submit", TROUPE__ROLE__ROLE_SUBMIT},
	    {"ADMIN", TROUPE__ROLE__ROLE_ADMIN},
	    {"role_worker", TROUPE__ROLE__ROLE_WORKER},
	};
	cli_token_opts o;
	char           err[256];
	int            n, role;

	(void)state;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		role = -1;
		assert_int_equal(
		    cli_parse_role("role", roles[i].s, &role, err, sizeof(err)),
		    0);
		assert_int_equal(role, roles[i].role);
	}
	assert_int_equal(
	    cli_parse_role("role", "none", &role, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_int_equal(
	    cli_parse_role("role", "role_none", &role, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_int_equal(cli_parse_role("role", "", &role, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_int_equal(
	    cli_parse_role("role", "writer", &role, err, sizeof(err)),
	    CLI_EUSAGE);
	assert_non_null(strstr(err, "not a role"));

	n = cl_set("create", "--role", "submit", "--project", "a", "--expires",
	           "12h", "--json", NULL);
	assert_int_equal(cli_parse_token_create(n, cl, 2, &o, err, sizeof(err)),
	                 0);
	assert_int_equal(o.role, TROUPE__ROLE__ROLE_SUBMIT);
	assert_string_equal(o.g.project, "a");
	assert_int_equal(o.expires_s, 12 * 3600);
	assert_true(o.json);
	n = cl_set("create", "--role=admin", NULL);
	assert_int_equal(cli_parse_token_create(n, cl, 2, &o, err, sizeof(err)),
	                 0);
	assert_int_equal(o.role, TROUPE__ROLE__ROLE_ADMIN);
	assert_null(o.g.project);
	assert_int_equal(o.expires_s, 0); /* never */
	assert_false(o.json);
	n = cl_set("create", NULL);
	assert_int_equal(cli_parse_token_create(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "--role"));
	n = cl_set("create", "--role", "reader", NULL);
	assert_int_equal(cli_parse_token_create(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	n = cl_set("create", "--role", "read", "--expires", "soon", NULL);
	assert_int_equal(cli_parse_token_create(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "--expires"));
	n = cl_set("create", "--role", "read", "extra", NULL);
	assert_int_equal(cli_parse_token_create(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);

	n = cl_set("revoke", "tok123", NULL);
	assert_int_equal(cli_parse_token_revoke(n, cl, 2, &o, err, sizeof(err)),
	                 0);
	assert_string_equal(o.id, "tok123");
	n = cl_set("revoke", NULL);
	assert_int_equal(cli_parse_token_revoke(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	assert_non_null(strstr(err, "token ID"));
	n = cl_set("revoke", "a", "b", NULL);
	assert_int_equal(cli_parse_token_revoke(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
	n = cl_set("revoke", "a", "--json", NULL);
	assert_int_equal(cli_parse_token_revoke(n, cl, 2, &o, err, sizeof(err)),
	                 CLI_EUSAGE);
}

static void
test_durations_parse(void **state)
{
	static const struct {
		const char *s;
		uint32_t    secs;
	} good[] = {
	    {"30s", 30},    {"10m", 600},
	    {"12h", 43200}, {"7d", 604800},
	    {"90", 90},     {"1", 1},
	    {"1.5", 2},     {"0.5s", 1},
	    {"1.5h", 5400}, {"4294967295", 4294967295u},
	};
	static const char *const bad[] = {
	    "",  "s",  "-1",   "+1",  "1x",  "1e3",   "inf",    "nan",
	    "0", "0s", "0.0d", "1 s", "1ss", "1.2.3", "50000d", "4294967296",
	};
	char     err[256];
	uint32_t secs;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		secs = 0;
		if (cli_parse_duration_s("expires", good[i].s, &secs, err,
		                         sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", good[i].s, err);
		assert_int_equal(secs, good[i].secs);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cli_parse_duration_s("expires", bad[i], &secs, err,
		                         sizeof(err)) != CLI_EUSAGE)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(err, "--expires"));
	}
}

/* The envelope carries the project, and an absent one packs as "". */
static void
test_envelope_project(void **state)
{
	Troupe__GetHealthRequest body = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__Request         *req;
	nng_msg                 *m = NULL;

	(void)state;
	assert_int_equal(troupe_envelope_request_in("GetHealth", "tok",
	                                            "team-a", &body.base, &m),
	                 0);
	req = troupe__request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	assert_non_null(req);
	assert_string_equal(req->method, "GetHealth");
	assert_string_equal(req->token, "tok");
	assert_string_equal(req->project, "team-a");
	troupe__request__free_unpacked(req, NULL);
	nng_msg_free(m);
	assert_int_equal(
	    troupe_envelope_request("GetHealth", NULL, &body.base, &m), 0);
	req = troupe__request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	assert_non_null(req);
	assert_string_equal(req->project, "");
	assert_string_equal(req->token, "");
	troupe__request__free_unpacked(req, NULL);
	nng_msg_free(m);
}

/* A one-request scheduler stand-in: records the envelope's project and
 * answers with code. */
typedef struct fake_sched {
	nng_socket   sock;
	Troupe__Code code;
	char         project[64];
	int          got;
} fake_sched;

static void
fake_serve(void *arg)
{
	fake_sched            *f = arg;
	Troupe__GetHealthReply rep = TROUPE__GET_HEALTH_REPLY__INIT;
	Troupe__Request       *req;
	nng_msg               *m = NULL;

	if (nng_recvmsg(f->sock, &m, 0) != 0)
		return;
	req = troupe__request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	if (req == NULL)
		return;
	snprintf(f->project, sizeof(f->project), "%s", req->project);
	f->got = 1;
	troupe__request__free_unpacked(req, NULL);
	if (troupe_envelope_reply(
	        f->code,
	        f->code == TROUPE__CODE__OK
	            ? NULL
	            : "role read may not call CreateExecution",
	        f->code == TROUPE__CODE__OK ? &rep.base : NULL, &m) == 0 &&
	    nng_sendmsg(f->sock, m, 0) != 0)
		nng_msg_free(m);
}

/* Calls GetHealth through a real client against fake_serve; returns the
 * call's result and the project the server saw. */
static int
fake_call(const char *project, Troupe__Code code, char *seen, size_t len,
          troupe_client **keep)
{
	char                     dir[] = "/tmp/troupe-ut-XXXXXX";
	char                     addr[128];
	fake_sched               f;
	nng_thread              *thr = NULL;
	troupe_client           *c = NULL;
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	int                      rv;

	memset(&f, 0, sizeof(f));
	f.code = code;
	assert_non_null(mkdtemp(dir));
	snprintf(addr, sizeof(addr), "ipc://%s/api.sock", dir);
	assert_int_equal(nng_rep0_open(&f.sock), 0);
	nng_socket_set_ms(f.sock, NNG_OPT_RECVTIMEO, 10000);
	assert_int_equal(nng_listen(f.sock, addr, NULL, 0), 0);
	assert_int_equal(nng_thread_create(&thr, fake_serve, &f), 0);
	assert_int_equal(troupe_client_open(addr, "tok", &c), 0);
	troupe_client_set_timeout(c, 10000);
	assert_int_equal(troupe_client_set_project(c, project), 0);
	assert_string_equal(troupe_client_project(c),
	                    project != NULL ? project : "");
	rv = TROUPE_CALL(c, GetHealth, &req, get_health, &rep);
	nng_thread_destroy(thr);
	assert_true(f.got);
	snprintf(seen, len, "%s", f.project);
	assert_int_equal(troupe_client_last_err(c), rv);
	if (rep != NULL)
		troupe__get_health_reply__free_unpacked(rep, NULL);
	nng_close(f.sock);
	snprintf(addr, sizeof(addr), "%s/api.sock", dir);
	unlink(addr);
	rmdir(dir);
	if (keep != NULL)
		*keep = c;
	else
		troupe_client_close(c);
	return rv;
}

/* troupe_client_set_project puts the project in every call's envelope;
 * a refusal comes back as TROUPE_EPERM with the scheduler's message. */
static void
test_client_sends_project(void **state)
{
	troupe_client *c = NULL;
	char           seen[64];

	(void)state;
	assert_int_equal(
	    fake_call("team-a", TROUPE__CODE__OK, seen, sizeof(seen), NULL), 0);
	assert_string_equal(seen, "team-a");
	assert_int_equal(
	    fake_call(NULL, TROUPE__CODE__OK, seen, sizeof(seen), NULL), 0);
	assert_string_equal(seen, "");
	assert_int_equal(fake_call("b", TROUPE__CODE__PERMISSION_DENIED, seen,
	                           sizeof(seen), &c),
	                 TROUPE_EPERM);
	assert_string_equal(seen, "b");
	assert_string_equal(troupe_client_error(c),
	                    "role read may not call CreateExecution");
	assert_int_equal(troupe_client_last_err(c), TROUPE_EPERM);
	/* Clearing it: later calls name no project. */
	assert_int_equal(troupe_client_set_project(c, ""), 0);
	assert_string_equal(troupe_client_project(c), "");
	troupe_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map_all_flags),
	    cmocka_unit_test(test_map_defaults),
	    cmocka_unit_test(test_map_cmd_task_exclusive),
	    cmocka_unit_test(test_map_actor_flags),
	    cmocka_unit_test(test_map_protocol),
	    cmocka_unit_test(test_map_bad_numbers),
	    cmocka_unit_test(test_map_timeouts),
	    cmocka_unit_test(test_map_ratio),
	    cmocka_unit_test(test_map_unknown_and_malformed),
	    cmocka_unit_test(test_map_spec),
	    cmocka_unit_test(test_value_parsers),
	    cmocka_unit_test(test_other_commands),
	    cmocka_unit_test(test_items_lines),
	    cmocka_unit_test(test_items_empty),
	    cmocka_unit_test(test_items_read_large),
	    cmocka_unit_test(test_chunk_count),
	    cmocka_unit_test(test_upload_one_message),
	    cmocka_unit_test(test_upload_chunks),
	    cmocka_unit_test(test_upload_failure),
	    cmocka_unit_test(test_global_project),
	    cmocka_unit_test(test_project_commands),
	    cmocka_unit_test(test_token_commands),
	    cmocka_unit_test(test_durations_parse),
	    cmocka_unit_test(test_envelope_project),
	    cmocka_unit_test(test_client_sends_project),
	    cmocka_unit_test(test_logs_args),
	};

	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
