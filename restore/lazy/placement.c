/* SPDX-License-Identifier: MIT */
/*
 * Where a chunk's bytes go. The snapshot's memory is one flat space, its
 * regions laid out back to back; the target maps pieces of it ("segments")
 * at addresses of its own, which may start mid-region or mid-chunk and
 * which UNMAP and REMAP events change while the restore runs. A chunk is
 * installed into every segment its flat range meets.
 */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* -ENOMEM from an install is retried this often, waiting 1, 2, 4... ms (255 ms in all). */
#define PUT_NOMEM_RETRIES 8

int thaw__region_cmp_flat(const void *a, const void *b)
{
	const struct mapped_region *x = a, *y = b;
	return x->flat < y->flat ? -1 : x->flat > y->flat;
}

int thaw__region_cmp_base(const void *a, const void *b)
{
	const struct mapped_region *x = a, *y = b;
	return x->base < y->base ? -1 : x->base > y->base;
}

static int reserve(struct thaw_restore *r, size_t n)
{
	/* Both arrays share segs_cap: it moves only once both have grown. */
	size_t cap_a = r->segs_cap, cap_b = r->segs_cap;
	if (THAW__GROW(r->segs, cap_a, n, 8) || THAW__GROW(r->by_addr, cap_b, n, 8))
		return -ENOMEM;
	r->segs_cap = cap_a;
	return 0;
}

/* segs changed: drop empty ones and sort both views again. */
static void resort(struct thaw_restore *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nsegs; i++)
		if (r->segs[i].len)
			r->segs[n++] = r->segs[i];
	r->nsegs = n;
	qsort(r->segs, n, sizeof(*r->segs), thaw__region_cmp_flat);
	memcpy(r->by_addr, r->segs, n * sizeof(*r->segs));
	qsort(r->by_addr, n, sizeof(*r->by_addr), thaw__region_cmp_base);
}

int thaw__placement_set(struct thaw_restore *r, const struct mapped_region *segs, size_t n)
{
	if (reserve(r, n ? n : 1))
		return -ENOMEM;
	memcpy(r->segs, segs, n * sizeof(*segs));
	r->nsegs = n;
	resort(r);
	return 0;
}

uint64_t thaw__chunk_flat(const struct thaw_restore *r, uint64_t id)
{
	uint64_t region = r->lay->chunk_region[id];
	return r->region_flat[region] +
	       (thaw__layout_chunk_addr(r->lay, id) - r->lay->regions[region].addr);
}

bool thaw__placement_page_at(const struct thaw_restore *r, uint64_t addr, uint64_t *g)
{
	size_t lo = 0, hi = r->nsegs;
	const struct mapped_region *m = NULL;
	while (lo < hi && !m) {
		size_t mid = (lo + hi) / 2;
		if (addr < r->by_addr[mid].base)
			hi = mid;
		else if (addr >= r->by_addr[mid].base + r->by_addr[mid].len)
			lo = mid + 1;
		else
			m = &r->by_addr[mid];
	}
	if (!m)
		return false;
	uint64_t flat = m->flat + (addr - m->base);
	/* The region holding flat: the last whose flat start is at or below it. */
	lo = 0;
	hi = r->nregions;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (r->region_flat[mid] <= flat)
			lo = mid;
		else
			hi = mid;
	}
	*g = r->lay->regions[lo].first_chunk * r->lay->pages_per_chunk +
	     (flat - r->region_flat[lo]) / r->lay->hdr.page_size;
	return true;
}

/* The first segment (by flat offset) that ends after flat. */
static size_t first_seg_after(const struct thaw_restore *r, uint64_t flat)
{
	size_t lo = 0, hi = r->nsegs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->segs[mid].flat + r->segs[mid].len <= flat)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int put_once(struct thaw_restore *r, uint64_t flat, uint64_t len, enum thaw__put kind,
		    const void *bytes)
{
	uint64_t end = flat + len;
	int err = 0;
	thaw__engine_hold(r->eng);
	for (size_t i = first_seg_after(r, flat); !err && i < r->nsegs; i++) {
		const struct mapped_region *s = &r->segs[i];
		if (s->flat >= end)
			break;
		uint64_t a = s->flat > flat ? s->flat : flat;
		uint64_t b = s->flat + s->len < end ? s->flat + s->len : end;
		uint64_t dst = s->base + (a - s->flat);
		if (kind == THAW__PUT_COPY)
			err = thaw__install_copy(r->eng, dst, (const char *)bytes + (a - flat),
						 b - a, true);
		else if (kind == THAW__PUT_ZERO)
			err = thaw__install_zero(r->eng, dst, b - a);
		else
			err = thaw__install_poison(r->eng, dst, b - a);
	}
	thaw__engine_release(r->eng);
	return err;
}

int thaw__restore_put(struct thaw_restore *r, uint64_t id, enum thaw__put kind, const void *bytes)
{
	return thaw__restore_put_flat(r, thaw__chunk_flat(r, id),
				      thaw__layout_chunk_len(r->lay, id), kind, bytes);
}

int thaw__restore_put_flat(struct thaw_restore *r, uint64_t flat, uint64_t len, enum thaw__put kind,
			   const void *bytes)
{
	uint64_t t0 = 0;
	unsigned nomem = 0;
	for (;;) {
		int err = put_once(r, flat, len, kind, bytes);
		if (err == -EAGAIN && thaw__engine_await_layout(r->eng, &t0))
			continue;
		/* A memory cgroup at its limit: memory may be freed soon. Pages already
		 * in answer EEXIST on the next attempt. */
		if (err == -ENOMEM && nomem < PUT_NOMEM_RETRIES) {
			usleep(1000u << nomem++);
			continue;
		}
		return err;
	}
}

void thaw__placement_runs(struct thaw_restore *r, const struct mapped_region *s,
			  void (*fn)(struct thaw_restore *r, uint64_t start, uint64_t end,
				     bool failed))
{
	uint64_t run = s->base, end = s->base + s->len;
	bool run_failed = false;
	for (uint64_t at = s->base; at < end;) {
		uint64_t g, next = end;
		bool failed = false;
		if (thaw__placement_page_at(r, at, &g)) {
			uint64_t id = g / r->lay->pages_per_chunk;
			uint64_t chunk_end =
				thaw__chunk_flat(r, id) + thaw__layout_chunk_len(r->lay, id);
			next = s->base + (chunk_end - s->flat);
			next = next < end ? next : end;
			failed = atomic_load(&r->state[id]) == CHUNK_FAILED;
		}
		if (failed != run_failed && at > run) {
			fn(r, run, at, run_failed);
			run = at;
		}
		run_failed = failed;
		at = next;
	}
	if (end > run)
		fn(r, run, end, run_failed);
}

/* Take [start, end) out of every segment, splitting one that holds it inside. */
static int cut(struct thaw_restore *r, uint64_t start, uint64_t end)
{
	size_t n = r->nsegs;
	for (size_t i = 0; i < n; i++) {
		struct mapped_region s = r->segs[i];
		uint64_t s_end = s.base + s.len;
		if (s_end <= start || s.base >= end)
			continue;
		if (s.base < start && s_end > end) {
			if (reserve(r, r->nsegs + 1))
				return -ENOMEM;
			r->segs[r->nsegs++] = (struct mapped_region){
				.base = end, .len = s_end - end, .flat = s.flat + (end - s.base)
			};
			r->segs[i].len = start - s.base;
		} else if (s.base < start) {
			r->segs[i].len = start - s.base;
		} else if (s_end > end) {
			r->segs[i] = (struct mapped_region){ .base = end,
							     .len = s_end - end,
							     .flat = s.flat + (end - s.base) };
		} else {
			r->segs[i].len = 0;
		}
	}
	return 0;
}

int thaw__placement_unmap(struct thaw_restore *r, uint64_t start, uint64_t end)
{
	int err = cut(r, start, end);
	resort(r);
	return err;
}

int thaw__placement_move(struct thaw_restore *r, uint64_t from, uint64_t to, uint64_t len)
{
	/* The pieces inside [from, from+len) keep their flat offsets at new addresses. */
	size_t n = r->nsegs, moved = 0;
	struct mapped_region *keep = malloc((n ? n : 1) * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct mapped_region *s = &r->segs[i];
		uint64_t a = s->base > from ? s->base : from;
		uint64_t b = s->base + s->len < from + len ? s->base + s->len : from + len;
		if (a < b)
			keep[moved++] = (struct mapped_region){ .base = a - from + to,
								.len = b - a,
								.flat = s->flat + (a - s->base) };
	}
	/* mremap may also move onto an old registered range: it is gone now. */
	int err = cut(r, from, from + len);
	if (!err)
		err = cut(r, to, to + len);
	if (!err)
		err = reserve(r, r->nsegs + moved);
	if (!err) {
		memcpy(&r->segs[r->nsegs], keep, moved * sizeof(*keep));
		r->nsegs += moved;
	}
	free(keep);
	resort(r);
	return err;
}

/*
 * Chunks no mapping holds are another target's (a CRIU snapshot holds every
 * task): done from the start, so the background pass neither fetches nor
 * decodes them. Mappings only shrink or move later, keeping their offsets.
 */
static void skip_unmapped(struct thaw_restore *r)
{
	const struct mapped_region *s = r->segs; /* sorted by flat offset */
	size_t j = 0;
	for (uint64_t id = 0; id < r->nchunks; id++) {
		uint64_t flat = thaw__chunk_flat(r, id),
			 end = flat + thaw__layout_chunk_len(r->lay, id);
		while (j < r->nsegs && s[j].flat + s[j].len <= flat)
			j++;
		bool held = false;
		for (size_t k = j; k < r->nsegs && s[k].flat < end && !held; k++)
			held = s[k].flat + s[k].len > flat;
		if (held)
			continue;
		atomic_store(&r->state[id], CHUNK_DONE);
		if (r->lay->chunks[id].kind != THAW_CHUNK_ZERO)
			atomic_fetch_sub(&r->chunks_left, 1);
		thaw__prefetch_finished(r, id);
	}
}

/*
 * Segments of a target that owns its memory (attached, or a forked child of
 * any restore: parent set, whose removed pages it inherits).
 */
int thaw__placement_attach(struct thaw_restore *r, const struct mapped_region *segs, size_t n,
			   const struct thaw_restore *parent)
{
	int err = thaw__placement_set(r, segs, n);
	if (!err)
		skip_unmapped(r);
	if (!err && parent)
		err = thaw__engine_inherit_removed(r->eng, parent->eng);
	return err;
}

void thaw__placement_on_unmap(void *ctx, uint64_t start, uint64_t end)
{
	struct thaw_restore *r = ctx;
	if (thaw__placement_unmap(r, start, end))
		thaw__restore_fail(r, -ENOMEM);
}

void thaw__placement_on_remap(void *ctx, uint64_t from, uint64_t to, uint64_t len)
{
	struct thaw_restore *r = ctx;
	if (thaw__placement_move(r, from, to, len))
		thaw__restore_fail(r, -ENOMEM);
}
