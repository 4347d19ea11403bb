/* SPDX-License-Identifier: MIT */
/*
 * The snapshot writer. Regions are only recorded until close; close then
 * runs a pipeline: the main thread hands out jobs (a run of chunks of one
 * region, a few MiB) to worker threads that read, zero-scan, hash and
 * compress them (writer_work.c), and commits finished jobs strictly in order (dedup, then
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
#include "common/abi.h"
#include "writer_priv.h"
#include "uffd/base.h"

#define MAX_THREADS   64
#define PROGRESS_STEP (8u << 20)

struct dedup_ent {
	uint64_t hash;
	uint32_t id; /* UINT32_MAX = empty */
	uint32_t len;
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
	struct thaw_writer_opts o;
	if (THAW__OPTS_READ(&o, opts))
		return -EINVAL;
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

static void region_free(struct thaw__wregion *rg)
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
	struct thaw_region_desc d;
	if (THAW__OPTS_READ(&d, desc))
		return thaw__writer_fail(w, -EINVAL,
					 "a region's sz is unset or it sets fields this "
					 "library does not know");
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
	const struct thaw__wregion *prev = lo ? &w->regions[lo - 1] : NULL;
	const struct thaw__wregion *next = lo < w->nregions ? &w->regions[lo] : NULL;
	if ((prev && prev->addr + prev->len > d.addr) || (next && d.addr + d.len > next->addr)) {
		const struct thaw__wregion *o =
			prev && prev->addr + prev->len > d.addr ? prev : next;
		return thaw__writer_fail(w, -EINVAL,
					 "region %s [0x%" PRIx64 ", 0x%" PRIx64
					 ") overlaps region %s [0x%" PRIx64 ", 0x%" PRIx64 ")",
					 name, d.addr, d.addr + d.len, o->name, o->addr,
					 o->addr + o->len);
	}
	if (THAW__GROW(w->regions, w->cap, w->nregions + 1, 16))
		return -ENOMEM;
	struct thaw__wregion rg = {
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
/* Commit: main thread, in job order. */

static struct thaw__wregion *region_of_chunk(struct thaw_writer *w, uint64_t id)
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
	struct thaw__wregion *rg = region_of_chunk(w, id);
	uint64_t off = (id - rg->first_chunk) * w->chunk_size;
	if (rg->mem && !rg->known_zero) {
		*same = !memcmp(rg->mem + off, p, len);
		return 0;
	}
	char msg[256];
	int r = thaw__writer_read_masked(rg, w->page_size, w->cmp, off, len, rg->known_zero, 0, msg,
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

static int commit_job(struct thaw_writer *w, struct thaw__wjob *j)
{
	if (j->err)
		return thaw__writer_fail(w, j->err, "%s: %s", w->path, j->msg);
	struct iovec iov[64];
	int niov = 0;
	uint64_t iov_off = w->cursor;
	for (uint32_t k = 0; k < j->nchunks; k++) {
		const struct thaw__wchunk *res = &j->res[k];
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
		struct thaw__wregion *rg = &w->regions[i];
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
		const struct thaw__wregion *rg = &w->regions[i];
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
static bool next_job(struct thaw_writer *w, size_t *ri, uint64_t *off, struct thaw__wjob *j)
{
	uint64_t job_bytes = w->chunk_size > THAW__WJOB_BYTES ? w->chunk_size : THAW__WJOB_BYTES;
	while (*ri < w->nregions && *off >= w->regions[*ri].len) {
		(*ri)++;
		*off = 0;
	}
	if (*ri >= w->nregions)
		return false;
	struct thaw__wregion *rg = &w->regions[*ri];
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
	uint64_t job_bytes = w->chunk_size > THAW__WJOB_BYTES ? w->chunk_size : THAW__WJOB_BYTES;
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
		struct thaw__wjob *j = &w->jobs[i];
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
		int e = pthread_create(&tids[started], NULL, thaw__writer_worker, w);
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
		struct thaw__wjob *j = &w->jobs[committed % w->nslots];
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
