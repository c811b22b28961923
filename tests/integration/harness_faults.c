/*
 * Helpers for the fault tests (see harness_faults.h).
 *
 * Threading: the test's one thread does everything.  Children are made
 * by harness.c's h_launch (see harness_internal.h), as the harness makes
 * its own daemons.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "harness_faults.h"
#include "harness_internal.h"
#include "skip.h"

#define HF_MAX_PROCS  16
#define HF_MAX_AT_END 32

struct hf_proc {
	char   name[32];
	char   netns[64];
	char   log[4200];
	char **argv; /* NULL-terminated, owned by the cluster */
	char **env;  /* likewise */
	pid_t  pid;
};

/* What the running test started; cleaned up by hf_teardown or
 * hf_stop_all + the end of the test. */
static hf_proc hf_procs[HF_MAX_PROCS];
static int     hf_nprocs;
static char   *hf_ends[HF_MAX_AT_END];
static int     hf_nends;

void
hf_sleep_ms(int ms)
{
	h_sleep_ms(ms);
}

uint64_t
hf_rand(uint64_t *s)
{
	uint64_t x = *s != 0 ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

const char *
hf_bin(h_cluster *c, const char *name)
{
	return h_fmt(c, "%s/%s/%s", h_bin_dir(c),
	             strcmp(name, "troupe") == 0 ? "client" : "daemon", name);
}

int
hf_sh(const char *fmt, ...)
{
	va_list ap;
	char   *cmd;
	int     st;

	va_start(ap, fmt);
	cmd = h_vasprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	st = system(cmd);
	fprintf(stderr, "harness_faults: # %s  -> %d\n", cmd,
	        st == -1          ? -1
	        : WIFEXITED(st)   ? WEXITSTATUS(st)
	        : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
	                          : st);
	free(cmd);
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void
hf_at_end(const char *fmt, ...)
{
	va_list ap;

	if (hf_nends == HF_MAX_AT_END)
		fail_msg("harness_faults: too many hf_at_end commands");
	va_start(ap, fmt);
	hf_ends[hf_nends++] = h_vasprintf(fmt, ap);
	va_end(ap);
}

void
hf_need_root(const char *why)
{
	if (geteuid() == 0)
		return;
	T_SKIP("%s needs root (euid %d)", why, (int)geteuid());
}

static void
hf_start(h_cluster *c, hf_proc *p)
{
	p->pid = h_launch(c, p->argv, p->env, p->netns, p->log);
}

hf_proc *
hf_spawn(h_cluster *c, const char *name, const char *netns, char *const env[],
         char *const argv[])
{
	hf_proc *p;
	size_t   n = 0;

	if (hf_nprocs == HF_MAX_PROCS)
		fail_msg("harness_faults: too many processes");
	p = &hf_procs[hf_nprocs++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->netns, sizeof(p->netns), "%s", netns ? netns : "");
	snprintf(p->log, sizeof(p->log), "%s/h-%s.log", h_dir(c), name);
	while (argv[n] != NULL)
		n++;
	p->argv = (char **)h_keep(c, calloc(n + 1, sizeof(char *)));
	for (size_t i = 0; i < n; i++)
		p->argv[i] = h_fmt(c, "%s", argv[i]);
	p->env = h_env(c, false, env);
	hf_start(c, p);
	return p;
}

hf_proc *
hf_spawn_worker(h_cluster *c, const char *name, int slots, char *const env[])
{
	char  nslots[16];
	char *argv[16];
	int   k = 0;

	snprintf(nslots, sizeof(nslots), "%d", slots);
	if (hf_sh("mkdir -p %s", h_path(c, "%s", name)) != 0)
		h_fail(c, "cannot make the home of %s", name);
	argv[k++] = (char *)hf_bin(c, "troupe-worker");
	argv[k++] = "--home";
	argv[k++] = (char *)h_path(c, "%s", name);
	argv[k++] = "--scheduler";
	argv[k++] = (char *)h_worker_addr(c);
	argv[k++] = "--name";
	argv[k++] = (char *)name;
	argv[k++] = "--slots";
	argv[k++] = nslots;
	if (geteuid() == 0)
		argv[k++] = "--allow-root"; /* else a root worker refuses */
	if (h_token_file(c) != NULL) {
		argv[k++] = "--token-file";
		argv[k++] = (char *)h_token_file(c);
	}
	argv[k] = NULL;
	return hf_spawn(c, name, NULL, env, argv);
}

void
hf_respawn(h_cluster *c, hf_proc *p)
{
	if (p->pid > 0)
		h_fail(c, "hf_respawn: %s still runs", p->name);
	hf_start(c, p);
}

pid_t
hf_pid(const hf_proc *p)
{
	return p->pid;
}

bool
hf_alive(h_cluster *c, hf_proc *p)
{
	int st;

	if (p->pid <= 0)
		return false;
	if (waitpid(p->pid, &st, WNOHANG) != p->pid)
		return true;
	fprintf(stderr, "harness_faults: %s (pid %d) ended: %s\n", p->name,
	        (int)p->pid, h_status_str(c, st));
	kill(-p->pid, SIGKILL);
	p->pid = 0;
	return false;
}

int
hf_kill(h_cluster *c, hf_proc *p, int sig)
{
	if (p->pid <= 0)
		h_fail(c, "hf_kill: %s is not running", p->name);
	return h_kill_pid(c, p->name, &p->pid, sig);
}

void
hf_dump_logs(h_cluster *c)
{
	for (int i = 0; i < hf_nprocs; i++) {
		bool seen = false;

		/* A respawned process has one log; print it once. */
		for (int j = 0; j < i; j++)
			seen |= strcmp(hf_procs[j].log, hf_procs[i].log) == 0;
		if (!seen)
			h_dump_file(hf_procs[i].name, hf_procs[i].log);
	}
	fflush(stderr);
}

void
hf_stop_all(h_cluster *c)
{
	char bad[512] = "";

	/* Workers were started after their scheduler: stop in reverse. */
	for (int i = hf_nprocs - 1; i >= 0; i--) {
		const char *why =
		    h_stop_pid(c, hf_procs[i].name, &hf_procs[i].pid);

		if (why != NULL)
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
			         "%s; ", why);
	}
	if (bad[0] != '\0') {
		hf_dump_logs(c);
		h_fail(c, "%s", bad);
	}
}

/* Kills whatever still runs and runs the end commands; leaves the state
 * empty for the next test. */
static void
hf_cleanup(void)
{
	for (int i = 0; i < hf_nprocs; i++)
		if (hf_procs[i].pid > 0)
			kill(-hf_procs[i].pid, SIGKILL);
	for (int i = 0; i < hf_nprocs; i++)
		if (hf_procs[i].pid > 0)
			h_wait_pid(hf_procs[i].pid, H_STOP_MS);
	hf_nprocs = 0;
	while (hf_nends > 0) {
		char *cmd = hf_ends[--hf_nends];

		(void)hf_sh("%s", cmd);
		free(cmd);
	}
}

int
hf_teardown(void **state)
{
	bool any = false;

	for (int i = 0; i < hf_nprocs; i++)
		any |= hf_procs[i].pid > 0;
	if (any) {
		fprintf(stderr, "harness_faults: the test ended with "
		                "processes running; their logs:\n");
		for (int i = 0; i < hf_nprocs; i++)
			if (hf_procs[i].pid > 0)
				h_dump_file(hf_procs[i].name, hf_procs[i].log);
	}
	hf_cleanup();
	return h_teardown(state);
}

size_t
hf_expect_seq(uint64_t i, char *buf, size_t len, void *arg)
{
	const hf_seq *s = arg;
	int           n = snprintf(buf, len, "%s%llu%s", s->prefix,
	                           (unsigned long long)(i + 1), s->suffix);

	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

hf_tally
hf_check_outputs(h_cluster *c, const char *id, uint64_t n, hf_expect_fn expect,
                 void *arg)
{
	Troupe__ItemResult **items;
	size_t               got = h_outputs(c, id, &items);
	hf_tally             t = {.n = got};
	int                  shown = 0;

	for (size_t i = 0; i < got; i++) {
		const Troupe__ItemResult *it = items[i];
		char                      want[512];
		size_t wlen = expect(i, want, sizeof(want), arg);
		bool   ok;

		ok = it->index == i &&
		     it->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED &&
		     it->attempts >= 1 && it->output.len == wlen &&
		     memcmp(it->output.data, want, wlen) == 0;
		if (it->attempts > t.max_attempts)
			t.max_attempts = it->attempts;
		if (it->attempts > 1)
			t.reruns += it->attempts - 1;
		if (ok)
			continue;
		t.bad++;
		if (shown++ < 10)
			fprintf(stderr,
			        "item %zu: index %llu, state %d, attempts %u, "
			        "worker %s, output '%.*s' (want '%.*s'), "
			        "error '%s'\n",
			        i, (unsigned long long)it->index,
			        (int)it->state, it->attempts, it->worker,
			        (int)it->output.len,
			        (const char *)it->output.data, (int)wlen, want,
			        it->error);
	}
	if (got != n || t.bad > 0) {
		h_dump_logs(c);
		hf_dump_logs(c);
		fail_msg("execution %s: %zu outputs (want %llu), %llu not as "
		         "expected",
		         id, got, (unsigned long long)n,
		         (unsigned long long)t.bad);
	}
	return t;
}

int
hf_replica_pids(h_cluster *c, const char *key, const char *worker,
                bool busy_only, int *pids, int max)
{
	Troupe__ListActorsRequest req = TROUPE__LIST_ACTORS_REQUEST__INIT;
	Troupe__ListActorsReply  *rep = NULL;
	int                       n = 0, rv;

	if ((rv = H_CALL(c, ListActors, &req, list_actors, &rep)) != 0)
		h_fail(c, "ListActors: %s (%s)", troupe_strerror(rv),
		       troupe_client_error(h_client(c)));
	for (size_t a = 0; a < rep->n_actors; a++) {
		const Troupe__ActorStatus *st = rep->actors[a];

		if (key != NULL && strcmp(st->key, key) != 0)
			continue;
		for (size_t r = 0; r < st->n_replicas && n < max; r++) {
			const Troupe__ReplicaInfo *ri = st->replicas[r];

			if (worker != NULL && strcmp(ri->worker, worker) != 0)
				continue;
			if (busy_only &&
			    ri->state != TROUPE__REPLICA_STATE__REPLICA_BUSY)
				continue;
			if (ri->pid > 0)
				pids[n++] = (int)ri->pid;
		}
	}
	return n;
}

bool
hf_succeeded_at_least(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->succeeded >= *(uint64_t *)arg;
}

bool
hf_running_at_least(const Troupe__Execution *e, void *arg)
{
	return e->counts != NULL && e->counts->running >= *(uint64_t *)arg;
}

int
hf_procs_with(const char *env, const char *comm, int *pids, int max)
{
	static char    envbuf[256 * 1024];
	char           stat[512], name[64];
	DIR           *d = opendir("/proc");
	struct dirent *de;
	int            n = 0;

	if (d == NULL)
		fail_msg("harness_faults: cannot open /proc");
	while ((de = readdir(d)) != NULL) {
		int     pid = atoi(de->d_name);
		ssize_t len;
		bool    has = false;
		char   *st;

		if (pid <= 0 || !isdigit((unsigned char)de->d_name[0]))
			continue;
		if ((len = h_proc_read(pid, "environ", envbuf,
		                       sizeof(envbuf))) <= 0)
			continue;
		for (ssize_t i = 0; i < len && !has;
		     i += (ssize_t)strlen(envbuf + i) + 1)
			has = strcmp(envbuf + i, env) == 0;
		if (!has)
			continue;
		/* The state follows the ")" closing the name: Z, a zombie. */
		if (h_proc_read(pid, "stat", stat, sizeof(stat)) <= 0 ||
		    (st = strrchr(stat, ')')) == NULL || st[2] == 'Z')
			continue;
		if (comm != NULL) {
			if (h_proc_read(pid, "comm", name, sizeof(name)) <= 0)
				continue;
			name[strcspn(name, "\n")] = '\0';
			if (strcmp(name, comm) != 0)
				continue;
		}
		if (pids != NULL && n < max)
			pids[n] = pid;
		n++;
	}
	closedir(d);
	return n;
}

int
hf_wait_procs(const char *env, const char *comm, int want, int ms)
{
	int64_t deadline = h_now_ms() + ms;
	int     n;

	while ((n = hf_procs_with(env, comm, NULL, 0)) != want &&
	       h_now_ms() < deadline)
		hf_sleep_ms(50);
	return n;
}

void
hf_wait_no_procs(h_cluster *c, const char *env, const char *comm, int ms,
                 const char *what)
{
	int pids[64], n;

	if (hf_wait_procs(env, comm, 0, ms) == 0 ||
	    (n = hf_procs_with(env, comm, pids, 64)) == 0)
		return;
	hf_sh("ps -o pid,ppid,pgid,stat,args -p %d", pids[0]);
	for (int i = 0; i < n && i < 64; i++)
		kill(pids[i], SIGKILL);
	h_fail(c, "%s: %d processes with %s%s%s still alive after %d ms", what,
	       n, env, comm ? " named " : "", comm ? comm : "", ms);
}
