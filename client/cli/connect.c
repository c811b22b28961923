/* Reaching the scheduler, and the CLI's one-line errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "troupe/home.h"

cli_global cli_pre_global;

int
cli_err(const char *fmt, ...)
{
	char    line[2048];
	va_list ap;
	int     n;

	/* One write, so the line does not interleave with the daemons that
	 * `troupe up` shares stderr with. */
	memcpy(line, "troupe: ", 8);
	va_start(ap, fmt);
	n = vsnprintf(line + 8, sizeof(line) - 9, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	n = 8 + (n < (int)sizeof(line) - 9 ? n : (int)sizeof(line) - 10);
	line[n++] = '\n';
	fflush(stdout);
	fwrite(line, 1, (size_t)n, stderr);
	return CLI_EXIT_FAIL;
}

int
cli_usage(const char *cmd, const char *err)
{
	fprintf(stderr, "troupe: %s (see `troupe %s --help`)\n", err, cmd);
	return CLI_EXIT_USAGE;
}

/* Says why a dial failed in words that fit "cannot reach ... : %s". */
static const char *
connect_reason(int rv)
{
	switch (rv) {
	case TROUPE_ENOTFOUND: return "no such socket";
	case TROUPE_EUNAVAIL: return "connection refused";
	case TROUPE_EINVAL: return "invalid address";
	case TROUPE_EPERM: return "permission denied";
	}
	return troupe_strerror(rv);
}

const char *
cli_project(const cli_global *g)
{
	const char *p = g->project;

	if (p == NULL)
		p = cli_pre_global.project;
	if (p == NULL)
		p = getenv("TROUPE_PROJECT");
	return p != NULL && p[0] != '\0' ? p : NULL;
}

int
cli_connect(const cli_global *g, troupe_client **out)
{
	const char *addr = g->addr != NULL ? g->addr : cli_pre_global.addr;
	const char *tfile =
	    g->token_file != NULL ? g->token_file : cli_pre_global.token_file;
	char  def[4096], why[1024];
	char *token = NULL;
	int   rv, code = CLI_EXIT_FAIL;

	*out = NULL;
	if (addr == NULL) {
		if (troupe_default_api_addr(def, sizeof(def)) != 0) {
			cli_err(
			    "cannot find the local cluster: set TROUPE_HOME "
			    "(or HOME), or give --addr URL");
			goto fail;
		}
		addr = def;
	}
	/* Load the token here, not in troupe_client_open, so that a bad
	 * token file is not reported as an unreachable scheduler. */
	if ((rv = troupe_token_read(tfile, &token, why, sizeof(why))) != 0) {
		cli_err("%s", why);
		goto fail;
	}
	if ((rv = troupe_client_open(addr, token, out)) != 0) {
		cli_err("cannot reach the scheduler at %s: %s (is `troupe up` "
		        "running?)",
		        addr, connect_reason(rv));
		goto fail;
	}
	if (troupe_client_set_project(*out, cli_project(g)) != 0) {
		cli_err("out of memory");
		troupe_client_close(*out);
		*out = NULL;
		goto fail;
	}
	code = CLI_EXIT_OK;
fail:
	free(token);
	return code;
}

/* Whether s holds word, ignoring case. */
static int
connect_says(const char *s, const char *word)
{
	size_t n = strlen(word);

	for (; *s != '\0'; s++)
		if (strncasecmp(s, word, n) == 0)
			return 1;
	return 0;
}

int
cli_call_err(troupe_client *c)
{
	const char *msg = troupe_client_error(c);
	const char *what = NULL;

	/* A refusal says what it is even when the scheduler's message does
	 * not: scripts and people look for "permission denied". */
	switch (troupe_client_last_err(c)) {
	case TROUPE_EPERM: what = "permission denied"; break;
	case TROUPE_EAUTH: what = "unauthenticated"; break;
	}
	if (what != NULL && !connect_says(msg, what))
		return cli_err("%s: %s", what, msg);
	return cli_err("%s", msg);
}
