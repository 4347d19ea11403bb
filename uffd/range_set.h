/* SPDX-License-Identifier: MIT */
/*
 * A set of address ranges, kept sorted and merged: the pages the target
 * removed (MADV_DONTNEED, balloon) that must never receive snapshot data.
 */
#ifndef THAW_UFFD_RANGE_SET_H
#define THAW_UFFD_RANGE_SET_H

#include <stddef.h>
#include <stdint.h>

struct thaw__range {
	uint64_t start, end; /* [start, end) */
};

struct thaw__range_set {
	struct thaw__range *r;
	size_t n, cap;
};

/* Add [start, end), merging neighbours. 0 or -ENOMEM. */
int thaw__range_set_add(struct thaw__range_set *s, uint64_t start, uint64_t end);
/* Take [start, end) out of the set. 0 or -ENOMEM (a range split in two). */
int thaw__range_set_cut(struct thaw__range_set *s, uint64_t start, uint64_t end);
/* The part of the set inside [from, from+len) now lives at [to, to+len). */
int thaw__range_set_move(struct thaw__range_set *s, uint64_t from, uint64_t to, uint64_t len);
/* Index of the first range ending after addr (n when none). */
size_t thaw__range_set_first_after(const struct thaw__range_set *s, uint64_t addr);
/* Does the set hold addr? */
int thaw__range_set_has(const struct thaw__range_set *s, uint64_t addr);
/* A copy of src into dst (dst empty). 0 or -ENOMEM. */
int thaw__range_set_copy(struct thaw__range_set *dst, const struct thaw__range_set *src);
void thaw__range_set_free(struct thaw__range_set *s);

/* Grow *arr (cap elements of elem bytes) to hold need, in a mapping of its own
 * (never malloc: see range_set.c). 0 or -ENOMEM. */
int thaw__uffd_grow(void **arr, size_t *cap, size_t need, size_t elem);
void thaw__uffd_grown_free(void *arr, size_t cap, size_t elem);

#endif
