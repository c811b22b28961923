/*
 * `troupe up`: a local cluster in the foreground, i.e. troupe-scheduler and
 * N troupe-worker processes on one TROUPE_HOME, stopped together.
 *
 * Threading: one libuv loop on the main thread owns every handle here (the
 * child processes, SIGINT/SIGTERM, the timers).  The readiness probe makes
 * short blocking GetHealth calls (bounded to UP_PROBE_MS) from a timer
 * callback; nothing else runs meanwhile, so that is the whole contract.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "cli.h"
#include "troupe/home.h"

#define UP_READY_MS 10000 /* the scheduler must answer within this */
#define UP_TICK_MS  100   /* between readiness probes */
#define UP_PROBE_MS 500   /* bound on one probe */
#define UP_KILL_MS  10000 /* after SIGTERM, SIGKILL the stragglers */

typedef struct up_child {
	uv_process_t proc;
	char         name[64];
	int          alive;
	int          closed;
} up_child;

typedef struct up_state {
	uv_loop_t         *loop;
	const cli_up_opts *o;
	up_child          *kids; /* [0] is the scheduler */
	size_t             nkids;
	size_t             nspawned;
	uv_signal_t        sigint, sigterm;
	uv_timer_t         tick, kill;
	int      phase; /* 0: scheduler boots, 1: workers join, 2: up */
	uint64_t phase_start;
	int      stopping;
	int      failed;
	int      handles_closed;
	char     home[PATH_MAX];
	char     api[PATH_MAX + 16];
	char     sched_bin[PATH_MAX];
	char     worker_bin[PATH_MAX];
	/* The dashboard: a loopback port, guarded by a fresh token kept in
	 * HOME/http.token (README, "Metrics and the HTTP listener"). */
	char http_listen[64];
	char http_token_file[PATH_MAX + 16];
	char http_token[40];
} up_state;

static const char up_help[] =
    "usage: troupe up [--workers N] [--slots N] [--home DIR]\n"
    "\n"
    "Runs a local cluster in the foreground: troupe-scheduler and N\n"
    "troupe-worker processes (default 1) on the state directory DIR\n"
    "(default: TROUPE_HOME, else "
    "${XDG_STATE_HOME:-$HOME/.local/state}/troupe).\n"
    "--slots N: items each worker runs at once (default: the worker's).\n"
    "Every other troupe command finds this cluster with no flag.  Ctrl-C\n"
    "stops it.  Exits 1 if a daemon dies on its own.\n";

/* Finds the daemon `name`: beside this executable, then in the build
 * tree's daemon/ directory next to client/, then in PATH.  Returns 0 with
 * the path in out, or TROUPE_ENOTFOUND. */
static int
up_find(const char *name, char *out, size_t len)
{
	char        self[PATH_MAX];
	const char *path = getenv("PATH");
	ssize_t     n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		char *slash;

		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			/* A truncated path is simply not found. */
			if ((size_t)snprintf(out, len, "%s/%s", self, name) <
			        len &&
			    access(out, X_OK) == 0)
				return 0;
			if ((size_t)snprintf(out, len, "%s/../daemon/%s", self,
			                     name) < len &&
			    access(out, X_OK) == 0)
				return 0;
		}
	}
	while (path != NULL && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t dl = end != NULL ? (size_t)(end - path) : strlen(path);

		if (dl > 0) {
			snprintf(out, len, "%.*s/%s", (int)dl, path, name);
			if (access(out, X_OK) == 0)
				return 0;
		}
		path = end != NULL ? end + 1 : NULL;
	}
	return TROUPE_ENOTFOUND;
}

/* Asks the API for its health.  Returns 0 with the number of registered
 * workers in *workers, or an error. */
static int
up_probe(const char *addr, uint32_t *workers)
{
	Troupe__GetHealthRequest req = TROUPE__GET_HEALTH_REQUEST__INIT;
	Troupe__GetHealthReply  *rep = NULL;
	troupe_client           *c = NULL;
	int                      rv;

	if ((rv = troupe_client_open(addr, NULL, &c)) != 0)
		return rv;
	troupe_client_set_timeout(c, UP_PROBE_MS);
	if ((rv = TROUPE_CALL(c, GetHealth, &req, get_health, &rep)) == 0) {
		*workers = rep->workers;
		troupe__get_health_reply__free_unpacked(rep, NULL);
	}
	troupe_client_close(c);
	return rv;
}

static void up_stop(up_state *s, int sig);

static void
up_on_handle_closed(uv_handle_t *h)
{
	up_state *s = h->loop->data;

	s->handles_closed++;
}

static void
up_on_proc_closed(uv_handle_t *h)
{
	up_child *k = h->data;

	k->closed = 1;
}

/* Closes the loop's own handles once every child is gone. */
static void
up_maybe_finish(up_state *s)
{
	for (size_t i = 0; i < s->nspawned; i++)
		if (s->kids[i].alive)
			return;
	if (uv_is_closing((uv_handle_t *)&s->tick))
		return;
	uv_close((uv_handle_t *)&s->tick, up_on_handle_closed);
	uv_close((uv_handle_t *)&s->kill, up_on_handle_closed);
	uv_close((uv_handle_t *)&s->sigint, up_on_handle_closed);
	uv_close((uv_handle_t *)&s->sigterm, up_on_handle_closed);
}

static void
up_on_exit(uv_process_t *p, int64_t status, int sig)
{
	up_child *k = p->data;
	up_state *s = p->loop->data;

	k->alive = 0;
	uv_close((uv_handle_t *)p, up_on_proc_closed);
	if (!s->stopping) {
		if (sig != 0)
			cli_err("%s was killed by signal %d; stopping the "
			        "cluster",
			        k->name, sig);
		else
			cli_err("%s exited with status %lld; stopping the "
			        "cluster",
			        k->name, (long long)status);
		s->failed = 1;
		up_stop(s, SIGTERM);
	}
	up_maybe_finish(s);
}

/* Starts one daemon.  Returns 0 or a TROUPE_E* error (said on stderr). */
static int
up_spawn(up_state *s, up_child *k, char **args)
{
	uv_process_options_t opt;
	uv_stdio_container_t io[3];
	int                  rv;

	memset(&opt, 0, sizeof(opt));
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_INHERIT_FD;
	io[1].data.fd = STDOUT_FILENO;
	io[2].flags = UV_INHERIT_FD;
	io[2].data.fd = STDERR_FILENO;
	opt.file = args[0];
	opt.args = args;
	opt.exit_cb = up_on_exit;
	opt.stdio = io;
	opt.stdio_count = 3;
	k->proc.data = k;
	if ((rv = uv_spawn(s->loop, &k->proc, &opt)) != 0) {
		cli_err("cannot start %s (%s): %s", k->name, args[0],
		        uv_strerror(rv));
		/* uv_spawn failures still need the handle closed. */
		uv_close((uv_handle_t *)&k->proc, up_on_proc_closed);
		return troupe_err_from_uv(rv);
	}
	k->alive = 1;
	s->nspawned++;
	return 0;
}

static int
up_spawn_workers(up_state *s)
{
	char slots[16];

	snprintf(slots, sizeof(slots), "%u", s->o->slots);
	for (size_t i = 1; i < s->nkids; i++) {
		up_child *k = &s->kids[i];
		char     *args[] = {s->worker_bin, "--home", s->home,
		                    "--name",      k->name,  NULL,
		                    NULL,          NULL,     NULL};
		int       n = 5;

		if (s->o->slots > 0) {
			args[n++] = "--slots";
			args[n++] = slots;
		}
		/* A laptop cluster started by root runs its items as root,
		 * as the person asked; a worker started by hand as root must
		 * be told (README, Security). */
		if (geteuid() == 0)
			args[n++] = "--allow-root";
		if (up_spawn(s, k, args) != 0)
			return -1;
	}
	return 0;
}

static void
up_print_ready(up_state *s, uint32_t joined)
{
	char link[PATH_MAX + 16];

	if (troupe_default_worker_addr(link, sizeof(link)) != 0)
		snprintf(link, sizeof(link), "?");
	printf("troupe: local cluster up\n");
	printf("  API:          %s\n", s->api);
	printf("  worker link:  %s\n", link);
	printf("  state:        %s\n", s->home);
	printf("  dashboard:    http://%s/#token=%s\n", s->http_listen,
	       s->http_token);
	printf("  workers:      %zu", s->nkids - 1);
	if (s->nkids > 1)
		printf(" (local-1%s%s%s", s->nkids > 2 ? " .. local-" : "",
		       s->nkids > 2 ? s->kids[s->nkids - 1].name + 6 : "", ")");
	if (s->o->slots > 0)
		printf(", %u slots each", s->o->slots);
	putchar('\n');
	printf("Ctrl-C to stop\n");
	fflush(stdout);
	if (joined < s->nkids - 1)
		cli_err("warning: %u of %zu workers have registered so far",
		        joined, s->nkids - 1);
}

static void
up_on_tick(uv_timer_t *t)
{
	up_state *s = t->loop->data;
	uint32_t  workers = 0;
	uint64_t  waited = uv_now(s->loop) - s->phase_start;
	int       rv;

	if (s->stopping)
		return;
	rv = up_probe(s->api, &workers);
	uv_update_time(s->loop);
	if (s->phase == 0) {
		if (rv != 0) {
			if (waited < UP_READY_MS)
				return;
			cli_err("the scheduler did not answer at %s within "
			        "%d s: %s",
			        s->api, UP_READY_MS / 1000,
			        troupe_strerror(rv));
			s->failed = 1;
			up_stop(s, SIGTERM);
			return;
		}
		s->phase = 1;
		s->phase_start = uv_now(s->loop);
		if (up_spawn_workers(s) != 0) {
			s->failed = 1;
			up_stop(s, SIGTERM);
		}
		return;
	}
	/* phase 1: wait (a bounded while) for the workers to register. */
	if ((rv != 0 || workers < s->nkids - 1) && waited < UP_READY_MS)
		return;
	s->phase = 2;
	uv_timer_stop(t);
	up_print_ready(s, rv == 0 ? workers : 0);
}

static void
up_on_kill(uv_timer_t *t)
{
	up_state *s = t->loop->data;

	cli_err("daemons still running after %d s; killing them",
	        UP_KILL_MS / 1000);
	up_stop(s, SIGKILL);
}

/* Signals every live child (workers first) and arms the SIGKILL timer. */
static void
up_stop(up_state *s, int sig)
{
	if (!s->stopping) {
		s->stopping = 1;
		uv_timer_stop(&s->tick);
		uv_timer_start(&s->kill, up_on_kill, UP_KILL_MS, 0);
	}
	for (size_t i = s->nspawned; i-- > 0;)
		if (s->kids[i].alive)
			uv_process_kill(&s->kids[i].proc, sig);
	up_maybe_finish(s);
}

static void
up_on_signal(uv_signal_t *h, int signum)
{
	up_state *s = h->loop->data;

	if (s->stopping) {
		/* A second Ctrl-C: no more waiting. */
		up_stop(s, SIGKILL);
		return;
	}
	if (signum == SIGINT)
		fputs("\n", stderr);
	up_stop(s, SIGTERM);
}

/* A free port on 127.0.0.1 for the dashboard, as "127.0.0.1:PORT" in
 * s->http_listen: the kernel picks one, which we release for the
 * scheduler (another program taking it in between makes the scheduler
 * fail to start, which `troupe up` reports).  Returns 0 or an exit code. */
static int
up_pick_port(up_state *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t          len = sizeof(a);
	int                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int                ok;

	ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	     getsockname(fd, (struct sockaddr *)&a, &len) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok)
		return cli_err("cannot find a free port on 127.0.0.1 for the "
		               "dashboard");
	snprintf(s->http_listen, sizeof(s->http_listen), "127.0.0.1:%u",
	         (unsigned)ntohs(a.sin_port));
	return 0;
}

/* A fresh random token for the dashboard, written owner-only to
 * HOME/http.token for the scheduler.  Returns 0 or an exit code. */
static int
up_make_token(up_state *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char     rnd[16];
	int               fd;
	ssize_t           n;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return cli_err("cannot make a token for the dashboard");
	for (size_t i = 0; i < sizeof(rnd); i++) {
		s->http_token[2 * i] = hex[rnd[i] >> 4];
		s->http_token[2 * i + 1] = hex[rnd[i] & 15];
	}
	s->http_token[2 * sizeof(rnd)] = '\0';
	snprintf(s->http_token_file, sizeof(s->http_token_file),
	         "%s/http.token", s->home);
	(void)unlink(s->http_token_file);
	fd = open(s->http_token_file,
	          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cli_err("cannot write %s", s->http_token_file);
	n = write(fd, s->http_token, strlen(s->http_token));
	if (close(fd) != 0 || n != (ssize_t)strlen(s->http_token))
		return cli_err("cannot write %s", s->http_token_file);
	return 0;
}

/* Resolves the home, the API address and the daemons.  Returns 0 or an
 * exit code (said on stderr). */
static int
up_prepare(up_state *s)
{
	uint32_t workers;
	int      rv;

	if (s->o->home != NULL && setenv("TROUPE_HOME", s->o->home, 1) != 0)
		return cli_err("cannot set TROUPE_HOME");
	if (troupe_home(s->home, sizeof(s->home)) != 0)
		return cli_err("cannot find the state directory: set "
		               "TROUPE_HOME (or HOME), or give --home DIR");
	/* The children must agree with us whatever they default to. */
	setenv("TROUPE_HOME", s->home, 1);
	if ((rv = troupe_home_make(s->home)) != 0)
		return cli_err("cannot create %s: %s", s->home,
		               troupe_strerror(rv));
	snprintf(s->api, sizeof(s->api), "ipc://%s/api.sock", s->home);
	if (up_find("troupe-scheduler", s->sched_bin, sizeof(s->sched_bin)) !=
	    0)
		return cli_err("cannot find troupe-scheduler beside this "
		               "program or in PATH");
	if (s->o->workers > 0 &&
	    up_find("troupe-worker", s->worker_bin, sizeof(s->worker_bin)) != 0)
		return cli_err("cannot find troupe-worker beside this program "
		               "or in PATH");
	if (up_probe(s->api, &workers) == 0)
		return cli_err("a scheduler already answers at %s (another "
		               "`troupe up`?)",
		               s->api);
	if ((rv = up_pick_port(s)) != 0 || (rv = up_make_token(s)) != 0)
		return rv;
	return 0;
}

int
cli_cmd_up(int argc, char **argv, int first)
{
	cli_up_opts o;
	up_state   *s = NULL;
	uv_loop_t   loop;
	char        err[256];
	int         code, loop_ok = 0;

	if (cli_parse_up(argc, argv, first, &o, err, sizeof(err)) != 0)
		return cli_usage("up", err);
	if (o.help) {
		fputs(up_help, stdout);
		return CLI_EXIT_OK;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->kids = calloc((size_t)o.workers + 1, sizeof(up_child))) ==
	        NULL) {
		code = cli_err("out of memory");
		goto fail;
	}
	s->o = &o;
	s->nkids = (size_t)o.workers + 1;
	snprintf(s->kids[0].name, sizeof(s->kids[0].name), "troupe-scheduler");
	for (size_t i = 1; i < s->nkids; i++)
		snprintf(s->kids[i].name, sizeof(s->kids[i].name), "local-%zu",
		         i);
	if ((code = up_prepare(s)) != 0)
		goto fail;
	if (uv_loop_init(&loop) != 0) {
		code = cli_err("cannot start the event loop");
		goto fail;
	}
	loop_ok = 1;
	s->loop = &loop;
	loop.data = s;
	uv_timer_init(&loop, &s->tick);
	uv_timer_init(&loop, &s->kill);
	uv_signal_init(&loop, &s->sigint);
	uv_signal_init(&loop, &s->sigterm);
	uv_signal_start(&s->sigint, up_on_signal, SIGINT);
	uv_signal_start(&s->sigterm, up_on_signal, SIGTERM);
	{
		char *args[] = {s->sched_bin,
		                "--home",
		                s->home,
		                "--http-listen",
		                s->http_listen,
		                "--http-token-file",
		                s->http_token_file,
		                NULL};

		if (up_spawn(s, &s->kids[0], args) != 0)
			s->failed = 1;
	}
	if (s->failed) {
		up_maybe_finish(s);
	} else {
		s->phase_start = uv_now(&loop);
		uv_timer_start(&s->tick, up_on_tick, UP_TICK_MS, UP_TICK_MS);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	code = s->failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	if (!s->failed)
		printf("troupe: local cluster stopped\n");
fail:
	if (loop_ok && uv_loop_close(&loop) != 0)
		cli_err("event loop closed with handles open");
	if (s != NULL)
		free(s->kids);
	free(s);
	return code;
}
