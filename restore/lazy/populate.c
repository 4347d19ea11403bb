/* SPDX-License-Identifier: MIT */
/* Decode and install fetched chunks, on the manager thread or a worker; the reads behind them. */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/chunk_cache.h"
#include "format/codec.h"

/* Count a chunk's pages before they are installed: the wake-up lets the toucher read stats. */
static void count_pages(struct thaw_restore *r, uint64_t id, bool by_fault, int sign)
{
	uint64_t pages = thaw__layout_chunk_len(r->lay, id) / r->lay->hdr.page_size;
	atomic_uint_fast64_t *ctr = &r->c.pages_background;
	if (by_fault)
		ctr = &r->c.pages_fault;
	else if (r->in_prefetch[id] == 2)
		ctr = &r->c.pages_prefetch;
	if (sign > 0)
		atomic_fetch_add_explicit(ctr, pages, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(ctr, pages, memory_order_relaxed);
}

/* A chunk reached DONE or POISONED: see if all are. */
static void chunk_finished(struct thaw_restore *r, uint64_t id)
{
	thaw__prefetch_finished(r, id);
	if (atomic_fetch_sub_explicit(&r->chunks_left, 1, memory_order_acq_rel) == 1)
		thaw__engine_notify(r->eng);
}

#define POISON_LOG_MAX 10

void thaw__populate_poison(struct thaw_restore *r, uint64_t id, int why)
{
	uint32_t len = thaw__layout_chunk_len(r->lay, id);
	/* A dead store poisons every chunk: name the first few, count the rest. */
	uint64_t nth = atomic_fetch_add_explicit(&r->c.chunks_poisoned, 1, memory_order_relaxed);
	if (nth < POISON_LOG_MAX)
		thaw__err(r->log,
			  "chunk %llu (source address 0x%llx, %u bytes) could not be restored: %s; "
			  "poisoned, touching it raises SIGBUS",
			  (unsigned long long)id,
			  (unsigned long long)thaw__layout_chunk_addr(r->lay, id), len,
			  thaw_strerror(why));
	else if (nth == POISON_LOG_MAX)
		thaw__err(r->log, "more chunks poisoned; the stats count them all");
	int err = thaw__restore_put(r, id, THAW__PUT_POISON, NULL);
	if (err == -ESRCH)
		thaw__restore_fail(r, -THAW_E_TARGET_GONE);
	if (err && err != -ESRCH) {
		/* Never the kernel's zero fill instead: the chunk's pages stay registered
		 * (thaw__restore_unregister skips them), a touch waits. */
		atomic_fetch_sub_explicit(&r->c.chunks_poisoned, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->c.chunks_failed, 1, memory_order_relaxed);
		thaw__err(r->log,
			  "chunk %llu could not be poisoned either: %s; its pages stay registered, "
			  "so a touch waits instead of reading zeros",
			  (unsigned long long)id, thaw_strerror(err));
		atomic_store_explicit(&r->state[id], CHUNK_FAILED, memory_order_release);
	} else {
		atomic_store_explicit(&r->state[id], CHUNK_POISONED, memory_order_release);
	}
	chunk_finished(r, id);
}

void thaw__populate_poison_unfinished(struct thaw_restore *r)
{
	for (uint64_t id = 0; id < r->nchunks; id++) {
		if (r->lay->chunks[id].kind == THAW_CHUNK_ZERO)
			continue; /* an unregistered zero page fills with zeros: right for it */
		struct fetch *f = NULL;
		uint8_t st = atomic_load(&r->state[id]);
		/* A chunk being decoded is left to its decoder; any other is taken first. */
		if (st == CHUNK_QUEUED ? thaw__take_queued(r, id, &f)
				       : (st == CHUNK_MISSING || st == CHUNK_FETCHING) &&
						 atomic_compare_exchange_strong(&r->state[id], &st,
										CHUNK_DECODING))
			thaw__populate_poison(r, id, -ECANCELED);
		if (f)
			thaw__fetch_put(f);
	}
}

void thaw__restore_redo(struct thaw_restore *r, uint64_t id)
{
	pthread_mutex_lock(&r->redo_lock);
	if (THAW__GROW(r->redo, r->redo_cap, r->nredo + 1, 64)) {
		pthread_mutex_unlock(&r->redo_lock);
		uint8_t expect = CHUNK_MISSING;
		if (atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DECODING))
			thaw__populate_poison(r, id, -ENOMEM);
		return;
	}
	r->redo[r->nredo++] = id;
	pthread_mutex_unlock(&r->redo_lock);
	thaw__engine_notify(r->eng);
}

static void queue_redo(struct thaw_restore *r, uint64_t id);

/* A chunk that failed its check goes back to MISSING for the manager to fetch again. */
static void refetch(struct thaw_restore *r, uint64_t id, int why)
{
	uint32_t refetch = r->snap->store->max_refetch ? r->snap->store->max_refetch : 2;
	if (r->attempts[id] < UINT8_MAX)
		r->attempts[id]++;
	if (r->attempts[id] > refetch) {
		thaw__populate_poison(r, id, why);
		return;
	}
	thaw__warn(r->log, "chunk %llu: %s; fetching it again", (unsigned long long)id,
		   thaw_strerror(why));
	queue_redo(r, id);
}

/* Back to MISSING, for the manager to fetch on the fault lane. */
static void queue_redo(struct thaw_restore *r, uint64_t id)
{
	atomic_store_explicit(&r->state[id], CHUNK_MISSING, memory_order_release);
	thaw__restore_redo(r, id);
}

static int install_decoded(struct thaw_restore *r, uint64_t id, const void *bytes, uint32_t len);

int thaw__populate_chunk(struct thaw_restore *r, struct thaw__decoder *dec, void *scratch,
			 uint64_t id, const void *src)
{
	const struct thaw__fmt_chunk *st = thaw__layout_stored(r->lay, id);
	uint32_t len = thaw__layout_chunk_len(r->lay, id);
	const void *bytes = src;
	int err;
	/* Raw chunks are installed straight from the fetched bytes once their hash holds. */
	const uint64_t *hash = thaw__layout_hash(r->lay, st);
	if (st->kind == THAW_CHUNK_RAW)
		err = !hash || thaw__hash64(src, len) == *hash ? 0 : -THAW_E_HASH;
	else {
		err = thaw__decode_chunk(dec, st->kind, src, st->stored_len, scratch, len, hash);
		bytes = scratch;
	}
	if (err) {
		refetch(r, id, err);
		return 0;
	}
	if (r->snap->cache)
		thaw__chunk_cache_put(r->snap->cache, id, bytes, len);
	return install_decoded(r, id, bytes, len);
}

/*
 * Copy chunk id's len decoded bytes in. With a fault waiting, its page goes
 * first with its own wake-up, and the thread runs again while the rest is
 * copied (measured here: 25-27 us for the whole 64 KiB, 9 us for the one
 * page with its wake-up). Pages a fault touches meanwhile are woken by the
 * copy that brings them.
 */
static int put_chunk(struct thaw_restore *r, uint64_t id, const void *bytes, uint32_t len,
		     uint64_t waited)
{
	if (!waited)
		return thaw__restore_put(r, id, THAW__PUT_COPY, bytes);
	const uint8_t *b = bytes;
	uint64_t page = r->lay->hdr.page_size, flat = thaw__chunk_flat(r, id);
	uint64_t at = atomic_load_explicit(&r->fault_page[id], memory_order_relaxed) * page;
	int err = thaw__restore_put_flat(r, flat + at, page, THAW__PUT_COPY, b + at);
	if (!err)
		thaw__restore_note_latency(r, waited);
	if (!err && at)
		err = thaw__restore_put_flat(r, flat, at, THAW__PUT_COPY, b);
	if (!err && at + page < len)
		err = thaw__restore_put_flat(r, flat + at + page, len - at - page, THAW__PUT_COPY,
					     b + at + page);
	return err;
}

/* Install chunk id's decoded bytes; the chunk is DECODING and ours. */
static int install_decoded(struct thaw_restore *r, uint64_t id, const void *bytes, uint32_t len)
{
	int err;
	uint64_t waited = atomic_load_explicit(&r->fault_ns[id], memory_order_acquire);
	count_pages(r, id, waited != 0, +1);
	err = put_chunk(r, id, bytes, len, waited);
	if (err) {
		count_pages(r, id, waited != 0, -1);
		if (err == -ESRCH) {
			thaw__restore_fail(r, -THAW_E_TARGET_GONE);
			return err;
		}
		thaw__populate_poison(r, id, err);
		return 0;
	}
	atomic_store_explicit(&r->state[id], CHUNK_DONE, memory_order_release);
	atomic_fetch_add_explicit(&r->c.chunks_fetched, 1, memory_order_relaxed);
	chunk_finished(r, id);
	return 0;
}

bool thaw__populate_cached(struct thaw_restore *r, void *scratch, uint64_t id, bool taken)
{
	uint32_t len = thaw__layout_chunk_len(r->lay, id);
	struct thaw__chunk_cache *c = r->snap->cache;
	uint8_t expect = CHUNK_MISSING;
	/* Look first: a chunk already under way is not a hit. */
	if (!taken && atomic_load_explicit(&r->state[id], memory_order_acquire) != CHUNK_MISSING)
		return false;
	if (c && thaw__chunk_cache_get(c, id, scratch, len) &&
	    (taken || atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DECODING))) {
		install_decoded(r, id, scratch, len);
		return true;
	}
	if (taken) {
		/* Evicted since it was queued: the store has it. */
		queue_redo(r, id);
	}
	return false;
}

/* f's read is over and nobody holds it: keep it for the next fetch, or free it. */
static void fetch_recycle(struct thaw_restore *r, struct fetch *f)
{
	pthread_mutex_lock(&r->pool_lock);
	if (r->npool < THAW__FETCH_POOL && !r->pool_closed) {
		r->pool[r->npool++] = f;
		f = NULL;
	} else if (!r->pool_closed) {
		/* Full: keep the larger buffers, which serve any read (reads grow and shrink
		 * with faults; a pool of small ones would miss each time they grow). */
		unsigned min = 0;
		for (unsigned i = 1; i < r->npool; i++)
			if (r->pool[i]->cap < r->pool[min]->cap)
				min = i;
		if (r->pool[min]->cap < f->cap) {
			struct fetch *out = r->pool[min];
			r->pool[min] = f;
			f = out;
		}
	}
	pthread_mutex_unlock(&r->pool_lock);
	free(f);
}

void thaw__fetch_pool_close(struct thaw_restore *r)
{
	struct fetch *pool[THAW__FETCH_POOL];
	pthread_mutex_lock(&r->pool_lock);
	r->pool_closed = true;
	unsigned n = r->npool;
	memcpy(pool, r->pool, n * sizeof(*pool));
	r->npool = 0;
	pthread_mutex_unlock(&r->pool_lock);
	for (unsigned i = 0; i < n; i++)
		free(pool[i]);
}

struct fetch *thaw__fetch_new(struct thaw_restore *r, uint64_t off, uint64_t len,
			      enum thaw__lane lane, void (*done)(struct thaw__store_req *, int))
{
	struct fetch *f = NULL;
	pthread_mutex_lock(&r->pool_lock);
	unsigned best = r->npool;
	for (unsigned i = 0; i < r->npool; i++)
		if (r->pool[i]->cap >= len &&
		    (best == r->npool || r->pool[i]->cap < r->pool[best]->cap))
			best = i;
	if (best < r->npool) {
		f = r->pool[best];
		r->pool[best] = r->pool[--r->npool];
	}
	pthread_mutex_unlock(&r->pool_lock);
	uint64_t cap = f ? f->cap : THAW__FETCH_MIN_CAP;
	while (cap < len)
		cap *= 2; /* a few sizes, so buffers fit the next reads */
	if (!f && !(f = malloc(sizeof(*f) + cap)))
		return NULL;
	*f = (struct fetch){ .r = r, .cap = cap };
	atomic_init(&f->refs, 1);
	f->req = (struct thaw__store_req){
		.off = off, .len = (uint32_t)len, .buf = f->data, .lane = lane, .done = done
	};
	return f;
}

int thaw__fetch_send(struct thaw_restore *r, struct fetch *f)
{
	atomic_fetch_add(&r->fetches_alive[f->req.lane], 1);
	int err = r->snap->store->ops->submit(r->stream, &f->req);
	if (err) {
		atomic_fetch_sub(&r->fetches_alive[f->req.lane], 1);
		fetch_recycle(r, f);
	}
	return err;
}

void thaw__fetch_put(struct fetch *f)
{
	if (!f)
		return; /* a chunk queued from the cache holds no fetch */
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct thaw_restore *r = f->r;
	atomic_fetch_sub_explicit(&r->fetches_alive[f->req.lane], 1, memory_order_acq_rel);
	fetch_recycle(r, f);
	thaw__engine_notify(r->eng);
}

bool thaw__take_queued(struct thaw_restore *r, uint64_t id, struct fetch **f)
{
	uint8_t expect = CHUNK_QUEUED;
	if (!atomic_compare_exchange_strong(&r->state[id], &expect, CHUNK_DECODING))
		return false;
	*f = atomic_load_explicit(&r->queued_in[id], memory_order_acquire);
	return true;
}

const void *thaw__fetch_bytes(const struct fetch *f, const struct thaw__layout *l, uint64_t id)
{
	return f->data +
	       (thaw__layout_stored(l, id)->offset - thaw__layout_stored(l, f->first)->offset);
}

void thaw__populate_job(struct thaw_restore *r, struct thaw__decoder *dec, void *scratch,
			uint64_t id)
{
	struct fetch *f;
	/* A fault may have taken the chunk already, and with it the hold. */
	if (!thaw__take_queued(r, id, &f))
		return;
	if (!f && scratch)
		thaw__populate_cached(r, scratch, id, true);
	else if (f && dec && scratch)
		thaw__populate_chunk(r, dec, scratch, id, thaw__fetch_bytes(f, r->lay, id));
	else
		thaw__populate_poison(r, id, -ENOMEM);
	thaw__fetch_put(f);
}
