/*
 * `troupe up` runs a local cluster in the foreground on TROUPE_HOME; the
 * other commands find it with no flag; Ctrl-C (SIGINT) stops it cleanly.
 * This is the README's quick start, run as a script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

/* Starts `troupe up` in the background, waits (bounded) for its API,
 * runs the example map, lists workers, then sends SIGINT and
 * reports up's exit status on the last line. */
#define UP_SCRIPT                                                              \
	"troupe up --workers 2 --slots 3 > up.log 2>&1 & up=$!\n"              \
	"i=0; until troupe health > /dev/null 2>&1; do\n"                      \
	"  i=$((i+1)); [ $i -gt 300 ] && { echo 'up: no API'; exit 9; }\n"     \
	"  sleep 0.1; done\n"                                                  \
	"i=0; until [ \"$(troupe workers | grep -ci ready)\" -ge 2 ]; do\n"    \
	"  i=$((i+1)); [ $i -gt 300 ] && { echo 'up: no workers'; exit 9; }\n" \
	"  sleep 0.1; done\n"                                                  \
	"seq 100 | troupe map --cmd 'test {} -gt 11 && echo true || echo "     \
	"false' --concurrency 10 > map.out; echo \"map=$?\"\n"                 \
	"kill -INT $up; wait $up; echo \"up=$?\"\n"

static void
test_up_map_stop(void **state)
{
	h_cluster *c = h_start(&(h_opts){.no_scheduler = true});
	char      *out, *map, **lines;
	int        n;

	assert_int_equal(h_run(c, &out, NULL, UP_SCRIPT), 0);
	n = h_split(c, out, &lines);
	if (n != 2 || strcmp(lines[0], "map=0") != 0 ||
	    strcmp(lines[1], "up=0") != 0) {
		fprintf(stderr, "script said:\n%s\nup.log:\n%s\n", out,
		        h_slurp(c, h_path(c, "up.log")));
		fail_msg("troupe up / map / Ctrl-C did not all succeed");
	}
	map = h_slurp(c, h_path(c, "map.out"));
	assert_int_equal(h_split(c, map, &lines), 100);
	assert_string_equal(lines[0], "false");
	assert_string_equal(lines[11], "true");
	/* It printed where it listens. */
	h_assert_contains(h_slurp(c, h_path(c, "up.log")), h_dir(c));
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_up_map_stop),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
