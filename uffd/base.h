/* SPDX-License-Identifier: MIT */
/*
 * The small helpers every layer uses, spelled once: container_of, the
 * monotonic clock, heap array growth, a qsort comparator. It sits in uffd/, the bottom layer, so that the engine
 * and every layer of restore/ can include it; it is header-only (static
 * inline) so that using it adds no link-time edge between object files.
 * Not installed.
 */
#ifndef THAW_UFFD_BASE_H
#define THAW_UFFD_BASE_H

#include <errno.h>
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
 * (uffd/range_set.c grows with mmap instead, on purpose: see there.)
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

/* qsort comparator for uint64_t, ascending. */
static inline int thaw__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

#endif
