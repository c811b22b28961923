/* troupe: the command line.  Picks the command; each lives in cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "troupe/sockclose.h"

static const char main_help[] =
    "usage: troupe [--addr URL] [--token-file F] [--project P] COMMAND [ARGS]\n"
    "\n"
    "Run a command over a list of items on a troupe cluster.\n"
    "\n"
    "  up            run a local cluster in the foreground\n"
    "  map           run a command over items (stdin or --items FILE)\n"
    "  status ID     an execution's phase, counts and timings\n"
    "  outputs ID    an execution's outputs, in input order\n"
    "  logs ID       the stderr of an execution's items, per attempt\n"
    "  watch ID      follow an execution until it ends\n"
    "  abort ID      stop an execution\n"
    "  list          recent executions\n"
    "  workers       the workers\n"
    "  actors        actor environments and their replicas\n"
    "  task          register, list, get or delete tasks\n"
    "  actor         create, list, get or delete actor environments\n"
    "  project       create, list or delete projects (admin)\n"
    "  token         create, list or revoke tokens (admin)\n"
    "  health        ask the scheduler whether it is up\n"
    "  version       print the version\n"
    "\n"
    "`troupe COMMAND --help` describes each.  The scheduler is found at\n"
    "--addr URL, else TROUPE_ADDR, else ipc://$TROUPE_HOME/api.sock (the\n"
    "local cluster of `troupe up`).  A token comes from --token-file F,\n"
    "else TROUPE_TOKEN or TROUPE_TOKEN_FILE.  Calls act in the project of\n"
    "--project P, else TROUPE_PROJECT, else the token's own (\"default\"\n"
    "for an admin token or the local cluster).  Global flags may also come\n"
    "after the command word.\n";

typedef int (*main_cmd_fn)(int argc, char **argv, int first);

static const struct {
	const char *name;
	main_cmd_fn fn;
} main_cmds[] = {
    {"up", cli_cmd_up},           {"map", cli_cmd_map},
    {"status", cli_cmd_status},   {"outputs", cli_cmd_outputs},
    {"watch", cli_cmd_watch},     {"abort", cli_cmd_abort},
    {"list", cli_cmd_list},       {"workers", cli_cmd_workers},
    {"actors", cli_cmd_actors},   {"task", cli_cmd_task},
    {"actor", cli_cmd_actor},     {"health", cli_cmd_health},
    {"project", cli_cmd_project}, {"token", cli_cmd_token},
    {"logs", cli_cmd_logs},
};

int
main(int argc, char **argv)
{
	static const cli_flag none[] = {{"version", 0, 1}, {NULL, 0, 0}};
	cli_argp              p;
	char                  err[256];
	int                   id;

	/* Global flags may come before the command word. */
	cli_argp_init(&p, argc, argv, 1, &cli_pre_global, err, sizeof(err));
	for (;;) {
		id = cli_argp_next(&p, none);
		if (id == CLI_EUSAGE) {
			fprintf(stderr, "troupe: %s (see `troupe --help`)\n",
			        err);
			return CLI_EXIT_USAGE;
		}
		if (id == CLI_ARG_HELP) {
			fputs(main_help, stdout);
			return CLI_EXIT_OK;
		}
		if (id == 1) {
			printf("troupe %s\n", TROUPE_VERSION);
			return CLI_EXIT_OK;
		}
		break;
	}
	if (id == CLI_ARG_END) {
		fputs(main_help, stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(p.val, "version") == 0) {
		printf("troupe %s\n", TROUPE_VERSION);
		return CLI_EXIT_OK;
	}
	if (strcmp(p.val, "help") == 0) {
		fputs(main_help, stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		if (strcmp(p.val, main_cmds[i].name) == 0)
			troupe_exit(main_cmds[i].fn(argc, argv, p.i));
	fprintf(stderr, "troupe: unknown command '%s' (see `troupe --help`)\n",
	        p.val);
	return CLI_EXIT_USAGE;
}
