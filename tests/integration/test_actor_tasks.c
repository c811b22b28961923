/*
 * Registered tasks bound to an actor environment (issue 3): two tasks that
 * name the same environment, run as two executions at once, share its
 * replicas: every output comes from one of the environment's replica
 * processes, never more of them than --replicas, and a map of `--actor`
 * alone runs the environment's own command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

/* Each output is "<item>:<pid of the replica's shell>". */
#define ACTOR_CMD "while read x; do echo \"$x:$$\"; done"

/* Collects the distinct pids of outputs[] into pids (at most max). */
static int
distinct_pids(char **lines, int n, long *pids, int max, int *npids)
{
	for (int i = 0; i < n; i++) {
		char *colon = strrchr(lines[i], ':');
		long  pid;
		int   seen = 0;

		if (colon == NULL)
			return -1;
		pid = strtol(colon + 1, NULL, 10);
		for (int k = 0; k < *npids; k++)
			seen |= pids[k] == pid;
		if (!seen && *npids < max)
			pids[(*npids)++] = pid;
	}
	return 0;
}

static void
test_tasks_share_replicas(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 2, .slots = 4});
	char       *out, **lines;
	const char *a, *b;
	long        pids[16];
	int         npids = 0, n;

	assert_int_equal(h_run(c, NULL, NULL,
	                       "troupe actor create shared --cmd '%s' "
	                       "--replicas 2 --ttl 60",
	                       ACTOR_CMD),
	                 0);
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "troupe task register first --actor shared --cmd x"),
	    0);
	assert_int_equal(
	    h_run(c, NULL, NULL,
	          "troupe task register second --actor shared --cmd x"),
	    0);
	/* Both executions at once, so they compete for the two replicas. */
	a = h_map_detach(c, "1\n2\n3\n4\n5\n6\n7\n8\n", "--task first");
	b = h_map_detach(c, "9\n10\n11\n12\n13\n14\n15\n16\n", "--task second");
	for (int k = 0; k < 2; k++) {
		const char *id = k == 0 ? a : b;

		assert_non_null(h_wait_done(c, id, 60000));
		assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id),
		                 0);
		n = h_split(c, out, &lines);
		assert_int_equal(n, 8);
		for (int i = 0; i < n; i++) {
			char want[16];
			snprintf(want, sizeof(want), "%d:", k * 8 + i + 1);
			assert_true(strncmp(lines[i], want, strlen(want)) == 0);
		}
		assert_int_equal(distinct_pids(lines, n, pids, 16, &npids), 0);
	}
	/* Sixteen items, two executions, two tasks: two replica processes. */
	assert_true(npids >= 1 && npids <= 2);

	/* `--actor` alone runs the environment's command on the same
	 * replicas. */
	assert_int_equal(
	    h_run_in(c, "17\n", &out, NULL, "troupe map --actor shared"), 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 1);
	assert_true(strncmp(lines[0], "17:", 3) == 0);
	{
		int before = npids;
		assert_int_equal(distinct_pids(lines, n, pids, 16, &npids), 0);
		assert_int_equal(npids, before);
	}
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_tasks_share_replicas),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
