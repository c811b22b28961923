/*
 * Skipped tests show as skipped.  cmocka's skip() alone counts a skipped
 * test as passed, so a test that cannot run here (no root, no network
 * namespaces, no python3) would look green.  T_SKIP() prints why, counts
 * the skip, and skips the current test; a test program ends with
 * t_exit(), which turns "nothing failed but something was skipped" into
 * exit status 77, ctest's SKIP_RETURN_CODE for every test of the suite.
 *
 * With TROUPE_TEST_NO_SKIP=1 in the environment (CI sets it: it runs as
 * root with every package installed, so nothing has a reason to skip) a
 * skip fails the test instead.
 *
 * Threading: cmocka runs tests on one thread; the count is not atomic.
 */
#ifndef TROUPE_TEST_SKIP_H
#define TROUPE_TEST_SKIP_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

/* The exit status ctest reads as "skipped". */
#define T_SKIP_STATUS 77

/* Prints "SKIPPED: <why>" to stderr and counts the skip; fails the test
 * when TROUPE_TEST_NO_SKIP is set.  Callers then call skip() (T_SKIP does
 * both). */
void t_skip_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_SKIP(...)                       \
	do {                              \
		t_skip_note(__VA_ARGS__); \
		skip();                   \
	} while (0)

/* The program's exit status from cmocka_run_group_tests' result: the
 * count of failed tests when any failed, else T_SKIP_STATUS when a test
 * was skipped, else 0. */
int t_exit(int failed);

#endif
