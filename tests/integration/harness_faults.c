/*
 * Helpers for the fault tests (see harness_faults.h).
 *
 * Threading: the test's one thread does everything.  nng runs threads of
 * its own once a client is open, so children are made with fork()
 * followed only by async-signal-safe calls (setpgid, prctl, setns, dup2,
 * chdir) and execve() with an environment built beforehand.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "harness_faults.h"

#define HF_MAX_PROCS  16
#define HF_MAX_AT_END 32
#define HF_STOP_MS    20000
#define HF_LOG_TAIL   (32 * 1024)

extern char **environ;

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
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
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

static char *
hf_vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0 || s == NULL)
		fail_msg("harness_faults: out of memory");
	return s;
}

static char *
hf_fmt(h_cluster *c, const char *fmt, ...)
{
	va_list ap;
	char   *s;

	va_start(ap, fmt);
	s = hf_vfmt(fmt, ap);
	va_end(ap);
	return h_keep(c, s);
}

const char *
hf_bin(h_cluster *c, const char *name)
{
	const char *bin = getenv("TROUPE_BIN_DIR");

	if (bin == NULL || bin[0] == '\0')
		bin = TROUPE_BIN_DIR;
	return hf_fmt(c, "%s/%s/%s", bin,
	              strcmp(name, "troupe") == 0 ? "client" : "daemon", name);
}

int
hf_sh(const char *fmt, ...)
{
	va_list ap;
	char   *cmd;
	int     st;

	va_start(ap, fmt);
	cmd = hf_vfmt(fmt, ap);
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
	hf_ends[hf_nends++] = hf_vfmt(fmt, ap);
	va_end(ap);
}

void
hf_need_root(const char *why)
{
	if (geteuid() == 0)
		return;
	fprintf(stderr, "SKIPPED: %s needs root (euid %d)\n", why,
	        (int)geteuid());
	skip();
}

void
hf_known_bug(const char *why)
{
	if (getenv("TROUPE_FAULT_PENDING") != NULL)
		return;
	fprintf(stderr,
	        "SKIPPED (known bug, set TROUPE_FAULT_PENDING=1 to run): %s\n",
	        why);
	skip();
}

/* The environment of a child: ours without TROUPE_* and PATH, then
 * TROUPE_HOME, PATH with the build's binaries first, then extra. */
static char **
hf_env(h_cluster *c, char *const extra[])
{
	size_t      n = 0, k = 0, x = 0;
	char      **env;
	const char *path = getenv("PATH");
	const char *bin = getenv("TROUPE_BIN_DIR");

	if (bin == NULL || bin[0] == '\0')
		bin = TROUPE_BIN_DIR;
	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[x] != NULL)
		x++;
	env = (char **)h_keep(c, calloc(n + x + 4, sizeof(char *)));
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "TROUPE_", 7) == 0 ||
		    strncmp(environ[i], "PATH=", 5) == 0)
			continue;
		env[k++] = environ[i];
	}
	env[k++] = hf_fmt(c, "TROUPE_HOME=%s", h_dir(c));
	env[k++] = hf_fmt(c, "PATH=%s/client:%s/daemon:%s", bin, bin,
	                  path != NULL ? path : "/usr/bin:/bin");
	for (size_t i = 0; i < x; i++)
		env[k++] = hf_fmt(c, "%s", extra[i]);
	env[k] = NULL;
	return env;
}

static void
hf_start(h_cluster *c, hf_proc *p)
{
	int   fin, fout, fns = -1;
	FILE *log;
	pid_t pid;

	if ((log = fopen(p->log, "a")) != NULL) {
		fprintf(log, "== harness_faults: starting%s%s:",
		        p->netns[0] ? " in netns " : "", p->netns);
		for (int i = 0; p->argv[i] != NULL; i++)
			fprintf(log, " %s", p->argv[i]);
		fprintf(log, "\n");
		fclose(log);
	}
	fin = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fout = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (p->netns[0] != '\0') {
		char path[128];

		snprintf(path, sizeof(path), "/run/netns/%s", p->netns);
		if ((fns = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			fail_msg("harness_faults: %s: %s", path,
			         strerror(errno));
	}
	if (fin < 0 || fout < 0)
		fail_msg("harness_faults: cannot open %s: %s", p->log,
		         strerror(errno));
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
		fail_msg("harness_faults: fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fns >= 0 && setns(fns, CLONE_NEWNET) != 0)
			_exit(125);
		if (dup2(fin, 0) < 0 || dup2(fout, 1) < 0 || dup2(fout, 2) < 0)
			_exit(126);
		if (chdir(h_dir(c)) != 0)
			_exit(126);
		execve(p->argv[0], p->argv, p->env);
		_exit(127);
	}
	setpgid(pid, pid);
	close(fin);
	close(fout);
	if (fns >= 0)
		close(fns);
	p->pid = pid;
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
		p->argv[i] = hf_fmt(c, "%s", argv[i]);
	p->env = hf_env(c, env);
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

static const char *
hf_status(char *buf, size_t len, int st)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "wait status %#x", st);
	return buf;
}

/* Waits up to ms for pid; its wait status, or -1 when it still runs. */
static int
hf_wait_pid(pid_t pid, int ms)
{
	int64_t deadline = h_now_ms() + ms;
	int     st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if ((r < 0 && errno != EINTR) || h_now_ms() >= deadline)
			return -1;
		hf_sleep_ms(10);
	}
}

bool
hf_alive(h_cluster *c, hf_proc *p)
{
	int  st;
	char how[64];

	if (p->pid <= 0)
		return false;
	if (waitpid(p->pid, &st, WNOHANG) != p->pid)
		return true;
	fprintf(stderr, "harness_faults: %s (pid %d) ended: %s\n", p->name,
	        (int)p->pid, hf_status(how, sizeof(how), st));
	kill(-p->pid, SIGKILL);
	p->pid = 0;
	return false;
}

int
hf_kill(h_cluster *c, hf_proc *p, int sig)
{
	int st;

	if (p->pid <= 0)
		h_fail(c, "hf_kill: %s is not running", p->name);
	kill(p->pid, sig);
	if ((st = hf_wait_pid(p->pid, HF_STOP_MS)) == -1) {
		kill(-p->pid, SIGKILL);
		hf_wait_pid(p->pid, HF_STOP_MS);
		p->pid = 0;
		h_fail(c, "%s did not exit within %d ms of signal %d", p->name,
		       HF_STOP_MS, sig);
	}
	kill(-p->pid, SIGKILL);
	p->pid = 0;
	return st;
}

static void
hf_dump_file(const char *title, const char *path)
{
	FILE  *f = fopen(path, "rb");
	char   buf[4096];
	long   size;
	size_t n;

	fprintf(stderr, "----- %s (%s) -----\n", title, path);
	if (f == NULL) {
		fprintf(stderr, "(cannot open: %s)\n", strerror(errno));
		return;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	if (size > HF_LOG_TAIL) {
		fseek(f, size - HF_LOG_TAIL, SEEK_SET);
		fprintf(stderr, "(... %ld bytes skipped)\n",
		        size - HF_LOG_TAIL);
	} else
		fseek(f, 0, SEEK_SET);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
	fprintf(stderr, "----- end of %s -----\n", title);
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
			hf_dump_file(hf_procs[i].name, hf_procs[i].log);
	}
	fflush(stderr);
}

void
hf_stop_all(h_cluster *c)
{
	char bad[512] = "";
	char how[64];

	/* Workers were started after their scheduler: stop in reverse. */
	for (int i = hf_nprocs - 1; i >= 0; i--) {
		hf_proc *p = &hf_procs[i];
		int      st;

		if (p->pid <= 0)
			continue;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
			         "%s had died (%s); ", p->name,
			         hf_status(how, sizeof(how), st));
			kill(-p->pid, SIGKILL);
			p->pid = 0;
			continue;
		}
		kill(p->pid, SIGTERM);
		if ((st = hf_wait_pid(p->pid, HF_STOP_MS)) == -1) {
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
			         "%s did not exit within %d ms of SIGTERM; ",
			         p->name, HF_STOP_MS);
			kill(p->pid, SIGKILL);
			hf_wait_pid(p->pid, HF_STOP_MS);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
			         "%s: %s after SIGTERM; ", p->name,
			         hf_status(how, sizeof(how), st));
		kill(-p->pid, SIGKILL);
		p->pid = 0;
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
			hf_wait_pid(hf_procs[i].pid, HF_STOP_MS);
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
				hf_dump_file(hf_procs[i].name, hf_procs[i].log);
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

/* Reads /proc/pid/what into buf (NULs kept, NUL-terminated); returns the
 * length read, or -1. */
static ssize_t
hf_proc_read(int pid, const char *what, char *buf, size_t len)
{
	char    path[64];
	ssize_t n, got = 0;
	int     fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((size_t)got < len - 1 &&
	       (n = read(fd, buf + got, len - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
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
		if ((len = hf_proc_read(pid, "environ", envbuf,
		                        sizeof(envbuf))) <= 0)
			continue;
		for (ssize_t i = 0; i < len && !has;
		     i += (ssize_t)strlen(envbuf + i) + 1)
			has = strcmp(envbuf + i, env) == 0;
		if (!has)
			continue;
		/* The state follows the ")" closing the name: Z, a zombie. */
		if (hf_proc_read(pid, "stat", stat, sizeof(stat)) <= 0 ||
		    (st = strrchr(stat, ')')) == NULL || st[2] == 'Z')
			continue;
		if (comm != NULL) {
			if (hf_proc_read(pid, "comm", name, sizeof(name)) <= 0)
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

void
hf_wait_no_procs(h_cluster *c, const char *env, const char *comm, int ms,
                 const char *what)
{
	int64_t deadline = h_now_ms() + ms;
	int     pids[64], n;

	while ((n = hf_procs_with(env, comm, pids, 64)) > 0 &&
	       h_now_ms() < deadline)
		hf_sleep_ms(50);
	if (n == 0)
		return;
	hf_sh("ps -o pid,ppid,pgid,stat,args -p %d", pids[0]);
	for (int i = 0; i < n && i < 64; i++)
		kill(pids[i], SIGKILL);
	h_fail(c, "%s: %d processes with %s%s%s still alive after %d ms", what,
	       n, env, comm ? " named " : "", comm ? comm : "", ms);
}
