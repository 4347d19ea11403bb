/* SPDX-License-Identifier: MIT */
/*
 * The restore's engine callbacks, all on the manager thread: map a fault to
 * its chunk, fetch missing chunks on the fault lane (adjacent ones in one
 * read), and keep the background lane busy in address order while
 * faults always go first.
 */
#include "restore.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/chunk_cache.h"
#include "format/codec.h"

/* Largest coalesced read on the fault lane: enough for a burst of neighbours. */
#define FAULT_RUN_MAX (1u << 20)

/* Does chunk b's stored data start right where chunk a's ends? */
static bool stored_adjacent(const struct thaw__layout *l, uint64_t a, uint64_t b)
{
	const struct thaw__fmt_chunk *sa = thaw__layout_stored(l, a);
	return sa->offset + sa->stored_len == thaw__layout_stored(l, b)->offset;
}

static void fetch_done(struct thaw__store_req *req, int err);

/* Fault-lane reads in flight per chunk: a failed background read leaves those chunks to them. */
static void count_fault_reads(struct thaw_restore *r, const struct fetch *f, int delta)
{
	if (f->req.lane != THAW__LANE_FAULT)
		return;
	for (uint32_t i = 0; i < f->count; i++)
		r->fault_reads[thaw__fetch_chunk(f, i)] += (uint8_t)delta;
}

/*
 * Read chunks [first, first+count), or the count chunks at ids when ids is
 * not NULL (first == ids[0]), all already FETCHING, on lane; attempt as in
 * store.h.
 */
static void submit_fetch(struct thaw_restore *r, uint64_t first, uint32_t count,
			 enum thaw__lane lane, uint32_t attempt, const uint64_t *ids)
{
	const struct thaw__fmt_chunk *a = thaw__layout_stored(r->lay, first);
	const struct thaw__fmt_chunk *z =
		thaw__layout_stored(r->lay, ids ? ids[count - 1] : first + count - 1);
	struct fetch *f = thaw__fetch_new(r, a->offset, z->offset + z->stored_len - a->offset, lane,
					  fetch_done);
	int err = -ENOMEM;
	if (f) {
		f->first = first;
		f->count = count;
		f->ids = ids;
		f->req.attempt = attempt;
		err = thaw__fetch_send(r, f);
		if (!err)
			count_fault_reads(r, f, +1); /* done never runs inside submit */
	}
	for (uint32_t i = 0; err && i < count; i++) {
		uint64_t id = ids ? ids[i] : first + i;
		uint8_t expect = CHUNK_FETCHING;
		if (atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DECODING))
			thaw__populate_poison(r, id, err);
	}
}

/* Read chunks [from, to) of a failed run again, without the zero chunks at its ends. */
static void resubmit_part(struct thaw_restore *r, uint64_t from, uint64_t to, enum thaw__lane lane)
{
	while (from < to && r->lay->chunks[from].kind == THAW_CHUNK_ZERO)
		from++;
	while (to > from && r->lay->chunks[to - 1].kind == THAW_CHUNK_ZERO)
		to--;
	if (from < to)
		submit_fetch(r, from, (uint32_t)(to - from), lane, 0, NULL);
}

static void fetch_done(struct thaw__store_req *req, int err)
{
	struct fetch *f = (struct fetch *)req;
	struct thaw_restore *r = f->r;
	count_fault_reads(r, f, -1);
	if (!err)
		atomic_fetch_add_explicit(&r->c.bytes_read, req->len, memory_order_relaxed);
	/* One bad range should cost only its own chunks: unless the store is gone or
	 * the object changed, a failed run is asked for again in halves. */
	if (err && f->count > 1 && err != -THAW_E_NET && err != -THAW_E_CHANGED &&
	    err != -ECANCELED) {
		uint32_t half = f->count / 2;
		if (f->ids) {
			/* A prefetch run lists no zero chunks: the halves go out as they are. */
			submit_fetch(r, f->ids[0], half, req->lane, 0, f->ids);
			submit_fetch(r, f->ids[half], f->count - half, req->lane, 0, f->ids + half);
		} else {
			resubmit_part(r, f->first, f->first + half, req->lane);
			resubmit_part(r, f->first + half, f->first + f->count, req->lane);
		}
		thaw__fetch_put(f);
		return;
	}
	for (uint32_t i = 0; i < f->count; i++) {
		uint64_t id = thaw__fetch_chunk(f, i);
		uint8_t expect = CHUNK_FETCHING;
		if (atomic_load(&r->state[id]) != CHUNK_FETCHING)
			continue; /* a fault-lane copy of it got there first */
		if (err) {
			/* A fault-lane read of it is still on its way: let it decide. */
			if (r->fault_reads[id])
				continue;
			if (atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DECODING))
				thaw__populate_poison(r, id, err);
			continue;
		}
		const void *src = thaw__fetch_bytes(f, r->lay, id);
		if (atomic_load(&r->fault_ns[id]) || !r->nworkers) {
			/* Someone is waiting: decode here rather than queue behind the workers. */
			if (atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DECODING))
				thaw__populate_chunk(r, r->decoder, r->scratch, id, src);
			continue;
		}
		atomic_fetch_add(&f->refs, 1);
		atomic_store_explicit(&r->queued_in[id], f, memory_order_release);
		atomic_store_explicit(&r->state[id], CHUNK_QUEUED, memory_order_release);
		thaw__workers_push(r, thaw__populate_job, id);
	}
	if (req->lane == THAW__LANE_BACKGROUND && !err) {
		/* No fault since this range went out: ask for more at once next time. */
		if (!r->fault_since_bg && r->bg_size < r->snap->store->bg_max)
			r->bg_size *= 2;
		r->fault_since_bg = false;
	}
	thaw__fetch_put(f);
}

static void add_pending(struct thaw_restore *r, uint64_t id)
{
	if (THAW__GROW(r->pending, r->pending_cap, r->npending + 1, 64)) {
		thaw__populate_poison(r, id, -ENOMEM);
		return;
	}
	r->pending[r->npending++] = id;
}

/* Whether the prefetch was too late for a fault: by page with working-set pages, else by chunk. */
static void note_fault(struct thaw_restore *r, uint64_t id, uint64_t g)
{
	bool listed = r->page_frame ? r->page_frame[g] != 0 : r->in_prefetch[id] != 0;
	if (!listed)
		atomic_fetch_add_explicit(&r->c.faults_unlisted, 1, memory_order_relaxed);
	else if (atomic_load(&r->state[id]) != CHUNK_DONE)
		atomic_fetch_add_explicit(&r->c.prefetch_late, 1, memory_order_relaxed);
}

/*
 * A fault no segment holds: registered memory the snapshot does not cover
 * (a region grown in place by mremap, a range an attached target never
 * listed) reads as fresh anonymous memory would, zeros; a fault on memory
 * being unmapped is woken and meets the new layout. Never left asleep. An
 * install that meets a changing layout reads the events first and looks
 * again: a REMAP may have brought the snapshot's bytes here. Returns true
 * when the page turned out to be placed after all (*g set).
 */
static bool fault_unplaced(struct thaw_restore *r, uint64_t addr, uint64_t *g)
{
	uint64_t page = r->lay->hdr.page_size, t0 = 0;
	int err;
	while ((err = thaw__install_zero(r->eng, addr, page)) == -EAGAIN &&
	       thaw__engine_await_layout(r->eng, &t0))
		if (thaw__placement_page_at(r, addr, g))
			return true;
	if (err)
		thaw__install_wake(r->eng, addr, page);
	if (!r->warned_unplaced) {
		r->warned_unplaced = true;
		thaw__warn(r->log, "fault at 0x%llx outside every restored range: %s (logged once)",
			   (unsigned long long)addr,
			   err ? "woken" : "answered with a zero page, as new memory reads");
	}
	return false;
}

void thaw__manager_fault(void *ctx, uint64_t addr, uint64_t flags)
{
	struct thaw_restore *r = ctx;
	const struct thaw__layout *l = r->lay;
	/* Read after the ranges were unregistered: that woke the thread already. */
	if (r->finished)
		return;
	uint64_t g;
	atomic_fetch_add_explicit(&r->c.faults, 1, memory_order_relaxed);
	if (!thaw__placement_page_at(r, addr, &g) && !fault_unplaced(r, addr, &g))
		return;
	uint64_t id = g / l->pages_per_chunk;
	uint64_t now = thaw__now_ns();
	if (r->record) {
		thaw__record_page(r, g, addr & ~(uint64_t)(l->hdr.page_size - 1), now);
		return;
	}
	note_fault(r, id, g);
	if (thaw__ws_fault(r, g, now))
		return;
	uint64_t none = 0;
	if (atomic_compare_exchange_strong(&r->fault_ns[id], &none, now))
		atomic_store_explicit(&r->fault_page[id], (uint16_t)(g % l->pages_per_chunk),
				      memory_order_relaxed);
	r->fault_since_bg = true;
	if (r->bg_size > r->snap->store->bg_min)
		r->bg_size /= 2;

	if (l->chunks[id].kind == THAW_CHUNK_ZERO) {
		uint32_t len = thaw__layout_chunk_len(l, id);
		uint8_t missing = CHUNK_MISSING;
		/* Listed zero chunks are tracked so the prefetch installs them once. */
		if (r->in_prefetch[id] &&
		    atomic_compare_exchange_strong(&r->state[id], &missing, CHUNK_DONE))
			thaw__prefetch_finished(r, id);
		/* Counted first: the wake-up lets the toucher read the stats. */
		atomic_fetch_add_explicit(&r->c.pages_zero, len / l->hdr.page_size,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&r->c.pages_fault, len / l->hdr.page_size,
					  memory_order_relaxed);
		int err = thaw__restore_put(r, id, THAW__PUT_ZERO, NULL);
		if (err == -ESRCH)
			thaw__restore_fail(r, -THAW_E_TARGET_GONE);
		thaw__restore_note_latency(r, now);
		atomic_store(&r->fault_ns[id], 0);
		return;
	}
	/* The chunks after it are likely next (QEMU's postcopy carries its stream on
	 * from the page a fault asked for): the background pass goes there first. */
	r->bg_near = id + 2;
	/* Another restore of the snapshot may have decoded it already. */
	if (thaw__populate_cached(r, r->scratch, id, false))
		return;
	uint8_t st = CHUNK_MISSING;
	if (atomic_compare_exchange_strong(&r->state[id], &st, CHUNK_FETCHING)) {
		add_pending(r, id);
		return;
	}
	struct fetch *f;
	if (st == CHUNK_QUEUED && thaw__take_queued(r, id, &f)) {
		/* Fetched by the background pass (or found in the cache), not installed yet: now. */
		if (f)
			thaw__populate_chunk(r, r->decoder, r->scratch, id,
					     thaw__fetch_bytes(f, l, id));
		else
			thaw__populate_cached(r, r->scratch, id, true);
		thaw__fetch_put(f);
		return;
	}
	if (st == CHUNK_FETCHING && none == 0 && r->stream) {
		/* In flight on the background lane: fetch it on the fault lane too,
		 * so the fault never waits behind a large transfer. */
		add_pending(r, id);
		return;
	}
	if (st == CHUNK_DONE || st == CHUNK_POISONED)
		thaw__install_wake(r->eng, addr, l->hdr.page_size);
	/* CHUNK_FAILED: left asleep; waking it would only fault again, for ever. */
}

/* Faults of one batch: sort, then one read per run of stored-adjacent chunks. */
static void submit_pending(struct thaw_restore *r)
{
	if (!r->npending)
		return;
	qsort(r->pending, r->npending, sizeof(*r->pending), thaw__cmp_u64);
	size_t i = 0;
	while (i < r->npending) {
		uint64_t first = r->pending[i];
		uint32_t count = 1;
		uint64_t bytes = thaw__layout_stored(r->lay, first)->stored_len;
		while (i + count < r->npending && r->pending[i + count] == first + count &&
		       stored_adjacent(r->lay, first + count - 1, first + count) &&
		       bytes + thaw__layout_stored(r->lay, first + count)->stored_len <=
			       FAULT_RUN_MAX) {
			bytes += thaw__layout_stored(r->lay, first + count)->stored_len;
			count++;
		}
		submit_fetch(r, first, count, THAW__LANE_FAULT, 0, NULL);
		i += count;
	}
	r->npending = 0;
}

static void submit_redo(struct thaw_restore *r)
{
	pthread_mutex_lock(&r->redo_lock);
	uint64_t *ids = r->redo;
	size_t n = r->nredo;
	r->redo = NULL;
	r->nredo = r->redo_cap = 0;
	pthread_mutex_unlock(&r->redo_lock);
	for (size_t i = 0; i < n; i++) {
		uint8_t expect = CHUNK_MISSING;
		if (atomic_compare_exchange_strong(&r->state[ids[i]], &expect, CHUNK_FETCHING))
			submit_fetch(r, ids[i], 1, THAW__LANE_FAULT, r->attempts[ids[i]], NULL);
	}
	free(ids);
}

/* Decode workers for the prefetch and background passes, started on first need. */
static void workers_ensure(struct thaw_restore *r)
{
	if (r->workers_tried)
		return;
	/* Started here, not in thaw_restore_start, to keep the caller's start short. */
	r->workers_tried = true;
	int err = thaw__workers_start(r, r->worker_target);
	if (err)
		thaw__warn(r->log, "decode workers: %s; decoding on the manager thread",
			   thaw_strerror(err));
}

/* A listed all-zero chunk: zero pages now (cheap), unless a fault has put them in already. */
static void prefetch_zero(struct thaw_restore *r, uint64_t id)
{
	uint8_t expect = CHUNK_MISSING;
	if (!atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DONE))
		return;
	uint64_t pages = thaw__layout_chunk_len(r->lay, id) / r->lay->hdr.page_size;
	atomic_fetch_add_explicit(&r->c.pages_prefetch, pages, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->c.pages_zero, pages, memory_order_relaxed);
	int err = thaw__restore_put(r, id, THAW__PUT_ZERO, NULL);
	if (err == -ESRCH)
		thaw__restore_fail(r, -THAW_E_TARGET_GONE);
	thaw__prefetch_finished(r, id);
}

/*
 * Stream the recorded working set: the prefetch order's chunks, as runs
 * whose stored bytes follow each other (an optimized snapshot stores them
 * so, making this a few large sequential reads), on the background lane
 * so faults keep their own.
 */
static void submit_prefetch(struct thaw_restore *r)
{
	const struct thaw__layout *l = r->lay;
	const struct thaw__store *s = r->snap->store;
	uint64_t n = l->prefetch_count;
	bool submitted = false;
	while (r->pf_cursor < n) {
		const uint64_t *ids = &l->prefetch[r->pf_cursor];
		uint8_t expect = CHUNK_MISSING;
		/* Zero chunks need no read, so no slot: those after the last run go in too. */
		if (l->chunks[ids[0]].kind == THAW_CHUNK_ZERO) {
			prefetch_zero(r, ids[0]);
			r->pf_cursor++;
			continue;
		}
		if (atomic_load(&r->fetches_alive[THAW__LANE_BACKGROUND]) >=
		    (int)s->inflight[THAW__LANE_BACKGROUND])
			break;
		if (!atomic_compare_exchange_strong(&r->state[ids[0]], &expect, CHUNK_FETCHING)) {
			r->pf_cursor++; /* a fault has it already */
			continue;
		}
		uint32_t count = 1;
		uint64_t bytes = thaw__layout_stored(l, ids[0])->stored_len;
		while (r->pf_cursor + count < n) {
			uint32_t more = thaw__layout_stored(l, ids[count])->stored_len;
			expect = CHUNK_MISSING;
			if (!stored_adjacent(l, ids[count - 1], ids[count]) ||
			    bytes + more > r->pf_size ||
			    !atomic_compare_exchange_strong(&r->state[ids[count]], &expect,
							    CHUNK_FETCHING))
				break;
			bytes += more;
			count++;
		}
		for (uint32_t i = 0; i < count; i++)
			r->in_prefetch[ids[i]] = 2;
		r->pf_cursor += count;
		submit_fetch(r, ids[0], count, THAW__LANE_BACKGROUND, 0, ids);
		submitted = true;
		thaw__pf_grow(r);
	}
	/* After the reads went out: they travel while the threads start. */
	if (submitted)
		workers_ensure(r);
}

/* A missing chunk another restore decoded goes to the workers with no fetch behind it. */
static bool from_cache(struct thaw_restore *r, uint64_t id)
{
	uint8_t expect = CHUNK_MISSING;
	if (!r->snap->cache || !r->nworkers || !thaw__chunk_cache_has(r->snap->cache, id) ||
	    !atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_FETCHING))
		return false;
	/* The slot first: whoever sees QUEUED reads it. */
	atomic_store_explicit(&r->queued_in[id], NULL, memory_order_release);
	atomic_store_explicit(&r->state[id], CHUNK_QUEUED, memory_order_release);
	thaw__workers_push(r, thaw__populate_job, id);
	return true;
}

/*
 * One background read from chunk first on: it and the missing chunks that
 * follow it in storage (zero chunks store nothing, so a run goes on past
 * them), up to bg_size bytes. false when first is not missing. Sets *end
 * to the chunk after the run.
 */
static bool submit_run(struct thaw_restore *r, uint64_t first, uint64_t *end)
{
	const struct thaw__layout *l = r->lay;
	uint8_t expect = CHUNK_MISSING;
	*end = first + 1;
	if (l->chunks[first].kind != THAW_CHUNK_ZERO && from_cache(r, first))
		return true;
	if (l->chunks[first].kind == THAW_CHUNK_ZERO ||
	    !atomic_compare_exchange_strong(&r->state[first], &expect, CHUNK_FETCHING))
		return false;
	uint64_t last = first;
	uint64_t bytes = thaw__layout_stored(l, first)->stored_len;
	for (uint64_t next = first + 1; next < r->nchunks; next++) {
		if (l->chunks[next].kind == THAW_CHUNK_ZERO)
			continue;
		uint32_t more = thaw__layout_stored(l, next)->stored_len;
		expect = CHUNK_MISSING;
		if (!stored_adjacent(l, last, next) || bytes + more > r->bg_size ||
		    !atomic_compare_exchange_strong(&r->state[next], &expect, CHUNK_FETCHING))
			break;
		bytes += more;
		last = next;
	}
	*end = last + 1;
	submit_fetch(r, first, (uint32_t)(last - first + 1), THAW__LANE_BACKGROUND, 0, NULL);
	return true;
}

/* Whether the background lane has room for another read. */
static bool bg_room(struct thaw_restore *r)
{
	return atomic_load(&r->fetches_alive[THAW__LANE_BACKGROUND]) <
	       (int)r->snap->store->inflight[THAW__LANE_BACKGROUND];
}

/*
 * Keep the background lane full: first on from the last fault, for as long
 * as what follows it is missing (a workload touching memory near where it
 * just touched meets pages already in), then the next missing chunks in
 * address order, which in the end cover everything.
 */
static void submit_background(struct thaw_restore *r)
{
	const struct thaw__layout *l = r->lay;
	if (r->bg_cursor < r->nchunks)
		workers_ensure(r);
	while (r->bg_near && bg_room(r)) {
		uint64_t at = r->bg_near - 1, end;
		while (at < r->nchunks && l->chunks[at].kind == THAW_CHUNK_ZERO)
			at++;
		r->bg_near = at < r->nchunks && submit_run(r, at, &end) ? end + 1 : 0;
	}
	while (r->bg_cursor < r->nchunks && bg_room(r)) {
		uint64_t end;
		submit_run(r, r->bg_cursor, &end);
		r->bg_cursor = end;
	}
}

static void unregister_run(struct thaw_restore *r, uint64_t start, uint64_t end, bool failed)
{
	if (failed)
		return;
	int err = thaw__engine_unregister(r->eng, start, end - start);
	if (err)
		thaw__warn(r->log, "unregistering [0x%llx, 0x%llx): %s", (unsigned long long)start,
			   (unsigned long long)end, thaw_strerror(err));
}

void thaw__restore_unregister(struct thaw_restore *r)
{
	if (atomic_load(&r->c.chunks_failed)) {
		/* Slower, chunk by chunk: the failed chunks' pages stay registered. */
		for (size_t i = 0; i < r->nsegs; i++)
			thaw__placement_runs(r, &r->by_addr[i], unregister_run);
		return;
	}
	/* What is left of the memory now, after UNMAP and REMAP events, one call per
	 * run of adjacent segments (regions mapped as one block were registered once). */
	for (size_t i = 0; i < r->nsegs;) {
		uint64_t base = r->by_addr[i].base, end = base + r->by_addr[i].len;
		for (i++; i < r->nsegs && r->by_addr[i].base == end; i++)
			end += r->by_addr[i].len;
		unregister_run(r, base, end, false);
	}
}

/* Everything is in: unregister so the memory costs nothing more, and stop. */
static void finish(struct thaw_restore *r)
{
	thaw__restore_unregister(r);
	r->finished = true;
	thaw__fetch_pool_close(r);
	atomic_store(&r->resident_us, (thaw__now_ns() - r->t_start_ns) / 1000 ?: 1);
	pthread_mutex_lock(&r->done_lock);
	r->resident = true;
	pthread_cond_broadcast(&r->done_cond);
	pthread_mutex_unlock(&r->done_lock);
	thaw__info(r->log, "restore resident after %llu us",
		   (unsigned long long)atomic_load(&r->resident_us));
	/* Failed chunks stay registered: events there (munmap, fork) still need reading
	 * until thaw_restore_free. */
	if (!atomic_load(&r->c.chunks_failed))
		thaw__engine_request_stop(r->eng);
}

/* Faults served in the middle of background work: their reads go out now, the rest waits. */
void thaw__manager_urgent(void *ctx)
{
	struct thaw_restore *r = ctx;
	if (!r->finished)
		submit_pending(r);
}

void thaw__manager_tick(void *ctx)
{
	struct thaw_restore *r = ctx;
	if (r->finished)
		return;
	submit_pending(r);
	submit_redo(r);
	/* The working set goes first, from the very start: its frames, then its
	 * chunks; the rest follows it. A recording run fetches only on faults. */
	if (!r->record && thaw__ws_submit(r))
		workers_ensure(r);
	if (!r->record && thaw__ws_zero_batch(r))
		thaw__engine_notify(r->eng);
	if (!r->record && thaw__ws_done(r))
		submit_prefetch(r);
	if ((r->bg_open && !(r->flags & THAW_RESTORE_NO_BACKGROUND) && !r->record) ||
	    atomic_load(&r->finish_requested))
		submit_background(r);
	if (atomic_load(&r->chunks_left) == 0)
		finish(r);
}

/* How long the background pass holds back after start, so the first touches meet an idle loop. */
#define BACKGROUND_GRACE_NS 1000000ull

static void bg_grace_over(struct thaw__ring_req *req, int res, bool more)
{
	struct thaw_restore *r = container_of(req, struct thaw_restore, bg_grace);
	r->bg_open = true; /* a tick follows this completion */
}

int thaw__manager_start(void *ctx, struct thaw__engine *e)
{
	struct thaw_restore *r = ctx;
	/* Fault in the scratch buffer and this thread's malloc arena now, not on the first fault. */
	memset(r->scratch, 0, r->lay->hdr.chunk_size);
	free(malloc(r->lay->hdr.chunk_size));
	int err = r->snap->store->ops->stream_open(r->snap->store, e, &r->stream);
	if (err)
		thaw__err(r->log, "opening the snapshot store for the restore: %s",
			  thaw_strerror(err));
	r->bg_grace.done = bg_grace_over;
	if (!err && thaw__ring_timeout(e, &r->bg_grace, BACKGROUND_GRACE_NS) < 0)
		r->bg_open = true;
	thaw__engine_notify(e); /* a first tick: resident at once if nothing needs fetching */
	return err;
}

void thaw__manager_stop(void *ctx)
{
	struct thaw_restore *r = ctx;
	const struct thaw__store_ops *ops = r->snap->store->ops;
	if (!r->finished) {
		/* The loop is ending early: nobody may stay asleep on a missing page. The
		 * workers first: a chunk one of them is installing must be in before the
		 * ranges are unregistered below. */
		thaw__restore_fail(r, -ECANCELED);
		thaw__workers_stop(r);
		thaw__populate_poison_unfinished(r);
		/* Closing the uffd would unregister too, but a forked child holds a copy
		 * of our fd: zero chunks not yet in would then fault on a dead loop. */
		if (!r->attached)
			thaw__restore_unregister(r);
	}
	if (!r->stream)
		return;
	/* Keep the transport counters: stats stay readable after the stream is gone. */
	pthread_mutex_lock(&r->done_lock);
	if (ops->stream_stats)
		ops->stream_stats(r->stream, &r->net_final);
	struct thaw__store_stream *st = r->stream;
	r->stream = NULL;
	pthread_mutex_unlock(&r->done_lock);
	ops->stream_close(st);
}
