/*
 * Items never run as root by accident (README, Security): a worker started
 * as root refuses to start without --run-as USER or --allow-root; with
 * --run-as, items and actor replicas (and the troupe-shim above them) run
 * as that user, in its home, and cannot write what only root may; with
 * --allow-root they run as root.
 *
 * Needs root (to be root, and to create the user); skipped otherwise.  The
 * user is made with useradd for this test and removed after it, whatever
 * happened.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "skip.h"

static char ra_user[32]; /* the user this test made, "" when none */
static char ra_home[64]; /* its home directory */

/* Runs a shell command outside any cluster; returns its exit status. */
static int
ra_sh(const char *fmt, const char *arg)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), fmt, arg, arg);
	return system(cmd);
}

/* Makes a user with a home directory of its own, or skips. */
static bool
ra_make_user(void)
{
	if (geteuid() != 0)
		return false;
	snprintf(ra_user, sizeof(ra_user), "trra%d", (int)getpid());
	snprintf(ra_home, sizeof(ra_home), "/tmp/%s-home", ra_user);
	if (ra_sh("useradd -M -d /tmp/%s-home -s /bin/sh %s", ra_user) != 0) {
		ra_user[0] = '\0';
		fail_msg("useradd failed (is the passwd package installed?)");
	}
	if (mkdir(ra_home, 0700) != 0 ||
	    ra_sh("chown %s: /tmp/%s-home", ra_user) != 0)
		fail_msg("cannot make %s", ra_home);
	return true;
}

static int
ra_teardown(void **state)
{
	int rv = h_teardown(state);

	if (ra_user[0] != '\0') {
		(void)ra_sh("userdel %s; rm -rf /tmp/%s-home", ra_user);
		ra_user[0] = '\0';
	}
	return rv;
}

/* A root worker told neither flag refuses, in one line saying what to
 * do; so does one told a user that does not exist, from a flag or a
 * config file. */
static void
test_root_refuses(void **state)
{
	h_cluster *c;
	char      *err;
	int        rv;

	(void)state;
	if (geteuid() != 0)
		T_SKIP("needs root");
	c = h_start(&(h_opts){.workers = 0});
	h_set_timeout(c, 20000);
	rv = h_run(c, NULL, &err, "troupe-worker --home %s --scheduler %s",
	           h_dir(c), h_worker_addr(c));
	assert_int_not_equal(rv, 0);
	h_assert_contains(err, "refusing to run items as root");
	h_assert_contains(err, "--run-as USER");
	h_assert_contains(err, "--allow-root");
	assert_int_equal(h_lines(err), 1);

	rv = h_run(c, NULL, &err,
	           "troupe-worker --home %s --scheduler %s --run-as "
	           "no-such-user-xyz",
	           h_dir(c), h_worker_addr(c));
	assert_int_not_equal(rv, 0);
	h_assert_contains(err, "no user 'no-such-user-xyz'");
	assert_int_equal(h_lines(err), 1);

	rv = h_run(c, NULL, &err,
	           "echo 'run-as = no-such-user-xyz' > w.conf && "
	           "troupe-worker --home %s --scheduler %s --config w.conf",
	           h_dir(c), h_worker_addr(c));
	assert_int_not_equal(rv, 0);
	h_assert_contains(err, "no user 'no-such-user-xyz'");

	rv = h_run(c, NULL, &err,
	           "troupe-worker --home %s --scheduler %s --run-as root",
	           h_dir(c), h_worker_addr(c));
	assert_int_not_equal(rv, 0);
	h_assert_contains(err, "is root");
	h_done(c);
}

/* --run-as: items, their shim and replicas run as the user, with its
 * groups only (none of root's), HOME and USER, in its home directory,
 * and cannot write into /root.  The flag comes from a config file here. */
static void
test_run_as_user(void **state)
{
	h_cluster *c;
	char       conf[128], want[256], *out, *err, **lines;
	FILE      *f;
	int        n;

	(void)state;
	if (!ra_make_user())
		T_SKIP("needs root");
	snprintf(conf, sizeof(conf), "/tmp/%s.conf", ra_user);
	if ((f = fopen(conf, "w")) == NULL)
		fail_msg("cannot write %s", conf);
	fprintf(f, "run-as = %s\n", ra_user);
	fclose(f);
	/* The worker inherits root's group as a supplementary group: items
	 * must not keep it. */
	if (setgroups(1, &(gid_t){0}) != 0)
		fail_msg("setgroups: %s", strerror(errno));
	{
		char args[160];

		snprintf(args, sizeof(args), "--config %s", conf);
		c = h_start(&(h_opts){.workers = 1, .worker_args = args});
	}
	unlink(conf);

	/* The item, and the shim that is its parent (real, effective, saved
	 * and filesystem uids alike). */
	assert_int_equal(
	    h_run(c, &out, &err,
	          "echo x | troupe map --cmd 'id -u; id -G; echo \"$HOME "
	          "$USER $LOGNAME\"; pwd; grep ^Uid: /proc/$PPID/status'"),
	    0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 5);
	{
		char uid[32], gid[32];

		assert_int_equal(h_run(c, &out, NULL, "id -u %s", ra_user), 0);
		snprintf(uid, sizeof(uid), "%s", h_chomp(out));
		assert_int_equal(h_run(c, &out, NULL, "id -g %s", ra_user), 0);
		snprintf(gid, sizeof(gid), "%s", h_chomp(out));
		assert_string_equal(lines[0], uid);
		assert_string_equal(lines[1], gid);
		snprintf(want, sizeof(want), "%s %s %s", ra_home, ra_user,
		         ra_user);
		assert_string_equal(lines[2], want);
		assert_string_equal(lines[3], ra_home);
		snprintf(want, sizeof(want), "Uid:\t%s\t%s\t%s\t%s", uid, uid,
		         uid, uid);
		assert_string_equal(lines[4], want);

		/* Root's files are out of reach. */
		unlink("/root/troupe-runas-probe");
		assert_int_not_equal(h_run(c, NULL, &err,
		                           "echo x | troupe map --cmd 'touch "
		                           "/root/troupe-runas-probe'"),
		                     0);
		assert_int_not_equal(access("/root/troupe-runas-probe", F_OK),
		                     0);

		/* A replica too, for every item it takes. */
		assert_int_equal(
		    h_run(c, &out, &err,
		          "seq 3 | troupe map --replicas 1 --cmd 'while read "
		          "x; do id -u; done'"),
		    0);
		snprintf(want, sizeof(want), "%s\n%s\n%s\n", uid, uid, uid);
		assert_string_equal(out, want);
	}
	h_done(c);
	(void)setgroups(0, NULL);
}

/* --allow-root (which the harness gives a root worker): items run as
 * root, as asked. */
static void
test_allow_root(void **state)
{
	h_cluster *c;
	char      *out;

	(void)state;
	if (geteuid() != 0)
		T_SKIP("needs root");
	c = h_start(&(h_opts){.workers = 1, .worker_args = "--allow-root"});
	assert_int_equal(
	    h_run(c, &out, NULL, "echo x | troupe map --cmd 'id -u'"), 0);
	assert_string_equal(out, "0\n");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_root_refuses),
	    cmocka_unit_test_teardown(test_run_as_user, ra_teardown),
	    H_TEST(test_allow_root),
	};

	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
