/*
 * An intrusive doubly linked list, after nng's nni_list: the element
 * embeds a list_node, the list knows the node's offset in the element, and
 * every operation is O(1) except walking.  The list owns nothing: taking
 * an element off never frees it.
 *
 *	typedef struct job { int n; list_node node; } job;
 *	list jobs;
 *	list_init(&jobs, offsetof(job, node));
 *	list_append(&jobs, j);
 *	for (job *j = list_first(&jobs); j != NULL; j = list_next(&jobs, j))
 *		...
 *
 * To remove while walking, fetch the next element first.  An element is
 * on at most one list per node it embeds; list_active says whether it is
 * on one.  Not thread-safe: a list belongs to the thread that owns its
 * elements (for the daemons, the loop thread).
 */
#ifndef TROUPE_LIST_H
#define TROUPE_LIST_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct list_node {
	struct list_node *next, *prev; /* NULL while on no list */
} list_node;

typedef struct list {
	list_node head; /* sentinel: head.next is the first element */
	size_t    offset;
} list;

static inline list_node *
list_node_of(const list *l, const void *elem)
{
	return (list_node *)((char *)(void *)(uintptr_t)elem + l->offset);
}

static inline void *
list_elem_of(const list *l, list_node *n)
{
	return n == &((list *)(uintptr_t)l)->head ? NULL
	                                          : (char *)n - l->offset;
}

/* Makes l empty; offset is offsetof(element type, its list_node). */
static inline void
list_init(list *l, size_t offset)
{
	l->head.next = l->head.prev = &l->head;
	l->offset = offset;
}

static inline bool
list_empty(const list *l)
{
	return l->head.next == &l->head;
}

/* Whether elem (its node for this list's offset) is on a list. */
static inline bool
list_active(const list *l, const void *elem)
{
	return list_node_of(l, elem)->next != NULL;
}

static inline void
list_insert_before(list *l, list_node *at, void *elem)
{
	list_node *n = list_node_of(l, elem);

	assert(n->next == NULL && n->prev == NULL); /* on no list yet */
	n->next = at;
	n->prev = at->prev;
	at->prev->next = n;
	at->prev = n;
}

static inline void
list_append(list *l, void *elem)
{
	list_insert_before(l, &l->head, elem);
}

static inline void
list_prepend(list *l, void *elem)
{
	list_insert_before(l, l->head.next, elem);
}

/* Takes elem off l (it must be on it). */
static inline void
list_remove(list *l, void *elem)
{
	list_node *n = list_node_of(l, elem);

	assert(n->next != NULL && n->prev != NULL);
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
}

static inline void *
list_first(const list *l)
{
	return list_elem_of(l, l->head.next);
}

static inline void *
list_last(const list *l)
{
	return list_elem_of(l, l->head.prev);
}

static inline void *
list_next(const list *l, const void *elem)
{
	return list_elem_of(l, list_node_of(l, elem)->next);
}

/* Takes the first element off l and returns it; NULL when empty. */
static inline void *
list_pop(list *l)
{
	void *e = list_first(l);

	if (e != NULL)
		list_remove(l, e);
	return e;
}

#endif
