/* SPDX-License-Identifier: MIT */
/*
 * The writer's worker threads: each takes the next job (a run of chunks of
 * one region), reads it from its source (memory, a file, another process)
 * skipping pages known to be zero, then zero-scans, hashes and compresses
 * each chunk. Results wait in the job for writer.c's main thread to commit
 * in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "writer_priv.h"

/* ---------------------------------------------------------------- */
/* Reading sources: any thread. */

static bool bit_set(const uint64_t *bits, uint64_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

static int read_pid(const struct thaw__wregion *rg, uint8_t *dst, uint64_t off, uint64_t len,
		    char *msg, size_t msg_len)
{
	uint64_t addr = rg->addr + off;
	while (len) {
		struct iovec l = { dst, len }, r = { (void *)(uintptr_t)addr, len };
		ssize_t n = process_vm_readv(rg->pid, &l, 1, &r, 1, 0);
		if (n <= 0 &&
		    rg->mem_fd >= 0) /* e.g. no process_vm_readv, or pages it cannot reach */
			n = pread(rg->mem_fd, dst, len, (off_t)addr);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			snprintf(msg, msg_len, "region %s: reading pid %d at 0x%" PRIx64 ": %s",
				 rg->name, (int)rg->pid, addr, strerror(e));
			return e == ESRCH ? -ESRCH : -EIO;
		}
		dst += n;
		addr += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int read_fd(const struct thaw__wregion *rg, uint8_t *dst, uint64_t off, uint64_t len,
		   char *msg, size_t msg_len)
{
	uint64_t pos = rg->fd_off + off;
	while (len) {
		ssize_t n = pread(rg->fd, dst, len, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			snprintf(msg, msg_len,
				 "region %s: reading its file at offset %" PRIu64 ": %s", rg->name,
				 pos, n < 0 ? strerror(e) : "unexpected end of file");
			return -e;
		}
		dst += n;
		pos += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int read_src(const struct thaw__wregion *rg, uint8_t *dst, uint64_t off, uint64_t len,
		    char *msg, size_t msg_len)
{
	if (rg->mem) {
		memcpy(dst, rg->mem + off, len);
		return 0;
	}
	return rg->fd >= 0 ? read_fd(rg, dst, off, len, msg, msg_len)
			   : read_pid(rg, dst, off, len, msg, msg_len);
}

int thaw__writer_read_masked(const struct thaw__wregion *rg, uint32_t page_size, uint8_t *dst,
			     uint64_t off, uint64_t len, const uint64_t *zbits, uint64_t bit0,
			     char *msg, size_t msg_len)
{
	if (!zbits)
		return read_src(rg, dst, off, len, msg, msg_len);
	uint64_t p = off / page_size, end = (off + len) / page_size;
	while (p < end) {
		bool zero = bit_set(zbits, p - bit0);
		uint64_t q = p + 1;
		while (q < end && bit_set(zbits, q - bit0) == zero)
			q++;
		uint8_t *d = dst + (p * page_size - off);
		uint64_t n = (q - p) * page_size;
		if (zero) {
			memset(d, 0, n);
		} else {
			int r = read_src(rg, d, p * page_size, n, msg, msg_len);
			if (r)
				return r;
		}
		p = q;
	}
	return 0;
}

/*
 * Holes of a file source read as zeros: find them with SEEK_DATA and
 * SEEK_HOLE and mark the pages wholly inside one, so a sparse memory
 * file costs no reads. Anything unexpected just ends the search.
 */
static void mark_holes(const struct thaw__wregion *rg, uint32_t page_size, uint64_t off,
		       uint64_t len, uint64_t *zbits)
{
	struct stat sb;
	if (rg->seek_fd < 0 || fstat(rg->seek_fd, &sb) < 0)
		return;
	uint64_t base = rg->fd_off, pos = base + off;
	uint64_t end = base + off + len;
	if (end > (uint64_t)sb.st_size)
		end = (uint64_t)sb.st_size; /* past the end is a read error, not zeros */
	while (pos < end) {
		off_t d = lseek(rg->seek_fd, (off_t)pos, SEEK_DATA);
		uint64_t data = d >= 0 ? (uint64_t)d : end;
		if (d < 0 && errno != ENXIO)
			return;
		if (data > end)
			data = end;
		/* [pos, data) is a hole: mark the pages it covers entirely. */
		uint64_t first = (pos - base + page_size - 1) / page_size;
		uint64_t last = (data - base) / page_size;
		for (uint64_t p = first; p < last; p++)
			zbits[(p - off / page_size) / 64] |= 1ull << ((p - off / page_size) % 64);
		if (data >= end)
			return;
		off_t h = lseek(rg->seek_fd, (off_t)data, SEEK_HOLE);
		if (h < 0 || (uint64_t)h <= data)
			return;
		pos = (uint64_t)h;
	}
}

/* ---------------------------------------------------------------- */
/* Workers */

static bool page_is_zero(const uint8_t *p, size_t len)
{
	const uint64_t *q = (const uint64_t *)p;
	for (size_t i = 0; i < len / 8; i += 8) {
		uint64_t acc = q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] |
			       q[i + 6] | q[i + 7];
		if (acc)
			return false;
	}
	return true;
}

static uint64_t zero_hash(const struct thaw_writer *w, uint32_t len)
{
	return len == w->chunk_size ? w->zero_hash : XXH3_64bits(w->zeros, len);
}

static void process_chunk(struct thaw_writer *w, ZSTD_CCtx *cctx, struct thaw__wjob *j, uint32_t k)
{
	struct thaw__wchunk *res = &j->res[k];
	uint64_t coff = (uint64_t)k * w->chunk_size;
	uint32_t len = (uint32_t)(j->len - coff < w->chunk_size ? j->len - coff : w->chunk_size);
	const uint8_t *src = j->src + coff;
	uint32_t pages = len / w->page_size;
	uint64_t first_page = (j->off + coff) / w->page_size;
	memset(res->zmask, 0, sizeof(res->zmask));
	uint32_t nzero = 0;
	for (uint32_t p = 0; p < pages; p++) {
		if (bit_set(j->zmap, first_page - j->off / w->page_size + p) ||
		    page_is_zero(src + (size_t)p * w->page_size, w->page_size)) {
			res->zmask[p / 64] |= 1ull << (p % 64);
			nzero++;
		}
	}
	if (nzero == pages) {
		res->kind = THAW_CHUNK_ZERO;
		res->stored_len = 0;
		res->hash = zero_hash(w, len);
		return;
	}
	res->hash = XXH3_64bits(src, len);
	/* Compression that saves under 1/32 is not worth a decompression on
	 * every fault: cap the output there and store RAW when it does not fit. */
	size_t n = ZSTD_compressCCtx(cctx, j->out + coff, len - len / 32, src, len, w->level);
	if (ZSTD_isError(n)) {
		res->kind = THAW_CHUNK_RAW;
		res->stored_len = len;
	} else {
		res->kind = THAW_CHUNK_ZSTD;
		res->stored_len = (uint32_t)n;
	}
}

static void process_job(struct thaw_writer *w, ZSTD_CCtx *cctx, struct thaw__wjob *j)
{
	const struct thaw__wregion *rg = j->rg;
	uint64_t p0 = j->off / w->page_size, pages = j->len / w->page_size;
	j->err = 0;
	j->msg[0] = 0;
	memset(j->zmap, 0, sizeof(j->zmap));
	if (rg->known_zero)
		for (uint64_t p = 0; p < pages; p++)
			if (bit_set(rg->known_zero, p0 + p))
				j->zmap[p / 64] |= 1ull << (p % 64);
	mark_holes(rg, w->page_size, j->off, j->len, j->zmap);
	if (rg->mem && !rg->known_zero) {
		j->src = rg->mem + j->off;
	} else {
		/* Chunks whose pages are all known to be zero are not read at all. */
		uint32_t ppc = w->chunk_size / w->page_size;
		for (uint32_t k = 0; k < j->nchunks; k++) {
			uint64_t coff = (uint64_t)k * w->chunk_size;
			uint64_t len =
				j->len - coff < w->chunk_size ? j->len - coff : w->chunk_size;
			bool all = true;
			for (uint32_t p = 0; all && p < len / w->page_size; p++)
				all = bit_set(j->zmap, (uint64_t)k * ppc + p);
			if (all)
				continue;
			j->err = thaw__writer_read_masked(rg, w->page_size, j->raw + coff,
							  j->off + coff, len, j->zmap, p0, j->msg,
							  sizeof(j->msg));
			if (j->err)
				return;
		}
		j->src = j->raw;
	}
	for (uint32_t k = 0; k < j->nchunks; k++)
		process_chunk(w, cctx, j, k);
}

void *thaw__writer_worker(void *arg)
{
	struct thaw_writer *w = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && w->claimed == w->issued)
			pthread_cond_wait(&w->work_cv, &w->lock);
		if (w->stop)
			break;
		struct thaw__wjob *j = &w->jobs[w->claimed++ % w->nslots];
		pthread_mutex_unlock(&w->lock);
		if (cctx) {
			process_job(w, cctx, j);
		} else {
			j->err = -ENOMEM;
			snprintf(j->msg, sizeof(j->msg), "cannot create a zstd context");
		}
		pthread_mutex_lock(&w->lock);
		j->done = true;
		pthread_cond_broadcast(&w->done_cv);
	}
	pthread_mutex_unlock(&w->lock);
	ZSTD_freeCCtx(cctx);
	return NULL;
}
