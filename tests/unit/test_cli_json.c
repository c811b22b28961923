/*
 * The troupe CLI's output formats: JSON rendering with json-c (items,
 * whole messages, enums, bytes that are not text), the progress line and
 * durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "json_out.h"
#include "progress.h"
#include "skip.h"

/* Returns obj as one compact line (caller frees) and drops obj. */
static char *
render(json_object *obj)
{
	char  *buf = NULL;
	size_t len = 0;
	FILE  *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(cli_json_println(f, obj), 0);
	fclose(f);
	return buf;
}

static void
test_enum_names(void **state)
{
	(void)state;
	assert_string_equal(cli_enum_name(&troupe__phase__descriptor,
	                                  TROUPE__PHASE__PHASE_TIMED_OUT),
	                    "TIMED_OUT");
	assert_string_equal(cli_enum_name(&troupe__item_state__descriptor,
	                                  TROUPE__ITEM_STATE__ITEM_SUCCEEDED),
	                    "SUCCEEDED");
	assert_string_equal(
	    cli_enum_name(&troupe__worker_state__descriptor,
	                  TROUPE__WORKER_STATE__WORKER_DRAINING),
	    "DRAINING");
	assert_string_equal(cli_enum_name(&troupe__protocol__descriptor,
	                                  TROUPE__PROTOCOL__PROTOCOL_FRAMES),
	                    "FRAMES");
	assert_string_equal(cli_enum_name(&troupe__phase__descriptor, 99),
	                    "UNKNOWN");
	assert_string_equal(cli_phase_name(TROUPE__PHASE__PHASE_RUNNING),
	                    "RUNNING");
	assert_true(cli_phase_terminal(TROUPE__PHASE__PHASE_ABORTED));
	assert_false(cli_phase_terminal(TROUPE__PHASE__PHASE_QUEUED));
}

static void
test_item_json(void **state)
{
	Troupe__ItemResult r = TROUPE__ITEM_RESULT__INIT;
	char              *s;

	(void)state;
	r.index = 7;
	r.state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
	r.output.data = (uint8_t *)"true\n";
	r.output.len = 5;
	r.attempts = 1;
	r.worker = "local-1";
	s = render(cli_json_item(&r));
	assert_string_equal(s, "{\"index\":7,\"state\":\"SUCCEEDED\","
	                       "\"output\":\"true\\n\",\"error\":null,"
	                       "\"attempts\":1,\"exit_code\":0,"
	                       "\"worker\":\"local-1\"}\n");
	free(s);

	/* A failed item: output null, error text, exit code. */
	r.state = TROUPE__ITEM_STATE__ITEM_FAILED;
	r.error = "boom \"quoted\" /path";
	r.exit_code = 3;
	r.attempts = 2;
	r.worker = "";
	s = render(cli_json_item(&r));
	assert_string_equal(s, "{\"index\":7,\"state\":\"FAILED\","
	                       "\"output\":null,"
	                       "\"error\":\"boom \\\"quoted\\\" /path\","
	                       "\"attempts\":2,\"exit_code\":3,"
	                       "\"worker\":null}\n");
	free(s);
}

static void
test_bytes_json(void **state)
{
	Troupe__ItemResult r = TROUPE__ITEM_RESULT__INIT;
	static const char  raw[] = "a\0b\tc\xff\xfe";
	char              *s;

	(void)state;
	r.state = TROUPE__ITEM_STATE__ITEM_SUCCEEDED;
	r.output.data = (uint8_t *)raw;
	r.output.len = sizeof(raw) - 1;
	s = render(cli_json_item(&r));
	/* NUL and tab escaped; bytes that are not UTF-8 passed through. */
	assert_non_null(strstr(s, "\"output\":\"a\\u0000b\\tc\xff\xfe\""));
	free(s);
	/* An empty output of a succeeded item is "", not null. */
	r.output.data = NULL;
	r.output.len = 0;
	s = render(cli_json_item(&r));
	assert_non_null(strstr(s, "\"output\":\"\""));
	free(s);
}

static void
test_message_json(void **state)
{
	Troupe__Execution     ex = TROUPE__EXECUTION__INIT;
	Troupe__ExecutionSpec spec = TROUPE__EXECUTION_SPEC__INIT;
	Troupe__Counts        k = TROUPE__COUNTS__INIT;
	char                 *env[] = {"A=1", "B=2"};
	json_object          *o, *v;

	(void)state;
	ex.id = "ex-1";
	ex.phase = TROUPE__PHASE__PHASE_FAILED;
	ex.total = 100;
	ex.created_ms = 1700000000123;
	ex.version = UINT64_MAX;
	k.failed = 3;
	ex.counts = &k;
	spec.command = "false";
	spec.retries_opt_case = TROUPE__EXECUTION_SPEC__RETRIES_OPT_RETRIES;
	spec.retries = 0;
	spec.n_env = 2;
	spec.env = env;
	ex.spec = &spec;

	o = cli_json_message(&ex.base);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "phase", &v));
	assert_string_equal(json_object_get_string(v), "FAILED");
	assert_true(json_object_object_get_ex(o, "version", &v));
	assert_true(json_object_get_uint64(v) == UINT64_MAX);
	assert_true(json_object_object_get_ex(o, "created_ms", &v));
	assert_true(json_object_get_int64(v) == 1700000000123);
	assert_true(json_object_object_get_ex(o, "counts", &v));
	assert_true(json_object_object_get_ex(v, "failed", &v));
	assert_int_equal(json_object_get_int(v), 3);
	/* An absent submessage is null. */
	assert_true(json_object_object_get_ex(o, "task", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "spec", &v));
	{
		json_object *spec_o = v, *e;

		/* A oneof set to zero is there; unset ones are not. */
		assert_true(json_object_object_get_ex(spec_o, "retries", &e));
		assert_int_equal(json_object_get_int(e), 0);
		assert_false(
		    json_object_object_get_ex(spec_o, "timeout_ms", NULL));
		assert_false(json_object_object_get_ex(
		    spec_o, "min_success_ratio", NULL));
		assert_true(json_object_object_get_ex(spec_o, "env", &e));
		assert_int_equal(json_object_array_length(e), 2);
		assert_string_equal(
		    json_object_get_string(json_object_array_get_idx(e, 1)),
		    "B=2");
	}
	json_object_put(o);
}

static void
test_map_field_json(void **state)
{
	Troupe__WorkerInfo              w = TROUPE__WORKER_INFO__INIT;
	Troupe__WorkerInfo__LabelsEntry l1 =
	    TROUPE__WORKER_INFO__LABELS_ENTRY__INIT;
	Troupe__WorkerInfo__LabelsEntry *labels[1] = {&l1};
	char                            *s;

	(void)state;
	w.name = "w1";
	w.state = TROUPE__WORKER_STATE__WORKER_LOST;
	l1.key = "gpu";
	l1.value = "a100";
	w.n_labels = 1;
	w.labels = labels;
	s = render(cli_json_message(&w.base));
	assert_non_null(strstr(s, "\"labels\":{\"gpu\":\"a100\"}"));
	assert_non_null(strstr(s, "\"state\":\"LOST\""));
	assert_non_null(strstr(s, "\"capacity\":null"));
	free(s);
}

static void
test_progress_format(void **state)
{
	char buf[256];

	(void)state;
	cli_progress_format(buf, sizeof(buf), 45, 100, 0, 10.0, "RUNNING");
	assert_string_equal(buf, "[#########...........] 45/100  10.0/s  ETA "
	                         "6s  RUNNING");
	cli_progress_format(buf, sizeof(buf), 0, 100, 0, -1, "QUEUED");
	assert_string_equal(buf, "[....................] 0/100  QUEUED");
	cli_progress_format(buf, sizeof(buf), 100, 100, 2, 50.0, "FAILED");
	assert_non_null(strstr(buf, "[####################] 100/100"));
	assert_non_null(strstr(buf, "2 failed"));
	cli_progress_format(buf, sizeof(buf), 10, 1000, 0, 0.05, "RUNNING");
	assert_non_null(strstr(buf, "ETA 5h30m"));
	/* Nothing uploaded yet: no division by zero. */
	cli_progress_format(buf, sizeof(buf), 0, 0, 0, -1, "QUEUED");
	assert_non_null(strstr(buf, "0/0"));
}

static void
test_durations(void **state)
{
	char buf[32];

	(void)state;
	cli_fmt_dur(buf, sizeof(buf), 850);
	assert_string_equal(buf, "850ms");
	cli_fmt_dur(buf, sizeof(buf), 12345);
	assert_string_equal(buf, "12.3s");
	cli_fmt_dur(buf, sizeof(buf), 185000);
	assert_string_equal(buf, "3m05s");
	cli_fmt_dur(buf, sizeof(buf), 7380000);
	assert_string_equal(buf, "2h03m");
	cli_fmt_dur(buf, sizeof(buf), -5);
	assert_string_equal(buf, "0ms");
	cli_fmt_time(buf, sizeof(buf), 0);
	assert_string_equal(buf, "-");
}

static void
test_table(void **state)
{
	static const char *const head[] = {"A", "LONGER"};
	const char              *row[] = {"xxxx", NULL};
	cli_table                t;
	char                    *buf = NULL;
	size_t                   len = 0;
	FILE                    *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	cli_table_init(&t, 2, head);
	cli_table_row(&t, row);
	assert_int_equal(cli_table_print(&t, f), 0);
	cli_table_free(&t);
	cli_table_free(&t);
	fclose(f);
	assert_string_equal(buf, "A     LONGER\nxxxx  -\n");
	free(buf);
}

/* `token create --json` shows the secret (its whole point); a TokenInfo,
 * which is all `token list --json` prints, has nothing secret to show. */
static void
test_token_json(void **state)
{
	Troupe__TokenInfo        t = TROUPE__TOKEN_INFO__INIT;
	Troupe__CreateTokenReply r = TROUPE__CREATE_TOKEN_REPLY__INIT;
	Troupe__Project          p = TROUPE__PROJECT__INIT;
	char                    *s;

	(void)state;
	t.id = "k3y1d";
	t.project = "team-a";
	t.role = TROUPE__ROLE__ROLE_SUBMIT;
	t.expires_ms = 1700000000000LL;
	r.token = &t;
	r.secret = "trp_k3y1d_s3cr3t";
	s = render(cli_json_message(&r.base));
	assert_non_null(strstr(s, "\"secret\":\"trp_k3y1d_s3cr3t\""));
	assert_non_null(strstr(s, "\"role\":\"SUBMIT\""));
	free(s);
	s = render(cli_json_message(&t.base));
	assert_non_null(strstr(s, "\"id\":\"k3y1d\""));
	assert_non_null(strstr(s, "\"project\":\"team-a\""));
	assert_non_null(strstr(s, "\"expires_ms\":1700000000000"));
	assert_non_null(strstr(s, "\"revoked\":false"));
	assert_null(strstr(s, "secret"));
	assert_null(strstr(s, "s3cr3t"));
	free(s);
	assert_string_equal(
	    cli_enum_name(&troupe__role__descriptor, TROUPE__ROLE__ROLE_WORKER),
	    "WORKER");
	p.name = "team-a";
	p.max_running = 3;
	s = render(cli_json_message(&p.base));
	assert_non_null(strstr(s, "\"max_running\":3"));
	assert_non_null(strstr(s, "\"max_replicas\":0"));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enum_names),
	    cmocka_unit_test(test_item_json),
	    cmocka_unit_test(test_bytes_json),
	    cmocka_unit_test(test_message_json),
	    cmocka_unit_test(test_map_field_json),
	    cmocka_unit_test(test_progress_format),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_token_json),
	};

	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
