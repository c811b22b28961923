/*
 * troupe-worker: joins a scheduler and runs the items it is given.  This
 * file only reads flags and the config file, then runs the loop; the
 * daemon itself is workerd.c and its workerd_*.c (workerd_int.h).
 *
 * Items never run as root by accident: a worker whose effective uid is 0
 * refuses to start unless told whom to run items as (--run-as USER: every
 * item and replica then runs under troupe-shim, which drops to that user
 * before the command; launch.h) or that root is meant (--allow-root).
 *
 * Threading: the main thread runs the one libuv loop that owns the
 * daemon (docs/design.md, Threading) until workerd has closed every
 * handle; nng's threads are the link's business (wlink.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "conf.h"
#include "log.h"
#include "launch.h"
#include "troupe/error.h"
#include "troupe/home.h"
#include "troupe/sockclose.h"
#include "workerd.h"

#define MAIN_MAX_LABELS 64

typedef struct main_conf {
	char    *scheduler;
	char    *name;
	char    *token_file;
	char    *tls_ca;
	uint32_t slots;
	uint32_t cpu_milli;
	uint64_t mem_bytes;
	unsigned drain_timeout_s;
	char    *run_as;     /* --run-as, unresolved */
	bool     allow_root; /* --allow-root */
	char    *label_keys[MAIN_MAX_LABELS];
	char    *label_vals[MAIN_MAX_LABELS];
	size_t   n_labels;
	char     why[256]; /* what was wrong with the last setting */
	int      depth;    /* config files being read */
} main_conf;

static const char main_usage[] =
    "usage: troupe-worker [options]\n"
    "Joins a troupe scheduler and runs the items it sends.\n"
    "\n"
    "  --scheduler URL     the scheduler's worker link (default\n"
    "                      ipc://$TROUPE_HOME/worker.sock)\n"
    "  --home DIR          the local cluster's state directory "
    "(TROUPE_HOME)\n"
    "  --name NAME         this worker's unique name (default "
    "HOST-PID)\n"
    "  --slots N           items run at once (default: the CPUs)\n"
    "  --cpu MILLI         CPU capacity in thousandths (default: "
    "1000 per CPU)\n"
    "  --mem BYTES         memory capacity, K/M/G/T suffixes allowed\n"
    "                      (default: the host's memory)\n"
    "  --label KEY=VALUE   a label for placement (repeatable)\n"
    "  --token-file FILE   the shared token (or TROUPE_TOKEN, "
    "TROUPE_TOKEN_FILE);\n"
    "                      required for every scheduler address "
    "but ipc://\n"
    "  --tls-ca FILE       CA certificates for a tls+tcp:// scheduler\n"
    "  --drain-timeout S   on SIGTERM, how long running items may "
    "finish (30)\n"
    "  --run-as USER       run items and replicas as USER (a name or "
    "uid);\n"
    "                      needs the worker to start as root\n"
    "  --allow-root        started as root, run items as root (without "
    "this\n"
    "                      or --run-as, a root worker refuses to start)\n"
    "  --config FILE       read `name = value` lines, names as the "
    "flags\n"
    "  --help              show this\n";

static const struct option main_opts[] = {
    {"scheduler", required_argument, NULL, 0},
    {"home", required_argument, NULL, 0},
    {"name", required_argument, NULL, 0},
    {"slots", required_argument, NULL, 0},
    {"cpu", required_argument, NULL, 0},
    {"mem", required_argument, NULL, 0},
    {"label", required_argument, NULL, 0},
    {"token-file", required_argument, NULL, 0},
    {"tls-ca", required_argument, NULL, 0},
    {"drain-timeout", required_argument, NULL, 0},
    {"run-as", required_argument, NULL, 0},
    {"allow-root", no_argument, NULL, 0},
    {"config", required_argument, NULL, 0},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parses a whole unsigned number no larger than max, with an optional
 * binary K/M/G/T suffix when suffixes. */
static int
main_number(const char *s, uint64_t max, bool suffixes, uint64_t *out)
{
	char              *end = NULL;
	unsigned long long v;
	uint64_t           mult = 1;

	if (s[0] < '0' || s[0] > '9')
		return TROUPE_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return TROUPE_EINVAL;
	if (suffixes && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'k':
		case 'K': mult = 1ull << 10; break;
		case 'm':
		case 'M': mult = 1ull << 20; break;
		case 'g':
		case 'G': mult = 1ull << 30; break;
		case 't':
		case 'T': mult = 1ull << 40; break;
		default: return TROUPE_EINVAL;
		}
		end++;
	}
	if (*end != '\0' || v > max / mult)
		return TROUPE_EINVAL;
	*out = v * mult;
	return 0;
}

static bool
main_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* A worker name as the scheduler accepts it: 1-63 letters, digits, '.',
 * '_', '-', starting with a letter or digit. */
static bool
main_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '.' || s[0] == '_' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!main_name_char(s[i]))
			return false;
	return true;
}

static int main_config(main_conf *m, const char *path);

static int
main_replace(char **slot, const char *val)
{
	char *copy = strdup(val);

	if (copy == NULL)
		return TROUPE_ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/* Applies one setting, from a flag or a config line.  On a bad value,
 * returns TROUPE_EINVAL with m->why set. */
static int
main_set(void *arg, const char *key, const char *val)
{
	main_conf *m = arg;
	uint64_t   v;

	m->why[0] = '\0';
	if (strcmp(key, "scheduler") == 0) {
		if (val[0] == '\0' || strstr(val, "://") == NULL) {
			snprintf(m->why, sizeof(m->why),
			         "--scheduler wants a URL like "
			         "tcp://host:port, not '%s'",
			         val);
			return TROUPE_EINVAL;
		}
		return main_replace(&m->scheduler, val);
	}
	if (strcmp(key, "home") == 0) {
		if (val[0] == '\0') {
			snprintf(m->why, sizeof(m->why), "--home is empty");
			return TROUPE_EINVAL;
		}
		return setenv("TROUPE_HOME", val, 1) == 0 ? 0 : TROUPE_ENOMEM;
	}
	if (strcmp(key, "name") == 0) {
		if (!main_name_ok(val)) {
			snprintf(m->why, sizeof(m->why),
			         "--name '%.63s' must be 1-63 letters, digits, "
			         "'.', '_' or '-', starting with a letter or "
			         "digit",
			         val);
			return TROUPE_EINVAL;
		}
		return main_replace(&m->name, val);
	}
	if (strcmp(key, "slots") == 0) {
		if (main_number(val, 100000, false, &v) != 0 || v == 0) {
			snprintf(m->why, sizeof(m->why),
			         "--slots wants a number from 1 to 100000, not "
			         "'%s'",
			         val);
			return TROUPE_EINVAL;
		}
		m->slots = (uint32_t)v;
		return 0;
	}
	if (strcmp(key, "cpu") == 0) {
		if (main_number(val, UINT32_MAX, false, &v) != 0) {
			snprintf(m->why, sizeof(m->why),
			         "--cpu wants thousandths of a CPU (2000 for "
			         "two CPUs), not '%s'",
			         val);
			return TROUPE_EINVAL;
		}
		m->cpu_milli = (uint32_t)v;
		return 0;
	}
	if (strcmp(key, "mem") == 0) {
		if (main_number(val, UINT64_MAX, true, &v) != 0) {
			snprintf(m->why, sizeof(m->why),
			         "--mem wants bytes, with an optional K, M, G "
			         "or T, not '%s'",
			         val);
			return TROUPE_EINVAL;
		}
		m->mem_bytes = v;
		return 0;
	}
	if (strcmp(key, "label") == 0) {
		const char *eq = strchr(val, '=');

		if (eq == NULL || eq == val) {
			snprintf(m->why, sizeof(m->why),
			         "--label wants KEY=VALUE, not '%s'", val);
			return TROUPE_EINVAL;
		}
		if (m->n_labels == MAIN_MAX_LABELS) {
			snprintf(m->why, sizeof(m->why), "more than %d labels",
			         MAIN_MAX_LABELS);
			return TROUPE_EINVAL;
		}
		m->label_keys[m->n_labels] = strndup(val, (size_t)(eq - val));
		m->label_vals[m->n_labels] = strdup(eq + 1);
		m->n_labels++;
		if (m->label_keys[m->n_labels - 1] == NULL ||
		    m->label_vals[m->n_labels - 1] == NULL)
			return TROUPE_ENOMEM;
		return 0;
	}
	if (strcmp(key, "token-file") == 0)
		return main_replace(&m->token_file, val);
	if (strcmp(key, "tls-ca") == 0)
		return main_replace(&m->tls_ca, val);
	if (strcmp(key, "drain-timeout") == 0) {
		if (main_number(val, 86400, false, &v) != 0) {
			snprintf(m->why, sizeof(m->why),
			         "--drain-timeout wants seconds (0 to 86400), "
			         "not '%s'",
			         val);
			return TROUPE_EINVAL;
		}
		m->drain_timeout_s = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "run-as") == 0) {
		if (val[0] == '\0') {
			snprintf(m->why, sizeof(m->why), "--run-as is empty");
			return TROUPE_EINVAL;
		}
		return main_replace(&m->run_as, val);
	}
	if (strcmp(key, "allow-root") == 0) {
		/* A flag has no value; a config line may say yes or no. */
		if (val == NULL || val[0] == '\0' || strcmp(val, "1") == 0 ||
		    strcmp(val, "yes") == 0 || strcmp(val, "true") == 0) {
			m->allow_root = true;
		} else if (strcmp(val, "0") == 0 || strcmp(val, "no") == 0 ||
		           strcmp(val, "false") == 0) {
			m->allow_root = false;
		} else {
			snprintf(m->why, sizeof(m->why),
			         "allow-root wants yes or no, not '%s'", val);
			return TROUPE_EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "config") == 0) {
		if (m->depth > 0) {
			snprintf(m->why, sizeof(m->why),
			         "a config file cannot include another");
			return TROUPE_EINVAL;
		}
		return main_config(m, val);
	}
	snprintf(m->why, sizeof(m->why), "unknown setting '%s'", key);
	return TROUPE_EINVAL;
}

static int
main_config(main_conf *m, const char *path)
{
	char err[512];
	int  rv;

	m->depth++;
	rv = conf_file_each(path, main_set, m, err, sizeof(err));
	m->depth--;
	if (rv != 0) {
		if (m->why[0] != '\0')
			fprintf(stderr, "troupe-worker: %s: %s\n", err, m->why);
		else
			fprintf(stderr, "troupe-worker: %s\n", err);
		m->why[0] = '\0';
		return TROUPE_EINVAL;
	}
	return 0;
}

static void
main_conf_free(main_conf *m)
{
	free(m->scheduler);
	free(m->name);
	free(m->token_file);
	free(m->tls_ca);
	free(m->run_as);
	for (size_t i = 0; i < m->n_labels; i++) {
		free(m->label_keys[i]);
		free(m->label_vals[i]);
	}
}

/* Decides whom items run as: *user gets the --run-as user when privileges
 * must be dropped to it (else stays zeroed, *as_user false).  Refuses (one
 * line on stderr, returns 2) a root worker told neither --run-as nor
 * --allow-root, an unknown user, --run-as root, a --run-as user a non-root
 * worker cannot become, and --run-as without troupe-shim. */
static int
main_run_as(const main_conf *m, const char *shim, launch_user *user,
            bool *as_user)
{
	char  err[512];
	uid_t me = geteuid();

	*as_user = false;
	if (m->run_as == NULL) {
		if (me == 0 && !m->allow_root) {
			fprintf(stderr,
			        "troupe-worker: refusing to run items as root: "
			        "give --run-as USER to run them as that user, "
			        "or --allow-root if root is really meant\n");
			return 2;
		}
		return 0;
	}
	if (launch_user_resolve(m->run_as, user, err, sizeof(err)) != 0) {
		fprintf(stderr, "troupe-worker: %s\n", err);
		return 2;
	}
	if (user->uid_n == 0) {
		fprintf(stderr,
		        "troupe-worker: --run-as %s is root: give an "
		        "unprivileged user, or --allow-root instead\n",
		        m->run_as);
		return 2;
	}
	if (me != 0) {
		if (user->uid_n == me)
			return 0; /* they run as that user already */
		fprintf(stderr,
		        "troupe-worker: --run-as %s needs the worker to start "
		        "as root (it runs as uid %lu)\n",
		        user->name, (unsigned long)me);
		return 2;
	}
	if (shim == NULL) {
		fprintf(stderr,
		        "troupe-worker: --run-as needs troupe-shim beside "
		        "troupe-worker, to drop privileges; it is not there\n");
		return 2;
	}
	/* What items inherit from us (launch_env) names their user; a
	 * task's --env still overrides it. */
	if (setenv("HOME", user->home, 1) != 0 ||
	    setenv("USER", user->name, 1) != 0 ||
	    setenv("LOGNAME", user->name, 1) != 0) {
		fprintf(stderr, "troupe-worker: out of memory\n");
		return 1;
	}
	*as_user = true;
	return 0;
}

/* Parses argv into m; returns 0, or the exit status (2 bad usage, -1 for
 * --help). */
static int
main_parse(main_conf *m, int argc, char **argv)
{
	int c, idx = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", main_opts, &idx)) != -1) {
		if (c == 'h')
			return -1;
		if (c == '?') {
			if (optopt != 0)
				fprintf(stderr,
				        "troupe-worker: bad option -%c (see "
				        "--help)\n",
				        optopt);
			else
				fprintf(stderr,
				        "troupe-worker: bad option %s (see "
				        "--help)\n",
				        argv[optind - 1]);
			return 2;
		}
		if (c == ':') {
			fprintf(stderr, "troupe-worker: %s needs a value\n",
			        argv[optind - 1]);
			return 2;
		}
		if (main_set(m, main_opts[idx].name, optarg) != 0) {
			if (m->why[0] != '\0')
				fprintf(stderr, "troupe-worker: %s\n", m->why);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(
		    stderr,
		    "troupe-worker: unexpected argument '%s' (see --help)\n",
		    argv[optind]);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	main_conf    m;
	workerd_conf wc;
	workerd     *w = NULL;
	uv_loop_t    loop;
	char         host[256];
	char         name[64];
	char         addr[4200];
	char         err[512];
	char        *token = NULL;
	char        *shim = NULL;
	launch_user  user;
	bool         as_user = false;
	size_t       hostlen = sizeof(host);
	int          rv, code = 1;
	bool         loop_open = false;

	memset(&m, 0, sizeof(m));
	memset(&user, 0, sizeof(user));
	m.drain_timeout_s = 30;
	troupe_log_init("troupe-worker", LOG_LVL_INFO);
	/* Item and replica stdin are socketpairs (libuv's pipes), and bash, as
	 * Debian builds it, sources ~/.bashrc when its stdin is a socket and
	 * SHLVL is below 1 (it guesses it was started by sshd).  A task's
	 * `bash -c` must not pay for an interactive profile. */
	{
		const char *lvl = getenv("SHLVL");
		if (lvl == NULL || atoi(lvl) < 1)
			setenv("SHLVL", "1", 1);
	}
	if ((rv = main_parse(&m, argc, argv)) != 0) {
		if (rv == -1) {
			fputs(main_usage, stdout);
			code = 0;
		} else {
			code = rv;
		}
		goto done;
	}
	if (m.scheduler == NULL) {
		if (troupe_default_worker_addr(addr, sizeof(addr)) != 0) {
			fprintf(stderr, "troupe-worker: no scheduler address: "
			                "give --scheduler, --home or set "
			                "TROUPE_HOME\n");
			code = 2;
			goto done;
		}
		m.scheduler = strdup(addr);
	}
	if ((rv = troupe_token_read(m.token_file, &token, err, sizeof(err))) !=
	    0) {
		fprintf(stderr, "troupe-worker: %s\n", err);
		code = 2;
		goto done;
	}
	/* Items and replicas inherit our environment: the token, which
	 * would let them act as this worker, is not theirs to see. */
	unsetenv("TROUPE_TOKEN");
	unsetenv("TROUPE_TOKEN_FILE");
	if (m.scheduler == NULL) {
		fprintf(stderr, "troupe-worker: out of memory\n");
		goto done;
	}
	if (!troupe_addr_is_local(m.scheduler) && token == NULL) {
		fprintf(stderr,
		        "troupe-worker: refusing to connect to %s without a "
		        "token: give --token-file, TROUPE_TOKEN or "
		        "TROUPE_TOKEN_FILE\n",
		        m.scheduler);
		code = 2;
		goto done;
	}
	/* Commands run under troupe-shim, so that none outlives us (and so
	 * that --run-as can drop privileges). */
	shim = launch_find_shim();
	if ((rv = main_run_as(&m, shim, &user, &as_user)) != 0) {
		code = rv;
		goto done;
	}
	if (shim == NULL)
		log_warn("troupe-shim is not beside troupe-worker: the "
		         "processes of items and replicas may outlive this "
		         "worker if it is killed with SIGKILL");
	if (as_user)
		log_info(
		    "item and replica processes run as %s (uid %s, gid %s), "
		    "starting in %s (or /)",
		    user.name, user.uid, user.gid, user.home);
	else if (geteuid() == 0)
		log_warn(
		    "item and replica processes run as root (--allow-root)");
	if (uv_os_gethostname(host, &hostlen) != 0)
		snprintf(host, sizeof(host), "localhost");
	if (m.name == NULL) {
		/* HOST-PID, made into a valid name. */
		int n = snprintf(name, sizeof(name), "%.50s-%d", host,
		                 (int)getpid());

		for (int i = 0; i < n && i < (int)sizeof(name) - 1; i++)
			if (!main_name_char(name[i]))
				name[i] = '-';
		if (!main_name_ok(name))
			name[0] = 'w';
	} else {
		snprintf(name, sizeof(name), "%s", m.name);
	}
	if (m.slots == 0)
		m.slots = uv_available_parallelism();
	if (m.cpu_milli == 0)
		m.cpu_milli = uv_available_parallelism() * 1000;
	if (m.mem_bytes == 0) {
		uint64_t total = uv_get_total_memory();
		uint64_t limit = uv_get_constrained_memory();

		m.mem_bytes = limit > 0 && limit < total ? limit : total;
	}

	/* A command that exits without reading its stdin must not kill us
	 * when we write the item to it. */
	signal(SIGPIPE, SIG_IGN);
	if ((rv = uv_loop_init(&loop)) != 0) {
		fprintf(stderr, "troupe-worker: %s\n", uv_strerror(rv));
		goto done;
	}
	loop_open = true;
	memset(&wc, 0, sizeof(wc));
	wc.scheduler = m.scheduler;
	wc.token = token;
	wc.tls_ca = m.tls_ca;
	wc.name = name;
	wc.host = host;
	wc.slots = m.slots;
	wc.cpu_milli = m.cpu_milli;
	wc.mem_bytes = m.mem_bytes;
	wc.label_keys = (const char **)m.label_keys;
	wc.label_vals = (const char **)m.label_vals;
	wc.n_labels = m.n_labels;
	wc.drain_timeout_ms = m.drain_timeout_s * 1000;
	wc.signals = true;
	wc.runner.shim = shim;
	wc.runner.user = as_user ? &user : NULL;
	if ((rv = workerd_open(&loop, &wc, &w, err, sizeof(err))) != 0) {
		fprintf(stderr, "troupe-worker: %s\n", err);
		code = rv == TROUPE_EINVAL ? 2 : 1;
		goto done;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	code = workerd_exit_code(w);
done:
	workerd_free(w);
	if (loop_open) {
		/* Close whatever a failed start left open, then the loop. */
		uv_run(&loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&loop) != 0)
			log_warn("the loop still has open handles at exit");
	}
	free(token);
	free(shim);
	launch_user_free(&user);
	main_conf_free(&m);
	troupe_exit(code);
}
