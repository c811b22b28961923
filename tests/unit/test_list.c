/*
 * The intrusive list (daemon/common/list.h): order, removal from any
 * place, removal while walking, and that an element knows whether it is
 * on a list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "list.h"
#include "skip.h"

typedef struct elem {
	int       n;
	list_node node;
} elem;

/* The list's values in order, as digits ("123"); "" when empty. */
static const char *
values(list *l)
{
	static char buf[32];
	size_t      k = 0;

	for (elem *e = list_first(l); e != NULL; e = list_next(l, e))
		buf[k++] = (char)('0' + e->n);
	buf[k] = '\0';
	return buf;
}

static void
test_order(void **state)
{
	elem e[4] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
	list l;

	(void)state;
	list_init(&l, offsetof(elem, node));
	assert_true(list_empty(&l));
	assert_null(list_first(&l));
	assert_null(list_last(&l));
	list_append(&l, &e[1]);
	list_append(&l, &e[2]);
	list_prepend(&l, &e[0]);
	list_insert_before(&l, &e[0].node, &e[3]);
	assert_string_equal(values(&l), "4123");
	assert_ptr_equal(list_last(&l), &e[2]);
	assert_false(list_empty(&l));
}

static void
test_remove(void **state)
{
	elem e[3] = {{1, {0}}, {2, {0}}, {3, {0}}};
	list l;

	(void)state;
	list_init(&l, offsetof(elem, node));
	for (int i = 0; i < 3; i++)
		list_append(&l, &e[i]);
	list_remove(&l, &e[1]);
	assert_false(list_active(&l, &e[1]));
	assert_true(list_active(&l, &e[0]));
	assert_string_equal(values(&l), "13");
	list_append(&l, &e[1]); /* a removed element can go back */
	assert_string_equal(values(&l), "132");
	assert_ptr_equal(list_pop(&l), &e[0]);
	assert_ptr_equal(list_pop(&l), &e[2]);
	assert_ptr_equal(list_pop(&l), &e[1]);
	assert_null(list_pop(&l));
	assert_true(list_empty(&l));
}

static void
test_remove_while_walking(void **state)
{
	elem e[5] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}, {5, {0}}};
	list l;

	(void)state;
	list_init(&l, offsetof(elem, node));
	for (int i = 0; i < 5; i++)
		list_append(&l, &e[i]);
	for (elem *x = list_first(&l), *next; x != NULL; x = next) {
		next = list_next(&l, x);
		if (x->n % 2 == 0)
			list_remove(&l, x);
	}
	assert_string_equal(values(&l), "135");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_remove),
	    cmocka_unit_test(test_remove_while_walking),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
