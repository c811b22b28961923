/*
 * Outputs come back in input order: the issue's own example, items that
 * finish in reverse order, items that need shell quoting, items on stdin
 * and from --items FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

/* The issue's example, exactly: 100 lines in input order, exit 0. */
static void
test_issue_example(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 2, .slots = 8});
	char      *out, *err, **lines;

	assert_int_equal(h_run(c, &out, &err,
	                       "seq 100 | troupe map --cmd 'test {} -gt 11 && "
	                       "echo true || echo false' --concurrency 10"),
	                 0);
	assert_int_equal(h_split(c, out, &lines), 100);
	for (int i = 0; i < 100; i++)
		assert_string_equal(lines[i], i + 1 > 11 ? "true" : "false");
	h_done(c);
}

/* A map bigger than several storage chunks (1,024 items each) comes back
 * whole and in order once it is read back from the store: every output
 * checked, as `troupe outputs` pages through the chunks. */
static void
test_many_chunks(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char       *out, **lines;
	char       *items = malloc(5000 * 8);
	size_t      len = 0;
	const char *id;
	int         n;

	for (int i = 1; i <= 5000; i++)
		len += (size_t)sprintf(items + len, "%d\n", i);
	id = h_map_detach(c, items,
	                  "--cmd 'while read x; do echo o$x; done' "
	                  "--replicas 4 --ttl 30");
	free(items);
	assert_non_null(h_wait_done(c, id, 120000));
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id), 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 5000);
	for (int i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "o%d", i + 1);
		assert_string_equal(lines[i], want);
	}
	h_done(c);
}

/* Item i sleeps longer the earlier it comes, so they finish in reverse;
 * the outputs are still in input order. */
static void
test_reverse_finish(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 2, .slots = 4});
	char      *out, **lines;

	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 8 | troupe map --cmd 'n={}; sleep "
	                       "0.$((8 - n)); echo item-$n'"),
	                 0);
	assert_int_equal(h_split(c, out, &lines), 8);
	for (int i = 0; i < 8; i++) {
		char want[32];
		snprintf(want, sizeof(want), "item-%d", i + 1);
		assert_string_equal(lines[i], want);
	}
	h_done(c);
}

/* {} is the shell-quoted item: spaces, quotes and $ survive; the item is
 * also on stdin; TROUPE_ITEM is its index, TROUPE_EXECUTION its
 * execution's id, TROUPE_ATTEMPT its attempt. */
static void
test_quoting_and_stdin(void **state)
{
	h_cluster  *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	const char *items = "a b\nit's\n$HOME;rm -rf /\n\"q\"\n";
	const char *id;
	char       *out, **lines, want[128];

	assert_int_equal(
	    h_run_in(c, items, &out, NULL,
	             "troupe map --cmd 'printf \"[%%s]\" {}; echo'"),
	    0);
	assert_int_equal(h_split(c, out, &lines), 4);
	assert_string_equal(lines[0], "[a b]");
	assert_string_equal(lines[1], "[it's]");
	assert_string_equal(lines[2], "[$HOME;rm -rf /]");
	assert_string_equal(lines[3], "[\"q\"]");

	assert_int_equal(
	    h_run_in(c, items, &out, NULL,
	             "troupe map --cmd 'echo \"$TROUPE_ITEM:$(cat)\"'"),
	    0);
	assert_int_equal(h_split(c, out, &lines), 4);
	assert_string_equal(lines[0], "0:a b");
	assert_string_equal(lines[1], "1:it's");
	assert_string_equal(lines[3], "3:\"q\"");

	/* TROUPE_EXECUTION is the execution's id; TROUPE_ATTEMPT counts
	 * from 1. */
	id = h_map_detach(c, "x\ny\n",
	                  "--cmd 'echo \"$TROUPE_EXECUTION $TROUPE_ITEM "
	                  "$TROUPE_ATTEMPT\"'");
	(void)h_wait_done(c, id, 30000);
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s", id), 0);
	snprintf(want, sizeof(want), "%s 0 1\n%s 1 1\n", id, id);
	assert_string_equal(out, want);
	h_done(c);
}

/* --items FILE reads the same as stdin. */
static void
test_items_file(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char      *out, **lines;

	assert_int_equal(h_run(c, NULL, NULL, "seq 20 > items.txt"), 0);
	assert_int_equal(h_run(c, &out, NULL,
	                       "troupe map --items items.txt --cmd "
	                       "'expr {} \\* 3'"),
	                 0);
	assert_int_equal(h_split(c, out, &lines), 20);
	for (int i = 0; i < 20; i++)
		assert_int_equal(atoi(lines[i]), (i + 1) * 3);
	h_done(c);
}

/* Off a terminal a map prints its outputs and nothing else; on one (a
 * pseudo-terminal from script(1)) it also shows done/total as it goes. */
static void
test_progress_only_on_terminal(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char      *out, *err;

	assert_int_equal(
	    h_run(c, &out, &err,
	          "seq 12 | troupe map --cmd 'sleep 0.2; echo {}'"),
	    0);
	assert_string_equal(err, "");
	assert_int_equal(h_lines(out), 12);
	assert_null(strchr(out, '\r'));

	assert_int_equal(h_run(c, &out, NULL,
	                       "script -qec \"seq 12 | troupe map --cmd 'sleep "
	                       "0.2; echo {}'\" /dev/null"),
	                 0);
	h_assert_contains(out, "/12");
	h_assert_contains(out, "12\r\n");
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_issue_example),  H_TEST(test_many_chunks),
	    H_TEST(test_reverse_finish), H_TEST(test_quoting_and_stdin),
	    H_TEST(test_items_file),     H_TEST(test_progress_only_on_terminal),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
