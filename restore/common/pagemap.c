/* SPDX-License-Identifier: MIT */
/* Data ranges from /proc/PID/pagemap (see pagemap.h). */
#include "pagemap.h"
#include "uffd/base.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

/* PAGEMAP_SCAN (Linux 6.7) as in linux/fs.h, which this system's headers predate. */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

int thaw__ranges_add(struct thaw__ranges *r, uint64_t start, uint64_t end)
{
	if (r->n && r->v[r->n - 1].end == start) {
		r->v[r->n - 1].end = end;
		return 0;
	}
	if (THAW__GROW(r->v, r->cap, r->n + 1, 64))
		return -ENOMEM;
	r->v[r->n].start = start;
	r->v[r->n].end = end;
	r->n++;
	return 0;
}

int thaw__pagemap_scan(int pm_fd, uint64_t start, uint64_t end, struct thaw__ranges *out)
{
	struct page_region vec[256];
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.start = start,
		.end = end,
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = 256,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO,
	};
	while (a.start < end) {
		int n = ioctl(pm_fd, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			/* A read of untouched memory maps the shared zero page: still zero. */
			if ((vec[i].categories & PAGE_IS_PFNZERO) &&
			    !(vec[i].categories & PAGE_IS_SWAPPED))
				continue;
			int r = thaw__ranges_add(out, vec[i].start, vec[i].end);
			if (r)
				return r;
		}
		if (a.walk_end <= a.start)
			return -EIO;
		a.start = a.walk_end;
	}
	return 0;
}

int thaw__pagemap_read(int pm_fd, uint64_t start, uint64_t end, uint32_t page_size,
		       struct thaw__ranges *out)
{
	uint64_t *ent = malloc(8192 * 8);
	if (!ent)
		return -ENOMEM;
	uint64_t pages = (end - start) / page_size;
	int r = 0;
	for (uint64_t done = 0; done < pages && !r;) {
		uint64_t n = pages - done < 8192 ? pages - done : 8192;
		ssize_t got = pread(pm_fd, ent, n * 8, (off_t)((start / page_size + done) * 8));
		if (got <= 0 || got % 8) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		n = (uint64_t)got / 8;
		for (uint64_t i = 0; i < n && !r; i++)
			if (ent[i] & (PM_PRESENT | PM_SWAPPED))
				r = thaw__ranges_add(out, start + (done + i) * page_size,
						     start + (done + i + 1) * page_size);
		done += n;
	}
	free(ent);
	return r;
}
