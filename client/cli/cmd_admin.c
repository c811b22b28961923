/*
 * The administration commands: `troupe project create|list|delete` and
 * `troupe token create|list|revoke` (README, "Projects and roles").  Each
 * command word has a table of subcommands, each a parse and a run step;
 * adm_main picks the row, prints help or a usage error, connects and runs
 * it.  Blocking, one call per command (like every CLI command); the only
 * secret handled is CreateToken's reply, printed once on stdout and never
 * anywhere else.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json_out.h"

static const char adm_project_help[] =
    "usage: troupe project create NAME [--max-running N] [--max-replicas N]\n"
    "                             [--replace] [--json]\n"
    "       troupe project list [--json]\n"
    "       troupe project delete NAME\n"
    "\n"
    "A project owns executions, tasks and actor environments; a token of one\n"
    "project sees only its own.  --max-running caps the items the project\n"
    "runs at once, --max-replicas the actor replicas it keeps alive (0, the\n"
    "default: no cap).  --replace changes an existing project's quotas.\n"
    "These need an admin token (or the local cluster).\n";

static const char adm_token_help[] =
    "usage: troupe token create --role read|submit|admin|worker [--project P]\n"
    "                           [--expires DURATION] [--json]\n"
    "       troupe token list [--json]\n"
    "       troupe token revoke ID\n"
    "\n"
    "create prints the new token's secret once, alone on stdout, so that\n"
    "`troupe token create ... > FILE` writes a token file (make it 0600);\n"
    "its id and settings go to stderr.  The scheduler keeps only a hash:\n"
    "the secret cannot be shown again.  Roles:\n"
    "  read    list and look at the project's executions, tasks, actors\n"
    "  submit  read, and run maps, register tasks and actor environments\n"
    "  admin   everything, projects and tokens included (no --project: in\n"
    "          every project)\n"
    "  worker  join the cluster as a worker (troupe-worker --token-file);\n"
    "          no API calls\n"
    "--project P names the token's project.  --expires takes seconds or\n"
    "30s, 10m, 12h, 7d; without it the token lasts until revoked.  list\n"
    "shows ids, projects, roles and dates, never a secret.\n";

/* What a subcommand parses its argv into: one of these, by command word. */
typedef union adm_opts {
	cli_project_opts project;
	cli_token_opts   token;
	cli_plain_opts   plain;
} adm_opts;

/* One subcommand: its word, its parser (filling the union's member for
 * the command word), and its run step. */
typedef struct adm_sub {
	const char *word;
	int (*parse)(int argc, char **argv, int first, adm_opts *o, char *err,
	             size_t errlen);
	int (*run)(troupe_client *c, const adm_opts *o);
} adm_sub;

/* A command word and its subcommands (ending with a NULL word). */
typedef struct adm_kind {
	const char    *word;
	const char    *help;
	const adm_sub *subs;
} adm_kind;

/* The role's name in lower case ("submit"), static. */
static const char *
adm_role_name(int role)
{
	switch (role) {
	case TROUPE__ROLE__ROLE_READ: return "read";
	case TROUPE__ROLE__ROLE_SUBMIT: return "submit";
	case TROUPE__ROLE__ROLE_ADMIN: return "admin";
	case TROUPE__ROLE__ROLE_WORKER: return "worker";
	}
	return "none";
}

/* A quota for people: "-" for none. */
static void
adm_quota(char *buf, size_t len, uint32_t n)
{
	if (n == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%u", n);
}

/* --- troupe project --- */

static int
adm_parse_project_create(int argc, char **argv, int first, adm_opts *o,
                         char *err, size_t errlen)
{
	return cli_parse_project_create(argc, argv, first, &o->project, err,
	                                errlen);
}

static int
adm_parse_project_delete(int argc, char **argv, int first, adm_opts *o,
                         char *err, size_t errlen)
{
	return cli_parse_project_delete(argc, argv, first, &o->project, err,
	                                errlen);
}

static int
adm_parse_plain(int argc, char **argv, int first, adm_opts *o, char *err,
                size_t errlen)
{
	return cli_parse_plain(argc, argv, first, &o->plain, err, errlen);
}

static int
adm_project_create(troupe_client *c, const adm_opts *ao)
{
	const cli_project_opts      *o = &ao->project;
	Troupe__CreateProjectRequest req = TROUPE__CREATE_PROJECT_REQUEST__INIT;
	Troupe__CreateProjectReply  *rep = NULL;
	Troupe__Project              p = TROUPE__PROJECT__INIT;

	p.name = (char *)o->name;
	p.max_running = o->max_running;
	p.max_replicas = o->max_replicas;
	req.project = &p;
	req.replace = o->replace;
	if (TROUPE_CALL(c, CreateProject, &req, create_project, &rep) != 0)
		return cli_call_err(c);
	if (o->json && rep->project != NULL)
		cli_json_println(stdout, cli_json_message(&rep->project->base));
	else
		printf("project %s %s\n", o->name,
		       o->replace ? "saved" : "created");
	troupe__create_project_reply__free_unpacked(rep, NULL);
	return CLI_EXIT_OK;
}

static int
adm_project_list(troupe_client *c, const adm_opts *ao)
{
	static const char *const    head[] = {"NAME", "MAX RUNNING",
	                                      "MAX REPLICAS", "CREATED"};
	Troupe__ListProjectsRequest req = TROUPE__LIST_PROJECTS_REQUEST__INIT;
	Troupe__ListProjectsReply  *rep = NULL;
	cli_table                   tab;
	int                         code;

	if (TROUPE_CALL(c, ListProjects, &req, list_projects, &rep) != 0)
		return cli_call_err(c);
	cli_table_init(&tab, 4, head);
	for (size_t i = 0; i < rep->n_projects; i++) {
		const Troupe__Project *p = rep->projects[i];
		char                   run[16], reps[16], created[32];
		const char            *cells[4];

		if (ao->plain.json) {
			cli_json_println(stdout, cli_json_message(&p->base));
			continue;
		}
		adm_quota(run, sizeof(run), p->max_running);
		adm_quota(reps, sizeof(reps), p->max_replicas);
		cli_fmt_time(created, sizeof(created), p->created_ms);
		cells[0] = p->name;
		cells[1] = run;
		cells[2] = reps;
		cells[3] = created;
		cli_table_row(&tab, cells);
	}
	code = ao->plain.json ? CLI_EXIT_OK : cli_table_print(&tab, stdout);
	cli_table_free(&tab);
	troupe__list_projects_reply__free_unpacked(rep, NULL);
	return code;
}

static int
adm_project_delete(troupe_client *c, const adm_opts *ao)
{
	Troupe__DeleteProjectRequest req = TROUPE__DELETE_PROJECT_REQUEST__INIT;
	Troupe__DeleteProjectReply  *rep = NULL;

	req.name = (char *)ao->project.name;
	if (TROUPE_CALL(c, DeleteProject, &req, delete_project, &rep) != 0)
		return cli_call_err(c);
	printf("project %s deleted\n", ao->project.name);
	troupe__delete_project_reply__free_unpacked(rep, NULL);
	return CLI_EXIT_OK;
}

static const adm_sub adm_project_subs[] = {
    {"create", adm_parse_project_create, adm_project_create},
    {"list", adm_parse_plain, adm_project_list},
    {"delete", adm_parse_project_delete, adm_project_delete},
    {NULL, NULL, NULL},
};

/* --- troupe token --- */

static int
adm_parse_token_create(int argc, char **argv, int first, adm_opts *o, char *err,
                       size_t errlen)
{
	return cli_parse_token_create(argc, argv, first, &o->token, err,
	                              errlen);
}

static int
adm_parse_token_revoke(int argc, char **argv, int first, adm_opts *o, char *err,
                       size_t errlen)
{
	return cli_parse_token_revoke(argc, argv, first, &o->token, err,
	                              errlen);
}

/* Whether s can go alone on a line of a token file: non-empty, printable
 * ASCII, no spaces (troupe_token_load trims whitespace). */
static int
adm_secret_ok(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isgraph((unsigned char)*s))
			return 0;
	return 1;
}

static int
adm_token_create(troupe_client *c, const adm_opts *ao)
{
	const cli_token_opts      *o = &ao->token;
	Troupe__CreateTokenRequest req = TROUPE__CREATE_TOKEN_REQUEST__INIT;
	Troupe__CreateTokenReply  *rep = NULL;
	const Troupe__TokenInfo   *t;
	const char                *project = cli_project(&o->g);
	char                       exp[32];
	int                        code = CLI_EXIT_OK;

	req.project = project != NULL ? (char *)project : "";
	req.role = (Troupe__Role)o->role;
	req.expires_s = o->expires_s;
	if (TROUPE_CALL(c, CreateToken, &req, create_token, &rep) != 0)
		return cli_call_err(c);
	t = rep->token;
	if (t == NULL || !adm_secret_ok(rep->secret)) {
		code =
		    cli_err("malformed CreateToken reply (no usable secret)");
		goto done;
	}
	if (o->json) {
		cli_json_println(stdout, cli_json_message(&rep->base));
		goto done;
	}
	/* The secret alone on stdout: `> FILE` makes a token file.  The rest
	 * goes to stderr for the person running it. */
	printf("%s\n", rep->secret);
	fflush(stdout);
	cli_fmt_time(exp, sizeof(exp), t->expires_ms);
	fprintf(stderr,
	        "troupe: token %s created: role %s, project %s, expires %s; "
	        "its secret (on stdout) is not shown again\n",
	        t->id, adm_role_name(t->role),
	        t->project[0] != '\0' ? t->project : "(all)",
	        t->expires_ms > 0 ? exp : "never");
done:
	troupe__create_token_reply__free_unpacked(rep, NULL);
	return code;
}

static int
adm_token_list(troupe_client *c, const adm_opts *ao)
{
	static const char *const  head[] = {"ID",      "PROJECT", "ROLE",
	                                    "CREATED", "EXPIRES", "REVOKED"};
	Troupe__ListTokensRequest req = TROUPE__LIST_TOKENS_REQUEST__INIT;
	Troupe__ListTokensReply  *rep = NULL;
	cli_table                 tab;
	int                       code;

	if (TROUPE_CALL(c, ListTokens, &req, list_tokens, &rep) != 0)
		return cli_call_err(c);
	cli_table_init(&tab, 6, head);
	for (size_t i = 0; i < rep->n_tokens; i++) {
		const Troupe__TokenInfo *t = rep->tokens[i];
		char                     created[32], exp[32];
		const char              *cells[6];

		/* TokenInfo has no secret field: nothing here can show
		 * one. */
		if (ao->plain.json) {
			cli_json_println(stdout, cli_json_message(&t->base));
			continue;
		}
		cli_fmt_time(created, sizeof(created), t->created_ms);
		if (t->expires_ms > 0)
			cli_fmt_time(exp, sizeof(exp), t->expires_ms);
		else
			snprintf(exp, sizeof(exp), "never");
		cells[0] = t->id;
		cells[1] = t->project[0] != '\0' ? t->project : "(all)";
		cells[2] = adm_role_name(t->role);
		cells[3] = created;
		cells[4] = exp;
		cells[5] = t->revoked ? "yes" : "no";
		cli_table_row(&tab, cells);
	}
	code = ao->plain.json ? CLI_EXIT_OK : cli_table_print(&tab, stdout);
	cli_table_free(&tab);
	troupe__list_tokens_reply__free_unpacked(rep, NULL);
	return code;
}

static int
adm_token_revoke(troupe_client *c, const adm_opts *ao)
{
	Troupe__RevokeTokenRequest req = TROUPE__REVOKE_TOKEN_REQUEST__INIT;
	Troupe__RevokeTokenReply  *rep = NULL;

	req.id = (char *)ao->token.id;
	if (TROUPE_CALL(c, RevokeToken, &req, revoke_token, &rep) != 0)
		return cli_call_err(c);
	printf("token %s revoked\n", ao->token.id);
	troupe__revoke_token_reply__free_unpacked(rep, NULL);
	return CLI_EXIT_OK;
}

static const adm_sub adm_token_subs[] = {
    {"create", adm_parse_token_create, adm_token_create},
    {"list", adm_parse_plain, adm_token_list},
    {"revoke", adm_parse_token_revoke, adm_token_revoke},
    {NULL, NULL, NULL},
};

static const adm_kind adm_project = {"project", adm_project_help,
                                     adm_project_subs};
static const adm_kind adm_token = {"token", adm_token_help, adm_token_subs};

/* The parsed options' shared parts: every member of adm_opts starts with
 * cli_global g, int help, int json (a common initial sequence, C11
 * 6.5.2.3). */
_Static_assert(
    offsetof(cli_project_opts, help) == offsetof(cli_plain_opts, help) &&
        offsetof(cli_token_opts, help) == offsetof(cli_plain_opts, help) &&
        offsetof(cli_project_opts, json) == offsetof(cli_plain_opts, json) &&
        offsetof(cli_token_opts, json) == offsetof(cli_plain_opts, json),
    "adm_opts members share g, help, json");

static const cli_global *
adm_global(const adm_opts *o)
{
	return &o->plain.g;
}

static int
adm_help(const adm_opts *o)
{
	return o->plain.help;
}

/* Runs the subcommand argv[first] of k. */
static int
adm_main(const adm_kind *k, int argc, char **argv, int first)
{
	const char    *sub = first < argc ? argv[first] : NULL;
	const adm_sub *s;
	adm_opts       o;
	troupe_client *c = NULL;
	char           err[256];
	int            code;

	if (sub == NULL || strcmp(sub, "--help") == 0 ||
	    strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		fputs(k->help, sub == NULL ? stderr : stdout);
		return sub == NULL ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	for (s = k->subs; s->word != NULL; s++)
		if (strcmp(sub, s->word) == 0)
			break;
	if (s->word == NULL) {
		snprintf(err, sizeof(err), "unknown command '%s %s'", k->word,
		         sub);
		return cli_usage(k->word, err);
	}
	memset(&o, 0, sizeof(o));
	if (s->parse(argc, argv, first + 1, &o, err, sizeof(err)) != 0)
		return cli_usage(k->word, err);
	if (adm_help(&o)) {
		fputs(k->help, stdout);
		return CLI_EXIT_OK;
	}
	if ((code = cli_connect(adm_global(&o), &c)) != 0)
		return code;
	code = s->run(c, &o);
	troupe_client_close(c);
	return code;
}

int
cli_cmd_project(int argc, char **argv, int first)
{
	return adm_main(&adm_project, argc, argv, first);
}

int
cli_cmd_token(int argc, char **argv, int first)
{
	return adm_main(&adm_token, argc, argv, first);
}
