/*
 * `troupe logs ID [--item N] [--attempt K]` (README, "Per-item logs"):
 * the stderr the execution's attempts wrote, as the scheduler keeps it,
 * through libtroupe's troupe_logs_each (GetLogs, paged).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "troupe/logs.h"

static const char logs_help[] =
    "usage: troupe logs ID [--item N] [--attempt K]\n"
    "\n"
    "Prints the stderr of an execution's items, as kept with each attempt\n"
    "(at most 64 KiB per attempt: its first and last 32 KiB around a\n"
    "\"[... N bytes dropped ...]\" line).  Without --item: every attempt\n"
    "that wrote anything, each after a line \"== item N, attempt K ==\".\n"
    "With --item N: that item's last attempt, or attempt K with\n"
    "--attempt K (attempts count from 1), as it was written.  An actor's\n"
    "item holds what its replica wrote while serving it, after what the\n"
    "replica wrote idle before it (booting, between items).\n";

/* What the printer needs. */
typedef struct logs_print {
	FILE    *f;
	int      headers;
	int      only; /* print only attempt `attempt` */
	uint32_t attempt;
} logs_print;

static int
logs_print_one(void *arg, const Troupe__ItemLog *l)
{
	logs_print *p = arg;

	if (p->only && l->attempt != p->attempt)
		return 0;
	if (p->headers)
		fprintf(p->f, "== item %" PRIu64 ", attempt %" PRIu32 " ==\n",
		        l->index, l->attempt);
	if (l->data.len > 0) {
		fwrite(l->data.data, 1, l->data.len, p->f);
		/* Headers need a line of their own. */
		if (p->headers && l->data.data[l->data.len - 1] != '\n')
			fputc('\n', p->f);
	}
	return 0;
}

int
cli_cmd_logs(int argc, char **argv, int first)
{
	cli_logs_opts     o;
	troupe_client    *c = NULL;
	troupe_logs_query q = {0};
	logs_print        p = {stdout, 1, 0, 0};
	char              err[256];
	int               code = CLI_EXIT_OK;

	if (cli_parse_logs(argc, argv, first, &o, err, sizeof(err)) != 0)
		return cli_usage("logs", err);
	if (o.help) {
		fputs(logs_help, stdout);
		return CLI_EXIT_OK;
	}
	if (o.has_item && o.item > INT64_MAX)
		return cli_err("execution %s has no item %" PRIu64, o.id,
		               o.item);
	if (cli_connect(&o.g, &c) != 0)
		return CLI_EXIT_FAIL;
	q.id = o.id;
	q.item = o.has_item ? (int64_t)o.item : -1;
	q.attempt = o.attempt;
	if (o.has_item) {
		/* As it was written, without a header.  Its last attempt: the
		 * reply says which it is (troupe_logs_each sets p.attempt
		 * before the logs of each page are printed). */
		p.headers = 0;
		p.only = o.attempt == 0;
	}
	if (troupe_logs_each(c, &q, logs_print_one, &p,
	                     p.only ? &p.attempt : NULL, NULL) != 0) {
		code = cli_call_err(c);
		goto done;
	}
	if (o.has_item && o.attempt == 0 && p.attempt == 0)
		code = cli_err("item %" PRIu64 " of %s has not run yet", o.item,
		               o.id);
done:
	if (fflush(stdout) != 0 && code == CLI_EXIT_OK)
		code = cli_err("cannot write the logs");
	troupe_client_close(c);
	return code;
}
