/* SPDX-License-Identifier: MIT */
/*
 * The writer's state, shared by its two halves: writer.c (regions, the
 * pipeline's main thread, commit, tables) and writer_work.c (what worker
 * threads do to a job: read the source, find zero pages, hash, compress).
 * Not for process.c, which goes through writer.h.
 */
#ifndef THAW_RESTORE_WRITER_PRIV_H
#define THAW_RESTORE_WRITER_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "format/format.h"
#include "uffd/log.h"

#define THAW__WJOB_BYTES   (2u << 20) /* raw bytes per job (at least one chunk) */
#define THAW__WZMASK_WORDS (THAW__CHUNK_MAX / 4096 / 64)
#define THAW__WJOB_PAGES                                                                           \
	((THAW__WJOB_BYTES > THAW__CHUNK_MAX ? THAW__WJOB_BYTES : THAW__CHUNK_MAX) / 4096)

/* A region as thaw_writer_add_region recorded it: where to read it from at close. */
struct thaw__wregion {
	uint64_t addr, len;
	int prot;
	uint32_t flags;
	char *name; /* owned */
	uint32_t name_len;
	const uint8_t *mem;
	int fd; /* not owned */
	uint64_t fd_off;
	pid_t pid;
	int mem_fd;	      /* /proc/PID/mem fallback for pid sources, owned, or -1 */
	uint64_t *known_zero; /* owned page bitmap, or NULL */
	int seek_fd;	      /* owned: fd's file reopened for SEEK_DATA/SEEK_HOLE, or -1 */
	uint64_t first_chunk; /* set at close */
};

/* What a worker made of one chunk. */
struct thaw__wchunk {
	uint8_t kind; /* ZERO, RAW or ZSTD; DUP is decided at commit */
	uint32_t stored_len;
	uint64_t hash;
	uint64_t zmask[THAW__WZMASK_WORDS];
};

/* A run of chunks of one region: filled by the main thread, worked on by one worker. */
struct thaw__wjob {
	struct thaw__wregion *rg;
	uint64_t off;	/* byte offset in the region */
	uint64_t len;	/* raw bytes */
	uint64_t first; /* first chunk id */
	uint32_t nchunks;
	const uint8_t *src; /* the raw bytes: rg->mem directly, or raw */
	uint8_t *raw;	    /* THAW__WJOB_BYTES staging for sources that must be read */
	uint8_t *out;	    /* THAW__WJOB_BYTES of compressed output, chunk k at k * chunk_size */
	struct thaw__wchunk *res;
	uint64_t zmap[THAW__WJOB_PAGES / 64]; /* pages of the job known to be zero */
	bool done;
	int err;
	char msg[256];
};

struct thaw_writer {
	char *path, *tmp_path;
	int fd;
	uint32_t chunk_size, page_size;
	int level, threads;
	thaw_progress_fn progress;
	void *progress_ctx;
	struct thaw__logger log;
	char *err_buf;
	size_t err_buf_size;
	struct thaw__wregion *regions; /* sorted by address */
	size_t nregions, cap;

	/* close-time state */
	uint8_t *tables;
	uint64_t tables_len, chunk_count, raw_bytes;
	struct thaw__fmt_chunk *chunks; /* inside tables */
	uint64_t *zmask;		/* inside tables */
	uint32_t zmask_words;
	uint64_t cursor; /* next data offset */
	const uint8_t *zeros;
	uint64_t zero_hash; /* of chunk_size zeros */
	uint8_t *cmp;	    /* chunk_size scratch for dedup confirmation */
	struct dedup_ent *dedup;
	size_t dedup_cap, dedup_n;
	uint64_t n_dup, n_zero, n_raw, n_zstd;

	pthread_mutex_t lock;
	pthread_cond_t work_cv, done_cv;
	struct thaw__wjob *jobs;
	unsigned nslots;
	uint64_t issued, claimed;
	bool stop;
};

/* writer_work.c */
/*
 * Bytes [off, off+len) of a region into dst. Page p of the region is
 * zeroed instead of read when bit (p - bit0) of zbits is set: reading
 * never-populated memory would populate it in the source. 0, or -errno
 * with msg saying what failed.
 */
int thaw__writer_read_masked(const struct thaw__wregion *rg, uint32_t page_size, uint8_t *dst,
			     uint64_t off, uint64_t len, const uint64_t *zbits, uint64_t bit0,
			     char *msg, size_t msg_len);
/* A compression thread (pthread_create's start, arg the writer): runs jobs until w->stop. */
void *thaw__writer_worker(void *arg);

#endif
