/* SPDX-License-Identifier: MIT */
/*
 * Lazy restore lifecycle: map, register, start the engine; forked children;
 * wait; stats; populate, stop and free: the public calls and the top of the runtime.
 */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "format/codec.h"
#include "common/abi.h"

static void unmap_regions(struct thaw_restore *r)
{
	/* A failed thaw__restore_alloc may have left no region_base at all. */
	for (size_t i = 0; r->region_base && i < r->nregions; i++)
		if (r->region_base[i])
			munmap((void *)r->region_base[i], r->lay->regions[i].len);
}

static int map_failed(struct thaw_restore *r, size_t i, int err)
{
	const struct thaw__fmt_region *reg = &r->lay->regions[i];
	thaw__err(r->log, "mapping region %zu (%s) at 0x%llx, %llu bytes: %s", i,
		  r->lay->region_names[i], (unsigned long long)reg->addr,
		  (unsigned long long)reg->len,
		  err == -EEXIST ? "the address range is already in use" : thaw_strerror(err));
	return err;
}

/* At the recorded addresses: one mapping and one registration per region. */
static int map_fixed(struct thaw_restore *r)
{
	for (size_t i = 0; i < r->nregions; i++) {
		const struct thaw__fmt_region *reg = &r->lay->regions[i];
		void *want = (void *)reg->addr;
		void *p = mmap(want, reg->len, (int)reg->prot,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			       -1, 0);
		if (p == MAP_FAILED)
			return map_failed(r, i, -errno);
		if (p != want) {
			munmap(p, reg->len); /* a kernel that ignored MAP_FIXED_NOREPLACE */
			return map_failed(r, i, -EEXIST);
		}
		r->region_base[i] = reg->addr;
		r->ranges[r->nranges++] =
			(struct mapped_region){ .base = reg->addr, .len = reg->len };
	}
	return 0;
}

/*
 * Wherever the kernel likes: one block holding every region back to back,
 * registered once; only regions whose protection differs get an mprotect.
 * With a hundred regions this is several times quicker than a mapping and
 * a registration each.
 */
static int map_block(struct thaw_restore *r)
{
	uint64_t total = 0;
	for (size_t i = 0; i < r->nregions; i++)
		total += r->lay->regions[i].len;
	if (!total)
		return 0;
	void *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return map_failed(r, 0, -errno);
	/* Every base first: a failed mprotect must leave the whole block for unmap_regions. */
	uint64_t at = (uint64_t)p;
	for (size_t i = 0; i < r->nregions; i++) {
		r->region_base[i] = at;
		at += r->lay->regions[i].len;
	}
	for (size_t i = 0; i < r->nregions; i++) {
		const struct thaw__fmt_region *reg = &r->lay->regions[i];
		if (reg->prot != (PROT_READ | PROT_WRITE) &&
		    mprotect((void *)r->region_base[i], reg->len, (int)reg->prot))
			return map_failed(r, i, -errno);
	}
	r->ranges[r->nranges++] = (struct mapped_region){ .base = (uint64_t)p, .len = total };
	return 0;
}

static int map_regions(struct thaw_restore *r)
{
	int err = r->flags & THAW_RESTORE_FIXED_ADDR ? map_fixed(r) : map_block(r);
	if (err)
		return err;
	for (size_t i = 0; i < r->nregions; i++)
		r->segs[i] = (struct mapped_region){ .base = r->region_base[i],
						     .len = r->lay->regions[i].len,
						     .flat = r->region_flat[i] };
	r->nsegs = r->nregions;
	err = thaw__placement_set(r, r->segs, r->nsegs);
	if (err)
		return err;
	for (size_t i = 0; i < r->nranges; i++) {
		err = thaw__engine_register(r->eng, r->ranges[i].base, r->ranges[i].len);
		if (err) {
			thaw__err(r->log, "registering [0x%llx, +0x%llx) with userfaultfd: %s",
				  (unsigned long long)r->ranges[i].base,
				  (unsigned long long)r->ranges[i].len, thaw_strerror(err));
			return err;
		}
	}
	return 0;
}

void thaw__restore_release(struct thaw_restore *r)
{
	/* Workers install through the engine, so they stop before it goes. */
	thaw__workers_stop(r);
	thaw__engine_free(r->eng);
	thaw__decoder_free(r->decoder);
	free(r->scratch);
	free(r->pending);
	free(r->redo);
	free(r->queue);
	free(r->workers);
	free((void *)r->state);
	free((void *)r->queued_in);
	free((void *)r->fault_ns);
	free((void *)r->fault_page);
	free(r->attempts);
	free(r->fault_reads);
	free(r->in_prefetch);
	free(r->fault_seen);
	thaw__record_free(r);
	thaw__ws_free(r);
	free(r->region_base);
	free(r->region_flat);
	free(r->segs);
	free(r->by_addr);
	free(r->ranges);
	thaw__fetch_pool_close(r);
	pthread_mutex_destroy(&r->pool_lock);
	pthread_mutex_destroy(&r->redo_lock);
	pthread_mutex_destroy(&r->q_lock);
	pthread_cond_destroy(&r->q_cond);
	pthread_mutex_destroy(&r->done_lock);
	pthread_cond_destroy(&r->done_cond);
	free(r);
}

int thaw__restore_alloc(struct thaw_snapshot *snap, unsigned flags, struct thaw_restore **out)
{
	const struct thaw__layout *l = &snap->layout;
	struct thaw_restore *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->snap = snap;
	r->lay = l;
	r->log = &snap->log;
	r->flags = flags;
	r->nregions = l->hdr.region_count;
	r->nchunks = l->hdr.chunk_count;
	pthread_mutex_init(&r->pool_lock, NULL);
	pthread_mutex_init(&r->redo_lock, NULL);
	pthread_mutex_init(&r->q_lock, NULL);
	pthread_cond_init(&r->q_cond, NULL);
	pthread_mutex_init(&r->done_lock, NULL);
	/* thaw_restore_wait's deadline is on the monotonic clock. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = r;
	/* calloc of large arrays maps zero pages lazily, so start-up stays flat in size. */
	size_t n = r->nchunks ? r->nchunks : 1;
	r->state = calloc(n, sizeof(*r->state));
	r->queued_in = calloc(n, sizeof(*r->queued_in));
	r->fault_ns = calloc(n, sizeof(*r->fault_ns));
	r->fault_page = calloc(n, sizeof(*r->fault_page));
	r->attempts = calloc(n, 1);
	r->fault_reads = calloc(n, 1);
	r->region_base = calloc(r->nregions + 1, sizeof(*r->region_base));
	r->region_flat = calloc(r->nregions + 1, sizeof(*r->region_flat));
	r->segs = calloc(r->nregions + 1, sizeof(*r->segs));
	r->by_addr = calloc(r->nregions + 1, sizeof(*r->by_addr));
	r->segs_cap = r->nregions + 1;
	r->ranges = calloc(r->nregions + 1, sizeof(*r->ranges));
	r->scratch = malloc(l->hdr.chunk_size);
	r->in_prefetch = calloc(n, 1);
	if (!r->state || !r->queued_in || !r->fault_ns || !r->fault_page || !r->attempts ||
	    !r->fault_reads || !r->region_base || !r->region_flat || !r->segs || !r->by_addr ||
	    !r->ranges || !r->scratch || !r->in_prefetch)
		return -ENOMEM;
	for (uint64_t i = 0; i < l->prefetch_count; i++)
		r->in_prefetch[l->prefetch[i]] = 1;
	atomic_init(&r->prefetch_left, l->prefetch_count);
	for (size_t i = 1; i < r->nregions; i++)
		r->region_flat[i] = r->region_flat[i - 1] + l->regions[i - 1].len;
	uint64_t nonzero = 0;
	for (uint64_t i = 0; i < r->nchunks; i++)
		nonzero += l->chunks[i].kind != THAW_CHUNK_ZERO;
	atomic_init(&r->chunks_left, nonzero);
	r->bg_size = snap->store->bg_min;
	r->pf_size = snap->store->bg_min;
	return thaw__decoder_new(&r->decoder);
}

/* Name the snapshot in the caller's trace; faults append to it from now on. */
static int start_recording(struct thaw_restore *r, struct thaw_trace *t)
{
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	r->fault_seen = calloc(r->nchunks * r->lay->pages_per_chunk + 1, 1);
	if (!r->fault_seen)
		return -ENOMEM;
	thaw_snapshot_get_info(r->snap, &info);
	const char *named = thaw_trace_snapshot(t);
	if (named && strcasecmp(named, info.digest)) {
		/* Its chunk ids would mean other chunks here. */
		thaw__err(r->log, "the trace to record into holds snapshot %s, not this one (%s)",
			  named, info.digest);
		return -EINVAL;
	}
	r->record = t;
	return thaw_trace_set_snapshot(t, info.digest);
}

/* ---- Forked children: each served from the same snapshot by a restore of its own. ---- */

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

static void reap_children(struct thaw_restore *r)
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

/* A child's segments are its parent's at the fork, and so are its removed pages. */
static int place_child(struct thaw_restore *r, void *ctx)
{
	const struct thaw_restore *parent = ctx;
	return thaw__placement_attach(r, parent->segs, parent->nsegs, parent);
}

static void on_fork(void *ctx, int child_uffd)
{
	struct thaw_restore *r = ctx;
	reap_children(r);
	struct thaw_restore_opts o = { .sz = sizeof(o),
				       .flags = r->flags,
				       .background_threads = r->worker_target };
	struct thaw_restore *child = NULL;
	int err = -ENOMEM;
	pthread_mutex_lock(&r->done_lock);
	struct thaw_restore **c = realloc(r->children, (r->nchildren + 1) * sizeof(*c));
	if (c) {
		r->children = c;
		err = thaw__restore_begin(r->snap, &o, child_uffd, place_child, r, &child);
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
		thaw__info(r->log, "serving a forked child (%zu segments)", r->nsegs);
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

static int children_wait(struct thaw_restore *r, const struct timespec *deadline)
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

static void children_free(struct thaw_restore *r)
{
	for (size_t i = 0; i < r->nchildren; i++)
		thaw_restore_free(r->children[i]);
	free(r->children);
	r->children = NULL;
	r->nchildren = 0;
}

static const struct thaw__engine_ops restore_ops = {
	.start = thaw__manager_start,
	.fault = thaw__manager_fault,
	.tick = thaw__manager_tick,
	.urgent = thaw__manager_urgent,
	.stop = thaw__manager_stop,
	.unmap = thaw__placement_on_unmap,
	.remap = thaw__placement_on_remap,
	.fork = on_fork,
};

int thaw__restore_begin(struct thaw_snapshot *snap, const struct thaw_restore_opts *opts, int uffd,
			int (*place)(struct thaw_restore *r, void *ctx), void *ctx,
			struct thaw_restore **out)
{
	struct thaw_restore_opts o;
	*out = NULL;
	int err = THAW__OPTS_READ(&o, opts);
	if (err || snap->layout.hdr.page_size != (uint32_t)sysconf(_SC_PAGESIZE)) {
		if (uffd >= 0)
			close(uffd);
		if (err)
			return err;
		return thaw__fail(&snap->log, o.err_buf, o.err_buf_size, -EINVAL,
				  "snapshot page size %u differs from this machine's %ld",
				  snap->layout.hdr.page_size, sysconf(_SC_PAGESIZE));
	}
	uint64_t t0 = thaw__now_ns();
	struct thaw_restore *r = NULL;
	err = thaw__restore_alloc(snap, o.flags, &r);
	if (!err && o.record)
		err = start_recording(r, o.record);
	if (!err)
		err = thaw__ws_init(r);
	if (!err) {
		r->t_start_ns = t0;
		r->attached = uffd >= 0;
		/* Memory we map ourselves must behave like the anonymous memory it
		 * replaces under fork, MADV_DONTNEED, munmap and mremap. */
		struct thaw__engine_opts eo = { .ops = &restore_ops,
						.ctx = r,
						.log = r->log,
						.uffd = uffd,
						.layout_events = uffd < 0 };
		err = thaw__engine_new(&eo, &r->eng);
	} else if (uffd >= 0) {
		close(uffd);
	}
	if (!err)
		err = place(r, ctx);
	if (r) {
		int threads = o.background_threads > 0 ? o.background_threads
						       : (int)sysconf(_SC_NPROCESSORS_ONLN);
		r->worker_target = threads > 0 ? threads : 1;
	}
	if (!err)
		err = thaw__engine_run(r->eng);
	if (err) {
		if (r) {
			/* First the uffd: an UNMAP event would hold munmap until it is read. */
			thaw__workers_stop(r);
			thaw__engine_free(r->eng);
			r->eng = NULL;
			unmap_regions(r);
			thaw__restore_release(r);
		}
		return thaw__fail(&snap->log, o.err_buf, o.err_buf_size, err,
				  "starting the restore: %s", thaw_strerror(err));
	}
	r->start_us = (thaw__now_ns() - t0) / 1000;
	*out = r;
	return 0;
}

static int place_in_process(struct thaw_restore *r, void *ctx)
{
	return map_regions(r);
}

int thaw_restore_start(struct thaw_snapshot *snap, const struct thaw_restore_opts *opts,
		       struct thaw_restore **out)
{
	if (!snap || !out)
		return -EINVAL;
	return thaw__restore_begin(snap, opts, -1, place_in_process, NULL, out);
}

void *thaw_restore_region_addr(const struct thaw_restore *r, size_t i)
{
	if (!r || i >= r->nregions || r->attached)
		return NULL;
	return (void *)r->region_base[i];
}

/* This restore alone, until deadline (NULL: for ever): 0, -ETIMEDOUT or its error. */
static int wait_self(struct thaw_restore *r, const struct timespec *deadline)
{
	int err = 0;
	pthread_mutex_lock(&r->done_lock);
	while (!r->resident && !r->error && !err) {
		if (!deadline)
			pthread_cond_wait(&r->done_cond, &r->done_lock);
		else
			err = pthread_cond_timedwait(&r->done_cond, &r->done_lock, deadline);
	}
	int result = r->error ? r->error : r->resident ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&r->done_lock);
	if (!result && atomic_load(&r->c.chunks_failed))
		result = -THAW_E_UNINSTALLED;
	else if (!result && atomic_load(&r->c.chunks_poisoned))
		result = -THAW_E_POISONED;
	return result;
}

int thaw_restore_wait(struct thaw_restore *r, int timeout_ms)
{
	if (!r)
		return -EINVAL;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms >= 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	reap_children(r);
	int result = wait_self(r, timeout_ms < 0 ? NULL : &deadline);
	/* An in-process restore waits for the caller's memory; its forked children are
	 * other processes, finished by thaw_restore_free. An attached target's are part
	 * of what the server serves it, even once the target itself has failed or
	 * gone: a server that freed it then would finish them on its own thread. */
	if (r->attached && result != -ETIMEDOUT) {
		int kids = children_wait(r, timeout_ms < 0 ? NULL : &deadline);
		result = kids ? kids : result;
	}
	return result;
}

int thaw_restore_stats(const struct thaw_restore *r, struct thaw_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	struct thaw_stats full = { 0 }, *st = &full;
	st->faults = atomic_load(&r->c.faults);
	st->pages_fault = atomic_load(&r->c.pages_fault);
	st->pages_background = atomic_load(&r->c.pages_background);
	st->pages_zero = atomic_load(&r->c.pages_zero);
	st->chunks_fetched = atomic_load(&r->c.chunks_fetched);
	st->chunks_poisoned = atomic_load(&r->c.chunks_poisoned);
	st->chunks_failed = atomic_load(&r->c.chunks_failed);
	st->bytes_read = atomic_load(&r->c.bytes_read);
	st->fault_p50_us = thaw__lat_pct(&r->c.fault_lat, 50, st->fault_lat_hist);
	st->fault_p99_us = thaw__lat_pct(&r->c.fault_lat, 99, NULL);
	st->fault_wait_us = __atomic_load_n(&r->c.fault_lat.sum_us, __ATOMIC_RELAXED);
	st->start_us = r->start_us;
	st->resident_us = atomic_load(&r->resident_us);
	st->resident = st->resident_us != 0;
	st->prefetch_chunks = r->lay->prefetch_count;
	st->ws_pages = r->lay->ws_page_count;
	st->pages_ws = atomic_load(&r->c.pages_ws);
	st->frames_dropped = atomic_load(&r->c.frames_dropped);
	st->pages_prefetch = atomic_load(&r->c.pages_prefetch);
	st->prefetch_late = atomic_load(&r->c.prefetch_late);
	st->faults_unlisted = atomic_load(&r->c.faults_unlisted);
	st->prefetch_done_us = atomic_load(&r->prefetch_done_us);
	const struct thaw__store_ops *ops = r->snap->store->ops;
	struct thaw_restore *rw = (struct thaw_restore *)r; /* the lock, not the counters */
	pthread_mutex_lock(&rw->done_lock);
	if (ops->stream_stats && r->stream)
		ops->stream_stats(r->stream, st);
	else {
		st->http_requests = r->net_final.http_requests;
		st->http_bytes = r->net_final.http_bytes;
		st->http_retries = r->net_final.http_retries;
		st->http_failures = r->net_final.http_failures;
		st->http_fault_p50_us = r->net_final.http_fault_p50_us;
		st->http_fault_p99_us = r->net_final.http_fault_p99_us;
		st->http_bg_p50_us = r->net_final.http_bg_p50_us;
		st->http_bg_p99_us = r->net_final.http_bg_p99_us;
	}
	pthread_mutex_unlock(&rw->done_lock);
	return THAW__OUT_WRITE(out, st);
}

int thaw_restore_populate(struct thaw_restore *r)
{
	if (!r)
		return -EINVAL;
	atomic_store(&r->finish_requested, true);
	thaw__engine_notify(r->eng);
	/* Children forked since: the same (on_fork passes it on to later ones). */
	pthread_mutex_lock(&r->done_lock);
	for (size_t i = 0; i < r->nchildren; i++)
		thaw_restore_populate(r->children[i]);
	pthread_mutex_unlock(&r->done_lock);
	return 0;
}

int thaw_restore_stop(struct thaw_restore *r)
{
	if (!r)
		return -EINVAL;
	/* The stop callback poisons what is not in (unless everything already is). */
	thaw__engine_request_stop(r->eng);
	thaw__engine_join(r->eng);
	thaw__workers_stop(r);
	/* No manager, so no fork adds a child now. */
	for (size_t i = 0; i < r->nchildren; i++)
		thaw_restore_stop(r->children[i]);
	return 0;
}

static void seal_run(struct thaw_restore *r, uint64_t start, uint64_t end, bool failed)
{
	if (failed && mprotect((void *)start, end - start, PROT_NONE))
		thaw__err(r->log, "mprotect [0x%llx, 0x%llx) PROT_NONE: %s",
			  (unsigned long long)start, (unsigned long long)end, strerror(errno));
}

/*
 * Chunks that could be neither installed nor poisoned must not read zeros
 * once the uffd closes: our own memory becomes inaccessible there (SIGSEGV),
 * an attached target's uffd stays open (its touch waits).
 */
static void seal_failed(struct thaw_restore *r)
{
	uint64_t n = atomic_load(&r->c.chunks_failed);
	if (!n)
		return;
	if (r->attached) {
		thaw__engine_keep_uffd(r->eng);
		thaw__err(r->log,
			  "%llu chunks could be neither installed nor poisoned: the "
			  "target's userfaultfd is left open so they never read zeros",
			  (unsigned long long)n);
		return;
	}
	thaw__engine_hold(r->eng);
	for (size_t i = 0; i < r->nsegs; i++)
		thaw__placement_runs(r, &r->by_addr[i], seal_run);
	thaw__engine_release(r->eng);
	thaw__err(r->log,
		  "%llu chunks could be neither installed nor poisoned: made PROT_NONE "
		  "so they never read zeros (touching them raises SIGSEGV)",
		  (unsigned long long)n);
}

void thaw_restore_free(struct thaw_restore *r)
{
	if (!r)
		return;
	/* The caller keeps the memory, so it must be whole: populate what is left first. */
	atomic_store(&r->finish_requested, true);
	thaw__engine_notify(r->eng);
	/* An early end has poisoned what is missing (the stop callback): nothing waits
	 * forever. Forked children are finished below, each by its own free: one
	 * restored without a background pass would never finish on its own. */
	wait_self(r, NULL);
	seal_failed(r);
	thaw__engine_request_stop(r->eng);
	thaw__engine_join(r->eng);
	thaw__workers_stop(r);
	children_free(r);
	thaw__restore_release(r);
}
