/*
 * Flag parsing for the troupe CLI.  Every command parses its argv into a
 * plain struct with a pure function (no I/O, no scheduler) so the unit
 * tests can check every flag.  On a usage error a parse function returns
 * CLI_EUSAGE and writes one line for a person into err (no "troupe: "
 * prefix, no newline); the caller prints it and exits 2.
 *
 * Flags are long options only: `--flag VALUE` or `--flag=VALUE`; `-h` is
 * `--help`; `--` ends the flags.  Flags and positional arguments may mix.
 * The global flags `--addr URL`, `--token-file F` and `--project P` are
 * accepted by every command.  Parsed strings point into argv (never copied);
 * the only heap memory is the list of --env values, freed by the matching
 * *_free().
 */
#ifndef TROUPE_CLI_ARGS_H
#define TROUPE_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1 /* the work failed, or the scheduler said no */
#define CLI_EXIT_USAGE 2 /* bad flags or input */

/* Returned by the parse functions on a usage error. */
#define CLI_EUSAGE (-100)

/* The flags every command accepts.  NULL when not given. */
typedef struct cli_global {
	const char *addr;       /* --addr URL */
	const char *token_file; /* --token-file F */
	const char *project;    /* --project P: the project calls act in */
} cli_global;

/* One flag a command accepts.  id > 0; has_arg says whether it takes a
 * value. */
typedef struct cli_flag {
	const char *name; /* without the leading "--" */
	int         has_arg;
	int         id;
} cli_flag;

/* A walk over argv.  Set it up with cli_argp_init. */
typedef struct cli_argp {
	int         argc;
	char      **argv;
	int         i;         /* next argv index to look at */
	int         only_args; /* seen "--" */
	const char *val;       /* the value of the last flag or positional */
	const char *flag;      /* the name of the last flag, for messages */
	cli_global *g;         /* where global flags go */
	char       *err;       /* where a usage error goes */
	size_t      errlen;
} cli_argp;

#define CLI_ARG_END  0  /* no more arguments */
#define CLI_ARG_POS  -1 /* a positional argument, in p->val */
#define CLI_ARG_HELP -2 /* --help or -h */

/* Starts a walk at argv[first]. */
void cli_argp_init(cli_argp *p, int argc, char **argv, int first, cli_global *g,
                   char *err, size_t errlen);

/* Returns the next flag's id (its value, if any, in p->val), CLI_ARG_POS,
 * CLI_ARG_HELP, CLI_ARG_END, or CLI_EUSAGE for an unknown flag or a
 * missing value.  Global flags are stored in p->g and skipped.  flags ends
 * with an entry whose name is NULL. */
int cli_argp_next(cli_argp *p, const cli_flag *flags);

/* Writes a usage error into err and returns CLI_EUSAGE. */
int cli_usage_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Value parsers: each returns 0, or CLI_EUSAGE with a message in err that
 * names flag.  None of them accept trailing garbage or a sign. */

/* A decimal integer 0..UINT32_MAX. */
int cli_parse_u32(const char *flag, const char *s, uint32_t *out, char *err,
                  size_t errlen);

/* A decimal integer 0..UINT64_MAX. */
int cli_parse_u64(const char *flag, const char *s, uint64_t *out, char *err,
                  size_t errlen);

/* Seconds, fractions allowed ("1.5"), into milliseconds; a positive value
 * below 1 ms becomes 1 ms so that it never reads as "none". */
int cli_parse_secs_ms(const char *flag, const char *s, uint32_t *ms, char *err,
                      size_t errlen);

/* A ratio in 0..1. */
int cli_parse_ratio(const char *flag, const char *s, double *out, char *err,
                    size_t errlen);

/* CPU in thousandths of a CPU: "500" or "500m" (both 0.5 CPU). */
int cli_parse_cpu(const char *flag, const char *s, uint32_t *milli, char *err,
                  size_t errlen);

/* Bytes, with an optional binary suffix: "512", "64K", "1.5G", "2Gi". */
int cli_parse_bytes(const char *flag, const char *s, uint64_t *out, char *err,
                    size_t errlen);

/* "lines" -> 0 (PROTOCOL_LINES), "frames" -> 1 (PROTOCOL_FRAMES). */
int cli_parse_protocol(const char *flag, const char *s, int *out, char *err,
                       size_t errlen);

/* A KEY=VALUE with a non-empty key made of letters, digits and '_' not
 * starting with a digit. */
int cli_check_env(const char *flag, const char *s, char *err, size_t errlen);

/* A growable list of strings pointing into argv. */
typedef struct cli_strv {
	char **v;
	size_t n;
} cli_strv;

/* Appends s (not copied).  Returns 0 or TROUPE_ENOMEM. */
int cli_strv_push(cli_strv *sv, const char *s);

/* Frees the list (not the strings).  Accepts an empty list. */
void cli_strv_free(cli_strv *sv);

/* `troupe map`. */
typedef struct cli_map_opts {
	cli_global  g;
	int         help;
	const char *cmd;   /* --cmd, or NULL */
	const char *task;  /* --task, or NULL */
	const char *items; /* --items FILE; NULL or "-" = stdin */
	const char *name;  /* --name LABEL */
	const char *actor; /* --actor ENV */
	uint32_t    concurrency;
	int         has_retries;
	uint32_t    retries;
	int         has_timeout;
	uint32_t    timeout_ms;
	int         has_ratio;
	double      ratio;
	int         has_replicas;
	uint32_t    replicas;
	int         has_ttl;
	uint32_t    ttl_s;
	int         has_protocol;
	int         protocol;
	uint32_t    cpu_milli;
	uint64_t    mem_bytes;
	uint32_t    exec_timeout_s; /* --execution-timeout, whole seconds */
	cli_strv    env;            /* --env K=V, repeatable */
	int         detach;
	int         json;
} cli_map_opts;

/* Parses argv[first..] for `troupe map` into *o (which it initialises).
 * Returns 0, or CLI_EUSAGE with the reason in err.  The caller frees *o
 * with cli_map_opts_free in both cases. */
int  cli_parse_map(int argc, char **argv, int first, cli_map_opts *o, char *err,
                   size_t errlen);
void cli_map_opts_free(cli_map_opts *o);

/* Commands that name one execution: status, outputs, watch, abort. */
typedef struct cli_id_opts {
	cli_global  g;
	int         help;
	const char *id;
	const char *reason; /* abort --reason */
	int         json;
} cli_id_opts;

/* Parses `CMD ID [--json]` (allow_json) or `abort ID [--reason TEXT]`
 * (allow_reason).  Returns 0 or CLI_EUSAGE. */
int cli_parse_id(int argc, char **argv, int first, int allow_json,
                 int allow_reason, cli_id_opts *o, char *err, size_t errlen);

/* `troupe list`. */
typedef struct cli_list_opts {
	cli_global g;
	int        help;
	int        json;
	int        phase; /* Troupe__Phase; 0 = any */
	uint32_t   limit; /* 0 = all */
} cli_list_opts;

int cli_parse_list(int argc, char **argv, int first, cli_list_opts *o,
                   char *err, size_t errlen);

/* Parses a phase name, case-insensitive, with or without "PHASE_"
 * ("running", "TIMED_OUT").  Returns 0 or CLI_EUSAGE. */
int cli_parse_phase(const char *flag, const char *s, int *out, char *err,
                    size_t errlen);

/* Commands with no positional argument and an optional --json: workers,
 * actors, health, task list, actor list. */
typedef struct cli_plain_opts {
	cli_global g;
	int        help;
	int        json;
} cli_plain_opts;

int cli_parse_plain(int argc, char **argv, int first, cli_plain_opts *o,
                    char *err, size_t errlen);

/* `troupe task register NAME ...` and `troupe actor create NAME ...`, and
 * the single-name commands (task get/delete, actor get/delete). */
typedef struct cli_def_opts {
	cli_global  g;
	int         help;
	int         json;
	const char *name;
	const char *cmd;
	const char *actor;
	int         has_retries;
	uint32_t    retries;
	uint32_t    timeout_ms;
	uint32_t    replicas;
	int         has_replicas;
	uint32_t    ttl_s;
	int         has_ttl;
	int         protocol;
	uint32_t    cpu_milli;
	uint64_t    mem_bytes;
	uint32_t    max_items;
	cli_strv    env;
	int         replace;
} cli_def_opts;

/* `task register NAME --cmd CMD [--actor ENV] [--retries N] [--timeout
 * SEC] [--env K=V]... [--cpu M] [--mem B] [--replace]`. */
int cli_parse_task_register(int argc, char **argv, int first, cli_def_opts *o,
                            char *err, size_t errlen);

/* `actor create NAME --cmd CMD --replicas N [--ttl SEC] [--protocol P]
 * [--cpu M] [--mem B] [--max-items N] [--env K=V]... [--replace]`. */
int cli_parse_actor_create(int argc, char **argv, int first, cli_def_opts *o,
                           char *err, size_t errlen);

/* `NAME [--json]`. */
int cli_parse_name(int argc, char **argv, int first, cli_def_opts *o, char *err,
                   size_t errlen);

void cli_def_opts_free(cli_def_opts *o);

/* `troupe project create NAME [--max-running N] [--max-replicas N]
 * [--replace] [--json]` and `troupe project delete NAME`. */
typedef struct cli_project_opts {
	cli_global  g;
	int         help;
	int         json;
	const char *name;
	uint32_t    max_running;  /* items running at once; 0 = no quota */
	uint32_t    max_replicas; /* actor replicas alive; 0 = no quota */
	int         replace;
} cli_project_opts;

int cli_parse_project_create(int argc, char **argv, int first,
                             cli_project_opts *o, char *err, size_t errlen);
int cli_parse_project_delete(int argc, char **argv, int first,
                             cli_project_opts *o, char *err, size_t errlen);

/* `troupe token create --role R [--project P] [--expires D] [--json]` and
 * `troupe token revoke ID`.  The token's project is the global --project
 * (g.project; see cli_project()). */
typedef struct cli_token_opts {
	cli_global  g;
	int         help;
	int         json;
	int         role;      /* Troupe__Role; ROLE_NONE until given */
	uint32_t    expires_s; /* 0 = never */
	const char *id;        /* revoke's ID */
} cli_token_opts;

int cli_parse_token_create(int argc, char **argv, int first, cli_token_opts *o,
                           char *err, size_t errlen);
int cli_parse_token_revoke(int argc, char **argv, int first, cli_token_opts *o,
                           char *err, size_t errlen);

/* A role name, case-insensitive, with or without "ROLE_": read, submit,
 * admin, worker.  Returns 0 or CLI_EUSAGE. */
int cli_parse_role(const char *flag, const char *s, int *out, char *err,
                   size_t errlen);

/* A duration into whole seconds, rounded up: a number of seconds ("90",
 * "1.5") or a number with one unit s, m, h or d ("30s", "10m", "12h",
 * "7d").  At least 1 s, at most UINT32_MAX s.  Returns 0 or CLI_EUSAGE. */
int cli_parse_duration_s(const char *flag, const char *s, uint32_t *secs,
                         char *err, size_t errlen);

/* `troupe logs ID [--item N] [--attempt K]` (README, "Per-item logs"). */
typedef struct cli_logs_opts {
	cli_global  g;
	int         help;
	const char *id;
	int         has_item;
	uint64_t    item;
	uint32_t    attempt; /* 0: the item's last */
} cli_logs_opts;

/* --attempt needs --item and counts from 1.  Returns 0 or CLI_EUSAGE. */
int cli_parse_logs(int argc, char **argv, int first, cli_logs_opts *o,
                   char *err, size_t errlen);

/* `troupe up`. */
typedef struct cli_up_opts {
	cli_global  g;
	int         help;
	uint32_t    workers; /* default 1 */
	uint32_t    slots;   /* 0 = the worker's default */
	const char *home;    /* NULL = TROUPE_HOME */
} cli_up_opts;

int cli_parse_up(int argc, char **argv, int first, cli_up_opts *o, char *err,
                 size_t errlen);

#endif
