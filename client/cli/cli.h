/*
 * The commands of the `troupe` command line and the few helpers they
 * share.  Each command takes argv and the index of its first argument
 * (after the command words), prints its own output and errors, and
 * returns the process exit code (args.h's CLI_EXIT_*).  Errors are one
 * line on stderr starting with "troupe: ".
 */
#ifndef TROUPE_CLI_H
#define TROUPE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "api.pb-c.h"
#include "args.h"
#include "progress.h"
#include "troupe/client.h"

/* Global flags given before the command word (`troupe --addr URL map
 * ...`); a command's own --addr/--token-file/--project win over them. */
extern cli_global cli_pre_global;

/* Prints "troupe: <message>\n" on stderr.  Returns CLI_EXIT_FAIL. */
int cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a usage error for cmd ("troupe: <err> (see `troupe <cmd>
 * --help`)").  Returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *err);

/* Opens a client to the scheduler named by g (else cli_pre_global, else
 * TROUPE_ADDR, else the local cluster), with the token of --token-file
 * (else TROUPE_TOKEN / TROUPE_TOKEN_FILE), acting in cli_project(g).  Returns 0
 * with *out owned by the caller (troupe_client_close), or prints why it cannot
 * and returns CLI_EXIT_FAIL. */
int cli_connect(const cli_global *g, troupe_client **out);

/* The project calls act in: --project of g, else of cli_pre_global, else
 * TROUPE_PROJECT; NULL when none of them names one.  Static or in argv. */
const char *cli_project(const cli_global *g);

/* Prints the failed call's message (troupe_client_error), one line,
 * starting "permission denied: " for PERMISSION_DENIED and
 * "unauthenticated: " for UNAUTHENTICATED unless the message already says
 * so.  Returns CLI_EXIT_FAIL. */
int cli_call_err(troupe_client *c);

/* The name of a phase / item state without its prefix ("RUNNING"). */
const char *cli_phase_name(int phase);
const char *cli_state_name(int state);

/* Whether phase is SUCCEEDED, FAILED, ABORTED or TIMED_OUT. */
int cli_phase_terminal(int phase);

/* Writes Unix epoch milliseconds as local "YYYY-MM-DD HH:MM:SS", or "-"
 * for 0. */
void cli_fmt_time(char *buf, size_t len, int64_t ms);

/* Writes a duration in milliseconds as "850ms", "12.3s", "3m05s",
 * "2h03m". */
void cli_fmt_dur(char *buf, size_t len, int64_t ms);

/* Returns the wall clock in Unix epoch milliseconds. */
int64_t cli_wall_ms(void);

/* Called by cli_wait with every state of the execution it sees. */
typedef void (*cli_wait_cb)(const Troupe__Execution *ex, void *arg);

/* Long-polls WatchExecution until the execution reaches a terminal phase,
 * calling cb (when not NULL) with each version.  poll_ms bounds each wait
 * (the callback's refresh rate when nothing changes).  Returns 0 with *out
 * the last reply (caller frees with
 * troupe__watch_execution_reply__free_unpacked), or prints the error and
 * returns CLI_EXIT_FAIL. */
int cli_wait(troupe_client *c, const char *id, uint32_t poll_ms, cli_wait_cb cb,
             void *arg, Troupe__WatchExecutionReply **out);

/* Pages through GetOutputs and prints every item in input order on f:
 * text mode prints each output as it is, adding a newline when it lacks
 * one, and an empty line for an item without output; json mode prints one
 * cli_json_item object per line.  Returns 0, or prints the error and
 * returns CLI_EXIT_FAIL. */
int cli_print_outputs(troupe_client *c, const char *id, int json, FILE *f);

/* Returns the exit code for ex: CLI_EXIT_OK when it SUCCEEDED; otherwise
 * prints why on stderr ("troupe: execution ID FAILED: 3 of 100 items
 * failed") and returns CLI_EXIT_FAIL. */
int cli_report(const Troupe__Execution *ex);

/* A text table: rows of cells, printed with aligned columns. */
typedef struct cli_table {
	char **cells; /* rows * cols, each malloc'd */
	size_t rows;
	size_t cols;
	int    oom;
} cli_table;

/* Starts a table with the header row (cols names). */
void cli_table_init(cli_table *t, size_t cols, const char *const *header);

/* Appends a row of cols strings (copied; NULL prints as "-"). */
void cli_table_row(cli_table *t, const char *const *cells);

/* Prints the table on f.  Returns 0, or CLI_EXIT_FAIL (after saying so)
 * when a row could not be stored for lack of memory. */
int cli_table_print(cli_table *t, FILE *f);

/* Frees the table's cells.  Safe to call twice. */
void cli_table_free(cli_table *t);

/* The commands. */
int cli_cmd_map(int argc, char **argv, int first);
int cli_cmd_status(int argc, char **argv, int first);
int cli_cmd_outputs(int argc, char **argv, int first);
int cli_cmd_watch(int argc, char **argv, int first);
int cli_cmd_abort(int argc, char **argv, int first);
int cli_cmd_list(int argc, char **argv, int first);
int cli_cmd_workers(int argc, char **argv, int first);
int cli_cmd_actors(int argc, char **argv, int first);
int cli_cmd_task(int argc, char **argv, int first);
int cli_cmd_actor(int argc, char **argv, int first);
int cli_cmd_health(int argc, char **argv, int first);
int cli_cmd_project(int argc, char **argv, int first);
int cli_cmd_token(int argc, char **argv, int first);
int cli_cmd_up(int argc, char **argv, int first);
int cli_cmd_logs(int argc, char **argv, int first);

#endif
