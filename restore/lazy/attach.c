/* SPDX-License-Identifier: MIT */
/*
 * Restores of memory another process owns (thaw_restore_attach): checking
 * the mappings it sent before the restore begins on them.
 */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct attach_place {
	const struct mapped_region *segs;
	size_t n;
};

static int place_attached(struct thaw_restore *r, void *ctx)
{
	const struct attach_place *p = ctx;
	return thaw__placement_attach(r, p->segs, p->n, NULL);
}

/* Mapping i of the request is bad: say why, in terms the sender used. */
static int bad_mapping(const struct thaw_snapshot *snap, size_t i, const struct thaw_mapping *m,
		       const char *why)
{
	thaw__err(&snap->log, "mapping %zu (addr 0x%llx, len 0x%llx, offset 0x%llx): %s", i,
		  (unsigned long long)m->addr, (unsigned long long)m->len,
		  (unsigned long long)m->offset, why);
	return -EINVAL;
}

static int check_overlap(const struct thaw_snapshot *snap, struct mapped_region *s, size_t n,
			 bool by_flat)
{
	qsort(s, n, sizeof(*s), by_flat ? thaw__region_cmp_flat : thaw__region_cmp_base);
	for (size_t i = 1; i < n; i++) {
		uint64_t prev_end =
			by_flat ? s[i - 1].flat + s[i - 1].len : s[i - 1].base + s[i - 1].len;
		if ((by_flat ? s[i].flat : s[i].base) < prev_end) {
			thaw__err(&snap->log, "mappings at 0x%llx and 0x%llx overlap in %s",
				  (unsigned long long)s[i - 1].base, (unsigned long long)s[i].base,
				  by_flat ? "snapshot offsets" : "addresses");
			return -EINVAL;
		}
	}
	return 0;
}

static int check_mappings(const struct thaw_snapshot *snap, const struct thaw_mapping *maps,
			  size_t n, struct mapped_region *segs)
{
	/* The format checks raw_bytes is the regions' lengths added up. */
	uint64_t page = snap->layout.hdr.page_size, total = snap->layout.hdr.raw_bytes;
	if (!n) {
		thaw__err(&snap->log, "no mappings to serve");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct thaw_mapping *m = &maps[i];
		if (!m->len)
			return bad_mapping(snap, i, m, "empty");
		if ((m->addr | m->len | m->offset) % page)
			return bad_mapping(snap, i, m, "not page aligned");
		if (m->addr + m->len < m->addr)
			return bad_mapping(snap, i, m, "wraps around the address space");
		if (m->offset > total || m->len > total - m->offset)
			return bad_mapping(snap, i, m,
					   "runs past the end of the snapshot's memory");
		segs[i] =
			(struct mapped_region){ .base = m->addr, .len = m->len, .flat = m->offset };
	}
	int err = check_overlap(snap, segs, n, false);
	return err ? err : check_overlap(snap, segs, n, true);
}

int thaw_restore_attach(struct thaw_snapshot *snap, int uffd, const struct thaw_mapping *maps,
			size_t n, const struct thaw_restore_opts *opts, struct thaw_restore **out)
{
	if (!out || uffd < 0 || !snap || (n && !maps)) {
		if (uffd >= 0)
			close(uffd);
		return -EINVAL;
	}
	*out = NULL;
	struct mapped_region *segs = calloc(n ? n : 1, sizeof(*segs));
	int err = segs ? check_mappings(snap, maps, n, segs) : -ENOMEM;
	if (err) {
		free(segs);
		close(uffd);
		return err;
	}
	struct attach_place p = { .segs = segs, .n = n };
	err = thaw__restore_begin(snap, opts, uffd, place_attached, &p, out);
	free(segs);
	return err;
}
