/*
 * `troupe map`: read items, upload them in chunks, wait with a progress
 * line, print the outputs in input order.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "items.h"
#include "map_upload.h"
#include "troupe/envelope.h"

static const char map_help[] =
    "usage: troupe map (--cmd 'CMD' | --task NAME) [flags]\n"
    "\n"
    "Runs CMD (or a registered task) once for every item, one item per\n"
    "line of --items FILE or stdin, waits, and prints one output per line\n"
    "in input order.  Exits 0 when the execution SUCCEEDED, 1 otherwise.\n"
    "\n"
    "  --cmd 'CMD'              shell command; {} is the item, shell-quoted;\n"
    "                           the item is also on stdin\n"
    "  --task NAME              a task registered with `troupe task register`\n"
    "  --items FILE|-           read items from FILE (default: stdin)\n"
    "  --concurrency N          at most N items at once (default: capacity)\n"
    "  --retries N              run a failed item up to N more times\n"
    "  --timeout SEC            per-item time limit (fractions allowed)\n"
    "  --min-success-ratio R    succeed when this share of items does (0..1)\n"
    "  --replicas N [--ttl SEC] run CMD as N warm actor replicas\n"
    "  --protocol lines|frames  how the replicas talk (default lines)\n"
    "  --actor ENV              use a registered actor environment\n"
    "  --env K=V                set a variable for the command (repeatable)\n"
    "  --cpu M, --mem B         resources per item: thousandths of a CPU;\n"
    "                           bytes (K, M, G suffixes)\n"
    "  --execution-timeout SEC  time limit for the whole execution\n"
    "  --name LABEL             a label shown by `troupe list`\n"
    "  --detach                 print the execution id and return at once\n"
    "  --json                   print one JSON object per item: index, state,\n"
    "                           output, error, attempts, exit_code, worker\n"
    "  --addr URL, --token-file F   the scheduler (default: TROUPE_ADDR, else\n"
    "                           the local cluster of TROUPE_HOME)\n"
    "\n"
    "Items are bytes: a trailing \\r\\n or \\n ends a line and is not part\n"
    "of the item.  In --json, outputs are strings holding the bytes as they\n"
    "are (non-UTF-8 bytes pass through).  Ctrl-C stops waiting; the\n"
    "execution keeps running (`troupe abort ID` stops it).\n";

/* What SIGINT prints while map waits: made before the handler is set,
 * because a handler may only call write() and _exit(). */
static char   map_sigmsg[512];
static size_t map_sigmsg_len;

static void
map_on_sigint(int sig)
{
	ssize_t n = write(STDERR_FILENO, map_sigmsg, map_sigmsg_len);

	(void)n;
	_exit(128 + sig);
}

/* Prints a detach notice and exits on Ctrl-C while waiting for id. */
static void
map_catch_sigint(const char *id, int tty)
{
	struct sigaction sa;
	int              n;

	n = snprintf(map_sigmsg, sizeof(map_sigmsg),
	             "%stroupe: stopped waiting; execution %s keeps running "
	             "(`troupe abort %s` stops it)\n",
	             tty ? "\r\033[K" : "", id, id);
	map_sigmsg_len =
	    n < 0 ? 0
	          : ((size_t)n < sizeof(map_sigmsg) ? (size_t)n
	                                            : sizeof(map_sigmsg) - 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = map_on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

/* Redraws the progress line from each watched state. */
static void
map_on_change(const Troupe__Execution *ex, void *arg)
{
	cli_progress         *p = arg;
	const Troupe__Counts *k = ex->counts;

	if (k == NULL)
		return;
	cli_progress_update(p, k->succeeded + k->failed + k->aborted, ex->total,
	                    k->failed, cli_phase_name(ex->phase));
}

/* Reads the items named by o.  Returns 0, or prints why and returns an
 * exit code. */
static int
map_read_items(const cli_map_opts *o, cli_items *it)
{
	const char *path = o->items;
	FILE       *f = stdin;
	int         rv;

	if (path != NULL && strcmp(path, "-") != 0) {
		if ((f = fopen(path, "rb")) == NULL) {
			cli_err("cannot read the items from %s: %s", path,
			        strerror(errno));
			return CLI_EXIT_USAGE;
		}
	} else if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "troupe: reading items from the terminal, one "
		                "per line; end with Ctrl-D\n");
	}
	rv = cli_items_read(f, it);
	if (rv != 0)
		cli_err("cannot read the items from %s: %s",
		        f == stdin ? "stdin" : path,
		        rv == TROUPE_EIO ? strerror(errno)
		                         : troupe_strerror(rv));
	if (f != stdin)
		fclose(f);
	if (rv != 0)
		return CLI_EXIT_FAIL;
	if (it->n == 0)
		return cli_err("no items: map reads one item per line from "
		               "--items FILE or stdin"),
		       CLI_EXIT_USAGE;
	return 0;
}

int
cli_cmd_map(int argc, char **argv, int first)
{
	Troupe__ExecutionSpec        spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__ActorEnv             actor = TROUPE__ACTOR_ENV__INIT;
	Troupe__Resources            res = TROUPE__RESOURCES__INIT;
	Troupe__WatchExecutionReply *rep = NULL;
	cli_map_opts                 o;
	cli_items                    it;
	cli_progress                 prog;
	troupe_client               *c = NULL;
	char                        *id = NULL;
	char                         err[512];
	int                          code;

	memset(&it, 0, sizeof(it));
	if (cli_parse_map(argc, argv, first, &o, err, sizeof(err)) != 0) {
		code = cli_usage("map", err);
		goto fail;
	}
	if (o.help) {
		fputs(map_help, stdout);
		code = CLI_EXIT_OK;
		goto fail;
	}
	if ((code = map_read_items(&o, &it)) != 0)
		goto fail;
	if ((code = cli_connect(&o.g, &c)) != 0)
		goto fail;

	cli_map_spec(&o, &spec, &actor, &res);
	if ((code = cli_map_upload(c, &spec, &it, TROUPE_CHUNK_BYTES, &id)) !=
	    0)
		goto fail;
	/* The inputs are on the scheduler now. */
	cli_items_free(&it);
	if (o.detach) {
		printf("%s\n", id);
		code = CLI_EXIT_OK;
		goto fail;
	}

	cli_progress_init(&prog, stderr);
	map_catch_sigint(id, prog.f != NULL);
	code = cli_wait(c, id, prog.f != NULL ? 1000 : 10000,
	                prog.f != NULL ? map_on_change : NULL, &prog, &rep);
	cli_progress_clear(&prog);
	if (code != 0)
		goto fail;
	if ((code = cli_print_outputs(c, id, o.json, stdout)) != 0)
		goto fail;
	code = cli_report(rep->execution);
fail:
	if (rep != NULL)
		troupe__watch_execution_reply__free_unpacked(rep, NULL);
	free(id);
	troupe_client_close(c);
	cli_items_free(&it);
	cli_map_opts_free(&o);
	return code;
}
