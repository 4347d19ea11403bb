/* SPDX-License-Identifier: MIT */
/* The lazy restore's internal calls, module by module (state.h has the state and the order). */
#ifndef THAW_RESTORE_RESTORE_H
#define THAW_RESTORE_RESTORE_H

#include "state.h"

/* workers.c */
/* Start n decode workers (nice WORKER_NICE). 0 or -errno (those started keep running). */
int thaw__workers_start(struct thaw_restore *r, int n);
/* Queue run(r, dec, buf, arg) for a worker. Any thread. */
void thaw__workers_push(struct thaw_restore *r, thaw__job_fn run, uint64_t arg);
/* Let the workers finish their jobs and end; joins them. */
void thaw__workers_stop(struct thaw_restore *r);

/* placement.c */
/* qsort comparators for mapped_region: by target address, by offset in the flat layout. */
int thaw__region_cmp_base(const void *a, const void *b);
int thaw__region_cmp_flat(const void *a, const void *b);
/* Replace the segments (copied). 0 or -ENOMEM. */
int thaw__placement_set(struct thaw_restore *r, const struct mapped_region *segs, size_t n);
/* The global page (chunk id * pages_per_chunk + page) a target address falls in; false when no
 * segment holds it. */
bool thaw__placement_page_at(const struct thaw_restore *r, uint64_t addr, uint64_t *g);
/* Chunk id's offset in the flat layout. */
uint64_t thaw__chunk_flat(const struct thaw_restore *r, uint64_t id);
/* UNMAP and REMAP events: manager only, with the layout held by the engine. */
int thaw__placement_unmap(struct thaw_restore *r, uint64_t start, uint64_t end);
int thaw__placement_move(struct thaw_restore *r, uint64_t from, uint64_t to, uint64_t len);
/* The engine's UNMAP and REMAP callbacks (ctx is the restore): the above, failing on -ENOMEM. */
void thaw__placement_on_unmap(void *ctx, uint64_t start, uint64_t end);
void thaw__placement_on_remap(void *ctx, uint64_t from, uint64_t to, uint64_t len);
/*
 * The segments of a target that owns its memory (copied), and the chunks
 * none of them holds done from the start; for a forked child, parent's
 * removed pages too. 0 or -ENOMEM.
 */
int thaw__placement_attach(struct thaw_restore *r, const struct mapped_region *segs, size_t n,
			   const struct thaw_restore *parent);
enum thaw__put { THAW__PUT_COPY, THAW__PUT_ZERO, THAW__PUT_POISON };
/*
 * Install chunk id into every segment it meets: its decoded bytes (COPY),
 * zeros, or poison. Any thread; retries while the layout is changing.
 * Returns 0, -ESRCH when the target is gone, or another -errno.
 */
int thaw__restore_put(struct thaw_restore *r, uint64_t id, enum thaw__put kind, const void *bytes);
/*
 * Segment s as runs of address space, each wholly in FAILED chunks or wholly
 * not: fn(r, start, end, failed) for each. Manager, or with the layout held.
 */
void thaw__placement_runs(struct thaw_restore *r, const struct mapped_region *s,
			  void (*fn)(struct thaw_restore *r, uint64_t start, uint64_t end,
				     bool failed));
/* The same for len bytes at flat offset flat: a run of pages (working-set frames, recording). */
int thaw__restore_put_flat(struct thaw_restore *r, uint64_t flat, uint64_t len, enum thaw__put kind,
			   const void *bytes);

/* populate.c */
/*
 * Decode chunk id's stored bytes at src and install them; the caller has
 * moved the chunk to DECODING. Any thread; dec and scratch are the
 * caller's. Returns 0, or -ESRCH when the target address space is gone.
 */
int thaw__populate_chunk(struct thaw_restore *r, struct thaw__decoder *dec, void *scratch,
			 uint64_t id, const void *src);
/*
 * Install chunk id from the snapshot's decoded-chunk cache into scratch and
 * on; taken: the caller moved it to DECODING (else it must be MISSING and is
 * taken here). False when the cache lacks it (a taken chunk then goes back
 * to the manager to fetch).
 */
bool thaw__populate_cached(struct thaw_restore *r, void *scratch, uint64_t id, bool taken);
/* Poison chunk id (it could not be had) and count it finished. */
void thaw__populate_poison(struct thaw_restore *r, uint64_t id, int why);
/*
 * The restore is ending before every chunk is in: poison each chunk not
 * installed and not being installed, so no thread waits on a dead loop and
 * no page is ever zero-filled in place of data once the uffd is closed.
 */
void thaw__populate_poison_unfinished(struct thaw_restore *r);
/*
 * A read of the len stored bytes at off on lane, done by done (manager
 * thread), holding the manager's hold; NULL without memory. The caller
 * sets what it covers (first, count, ids, req.attempt), then sends it.
 */
struct fetch *thaw__fetch_new(struct thaw_restore *r, uint64_t off, uint64_t len,
			      enum thaw__lane lane, void (*done)(struct thaw__store_req *, int));
/* Send f: alive on its lane until its last hold is put. On failure f is freed, the error returned. */
int thaw__fetch_send(struct thaw_restore *r, struct fetch *f);
/* Drop one hold on a fetch; the last frees it and lets the manager refill. */
void thaw__fetch_put(struct fetch *f);
/* No more fetches will be kept: the pool's buffers go back now (resident, or freed). */
void thaw__fetch_pool_close(struct thaw_restore *r);
/*
 * Move a QUEUED chunk to DECODING. The winner gets the fetch holding its
 * bytes together with the hold taken when it was queued, and puts it.
 */
bool thaw__take_queued(struct thaw_restore *r, uint64_t id, struct fetch **f);
/* Where chunk id's stored bytes sit inside fetch f. */
const void *thaw__fetch_bytes(const struct fetch *f, const struct thaw__layout *l, uint64_t id);
/* The job that decodes and installs chunk id, queued when its fetch came in. */
void thaw__populate_job(struct thaw_restore *r, struct thaw__decoder *dec, void *scratch,
			uint64_t id);
/* Ask the manager to fetch chunk id on the fault lane if it is MISSING then. Any thread. */
void thaw__restore_redo(struct thaw_restore *r, uint64_t id);

/* ws_stream.c */
/* Set up the per-page and per-frame state when the snapshot lists working-set frames. */
int thaw__ws_init(struct thaw_restore *r);
void thaw__ws_free(struct thaw_restore *r);
/* Manager: put frame reads on the background lane; returns how many went out. */
int thaw__ws_submit(struct thaw_restore *r);
/* Every frame is DONE (or there are none): the chunk order may follow. */
bool thaw__ws_done(struct thaw_restore *r);
/* Manager: put in the next listed zero pages; true while some are left (tick again). */
bool thaw__ws_zero_batch(struct thaw_restore *r);
/*
 * Manager: serve a fault on global page g from the working set if it can: a
 * listed page waits on (or fetches) its frame, a zero page of a data chunk
 * gets a zero page. false: the chunk path serves it.
 */
bool thaw__ws_fault(struct thaw_restore *r, uint64_t g, uint64_t now);
/* A decode worker's frame job: frame k, with a buffer of at least r->frame_max bytes. */
void thaw__ws_worker_job(struct thaw_restore *r, struct thaw__decoder *dec, void *buf, uint64_t k);

/* record.c */
/* Manager, recording run: serve a fault on global page g (at addr) page-granular and
 * append the page to the trace. */
void thaw__record_page(struct thaw_restore *r, uint64_t g, uint64_t addr, uint64_t now);
void thaw__record_free(struct thaw_restore *r);

/* fetch.c: the manager, the engine's callbacks (ctx is the restore), manager thread. */
int thaw__manager_start(void *ctx, struct thaw__engine *e);
void thaw__manager_fault(void *ctx, uint64_t addr, uint64_t flags);
void thaw__manager_tick(void *ctx);
void thaw__manager_urgent(void *ctx);
void thaw__manager_stop(void *ctx);
/* Unregister every segment (what UNMAP and REMAP left of the memory). Manager only. */
void thaw__restore_unregister(struct thaw_restore *r);

/* restore.c */
/*
 * Start a restore: allocate, create the engine (or adopt uffd, whose
 * ownership passes in every case), let place() map and register memory or
 * set the segments, start the manager thread. On failure nothing is left.
 */
int thaw__restore_begin(struct thaw_snapshot *snap, const struct thaw_restore_opts *opts, int uffd,
			int (*place)(struct thaw_restore *r, void *ctx), void *ctx,
			struct thaw_restore **out);

#endif
