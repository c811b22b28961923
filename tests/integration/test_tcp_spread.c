/*
 * A scheduler on TCP with a token file and three workers joining it over
 * TCP (standing in for three hosts): a map's items spread over all three,
 * each worker holds its slots and the execution's --concurrency holds
 * across the cluster.  The CLI reaches it through TROUPE_ADDR and
 * TROUPE_TOKEN_FILE, as a user on another host would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

static void
test_spread_over_three(void **state)
{
	h_cluster *c =
	    h_start(&(h_opts){.workers = 3, .slots = 2, .tcp = true});
	const char          *stamps = h_path(c, "stamps");
	const char          *id;
	char                 cmd[512], *out, **lines;
	Troupe__ItemResult **items;
	int64_t             *s, *e;
	int                  n[3], most, all;

	assert_non_null(strstr(h_api_addr(c), "tcp://127.0.0.1:"));
	assert_non_null(strstr(h_worker_addr(c), "tcp://127.0.0.1:"));

	/* The CLI lists the three workers. */
	assert_int_equal(h_run(c, &out, NULL, "troupe workers"), 0);
	h_assert_contains(out, "w1");
	h_assert_contains(out, "w2");
	h_assert_contains(out, "w3");

	/* 5 at once needs all three workers: two hold only 4 slots. */
	snprintf(cmd, sizeof(cmd), H_STAMP_CMD, "0.3", stamps);
	assert_int_equal(h_run(c, NULL, NULL, "seq 24 > items"), 0);
	id = h_map_detach(c, NULL, "--items items --concurrency 5 --cmd %s",
	                  h_quote(c, cmd));
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 24);

	/* Every worker ran items, never more than its 2 slots at once. */
	for (int w = 0; w < 3; w++) {
		char name[8];
		snprintf(name, sizeof(name), "w%d", w + 1);
		most = h_overlap_of(items, 24, name, &n[w]);
		fprintf(stderr, "%s: %d items, at most %d at once\n", name,
		        n[w], most);
		assert_true(n[w] > 0);
		assert_in_range(most, 1, 2);
	}
	assert_int_equal(n[0] + n[1] + n[2], 24);

	/* The execution's limit held over the whole cluster (every attempt
	 * recorded, from the stamp file) and was reached. */
	all = h_read_stamps(c, stamps, &s, &e);
	assert_int_equal(all, 24);
	most = h_max_overlap(s, e, all);
	fprintf(stderr, "cluster: at most %d at once (limit 5)\n", most);
	assert_in_range(most, 4, 5);

	/* The same through the blocking CLI: outputs in order. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 30 | troupe map --concurrency 6 --cmd "
	                       "'echo {}'"),
	                 0);
	assert_int_equal(h_split(c, out, &lines), 30);
	for (int i = 0; i < 30; i++)
		assert_int_equal(atoi(lines[i]), i + 1);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_spread_over_three),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
