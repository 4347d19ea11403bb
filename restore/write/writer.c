/* SPDX-License-Identifier: MIT */
/*
 * The snapshot writer. Regions are only recorded until close; close then
 * runs a pipeline: the main thread hands out jobs (a run of chunks of one
 * region, a few MiB) to worker threads that read, zero-scan, hash and
 * compress them, and commits finished jobs strictly in order (dedup, then
 * one pwritev), so chunk data lands in address order while memory stays
 * bounded by the job window whatever the image size. Tables go at the
 * front once every chunk is known; the file appears under its name only
 * when complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "format/format.h"
#include "snapshot/snapshot.h"
#include "writer.h"
#include "uffd/base.h"

#define JOB_BYTES	    (2u << 20) /* raw bytes per job (at least one chunk) */
#define MAX_THREADS	    64
#define PROGRESS_STEP	    (8u << 20)
#define MAX_PAGES_PER_CHUNK (THAW__CHUNK_MAX / 4096)
#define ZMASK_WORDS_MAX	    (MAX_PAGES_PER_CHUNK / 64)
#define JOB_PAGES_MAX	    ((JOB_BYTES > THAW__CHUNK_MAX ? JOB_BYTES : THAW__CHUNK_MAX) / 4096)

struct wregion {
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

struct chunk_res {
	uint8_t kind; /* ZERO, RAW or ZSTD; DUP is decided at commit */
	uint32_t stored_len;
	uint64_t hash;
	uint64_t zmask[ZMASK_WORDS_MAX];
};

struct job {
	struct wregion *rg;
	uint64_t off;	/* byte offset in the region */
	uint64_t len;	/* raw bytes */
	uint64_t first; /* first chunk id */
	uint32_t nchunks;
	const uint8_t *src; /* the raw bytes: rg->mem directly, or raw */
	uint8_t *raw;	    /* JOB_BYTES staging for sources that must be read */
	uint8_t *out;	    /* JOB_BYTES of compressed output, chunk k at k * chunk_size */
	struct chunk_res *res;
	uint64_t zmap[JOB_PAGES_MAX / 64]; /* pages of the job known to be zero */
	bool done;
	int err;
	char msg[256];
};

struct dedup_ent {
	uint64_t hash;
	uint32_t id; /* UINT32_MAX = empty */
	uint32_t len;
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
	struct wregion *regions; /* sorted by address */
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
	struct job *jobs;
	unsigned nslots;
	uint64_t issued, claimed;
	bool stop;
};

/* ---------------------------------------------------------------- */

int thaw__writer_fail(struct thaw_writer *w, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = thaw__vfail(&w->log, w->err_buf, w->err_buf_size, code, fmt, ap);
	va_end(ap);
	return code;
}

const struct thaw__logger *thaw__writer_log(const struct thaw_writer *w)
{
	return &w->log;
}

uint32_t thaw__writer_page_size(const struct thaw_writer *w)
{
	return w->page_size;
}

int thaw_writer_open(const char *path, const struct thaw_writer_opts *opts,
		     struct thaw_writer **out)
{
	struct thaw_writer_opts o = { 0 };
	if (opts)
		memcpy(&o, opts, opts->sz && opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	struct thaw__logger log;
	thaw__logger_init(&log, o.log_fn, o.log_ctx);
	if (!path || !*path || !out)
		return thaw__fail(&log, o.err_buf, o.err_buf_size, -EINVAL,
				  "thaw_writer_open: no path");
	long ps = sysconf(_SC_PAGESIZE);
	uint32_t cs = o.chunk_size ? o.chunk_size : THAW__CHUNK_DEFAULT;
	if (cs < THAW__CHUNK_MIN || cs > THAW__CHUNK_MAX || (cs & (cs - 1)) || cs < (uint32_t)ps)
		return thaw__fail(&log, o.err_buf, o.err_buf_size, -EINVAL,
				  "chunk_size %u is not a power of two in %u..%u (and at least the "
				  "page size)",
				  cs, THAW__CHUNK_MIN, THAW__CHUNK_MAX);
	if (o.level < 0 || o.level > ZSTD_maxCLevel())
		return thaw__fail(&log, o.err_buf, o.err_buf_size, -EINVAL,
				  "zstd level %d is outside 0..%d", o.level, ZSTD_maxCLevel());

	struct thaw_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->log = log;
	w->err_buf = o.err_buf;
	w->err_buf_size = o.err_buf_size;
	w->progress = o.progress;
	w->progress_ctx = o.progress_ctx;
	w->chunk_size = cs;
	w->page_size = (uint32_t)ps;
	w->level = o.level ? o.level : 3;
	w->threads = o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (w->threads < 1)
		w->threads = 1;
	if (w->threads > MAX_THREADS)
		w->threads = MAX_THREADS;
	w->path = strdup(path);
	if (!w->path || asprintf(&w->tmp_path, "%s.tmp-XXXXXX", path) < 0) {
		w->tmp_path = NULL;
		free(w->path);
		free(w);
		return -ENOMEM;
	}
	/* Beside the target, so the final rename stays within one filesystem. */
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		int r = -errno;
		thaw__fail(&log, o.err_buf, o.err_buf_size, r,
			   "%s: cannot create a temporary file: %s", path, strerror(-r));
		free(w->tmp_path);
		free(w->path);
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

static void region_free(struct wregion *rg)
{
	free(rg->name);
	free(rg->known_zero);
	if (rg->mem_fd >= 0)
		close(rg->mem_fd);
	if (rg->seek_fd >= 0)
		close(rg->seek_fd);
}

static void writer_free(struct thaw_writer *w, bool keep_file)
{
	if (w->fd >= 0)
		close(w->fd);
	if (!keep_file && w->tmp_path)
		unlink(w->tmp_path);
	for (size_t i = 0; i < w->nregions; i++)
		region_free(&w->regions[i]);
	free(w->regions);
	free(w->tables);
	free((void *)w->zeros);
	free(w->cmp);
	free(w->dedup);
	free(w->path);
	free(w->tmp_path);
	free(w);
}

void thaw_writer_abort(struct thaw_writer *w)
{
	if (w)
		writer_free(w, false);
}

int thaw__writer_add_region_known_zero(struct thaw_writer *w, const struct thaw_region_desc *desc,
				       const uint64_t *known_zero)
{
	if (!w || !desc)
		return -EINVAL;
	struct thaw_region_desc d = { 0 };
	memcpy(&d, desc, desc->sz && desc->sz < sizeof(d) ? desc->sz : sizeof(d));
	const char *name = d.name ? d.name : "";
	size_t name_len = strlen(name);
	if (d.addr % w->page_size || !d.len || d.len % w->page_size)
		return thaw__writer_fail(w, -EINVAL,
					 "region %s at 0x%" PRIx64 ": addr and len (%" PRIu64
					 ") must be page aligned and len > 0",
					 name, d.addr, d.len);
	if (d.len > UINT64_MAX - d.addr)
		return thaw__writer_fail(w, -EINVAL,
					 "region %s: 0x%" PRIx64 " + %" PRIu64 " overflows", name,
					 d.addr, d.len);
	if ((unsigned)d.prot & ~(unsigned)(PROT_READ | PROT_WRITE | PROT_EXEC))
		return thaw__writer_fail(w, -EINVAL, "region %s: prot 0x%x has bits other than rwx",
					 name, d.prot);
	if (name_len > THAW__NAME_MAX)
		return thaw__writer_fail(w, -ENAMETOOLONG, "region name longer than %u bytes",
					 THAW__NAME_MAX);
	if (!d.mem && d.fd < 0 && d.pid <= 0)
		return thaw__writer_fail(w, -EINVAL, "region %s: no source (mem, fd or pid)", name);

	/* Sorted insert; the neighbours tell whether it overlaps. */
	size_t lo = 0, hi = w->nregions;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w->regions[mid].addr < d.addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct wregion *prev = lo ? &w->regions[lo - 1] : NULL;
	const struct wregion *next = lo < w->nregions ? &w->regions[lo] : NULL;
	if ((prev && prev->addr + prev->len > d.addr) || (next && d.addr + d.len > next->addr)) {
		const struct wregion *o = prev && prev->addr + prev->len > d.addr ? prev : next;
		return thaw__writer_fail(w, -EINVAL,
					 "region %s [0x%" PRIx64 ", 0x%" PRIx64
					 ") overlaps region %s [0x%" PRIx64 ", 0x%" PRIx64 ")",
					 name, d.addr, d.addr + d.len, o->name, o->addr,
					 o->addr + o->len);
	}
	if (THAW__GROW(w->regions, w->cap, w->nregions + 1, 16))
		return -ENOMEM;
	struct wregion rg = {
		.addr = d.addr,
		.len = d.len,
		.prot = d.prot,
		.flags = d.flags,
		.name = strdup(name),
		.name_len = (uint32_t)name_len,
		.mem = d.mem,
		.fd = d.mem ? -1 : d.fd,
		.fd_off = d.fd_offset,
		.pid = d.mem || d.fd >= 0 ? 0 : d.pid,
		.mem_fd = -1,
		.seek_fd = -1,
	};
	if (!rg.name)
		return -ENOMEM;
	if (known_zero) {
		size_t words = (size_t)((d.len / w->page_size + 63) / 64);
		rg.known_zero = malloc(words * 8);
		if (!rg.known_zero) {
			free(rg.name);
			return -ENOMEM;
		}
		memcpy(rg.known_zero, known_zero, words * 8);
	}
	if (rg.pid > 0) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/mem", (int)rg.pid);
		rg.mem_fd =
			open(p, O_RDONLY | O_CLOEXEC); /* only a fallback: failure is fine here */
	}
	struct stat sb;
	if (rg.fd >= 0 && !fstat(rg.fd, &sb) && S_ISREG(sb.st_mode)) {
		/* A description of our own, so seeking leaves the caller's offset alone. */
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", rg.fd);
		rg.seek_fd = open(p, O_RDONLY | O_CLOEXEC);
	}
	memmove(&w->regions[lo + 1], &w->regions[lo], (w->nregions - lo) * sizeof(*w->regions));
	w->regions[lo] = rg;
	w->nregions++;
	return 0;
}

int thaw_writer_add_region(struct thaw_writer *w, const struct thaw_region_desc *desc)
{
	return thaw__writer_add_region_known_zero(w, desc, NULL);
}

/* ---------------------------------------------------------------- */
/* Reading sources: any thread. */

static bool bit_set(const uint64_t *bits, uint64_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

static int read_pid(const struct wregion *rg, uint8_t *dst, uint64_t off, uint64_t len, char *msg,
		    size_t msg_len)
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

static int read_fd(const struct wregion *rg, uint8_t *dst, uint64_t off, uint64_t len, char *msg,
		   size_t msg_len)
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

static int read_src(const struct wregion *rg, uint8_t *dst, uint64_t off, uint64_t len, char *msg,
		    size_t msg_len)
{
	if (rg->mem) {
		memcpy(dst, rg->mem + off, len);
		return 0;
	}
	return rg->fd >= 0 ? read_fd(rg, dst, off, len, msg, msg_len)
			   : read_pid(rg, dst, off, len, msg, msg_len);
}

/*
 * Bytes [off, off+len) of a region into dst. Page p of the region is
 * zeroed instead of read when bit (p - bit0) of zbits is set: reading
 * never-populated memory would populate it in the source.
 */
static int read_masked(const struct wregion *rg, uint32_t page_size, uint8_t *dst, uint64_t off,
		       uint64_t len, const uint64_t *zbits, uint64_t bit0, char *msg,
		       size_t msg_len)
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
static void mark_holes(const struct wregion *rg, uint32_t page_size, uint64_t off, uint64_t len,
		       uint64_t *zbits)
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

static void process_chunk(struct thaw_writer *w, ZSTD_CCtx *cctx, struct job *j, uint32_t k)
{
	struct chunk_res *res = &j->res[k];
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

static void process_job(struct thaw_writer *w, ZSTD_CCtx *cctx, struct job *j)
{
	const struct wregion *rg = j->rg;
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
			j->err = read_masked(rg, w->page_size, j->raw + coff, j->off + coff, len,
					     j->zmap, p0, j->msg, sizeof(j->msg));
			if (j->err)
				return;
		}
		j->src = j->raw;
	}
	for (uint32_t k = 0; k < j->nchunks; k++)
		process_chunk(w, cctx, j, k);
}

static void *worker_main(void *arg)
{
	struct thaw_writer *w = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && w->claimed == w->issued)
			pthread_cond_wait(&w->work_cv, &w->lock);
		if (w->stop)
			break;
		struct job *j = &w->jobs[w->claimed++ % w->nslots];
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

/* ---------------------------------------------------------------- */
/* Commit: main thread, in job order. */

static struct wregion *region_of_chunk(struct thaw_writer *w, uint64_t id)
{
	size_t lo = 0, hi = w->nregions;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (w->regions[mid].first_chunk <= id)
			lo = mid;
		else
			hi = mid;
	}
	return &w->regions[lo];
}

static int dedup_grow(struct thaw_writer *w)
{
	size_t cap = w->dedup_cap ? w->dedup_cap * 2 : 4096;
	struct dedup_ent *t = malloc(cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		t[i].id = UINT32_MAX;
	for (size_t i = 0; i < w->dedup_cap; i++) {
		if (w->dedup[i].id == UINT32_MAX)
			continue;
		size_t h = (size_t)w->dedup[i].hash & (cap - 1);
		while (t[h].id != UINT32_MAX)
			h = (h + 1) & (cap - 1);
		t[h] = w->dedup[i];
	}
	free(w->dedup);
	w->dedup = t;
	w->dedup_cap = cap;
	return 0;
}

/* The first stored chunk with this hash and length, or UINT32_MAX. */
static uint32_t dedup_find(const struct thaw_writer *w, uint64_t hash, uint32_t len)
{
	if (!w->dedup_cap)
		return UINT32_MAX;
	for (size_t h = (size_t)hash & (w->dedup_cap - 1);; h = (h + 1) & (w->dedup_cap - 1)) {
		const struct dedup_ent *e = &w->dedup[h];
		if (e->id == UINT32_MAX)
			return UINT32_MAX;
		if (e->hash == hash && e->len == len)
			return e->id;
	}
}

static int dedup_add(struct thaw_writer *w, uint64_t hash, uint32_t len, uint64_t id)
{
	if (id >=
	    UINT32_MAX) /* refs are 32-bit; later chunks are simply not deduplicated against */
		return 0;
	if ((w->dedup_n + 1) * 2 > w->dedup_cap) {
		int r = dedup_grow(w);
		if (r)
			return r;
	}
	size_t h = (size_t)hash & (w->dedup_cap - 1);
	while (w->dedup[h].id != UINT32_MAX)
		h = (h + 1) & (w->dedup_cap - 1);
	w->dedup[h] = (struct dedup_ent){ .hash = hash, .id = (uint32_t)id, .len = len };
	w->dedup_n++;
	return 0;
}

/* Are the bytes of earlier chunk id the same as p? Re-reads the source. */
static int same_bytes(struct thaw_writer *w, uint64_t id, const uint8_t *p, uint32_t len,
		      bool *same)
{
	struct wregion *rg = region_of_chunk(w, id);
	uint64_t off = (id - rg->first_chunk) * w->chunk_size;
	if (rg->mem && !rg->known_zero) {
		*same = !memcmp(rg->mem + off, p, len);
		return 0;
	}
	char msg[256];
	int r = read_masked(rg, w->page_size, w->cmp, off, len, rg->known_zero, 0, msg,
			    sizeof(msg));
	if (r)
		return thaw__writer_fail(w, r, "%s: %s", w->path, msg);
	*same = !memcmp(w->cmp, p, len);
	return 0;
}

static int write_all(struct thaw_writer *w, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = pwritev(w->fd, iov, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return thaw__writer_fail(w, -errno, "%s: writing at offset %" PRIu64 ": %s",
						 w->tmp_path, off, strerror(errno));
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int commit_job(struct thaw_writer *w, struct job *j)
{
	if (j->err)
		return thaw__writer_fail(w, j->err, "%s: %s", w->path, j->msg);
	struct iovec iov[64];
	int niov = 0;
	uint64_t iov_off = w->cursor;
	for (uint32_t k = 0; k < j->nchunks; k++) {
		const struct chunk_res *res = &j->res[k];
		uint64_t id = j->first + k;
		uint64_t coff = (uint64_t)k * w->chunk_size;
		uint32_t len =
			(uint32_t)(j->len - coff < w->chunk_size ? j->len - coff : w->chunk_size);
		struct thaw__fmt_chunk *c = &w->chunks[id];
		memcpy(w->zmask + id * w->zmask_words, res->zmask, w->zmask_words * 8);
		c->hash = res->hash;
		if (res->kind == THAW_CHUNK_ZERO) {
			c->kind = THAW_CHUNK_ZERO;
			w->n_zero++;
			continue;
		}
		uint32_t ref = dedup_find(w, res->hash, len);
		if (ref != UINT32_MAX) {
			bool same = false;
			int r = same_bytes(w, ref, j->src + coff, len, &same);
			if (r)
				return r;
			if (same) {
				c->kind = THAW_CHUNK_DUP;
				c->ref = ref;
				c->offset = w->chunks[ref].offset;
				c->stored_len = w->chunks[ref].stored_len;
				w->n_dup++;
				continue;
			}
			/* A hash collision between different bytes: store it, keep the first in the table. */
		} else {
			int r = dedup_add(w, res->hash, len, id);
			if (r)
				return r;
		}
		c->kind = res->kind;
		c->offset = w->cursor;
		c->stored_len = res->stored_len;
		const uint8_t *bytes = res->kind == THAW_CHUNK_RAW ? j->src + coff : j->out + coff;
		if (res->kind == THAW_CHUNK_RAW)
			w->n_raw++;
		else
			w->n_zstd++;
		if (niov == (int)(sizeof(iov) / sizeof(iov[0]))) {
			int r = write_all(w, iov, niov, iov_off);
			if (r)
				return r;
			niov = 0;
			iov_off = w->cursor;
		}
		iov[niov++] = (struct iovec){ (void *)bytes, res->stored_len };
		w->cursor += res->stored_len;
	}
	return niov ? write_all(w, iov, niov, iov_off) : 0;
}

/* ---------------------------------------------------------------- */

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

/* Lay out the tables: everything but the chunk entries is known now. */
static int build_tables(struct thaw_writer *w, struct thaw__fmt_header *h)
{
	uint64_t names_len = 0, chunks = 0, raw = 0;
	for (size_t i = 0; i < w->nregions; i++) {
		struct wregion *rg = &w->regions[i];
		rg->first_chunk = chunks;
		chunks += (rg->len - 1) / w->chunk_size + 1;
		names_len += rg->name_len;
		raw += rg->len;
	}
	if (names_len > UINT32_MAX)
		return thaw__writer_fail(w, -E2BIG, "%s: region names add up to more than 4 GiB",
					 w->path);
	w->chunk_count = chunks;
	w->raw_bytes = raw;
	w->zmask_words = (w->chunk_size / w->page_size + 63) / 64;
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, THAW__FMT_MAGIC, 8);
	h->version = THAW__FMT_VERSION;
	h->header_size = THAW__FMT_HEADER_SIZE;
	h->page_size = w->page_size;
	h->chunk_size = w->chunk_size;
	h->codec = THAW__FMT_CODEC_ZSTD;
	h->region_count = w->nregions;
	h->region_off = THAW__FMT_HEADER_SIZE;
	h->names_off = align8(h->region_off + w->nregions * sizeof(struct thaw__fmt_region));
	h->names_len = names_len;
	h->chunk_off = align8(h->names_off + names_len);
	h->chunk_count = chunks;
	h->zmask_off = h->chunk_off + chunks * sizeof(struct thaw__fmt_chunk);
	h->tables_len = h->zmask_off + chunks * w->zmask_words * 8;
	h->data_off = h->tables_len;
	h->raw_bytes = raw;
	w->tables_len = h->tables_len;
	w->tables = calloc(1, h->tables_len);
	if (!w->tables)
		return -ENOMEM;
	struct thaw__fmt_region *regions = (void *)(w->tables + h->region_off);
	char *names = (char *)w->tables + h->names_off;
	uint32_t name_off = 0;
	for (size_t i = 0; i < w->nregions; i++) {
		const struct wregion *rg = &w->regions[i];
		regions[i] = (struct thaw__fmt_region){
			.addr = rg->addr,
			.len = rg->len,
			.prot = (uint32_t)rg->prot,
			.flags = rg->flags,
			.first_chunk = rg->first_chunk,
			.name_off = name_off,
			.name_len = rg->name_len,
		};
		memcpy(names + name_off, rg->name, rg->name_len);
		name_off += rg->name_len;
	}
	w->chunks = (void *)(w->tables + h->chunk_off);
	w->zmask = (void *)(w->tables + h->zmask_off);
	w->cursor = h->data_off;
	return 0;
}

/* Next job's metadata, walking regions in address order. */
static bool next_job(struct thaw_writer *w, size_t *ri, uint64_t *off, struct job *j)
{
	uint64_t job_bytes = w->chunk_size > JOB_BYTES ? w->chunk_size : JOB_BYTES;
	while (*ri < w->nregions && *off >= w->regions[*ri].len) {
		(*ri)++;
		*off = 0;
	}
	if (*ri >= w->nregions)
		return false;
	struct wregion *rg = &w->regions[*ri];
	j->rg = rg;
	j->off = *off;
	j->len = rg->len - *off < job_bytes ? rg->len - *off : job_bytes;
	j->first = rg->first_chunk + *off / w->chunk_size;
	j->nchunks = (uint32_t)((j->len - 1) / w->chunk_size + 1);
	j->done = false;
	*off += j->len;
	return true;
}

static int run_pipeline(struct thaw_writer *w)
{
	uint64_t job_bytes = w->chunk_size > JOB_BYTES ? w->chunk_size : JOB_BYTES;
	uint32_t chunks_per_job = (uint32_t)(job_bytes / w->chunk_size);
	w->nslots = (unsigned)w->threads * 2 + 2;
	w->jobs = calloc(w->nslots, sizeof(*w->jobs));
	if (!w->jobs)
		return -ENOMEM;
	int r = 0;
	bool need_raw = false;
	for (size_t i = 0; i < w->nregions; i++)
		need_raw |= !w->regions[i].mem || w->regions[i].known_zero;
	for (unsigned i = 0; i < w->nslots && !r; i++) {
		struct job *j = &w->jobs[i];
		j->out = malloc(job_bytes);
		j->res = malloc(chunks_per_job * sizeof(*j->res));
		j->raw = need_raw ? malloc(job_bytes) : NULL;
		if (!j->out || !j->res || (need_raw && !j->raw))
			r = -ENOMEM;
	}
	pthread_t tids[MAX_THREADS];
	int started = 0;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work_cv, NULL);
	pthread_cond_init(&w->done_cv, NULL);
	for (; !r && started < w->threads; started++) {
		int e = pthread_create(&tids[started], NULL, worker_main, w);
		if (e) {
			r = thaw__writer_fail(w, -e, "cannot start a compression thread: %s",
					      strerror(e));
			break;
		}
	}

	size_t ri = 0;
	uint64_t roff = 0, committed = 0, done_bytes = 0, reported = 0;
	bool more = true;
	pthread_mutex_lock(&w->lock);
	while (!r) {
		while (more && w->issued - committed < w->nslots) {
			more = next_job(w, &ri, &roff, &w->jobs[w->issued % w->nslots]);
			if (more) {
				w->issued++;
				pthread_cond_signal(&w->work_cv);
			}
		}
		if (committed == w->issued)
			break;
		struct job *j = &w->jobs[committed % w->nslots];
		while (!j->done)
			pthread_cond_wait(&w->done_cv, &w->lock);
		pthread_mutex_unlock(&w->lock);
		r = commit_job(w, j);
		committed++;
		done_bytes += j->len;
		if (w->progress &&
		    (done_bytes - reported >= PROGRESS_STEP || done_bytes == w->raw_bytes)) {
			w->progress(done_bytes, w->raw_bytes, w->progress_ctx);
			reported = done_bytes;
		}
		pthread_mutex_lock(&w->lock);
	}
	w->stop = true;
	pthread_cond_broadcast(&w->work_cv);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_cond_destroy(&w->work_cv);
	pthread_cond_destroy(&w->done_cv);
	pthread_mutex_destroy(&w->lock);
	for (unsigned i = 0; i < w->nslots; i++) {
		free(w->jobs[i].out);
		free(w->jobs[i].res);
		free(w->jobs[i].raw);
	}
	free(w->jobs);
	w->jobs = NULL;
	return r;
}

static int finish_file(struct thaw_writer *w, struct thaw__fmt_header *h)
{
	h->data_len = w->cursor - h->data_off;
	h->file_size = w->cursor;
	thaw__layout_digest(h, w->tables, w->tables_len, h->digest);
	memcpy(w->tables, h, sizeof(*h));
	struct iovec iov = { w->tables, w->tables_len };
	int r = write_all(w, &iov, 1, 0);
	if (r)
		return r;
	/* mkstemp made it 0600; a snapshot is meant to be served (nginx, other users). */
	if (fchmod(w->fd, 0644) < 0 || fsync(w->fd) < 0)
		return thaw__writer_fail(w, -errno, "%s: %s", w->tmp_path, strerror(errno));
	if (rename(w->tmp_path, w->path) < 0)
		return thaw__writer_fail(w, -errno, "renaming %s to %s: %s", w->tmp_path, w->path,
					 strerror(errno));
	return 0;
}

int thaw_writer_close(struct thaw_writer *w)
{
	if (!w)
		return -EINVAL;
	struct thaw__fmt_header h;
	uint64_t t0 = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	int r = build_tables(w, &h);
	if (!r) {
		w->zeros = calloc(1, w->chunk_size);
		w->cmp = malloc(w->chunk_size);
		if (!w->zeros || !w->cmp)
			r = -ENOMEM;
	}
	if (!r) {
		w->zero_hash = XXH3_64bits(w->zeros, w->chunk_size);
		r = run_pipeline(w);
	}
	if (!r)
		r = finish_file(w, &h);
	if (!r) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - t0;
		thaw__info(&w->log,
			   "%s: %zu regions, %" PRIu64 " MiB raw -> %" PRIu64
			   " MiB stored; chunks: %" PRIu64 " zero, %" PRIu64 " zstd, %" PRIu64
			   " raw, %" PRIu64 " dup; %.0f MB/s on %d threads",
			   w->path, w->nregions, w->raw_bytes >> 20, (h.data_len) >> 20, w->n_zero,
			   w->n_zstd, w->n_raw, w->n_dup,
			   ns ? (double)w->raw_bytes * 1e3 / (double)ns : 0.0, w->threads);
	} else if (r == -ENOMEM) {
		thaw__writer_fail(w, r, "%s: out of memory", w->path);
	}
	writer_free(w, !r);
	return r;
}
