/* SPDX-License-Identifier: MIT */
/* thaw bench: the four ways of restoring the memory the touches run on. */
#include "cli_bench.h"
/* The one internal header the command uses: the floor is kept out of the library. */
#include "uffd/floor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- the four modes ---- */

/*
 * --population, lazy: pages installed so far, by faults, the background or
 * prefetch; everything once resident (the background pass installs no
 * all-zero chunk: unregistered, they read as the kernel's zero pages).
 */
struct lazy_pop {
	struct thaw_restore *r;
	uint32_t page;
	uint64_t raw;
};

static uint64_t lazy_pop_bytes(void *ctx)
{
	struct lazy_pop *lp = ctx;
	struct thaw_stats st = { .sz = sizeof(st) };
	if (thaw_restore_stats(lp->r, &st))
		return 0;
	if (st.resident)
		return lp->raw;
	return (st.pages_fault + st.pages_background + st.pages_prefetch) * lp->page;
}

static uint64_t minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_minflt;
}

int cli_bench_run_lazy(struct bench *b, struct touch_team *tm)
{
	struct thaw_restore_opts ro = { .sz = sizeof(ro),
					.flags = b->a.no_bg ? THAW_RESTORE_NO_BACKGROUND : 0 };
	struct thaw_restore *r = NULL;
	struct thaw_trace *rec = NULL;
	if (b->a.record && thaw_trace_new(&rec) < 0) {
		cli_err("bench", "out of memory");
		return -ENOMEM;
	}
	ro.record = rec;
	b->t0_ns = cli_now_ns();
	int e = thaw_restore_start(b->snap, &ro, &r);
	b->ready_ns = cli_now_ns();
	if (e < 0) {
		cli_err("bench", "cannot start a restore of %s: %s", b->a.uri, thaw_strerror(e));
		thaw_trace_free(rec);
		return e;
	}
	for (size_t i = 0; i < b->nreg; i++)
		b->base[i] = thaw_restore_region_addr(r, i);
	struct lazy_pop lp = { .r = r, .page = b->page, .raw = b->info.raw_bytes };
	if (b->pop)
		cli_pop_start(b->pop, b->t0_ns, lazy_pop_bytes, &lp);
	cli_bench_team_run(tm, b);
	/* A recording run has no background pass: it would never be resident. */
	if (!b->a.no_bg && !b->a.record) {
		e = thaw_restore_wait(r, -1);
		b->resident_ns = cli_now_ns();
		b->have_resident = e == 0;
		if (e < 0)
			cli_err("bench", "restore did not complete: %s", thaw_strerror(e));
	}
	cli_pop_stop(b->pop);
	struct thaw_stats st = { .sz = sizeof(st) };
	if (thaw_restore_stats(r, &st) == 0) {
		b->faults = st.faults;
		b->pages_fault = st.pages_fault;
		b->bytes_read = st.bytes_read;
		b->lib = st;
		b->have_lib = true;
	}
	cli_restore_release(r, b->snap);
	if (rec) {
		int se = thaw_trace_save(rec, b->a.record);
		if (se < 0) {
			cli_err("bench", "cannot write the trace %s: %s", b->a.record,
				thaw_strerror(se));
			e = e < 0 ? e : se;
		}
		thaw_trace_free(rec);
	}
	return e < 0 ? e : 0;
}

struct decoder {
	struct bench *b;
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t bytes_read;
	atomic_uint_fast64_t raw_done; /* raw bytes in place, zero chunks included */
	atomic_int err;
	atomic_uint_fast64_t bad_chunk;
};

static void *decoder_main(void *arg)
{
	struct decoder *d = arg;
	struct bench *b = d->b;
	for (;;) {
		uint64_t i = atomic_fetch_add(&d->next, 1);
		if (i >= b->info.chunk_count || atomic_load(&d->err))
			break;
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		int r = thaw_snapshot_chunk(b->snap, i, &ci);
		if (r == 0 && ci.kind == THAW_CHUNK_ZERO) {
			atomic_fetch_add(&d->raw_done, ci.len);
			continue; /* fresh anonymous memory is zero already */
		}
		if (r == 0) {
			char *dst = b->base[ci.region] + (ci.addr - b->reg[ci.region].addr);
			ssize_t n = thaw_snapshot_read_chunk(b->snap, i, dst, ci.len);
			r = n < 0 ? (int)n : 0;
			atomic_fetch_add(&d->bytes_read, ci.stored_len);
			atomic_fetch_add(&d->raw_done, ci.len);
		}
		if (r < 0) {
			atomic_store(&d->bad_chunk, i);
			atomic_store(&d->err, r);
		}
	}
	return NULL;
}

static uint64_t eager_pop_bytes(void *ctx)
{
	return atomic_load(&((struct decoder *)ctx)->raw_done);
}

static int map_anon_regions(struct bench *b)
{
	for (size_t i = 0; i < b->nreg; i++) {
		void *p = mmap(NULL, b->reg[i].len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		b->base[i] = p;
	}
	return 0;
}

static void unmap_regions(struct bench *b)
{
	for (size_t i = 0; i < b->nreg; i++)
		if (b->base[i])
			munmap(b->base[i], b->reg[i].len);
}

int cli_bench_run_eager(struct bench *b, struct touch_team *tm)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > 256)
		ncpu = 256;
	struct decoder d = { .b = b };
	pthread_t tid[256];
	b->t0_ns = cli_now_ns();
	int e = map_anon_regions(b);
	if (e < 0) {
		cli_err("bench", "cannot map %s of memory: %s", "the regions", strerror(-e));
		unmap_regions(b);
		return e;
	}
	int started = 0;
	if (b->pop)
		cli_pop_start(b->pop, b->t0_ns, eager_pop_bytes, &d);
	for (; started < ncpu - 1; started++)
		if (pthread_create(&tid[started], NULL, decoder_main, &d))
			break;
	decoder_main(&d);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	b->ready_ns = cli_now_ns();
	cli_pop_stop(b->pop);
	e = atomic_load(&d.err);
	if (e < 0) {
		cli_err("bench", "chunk %llu: %s", (unsigned long long)atomic_load(&d.bad_chunk),
			thaw_strerror(e));
		unmap_regions(b);
		return e;
	}
	b->resident_ns = b->ready_ns;
	b->have_resident = true;
	b->bytes_read = atomic_load(&d.bytes_read);
	uint64_t f0 = minor_faults();
	cli_bench_team_run(tm, b);
	b->faults = minor_faults() - f0;
	b->pages_fault = b->faults;
	unmap_regions(b);
	return 0;
}

/* The raw image, regions back to back, written to a file (not timed). */
static int write_image(struct bench *b, int fd)
{
	char *buf = malloc(b->info.chunk_size);
	if (!buf)
		return -ENOMEM;
	uint64_t off = 0;
	int r = 0;
	for (size_t i = 0; i < b->nreg && r == 0; i++) {
		for (uint64_t c = 0; c < b->reg[i].chunk_count && r == 0; c++) {
			uint64_t id = b->reg[i].first_chunk + c;
			struct thaw_chunk_info ci = { .sz = sizeof(ci) };
			r = thaw_snapshot_chunk(b->snap, id, &ci);
			if (r < 0)
				break;
			uint64_t at = off + (ci.addr - b->reg[i].addr);
			if (ci.kind == THAW_CHUNK_ZERO)
				continue; /* a hole reads as zero */
			ssize_t n = thaw_snapshot_read_chunk(b->snap, id, buf, b->info.chunk_size);
			if (n < 0) {
				r = (int)n;
				cli_err("bench", "chunk %llu: %s", (unsigned long long)id,
					thaw_strerror(r));
				break;
			}
			ssize_t w = pwrite(fd, buf, (size_t)n, (off_t)at);
			if (w != n)
				r = w < 0 ? -errno : -ENOSPC;
		}
		off += b->reg[i].len;
	}
	if (r == 0 && ftruncate(fd, (off_t)off) < 0)
		r = -errno;
	free(buf);
	return r;
}

static int map_image(struct bench *b, struct touch_team *tm, int fd);

/* --source: the image as it was before thaw ever saw it (pre-read into page cache). */
static int map_source(struct bench *b, struct touch_team *tm)
{
	int fd = open(b->a.source, O_RDONLY);
	if (fd < 0) {
		int e = -errno;
		cli_err("bench", "%s: %s", b->a.source, strerror(-e));
		return e;
	}
	char buf[1 << 16];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return map_image(b, tm, fd);
}

int cli_bench_run_mmap(struct bench *b, struct touch_team *tm)
{
	char path[4096];
	const char *dir = b->a.tmpdir;
	char snapdir[4096];
	if (!dir && !strstr(b->a.uri, "://")) {
		snprintf(snapdir, sizeof(snapdir), "%s", b->a.uri);
		char *slash = strrchr(snapdir, '/');
		if (slash)
			*slash = 0;
		dir = slash ? (snapdir[0] ? snapdir : "/") : ".";
	}
	if (!dir)
		dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (b->a.source)
		return map_source(b, tm);
	if ((size_t)snprintf(path, sizeof(path), "%s/.thaw-bench-image-XXXXXX", dir) >=
	    sizeof(path)) {
		cli_err("bench", "--tmpdir path too long");
		return -ENAMETOOLONG;
	}
	int fd = mkstemp(path);
	if (fd < 0) {
		int e = -errno; /* before cli_err's stdio may change errno */
		cli_err("bench", "cannot create a temporary image in %s: %s", dir, strerror(-e));
		return e;
	}
	unlink(path); /* the mapping keeps it alive; nothing is left behind */
	int e = write_image(b, fd);
	if (e < 0) {
		cli_err("bench", "cannot write the temporary image in %s: %s", dir,
			thaw_strerror(e));
		close(fd);
		return e;
	}
	return map_image(b, tm, fd);
}

/* Map the image in fd (regions back to back), time the touches; closes fd. */
static int map_image(struct bench *b, struct touch_team *tm, int fd)
{
	int e;
	b->t0_ns = cli_now_ns();
	uint64_t off = 0;
	for (size_t i = 0; i < b->nreg; i++) {
		void *p = mmap(NULL, b->reg[i].len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
			       (off_t)off);
		if (p == MAP_FAILED) {
			e = -errno;
			cli_err("bench", "cannot map the temporary image: %s", strerror(-e));
			unmap_regions(b);
			close(fd);
			return e;
		}
		b->base[i] = p;
		off += b->reg[i].len;
	}
	b->ready_ns = cli_now_ns();
	uint64_t f0 = minor_faults();
	cli_bench_team_run(tm, b);
	b->faults = minor_faults() - f0;
	b->pages_fault = b->faults;
	unmap_regions(b);
	close(fd);
	return 0;
}

struct page_pos {
	uint64_t page;
	uint64_t pos;
};

static int cmp_page_pos(const void *x, const void *y)
{
	const struct page_pos *a = x, *b = y;
	return a->page < b->page ? -1 : a->page > b->page;
}

int cli_bench_run_floor(struct bench *b)
{
	/* The floor touches fresh pages of its own, as many as the touch list
	 * has; each touch gets its page's rank among the touched pages so the
	 * access pattern (sequential or scattered) is the same. */
	uint32_t *order = NULL;
	if (b->a.pct >= 0) {
		size_t n = b->ntouch;
		struct page_pos *pp = malloc((n ? n : 1) * sizeof(*pp));
		order = malloc((n ? n : 1) * sizeof(*order));
		if (!pp || !order) {
			free(pp);
			free(order);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			pp[i] = (struct page_pos){
				b->reg_first_page[b->touch[i].region] + b->touch[i].page, i
			};
		qsort(pp, n, sizeof(*pp), cmp_page_pos);
		for (size_t r = 0; r < n; r++)
			order[pp[r].pos] = (uint32_t)r;
		free(pp);
	}
	b->t0_ns = cli_now_ns();
	int e = b->ntouch ? thaw__bench_floor(b->ntouch, order, b->lat_ns) : 0;
	b->end_ns = cli_now_ns();
	free(order);
	if (e < 0) {
		cli_err("bench", "floor: %s", thaw_strerror(e));
		return e;
	}
	b->ready_ns = b->t0_ns;
	b->first_ns = b->t0_ns + (b->ntouch ? b->lat_ns[0] : 0);
	b->faults = b->pages_fault = b->ntouch;
	return 0;
}
