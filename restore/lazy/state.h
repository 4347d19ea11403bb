/* SPDX-License-Identifier: MIT */
/*
 * A lazy restore's state, shared by every module of the runtime (their
 * calls are in restore.h). The modules, each using only those below it:
 *   state.c     failing the restore, the latency histogram, prefetch counts
 *   placement.c where a chunk's bytes go: segments, installs, UNMAP/REMAP
 *   workers.c   the decode-worker pool; jobs carry their function
 *   populate.c  decode + install of a fetched chunk; the fetches themselves
 *   ws_stream.c the working-set frames: streamed first, installed page by page
 *   record.c    a recording run: page-granular installs, page records
 *   fetch.c     the manager thread: faults, coalesced fetches, the background pass
 *   restore.c   lifecycle, forked children and the public calls
 *   attach.c    thaw_restore_attach: the mappings a target sends, checked
 *
 * Chunk states move MISSING → FETCHING → (QUEUED →) DECODING → DONE or
 * POISONED; DECODING → MISSING again when a chunk fails its hash and is
 * fetched once more. Whoever wins the compare-and-swap into DECODING
 * installs the chunk, so a chunk is installed once even when a fault and
 * the background pass both fetched it.
 */
#ifndef THAW_RESTORE_STATE_H
#define THAW_RESTORE_STATE_H

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
/* Finished fetches kept for reuse, and the smallest buffer one is given. */
#define THAW__FETCH_POOL    16
#define THAW__FETCH_MIN_CAP (64u << 10)

struct fetch {
	struct thaw__store_req req;
	struct thaw_restore *r;
	uint64_t first;
	uint32_t count;
	const uint64_t *ids;
	atomic_int refs; /* the manager's hold + one per chunk queued, put by whoever decodes it */
	uint64_t cap;	 /* bytes data holds (req.len is this read's) */
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

struct thaw_restore;
struct thaw__decoder;
/* A decode-worker job: run(r, dec, buf, arg) with the worker's decoder and buffer. */
typedef void (*thaw__job_fn)(struct thaw_restore *r, struct thaw__decoder *dec, void *buf,
			     uint64_t arg);
struct thaw__job {
	thaw__job_fn run;
	uint64_t arg;
};

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
	_Atomic uint16_t *fault_page;	    /* the page of the chunk that fault touched */
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
	size_t frame_max;		     /* raw bytes of the largest frame; 0 without frames */
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
	uint64_t bg_near; /* 1 + where the background pass goes on after the last fault; 0: none */
	uint32_t bg_size;
	bool fault_since_bg;
	bool bg_open; /* the background pass may run (after a short grace period) */
	struct thaw__ring_req bg_grace;
	bool finished;
	bool warned_unplaced; /* a fault no segment holds has been logged */
	atomic_int fetches_alive[THAW__LANES];

	/* Fetches whose reads are over, kept with their buffers for the next ones: a fresh
	 * MiB-sized buffer is fresh pages, each faulted in on the first write into it. */
	pthread_mutex_t pool_lock;
	struct fetch *pool[THAW__FETCH_POOL];
	unsigned npool;
	bool pool_closed; /* resident: no more fetches, the pool's memory goes back */

	/* Chunks to fetch again (hash mismatch in a worker), drained by the manager. */
	pthread_mutex_t redo_lock;
	uint64_t *redo;
	size_t nredo, redo_cap;

	/* Decode workers. */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct thaw__job *queue; /* a ring */
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

/* state.c */
/* Mark the restore failed (first error wins), wake waiters; returns the error that won. */
int thaw__restore_fail(struct thaw_restore *r, int err);
/* A fault that waited since since_ns was served: add it to the latency histogram, and keep
 * the manager awake for the next one. */
void thaw__restore_note_latency(struct thaw_restore *r, uint64_t since_ns);
/* Chunk id is in (or poisoned): if it is listed in the prefetch order, count it. */
void thaw__prefetch_finished(struct thaw_restore *r, uint64_t id);

#endif
