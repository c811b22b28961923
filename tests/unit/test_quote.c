/*
 * Shell quoting for `{}` (daemon/worker/quote.c): the quoted word, and
 * that /bin/sh really reads it back as the original bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quote.h"
#include "troupe/error.h"
#include "skip.h"

static void
check_word(const char *in, const char *want)
{
	char *out = NULL;

	assert_int_equal(quote_word((const uint8_t *)in, strlen(in), &out), 0);
	assert_string_equal(out, want);
	free(out);
}

/* Runs `printf %s <quoted>` through /bin/sh and checks it prints s. */
static void
check_roundtrip(const char *s)
{
	char  *cmd = NULL;
	char   buf[4096];
	size_t n;
	FILE  *f;

	assert_int_equal(
	    quote_command("printf %s {}", (const uint8_t *)s, strlen(s), &cmd),
	    0);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	assert_int_equal(pclose(f), 0);
	assert_int_equal(n, strlen(s));
	assert_memory_equal(buf, s, n);
	free(cmd);
}

static void
test_plain(void **state)
{
	/* Words that need no quotes get none, as with shlex.quote. */
	check_word("hello", "hello");
	check_word("12", "12");
	check_word("-3.5e2", "-3.5e2");
	check_word("dir/file_1.txt", "dir/file_1.txt");
	check_word("user@host:8080,a+b%", "user@host:8080,a+b%");
	check_roundtrip("hello");
	check_roundtrip("dir/file_1.txt");
}

static void
test_numbers_in_arithmetic(void **state)
{
	char  *cmd = NULL;
	char   buf[64];
	size_t n;
	FILE  *f;

	assert_int_equal(
	    quote_command("echo $(( {} * 2 ))", (const uint8_t *)"21", 2, &cmd),
	    0);
	assert_string_equal(cmd, "echo $(( 21 * 2 ))");
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	assert_int_equal(pclose(f), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "42\n", 3);
	free(cmd);
}

static void
test_assignment_quoted(void **state)
{
	/* Unquoted, `{}` at the start of a command would assign. */
	check_word("A=b", "'A=b'");
	check_roundtrip("A=b");
	check_word("~root", "'~root'");
	check_word("\xc3\xa9", "'\xc3\xa9'");
}

static void
test_spaces(void **state)
{
	check_word("a b  c", "'a b  c'");
	check_word(" x", "' x'");
	check_roundtrip("a b  c");
	check_roundtrip("  leading and trailing  ");
}

static void
test_single_quotes(void **state)
{
	check_word("it's", "'it'\\''s'");
	check_word("'", "''\\'''");
	check_roundtrip("it's");
	check_roundtrip("''''");
}

static void
test_empty(void **state)
{
	check_word("", "''");
	check_roundtrip("");
}

static void
test_newline(void **state)
{
	check_word("a\nb", "'a\nb'");
	check_roundtrip("a\nb\n");
}

static void
test_metachars(void **state)
{
	const char *s = "$HOME `id` $(id) ; | & > < * ? [a] ~ # \\ \" ! {} %s";

	check_roundtrip(s);
	check_roundtrip("-n");
	check_roundtrip("\t\xc3\xa9\xff");
}

static void
test_nul_refused(void **state)
{
	char *out = (char *)1;

	assert_int_equal(quote_word((const uint8_t *)"a\0b", 3, &out),
	                 TROUPE_EINVAL);
	assert_null(out);
	/* Without {} the item never reaches the command line. */
	assert_int_equal(quote_command("cat", (const uint8_t *)"a\0b", 3, &out),
	                 0);
	assert_string_equal(out, "cat");
	free(out);
}

static void
test_command_substitution(void **state)
{
	char *out = NULL;

	assert_int_equal(
	    quote_command("echo {} {}x {", (const uint8_t *)"a'b", 3, &out), 0);
	assert_string_equal(out, "echo 'a'\\''b' 'a'\\''b'x {");
	free(out);
	assert_int_equal(quote_command("{}", (const uint8_t *)"", 0, &out), 0);
	assert_string_equal(out, "''");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_numbers_in_arithmetic),
	    cmocka_unit_test(test_assignment_quoted),
	    cmocka_unit_test(test_spaces),
	    cmocka_unit_test(test_single_quotes),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_newline),
	    cmocka_unit_test(test_metachars),
	    cmocka_unit_test(test_nul_refused),
	    cmocka_unit_test(test_command_substitution),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
