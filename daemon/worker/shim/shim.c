/*
 * troupe-shim: what troupe-worker starts instead of `/bin/sh -c CMD`, so
 * that no process of an item or a replica outlives the worker, even one
 * killed with SIGKILL.
 *
 *	troupe-shim [-p PPID] [-m BYTES] [-g GRACE_MS]
 *	            [-u UID -G GID -S GID,GID,... -d DIR] -c CMD
 *
 * It asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG;
 * -p names the parent it expects, closing the race with a parent that
 * died before the request), leads a session of its own, and runs
 * `/bin/sh -c CMD` as its child in that session's process group, with its
 * address space capped at BYTES (-m, RLIMIT_AS) when given.
 *
 * With -u (the worker's --run-as), the shim first becomes that user, for
 * good: its supplementary groups become -S's list (setgroups), its group
 * -G (setgid), its user UID (setuid, real, effective and saved alike); it
 * checks that every id stuck and that it cannot become root again
 * (setuid(0) must fail), then enters DIR (/ when it cannot).  Any failure
 * ends it with status 127 before the command runs.  All of it happens
 * before PR_SET_PDEATHSIG, which a change of credentials clears.
 *
 * Signals: SIGTERM (the worker stops it, or the worker died) goes to the
 * whole group; whatever is still there GRACE_MS later (default 2000) gets
 * SIGKILL, the shim included.  SIGINT, SIGHUP and SIGQUIT are passed on to
 * the group.  SIGKILL of the group (what the worker does on a timeout)
 * needs no help.  When the command ends, the shim sends SIGTERM to what it
 * left behind in the group and exits with the command's status: the same
 * exit code, or death by the same signal, so the worker sees exactly what
 * it would have seen without the shim.
 *
 * Single-threaded, no allocation: every signal is blocked and taken
 * synchronously with sigtimedwait.  Nothing is written to stdout, which
 * belongs to the command.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHIM_GRACE_MS   2000
#define SHIM_MAX_GROUPS 1024 /* LAUNCH_MAX_GROUPS (launch.h) */

static void
shim_usage(void)
{
	fprintf(stderr, "usage: troupe-shim [-p PPID] [-m BYTES] "
	                "[-g GRACE_MS] [-u UID -G GID -S GID,... -d DIR] "
	                "-c CMD\n");
	exit(127);
}

/* Says why and exits 127, from the vfork child too (no stdio there). */
static void
shim_die(const char *what)
{
	const char  *e = strerror(errno);
	struct iovec v[] = {
	    {"troupe-shim: ", 13},
	    {(void *)what, strlen(what)},
	    {": ", 2},
	    {(void *)e, strlen(e)},
	    {"\n", 1},
	};

	(void)writev(2, v, 5);
	_exit(127);
}

static unsigned long long
shim_number(const char *s)
{
	char              *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		shim_usage();
	return v;
}

static long long
shim_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses -S's comma-separated gids into groups; returns how many. */
static size_t
shim_groups(const char *s, gid_t *groups)
{
	char   one[24];
	size_t n = 0;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(one) || n == SHIM_MAX_GROUPS)
			shim_usage();
		memcpy(one, s, len);
		one[len] = '\0';
		groups[n++] = (gid_t)shim_number(one);
		s += len;
		if (*s == ',')
			s++;
	}
	return n;
}

/* Becomes uid:gid with groups for good, checking it: a shim that could
 * still become root would be worse than none. */
static void
shim_become(uid_t uid, gid_t gid, const gid_t *groups, size_t n,
            const char *dir)
{
	if (setgroups(n, groups) != 0)
		shim_die("cannot set the groups of --run-as");
	if (setgid(gid) != 0)
		shim_die("cannot set the group of --run-as");
	if (setuid(uid) != 0)
		shim_die("cannot become the --run-as user");
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid) {
		errno = EPERM;
		shim_die("the --run-as user did not stick");
	}
	if (uid != 0 && setuid(0) == 0) {
		errno = EPERM;
		shim_die("could become root again after dropping privileges");
	}
	if (chdir(dir) != 0 && chdir("/") != 0)
		shim_die("cannot enter /");
}

/* Ends the shim the way the command ended. */
static void
shim_exit_like(int status)
{
	struct rlimit none = {0, 0};
	sigset_t      one;
	int           sig;

	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
	/* Die of the same signal, without a core file of our own. */
	setrlimit(RLIMIT_CORE, &none);
	signal(sig, SIG_DFL);
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	kill(getpid(), sig);
	_exit(128 + sig); /* a signal whose default is to be ignored */
}

int
main(int argc, char **argv)
{
	/* volatile: they live across vfork(), which shares this frame. */
	const char *volatile cmd = NULL;
	volatile unsigned long long ppid = 0, mem = 0, grace = SHIM_GRACE_MS;
	static gid_t                groups[SHIM_MAX_GROUPS];
	size_t                      n_groups = 0;
	const char                 *uid = NULL, *gid = NULL, *dir = NULL;
	sigset_t                    set, old;
	pid_t                       child;
	volatile long long          deadline = -1;
	volatile int                status = 0;
	int                         opt;

	while ((opt = getopt(argc, argv, "+p:m:g:u:G:S:d:c:")) != -1) {
		switch (opt) {
		case 'p': ppid = shim_number(optarg); break;
		case 'm': mem = shim_number(optarg); break;
		case 'g': grace = shim_number(optarg); break;
		case 'u': uid = optarg; break;
		case 'G': gid = optarg; break;
		case 'S': n_groups = shim_groups(optarg, groups); break;
		case 'd': dir = optarg; break;
		case 'c': cmd = optarg; break;
		default: shim_usage();
		}
	}
	if (cmd == NULL || optind != argc)
		shim_usage();
	/* -u comes with all of -G, -S and -d, or none of them does. */
	if ((uid != NULL) != (gid != NULL) || (uid != NULL) != (n_groups > 0) ||
	    (uid != NULL) != (dir != NULL))
		shim_usage();
	if (uid != NULL)
		shim_become((uid_t)shim_number(uid), (gid_t)shim_number(gid),
		            groups, n_groups, dir);

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, &old);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (ppid != 0 && (unsigned long long)getppid() != ppid)
		_exit(128 + SIGTERM); /* the worker is gone already */
	/* The worker starts us detached already; by hand we lead anyway. */
	(void)setsid();

	/* vfork: the shim runs once per item, and copying even its small
	 * address space shows.  The child only makes system calls (its
	 * rlimit and signal mask are its own) before exec. */
	if ((child = vfork()) < 0) {
		fprintf(stderr, "troupe-shim: fork: %s\n", strerror(errno));
		_exit(127);
	}
	if (child == 0) {
		char *args[] = {"/bin/sh", "-c", (char *)cmd, NULL};

		if (mem > 0) {
			struct rlimit rl = {(rlim_t)mem, (rlim_t)mem};

			if (setrlimit(RLIMIT_AS, &rl) != 0)
				shim_die("cannot cap the memory");
		}
		sigprocmask(SIG_SETMASK, &old, NULL);
		execv(args[0], args);
		shim_die("cannot run /bin/sh");
	}

	for (;;) {
		siginfo_t       info;
		struct timespec ts;
		int             sig;

		if (deadline >= 0) {
			long long left = deadline - shim_now_ms();

			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			sig = sigtimedwait(&set, &info, &ts);
		} else {
			sig = sigwaitinfo(&set, &info);
		}
		if (sig < 0) {
			if (errno == EAGAIN)
				kill(0, SIGKILL); /* the grace is over: all */
			continue;
		}
		if (sig == SIGCHLD) {
			pid_t p;
			int   st;

			while ((p = waitpid(-1, &st, WNOHANG)) > 0)
				if (p == child) {
					status = st;
					child = 0;
				}
			if (child == 0)
				break;
			continue;
		}
		/* Ours, sent to the group: already handled. */
		if (info.si_code == SI_USER && info.si_pid == getpid())
			continue;
		kill(0, sig);
		if (sig == SIGTERM && deadline < 0)
			deadline = shim_now_ms() + (long long)grace;
	}
	/* What the command left behind in the group goes with it. */
	kill(0, SIGTERM);
	shim_exit_like(status);
	return 0;
}
