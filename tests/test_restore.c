/* SPDX-License-Identifier: MIT */
/* Lazy restore from a local snapshot: identity, laziness, placement, poison. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thaw.h"
#include "testlib.h"
#include <xxhash.h>

#define PAGE 4096u

/* Source memory: a page mix of random, zero, repeated and text-like pages. */
static void *make_source(size_t len, uint64_t seed)
{
	unsigned char *p =
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	for (size_t off = 0; off < len; off += PAGE) {
		size_t page = off / PAGE;
		switch ((page * 7 + seed) % 5) {
		case 0:
			break; /* zero */
		case 1:
			memset(p + off, (int)(page & 0xff), PAGE);
			break;
		case 2:
			for (size_t i = 0; i < PAGE; i++)
				p[off + i] =
					"the quick brown fox jumps over the lazy dog "[(i + page) %
										       44];
			break;
		default:
			test_fill_random(p + off, PAGE, seed * 1000003 + page);
		}
	}
	/* A stretch of all-zero chunks, as real images have. */
	if (len >= (1u << 20))
		memset(p + len / 2, 0, 1u << 19);
	return p;
}

static void write_snapshot(const char *path, void *const *mem, const uint64_t *addr,
			   const size_t *len, size_t n, uint32_t chunk_size)
{
	struct thaw_writer_opts wo = { .sz = sizeof(wo), .chunk_size = chunk_size };
	struct thaw_writer *w;
	CHECK_OK(thaw_writer_open(path, &wo, &w));
	for (size_t i = 0; i < n; i++) {
		struct thaw_region_desc d = { .sz = sizeof(d),
					      .addr = addr[i],
					      .len = len[i],
					      .prot = PROT_READ | PROT_WRITE,
					      .name = "test",
					      .mem = mem[i],
					      .fd = -1 };
		CHECK_OK(thaw_writer_add_region(w, &d));
	}
	CHECK_OK(thaw_writer_close(w));
}

static struct thaw_snapshot *open_snap(const char *path)
{
	struct thaw_snapshot *s;
	char err[256] = "";
	struct thaw_open_opts oo = { .sz = sizeof(oo),
				     .err_buf = err,
				     .err_buf_size = sizeof(err) };
	int r = thaw_snapshot_open(path, &oo, &s);
	CHECK_MSG(r == 0, "open %s: %s (%s)", path, thaw_strerror(r), err);
	return s;
}

/* One region of len bytes recorded at a made-up address; returns the source. */
static void *single_region_snapshot(const char *path, size_t len, uint32_t chunk_size,
				    uint64_t seed)
{
	void *src = make_source(len, seed);
	uint64_t addr = 0x100000000ull;
	write_snapshot(path, &src, &addr, &len, 1, chunk_size);
	return src;
}

struct toucher {
	volatile unsigned char *base;
	size_t pages;
	uint64_t seed;
	uint64_t sum;
};

/* xorshift64: the touchers' own order. */
static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *touch_random(void *arg)
{
	struct toucher *t = arg;
	uint64_t x = t->seed | 1;
	for (size_t i = 0; i < t->pages; i++) {
		next_rand(&x);
		/* Every thread also hits page 0, so the same page faults at once. */
		size_t page = i % 64 == 0 ? 0 : x % t->pages;
		t->sum += t->base[page * PAGE + (x >> 40) % PAGE];
	}
	return NULL;
}

/*
 * Four threads fault in random order, all of them on page 0 now and then;
 * with the background pass off every page comes through a fault, with it on
 * faults race the pass for the same chunks.
 */
static int lazy_identical_under_threads(void)
{
	const size_t len = 48u << 20;
	void *src = single_region_snapshot(test_path("s.thaw"), len, 0, 1);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	for (int pass = 0; pass < 2; pass++) {
		struct thaw_restore_opts ro = { .sz = sizeof(ro),
						.flags = pass ? 0 : THAW_RESTORE_NO_BACKGROUND };
		struct thaw_restore *r;
		CHECK_OK(thaw_restore_start(s, &ro, &r));
		unsigned char *dst = thaw_restore_region_addr(r, 0);
		CHECK(dst != NULL);
		struct toucher t[4];
		pthread_t th[4];
		for (int i = 0; i < 4; i++) {
			t[i] = (struct toucher){ .base = dst,
						 .pages = len / PAGE,
						 .seed = 77 + (uint64_t)i };
			CHECK_EQ(pthread_create(&th[i], NULL, touch_random, &t[i]), 0);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		struct thaw_stats st = { .sz = sizeof(st) };
		if (pass) {
			CHECK_EQ(thaw_restore_wait(r, 30000), 0);
			CHECK(XXH3_64bits(dst, len) == XXH3_64bits(src, len));
		}
		CHECK_OK(thaw_restore_stats(r, &st));
		CHECK_EQ(st.chunks_poisoned, 0);
		if (pass)
			CHECK_EQ(st.resident, 1);
		if (!pass)
			CHECK_GT(st.faults, 0);
		thaw_restore_free(r);
		CHECK(XXH3_64bits(dst, len) == XXH3_64bits(src, len));
		munmap(dst, len);
	}
	thaw_snapshot_close(s);
	return 0;
}

/* With the background pass off, nothing is fetched until touched, then about one chunk. */
static int laziness(void)
{
	const size_t len = 16u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 64u << 10, 2);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	usleep(100000);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.bytes_read, 0);
	CHECK_EQ(st.pages_background + st.pages_fault, 0);

	/* Page 3 of chunk 5 (a random-content page: stored, not zero). */
	size_t page = 5 * 16 + 3;
	struct thaw_chunk_info ci = { .sz = sizeof(ci) };
	CHECK_OK(thaw_snapshot_chunk(s, 5, &ci));
	CHECK(ci.kind != THAW_CHUNK_ZERO);
	volatile unsigned char *dst = thaw_restore_region_addr(r, 0);
	CHECK_EQ(dst[page * PAGE + 11], src[page * PAGE + 11]);
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.faults, 1);
	CHECK_EQ(st.pages_fault, 16);
	CHECK_EQ(st.bytes_read, ci.stored_len);
	CHECK_EQ(thaw_restore_wait(r, 50), -ETIMEDOUT);
	/* Free populates everything that is left. */
	thaw_restore_free(r);
	CHECK(XXH3_64bits((void *)dst, len) == XXH3_64bits(src, len));
	munmap((void *)dst, len);
	thaw_snapshot_close(s);
	return 0;
}

/* read(2) into and write(2) out of restored memory: faults taken in kernel mode. */
static int kernel_mode_access(void)
{
	const size_t len = 8u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 0, 3);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	unsigned char *dst = thaw_restore_region_addr(r, 0);

	/* write(2) the whole region out: the kernel reads every missing page. */
	int fd = open(test_path("out"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, dst, len), (ssize_t)len);
	unsigned char *back = malloc(len);
	CHECK_EQ(pread(fd, back, len, 0), (ssize_t)len);
	CHECK(memcmp(back, src, len) == 0);

	/* read(2) into a restored chunk not touched yet: the rest of it stays the source's. */
	thaw_restore_free(r);
	munmap(dst, len);
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	dst = thaw_restore_region_addr(r, 0);
	memset(back, 0xA5, PAGE);
	CHECK_EQ(pwrite(fd, back, PAGE, 0), (ssize_t)PAGE);
	size_t at = 40 * PAGE + 100;
	CHECK_EQ(pread(fd, dst + at, PAGE, 0), (ssize_t)PAGE);
	CHECK_EQ(dst[at], 0xA5);
	CHECK_EQ(dst[at + PAGE - 1], 0xA5);
	CHECK_EQ(dst[at - 1], src[at - 1]);
	CHECK_EQ(dst[at + PAGE], src[at + PAGE]);
	thaw_restore_free(r);
	CHECK(memcmp(dst, src, at) == 0);
	CHECK(memcmp(dst + at + PAGE, src + at + PAGE, len - at - PAGE) == 0);
	close(fd);
	free(back);
	munmap(dst, len);
	thaw_snapshot_close(s);
	return 0;
}

static int two_restores_one_process(void)
{
	const size_t len = 8u << 20;
	unsigned char *a = single_region_snapshot(test_path("a.thaw"), len, 16u << 10, 4);
	unsigned char *b = single_region_snapshot(test_path("b.thaw"), len, 256u << 10, 5);
	struct thaw_snapshot *sa = open_snap(test_path("a.thaw")),
			     *sb = open_snap(test_path("b.thaw"));
	struct thaw_restore *ra, *rb, *ra2;
	CHECK_OK(thaw_restore_start(sa, NULL, &ra));
	CHECK_OK(thaw_restore_start(sb, NULL, &rb));
	CHECK_OK(thaw_restore_start(sa, NULL, &ra2)); /* one snapshot, two restores */
	unsigned char *da = thaw_restore_region_addr(ra, 0), *db = thaw_restore_region_addr(rb, 0);
	unsigned char *da2 = thaw_restore_region_addr(ra2, 0);
	for (size_t off = 0; off < len; off += 3 * PAGE) {
		CHECK_EQ(da[off + 1], a[off + 1]);
		CHECK_EQ(db[len - 1 - off], b[len - 1 - off]);
		CHECK_EQ(da2[off + 2], a[off + 2]);
	}
	thaw_restore_free(ra);
	thaw_restore_free(rb);
	thaw_restore_free(ra2);
	CHECK(memcmp(da, a, len) == 0);
	CHECK(memcmp(db, b, len) == 0);
	CHECK(memcmp(da2, a, len) == 0);
	thaw_snapshot_close(sa);
	thaw_snapshot_close(sb);
	return 0;
}

/* Several regions, odd sizes, every chunk size: byte-identical after a lazy restore. */
static int shapes_and_chunk_sizes(void)
{
	static const size_t pages[] = { 1, 3, 17, 1023, 70 };
	for (uint32_t cs = 4096; cs <= (2u << 20); cs *= 4) {
		void *mem[5];
		uint64_t addr[5];
		size_t len[5];
		uint64_t at = 0x200000000ull;
		for (int i = 0; i < 5; i++) {
			len[i] = pages[i] * PAGE;
			mem[i] = make_source(len[i], cs + (uint64_t)i);
			addr[i] = at;
			at += len[i] + 16 * PAGE;
		}
		write_snapshot(test_path("s.thaw"), mem, addr, len, 5, cs);
		struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
		CHECK_EQ(thaw_snapshot_region_count(s), 5);
		struct thaw_restore *r;
		CHECK_OK(thaw_restore_start(s, NULL, &r));
		/* Touch the last byte of each region first, then let it finish. */
		for (int i = 0; i < 5; i++) {
			unsigned char *d = thaw_restore_region_addr(r, (size_t)i);
			CHECK_EQ(d[len[i] - 1], ((unsigned char *)mem[i])[len[i] - 1]);
		}
		CHECK_EQ(thaw_restore_wait(r, 30000), 0);
		for (int i = 0; i < 5; i++) {
			unsigned char *d = thaw_restore_region_addr(r, (size_t)i);
			CHECK_MSG(memcmp(d, mem[i], len[i]) == 0, "chunk size %u region %d differs",
				  cs, i);
		}
		thaw_restore_free(r);
		thaw_snapshot_close(s);
	}
	return 0;
}

/* An all-zero image: faults are served with zero pages and nothing is read. */
static int zero_image(void)
{
	const size_t len = 32u << 20;
	void *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t addr = 0x300000000ull;
	write_snapshot(test_path("z.thaw"), &src, &addr, &len, 1, 0);
	struct thaw_snapshot *s = open_snap(test_path("z.thaw"));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	/* Nothing to fetch: the restore is resident at once. */
	CHECK_EQ(thaw_restore_wait(r, 5000), 0);
	volatile unsigned char *d = thaw_restore_region_addr(r, 0);
	for (size_t off = 0; off < len; off += 64 * PAGE)
		CHECK_EQ(d[off], 0);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.bytes_read, 0);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

/* Zero chunks touched while the range is still registered come in as zero pages. */
static int zero_chunks_by_fault(void)
{
	const size_t len = 16u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 64u << 10, 6);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	volatile unsigned char *d = thaw_restore_region_addr(r, 0);
	size_t zero_off = len / 2 + 4096; /* inside the all-zero stretch */
	CHECK_EQ(d[zero_off], 0);
	d[zero_off + 8] = 42; /* zero pages are copy-on-write like any other */
	CHECK_EQ(d[zero_off + 8], 42);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.pages_zero, 16);
	CHECK_EQ(st.bytes_read, 0);
	thaw_restore_free(r);
	CHECK_EQ(d[zero_off + 8], 42);
	CHECK(memcmp((void *)d, src, zero_off + 8) == 0);
	thaw_snapshot_close(s);
	return 0;
}

struct zero_toucher {
	volatile unsigned char *zeros; /* the all-zero half */
	size_t pages;
	uint64_t seed;
	int bad;
};

static void *touch_zeros(void *arg)
{
	struct zero_toucher *t = arg;
	uint64_t x = t->seed | 1;
	for (size_t i = 0; i < t->pages; i++)
		t->bad |= t->zeros[(next_rand(&x) % t->pages) * PAGE];
	return NULL;
}

/*
 * Faults still coming in while the restore finishes: the background pass
 * has everything but the all-zero half in, two threads keep faulting on
 * it, and the ranges are unregistered under them. Every such fault must
 * be woken (a lost wake-up left a thread asleep for good, about once in
 * 50 restores of make bench's mixed256); the case's timeout catches it.
 * 100 restores, or as many as 25 s hold (a sanitizer build is ~10x slower).
 */
static int late_faults_woken_at_finish(void)
{
	const size_t half = 16u << 20;
	unsigned char *src =
		mmap(NULL, 2 * half, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(src != MAP_FAILED);
	void *data = make_source(half, 9);
	memcpy(src, data, half);
	void *srcp = src;
	uint64_t addr = 0x100000000ull;
	size_t len = 2 * half;
	write_snapshot(test_path("s.thaw"), &srcp, &addr, &len, 1, 0);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	uint64_t t0 = test_now_ns();
	for (int round = 0; round < 100 && test_now_ns() - t0 < 25000000000ull; round++) {
		struct thaw_restore_opts ro = { .sz = sizeof(ro) };
		struct thaw_restore *r;
		CHECK_OK(thaw_restore_start(s, &ro, &r));
		unsigned char *dst = thaw_restore_region_addr(r, 0);
		struct zero_toucher t[2];
		pthread_t th[2];
		for (int i = 0; i < 2; i++) {
			t[i] = (struct zero_toucher){ .zeros = dst + half,
						      .pages = half / PAGE,
						      .seed = 31 * (uint64_t)round + (uint64_t)i };
			CHECK_EQ(pthread_create(&th[i], NULL, touch_zeros, &t[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		CHECK_EQ(t[0].bad | t[1].bad, 0);
		CHECK_EQ(thaw_restore_wait(r, 30000), 0);
		CHECK(memcmp(dst, src, len) == 0);
		thaw_restore_free(r);
		munmap(dst, len);
	}
	thaw_snapshot_close(s);
	return 0;
}

/*
 * An address range nothing in this process will take: above where PIE
 * binaries and their heap land, below the mmap area, and inside what both
 * ASan and TSan leave to the application. Checked free without replacing.
 */
static uint64_t free_address(size_t len)
{
	uint64_t addr = 0x567000000000ull;
	void *p = mmap((void *)addr, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(p == (void *)addr);
	munmap(p, len);
	return addr;
}

static int fixed_address(void)
{
	size_t len = 4u << 20;
	void *src = make_source(len, 7);
	uint64_t addr = free_address(len);
	write_snapshot(test_path("s.thaw"), &src, &addr, &len, 1, 0);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_FIXED_ADDR };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	CHECK(thaw_restore_region_addr(r, 0) == (void *)addr);
	CHECK(memcmp((void *)addr, src, len) == 0);
	/* The range is taken now: a second fixed restore must refuse, not replace it. */
	struct thaw_restore *r2 = NULL;
	CHECK_EQ(thaw_restore_start(s, &ro, &r2), -EEXIST);
	CHECK(r2 == NULL);
	CHECK(memcmp((void *)addr, src, len) == 0);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

/* Flip a byte in the stored data of a ZSTD chunk; returns the chunk id. */
static uint64_t corrupt_a_chunk(const char *path, struct thaw_snapshot *s, uint64_t from)
{
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	for (uint64_t id = from; id < info.chunk_count; id++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(s, id, &ci));
		if (ci.kind != THAW_CHUNK_ZSTD && ci.kind != THAW_CHUNK_RAW)
			continue;
		int fd = open(path, O_RDWR);
		CHECK(fd >= 0);
		unsigned char b;
		off_t at = (off_t)(ci.stored_off + ci.stored_len / 2);
		CHECK_EQ(pread(fd, &b, 1, at), 1);
		b ^= 0x10;
		CHECK_EQ(pwrite(fd, &b, 1, at), 1);
		close(fd);
		return id;
	}
	test_fail(__FILE__, __LINE__, "no stored chunk to corrupt");
}

static int corrupt_chunk_is_poisoned(void)
{
	const size_t len = 8u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 64u << 10, 8);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	uint64_t bad = corrupt_a_chunk(test_path("s.thaw"), s, 20);
	struct thaw_chunk_info ci = { .sz = sizeof(ci) };
	CHECK_OK(thaw_snapshot_chunk(s, bad, &ci));
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, NULL, &r));
	CHECK_EQ(thaw_restore_wait(r, 30000), -THAW_E_POISONED);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.chunks_poisoned, 1);
	unsigned char *d = thaw_restore_region_addr(r, 0);
	size_t bad_off = (size_t)(ci.addr - 0x100000000ull);
	/* Every other page is the source's. */
	CHECK(memcmp(d, src, bad_off) == 0);
	CHECK(memcmp(d + bad_off + ci.len, src + bad_off + ci.len, len - bad_off - ci.len) == 0);
	/* A child that touches the bad chunk dies of SIGBUS; it never sees zeros. */
	CHECK_EQ(test_child_touch(d + bad_off + PAGE), SIGBUS);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

/*
 * The snapshot file loses its tail while a restore runs: the chunks stored
 * there can no longer be read and are poisoned; the rest restores intact.
 */
static int snapshot_truncated_under_restore(void)
{
	const size_t len = 8u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 64u << 10, 10);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	/* Cut the file inside the last stored chunk of the first half of the region. */
	struct thaw_chunk_info ci = { .sz = sizeof(ci) };
	uint64_t cut_id = info.chunk_count / 2;
	do
		CHECK_OK(thaw_snapshot_chunk(s, --cut_id, &ci));
	while (ci.kind == THAW_CHUNK_ZERO);
	CHECK_EQ(truncate(test_path("s.thaw"), (off_t)(ci.stored_off + 1)), 0);

	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	unsigned char *d = thaw_restore_region_addr(r, 0);
	/* Chunks stored before the cut are fine. */
	size_t cut_off = (size_t)(ci.addr - 0x100000000ull);
	CHECK(memcmp(d, src, cut_off) == 0);
	thaw_restore_free(r);
	CHECK_EQ(test_child_touch(d + cut_off + PAGE), SIGBUS);
	CHECK(memcmp(d, src, cut_off) == 0);
	munmap(d, len);
	/* A whole restore meets the missing tail: it ends poisoned, not "resident". */
	CHECK_OK(thaw_restore_start(s, NULL, &r));
	d = thaw_restore_region_addr(r, 0);
	CHECK_EQ(thaw_restore_wait(r, 30000), -THAW_E_POISONED);
	CHECK(memcmp(d, src, cut_off) == 0);
	thaw_restore_free(r);
	CHECK_EQ(test_child_touch(d + cut_off + PAGE), SIGBUS);
	thaw_snapshot_close(s);
	return 0;
}

static int free_without_touching(void)
{
	const size_t len = 16u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 0, 9);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	unsigned char *d = thaw_restore_region_addr(r, 0);
	thaw_restore_free(r);
	/* Unregistered and populated: plain memory now. */
	CHECK(memcmp(d, src, len) == 0);
	thaw_snapshot_close(s);
	return 0;
}

/* Chunks of s holding data, from the first: n ids into ids. */
static size_t data_chunks(struct thaw_snapshot *s, uint64_t *ids, size_t n)
{
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	size_t k = 0;
	for (uint64_t i = 0; i < info.chunk_count && k < n; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(s, i, &ci));
		if (ci.kind != THAW_CHUNK_ZERO)
			ids[k++] = i;
	}
	return k;
}

/* thaw_snapshot_set_cache: a chunk one restore decoded is installed into the next
 * without reading the store; the cache keeps to its limit. */
static int shared_cache(void)
{
	const size_t len = 16u << 20, chunk = 64u << 10;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 0, 21);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	struct thaw_cache_stats cs = { .sz = sizeof(cs) };
	CHECK_OK(thaw_snapshot_set_cache(s, 0));
	CHECK_OK(thaw_snapshot_cache_stats(s, &cs));
	CHECK(cs.limit == 0 && cs.bytes == 0 && cs.hits == 0 && cs.inserts == 0);
	/* Room for every chunk: thaw_restore_free populates the rest into it. */
	CHECK_OK(thaw_snapshot_set_cache(s, 32u << 20));
	CHECK_EQ(thaw_snapshot_set_cache(s, 1u << 20), -EBUSY);
	uint64_t ids[64];
	CHECK_EQ(data_chunks(s, ids, 64), 64);
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_stats st = { .sz = sizeof(st) };
	for (int round = 0; round < 2; round++) {
		struct thaw_restore *r;
		CHECK_OK(thaw_restore_start(s, &ro, &r));
		unsigned char *d = thaw_restore_region_addr(r, 0);
		for (int i = 0; i < 8; i++)
			CHECK(!memcmp(d + ids[i] * chunk, src + ids[i] * chunk, chunk));
		CHECK_OK(thaw_restore_stats(r, &st));
		CHECK_OK(thaw_snapshot_cache_stats(s, &cs));
		CHECK_EQ(cs.limit, 32u << 20);
		if (round == 0) {
			CHECK_EQ(cs.inserts, 8);
			CHECK_EQ(cs.hits, 0);
			CHECK_GT(st.bytes_read, 0);
		} else {
			CHECK_EQ(cs.hits, 8);
			CHECK_EQ(st.bytes_read, 0); /* every chunk from the cache */
		}
		thaw_restore_free(r);
		munmap(d, len);
	}
	thaw_snapshot_close(s);
	/* Past the limit: evictions, never more than the limit held. */
	s = open_snap(test_path("s.thaw"));
	CHECK_OK(thaw_snapshot_set_cache(s, 1u << 20));
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	unsigned char *d = thaw_restore_region_addr(r, 0);
	for (int i = 0; i < 64; i++)
		CHECK(!memcmp(d + ids[i] * chunk, src + ids[i] * chunk, chunk));
	CHECK_OK(thaw_snapshot_cache_stats(s, &cs));
	CHECK_GT(cs.evictions, 0);
	CHECK_LE(cs.bytes, cs.limit);
	thaw_restore_free(r);
	munmap(d, len);
	thaw_snapshot_close(s);
	return 0;
}

/* thaw_restore_attach in a process of its own, not behind thaw serve: a uffd this
 * process registered over memory that holds the snapshot from an offset on. */
static int attach_in_process(void)
{
	const size_t len = 8u << 20, off = 1u << 20, n = 4u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 0, 22);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		test_skip("userfaultfd: %s", strerror(errno));
	struct uffdio_api api = { .api = UFFD_API };
	CHECK_EQ(ioctl(uffd, UFFDIO_API, &api), 0);
	unsigned char *m =
		mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	struct uffdio_register reg = { .range = { (uintptr_t)m, n },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	CHECK_EQ(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	struct thaw_mapping map = { .addr = (uintptr_t)m, .len = n, .offset = off };
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_attach(s, uffd, &map, 1, NULL, &r));
	CHECK(thaw_restore_region_addr(r, 0) == NULL);
	/* A page in the middle first, then the rest once the background pass is done. */
	CHECK(!memcmp(m + (2u << 20), src + off + (2u << 20), PAGE));
	CHECK_OK(thaw_restore_wait(r, 30000));
	CHECK(!memcmp(m, src + off, n));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.chunks_poisoned, 0);
	thaw_restore_free(r);
	CHECK(!memcmp(m, src + off, n));
	munmap(m, n);
	thaw_snapshot_close(s);
	return 0;
}

static long thread_count(void)
{
	long n = -1;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Threads:", 8))
			n = strtol(line + 8, NULL, 10);
	if (f)
		fclose(f);
	return n;
}

/* background_threads sets how many decode threads a restore runs. */
static int background_threads(void)
{
	const size_t len = 64u << 20;
	unsigned char *src = single_region_snapshot(test_path("s.thaw"), len, 0, 23);
	struct thaw_snapshot *s = open_snap(test_path("s.thaw"));
	long extra[2];
	for (int i = 0; i < 2; i++) {
		struct thaw_restore_opts ro = { .sz = sizeof(ro), .background_threads = 1 + 2 * i };
		long before = thread_count();
		struct thaw_restore *r;
		CHECK_OK(thaw_restore_start(s, &ro, &r));
		/* The most threads seen while the background pass runs. */
		extra[i] = 0;
		while (thaw_restore_wait(r, 0) == -ETIMEDOUT) {
			long n = thread_count() - before;
			extra[i] = n > extra[i] ? n : extra[i];
		}
		unsigned char *d = thaw_restore_region_addr(r, 0);
		CHECK_OK(thaw_restore_wait(r, 30000));
		CHECK(!memcmp(d, src, len));
		thaw_restore_free(r);
		munmap(d, len);
	}
	CHECK_MSG(extra[1] - extra[0] == 2, "1 thread: %ld more, 3 threads: %ld more", extra[0],
		  extra[1]);
	thaw_snapshot_close(s);
	return 0;
}

static const struct test_case cases[] = {
	{ "lazy_identical_under_threads", lazy_identical_under_threads, 120 },
	{ "laziness", laziness, 60 },
	{ "kernel_mode_access", kernel_mode_access, 60 },
	{ "two_restores_one_process", two_restores_one_process, 60 },
	{ "shapes_and_chunk_sizes", shapes_and_chunk_sizes, 120 },
	{ "zero_image", zero_image, 30 },
	{ "zero_chunks_by_fault", zero_chunks_by_fault, 30 },
	{ "fixed_address", fixed_address, 30 },
	{ "corrupt_chunk_is_poisoned", corrupt_chunk_is_poisoned, 60 },
	{ "snapshot_truncated_under_restore", snapshot_truncated_under_restore, 60 },
	{ "free_without_touching", free_without_touching, 60 },
	{ "shared_cache", shared_cache, 30 },
	{ "attach_in_process", attach_in_process, 30 },
	{ "background_threads", background_threads, 30 },
	{ "late_faults_woken_at_finish", late_faults_woken_at_finish, 60 },
};

TEST_MAIN(cases)
