/*
 * The integration-test harness (see harness.h).
 *
 * Threading: the test's one thread does everything.  nng starts threads of
 * its own as soon as a client is opened, so the children are created with
 * fork() followed only by async-signal-safe calls (setpgid, prctl, setns,
 * dup2, chdir) and execve() with an environment built beforehand.
 * harness_faults.c starts its processes with the same helpers
 * (harness_internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "harness_internal.h"

#define H_MAX_WORKERS 16
#define H_READY_MS    30000 /* ASan-built daemons start slowly */
#define H_LOG_TAIL    (48 * 1024)

extern char **environ;

typedef struct {
	char  name[32];
	char *argv[64];
	int   argc;
	char  log[4200];
	pid_t pid;
} h_proc;

struct h_cluster {
	char               dir[256];
	char               bin[4096];
	char               api[512];
	char               wlink[512];
	char               token[80];
	char               token_file[512];
	bool               tcp;
	bool               dumped;
	int                timeout_ms;
	int                nruns;
	h_proc             sched;
	h_proc             workers[H_MAX_WORKERS];
	int                nworkers;
	troupe_client     *client;
	void             **kept;
	size_t             nkept;
	size_t             capkept;
	ProtobufCMessage **msgs; /* unpacked replies kept until h_done */
	size_t             nmsgs;
	size_t             capmsgs;
	json_object      **jsons; /* parsed JSON kept until h_done */
	size_t             njsons;
	size_t             capjsons;
};

/* The cluster of the running test; h_teardown cleans it up when the test
 * failed before h_done. */
static h_cluster *h_current;

int64_t
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

char *
h_keep(h_cluster *c, char *p)
{
	if (p == NULL)
		fail_msg("harness: out of memory");
	if (c->nkept == c->capkept) {
		size_t n = c->capkept ? c->capkept * 2 : 64;
		void **k = realloc(c->kept, n * sizeof(*k));
		if (k == NULL)
			fail_msg("harness: out of memory");
		c->kept = k;
		c->capkept = n;
	}
	c->kept[c->nkept++] = p;
	return p;
}

char *
h_vasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0 || s == NULL)
		fail_msg("harness: out of memory");
	return s;
}

char *
h_vfmt(h_cluster *c, const char *fmt, va_list ap)
{
	return h_keep(c, h_vasprintf(fmt, ap));
}

char *
h_fmt(h_cluster *c, const char *fmt, ...)
{
	va_list ap;
	char   *s;

	va_start(ap, fmt);
	s = h_vfmt(c, fmt, ap);
	va_end(ap);
	return s;
}

const char *
h_path(h_cluster *c, const char *fmt, ...)
{
	va_list ap;
	char   *name;

	va_start(ap, fmt);
	name = h_vfmt(c, fmt, ap);
	va_end(ap);
	return h_fmt(c, "%s/%s", c->dir, name);
}

const char *
h_dir(h_cluster *c)
{
	return c->dir;
}

const char *
h_api_addr(h_cluster *c)
{
	return c->api;
}

const char *
h_bin_dir(h_cluster *c)
{
	return c->bin;
}

const char *
h_worker_addr(h_cluster *c)
{
	return c->wlink;
}

const char *
h_token(h_cluster *c)
{
	return c->tcp ? c->token : NULL;
}

const char *
h_token_file(h_cluster *c)
{
	return c->tcp ? c->token_file : NULL;
}

void
h_set_timeout(h_cluster *c, int ms)
{
	c->timeout_ms = ms;
}

char *
h_slurp(h_cluster *c, const char *path)
{
	FILE  *f = fopen(path, "rb");
	char  *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			char *b = realloc(buf, cap);
			if (b == NULL) {
				free(buf);
				fclose(f);
				fail_msg("harness: out of memory");
			}
			buf = b;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	return h_keep(c, buf);
}

const char *
h_quote(h_cluster *c, const char *s)
{
	size_t n = 3;
	char  *q, *p;

	for (const char *t = s; *t; t++)
		n += *t == '\'' ? 4 : 1;
	p = q = h_keep(c, malloc(n));
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

int
h_lines(const char *s)
{
	int n = 0;

	if (s == NULL)
		return 0;
	for (const char *p = s; *p; p++)
		if (*p == '\n')
			n++;
	if (*s != '\0' && s[strlen(s) - 1] != '\n')
		n++;
	return n;
}

int
h_wait_lines(h_cluster *c, const char *path, int want, int ms)
{
	int64_t deadline = h_now_ms() + ms;
	int     n;

	while ((n = h_lines(h_slurp(c, path))) < want && h_now_ms() < deadline)
		usleep(50000);
	return n;
}

int
h_split(h_cluster *c, const char *s, char ***lines)
{
	int    n = h_lines(s), i = 0;
	char  *copy = h_keep(c, strdup(s != NULL ? s : ""));
	char **v = (char **)h_keep(c, calloc((size_t)n + 1, sizeof(char *)));
	char  *p = copy;

	while (i < n) {
		char *nl = strchr(p, '\n');
		v[i++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	*lines = v;
	return n;
}

static int
h_cmp_event(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	/* At equal times an end (-1) comes before a start (+1): intervals are
	 * half-open, so one item ending as another starts is no overlap. */
	return (int)(x[1] - y[1]);
}

int
h_max_overlap(const int64_t *start, const int64_t *end, int n)
{
	int64_t *ev = calloc((size_t)n * 2 + 1, 2 * sizeof(int64_t));
	int      cur = 0, best = 0;

	if (ev == NULL)
		fail_msg("harness: out of memory");
	for (int i = 0; i < n; i++) {
		ev[4 * i] = start[i];
		ev[4 * i + 1] = 1;
		ev[4 * i + 2] = end[i];
		ev[4 * i + 3] = -1;
	}
	qsort(ev, (size_t)n * 2, 2 * sizeof(int64_t), h_cmp_event);
	for (int i = 0; i < 2 * n; i++) {
		cur += (int)ev[2 * i + 1];
		if (cur > best)
			best = cur;
	}
	free(ev);
	return best;
}

int
h_read_stamps(h_cluster *c, const char *path, int64_t **start, int64_t **end)
{
	char  *text = h_slurp(c, path);
	char **lines;
	int    n, k = 0;

	if (text == NULL)
		fail_msg("harness: cannot read %s", path);
	n = h_split(c, text, &lines);
	*start = (int64_t *)h_keep(c, calloc((size_t)n + 1, sizeof(int64_t)));
	*end = (int64_t *)h_keep(c, calloc((size_t)n + 1, sizeof(int64_t)));
	for (int i = 0; i < n; i++) {
		long long s, e;
		if (sscanf(lines[i], "%lld %lld", &s, &e) != 2)
			fail_msg("harness: bad stamp line '%s' in %s", lines[i],
			         path);
		(*start)[k] = s;
		(*end)[k] = e;
		k++;
	}
	return k;
}

int
h_overlap_of(Troupe__ItemResult **items, size_t n, const char *worker,
             int *count)
{
	int64_t *s = calloc(n + 1, sizeof(int64_t));
	int64_t *e = calloc(n + 1, sizeof(int64_t));
	int      k = 0, most;

	if (s == NULL || e == NULL)
		fail_msg("harness: out of memory");
	for (size_t i = 0; i < n; i++) {
		Troupe__ItemResult *it = items[i];
		char                buf[128];
		long long           a, b;
		size_t              len = it->output.len;

		if (it->state != TROUPE__ITEM_STATE__ITEM_SUCCEEDED)
			continue;
		if (worker != NULL && strcmp(it->worker, worker) != 0)
			continue;
		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, it->output.data, len);
		buf[len] = '\0';
		if (sscanf(buf, "%lld %lld", &a, &b) != 2)
			fail_msg("item %zu: output '%s' is not 'START END'", i,
			         buf);
		s[k] = a;
		e[k] = b;
		k++;
	}
	most = h_max_overlap(s, e, k);
	free(s);
	free(e);
	if (count != NULL)
		*count = k;
	return most;
}

void
h_assert_contains_at(const char *haystack, const char *needle, const char *file,
                     int line)
{
	if (haystack != NULL && strstr(haystack, needle) != NULL)
		return;
	print_error("%s:%d: expected to find \"%s\" in:\n---\n%s\n---\n", file,
	            line, needle, haystack != NULL ? haystack : "(null)");
	if (h_current != NULL)
		h_dump_logs(h_current);
	fail();
}

void
h_assert_icontains_at(const char *haystack, const char *needle,
                      const char *file, int line)
{
	if (haystack != NULL && strcasestr(haystack, needle) != NULL)
		return;
	print_error("%s:%d: expected to find \"%s\" (any case) in:\n---\n%s"
	            "\n---\n",
	            file, line, needle, haystack != NULL ? haystack : "(null)");
	if (h_current != NULL)
		h_dump_logs(h_current);
	fail();
}

void
h_dump_file(const char *title, const char *path)
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
	if (size > H_LOG_TAIL) {
		fseek(f, size - H_LOG_TAIL, SEEK_SET);
		fprintf(stderr, "(... %ld bytes skipped)\n", size - H_LOG_TAIL);
	} else
		fseek(f, 0, SEEK_SET);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
	fprintf(stderr, "----- end of %s -----\n", title);
}

void
h_dump_logs(h_cluster *c)
{
	if (c == NULL)
		return;
	c->dumped = true;
	h_dump_file(c->sched.name, c->sched.log);
	for (int i = 0; i < c->nworkers; i++)
		h_dump_file(c->workers[i].name, c->workers[i].log);
	fflush(stderr);
}

char **
h_env(h_cluster *c, bool for_cli, char *const extra[])
{
	size_t      n = 0, k = 0, x = 0;
	char      **env;
	const char *path = getenv("PATH");

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[x] != NULL)
		x++;
	env = (char **)h_keep(c, calloc(n + x + 8, sizeof(char *)));
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "TROUPE_", 7) == 0 ||
		    strncmp(environ[i], "PATH=", 5) == 0)
			continue;
		env[k++] = environ[i];
	}
	env[k++] = h_fmt(c, "TROUPE_HOME=%s", c->dir);
	env[k++] = h_fmt(c, "PATH=%s/client:%s/daemon:%s", c->bin, c->bin,
	                 path != NULL ? path : "/usr/bin:/bin");
	if (for_cli && c->tcp) {
		env[k++] = h_fmt(c, "TROUPE_ADDR=%s", c->api);
		env[k++] = h_fmt(c, "TROUPE_TOKEN_FILE=%s", c->token_file);
	}
	for (size_t i = 0; i < x; i++)
		env[k++] = h_fmt(c, "%s", extra[i]);
	env[k] = NULL;
	return env;
}

pid_t
h_fork_exec(h_cluster *c, char *const argv[], char **env, const char *netns,
            const char *in, const char *out, const char *err)
{
	int   fin = -1, fout = -1, ferr = -1, fns = -1;
	pid_t pid;

	if (netns != NULL && netns[0] != '\0') {
		const char *path = h_fmt(c, "/run/netns/%s", netns);

		if ((fns = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			fail_msg("harness: %s: %s", path, strerror(errno));
	}

	fin = open(in, O_RDONLY | O_CLOEXEC);
	fout = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ferr = strcmp(out, err) == 0
	           ? dup(fout)
	           : open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fin < 0 || fout < 0 || ferr < 0)
		fail_msg("harness: cannot open %s / %s / %s: %s", in, out, err,
		         strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail_msg("harness: fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fns >= 0 && setns(fns, CLONE_NEWNET) != 0)
			_exit(125);
		if (dup2(fin, 0) < 0 || dup2(fout, 1) < 0 || dup2(ferr, 2) < 0)
			_exit(126);
		if (chdir(c->dir) != 0)
			_exit(126);
		execve(argv[0], argv, env);
		_exit(127);
	}
	setpgid(pid, pid); /* also here, so a kill(-pid) never misses */
	close(fin);
	close(fout);
	close(ferr);
	if (fns >= 0)
		close(fns);
	return pid;
}

int
h_wait_pid(pid_t pid, int ms)
{
	int64_t deadline = h_now_ms() + ms;
	int     st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (h_now_ms() >= deadline)
			return -1;
		h_sleep_ms(10);
	}
}

const char *
h_status_str(h_cluster *c, int st)
{
	if (WIFEXITED(st))
		return h_fmt(c, "exit status %d", WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return h_fmt(c, "killed by signal %d (%s)", WTERMSIG(st),
		             strsignal(WTERMSIG(st)));
	return h_fmt(c, "wait status %#x", st);
}

pid_t
h_launch(h_cluster *c, char *const argv[], char **env, const char *netns,
         const char *log)
{
	FILE *f = fopen(log, "a");

	if (f != NULL) {
		fprintf(f, "== harness: starting%s%s:",
		        netns != NULL && netns[0] ? " in netns " : "",
		        netns != NULL ? netns : "");
		for (int i = 0; argv[i] != NULL; i++)
			fprintf(f, " %s", argv[i]);
		fprintf(f, "\n");
		fclose(f);
	}
	return h_fork_exec(c, argv, env, netns, "/dev/null", log, log);
}

static void
h_spawn(h_cluster *c, h_proc *p)
{
	p->pid = h_launch(c, p->argv, h_env(c, false, NULL), NULL, p->log);
}

/* Adds the space-separated words of s to p's argv. */
static void
h_add_args(h_cluster *c, h_proc *p, const char *s)
{
	char *copy, *save = NULL;

	if (s == NULL)
		return;
	copy = h_keep(c, strdup(s));
	for (char *w = strtok_r(copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		if (p->argc >= 62)
			fail_msg("harness: too many arguments");
		p->argv[p->argc++] = w;
	}
}

static void
h_arg(h_cluster *c, h_proc *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	p->argv[p->argc++] = h_vfmt(c, fmt, ap);
	va_end(ap);
}

static void
h_check_alive(h_cluster *c, h_proc *p, const char *waiting_for)
{
	int st;

	if (p->pid <= 0)
		h_fail(c, "%s is not running (waiting for %s)", p->name,
		       waiting_for);
	if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
		p->pid = 0;
		h_fail(c, "%s died (%s) while waiting for %s", p->name,
		       h_status_str(c, st), waiting_for);
	}
}

/* One GetHealth on a fresh connection; true when the scheduler answers. */
static bool
h_healthy(h_cluster *c)
{
	troupe_client           *cl = NULL;
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	bool                     ok = false;

	if (troupe_client_open(c->api, h_token(c), &cl) != 0)
		return false;
	troupe_client_set_timeout(cl, 2000);
	if (TROUPE_CALL(cl, GetHealth, &req, get_health, &rep) == 0)
		ok = true;
	if (rep != NULL)
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	troupe_client_close(cl);
	return ok;
}

static void
h_wait_health(h_cluster *c)
{
	int64_t deadline = h_now_ms() + H_READY_MS;

	for (;;) {
		h_check_alive(c, &c->sched, "GetHealth");
		if (h_healthy(c))
			return;
		if (h_now_ms() >= deadline)
			h_fail(c,
			       "scheduler did not answer GetHealth on %s "
			       "within %d ms",
			       c->api, H_READY_MS);
		h_sleep_ms(50);
	}
}

troupe_client *
h_client(h_cluster *c)
{
	int rv;

	if (c->client != NULL)
		return c->client;
	if ((rv = troupe_client_open(c->api, h_token(c), &c->client)) != 0)
		h_fail(c, "cannot connect to %s: %s", c->api,
		       troupe_strerror(rv));
	troupe_client_set_timeout(c->client, 30000);
	return c->client;
}

/* How many workers ListWorkers shows READY; -1 when the call fails. */
static int
h_ready_workers(h_cluster *c)
{
	Troupe__ListWorkersRequest req = TROUPE__LIST_WORKERS_REQUEST__INIT;
	Troupe__ListWorkersReply  *rep = NULL;
	int                        n = 0;

	if (TROUPE_CALL(h_client(c), ListWorkers, &req, list_workers, &rep) !=
	    0) {
		troupe_client_close(c->client);
		c->client = NULL;
		return -1;
	}
	for (size_t i = 0; i < rep->n_workers; i++)
		if (rep->workers[i]->state ==
		    TROUPE__WORKER_STATE__WORKER_READY)
			n++;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return n;
}

void
h_wait_workers(h_cluster *c, int n, int ms)
{
	int64_t deadline = h_now_ms() + ms;
	int     have = 0;

	for (;;) {
		h_check_alive(c, &c->sched, "workers");
		for (int i = 0; i < c->nworkers; i++)
			if (c->workers[i].pid > 0)
				h_check_alive(c, &c->workers[i],
				              "workers to be READY");
		if ((have = h_ready_workers(c)) >= n)
			return;
		if (h_now_ms() >= deadline)
			h_fail(c, "%d of %d workers READY after %d ms", have, n,
			       ms);
		h_sleep_ms(50);
	}
}

int
h_kill_pid(h_cluster *c, const char *name, pid_t *pid, int sig)
{
	int st;

	kill(*pid, sig);
	if ((st = h_wait_pid(*pid, H_STOP_MS)) == -1) {
		kill(-*pid, SIGKILL);
		h_wait_pid(*pid, H_STOP_MS);
		*pid = 0;
		h_fail(c, "%s did not exit within %d ms of signal %d", name,
		       H_STOP_MS, sig);
	}
	kill(-*pid, SIGKILL);
	*pid = 0;
	return st;
}

int
h_kill_worker(h_cluster *c, int i, int sig)
{
	h_proc *w = &c->workers[i];

	if (i >= c->nworkers)
		h_fail(c, "no worker %d", i);
	h_check_alive(c, w, "it to be killed");
	return h_kill_pid(c, w->name, &w->pid, sig);
}

int
h_worker_pid(h_cluster *c, int i)
{
	return i < c->nworkers ? c->workers[i].pid : 0;
}

int
h_scheduler_pid(h_cluster *c)
{
	return c->sched.pid;
}

ssize_t
h_proc_read(int pid, const char *what, char *buf, size_t len)
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

/* Binds n TCP listeners on 127.0.0.1 port 0 at once (so the ports differ),
 * and returns the ports the kernel chose. */
static void
h_free_ports(int *ports, int n)
{
	int fds[4];

	for (int i = 0; i < n; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t          len = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 ||
		    bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0)
			fail_msg("harness: cannot find a free port: %s",
			         strerror(errno));
		ports[i] = ntohs(sa.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void
h_make_token(h_cluster *c)
{
	unsigned char raw[24];
	FILE         *f;
	int           fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw))
		fail_msg("harness: cannot read /dev/urandom");
	close(fd);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(c->token + 2 * i, 3, "%02x", raw[i]);
	snprintf(c->token_file, sizeof(c->token_file), "%s/token", c->dir);
	if ((f = fopen(c->token_file, "w")) == NULL)
		fail_msg("harness: cannot write %s", c->token_file);
	fprintf(f, "%s\n", c->token);
	fclose(f);
	chmod(c->token_file, 0600);
}

static void
h_start_worker(h_cluster *c, const h_opts *o, int i)
{
	h_proc *w = &c->workers[i];

	snprintf(w->name, sizeof(w->name), "w%d", i + 1);
	snprintf(w->log, sizeof(w->log), "%s/h-w%d.log", c->dir, i + 1);
	h_arg(c, w, "%s/daemon/troupe-worker", c->bin);
	h_arg(c, w, "--home");
	h_arg(c, w, "%s/%s", c->dir, w->name);
	h_arg(c, w, "--scheduler");
	h_arg(c, w, "%s", c->wlink);
	h_arg(c, w, "--name");
	h_arg(c, w, "%s", w->name);
	h_arg(c, w, "--slots");
	h_arg(c, w, "%d", o->slots > 0 ? o->slots : 4);
	/* CI runs as root, where a worker refuses to start without this. */
	if (geteuid() == 0)
		h_arg(c, w, "--allow-root");
	if (c->tcp) {
		h_arg(c, w, "--token-file");
		h_arg(c, w, "%s", c->token_file);
	}
	h_add_args(c, w, o->worker_args);
	w->argv[w->argc] = NULL;
	if (mkdir(h_path(c, "%s", w->name), 0700) != 0)
		fail_msg("harness: mkdir: %s", strerror(errno));
	h_spawn(c, w);
}

h_cluster *
h_start(const h_opts *o)
{
	static const h_opts none = {0};
	h_cluster          *c;
	const char         *bin = getenv("TROUPE_BIN_DIR");

	if (o == NULL)
		o = &none;
	if (h_current != NULL)
		fail_msg("harness: h_start while another cluster runs");
	if (o->workers > H_MAX_WORKERS)
		fail_msg("harness: at most %d workers", H_MAX_WORKERS);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fail_msg("harness: out of memory");
	h_current = c;
	c->timeout_ms = 120000;
	c->tcp = o->tcp;
	snprintf(c->bin, sizeof(c->bin), "%s",
	         bin != NULL && bin[0] ? bin : TROUPE_BIN_DIR);
	snprintf(c->dir, sizeof(c->dir), "/tmp/troupe-it-XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		fail_msg("harness: mkdtemp: %s", strerror(errno));
	snprintf(c->sched.name, sizeof(c->sched.name), "scheduler");
	snprintf(c->sched.log, sizeof(c->sched.log), "%s/h-scheduler.log",
	         c->dir);

	h_arg(c, &c->sched, "%s/daemon/troupe-scheduler", c->bin);
	h_arg(c, &c->sched, "--home");
	h_arg(c, &c->sched, "%s", c->dir);
	if (c->tcp) {
		int ports[2];

		h_free_ports(ports, 2);
		h_make_token(c);
		snprintf(c->api, sizeof(c->api), "tcp://127.0.0.1:%d",
		         ports[0]);
		snprintf(c->wlink, sizeof(c->wlink), "tcp://127.0.0.1:%d",
		         ports[1]);
		h_arg(c, &c->sched, "--listen");
		h_arg(c, &c->sched, "%s", c->api);
		h_arg(c, &c->sched, "--worker-listen");
		h_arg(c, &c->sched, "%s", c->wlink);
		h_arg(c, &c->sched, "--token-file");
		h_arg(c, &c->sched, "%s", c->token_file);
	} else {
		/* No --listen: the defaults under --home are under test too. */
		snprintf(c->api, sizeof(c->api), "ipc://%s/api.sock", c->dir);
		snprintf(c->wlink, sizeof(c->wlink), "ipc://%s/worker.sock",
		         c->dir);
	}
	h_add_args(c, &c->sched, o->sched_args);
	c->sched.argv[c->sched.argc] = NULL;
	fprintf(stderr, "harness: cluster in %s, API %s\n", c->dir, c->api);
	if (o->no_scheduler)
		return c;

	h_spawn(c, &c->sched);
	h_wait_health(c);
	for (int i = 0; i < o->workers; i++)
		h_start_worker(c, o, i);
	c->nworkers = o->workers;
	if (o->workers > 0)
		h_wait_workers(c, o->workers, H_READY_MS);
	return c;
}

int
h_kill_scheduler(h_cluster *c, int sig)
{
	troupe_client_close(c->client);
	c->client = NULL;
	h_check_alive(c, &c->sched, "it to be killed");
	return h_kill_pid(c, c->sched.name, &c->sched.pid, sig);
}

void
h_restart_scheduler(h_cluster *c)
{
	int running = 0;

	if (c->sched.pid > 0)
		h_fail(c, "h_restart_scheduler: the scheduler still runs");
	h_spawn(c, &c->sched);
	h_wait_health(c);
	for (int i = 0; i < c->nworkers; i++)
		if (c->workers[i].pid > 0)
			running++;
	if (running > 0)
		h_wait_workers(c, running, H_READY_MS);
}

const char *
h_stop_pid(h_cluster *c, const char *name, pid_t *pid)
{
	const char *bad = NULL;
	int         st;

	if (*pid <= 0)
		return NULL;
	if (waitpid(*pid, &st, WNOHANG) == *pid) {
		bad = h_fmt(c, "%s had died before the end of the test (%s)",
		            name, h_status_str(c, st));
	} else {
		kill(*pid, SIGTERM);
		st = h_wait_pid(*pid, H_STOP_MS);
		if (st == -1) {
			bad =
			    h_fmt(c, "%s did not exit within %d ms of SIGTERM",
			          name, H_STOP_MS);
			kill(*pid, SIGKILL);
			h_wait_pid(*pid, H_STOP_MS);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = h_fmt(c, "%s: %s after SIGTERM", name,
			            h_status_str(c, st));
	}
	kill(-*pid, SIGKILL);
	*pid = 0;
	return bad;
}

static int
h_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Kills everything still running without looking at how it ends, removes
 * the directory (kept when H_KEEP is set) and frees c. */
static void
h_destroy(h_cluster *c)
{
	h_proc *all[H_MAX_WORKERS + 1];
	int     n = 0;

	troupe_client_close(c->client);
	c->client = NULL;
	all[n++] = &c->sched;
	for (int i = 0; i < c->nworkers; i++)
		all[n++] = &c->workers[i];
	for (int i = 0; i < n; i++)
		if (all[i]->pid > 0)
			kill(-all[i]->pid, SIGKILL);
	for (int i = 0; i < n; i++)
		if (all[i]->pid > 0)
			h_wait_pid(all[i]->pid, H_STOP_MS);
	if (getenv("H_KEEP") != NULL)
		fprintf(stderr, "harness: kept %s\n", c->dir);
	else
		nftw(c->dir, h_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < c->nmsgs; i++)
		protobuf_c_message_free_unpacked(c->msgs[i], NULL);
	free(c->msgs);
	for (size_t i = 0; i < c->njsons; i++)
		json_object_put(c->jsons[i]);
	free(c->jsons);
	for (size_t i = 0; i < c->nkept; i++)
		free(c->kept[i]);
	free(c->kept);
	if (h_current == c)
		h_current = NULL;
	free(c);
}

void
h_done(h_cluster *c)
{
	const char *bad[H_MAX_WORKERS + 1];
	int         nbad = 0;

	troupe_client_close(c->client);
	c->client = NULL;
	/* Workers first: a scheduler going away first would make them log
	 * reconnection noise, and they must exit cleanly either way. */
	for (int i = 0; i < c->nworkers; i++)
		if ((bad[nbad] = h_stop_pid(c, c->workers[i].name,
		                            &c->workers[i].pid)) != NULL)
			nbad++;
	if ((bad[nbad] = h_stop_pid(c, c->sched.name, &c->sched.pid)) != NULL)
		nbad++;
	if (nbad > 0) {
		h_dump_logs(c);
		for (int i = 0; i < nbad; i++)
			print_error("harness: %s\n", bad[i]);
		fail_msg("%d daemon(s) did not stop cleanly: %s", nbad, bad[0]);
	}
	h_destroy(c);
}

int
h_teardown(void **state)
{
	if (h_current != NULL) {
		if (!h_current->dumped)
			h_dump_logs(h_current);
		h_destroy(h_current);
	}
	return 0;
}

static int
h_vrun(h_cluster *c, const char *input, char **out, char **err, const char *fmt,
       va_list ap)
{
	char       *cmd = h_vfmt(c, fmt, ap);
	int         k = c->nruns++;
	const char *fin = h_path(c, ".h-run%d.in", k);
	const char *fout = h_path(c, ".h-run%d.out", k);
	const char *ferr = h_path(c, ".h-run%d.err", k);
	char       *argv[] = {"/bin/sh", "-c", cmd, NULL};
	FILE       *f;
	pid_t       pid;
	int         st, rv;
	int64_t     t0 = h_now_ms();

	if ((f = fopen(fin, "w")) == NULL)
		fail_msg("harness: cannot write %s", fin);
	if (input != NULL)
		fputs(input, f);
	fclose(f);
	pid = h_fork_exec(c, argv, h_env(c, true, NULL), NULL, fin, fout, ferr);
	st = h_wait_pid(pid, c->timeout_ms);
	if (st == -1) {
		kill(-pid, SIGKILL);
		h_wait_pid(pid, H_STOP_MS);
		print_error("harness: timed out after %d ms: %s\nstdout:\n%s\n"
		            "stderr:\n%s\n",
		            c->timeout_ms, cmd, h_slurp(c, fout),
		            h_slurp(c, ferr));
		h_dump_logs(c);
		fail_msg("command timed out: %s", cmd);
	}
	/* Anything the command left behind in its group goes too. */
	kill(-pid, SIGKILL);
	rv = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (out != NULL)
		*out = h_slurp(c, fout);
	if (err != NULL)
		*err = h_slurp(c, ferr);
	fprintf(stderr, "harness: $ %s  -> %d (%lld ms)\n", cmd, rv,
	        (long long)(h_now_ms() - t0));
	if (rv != 0) {
		/* Usually expected; when not, this is what tells why. */
		const char *e = h_slurp(c, ferr), *o = h_slurp(c, fout);
		size_t      ne = e != NULL ? strlen(e) : 0;
		size_t      no = o != NULL ? strlen(o) : 0;

		fprintf(stderr, "  stderr: %s%s", ne > 2048 ? "..." : "",
		        ne > 0 ? e + (ne > 2048 ? ne - 2048 : 0) : "(empty)\n");
		if (no > 0)
			fprintf(stderr, "  stdout: %s%s",
			        no > 1024 ? "..." : "",
			        o + (no > 1024 ? no - 1024 : 0));
	}
	return rv;
}

int
h_run(h_cluster *c, char **out, char **err, const char *fmt, ...)
{
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	rv = h_vrun(c, NULL, out, err, fmt, ap);
	va_end(ap);
	return rv;
}

int
h_run_in(h_cluster *c, const char *input, char **out, char **err,
         const char *fmt, ...)
{
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	rv = h_vrun(c, input, out, err, fmt, ap);
	va_end(ap);
	return rv;
}

int
h_call(h_cluster *c, const char *method, const ProtobufCMessage *input,
       const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **output)
{
	int rv = troupe_call(h_client(c), method, input, out_desc, output);

	if (rv != 0 || *output == NULL)
		return rv;
	if (c->nmsgs == c->capmsgs) {
		size_t             n = c->capmsgs ? c->capmsgs * 2 : 64;
		ProtobufCMessage **m = realloc(c->msgs, n * sizeof(*m));
		if (m == NULL)
			fail_msg("harness: out of memory");
		c->msgs = m;
		c->capmsgs = n;
	}
	c->msgs[c->nmsgs++] = *output;
	return 0;
}

Troupe__Execution *
h_execution(h_cluster *c, const char *id)
{
	Troupe__GetExecutionRequest req = TROUPE__GET_EXECUTION_REQUEST__INIT;
	Troupe__GetExecutionReply  *rep = NULL;
	int                         rv;

	req.id = (char *)id;
	if ((rv = H_CALL(c, GetExecution, &req, get_execution, &rep)) != 0)
		h_fail(c, "GetExecution %s: %s (%s)", id, troupe_strerror(rv),
		       troupe_client_error(h_client(c)));
	if (rep->execution == NULL)
		h_fail(c, "GetExecution %s: reply without an execution", id);
	return rep->execution;
}

bool
h_phase_done(Troupe__Phase p)
{
	return p == TROUPE__PHASE__PHASE_SUCCEEDED ||
	       p == TROUPE__PHASE__PHASE_FAILED ||
	       p == TROUPE__PHASE__PHASE_ABORTED ||
	       p == TROUPE__PHASE__PHASE_TIMED_OUT;
}

Troupe__Execution *
h_wait_exec(h_cluster *c, const char *id, h_exec_pred pred, void *arg, int ms,
            const char *what)
{
	int64_t            deadline = h_now_ms() + ms;
	Troupe__Execution *e;

	for (;;) {
		e = h_execution(c, id);
		if (pred(e, arg))
			return e;
		if (h_now_ms() >= deadline)
			h_fail(c, "execution %s: no %s within %d ms (phase %d)",
			       id, what, ms, (int)e->phase);
		h_sleep_ms(50);
	}
}

static bool
h_is_done(const Troupe__Execution *e, void *arg)
{
	return h_phase_done(e->phase);
}

Troupe__Execution *
h_wait_done(h_cluster *c, const char *id, int ms)
{
	return h_wait_exec(c, id, h_is_done, NULL, ms, "terminal phase");
}

size_t
h_outputs(h_cluster *c, const char *id, Troupe__ItemResult ***items)
{
	Troupe__ItemResult **all = NULL;
	size_t               n = 0, cap = 0;
	uint64_t             next = 0;

	for (;;) {
		Troupe__GetOutputsRequest req =
		    TROUPE__GET_OUTPUTS_REQUEST__INIT;
		Troupe__GetOutputsReply *rep = NULL;
		int                      rv;

		req.id = (char *)id;
		req.start = next;
		if ((rv = H_CALL(c, GetOutputs, &req, get_outputs, &rep)) != 0)
			h_fail(c, "GetOutputs %s from %llu: %s (%s)", id,
			       (unsigned long long)next, troupe_strerror(rv),
			       troupe_client_error(h_client(c)));
		for (size_t i = 0; i < rep->n_items; i++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				all = realloc(all, cap * sizeof(*all));
				if (all == NULL)
					fail_msg("harness: out of memory");
			}
			all[n++] = rep->items[i];
		}
		if (rep->next >= rep->total || rep->n_items == 0)
			break;
		next = rep->next;
	}
	if (all == NULL)
		all = calloc(1, sizeof(*all));
	*items = (Troupe__ItemResult **)h_keep(c, (char *)all);
	return n;
}

char *
h_chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
	                 s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

const char *
h_map_detach(h_cluster *c, const char *input, const char *fmt, ...)
{
	va_list ap;
	char   *args, *out = NULL, *err = NULL;
	int     rv;

	va_start(ap, fmt);
	args = h_vfmt(c, fmt, ap);
	va_end(ap);
	rv = h_run_in(c, input, &out, &err, "troupe map --detach %s", args);
	if (rv != 0 || h_lines(out) != 1)
		h_fail(c,
		       "troupe map --detach %s: exit %d, expected one line "
		       "(the id)\nstdout: %s\nstderr: %s",
		       args, rv, out, err);
	return h_chomp(out);
}

static json_object *
h_json_keep(h_cluster *c, json_object *o)
{
	if (c->njsons == c->capjsons) {
		size_t        n = c->capjsons ? c->capjsons * 2 : 64;
		json_object **j = realloc(c->jsons, n * sizeof(*j));
		if (j == NULL)
			fail_msg("harness: out of memory");
		c->jsons = j;
		c->capjsons = n;
	}
	c->jsons[c->njsons++] = o;
	return o;
}

json_object *
h_json(h_cluster *c, const char *text)
{
	json_tokener *tok = json_tokener_new();
	json_object  *o;
	size_t        end;

	if (tok == NULL)
		fail_msg("harness: out of memory");
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	end = o != NULL ? json_tokener_get_parse_end(tok) : 0;
	json_tokener_free(tok);
	/* Only whitespace may follow the value. */
	if (o != NULL && text[end + strspn(text + end, " \t\r\n")] == '\0')
		return h_json_keep(c, o);
	json_object_put(o);
	h_fail(c, "not one JSON value:\n%s", text);
	return NULL;
}

int
h_json_lines(h_cluster *c, const char *text, json_object ***objs)
{
	char        **lines;
	int           n = h_split(c, text, &lines), k = 0;
	json_object **v = (json_object **)h_keep(
	    c, calloc((size_t)n + 1, sizeof(json_object *)));

	for (int i = 0; i < n; i++) {
		if (h_chomp(lines[i])[0] == '\0')
			continue;
		v[k++] = h_json(c, lines[i]);
	}
	*objs = v;
	return k;
}

const char *
h_jstr(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	return json_object_get_string(v);
}

int64_t
h_jint(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
		return -1;
	return json_object_get_int64(v);
}
