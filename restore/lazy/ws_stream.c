/* SPDX-License-Identifier: MIT */
/*
 * The working-set frames of an optimized snapshot: the pages a recorded run
 * touched, packed in first-touch order into zstd frames stored at the front
 * of the data. They stream from the restore's first tick in large reads,
 * are decoded on the workers and installed page by page, so a replay of
 * the recorded run decodes only its own pages, not every chunk it touches.
 *
 * A frame only repeats bytes its chunks hold: it never changes a chunk's
 * state. A page whose chunk is already DONE or POISONED is left alone (the
 * chunk's install, or its poison, is the answer there). The one race left,
 * a chunk poisoned while a frame copies one of its pages, can only give
 * that page its verified bytes, never wrong ones. A frame that cannot be
 * read or fails its hash is dropped; the chunks of its pages are then
 * fetched for whoever waits, as any fault would.
 */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/codec.h"

#define DROP_LOG_MAX 10

int thaw__ws_init(struct thaw_restore *r)
{
	const struct thaw__layout *l = r->lay;
	if ((!l->frame_count && !l->zero_page_count) || r->record)
		return 0;
	uint64_t npages = r->nchunks * l->pages_per_chunk;
	r->page_frame = calloc(npages, sizeof(*r->page_frame));
	r->frame_state = calloc(l->frame_count + 1, sizeof(*r->frame_state));
	r->frame_in = calloc(l->frame_count + 1, sizeof(*r->frame_in));
	r->frame_wait_ns = calloc(l->frame_count + 1, sizeof(*r->frame_wait_ns));
	/* Raw bytes of the largest frame: the buffer each decoder of frames needs. */
	r->frame_max = (size_t)THAW__FRAME_PAGES_MAX * l->hdr.page_size;
	r->frame_scratch = malloc(r->frame_max);
	if (!r->page_frame || !r->frame_state || !r->frame_in || !r->frame_wait_ns ||
	    !r->frame_scratch)
		return -ENOMEM;
	atomic_init(&r->frames_left, l->frame_count);
	for (uint64_t k = 0; k < l->frame_count; k++)
		for (uint32_t j = 0; j < l->frames[k].page_count; j++)
			r->page_frame[l->ws_pages[l->frame_first[k] + j]] = (uint32_t)(k + 1);
	return 0;
}

void thaw__ws_free(struct thaw_restore *r)
{
	free(r->page_frame);
	free(r->frame_state);
	free(r->frame_in);
	free(r->frame_wait_ns);
	free(r->frame_scratch);
}

/* Flat offset (placement.c) of global page g. */
static uint64_t page_flat(const struct thaw_restore *r, uint64_t g)
{
	uint32_t ppc = r->lay->pages_per_chunk;
	return thaw__chunk_flat(r, g / ppc) + (g % ppc) * (uint64_t)r->lay->hdr.page_size;
}

/* May a frame put page g in? Not over a chunk that is in, or that could not be had. */
static bool page_open(const struct thaw_restore *r, uint64_t g)
{
	uint8_t st = atomic_load(&r->state[g / r->lay->pages_per_chunk]);
	return st != CHUNK_DONE && st != CHUNK_POISONED;
}

/*
 * Frame k is over: installed whole, or not (dropped, or its install stopped
 * short). DONE is stored before the waiter is read, and thaw__ws_fault
 * stores the waiter before it reads the state, so a fault either sees DONE
 * and goes to its chunk, or is seen here and its chunks are fetched.
 */
static void finish_frame(struct thaw_restore *r, uint64_t k, bool whole)
{
	const struct thaw__layout *l = r->lay;
	atomic_store(&r->frame_state[k], FRAME_DONE);
	if (atomic_fetch_sub(&r->frames_left, 1) == 1)
		thaw__engine_notify(r->eng); /* the chunk order goes next */
	uint64_t waited = atomic_load(&r->frame_wait_ns[k]);
	if (!waited)
		return;
	if (whole) {
		thaw__restore_note_latency(r, waited);
		return;
	}
	for (uint32_t j = 0; j < l->frames[k].page_count; j++) {
		uint64_t id = l->ws_pages[l->frame_first[k] + j] / l->pages_per_chunk;
		uint64_t none = 0;
		atomic_compare_exchange_strong(&r->fault_ns[id], &none, waited);
		thaw__restore_redo(r, id);
	}
}

/* Frame k cannot help: its pages come from their chunks. */
static void drop_frame(struct thaw_restore *r, uint64_t k, int why)
{
	uint64_t nth = atomic_fetch_add(&r->c.frames_dropped, 1);
	/* Reads cancelled by the end of the restore are no news. */
	if (nth < DROP_LOG_MAX && why != -ECANCELED)
		thaw__warn(r->log, "working-set frame %llu: %s; its pages come from their chunks",
			   (unsigned long long)k, thaw_strerror(why));
	finish_frame(r, k, false);
}

/* Install frame k's pages from raw, one copy per run of adjacent open pages. */
static void install_frame(struct thaw_restore *r, uint64_t k, const uint8_t *raw)
{
	const struct thaw__layout *l = r->lay;
	const uint64_t *g = l->ws_pages + l->frame_first[k];
	uint32_t n = l->frames[k].page_count, ps = l->hdr.page_size;
	for (uint32_t j = 0; j < n;) {
		if (!page_open(r, g[j])) {
			j++;
			continue;
		}
		uint64_t flat = page_flat(r, g[j]);
		uint32_t run = 1;
		while (j + run < n && page_open(r, g[j + run]) &&
		       page_flat(r, g[j + run]) == flat + (uint64_t)run * ps)
			run++;
		/* Counted first: the wake-up lets the toucher read the stats. */
		atomic_fetch_add(&r->c.pages_ws, run);
		atomic_fetch_add(&r->c.pages_prefetch, run);
		int err = thaw__restore_put_flat(r, flat, (uint64_t)run * ps, THAW__PUT_COPY,
						 raw + (uint64_t)j * ps);
		if (err) {
			/* The chunks are the truth: they will put these pages in, or say why not. */
			atomic_fetch_sub(&r->c.pages_ws, run);
			atomic_fetch_sub(&r->c.pages_prefetch, run);
			thaw__debug(r->log, "working-set frame %llu: %s; left to its chunks",
				    (unsigned long long)k, thaw_strerror(err));
			finish_frame(r, k, false);
			return;
		}
		j += run;
	}
	finish_frame(r, k, true);
}

/* Decode frame k from its fetch (the hold it was queued with is put here) and install it. */
static void decode_frame(struct thaw_restore *r, struct thaw__decoder *dec, void *buf, uint64_t k,
			 struct fetch *f)
{
	const struct thaw__fmt_frame *fr = &r->lay->frames[k];
	const uint8_t *src = f->data + (fr->offset - r->lay->frames[f->first].offset);
	int err =
		dec ? thaw__decode_chunk(dec, THAW_CHUNK_ZSTD, src, fr->stored_len, buf,
					 (size_t)fr->page_count * r->lay->hdr.page_size, &fr->hash)
		    : -ENOMEM;
	if (err)
		drop_frame(r, k, err);
	else
		install_frame(r, k, buf);
	thaw__fetch_put(f);
}

void thaw__ws_worker_job(struct thaw_restore *r, struct thaw__decoder *dec, void *buf, uint64_t k)
{
	/* A fault may have taken the frame already, and with it the hold. */
	struct fetch *f = atomic_exchange(&r->frame_in[k], NULL);
	if (f)
		decode_frame(r, dec, buf, k, f);
}

static void frames_done(struct thaw__store_req *req, int err)
{
	struct fetch *f = (struct fetch *)req;
	struct thaw_restore *r = f->r;
	if (!err)
		atomic_fetch_add_explicit(&r->c.bytes_read, req->len, memory_order_relaxed);
	for (uint32_t i = 0; i < f->count; i++) {
		uint64_t k = f->first + i;
		if (err) {
			drop_frame(r, k, err);
			continue;
		}
		atomic_fetch_add(&f->refs, 1);
		/* Someone waits, or nobody else decodes: do it here rather than queue it. */
		if (atomic_load(&r->frame_wait_ns[k]) || !r->nworkers) {
			decode_frame(r, r->decoder, r->frame_scratch, k, f);
			continue;
		}
		atomic_store(&r->frame_in[k], f);
		thaw__workers_push(r, thaw__ws_worker_job, k);
	}
	thaw__fetch_put(f);
}

/* Read frames [first, first + count), stored back to back and all CLAIMED, on lane. */
static void submit_frames(struct thaw_restore *r, uint64_t first, uint32_t count,
			  enum thaw__lane lane)
{
	const struct thaw__fmt_frame *a = &r->lay->frames[first], *z = a + count - 1;
	struct fetch *f = thaw__fetch_new(r, a->offset, z->offset + z->stored_len - a->offset, lane,
					  frames_done);
	int err = -ENOMEM;
	if (f) {
		f->first = first;
		f->count = count;
		err = thaw__fetch_send(r, f);
	}
	for (uint32_t i = 0; err && i < count; i++)
		drop_frame(r, first + i, err);
}

int thaw__ws_submit(struct thaw_restore *r)
{
	const struct thaw__layout *l = r->lay;
	const struct thaw__store *s = r->snap->store;
	int sent = 0;
	if (!r->page_frame)
		return 0;
	while (r->ws_cursor < l->frame_count &&
	       atomic_load(&r->fetches_alive[THAW__LANE_BACKGROUND]) <
		       (int)s->inflight[THAW__LANE_BACKGROUND]) {
		uint64_t k = r->ws_cursor;
		uint8_t idle = FRAME_IDLE;
		if (!atomic_compare_exchange_strong(&r->frame_state[k], &idle, FRAME_CLAIMED)) {
			r->ws_cursor++; /* a fault has it already */
			continue;
		}
		uint32_t count = 1;
		uint64_t bytes = l->frames[k].stored_len;
		while (k + count < l->frame_count) {
			const struct thaw__fmt_frame *prev = &l->frames[k + count - 1],
						     *next = prev + 1;
			idle = FRAME_IDLE;
			if (next->offset != prev->offset + prev->stored_len ||
			    bytes + next->stored_len > r->pf_size ||
			    !atomic_compare_exchange_strong(&r->frame_state[k + count], &idle,
							    FRAME_CLAIMED))
				break;
			bytes += next->stored_len;
			count++;
		}
		r->ws_cursor += count;
		submit_frames(r, k, count, THAW__LANE_BACKGROUND);
		sent++;
		thaw__pf_grow(r);
	}
	return sent;
}

/*
 * A zero page of a data chunk: the frames hold none (the zero masks in the
 * tables say what they are), so a touch of one would fetch and decode a
 * whole chunk for nothing. Put in just the zero page; the chunk, when it
 * comes, skips it as present.
 */
static bool zero_page(struct thaw_restore *r, uint64_t g, uint64_t now)
{
	const struct thaw__layout *l = r->lay;
	if (l->chunks[g / l->pages_per_chunk].kind == THAW_CHUNK_ZERO ||
	    !thaw__layout_page_zero(l, g))
		return false;
	atomic_fetch_add_explicit(&r->c.pages_zero, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->c.pages_fault, 1, memory_order_relaxed);
	int err =
		thaw__restore_put_flat(r, page_flat(r, g), l->hdr.page_size, THAW__PUT_ZERO, NULL);
	if (err == -ESRCH)
		thaw__restore_fail(r, -THAW_E_TARGET_GONE);
	thaw__restore_note_latency(r, now);
	return true;
}

bool thaw__ws_done(struct thaw_restore *r)
{
	return !r->page_frame || atomic_load(&r->frames_left) == 0;
}

/* Listed zero pages put in per tick: short enough that faults never wait long behind them. */
#define ZERO_BATCH 256

bool thaw__ws_zero_batch(struct thaw_restore *r)
{
	const struct thaw__layout *l = r->lay;
	uint32_t ps = l->hdr.page_size;
	uint64_t end = r->zero_cursor + ZERO_BATCH;
	if (!r->page_frame)
		return false;
	if (end > l->zero_page_count)
		end = l->zero_page_count;
	while (r->zero_cursor < end) {
		uint64_t g = l->zero_pages[r->zero_cursor];
		uint32_t run = 1;
		if (!page_open(r, g)) {
			r->zero_cursor++;
			continue;
		}
		uint64_t flat = page_flat(r, g);
		while (r->zero_cursor + run < end &&
		       page_flat(r, l->zero_pages[r->zero_cursor + run]) ==
			       flat + (uint64_t)run * ps &&
		       page_open(r, l->zero_pages[r->zero_cursor + run]))
			run++;
		atomic_fetch_add_explicit(&r->c.pages_prefetch, run, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->c.pages_zero, run, memory_order_relaxed);
		int err = thaw__restore_put_flat(r, flat, (uint64_t)run * ps, THAW__PUT_ZERO, NULL);
		if (err == -ESRCH)
			thaw__restore_fail(r, -THAW_E_TARGET_GONE);
		r->zero_cursor += run;
	}
	return r->zero_cursor < l->zero_page_count;
}

bool thaw__ws_fault(struct thaw_restore *r, uint64_t g, uint64_t now)
{
	if (!r->page_frame || !page_open(r, g))
		return false;
	if (!r->page_frame[g])
		return zero_page(r, g, now);
	uint64_t k = r->page_frame[g] - 1;
	uint64_t none = 0;
	/* The waiter before the state: see finish_frame. */
	atomic_compare_exchange_strong(&r->frame_wait_ns[k], &none, now);
	uint8_t st = FRAME_IDLE;
	if (atomic_compare_exchange_strong(&r->frame_state[k], &st, FRAME_CLAIMED)) {
		/* Not asked for yet: the frame alone, on the fault lane (it holds the
		 * next pages this run will touch, for about a chunk's decode). */
		submit_frames(r, k, 1, THAW__LANE_FAULT);
		return true;
	}
	if (st == FRAME_DONE)
		return false; /* dropped, or its install stopped short: the chunk serves it */
	/* Fetched and queued behind the workers: decode it now. */
	struct fetch *f = atomic_exchange(&r->frame_in[k], NULL);
	if (f)
		decode_frame(r, r->decoder, r->frame_scratch, k, f);
	return true;
}
