/*
 * Tasks that fail: a non-zero exit makes a FAILED item whose error is the
 * tail of its stderr; `troupe map` exits non-zero and says how many items
 * failed; --retries, --min-success-ratio and --timeout (an item killed
 * and failed "timed out", retried when --retries allows) behave as the
 * README says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "skip.h"

/* Items 3 and 7 fail with exit 4 and `boom N` on stderr. */
#define FAIL_3_7                                                    \
	"'if [ {} -eq 3 ] || [ {} -eq 7 ]; then echo boom {} >&2; " \
	"exit 4; fi; echo ok {}'"

/* The execution id (`ex-...`) a message names, kept by c. */
static const char *
id_in(h_cluster *c, const char *msg)
{
	const char *p = strstr(msg, "ex-");

	if (p == NULL)
		h_fail(c, "no execution id in: %s", msg);
	return h_keep(c, strndup(p, strcspn(p, " :,;\n")));
}

/* With the default --min-success-ratio 1, the first failure fails the
 * execution and aborts what had not finished; `troupe map` exits non-zero
 * and says how many items failed. */
static void
test_failure_fails_the_map(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	Troupe__Execution   *e;
	Troupe__ItemResult **items;
	const char          *id;
	char                *out, *err, count[128];
	json_object        **objs;
	int                  failed = 0;

	assert_int_equal(h_run(c, NULL, NULL, "seq 10 > items"), 0);
	id = h_map_detach(c, NULL, "--items items --cmd " FAIL_3_7);
	e = h_wait_done(c, id, 60000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_FAILED);
	assert_true(e->counts->failed >= 1);
	assert_int_equal(
	    e->counts->failed + e->counts->succeeded + e->counts->aborted, 10);
	assert_int_equal(h_outputs(c, id, &items), 10);
	for (int i = 0; i < 10; i++) {
		char want[16];

		snprintf(want, sizeof(want), "boom %d", i + 1);
		switch (items[i]->state) {
		case TROUPE__ITEM_STATE__ITEM_FAILED:
			failed++;
			h_assert_contains(items[i]->error, want);
			assert_int_equal(items[i]->exit_code, 4);
			assert_int_equal(items[i]->output.len, 0);
			assert_true(i == 2 || i == 6);
			break;
		case TROUPE__ITEM_STATE__ITEM_SUCCEEDED:
			assert_true(i != 2 && i != 6);
			break;
		case TROUPE__ITEM_STATE__ITEM_ABORTED:
			assert_int_equal(items[i]->output.len, 0);
			break;
		default: h_fail(c, "item %d: state %d", i, items[i]->state);
		}
	}
	assert_int_equal(failed, (int)e->counts->failed);

	/* The blocking map: non-zero exit, one line saying how many. */
	assert_int_not_equal(
	    h_run(c, &out, &err, "seq 10 | troupe map --cmd " FAIL_3_7), 0);
	assert_int_equal(h_lines(err), 1);
	e = h_execution(c, id_in(c, err));
	snprintf(count, sizeof(count),
	         "troupe: execution %s FAILED: %llu of 10 items failed", e->id,
	         (unsigned long long)e->counts->failed);
	assert_true(strncmp(err, count, strlen(count)) == 0);

	/* troupe map --json: one object per item, still non-zero. */
	assert_int_not_equal(
	    h_run(c, &out, NULL, "seq 10 | troupe map --json --cmd " FAIL_3_7),
	    0);
	assert_int_equal(h_json_lines(c, out, &objs), 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(h_jint(objs[i], "index"), i);
	h_done(c);
}

/* With --min-success-ratio 0.5 both failing items run and fail, each with
 * its own stderr as the error, and the execution still SUCCEEDS. */
static void
test_failed_items(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 2, .slots = 2});
	Troupe__Execution   *e;
	Troupe__ItemResult **items;
	json_object        **objs;
	const char          *id;
	char                *out;

	assert_int_equal(h_run(c, NULL, NULL, "seq 10 > items"), 0);
	id = h_map_detach(
	    c, NULL, "--items items --min-success-ratio 0.5 --cmd " FAIL_3_7);
	e = h_wait_done(c, id, 60000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(e->counts->failed, 2);
	assert_int_equal(e->counts->succeeded, 8);
	assert_int_equal(h_outputs(c, id, &items), 10);
	assert_int_equal(items[0]->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(items[0]->output.len, 5);
	assert_memory_equal(items[0]->output.data, "ok 1\n", 5);
	assert_int_equal(items[2]->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	h_assert_contains(items[2]->error, "boom 3");
	assert_int_equal(items[2]->exit_code, 4);
	assert_int_equal(items[2]->output.len, 0);
	assert_int_equal(items[2]->attempts, 1); /* no --retries: one try */
	assert_int_equal(items[6]->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	h_assert_contains(items[6]->error, "boom 7");

	/* troupe outputs --json: one object per item. */
	assert_int_equal(h_run(c, &out, NULL, "troupe outputs %s --json", id),
	                 0);
	assert_int_equal(h_json_lines(c, out, &objs), 10);
	assert_int_equal(h_jint(objs[2], "index"), 2);
	h_assert_icontains(h_jstr(objs[2], "state"), "FAILED");
	h_assert_contains(h_jstr(objs[2], "error"), "boom 3");
	assert_int_equal(h_jint(objs[2], "exit_code"), 4);
	assert_int_equal(h_jint(objs[2], "attempts"), 1);
	h_assert_icontains(h_jstr(objs[0], "state"), "SUCCEEDED");
	h_assert_contains(h_jstr(objs[0], "output"), "ok 1");

	/* The blocking map agrees: exit 0 as the execution SUCCEEDED. */
	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 10 | troupe map --min-success-ratio 0.5 "
	                       "--json --cmd " FAIL_3_7),
	                 0);
	assert_int_equal(h_json_lines(c, out, &objs), 10);
	h_assert_contains(h_jstr(objs[6], "error"), "boom 7");
	h_assert_contains(h_jstr(objs[9], "output"), "ok 10");
	h_done(c);
}

/* The error is the tail of stderr: the last line is there, the start of
 * 120 KB of noise is not, and the error stays a few KiB. */
static void
test_stderr_tail(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 1});
	Troupe__ItemResult **items;
	const char          *id;

	id = h_map_detach(
	    c, "x\n",
	    "--cmd 'i=0; while [ $i -lt 2000 ]; do echo \"noise line $i "
	    "............................................\" >&2; i=$((i+1)); "
	    "done; echo LAST-WORDS >&2; exit 1'");
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_FAILED);
	assert_int_equal(h_outputs(c, id, &items), 1);
	h_assert_contains(items[0]->error, "LAST-WORDS");
	assert_null(strstr(items[0]->error, "noise line 0 "));
	assert_true(strlen(items[0]->error) <= 16384);
	assert_int_equal(items[0]->exit_code, 1);
	h_done(c);
}

/* --retries 1: an item failing once succeeds on its second attempt. */
static void
test_retries(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__ItemResult **items;
	const char          *id;
	char                 cmd[512];

	snprintf(cmd, sizeof(cmd),
	         "f=%s/mark-{}; if [ ! -e \"$f\" ]; then touch \"$f\"; "
	         "echo first >&2; exit 1; fi; echo second {}",
	         h_dir(c));
	id = h_map_detach(c, "1\n2\n3\n", "--retries 1 --cmd %s",
	                  h_quote(c, cmd));
	assert_int_equal(h_wait_done(c, id, 60000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(items[i]->state,
		                 TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
		assert_int_equal(items[i]->attempts, 2);
	}
	assert_memory_equal(items[1]->output.data, "second 2\n", 9);

	/* Without --retries the same command fails (marks removed). */
	assert_int_equal(h_run(c, NULL, NULL, "rm -f mark-*"), 0);
	assert_int_not_equal(h_run_in(c, "1\n", NULL, NULL,
	                              "troupe map --cmd %s", h_quote(c, cmd)),
	                     0);
	h_done(c);
}

/* --min-success-ratio: 8 of 10 succeed; 0.8 is enough, 0.9 is not. */
static void
test_min_success_ratio(void **state)
{
	h_cluster *c = h_start(&(h_opts){.workers = 1, .slots = 4});
	char      *out;

	assert_int_equal(h_run(c, &out, NULL,
	                       "seq 10 | troupe map --min-success-ratio 0.8 "
	                       "--cmd " FAIL_3_7),
	                 0);
	/* Null outputs (empty lines) for the failed items. */
	assert_string_equal(out, "ok 1\nok 2\n\nok 4\nok 5\nok 6\n\nok "
	                         "8\nok 9\nok 10\n");
	assert_int_not_equal(
	    h_run(c, &out, NULL,
	          "seq 10 | troupe map --min-success-ratio 0.9 "
	          "--cmd " FAIL_3_7),
	    0);
	h_done(c);
}

/* --timeout 1: a sleeping item is killed and fails, well before it would
 * have ended; a missing command fails with the shell's message. */
static void
test_timeout_and_missing_command(void **state)
{
	h_cluster           *c = h_start(&(h_opts){.workers = 1, .slots = 2});
	Troupe__ItemResult **items;
	const char          *id;
	int64_t              t0 = h_now_ms();

	id = h_map_detach(c, "a\n", "--timeout 1 --cmd 'sleep 60'");
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_FAILED);
	assert_true(h_now_ms() - t0 < 30000);
	assert_int_equal(h_outputs(c, id, &items), 1);
	assert_int_equal(items[0]->state, TROUPE__ITEM_STATE__ITEM_FAILED);
	h_assert_contains(items[0]->error, "timed out after 1000 ms");
	assert_int_equal(items[0]->attempts, 1);

	/* With --retries 1 a timed-out item runs again: the second attempt
	 * answers at once. */
	id = h_map_detach(c, "b\n",
	                  "--timeout 1 --retries 1 --cmd '[ "
	                  "\"$TROUPE_ATTEMPT\" = 1 ] && exec sleep 60; echo "
	                  "{} \"$TROUPE_ATTEMPT\"'");
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 1);
	assert_int_equal(items[0]->attempts, 2);
	assert_int_equal(items[0]->output.len, 4);
	assert_memory_equal(items[0]->output.data, "b 2\n", 4);

	id = h_map_detach(c, "a\n", "--cmd 'no-such-command-troupe-xyz {}'");
	assert_int_equal(h_wait_done(c, id, 30000)->phase,
	                 TROUPE__PHASE__PHASE_FAILED);
	assert_int_equal(h_outputs(c, id, &items), 1);
	h_assert_icontains(items[0]->error, "not found");
	assert_int_equal(items[0]->exit_code, 127);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    H_TEST(test_failure_fails_the_map),
	    H_TEST(test_failed_items),
	    H_TEST(test_stderr_tail),
	    H_TEST(test_retries),
	    H_TEST(test_min_success_ratio),
	    H_TEST(test_timeout_and_missing_command),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
