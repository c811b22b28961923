/*
 * Commands about executions: status, outputs, watch, abort, list; and the
 * waiting, output paging and final report that `troupe map` shares.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json_out.h"

/* Successive watches closer than this are spaced out, so that an
 * execution changing thousands of times a second does not turn the CLI
 * into a busy loop; the first few go at once to keep short runs fast. */
#define EXEC_WATCH_MIN_GAP 0.05
#define EXEC_WATCH_BURST   4

int
cli_wait(troupe_client *c, const char *id, uint32_t poll_ms, cli_wait_cb cb,
         void *arg, Troupe__WatchExecutionReply **out)
{
	Troupe__WatchExecutionRequest req =
	    TROUPE__WATCH_EXECUTION_REQUEST__INIT;
	Troupe__WatchExecutionReply *rep = NULL;
	double                       last = 0;
	unsigned                     calls = 0;
	int                          rv;

	*out = NULL;
	req.id = (char *)id;
	req.timeout_ms = poll_ms;
	/* The call's own deadline must outlast the server's bound. */
	troupe_client_set_timeout(c, (int)poll_ms + 15000);
	for (;;) {
		double now = cli_now();

		if (calls >= EXEC_WATCH_BURST &&
		    now - last < EXEC_WATCH_MIN_GAP) {
			double          gap = EXEC_WATCH_MIN_GAP - (now - last);
			struct timespec ts = {0, (long)(gap * 1e9)};
			nanosleep(&ts, NULL);
		}
		last = cli_now();
		calls++;
		rv =
		    TROUPE_CALL(c, WatchExecution, &req, watch_execution, &rep);
		if (rv != 0) {
			troupe_client_set_timeout(c, 30000);
			return cli_call_err(c);
		}
		if (rep->execution == NULL) {
			troupe__watch_execution_reply__free_unpacked(rep, NULL);
			troupe_client_set_timeout(c, 30000);
			return cli_err("malformed WatchExecution reply");
		}
		if (cb != NULL)
			cb(rep->execution, arg);
		if (cli_phase_terminal(rep->execution->phase))
			break;
		req.since_version = rep->execution->version;
		troupe__watch_execution_reply__free_unpacked(rep, NULL);
		rep = NULL;
	}
	troupe_client_set_timeout(c, 30000);
	*out = rep;
	return CLI_EXIT_OK;
}

/* Prints one item in text mode. */
static void
exec_print_text(const Troupe__ItemResult *r, FILE *f)
{
	const ProtobufCBinaryData *o = &r->output;

	if (r->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED && o->len > 0) {
		fwrite(o->data, 1, o->len, f);
		if (o->data[o->len - 1] != '\n')
			fputc('\n', f);
	} else {
		fputc('\n', f);
	}
}

int
cli_print_outputs(troupe_client *c, const char *id, int json, FILE *f)
{
	Troupe__GetOutputsRequest req = TROUPE__GET_OUTPUTS_REQUEST__INIT;
	Troupe__GetOutputsReply  *rep = NULL;
	int                       code = CLI_EXIT_OK;

	req.id = (char *)id;
	req.start = 0;
	for (;;) {
		if (TROUPE_CALL(c, GetOutputs, &req, get_outputs, &rep) != 0) {
			code = cli_call_err(c);
			goto fail;
		}
		for (size_t i = 0; i < rep->n_items; i++) {
			if (json)
				cli_json_println(f,
				                 cli_json_item(rep->items[i]));
			else
				exec_print_text(rep->items[i], f);
		}
		if (rep->next >= rep->total)
			break;
		if (rep->next <= req.start) {
			code = cli_err("GetOutputs of %s made no progress at "
			               "item %llu",
			               id, (unsigned long long)req.start);
			goto fail;
		}
		req.start = rep->next;
		troupe__get_outputs_reply__free_unpacked(rep, NULL);
		rep = NULL;
	}
fail:
	if (rep != NULL)
		troupe__get_outputs_reply__free_unpacked(rep, NULL);
	if (fflush(f) != 0 && code == CLI_EXIT_OK)
		code = cli_err("cannot write the outputs");
	return code;
}

/* The number of items that are done, whatever their end. */
static uint64_t
exec_done(const Troupe__Execution *ex)
{
	const Troupe__Counts *k = ex->counts;

	return k != NULL ? k->succeeded + k->failed + k->aborted : 0;
}

/* Says why ex FAILED: "3 of 100 items failed, 40 aborted; <error>",
 * without repeating the counts when the scheduler's error starts with
 * them. */
static int
exec_report_failed(const Troupe__Execution *ex)
{
	const Troupe__Counts *k = ex->counts;
	const char           *why = ex->error != NULL ? ex->error : "";
	char                  head[96], ab[48] = "";
	size_t                n;

	n = (size_t)snprintf(head, sizeof(head), "%llu of %llu items failed",
	                     (unsigned long long)(k != NULL ? k->failed : 0),
	                     (unsigned long long)ex->total);
	if (strncmp(why, head, n) == 0) {
		why += n;
		why += strspn(why, ";:, ");
	}
	if (k != NULL && k->aborted > 0)
		snprintf(ab, sizeof(ab), ", %llu aborted",
		         (unsigned long long)k->aborted);
	return cli_err("execution %s FAILED: %s%s%s%s", ex->id, head, ab,
	               why[0] != '\0' ? "; " : "", why);
}

int
cli_report(const Troupe__Execution *ex)
{
	const Troupe__Counts *k = ex->counts;
	const char           *why = ex->error != NULL ? ex->error : "";
	const char           *sep = why[0] != '\0' ? "; " : "";
	unsigned long long    total = ex->total;

	switch (ex->phase) {
	case TROUPE__PHASE__PHASE_SUCCEEDED: return CLI_EXIT_OK;
	case TROUPE__PHASE__PHASE_FAILED: return exec_report_failed(ex);
	case TROUPE__PHASE__PHASE_ABORTED:
	case TROUPE__PHASE__PHASE_TIMED_OUT:
		return cli_err(
		    "execution %s %s: %llu of %llu items "
		    "succeeded%s%s",
		    ex->id, cli_phase_name(ex->phase),
		    (unsigned long long)(k != NULL ? k->succeeded : 0), total,
		    sep, why);
	default: break;
	}
	return cli_err("execution %s is %s: %llu of %llu items done", ex->id,
	               cli_phase_name(ex->phase),
	               (unsigned long long)exec_done(ex), total);
}

/* Fetches one execution.  Returns 0 with *out (caller frees), or prints
 * the error and returns CLI_EXIT_FAIL. */
static int
exec_get(troupe_client *c, const char *id, Troupe__GetExecutionReply **out)
{
	Troupe__GetExecutionRequest req = TROUPE__GET_EXECUTION_REQUEST__INIT;

	req.id = (char *)id;
	if (TROUPE_CALL(c, GetExecution, &req, get_execution, out) != 0)
		return cli_call_err(c);
	if ((*out)->execution == NULL) {
		troupe__get_execution_reply__free_unpacked(*out, NULL);
		*out = NULL;
		return cli_err("malformed GetExecution reply");
	}
	return CLI_EXIT_OK;
}

/* What an execution runs, for people: its command or "task NAME". */
static void
exec_what(const Troupe__Execution *ex, char *buf, size_t len)
{
	const Troupe__ExecutionSpec *s = ex->spec;

	if (s == NULL)
		snprintf(buf, len, "-");
	else if (s->task != NULL && s->task[0] != '\0')
		snprintf(buf, len, "task %s", s->task);
	else if (s->actor != NULL && s->actor[0] != '\0')
		snprintf(buf, len, "actor %s", s->actor);
	else
		snprintf(buf, len, "%s", s->command != NULL ? s->command : "");
}

static void
exec_print_status(const Troupe__Execution *ex, FILE *f)
{
	const Troupe__Counts        *k = ex->counts;
	const Troupe__ExecutionSpec *s = ex->spec;
	Troupe__Counts               zero = TROUPE__COUNTS__INIT;
	char                         t[64], what[512];
	int64_t                      end;

	if (k == NULL)
		k = &zero;
	exec_what(ex, what, sizeof(what));
	fprintf(f, "id:        %s\n", ex->id);
	if (s != NULL && s->name != NULL && s->name[0] != '\0')
		fprintf(f, "name:      %s\n", s->name);
	fprintf(f, "phase:     %s\n", cli_phase_name(ex->phase));
	fprintf(f, "runs:      %s\n", what);
	fprintf(f, "items:     %llu%s\n", (unsigned long long)ex->total,
	        ex->sealed ? "" : " so far (still uploading)");
	fprintf(f,
	        "states:    %llu pending, %llu running, %llu succeeded, "
	        "%llu failed, %llu aborted\n",
	        (unsigned long long)k->pending, (unsigned long long)k->running,
	        (unsigned long long)k->succeeded, (unsigned long long)k->failed,
	        (unsigned long long)k->aborted);
	cli_fmt_time(t, sizeof(t), ex->created_ms);
	fprintf(f, "created:   %s\n", t);
	cli_fmt_time(t, sizeof(t), ex->started_ms);
	fprintf(f, "started:   %s\n", t);
	cli_fmt_time(t, sizeof(t), ex->finished_ms);
	fprintf(f, "finished:  %s\n", t);
	if (ex->started_ms > 0) {
		end = ex->finished_ms > 0 ? ex->finished_ms : cli_wall_ms();
		cli_fmt_dur(t, sizeof(t), end - ex->started_ms);
		fprintf(f, "duration:  %s%s\n", t,
		        ex->finished_ms > 0 ? "" : " so far");
	}
	if (ex->error != NULL && ex->error[0] != '\0')
		fprintf(f, "error:     %s\n", ex->error);
}

static const char exec_status_help[] =
    "usage: troupe status ID [--json]\n"
    "\n"
    "Prints an execution's phase, item counts per state and timings.\n"
    "--json prints the whole Execution message as one JSON object.\n";

static const char exec_outputs_help[] =
    "usage: troupe outputs ID [--json]\n"
    "\n"
    "Prints the outputs of an execution in input order, one per line (an\n"
    "empty line for an item without output), or with --json one object\n"
    "per item: index, state, output, error, attempts, exit_code, worker.\n"
    "Outputs are bytes; JSON carries them as strings, escaping control\n"
    "characters and passing other bytes (non-UTF-8 too) through.\n"
    "Exits 0 when the execution SUCCEEDED, 1 otherwise.\n";

static const char exec_watch_help[] =
    "usage: troupe watch ID\n"
    "\n"
    "Prints a line each time the execution changes, until it ends.\n"
    "Exits 0 when it SUCCEEDED, 1 otherwise.\n";

static const char exec_abort_help[] =
    "usage: troupe abort ID [--reason TEXT]\n"
    "\n"
    "Aborts an execution: pending items never start, running ones are\n"
    "killed, finished outputs are kept.\n";

static const char exec_list_help[] =
    "usage: troupe list [--json] [--phase PHASE] [--limit N]\n"
    "\n"
    "Lists executions, newest first.  --phase: queued, running,\n"
    "succeeded, failed, aborted or timed_out.  --limit N (default 20; 0\n"
    "for all).  --json prints one Execution object per line.\n";

/* Parses `CMD ID ...` and connects.  Returns -1 when the command should go
 * on (with *c open), else the exit code. */
static int
exec_start(const char *cmd, const char *help, int argc, char **argv, int first,
           int json, int reason, cli_id_opts *o, troupe_client **c)
{
	char err[256];

	*c = NULL;
	if (cli_parse_id(argc, argv, first, json, reason, o, err,
	                 sizeof(err)) != 0)
		return cli_usage(cmd, err);
	if (o->help) {
		fputs(help, stdout);
		return CLI_EXIT_OK;
	}
	if (cli_connect(&o->g, c) != 0)
		return CLI_EXIT_FAIL;
	return -1;
}

int
cli_cmd_status(int argc, char **argv, int first)
{
	cli_id_opts                o;
	troupe_client             *c = NULL;
	Troupe__GetExecutionReply *rep = NULL;
	int                        code;

	if ((code = exec_start("status", exec_status_help, argc, argv, first, 1,
	                       0, &o, &c)) >= 0)
		return code;
	if ((code = exec_get(c, o.id, &rep)) != 0)
		goto fail;
	if (o.json)
		cli_json_println(stdout,
		                 cli_json_message(&rep->execution->base));
	else
		exec_print_status(rep->execution, stdout);
fail:
	if (rep != NULL)
		troupe__get_execution_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return code;
}

int
cli_cmd_outputs(int argc, char **argv, int first)
{
	cli_id_opts                o;
	troupe_client             *c = NULL;
	Troupe__GetExecutionReply *rep = NULL;
	int                        code;

	if ((code = exec_start("outputs", exec_outputs_help, argc, argv, first,
	                       1, 0, &o, &c)) >= 0)
		return code;
	if ((code = exec_get(c, o.id, &rep)) != 0)
		goto fail;
	if ((code = cli_print_outputs(c, o.id, o.json, stdout)) != 0)
		goto fail;
	code = cli_report(rep->execution);
fail:
	if (rep != NULL)
		troupe__get_execution_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return code;
}

/* Prints a watch line when what people see of ex changed. */
static void
exec_watch_line(const Troupe__Execution *ex, void *arg)
{
	char                 *last = arg;
	char                  line[512], t[32];
	const Troupe__Counts *k = ex->counts;
	Troupe__Counts        zero = TROUPE__COUNTS__INIT;
	time_t                now = time(NULL);
	struct tm             tm;

	if (k == NULL)
		k = &zero;
	snprintf(
	    line, sizeof(line),
	    "%s %s %llu/%llu done: %llu succeeded, %llu failed, %llu "
	    "aborted, %llu running, %llu pending",
	    ex->id, cli_phase_name(ex->phase),
	    (unsigned long long)exec_done(ex), (unsigned long long)ex->total,
	    (unsigned long long)k->succeeded, (unsigned long long)k->failed,
	    (unsigned long long)k->aborted, (unsigned long long)k->running,
	    (unsigned long long)k->pending);
	if (strcmp(line, last) == 0)
		return;
	snprintf(last, 512, "%s", line);
	localtime_r(&now, &tm);
	strftime(t, sizeof(t), "%H:%M:%S", &tm);
	printf("%s %s\n", t, line);
	fflush(stdout);
}

int
cli_cmd_watch(int argc, char **argv, int first)
{
	cli_id_opts                  o;
	troupe_client               *c = NULL;
	Troupe__WatchExecutionReply *rep = NULL;
	char                         last[512] = "";
	int                          code;

	if ((code = exec_start("watch", exec_watch_help, argc, argv, first, 0,
	                       0, &o, &c)) >= 0)
		return code;
	if ((code = cli_wait(c, o.id, 10000, exec_watch_line, last, &rep)) != 0)
		goto fail;
	if (rep->execution->error != NULL && rep->execution->error[0] != '\0')
		printf("error: %s\n", rep->execution->error);
	code = cli_report(rep->execution);
fail:
	if (rep != NULL)
		troupe__watch_execution_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return code;
}

int
cli_cmd_abort(int argc, char **argv, int first)
{
	Troupe__AbortExecutionRequest req =
	    TROUPE__ABORT_EXECUTION_REQUEST__INIT;
	Troupe__AbortExecutionReply *rep = NULL;
	cli_id_opts                  o;
	troupe_client               *c = NULL;
	int                          code;

	if ((code = exec_start("abort", exec_abort_help, argc, argv, first, 0,
	                       1, &o, &c)) >= 0)
		return code;
	req.id = (char *)o.id;
	req.reason =
	    (char *)(o.reason != NULL ? o.reason : "aborted with troupe abort");
	if (TROUPE_CALL(c, AbortExecution, &req, abort_execution, &rep) != 0) {
		code = cli_call_err(c);
		goto fail;
	}
	if (rep->execution != NULL)
		printf("%s %s\n", rep->execution->id,
		       cli_phase_name(rep->execution->phase));
	code = CLI_EXIT_OK;
fail:
	if (rep != NULL)
		troupe__abort_execution_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return code;
}

/* Adds one execution to the `list` table. */
static void
exec_list_row(cli_table *t, const Troupe__Execution *ex)
{
	char        items[64], failed[32], created[32], dur[32], what[512];
	const char *cells[7];
	int64_t     end;

	snprintf(items, sizeof(items), "%llu/%llu",
	         (unsigned long long)exec_done(ex),
	         (unsigned long long)ex->total);
	snprintf(
	    failed, sizeof(failed), "%llu",
	    (unsigned long long)(ex->counts != NULL ? ex->counts->failed : 0));
	cli_fmt_time(created, sizeof(created), ex->created_ms);
	if (ex->started_ms > 0) {
		end = ex->finished_ms > 0 ? ex->finished_ms : cli_wall_ms();
		cli_fmt_dur(dur, sizeof(dur), end - ex->started_ms);
	} else {
		snprintf(dur, sizeof(dur), "-");
	}
	if (ex->spec != NULL && ex->spec->name != NULL &&
	    ex->spec->name[0] != '\0')
		snprintf(what, sizeof(what), "%s", ex->spec->name);
	else
		exec_what(ex, what, sizeof(what));
	if (strlen(what) > 48)
		memcpy(what + 45, "...", 4);
	cells[0] = ex->id;
	cells[1] = cli_phase_name(ex->phase);
	cells[2] = items;
	cells[3] = failed;
	cells[4] = created;
	cells[5] = dur;
	cells[6] = what;
	cli_table_row(t, cells);
}

int
cli_cmd_list(int argc, char **argv, int first)
{
	static const char *const head[] = {"ID",          "PHASE",   "DONE",
	                                   "FAILED",      "CREATED", "DURATION",
	                                   "NAME/COMMAND"};
	Troupe__ListExecutionsRequest req =
	    TROUPE__LIST_EXECUTIONS_REQUEST__INIT;
	Troupe__ListExecutionsReply *rep = NULL;
	cli_list_opts                o;
	troupe_client               *c = NULL;
	cli_table                    t;
	char                        *token = NULL;
	char                         err[256];
	uint32_t                     shown = 0;
	int                          code;

	if (cli_parse_list(argc, argv, first, &o, err, sizeof(err)) != 0)
		return cli_usage("list", err);
	if (o.help) {
		fputs(exec_list_help, stdout);
		return CLI_EXIT_OK;
	}
	if ((code = cli_connect(&o.g, &c)) != 0)
		return code;
	cli_table_init(&t, 7, head);
	req.phase = o.phase;
	for (;;) {
		uint32_t want = o.limit > 0 ? o.limit - shown : 0;

		req.page_size = want > 0 && want < 100 ? want : 100;
		req.page_token = token != NULL ? token : "";
		if (TROUPE_CALL(c, ListExecutions, &req, list_executions,
		                &rep) != 0) {
			code = cli_call_err(c);
			goto fail;
		}
		for (size_t i = 0; i < rep->n_executions; i++) {
			if (o.limit > 0 && shown >= o.limit)
				break;
			if (o.json)
				cli_json_println(
				    stdout, cli_json_message(
				                &rep->executions[i]->base));
			else
				exec_list_row(&t, rep->executions[i]);
			shown++;
		}
		free(token);
		token = NULL;
		if ((o.limit > 0 && shown >= o.limit) ||
		    rep->next_page_token == NULL ||
		    rep->next_page_token[0] == '\0' || rep->n_executions == 0)
			break;
		if ((token = strdup(rep->next_page_token)) == NULL) {
			code = cli_err("out of memory");
			goto fail;
		}
		troupe__list_executions_reply__free_unpacked(rep, NULL);
		rep = NULL;
	}
	code = CLI_EXIT_OK;
fail:
	if (!o.json && code == CLI_EXIT_OK)
		code = cli_table_print(&t, stdout);
	cli_table_free(&t);
	free(token);
	if (rep != NULL)
		troupe__list_executions_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return code;
}
