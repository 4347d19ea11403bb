/* SPDX-License-Identifier: MIT */
/*
 * Which pages of a range may hold data, from /proc/PID/pagemap, without
 * touching the pages: used to record never-populated memory as zero (the
 * process walker, the live export).
 */
#ifndef THAW_RESTORE_PAGEMAP_H
#define THAW_RESTORE_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

/* Address ranges whose pages may hold data: present (but not the zero page) or swapped. */
struct thaw__ranges {
	struct {
		uint64_t start, end;
	} * v;
	size_t n, cap; /* v is owned: free(v) */
};

/* Append [start, end), merged with the last range when they touch. 0 or -ENOMEM. */
int thaw__ranges_add(struct thaw__ranges *r, uint64_t start, uint64_t end);

/*
 * Add the data ranges of [start, end) to out. _scan uses PAGEMAP_SCAN
 * (Linux 6.7), which walks page tables and skips empty ones, so it is fast
 * on huge reservations; -ENOTTY/-EINVAL/-EOPNOTSUPP mean the kernel lacks
 * it. _read reads the plain pagemap entries instead (8 bytes a page).
 */
int thaw__pagemap_scan(int pm_fd, uint64_t start, uint64_t end, struct thaw__ranges *out);
int thaw__pagemap_read(int pm_fd, uint64_t start, uint64_t end, uint32_t page_size,
		       struct thaw__ranges *out);

#endif
