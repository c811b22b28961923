/*
 * Commands about what the scheduler knows besides executions: registered
 * tasks and actor environments, workers, and its health.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json_out.h"

static const char reg_task_help[] =
    "usage: troupe task register NAME --cmd 'CMD' [--actor ENV]\n"
    "                            [--retries N] [--timeout SEC] [--env K=V]...\n"
    "                            [--cpu M] [--mem B] [--replace] [--json]\n"
    "       troupe task list [--json]\n"
    "       troupe task get NAME [--json]\n"
    "       troupe task delete NAME\n"
    "\n"
    "A task is a command plus settings, run by `troupe map --task NAME`.\n"
    "--cpu is in thousandths of a CPU (500 or 500m: half a CPU); --mem in\n"
    "bytes, with K, M or G.  --replace overwrites an existing task.\n";

static const char reg_actor_help[] =
    "usage: troupe actor create NAME --cmd 'CMD' --replicas N [--ttl SEC]\n"
    "                           [--protocol lines|frames] [--cpu M] [--mem B]\n"
    "                           [--max-items N] [--env K=V]... [--replace]\n"
    "       troupe actor list [--json]\n"
    "       troupe actor get NAME [--json]\n"
    "       troupe actor delete NAME\n"
    "\n"
    "An actor environment keeps up to N replicas of CMD warm between items\n"
    "and executions; an idle replica exits after --ttl seconds (default\n"
    "90).  --max-items restarts a replica after that many items.\n";

static const char reg_actors_help[] =
    "usage: troupe actors [--json]\n"
    "\n"
    "Lists actor environments (registered and ad hoc) and their replicas.\n";

static const char reg_workers_help[] =
    "usage: troupe workers [--json]\n"
    "\n"
    "Lists the workers known to the scheduler.\n";

static const char reg_health_help[] =
    "usage: troupe health [--json]\n"
    "\n"
    "Asks the scheduler whether it is up, and prints what it says.\n";

/* Prints help or a usage error for a parse result.  Returns -1 to go on,
 * else the exit code. */
static int
reg_parsed(int rv, int help, const char *cmd, const char *helptext,
           const char *err)
{
	if (rv != 0)
		return cli_usage(cmd, err);
	if (help) {
		fputs(helptext, stdout);
		return CLI_EXIT_OK;
	}
	return -1;
}

/* Formats milliseconds as seconds for people ("1.5s", "-" for 0). */
static void
reg_secs(char *buf, size_t len, uint32_t ms)
{
	if (ms == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%gs", (double)ms / 1000.0);
}

static void
reg_print_task(const Troupe__TaskSpec *t, FILE *f)
{
	char tmo[32];

	reg_secs(tmo, sizeof(tmo), t->timeout_ms);
	fprintf(f, "name:     %s\n", t->name);
	fprintf(f, "command:  %s\n", t->command);
	if (t->actor != NULL && t->actor[0] != '\0')
		fprintf(f, "actor:    %s\n", t->actor);
	fprintf(f, "retries:  %u\n", t->retries);
	fprintf(f, "timeout:  %s\n", tmo);
	if (t->resources != NULL &&
	    (t->resources->cpu_milli > 0 || t->resources->mem_bytes > 0))
		fprintf(f, "needs:    %u mCPU, %llu bytes\n",
		        t->resources->cpu_milli,
		        (unsigned long long)t->resources->mem_bytes);
	for (size_t i = 0; i < t->n_env; i++)
		fprintf(f, "env:      %s\n", t->env[i]);
}

/* Sets *r from the --cpu/--mem of o; returns r, or NULL when neither was
 * given. */
static Troupe__Resources *
reg_resources(const cli_def_opts *o, Troupe__Resources *r)
{
	troupe__resources__init(r);
	if (o->cpu_milli == 0 && o->mem_bytes == 0)
		return NULL;
	r->cpu_milli = o->cpu_milli;
	r->mem_bytes = o->mem_bytes;
	return r;
}

static int
reg_task_register(troupe_client *c, const cli_def_opts *o)
{
	Troupe__RegisterTaskRequest req = TROUPE__REGISTER_TASK_REQUEST__INIT;
	Troupe__RegisterTaskReply  *rep = NULL;
	Troupe__TaskSpec            t = TROUPE__TASK_SPEC__INIT;
	Troupe__Resources           res;

	t.name = (char *)o->name;
	t.command = (char *)o->cmd;
	if (o->actor != NULL)
		t.actor = (char *)o->actor;
	t.retries = o->retries;
	t.timeout_ms = o->timeout_ms;
	t.resources = reg_resources(o, &res);
	t.n_env = o->env.n;
	t.env = o->env.v;
	req.task = &t;
	req.replace = o->replace;
	if (TROUPE_CALL(c, RegisterTask, &req, register_task, &rep) != 0)
		return cli_call_err(c);
	if (o->json && rep->task != NULL)
		cli_json_println(stdout, cli_json_message(&rep->task->base));
	else
		printf("task %s registered\n", o->name);
	troupe__register_task_reply__free_unpacked(rep, NULL);
	return CLI_EXIT_OK;
}

static int
reg_task_list(troupe_client *c, int json)
{
	static const char *const head[] = {"NAME", "ACTOR", "RETRIES",
	                                   "TIMEOUT", "COMMAND"};
	Troupe__ListTasksRequest req = TROUPE__LIST_TASKS_REQUEST__INIT;
	Troupe__ListTasksReply  *rep = NULL;
	cli_table                tab;
	int                      code;

	if (TROUPE_CALL(c, ListTasks, &req, list_tasks, &rep) != 0)
		return cli_call_err(c);
	cli_table_init(&tab, 5, head);
	for (size_t i = 0; i < rep->n_tasks; i++) {
		const Troupe__TaskSpec *t = rep->tasks[i];
		char                    retries[16], tmo[32];
		const char             *cells[5];

		if (json) {
			cli_json_println(stdout, cli_json_message(&t->base));
			continue;
		}
		snprintf(retries, sizeof(retries), "%u", t->retries);
		reg_secs(tmo, sizeof(tmo), t->timeout_ms);
		cells[0] = t->name;
		cells[1] = t->actor[0] != '\0' ? t->actor : "-";
		cells[2] = retries;
		cells[3] = tmo;
		cells[4] = t->command;
		cli_table_row(&tab, cells);
	}
	code = json ? CLI_EXIT_OK : cli_table_print(&tab, stdout);
	cli_table_free(&tab);
	troupe__list_tasks_reply__free_unpacked(rep, NULL);
	return code;
}

/* Prints a GetTaskReply. */
static int
reg_task_show(const ProtobufCMessage *m, int json)
{
	const Troupe__GetTaskReply *rep = (const Troupe__GetTaskReply *)m;

	if (rep->task == NULL)
		return cli_err("malformed GetTask reply");
	if (json)
		cli_json_println(stdout, cli_json_message(&rep->task->base));
	else
		reg_print_task(rep->task, stdout);
	return CLI_EXIT_OK;
}

/* Counts the replicas of a in each state. */
static void
reg_replica_counts(const Troupe__ActorStatus *a, unsigned *busy, unsigned *idle,
                   unsigned *booting)
{
	*busy = *idle = *booting = 0;
	for (size_t i = 0; i < a->n_replicas; i++) {
		switch (a->replicas[i]->state) {
		case TROUPE__REPLICA_STATE__REPLICA_BUSY: (*busy)++; break;
		case TROUPE__REPLICA_STATE__REPLICA_IDLE: (*idle)++; break;
		case TROUPE__REPLICA_STATE__REPLICA_BOOTING:
			(*booting)++;
			break;
		default: break;
		}
	}
}

static int
reg_print_actors(Troupe__ActorStatus **actors, size_t n, int json)
{
	static const char *const head[] = {"ENV", "REPLICAS", "BUSY",   "IDLE",
	                                   "TTL", "PROTOCOL", "COMMAND"};
	cli_table                tab;
	int                      code;

	cli_table_init(&tab, 7, head);
	for (size_t i = 0; i < n; i++) {
		const Troupe__ActorStatus *a = actors[i];
		const Troupe__ActorEnv    *e = a->env;
		char        reps[32], busy[16], idle[16], ttl[16];
		const char *cells[7];
		unsigned    nb, ni, nboot;

		if (json) {
			cli_json_println(stdout, cli_json_message(&a->base));
			continue;
		}
		reg_replica_counts(a, &nb, &ni, &nboot);
		snprintf(reps, sizeof(reps), "%zu/%u", a->n_replicas,
		         e != NULL ? e->replica_count : 0);
		snprintf(busy, sizeof(busy), "%u", nb);
		snprintf(idle, sizeof(idle), "%u", ni);
		snprintf(ttl, sizeof(ttl), "%us",
		         e != NULL && e->ttl_seconds > 0 ? e->ttl_seconds : 90);
		cells[0] = a->key;
		cells[1] = reps;
		cells[2] = busy;
		cells[3] = idle;
		cells[4] = ttl;
		cells[5] = e != NULL
		               ? cli_enum_name(&troupe__protocol__descriptor,
		                               e->protocol)
		               : "-";
		cells[6] = e != NULL ? e->command : "-";
		cli_table_row(&tab, cells);
	}
	code = json ? CLI_EXIT_OK : cli_table_print(&tab, stdout);
	cli_table_free(&tab);
	return code;
}

/* Prints a table of a's replicas: worker, pid, state, items served, idle
 * time left; with `env` non-NULL, an ENV column first. */
static int
reg_print_replicas(const Troupe__ActorStatus *a, const char *env)
{
	static const char *const head[] = {"ENV",   "WORKER", "PID",
	                                   "STATE", "ITEMS",  "IDLE LEFT"};
	cli_table                tab;
	int                      off = env != NULL ? 0 : 1;
	int                      code;

	cli_table_init(&tab, 6 - off, head + off);
	for (size_t i = 0; i < a->n_replicas; i++) {
		const Troupe__ReplicaInfo *r = a->replicas[i];
		char                       pid[16], items[24], left[32];
		const char                *cells[6];

		snprintf(pid, sizeof(pid), "%u", r->pid);
		snprintf(items, sizeof(items), "%llu",
		         (unsigned long long)r->items_served);
		if (r->state == TROUPE__REPLICA_STATE__REPLICA_IDLE)
			cli_fmt_dur(left, sizeof(left), r->idle_ms_left);
		else
			snprintf(left, sizeof(left), "-");
		cells[0] = env;
		cells[1] = r->worker;
		cells[2] = pid;
		cells[3] =
		    cli_enum_name(&troupe__replica_state__descriptor, r->state);
		cells[4] = items;
		cells[5] = left;
		cli_table_row(&tab, cells + off);
	}
	code = cli_table_print(&tab, stdout);
	cli_table_free(&tab);
	return code;
}

static int
reg_actor_list(troupe_client *c, int json)
{
	Troupe__ListActorsRequest req = TROUPE__LIST_ACTORS_REQUEST__INIT;
	Troupe__ListActorsReply  *rep = NULL;
	int                       code;

	if (TROUPE_CALL(c, ListActors, &req, list_actors, &rep) != 0)
		return cli_call_err(c);
	code = reg_print_actors(rep->actors, rep->n_actors, json);
	for (size_t i = 0; !json && code == CLI_EXIT_OK && i < rep->n_actors;
	     i++) {
		if (rep->actors[i]->n_replicas == 0)
			continue;
		putchar('\n');
		code = reg_print_replicas(rep->actors[i], rep->actors[i]->key);
	}
	troupe__list_actors_reply__free_unpacked(rep, NULL);
	return code;
}

/* Prints a GetActorReply: the environment, then its replicas. */
static int
reg_actor_show(const ProtobufCMessage *m, int json)
{
	Troupe__GetActorReply *rep = (Troupe__GetActorReply *)m;
	int                    code;

	if (rep->actor == NULL)
		return cli_err("malformed GetActor reply");
	if (json)
		return reg_print_actors(&rep->actor, 1, 1);
	code = reg_print_actors(&rep->actor, 1, 0);
	if (code == CLI_EXIT_OK && rep->actor->n_replicas > 0) {
		putchar('\n');
		code = reg_print_replicas(rep->actor, NULL);
	}
	return code;
}

static int
reg_actor_create(troupe_client *c, const cli_def_opts *o)
{
	Troupe__RegisterActorRequest req = TROUPE__REGISTER_ACTOR_REQUEST__INIT;
	Troupe__RegisterActorReply  *rep = NULL;
	Troupe__ActorEnv             e = TROUPE__ACTOR_ENV__INIT;
	Troupe__Resources            res;

	e.name = (char *)o->name;
	e.command = (char *)o->cmd;
	e.replica_count = o->replicas;
	e.ttl_seconds = o->ttl_s;
	e.protocol = (Troupe__Protocol)o->protocol;
	e.resources = reg_resources(o, &res);
	e.n_env = o->env.n;
	e.env = o->env.v;
	e.max_items = o->max_items;
	req.env = &e;
	req.replace = o->replace;
	if (TROUPE_CALL(c, RegisterActor, &req, register_actor, &rep) != 0)
		return cli_call_err(c);
	if (o->json && rep->env != NULL)
		cli_json_println(stdout, cli_json_message(&rep->env->base));
	else
		printf("actor %s created\n", o->name);
	troupe__register_actor_reply__free_unpacked(rep, NULL);
	return CLI_EXIT_OK;
}

/* What `troupe task` and `troupe actor` do differently; the rest (help,
 * parsing, connecting, get and delete) is reg_main's. */
typedef struct reg_kind {
	const char *word;   /* the command word, and what messages call one */
	const char *help;   /* its --help */
	const char *create; /* the subcommand that registers one */
	int (*parse_create)(int argc, char **argv, int first, cli_def_opts *o,
	                    char *err, size_t errlen);
	int (*create_fn)(troupe_client *c, const cli_def_opts *o);
	int (*list_fn)(troupe_client *c, int json);
	const char *get, *del; /* its Get and Delete methods */
	int (*show_fn)(const ProtobufCMessage *rep, int json); /* Get's */
} reg_kind;

static const reg_kind reg_task = {
    .word = "task",
    .help = reg_task_help,
    .create = "register",
    .parse_create = cli_parse_task_register,
    .create_fn = reg_task_register,
    .list_fn = reg_task_list,
    .get = "GetTask",
    .del = "DeleteTask",
    .show_fn = reg_task_show,
};

static const reg_kind reg_actor = {
    .word = "actor",
    .help = reg_actor_help,
    .create = "create",
    .parse_create = cli_parse_actor_create,
    .create_fn = reg_actor_create,
    .list_fn = reg_actor_list,
    .get = "GetActor",
    .del = "DeleteActor",
    .show_fn = reg_actor_show,
};

/* Calls method (GetTask, DeleteActor, ...), whose request is one field,
 * name (api.proto), with name.  The message types come from the service's
 * descriptor.  Returns 0 with *rep the reply (the caller frees it with
 * protobuf_c_message_free_unpacked), or prints why and returns
 * CLI_EXIT_FAIL. */
static int
reg_call_named(troupe_client *c, const char *method, const char *name,
               ProtobufCMessage **rep)
{
	const ProtobufCMethodDescriptor *m;
	const ProtobufCFieldDescriptor  *f = NULL;
	ProtobufCMessage                *req = NULL;
	int                              code = CLI_EXIT_OK;

	*rep = NULL;
	m = protobuf_c_service_descriptor_get_method_by_name(
	    &troupe__troupe__descriptor, method);
	if (m != NULL)
		f = protobuf_c_message_descriptor_get_field_by_name(m->input,
		                                                    "name");
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING)
		return cli_err("%s takes no name", method);
	if ((req = calloc(1, m->input->sizeof_message)) == NULL)
		return cli_err("out of memory");
	protobuf_c_message_init(m->input, req);
	*(const char **)((char *)req + f->offset) = name;
	if (troupe_call(c, method, req, m->output, rep) != 0)
		code = cli_call_err(c);
	free(req);
	return code;
}

/* Runs the subcommand argv[first] of k. */
static int
reg_main(const reg_kind *k, int argc, char **argv, int first)
{
	const char       *sub = first < argc ? argv[first] : NULL;
	cli_def_opts      o;
	troupe_client    *c = NULL;
	ProtobufCMessage *rep = NULL;
	char              err[256];
	int               code, rv;

	memset(&o, 0, sizeof(o));
	if (sub == NULL || strcmp(sub, "--help") == 0 ||
	    strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		fputs(k->help, sub == NULL ? stderr : stdout);
		return sub == NULL ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(sub, k->create) == 0) {
		rv = k->parse_create(argc, argv, first + 1, &o, err,
		                     sizeof(err));
	} else if (strcmp(sub, "list") == 0) {
		cli_plain_opts p;

		rv = cli_parse_plain(argc, argv, first + 1, &p, err,
		                     sizeof(err));
		o.g = p.g;
		o.help = p.help;
		o.json = p.json;
	} else if (strcmp(sub, "get") == 0 || strcmp(sub, "delete") == 0) {
		rv =
		    cli_parse_name(argc, argv, first + 1, &o, err, sizeof(err));
	} else {
		snprintf(err, sizeof(err), "unknown command '%s %s'", k->word,
		         sub);
		return cli_usage(k->word, err);
	}
	if ((code = reg_parsed(rv, o.help, k->word, k->help, err)) >= 0)
		goto fail;
	if ((code = cli_connect(&o.g, &c)) != 0)
		goto fail;
	if (strcmp(sub, k->create) == 0) {
		code = k->create_fn(c, &o);
	} else if (strcmp(sub, "list") == 0) {
		code = k->list_fn(c, o.json);
	} else if (strcmp(sub, "get") == 0) {
		code = reg_call_named(c, k->get, o.name, &rep);
		if (code == CLI_EXIT_OK)
			code = k->show_fn(rep, o.json);
	} else {
		code = reg_call_named(c, k->del, o.name, &rep);
		if (code == CLI_EXIT_OK)
			printf("%s %s deleted\n", k->word, o.name);
	}
fail:
	if (rep != NULL)
		protobuf_c_message_free_unpacked(rep, NULL);
	troupe_client_close(c);
	cli_def_opts_free(&o);
	return code;
}

int
cli_cmd_task(int argc, char **argv, int first)
{
	return reg_main(&reg_task, argc, argv, first);
}

int
cli_cmd_actor(int argc, char **argv, int first)
{
	return reg_main(&reg_actor, argc, argv, first);
}

/* Parses a `CMD [--json]` command and connects.  Returns -1 to go on. */
static int
reg_plain_start(const char *cmd, const char *help, int argc, char **argv,
                int first, cli_plain_opts *o, troupe_client **c)
{
	char err[256];
	int  code;

	*c = NULL;
	/* Parse first: o->help is only set once parsing has run (argument
	 * evaluation order is unspecified). */
	code = cli_parse_plain(argc, argv, first, o, err, sizeof(err));
	code = reg_parsed(code, o->help, cmd, help, err);
	if (code >= 0)
		return code;
	if (cli_connect(&o->g, c) != 0)
		return CLI_EXIT_FAIL;
	return -1;
}

int
cli_cmd_actors(int argc, char **argv, int first)
{
	cli_plain_opts o;
	troupe_client *c = NULL;
	int            code;

	if ((code = reg_plain_start("actors", reg_actors_help, argc, argv,
	                            first, &o, &c)) >= 0)
		return code;
	code = reg_actor_list(c, o.json);
	troupe_client_close(c);
	return code;
}

int
cli_cmd_workers(int argc, char **argv, int first)
{
	static const char *const   head[] = {"NAME",      "HOST",  "SLOTS",
	                                     "RUNNING",   "STATE", "DONE",
	                                     "LAST SEEN", "ID"};
	Troupe__ListWorkersRequest req = TROUPE__LIST_WORKERS_REQUEST__INIT;
	Troupe__ListWorkersReply  *rep = NULL;
	cli_plain_opts             o;
	troupe_client             *c = NULL;
	cli_table                  tab;
	int64_t                    now = cli_wall_ms();
	int                        code;

	if ((code = reg_plain_start("workers", reg_workers_help, argc, argv,
	                            first, &o, &c)) >= 0)
		return code;
	if (TROUPE_CALL(c, ListWorkers, &req, list_workers, &rep) != 0) {
		code = cli_call_err(c);
		troupe_client_close(c);
		return code;
	}
	cli_table_init(&tab, 8, head);
	for (size_t i = 0; i < rep->n_workers; i++) {
		const Troupe__WorkerInfo *w = rep->workers[i];
		char        slots[16], running[16], done[24], seen[48], d[32];
		const char *cells[8];

		if (o.json) {
			cli_json_println(stdout, cli_json_message(&w->base));
			continue;
		}
		snprintf(slots, sizeof(slots), "%u", w->slots);
		snprintf(running, sizeof(running), "%u", w->running);
		snprintf(done, sizeof(done), "%llu",
		         (unsigned long long)w->items_done);
		if (w->last_seen_ms > 0) {
			cli_fmt_dur(d, sizeof(d), now - w->last_seen_ms);
			snprintf(seen, sizeof(seen), "%s ago", d);
		} else {
			snprintf(seen, sizeof(seen), "-");
		}
		cells[0] = w->name;
		cells[1] = w->host;
		cells[2] = slots;
		cells[3] = running;
		cells[4] =
		    cli_enum_name(&troupe__worker_state__descriptor, w->state);
		cells[5] = done;
		cells[6] = seen;
		cells[7] = w->id;
		cli_table_row(&tab, cells);
	}
	code = o.json ? CLI_EXIT_OK : cli_table_print(&tab, stdout);
	cli_table_free(&tab);
	troupe__list_workers_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return code;
}

int
cli_cmd_health(int argc, char **argv, int first)
{
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	cli_plain_opts           o;
	troupe_client           *c = NULL;
	char                     up[32];
	int                      code;

	if ((code = reg_plain_start("health", reg_health_help, argc, argv,
	                            first, &o, &c)) >= 0)
		return code;
	if (TROUPE_CALL(c, GetHealth, &req, get_health, &rep) != 0) {
		code = cli_call_err(c);
		troupe_client_close(c);
		return code;
	}
	if (o.json) {
		cli_json_println(stdout, cli_json_message(&rep->base));
	} else {
		cli_fmt_dur(up, sizeof(up), rep->uptime_ms);
		printf("scheduler %s at %s: up %s, %u worker%s, %u active "
		       "execution%s, state in %s\n",
		       rep->version, troupe_client_addr(c), up, rep->workers,
		       rep->workers == 1 ? "" : "s", rep->active_executions,
		       rep->active_executions == 1 ? "" : "s",
		       rep->state_dir[0] != '\0' ? rep->state_dir : "?");
	}
	troupe__get_health_reply__free_unpacked(rep, NULL);
	troupe_client_close(c);
	return CLI_EXIT_OK;
}
