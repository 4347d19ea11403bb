/* SPDX-License-Identifier: MIT */
/*
 * The small helpers every layer uses, spelled once: container_of, the
 * monotonic clock, heap array growth, an intrusive list, a qsort comparator.
 * It sits in uffd/, the bottom layer, so that the engine and every layer of
 * restore/ can include it; it is header-only (static inline) so that using it
 * adds no link-time edge between object files. Not installed.
 */
#ifndef THAW_UFFD_BASE_H
#define THAW_UFFD_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The struct that holds member, from a pointer to member. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* CLOCK_MONOTONIC in nanoseconds: the one clock for deadlines and latencies. */
static inline uint64_t thaw__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t thaw__now_us(void)
{
	return thaw__now_ns() / 1000u;
}

/*
 * Heap array growth: make room for need elements of size elem in the array
 * at *(void **)arrp whose capacity is *cap, doubling from first. 0, or
 * -ENOMEM with the array and *cap unchanged. The pointer is moved through
 * memcpy so that any element type can use it; use THAW__GROW.
 * Not for the engine's event arrays: those grow with mmap (thaw__uffd_grow
 * in range_set.c) because the manager may grow them while a thread stopped
 * inside fork() holds malloc's locks, and a malloc there would deadlock.
 */
static inline int thaw__grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : (first ? first : 1);
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (n > SIZE_MAX / elem)
		return -ENOMEM;
	void *old, *p;
	memcpy(&old, arrp, sizeof(old));
	p = realloc(old, n * elem);
	if (!p)
		return -ENOMEM;
	memcpy(arrp, &p, sizeof(p));
	*cap = n;
	return 0;
}

/* Room for need elements in arr (an lvalue pointer) of capacity cap (a size_t lvalue). */
#define THAW__GROW(arr, cap, need, first)                                                          \
	thaw__grow(&(arr), &(cap), (need), sizeof(*(arr)), (first))

/*
 * Intrusive doubly linked list. All zeroes is an empty list and an unlinked
 * node, so structs from calloc need no set-up; the ends are NULL, so a walk
 * is a plain for loop over ->next.
 */
struct thaw__list_node {
	struct thaw__list_node *prev, *next;
};

struct thaw__list {
	struct thaw__list_node *first, *last;
};

/* The entry holding node n, or NULL for a NULL n (the end of a walk). */
#define thaw__list_entry(n, type, member) ((n) ? container_of((n), type, member) : NULL)

static inline void thaw__list_add_head(struct thaw__list *l, struct thaw__list_node *n)
{
	n->prev = NULL;
	n->next = l->first;
	if (l->first)
		l->first->prev = n;
	else
		l->last = n;
	l->first = n;
}

static inline void thaw__list_add_tail(struct thaw__list *l, struct thaw__list_node *n)
{
	n->next = NULL;
	n->prev = l->last;
	if (l->last)
		l->last->next = n;
	else
		l->first = n;
	l->last = n;
}

/* Unlink n from l (n must be on l); n reads as unlinked afterwards. */
static inline void thaw__list_del(struct thaw__list *l, struct thaw__list_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->first = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->last = n->prev;
	n->prev = n->next = NULL;
}

/* qsort comparator for uint64_t, ascending. */
static inline int thaw__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

#endif
