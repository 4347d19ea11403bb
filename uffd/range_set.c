/* SPDX-License-Identifier: MIT */
/* Sorted, merged address ranges; the sets stay small (a balloon's few runs). */
#include "range_set.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Arrays the manager grows while handling events live in their own
 * mappings, not on the heap: in-process, the thread behind an event may be
 * inside fork() holding malloc's locks while it waits for us to read the
 * FORK event, and a malloc here would wait for it in turn.
 */
int thaw__uffd_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t ncap = *cap ? *cap * 2 : page / elem;
	while (ncap < need)
		ncap *= 2;
	size_t old_bytes = (*cap * elem + page - 1) / page * page;
	size_t new_bytes = (ncap * elem + page - 1) / page * page;
	void *p = *arr ? mremap(*arr, old_bytes, new_bytes, MREMAP_MAYMOVE)
		       : mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	*arr = p;
	*cap = new_bytes / elem;
	return 0;
}

void thaw__uffd_grown_free(void *arr, size_t cap, size_t elem)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (arr)
		munmap(arr, (cap * elem + page - 1) / page * page);
}

static int reserve(struct thaw__range_set *s, size_t n)
{
	void *p = s->r;
	int err = thaw__uffd_grow(&p, &s->cap, n, sizeof(*s->r));
	s->r = p;
	return err;
}

size_t thaw__range_set_first_after(const struct thaw__range_set *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int thaw__range_set_has(const struct thaw__range_set *s, uint64_t addr)
{
	size_t i = thaw__range_set_first_after(s, addr);
	return i < s->n && s->r[i].start <= addr;
}

int thaw__range_set_add(struct thaw__range_set *s, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	/* Every range touching [start, end) is folded into one. */
	size_t i = thaw__range_set_first_after(s, start ? start - 1 : 0);
	size_t j = i;
	while (j < s->n && s->r[j].start <= end) {
		if (s->r[j].start < start)
			start = s->r[j].start;
		if (s->r[j].end > end)
			end = s->r[j].end;
		j++;
	}
	if (j == i) {
		if (reserve(s, s->n + 1))
			return -ENOMEM;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->n++;
	} else {
		memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
		s->n -= j - i - 1;
	}
	s->r[i] = (struct thaw__range){ start, end };
	return 0;
}

int thaw__range_set_cut(struct thaw__range_set *s, uint64_t start, uint64_t end)
{
	size_t i = thaw__range_set_first_after(s, start);
	if (i < s->n && s->r[i].start < start && s->r[i].end > end) {
		/* One range holds the hole: split it. */
		if (reserve(s, s->n + 1))
			return -ENOMEM;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->n++;
		s->r[i].end = start;
		s->r[i + 1].start = end;
		return 0;
	}
	if (i < s->n && s->r[i].start < start) {
		s->r[i].end = start;
		i++;
	}
	size_t j = i;
	while (j < s->n && s->r[j].end <= end)
		j++;
	if (j < s->n && s->r[j].start < end)
		s->r[j].start = end;
	if (j < s->n) /* an empty set has no array at all */
		memmove(&s->r[i], &s->r[j], (s->n - j) * sizeof(*s->r));
	s->n -= j - i;
	return 0;
}

int thaw__range_set_move(struct thaw__range_set *s, uint64_t from, uint64_t to, uint64_t len)
{
	struct thaw__range_set moved = { 0 };
	for (size_t i = thaw__range_set_first_after(s, from); i < s->n; i++) {
		if (s->r[i].start >= from + len)
			break;
		uint64_t a = s->r[i].start > from ? s->r[i].start : from;
		uint64_t b = s->r[i].end < from + len ? s->r[i].end : from + len;
		if (thaw__range_set_add(&moved, a - from + to, b - from + to))
			goto nomem;
	}
	if (thaw__range_set_cut(s, from, from + len))
		goto nomem;
	for (size_t i = 0; i < moved.n; i++)
		if (thaw__range_set_add(s, moved.r[i].start, moved.r[i].end))
			goto nomem;
	thaw__range_set_free(&moved);
	return 0;
nomem:
	thaw__range_set_free(&moved);
	return -ENOMEM;
}

int thaw__range_set_copy(struct thaw__range_set *dst, const struct thaw__range_set *src)
{
	if (reserve(dst, src->n))
		return -ENOMEM;
	if (src->n) /* an empty set has no array at all */
		memcpy(dst->r, src->r, src->n * sizeof(*src->r));
	dst->n = src->n;
	return 0;
}

void thaw__range_set_free(struct thaw__range_set *s)
{
	thaw__uffd_grown_free(s->r, s->cap, sizeof(*s->r));
	*s = (struct thaw__range_set){ 0 };
}
