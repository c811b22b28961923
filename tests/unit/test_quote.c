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
#include <unistd.h>

#include <cmocka.h>

#include "placeholder.h"
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

/* Inside $(( )) quotes mean nothing (sh runs `$(( '$(id)' ))`'s
 * command substitution): refused, numbers or not; expr takes a word. */
static void
test_numbers_in_arithmetic(void **state)
{
	char  *cmd = (char *)1;
	char   buf[64];
	size_t n;
	FILE  *f;

	assert_int_equal(
	    quote_command("echo $(( {} * 2 ))", (const uint8_t *)"21", 2, &cmd),
	    TROUPE_EPERM);
	assert_null(cmd);
	assert_int_equal(
	    quote_command("expr {} \\* 2", (const uint8_t *)"21", 2, &cmd), 0);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	assert_int_equal(pclose(f), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "42\n", 3);
	free(cmd);
}

/* Issue 10, defect 5: where {} may stand.  Each accepted command is run
 * with hostile items, which must come out as data and run nothing; each
 * refused one is refused by quote_command too, with a reason. */
static void
test_placeholder_contexts(void **state)
{
	static const char *const ok[] = {
	    "printf '%s\\n' {}",
	    "printf %s {} # a comment with 'quotes' and \"{\"",
	    "x={}; printf %s \"$x\"",
	    "printf %s $(printf %s {})",
	    "(printf %s {})",
	    "printf %s pre{}post",
	    "printf %s {} | cat",
	    "printf '%s' \"a\" {} '}'",
	    "cat <<< {} >/dev/null; printf %s {}",
	    "case {} in *) printf %s {};; esac",
	    NULL,
	};
	static const char *const bad[] = {
	    "echo \"{}\"",
	    "echo '{}'",
	    "sh -c \"echo {}\"",
	    "sh -c 'echo {}'",
	    "echo `echo {}`",
	    "echo $(( {} + 1 ))",
	    "echo ${x:-{}}",
	    "echo ${}",
	    "echo \\{}",
	    "echo $'{}'",
	    "echo hi # {}",
	    "cat <<EOF\n{}\nEOF",
	    "echo \"$(echo {})\"",
	    "x=$(case a in a) echo \"{}\";; esac)",
	    "echo {} '",
	    "# it's\necho '{}'",
	    NULL,
	};
	static const char *const items[] = {
	    "$(touch /tmp/troupe-pwned-q)",
	    "'; touch /tmp/troupe-pwned-q; '",
	    "\"; touch /tmp/troupe-pwned-q; \"",
	    "`touch /tmp/troupe-pwned-q`",
	    "a\ntouch /tmp/troupe-pwned-q\n",
	    NULL,
	};
	char  why[512];
	char *cmd;

	(void)unlink("/tmp/troupe-pwned-q");
	for (size_t i = 0; ok[i] != NULL; i++) {
		if (placeholder_check(ok[i], why, sizeof(why)) != 0)
			fail_msg("refused: %s: %s", ok[i], why);
		for (size_t k = 0; items[k] != NULL; k++) {
			char  buf[4096];
			FILE *f;

			assert_int_equal(
			    quote_command(ok[i], (const uint8_t *)items[k],
			                  strlen(items[k]), &cmd),
			    0);
			f = popen(cmd, "r");
			assert_non_null(f);
			(void)fread(buf, 1, sizeof(buf), f);
			(void)pclose(f);
			free(cmd);
			if (access("/tmp/troupe-pwned-q", F_OK) == 0)
				fail_msg("item %s ran as code in: %s", items[k],
				         ok[i]);
		}
	}
	for (size_t i = 0; bad[i] != NULL; i++) {
		why[0] = '\0';
		if (placeholder_check(bad[i], why, sizeof(why)) !=
		    TROUPE_EINVAL)
			fail_msg("accepted: %s", bad[i]);
		print_message("%s -> %s\n", bad[i], why);
		assert_non_null(strstr(why, "{} at offset"));
		cmd = (char *)1;
		assert_int_equal(
		    quote_command(bad[i], (const uint8_t *)"x", 1, &cmd),
		    TROUPE_EPERM);
		assert_null(cmd);
	}
	/* No {}: anything goes. */
	assert_int_equal(placeholder_check("echo '{' \"}\"", NULL, 0), 0);
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
	    cmocka_unit_test(test_placeholder_contexts),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
