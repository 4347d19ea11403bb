/* SPDX-License-Identifier: MIT */
/*
 * A lazy restore: the state shared by its three modules.
 *   restore.c   lifecycle and the public calls (start, wait, stats, free)
 *   fetch.c     manager thread: faults, coalesced fetches, the background pass
 *   populate.c  decode + install of a fetched chunk, and the decode workers
 *   ws_stream.c the working-set frames: streamed first, installed page by page
 *   record.c    a recording run: page-granular installs, page records
 *
 * Chunk states move MISSING → FETCHING → (QUEUED →) DECODING → DONE or
 * POISONED; DECODING → MISSING again when a chunk fails its hash and is
 * fetched once more. Whoever wins the compare-and-swap into DECODING
 * installs the chunk, so a chunk is installed once even when a fault and
 * the background pass both fetched it.
 */
#ifndef THAW_RESTORE_RESTORE_H
#define THAW_RESTORE_RESTORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/latency.h"
#include "snapshot/snapshot.h"

enum chunk_state {
	CHUNK_MISSING = 0,
	CHUNK_FETCHING,
	CHUNK_QUEUED, /* bytes fetched, waiting for a decode worker */
	CHUNK_DECODING,
	CHUNK_DONE,
	CHUNK_POISONED,
	CHUNK_FAILED, /* neither installed nor poisoned: its pages stay registered */
};

/*
 * One store read covering chunks [first, first + count), stored back to
 * back; or, for a prefetch run, the count chunks ids[0..count) (a slice of
 * the snapshot's prefetch order, first == ids[0]) stored back to back.
 */
struct fetch {
	struct thaw__store_req req;
	struct thaw_restore *r;
	uint64_t first;
	uint32_t count;
	const uint64_t *ids;
	atomic_int refs; /* the manager's hold + one per chunk queued, put by whoever decodes it */
	unsigned char data[];
};

/* Target memory [base, base+len) holding the snapshot's flat bytes [flat, flat+len). */
struct mapped_region {
	uint64_t base;
	uint64_t len;
	uint64_t flat; /* offset in the snapshot's regions laid out back to back */
};

struct restore_counters {
	atomic_uint_fast64_t faults, pages_fault, pages_background, pages_zero;
	atomic_uint_fast64_t chunks_fetched, chunks_poisoned, chunks_failed, bytes_read;
	struct thaw__lat_hist fault_lat;
	atomic_uint_fast64_t pages_prefetch, prefetch_late, faults_unlisted;
	atomic_uint_fast64_t pages_ws, frames_dropped;
};

/* A working-set frame: IDLE → CLAIMED (its read is out) → DONE (installed or dropped). */
enum frame_state {
	FRAME_IDLE = 0,
	FRAME_CLAIMED,
	FRAME_DONE,
};

/* A decode-worker job naming working-set frame (id & ~WS_FRAME_JOB), not a chunk. */
#define WS_FRAME_JOB (1ull << 63)

struct thaw_restore {
	struct thaw_snapshot *snap;
	const struct thaw__layout *lay;
	const struct thaw__logger *log;
	struct thaw__engine *eng;
	struct thaw__store_stream *stream;
	unsigned flags;

	uint64_t *region_base; /* restored address of each region (in-process restores) */
	uint64_t *region_flat; /* each region's offset in the flat layout */
	/* Where the chunks go (placement.c): the same segments sorted by flat offset
	 * and by address. Changed by the manager only, under the engine's layout lock. */
	struct mapped_region *segs, *by_addr;
	size_t nsegs, segs_cap;
	struct mapped_region *ranges; /* what we registered with the engine (none if attached) */
	size_t nranges;
	bool attached; /* the target registered its own memory (thaw_restore_attach) */
	struct thaw_restore **children; /* restores of forked targets (attach.c), under done_lock */
	size_t nchildren;
	unsigned child_waiters; /* threads in thaw__restore_children_wait: no child is freed */
	size_t nregions;
	uint64_t nchunks;

	_Atomic uint8_t *state;		    /* enum chunk_state per chunk */
	_Atomic(struct fetch *) *queued_in; /* QUEUED chunks: the fetch holding their bytes */
	atomic_uint_fast64_t *fault_ns;	    /* when a fault first waited on the chunk; 0 = none */
	uint8_t *fault_reads; /* manager only: fault-lane reads in flight covering the chunk */
	uint8_t *attempts;    /* reads of the chunk whose bytes failed their check (saturates) */
	atomic_uint_fast64_t chunks_left; /* non-zero chunks not yet DONE or POISONED */
	/* Per chunk: 1 = listed in the prefetch order (set before the start), 2 = and
	 * claimed by a prefetch read (set by the manager before the read goes out). */
	uint8_t *in_prefetch;
	atomic_uint_fast64_t prefetch_left; /* listed chunks not yet DONE or POISONED */
	atomic_uint_fast64_t prefetch_done_us;
	struct thaw_trace *record;	/* the caller's, appended to on the manager thread */
	uint8_t *fault_seen;		/* manager only, with record: page already recorded */
	struct record_cache *rec_cache; /* manager only, with record: decoded chunks */

	/* Working-set frames (ws_stream.c); all NULL when the snapshot has none. */
	uint32_t *page_frame;		     /* per global page: 1 + its frame, 0 = not listed */
	_Atomic uint8_t *frame_state;	     /* enum frame_state per frame */
	_Atomic(struct fetch *) *frame_in;   /* fetched frames waiting for a decode */
	atomic_uint_fast64_t *frame_wait_ns; /* when a fault first waited on the frame */
	void *frame_scratch;		     /* manager only: one frame's raw bytes */
	uint64_t ws_cursor;		     /* manager only: next frame for the stream */
	uint64_t zero_cursor;		     /* manager only: next listed zero page */
	atomic_uint_fast64_t frames_left;    /* frames not yet DONE */

	/* Manager thread only. */
	struct thaw__decoder *decoder;
	void *scratch; /* chunk_size bytes */
	uint64_t *pending;
	size_t npending, pending_cap;
	uint64_t pf_cursor; /* next entry of the prefetch order to consider */
	uint32_t pf_size;   /* largest prefetch read now: grows from bg_min to bg_max */
	uint64_t bg_cursor;
	uint32_t bg_size;
	bool fault_since_bg;
	bool bg_open; /* the background pass may run (after a short grace period) */
	struct thaw__ring_req bg_grace;
	bool finished;
	bool warned_unplaced; /* a fault no segment holds has been logged */
	atomic_int fetches_alive[THAW__LANES];

	/* Chunks to fetch again (hash mismatch in a worker), drained by the manager. */
	pthread_mutex_t redo_lock;
	uint64_t *redo;
	size_t nredo, redo_cap;

	/* Decode workers. */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	uint64_t *queue; /* ring of chunk ids */
	size_t q_head, q_len, q_cap;
	bool q_quit;
	pthread_t *workers;
	int nworkers;
	int worker_target; /* started by the manager when the background pass begins */
	bool workers_tried;

	/* Completion, waited on by thaw_restore_wait. */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	atomic_bool finish_requested; /* thaw_restore_free: populate even without background */
	bool resident;
	int error;

	struct thaw_stats net_final; /* transport counters kept when the stream closes */

	uint64_t t_start_ns;
	uint64_t start_us;
	atomic_uint_fast64_t resident_us;
	struct restore_counters c;
};

/* The i-th chunk a fetch covers. */
static inline uint64_t thaw__fetch_chunk(const struct fetch *f, uint32_t i)
{
	return f->ids ? f->ids[i] : f->first + i;
}
/*
 * After a prefetch read (frames or chunks) went out: small reads first, so
 * the first touches find their pages in soon; then reads as large as the
 * store likes. Manager only.
 */
static inline void thaw__pf_grow(struct thaw_restore *r)
{
	uint32_t max = r->snap->store->bg_max;
	if (r->pf_size < max)
		r->pf_size = r->pf_size * 2 < max ? r->pf_size * 2 : max;
}
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

/* restore.c: allocate a restore's state for snap (*out set even on failure, for release). */
int thaw__restore_alloc(struct thaw_snapshot *snap, unsigned flags, struct thaw_restore **out);
/*
 * Start a restore: allocate, create the engine (or adopt uffd, whose
 * ownership passes in every case), let place() map and register memory or
 * set the segments, start the manager thread. On failure nothing is left.
 */
int thaw__restore_begin(struct thaw_snapshot *snap, const struct thaw_restore_opts *opts, int uffd,
			int (*place)(struct thaw_restore *r, void *ctx), void *ctx,
			struct thaw_restore **out);
/* Free everything; the engine (if any) is stopped and its uffd closed. */
void thaw__restore_release(struct thaw_restore *r);

/* fetch.c — engine callbacks, manager thread. */
extern const struct thaw__engine_ops thaw__restore_ops;
/* Unregister every segment (what UNMAP and REMAP left of the memory). Manager only. */
void thaw__restore_unregister(struct thaw_restore *r);

/* attach.c — event callbacks of attached restores, and their forked children. */
void thaw__restore_on_unmap(void *ctx, uint64_t start, uint64_t end);
void thaw__restore_on_remap(void *ctx, uint64_t from, uint64_t to, uint64_t len);
void thaw__restore_on_fork(void *ctx, int child_uffd);
/*
 * Wait for the children too, until the CLOCK_MONOTONIC deadline (NULL: for
 * ever) that bounds the whole thaw_restore_wait; 0 or -ETIMEDOUT, their own
 * failures do not count.
 */
int thaw__restore_children_wait(struct thaw_restore *r, const struct timespec *deadline);
/*
 * Free the children that are over (resident, or their process gone), so a
 * target forking many short-lived children keeps only the live ones; not
 * while a thread waits on them. At each fork and each thaw_restore_wait.
 */
void thaw__restore_reap_children(struct thaw_restore *r);
/* Finish and free every child (after the manager has stopped: no fork adds one). */
void thaw__restore_children_free(struct thaw_restore *r);

/* populate.c */
/*
 * Decode chunk id's stored bytes at src and install them; the caller has
 * moved the chunk to DECODING. Any thread; dec and scratch are the
 * caller's. Returns 0, or -ESRCH when the target address space is gone.
 */
int thaw__populate_chunk(struct thaw_restore *r, struct thaw__decoder *dec, void *scratch,
			 uint64_t id, const void *src);
/* Chunk id is in (or poisoned): if it is listed in the prefetch order, count it. */
void thaw__prefetch_finished(struct thaw_restore *r, uint64_t id);
/*
 * Install chunk id from the snapshot's decoded-chunk cache into scratch and
 * on; taken: the caller moved it to DECODING (else it must be MISSING and is
 * taken here). False when the cache lacks it (a taken chunk then goes back
 * to the manager to fetch).
 */
bool thaw__populate_cached(struct thaw_restore *r, void *scratch, uint64_t id, bool taken);
/* Poison chunk id (it could not be had) and count it finished. */
void thaw__populate_poison(struct thaw_restore *r, uint64_t id, int why);
/* A fault that waited since since_ns was served: add it to the histogram. */
void thaw__restore_record_fault(struct thaw_restore *r, uint64_t since_ns);
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
/*
 * Move a QUEUED chunk to DECODING. The winner gets the fetch holding its
 * bytes together with the hold taken when it was queued, and puts it.
 */
bool thaw__take_queued(struct thaw_restore *r, uint64_t id, struct fetch **f);
/* Where chunk id's stored bytes sit inside fetch f. */
const void *thaw__fetch_bytes(const struct fetch *f, const struct thaw__layout *l, uint64_t id);
int thaw__workers_start(struct thaw_restore *r, int n);
void thaw__workers_push(struct thaw_restore *r, uint64_t id);
void thaw__workers_stop(struct thaw_restore *r);
/* Mark the restore failed (first error wins), wake waiters; returns the error that won. */
int thaw__restore_fail(struct thaw_restore *r, int err);
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
/* A decode worker's frame job: frame k, with a buffer of one frame's raw bytes. */
void thaw__ws_worker_job(struct thaw_restore *r, struct thaw__decoder *dec, void *buf, uint64_t k);
/* Raw bytes of the largest frame: the buffer each decoder of frames needs. */
size_t thaw__ws_frame_max(const struct thaw_restore *r);

/* record.c */
/* Manager, recording run: serve a fault on global page g (at addr) page-granular. */
void thaw__record_fault(struct thaw_restore *r, uint64_t g, uint64_t addr, uint64_t now);
void thaw__record_free(struct thaw_restore *r);

#endif
