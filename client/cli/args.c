/* Flag parsing for the troupe CLI (see args.h).  Pure: no I/O. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.pb-c.h"
#include "args.h"
#include "troupe/error.h"

static const cli_flag args_global_flags[] = {
    {"addr", 1, 1},
    {"token-file", 1, 2},
    {"project", 1, 3},
    {NULL, 0, 0},
};

int
cli_usage_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return CLI_EUSAGE;
}

void
cli_argp_init(cli_argp *p, int argc, char **argv, int first, cli_global *g,
              char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->argc = argc;
	p->argv = argv;
	p->i = first;
	p->g = g;
	p->err = err;
	p->errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
}

/* Returns the entry of flags named by name[0..len), or NULL. */
static const cli_flag *
args_find(const cli_flag *flags, const char *name, size_t len)
{
	for (; flags->name != NULL; flags++)
		if (strlen(flags->name) == len &&
		    strncmp(flags->name, name, len) == 0)
			return flags;
	return NULL;
}

int
cli_argp_next(cli_argp *p, const cli_flag *flags)
{
	for (;;) {
		const cli_flag *f;
		const char     *a, *name, *eq;
		size_t          len;
		int             global;

		if (p->i >= p->argc)
			return CLI_ARG_END;
		a = p->argv[p->i++];
		p->val = NULL;
		p->flag = NULL;
		if (p->only_args || a[0] != '-' || strcmp(a, "-") == 0) {
			p->val = a;
			return CLI_ARG_POS;
		}
		if (strcmp(a, "--") == 0) {
			p->only_args = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return CLI_ARG_HELP;
		if (a[1] != '-')
			return cli_usage_err(p->err, p->errlen,
			                     "unknown flag %s (flags are long: "
			                     "--name)",
			                     a);
		name = a + 2;
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		global = 0;
		if ((f = args_find(args_global_flags, name, len)) != NULL)
			global = 1;
		else if ((f = args_find(flags, name, len)) == NULL)
			return cli_usage_err(p->err, p->errlen,
			                     "unknown flag --%.*s", (int)len,
			                     name);
		p->flag = f->name;
		if (f->has_arg) {
			if (eq != NULL)
				p->val = eq + 1;
			else if (p->i < p->argc)
				p->val = p->argv[p->i++];
			else
				return cli_usage_err(p->err, p->errlen,
				                     "--%s needs a value",
				                     f->name);
		} else if (eq != NULL) {
			return cli_usage_err(p->err, p->errlen,
			                     "--%s takes no value", f->name);
		}
		if (!global)
			return f->id;
		if (f->id == 1)
			p->g->addr = p->val;
		else if (f->id == 2)
			p->g->token_file = p->val;
		else
			p->g->project = p->val;
	}
}

int
cli_strv_push(cli_strv *sv, const char *s)
{
	char **v = realloc(sv->v, (sv->n + 1) * sizeof(*v));

	if (v == NULL)
		return TROUPE_ENOMEM;
	sv->v = v;
	sv->v[sv->n++] = (char *)s;
	return 0;
}

void
cli_strv_free(cli_strv *sv)
{
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

/* Reports a positional argument a command does not take. */
static int
args_unexpected(cli_argp *p)
{
	return cli_usage_err(p->err, p->errlen, "unexpected argument '%s'",
	                     p->val);
}

/* Appends an --env value after checking it. */
static int
args_env(cli_argp *p, cli_strv *env)
{
	if (cli_check_env(p->flag, p->val, p->err, p->errlen) != 0)
		return CLI_EUSAGE;
	if (cli_strv_push(env, p->val) != 0)
		return cli_usage_err(p->err, p->errlen, "out of memory");
	return 0;
}

enum {
	MAP_CMD = 1,
	MAP_TASK,
	MAP_ITEMS,
	MAP_CONC,
	MAP_RETRIES,
	MAP_TIMEOUT,
	MAP_RATIO,
	MAP_REPLICAS,
	MAP_TTL,
	MAP_ACTOR,
	MAP_PROTOCOL,
	MAP_ENV,
	MAP_NAME,
	MAP_DETACH,
	MAP_JSON,
	MAP_CPU,
	MAP_MEM,
	MAP_EXEC_TIMEOUT,
};

static const cli_flag args_map_flags[] = {
    {"cmd", 1, MAP_CMD},
    {"task", 1, MAP_TASK},
    {"items", 1, MAP_ITEMS},
    {"concurrency", 1, MAP_CONC},
    {"retries", 1, MAP_RETRIES},
    {"timeout", 1, MAP_TIMEOUT},
    {"min-success-ratio", 1, MAP_RATIO},
    {"replicas", 1, MAP_REPLICAS},
    {"ttl", 1, MAP_TTL},
    {"actor", 1, MAP_ACTOR},
    {"protocol", 1, MAP_PROTOCOL},
    {"env", 1, MAP_ENV},
    {"name", 1, MAP_NAME},
    {"detach", 0, MAP_DETACH},
    {"json", 0, MAP_JSON},
    {"cpu", 1, MAP_CPU},
    {"mem", 1, MAP_MEM},
    {"execution-timeout", 1, MAP_EXEC_TIMEOUT},
    {NULL, 0, 0},
};

int
cli_parse_map(int argc, char **argv, int first, cli_map_opts *o, char *err,
              size_t errlen)
{
	cli_argp p;
	uint32_t ms = 0;
	int      id, rv = 0;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_map_flags)) != CLI_ARG_END) {
		const char *f = p.flag, *v = p.val;

		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS: return args_unexpected(&p);
		case MAP_CMD: o->cmd = v; break;
		case MAP_TASK: o->task = v; break;
		case MAP_ITEMS: o->items = v; break;
		case MAP_NAME: o->name = v; break;
		case MAP_ACTOR: o->actor = v; break;
		case MAP_DETACH: o->detach = 1; break;
		case MAP_JSON: o->json = 1; break;
		case MAP_CONC:
			rv = cli_parse_u32(f, v, &o->concurrency, err, errlen);
			break;
		case MAP_RETRIES:
			o->has_retries = 1;
			rv = cli_parse_u32(f, v, &o->retries, err, errlen);
			break;
		case MAP_TIMEOUT:
			o->has_timeout = 1;
			rv = cli_parse_secs_ms(f, v, &o->timeout_ms, err,
			                       errlen);
			break;
		case MAP_RATIO:
			o->has_ratio = 1;
			rv = cli_parse_ratio(f, v, &o->ratio, err, errlen);
			break;
		case MAP_REPLICAS:
			o->has_replicas = 1;
			rv = cli_parse_u32(f, v, &o->replicas, err, errlen);
			break;
		case MAP_TTL:
			o->has_ttl = 1;
			rv = cli_parse_u32(f, v, &o->ttl_s, err, errlen);
			break;
		case MAP_PROTOCOL:
			o->has_protocol = 1;
			rv =
			    cli_parse_protocol(f, v, &o->protocol, err, errlen);
			break;
		case MAP_ENV: rv = args_env(&p, &o->env); break;
		case MAP_CPU:
			rv = cli_parse_cpu(f, v, &o->cpu_milli, err, errlen);
			break;
		case MAP_MEM:
			rv = cli_parse_bytes(f, v, &o->mem_bytes, err, errlen);
			break;
		case MAP_EXEC_TIMEOUT:
			rv = cli_parse_secs_ms(f, v, &ms, err, errlen);
			o->exec_timeout_s = (ms + 999) / 1000;
			break;
		}
		if (rv != 0)
			return CLI_EUSAGE;
	}
	if (o->cmd != NULL && o->task != NULL)
		return cli_usage_err(err, errlen,
		                     "--cmd and --task exclude each other");
	if (o->cmd == NULL && o->task == NULL && o->actor == NULL)
		return cli_usage_err(err, errlen,
		                     "map needs --cmd 'CMD', --task NAME or "
		                     "--actor ENV");
	if (o->cmd != NULL && o->cmd[0] == '\0')
		return cli_usage_err(err, errlen, "--cmd is empty");
	if (o->task != NULL && o->task[0] == '\0')
		return cli_usage_err(err, errlen, "--task is empty");
	if (o->has_replicas && o->actor != NULL)
		return cli_usage_err(err, errlen,
		                     "--replicas and --actor exclude each "
		                     "other: --actor names a registered "
		                     "environment");
	if (o->has_replicas && o->cmd == NULL)
		return cli_usage_err(err, errlen,
		                     "--replicas needs --cmd (a registered "
		                     "task uses --actor ENV)");
	if (o->has_replicas && o->replicas == 0)
		return cli_usage_err(err, errlen,
		                     "--replicas must be at least 1");
	if (o->has_ttl && !o->has_replicas)
		return cli_usage_err(err, errlen, "--ttl needs --replicas N");
	if (o->has_protocol && !o->has_replicas)
		return cli_usage_err(err, errlen,
		                     "--protocol needs --replicas N (a "
		                     "registered actor has its own protocol)");
	if (o->actor != NULL && o->actor[0] == '\0')
		return cli_usage_err(err, errlen, "--actor is empty");
	return 0;
}

void
cli_map_opts_free(cli_map_opts *o)
{
	cli_strv_free(&o->env);
}

static const cli_flag args_id_flags[] = {
    {"json", 0, 1},
    {"reason", 1, 2},
    {NULL, 0, 0},
};

int
cli_parse_id(int argc, char **argv, int first, int allow_json, int allow_reason,
             cli_id_opts *o, char *err, size_t errlen)
{
	cli_argp p;
	int      id;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_id_flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS:
			if (o->id != NULL)
				return args_unexpected(&p);
			o->id = p.val;
			break;
		case 1:
			if (!allow_json)
				return cli_usage_err(err, errlen,
				                     "unknown flag --json");
			o->json = 1;
			break;
		case 2:
			if (!allow_reason)
				return cli_usage_err(err, errlen,
				                     "unknown flag --reason");
			o->reason = p.val;
			break;
		}
	}
	if (o->id == NULL || o->id[0] == '\0')
		return cli_usage_err(err, errlen, "missing the execution ID");
	return 0;
}

static const cli_flag args_logs_flags[] = {
    {"item", 1, 1},
    {"attempt", 1, 2},
    {NULL, 0, 0},
};

int
cli_parse_logs(int argc, char **argv, int first, cli_logs_opts *o, char *err,
               size_t errlen)
{
	cli_argp p;
	int      id, rv = 0, has_attempt = 0;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_logs_flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS:
			if (o->id != NULL)
				return args_unexpected(&p);
			o->id = p.val;
			break;
		case 1:
			o->has_item = 1;
			rv =
			    cli_parse_u64("item", p.val, &o->item, err, errlen);
			break;
		case 2:
			has_attempt = 1;
			rv = cli_parse_u32("attempt", p.val, &o->attempt, err,
			                   errlen);
			if (rv == 0 && o->attempt == 0)
				rv = cli_usage_err(err, errlen,
				                   "--attempt: attempts count "
				                   "from 1");
			break;
		}
		if (rv != 0)
			return rv;
	}
	if (o->id == NULL || o->id[0] == '\0')
		return cli_usage_err(err, errlen, "missing the execution ID");
	if (has_attempt && !o->has_item)
		return cli_usage_err(err, errlen, "--attempt needs --item");
	return 0;
}

static const cli_flag args_list_flags[] = {
    {"json", 0, 1},
    {"phase", 1, 2},
    {"limit", 1, 3},
    {NULL, 0, 0},
};

int
cli_parse_list(int argc, char **argv, int first, cli_list_opts *o, char *err,
               size_t errlen)
{
	cli_argp p;
	int      id, rv = 0;

	memset(o, 0, sizeof(*o));
	o->limit = 20;
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_list_flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS: return args_unexpected(&p);
		case 1: o->json = 1; break;
		case 2:
			rv = cli_parse_phase(p.flag, p.val, &o->phase, err,
			                     errlen);
			break;
		case 3:
			rv = cli_parse_u32(p.flag, p.val, &o->limit, err,
			                   errlen);
			break;
		}
		if (rv != 0)
			return CLI_EUSAGE;
	}
	return 0;
}

static const cli_flag args_plain_flags[] = {
    {"json", 0, 1},
    {NULL, 0, 0},
};

int
cli_parse_plain(int argc, char **argv, int first, cli_plain_opts *o, char *err,
                size_t errlen)
{
	cli_argp p;
	int      id;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_plain_flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS: return args_unexpected(&p);
		case 1: o->json = 1; break;
		}
	}
	return 0;
}

enum {
	DEF_CMD = 1,
	DEF_ACTOR,
	DEF_RETRIES,
	DEF_TIMEOUT,
	DEF_ENV,
	DEF_CPU,
	DEF_MEM,
	DEF_REPLACE,
	DEF_JSON,
	DEF_REPLICAS,
	DEF_TTL,
	DEF_PROTOCOL,
	DEF_MAX_ITEMS,
};

static const cli_flag args_task_flags[] = {
    {"cmd", 1, DEF_CMD},         {"actor", 1, DEF_ACTOR},
    {"retries", 1, DEF_RETRIES}, {"timeout", 1, DEF_TIMEOUT},
    {"env", 1, DEF_ENV},         {"cpu", 1, DEF_CPU},
    {"mem", 1, DEF_MEM},         {"replace", 0, DEF_REPLACE},
    {"json", 0, DEF_JSON},       {NULL, 0, 0},
};

static const cli_flag args_actor_flags[] = {
    {"cmd", 1, DEF_CMD},
    {"replicas", 1, DEF_REPLICAS},
    {"ttl", 1, DEF_TTL},
    {"protocol", 1, DEF_PROTOCOL},
    {"max-items", 1, DEF_MAX_ITEMS},
    {"env", 1, DEF_ENV},
    {"cpu", 1, DEF_CPU},
    {"mem", 1, DEF_MEM},
    {"replace", 0, DEF_REPLACE},
    {"json", 0, DEF_JSON},
    {NULL, 0, 0},
};

static const cli_flag args_name_flags[] = {
    {"json", 0, DEF_JSON},
    {NULL, 0, 0},
};

/* The shared walk of the definition commands: NAME plus flags. */
static int
args_def(int argc, char **argv, int first, const cli_flag *flags,
         cli_def_opts *o, char *err, size_t errlen)
{
	cli_argp p;
	int      id, rv = 0;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, flags)) != CLI_ARG_END) {
		const char *f = p.flag, *v = p.val;

		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS:
			if (o->name != NULL)
				return args_unexpected(&p);
			o->name = v;
			break;
		case DEF_CMD: o->cmd = v; break;
		case DEF_ACTOR: o->actor = v; break;
		case DEF_REPLACE: o->replace = 1; break;
		case DEF_JSON: o->json = 1; break;
		case DEF_RETRIES:
			o->has_retries = 1;
			rv = cli_parse_u32(f, v, &o->retries, err, errlen);
			break;
		case DEF_TIMEOUT:
			rv = cli_parse_secs_ms(f, v, &o->timeout_ms, err,
			                       errlen);
			break;
		case DEF_ENV: rv = args_env(&p, &o->env); break;
		case DEF_CPU:
			rv = cli_parse_cpu(f, v, &o->cpu_milli, err, errlen);
			break;
		case DEF_MEM:
			rv = cli_parse_bytes(f, v, &o->mem_bytes, err, errlen);
			break;
		case DEF_REPLICAS:
			o->has_replicas = 1;
			rv = cli_parse_u32(f, v, &o->replicas, err, errlen);
			break;
		case DEF_TTL:
			o->has_ttl = 1;
			rv = cli_parse_u32(f, v, &o->ttl_s, err, errlen);
			break;
		case DEF_PROTOCOL:
			rv =
			    cli_parse_protocol(f, v, &o->protocol, err, errlen);
			break;
		case DEF_MAX_ITEMS:
			rv = cli_parse_u32(f, v, &o->max_items, err, errlen);
			break;
		}
		if (rv != 0)
			return CLI_EUSAGE;
	}
	if (o->name == NULL || o->name[0] == '\0')
		return cli_usage_err(err, errlen, "missing the NAME");
	return 0;
}

int
cli_parse_task_register(int argc, char **argv, int first, cli_def_opts *o,
                        char *err, size_t errlen)
{
	int rv = args_def(argc, argv, first, args_task_flags, o, err, errlen);

	if (rv != 0 || o->help)
		return rv;
	if (o->cmd == NULL || o->cmd[0] == '\0')
		return cli_usage_err(err, errlen,
		                     "task register needs --cmd 'CMD'");
	return 0;
}

int
cli_parse_actor_create(int argc, char **argv, int first, cli_def_opts *o,
                       char *err, size_t errlen)
{
	int rv = args_def(argc, argv, first, args_actor_flags, o, err, errlen);

	if (rv != 0 || o->help)
		return rv;
	if (o->cmd == NULL || o->cmd[0] == '\0')
		return cli_usage_err(err, errlen,
		                     "actor create needs --cmd 'CMD'");
	if (!o->has_replicas)
		return cli_usage_err(err, errlen,
		                     "actor create needs --replicas N");
	if (o->replicas == 0)
		return cli_usage_err(err, errlen,
		                     "--replicas must be at least 1");
	return 0;
}

int
cli_parse_name(int argc, char **argv, int first, cli_def_opts *o, char *err,
               size_t errlen)
{
	return args_def(argc, argv, first, args_name_flags, o, err, errlen);
}

void
cli_def_opts_free(cli_def_opts *o)
{
	cli_strv_free(&o->env);
}

enum {
	ADM_JSON = 1,
	ADM_MAX_RUNNING,
	ADM_MAX_REPLICAS,
	ADM_REPLACE,
	ADM_ROLE,
	ADM_EXPIRES,
};

static const cli_flag args_project_create_flags[] = {
    {"json", 0, ADM_JSON},
    {"max-running", 1, ADM_MAX_RUNNING},
    {"max-replicas", 1, ADM_MAX_REPLICAS},
    {"replace", 0, ADM_REPLACE},
    {NULL, 0, 0},
};

static const cli_flag args_none_flags[] = {
    {NULL, 0, 0},
};

/* The walk of `project create|delete`: NAME plus flags. */
static int
args_project(int argc, char **argv, int first, const cli_flag *flags,
             cli_project_opts *o, char *err, size_t errlen)
{
	cli_argp p;
	int      id, rv = 0;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS:
			if (o->name != NULL)
				return args_unexpected(&p);
			o->name = p.val;
			break;
		case ADM_JSON: o->json = 1; break;
		case ADM_REPLACE: o->replace = 1; break;
		case ADM_MAX_RUNNING:
			rv = cli_parse_u32(p.flag, p.val, &o->max_running, err,
			                   errlen);
			break;
		case ADM_MAX_REPLICAS:
			rv = cli_parse_u32(p.flag, p.val, &o->max_replicas, err,
			                   errlen);
			break;
		}
		if (rv != 0)
			return CLI_EUSAGE;
	}
	if (o->name == NULL || o->name[0] == '\0')
		return cli_usage_err(err, errlen, "missing the project NAME");
	return 0;
}

int
cli_parse_project_create(int argc, char **argv, int first, cli_project_opts *o,
                         char *err, size_t errlen)
{
	return args_project(argc, argv, first, args_project_create_flags, o,
	                    err, errlen);
}

int
cli_parse_project_delete(int argc, char **argv, int first, cli_project_opts *o,
                         char *err, size_t errlen)
{
	return args_project(argc, argv, first, args_none_flags, o, err, errlen);
}

static const cli_flag args_token_create_flags[] = {
    {"json", 0, ADM_JSON},
    {"role", 1, ADM_ROLE},
    {"expires", 1, ADM_EXPIRES},
    {NULL, 0, 0},
};

int
cli_parse_token_create(int argc, char **argv, int first, cli_token_opts *o,
                       char *err, size_t errlen)
{
	cli_argp p;
	int      id, rv = 0;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_token_create_flags)) !=
	       CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS: return args_unexpected(&p);
		case ADM_JSON: o->json = 1; break;
		case ADM_ROLE:
			rv = cli_parse_role(p.flag, p.val, &o->role, err,
			                    errlen);
			break;
		case ADM_EXPIRES:
			rv = cli_parse_duration_s(p.flag, p.val, &o->expires_s,
			                          err, errlen);
			break;
		}
		if (rv != 0)
			return CLI_EUSAGE;
	}
	if (o->role == TROUPE__ROLE__ROLE_NONE)
		return cli_usage_err(err, errlen,
		                     "token create needs --role read, submit, "
		                     "admin or worker");
	return 0;
}

int
cli_parse_token_revoke(int argc, char **argv, int first, cli_token_opts *o,
                       char *err, size_t errlen)
{
	cli_argp p;
	int      id;

	memset(o, 0, sizeof(*o));
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_none_flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS:
			if (o->id != NULL)
				return args_unexpected(&p);
			o->id = p.val;
			break;
		}
	}
	if (o->id == NULL || o->id[0] == '\0')
		return cli_usage_err(err, errlen, "missing the token ID");
	return 0;
}

static const cli_flag args_up_flags[] = {
    {"workers", 1, 1},
    {"slots", 1, 2},
    {"home", 1, 3},
    {NULL, 0, 0},
};

int
cli_parse_up(int argc, char **argv, int first, cli_up_opts *o, char *err,
             size_t errlen)
{
	cli_argp p;
	int      id, rv = 0;

	memset(o, 0, sizeof(*o));
	o->workers = 1;
	cli_argp_init(&p, argc, argv, first, &o->g, err, errlen);
	while ((id = cli_argp_next(&p, args_up_flags)) != CLI_ARG_END) {
		switch (id) {
		case CLI_EUSAGE: return CLI_EUSAGE;
		case CLI_ARG_HELP: o->help = 1; return 0;
		case CLI_ARG_POS: return args_unexpected(&p);
		case 1:
			rv = cli_parse_u32(p.flag, p.val, &o->workers, err,
			                   errlen);
			break;
		case 2:
			rv = cli_parse_u32(p.flag, p.val, &o->slots, err,
			                   errlen);
			if (rv == 0 && o->slots == 0)
				rv = cli_usage_err(
				    err, errlen, "--slots must be at least 1");
			break;
		case 3:
			o->home = p.val;
			if (o->home[0] == '\0')
				rv = cli_usage_err(err, errlen,
				                   "--home is empty");
			break;
		}
		if (rv != 0)
			return CLI_EUSAGE;
	}
	if (o->g.addr != NULL)
		return cli_usage_err(err, errlen,
		                     "up runs a local cluster: use --home, "
		                     "not --addr");
	return 0;
}
