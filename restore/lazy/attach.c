/* SPDX-License-Identifier: MIT */
/*
 * Restores of memory another process owns (thaw_restore_attach): checking
 * the mappings it sent, following its UNMAP and REMAP events, and serving
 * its forked children with restores of their own.
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
	const struct thaw_restore *parent; /* a fork: inherit its removed pages */
};

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

static int place_attached(struct thaw_restore *r, void *ctx)
{
	const struct attach_place *p = ctx;
	int err = thaw__placement_set(r, p->segs, p->n);
	if (!err)
		skip_unmapped(r);
	if (!err && p->parent)
		err = thaw__engine_inherit_removed(r->eng, p->parent->eng);
	return err;
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

void thaw__restore_on_unmap(void *ctx, uint64_t start, uint64_t end)
{
	struct thaw_restore *r = ctx;
	if (thaw__placement_unmap(r, start, end))
		thaw__restore_fail(r, -ENOMEM);
}

void thaw__restore_on_remap(void *ctx, uint64_t from, uint64_t to, uint64_t len)
{
	struct thaw_restore *r = ctx;
	if (thaw__placement_move(r, from, to, len))
		thaw__restore_fail(r, -ENOMEM);
}

/*
 * A child restored without the background pass learns of its process's end
 * only by asking: a zero-page install at the top of the user address space
 * (never restored memory) answers -ESRCH once the address space is gone.
 */
static bool child_gone(struct thaw_restore *c)
{
	uint64_t probe = (1ull << 47) - 2 * c->lay->hdr.page_size, g;
	if (!(c->flags & THAW_RESTORE_NO_BACKGROUND))
		return false;	   /* its background pass meets -ESRCH soon enough */
	thaw__engine_hold(c->eng); /* its segments, which its manager may change */
	bool ours = thaw__placement_page_at(c, probe, &g);
	thaw__engine_release(c->eng);
	return !ours && thaw__engine_target_gone(c->eng, probe);
}

void thaw__restore_reap_children(struct thaw_restore *r)
{
	struct thaw_restore *over[16];
	size_t n = 0;
	pthread_mutex_lock(&r->done_lock);
	for (size_t i = 0; !r->child_waiters && i < r->nchildren && n < 16;) {
		struct thaw_restore *c = r->children[i];
		if (thaw_restore_wait(c, 0) == -ETIMEDOUT && !child_gone(c)) {
			i++;
			continue;
		}
		over[n++] = r->children[i];
		r->children[i] = r->children[--r->nchildren];
	}
	pthread_mutex_unlock(&r->done_lock);
	for (size_t i = 0; i < n; i++)
		thaw_restore_free(over[i]);
}

void thaw__restore_on_fork(void *ctx, int child_uffd)
{
	struct thaw_restore *r = ctx;
	thaw__restore_reap_children(r);
	struct attach_place p = { .segs = r->segs, .n = r->nsegs, .parent = r };
	struct thaw_restore_opts o = { .sz = sizeof(o),
				       .flags = r->flags,
				       .background_threads = r->worker_target };
	struct thaw_restore *child = NULL;
	int err = -ENOMEM;
	pthread_mutex_lock(&r->done_lock);
	struct thaw_restore **c = realloc(r->children, (r->nchildren + 1) * sizeof(*c));
	if (c) {
		r->children = c;
		err = thaw__restore_begin(r->snap, &o, child_uffd, place_attached, &p, &child);
		if (!err)
			r->children[r->nchildren++] = child;
		/* A parent told to populate (thaw_restore_populate) passes it on. */
		if (!err && atomic_load(&r->finish_requested))
			thaw_restore_populate(child);
	} else {
		close(child_uffd);
	}
	pthread_mutex_unlock(&r->done_lock);
	/* Its uffd is closed: the child runs on plain memory and reads zeros where pages
	 * were missing. Say so loudly; there is nothing better left to do. */
	if (err)
		thaw__err(r->log, "serving a forked child: %s; its missing pages read as zeros",
			  thaw_strerror(err));
	else
		thaw__info(r->log, "serving a forked child (%zu segments)", p.n);
}

/* Milliseconds left until deadline (NULL: -1, for ever), at least 0. */
static int ms_left(const struct timespec *deadline)
{
	if (!deadline)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
		     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int thaw__restore_children_wait(struct thaw_restore *r, const struct timespec *deadline)
{
	int ret = 0;
	pthread_mutex_lock(&r->done_lock);
	r->child_waiters++;
	for (size_t i = 0; i < r->nchildren; i++) {
		/* The manager may add a child (and move the array) meanwhile, never free one. */
		struct thaw_restore *child = r->children[i];
		pthread_mutex_unlock(&r->done_lock);
		/* A child that went away or failed is finished with as far as we are concerned. */
		ret = thaw_restore_wait(child, ms_left(deadline)) == -ETIMEDOUT ? -ETIMEDOUT : 0;
		pthread_mutex_lock(&r->done_lock);
		if (ret)
			break;
	}
	r->child_waiters--;
	pthread_mutex_unlock(&r->done_lock);
	return ret;
}

void thaw__restore_children_free(struct thaw_restore *r)
{
	for (size_t i = 0; i < r->nchildren; i++)
		thaw_restore_free(r->children[i]);
	free(r->children);
	r->children = NULL;
	r->nchildren = 0;
}
