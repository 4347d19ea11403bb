/* SPDX-License-Identifier: MIT */
/* Snapshot format: writer → reader round trips, and a parser that refuses bad input by name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "format/format.h"
#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE 4096u

static uint8_t *alloc_fill(size_t len, int kind, uint64_t seed)
{
	uint8_t *p = aligned_alloc(PAGE, len ? len : PAGE);
	CHECK(p);
	if (kind == 0)
		memset(p, 0, len);
	else if (kind == 1)
		test_fill_random(p, len, seed);
	else
		fixture_fill_mixed(p, len, seed);
	return p;
}

static struct thaw_region_desc region(uint64_t addr, const void *mem, uint64_t len,
				      const char *name)
{
	return (struct thaw_region_desc){ .sz = sizeof(struct thaw_region_desc),
					  .addr = addr,
					  .len = len,
					  .prot = PROT_READ | PROT_WRITE,
					  .name = name,
					  .mem = mem,
					  .fd = -1 };
}

static struct thaw_snapshot *open_ok(const char *path)
{
	char err[512] = "";
	struct thaw_open_opts o = { .sz = sizeof(o), .err_buf = err, .err_buf_size = sizeof(err) };
	struct thaw_snapshot *s = NULL;
	int r = thaw_snapshot_open(path, &o, &s);
	CHECK_MSG(r == 0, "open %s: %s (%s)", path, thaw_strerror(r), err);
	return s;
}

/* Every region's bytes, read back chunk by chunk, equal the source. */
static void verify(struct thaw_snapshot *s, const struct thaw_region_desc *rs, size_t n)
{
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	CHECK_EQ(thaw_snapshot_region_count(s), n);
	uint8_t *buf = malloc(info.chunk_size);
	CHECK(buf);
	uint64_t chunks = 0, raw = 0;
	for (size_t i = 0; i < n; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		CHECK_OK(thaw_snapshot_region(s, i, &ri));
		CHECK_EQ(ri.addr, rs[i].addr);
		CHECK_EQ(ri.len, rs[i].len);
		CHECK_EQ(ri.prot, rs[i].prot);
		CHECK_MSG(!strcmp(ri.name, rs[i].name ? rs[i].name : ""), "name %s", ri.name);
		CHECK_EQ(ri.first_chunk, chunks);
		CHECK_EQ(ri.chunk_count, (ri.len + info.chunk_size - 1) / info.chunk_size);
		for (uint64_t c = 0; c < ri.chunk_count; c++) {
			struct thaw_chunk_info ci = { .sz = sizeof(ci) };
			CHECK_OK(thaw_snapshot_chunk(s, ri.first_chunk + c, &ci));
			uint64_t off = c * info.chunk_size;
			uint64_t want =
				ri.len - off < info.chunk_size ? ri.len - off : info.chunk_size;
			CHECK_EQ(ci.region, i);
			CHECK_EQ(ci.addr, ri.addr + off);
			CHECK_EQ(ci.len, want);
			memset(buf, 0xa5, info.chunk_size);
			ssize_t got = thaw_snapshot_read_chunk(s, ri.first_chunk + c, buf,
							       info.chunk_size);
			CHECK_OK(got);
			CHECK_EQ(got, want);
			CHECK_MSG(!memcmp(buf, (const uint8_t *)rs[i].mem + off, want),
				  "region %zu chunk %" PRIu64 " (kind %d) differs", i, c, ci.kind);
		}
		chunks += ri.chunk_count;
		raw += ri.len;
	}
	CHECK_EQ(info.chunk_count, chunks);
	CHECK_EQ(info.raw_bytes, raw);
	uint64_t by_kind = 0;
	for (int k = 0; k < THAW_CHUNK_KINDS; k++)
		by_kind += info.chunks_by_kind[k];
	CHECK_EQ(by_kind, chunks);
	CHECK_EQ(info.stored_bytes + info.tables_len, info.file_size);
	CHECK_EQ(strlen(info.digest), 32);
	free(buf);
}

static uint64_t file_size(const char *path)
{
	struct stat sb;
	CHECK(stat(path, &sb) == 0);
	return (uint64_t)sb.st_size;
}

static int case_shapes(void)
{
	/* Three regions with gaps: a single page, an odd page count, and a
	 * few MiB; under every chunk size the format allows. */
	size_t lens[3] = { PAGE, 37 * PAGE, (3u << 20) + 5 * PAGE };
	uint8_t *mem[3];
	for (int i = 0; i < 3; i++)
		mem[i] = alloc_fill(lens[i], 2, (uint64_t)i + 1);
	struct thaw_region_desc rs[3] = {
		region(0x10000000, mem[0], lens[0], "one-page"),
		region(0x10001000 + 0x7000, mem[1], lens[1], "[heap]"),
		region(0x7f0000000000, mem[2], lens[2], ""),
	};
	for (uint32_t cs = THAW__CHUNK_MIN; cs <= THAW__CHUNK_MAX; cs *= 2) {
		const char *path = test_path("shapes.thaw");
		CHECK_OK(fixture_write_snapshot(path, rs, 3, cs));
		struct thaw_snapshot *s = open_ok(path);
		struct thaw_snapshot_info info = { .sz = sizeof(info) };
		CHECK_OK(thaw_snapshot_get_info(s, &info));
		CHECK_EQ(info.version, 1);
		CHECK_EQ(info.page_size, PAGE);
		CHECK_EQ(info.chunk_size, cs);
		CHECK_EQ(info.region_count, 3);
		CHECK_EQ(info.file_size, file_size(path));
		CHECK_GT(info.chunks_by_kind[THAW_CHUNK_ZSTD], 0);
		verify(s, rs, 3);
		thaw_snapshot_close(s);
	}
	for (int i = 0; i < 3; i++)
		free(mem[i]);
	return 0;
}

static int case_all_zero(void)
{
	size_t len = 5u << 20;
	uint8_t *m = alloc_fill(len, 0, 0);
	struct thaw_region_desc r = region(0x400000, m, len, "zeros");
	const char *path = test_path("zero.thaw");
	CHECK_OK(fixture_write_snapshot(path, &r, 1, 0));
	struct thaw_snapshot *s = open_ok(path);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	CHECK_EQ(info.chunks_by_kind[THAW_CHUNK_ZERO], info.chunk_count);
	CHECK_EQ(info.stored_bytes, 0);
	CHECK_EQ(info.file_size, info.tables_len);
	verify(s, &r, 1);
	thaw_snapshot_close(s);
	free(m);
	return 0;
}

static int case_all_random(void)
{
	size_t len = (4u << 20) + 3 * PAGE;
	uint8_t *m = alloc_fill(len, 1, 99);
	struct thaw_region_desc r = region(0x400000, m, len, "random");
	const char *path = test_path("random.thaw");
	CHECK_OK(fixture_write_snapshot(path, &r, 1, 0));
	struct thaw_snapshot *s = open_ok(path);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	/* Incompressible: stored RAW, never larger than the raw bytes. */
	CHECK_EQ(info.chunks_by_kind[THAW_CHUNK_RAW], info.chunk_count);
	CHECK_EQ(info.stored_bytes, len);
	verify(s, &r, 1);
	thaw_snapshot_close(s);
	free(m);
	return 0;
}

static int case_duplicates(void)
{
	/* 40 chunks: every even chunk the same random block, odd ones unique;
	 * a second region repeats the block too, and ends in a short chunk
	 * whose bytes are a prefix of it (same bytes, other length: not a DUP). */
	const uint32_t cs = 64u << 10;
	size_t len = 40 * (size_t)cs;
	uint8_t *m = alloc_fill(len, 1, 5);
	for (int i = 2; i < 40; i += 2)
		memcpy(m + (size_t)i * cs, m, cs);
	size_t len2 = 2 * (size_t)cs + 4 * PAGE;
	uint8_t *m2 = alloc_fill(len2, 1, 6);
	memcpy(m2 + cs, m, cs);
	memcpy(m2 + 2 * (size_t)cs, m, 4 * PAGE);
	struct thaw_region_desc rs[2] = { region(0x1000000, m, len, "a"),
					  region(0x9000000, m2, len2, "b") };
	const char *path = test_path("dup.thaw");
	CHECK_OK(fixture_write_snapshot(path, rs, 2, cs));
	struct thaw_snapshot *s = open_ok(path);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	CHECK_EQ(info.chunk_count, 43);
	CHECK_EQ(info.chunks_by_kind[THAW_CHUNK_DUP], 19 + 1);
	CHECK_EQ(info.chunks_by_kind[THAW_CHUNK_RAW], 43 - 20);
	/* Stored once: the block and 20 unique chunks in a, 1 in b, plus the short one. */
	CHECK_EQ(info.stored_bytes, 22ull * cs + 4 * PAGE);
	struct thaw_chunk_info c0 = { .sz = sizeof(c0) }, c2 = { .sz = sizeof(c2) };
	CHECK_OK(thaw_snapshot_chunk(s, 0, &c0));
	CHECK_OK(thaw_snapshot_chunk(s, 2, &c2));
	CHECK_EQ(c2.kind, THAW_CHUNK_DUP);
	CHECK_EQ(c2.stored_off, c0.stored_off);
	CHECK_EQ(c2.hash, c0.hash);
	verify(s, rs, 2);
	thaw_snapshot_close(s);
	free(m);
	free(m2);
	return 0;
}

static int case_mixed_ratio(void)
{
	size_t len = 32u << 20;
	uint8_t *m = alloc_fill(len, 2, 7);
	struct thaw_region_desc r = region(0x7f0000000000, m, len, "");
	const char *path = test_path("mixed.thaw");
	CHECK_OK(fixture_write_snapshot(path, &r, 1, 0));
	struct thaw_snapshot *s = open_ok(path);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	double ratio = (double)info.stored_bytes / (double)info.raw_bytes;
	printf("# mixed fixture at 64 KiB chunks: stored %.1f%% of raw (zero %" PRIu64
	       ", zstd %" PRIu64 ", raw %" PRIu64 ", dup %" PRIu64 ")\n",
	       ratio * 100, info.chunks_by_kind[0], info.chunks_by_kind[2], info.chunks_by_kind[1],
	       info.chunks_by_kind[3]);
	CHECK_MSG(ratio >= 0.25 && ratio <= 0.40, "stored/raw = %.3f", ratio);
	CHECK_GT(info.chunks_by_kind[THAW_CHUNK_ZERO], 0);
	verify(s, &r, 1);
	thaw_snapshot_close(s);
	free(m);
	return 0;
}

/* The same input gives the same file, whatever the thread count. */
static int case_deterministic(void)
{
	size_t len = 9u << 20;
	uint8_t *m = alloc_fill(len, 2, 11);
	char *bytes[3] = { 0 };
	size_t sizes[3];
	int threads[3] = { 1, 2, 5 };
	for (int t = 0; t < 3; t++) {
		const char *path = test_path("det.thaw");
		struct thaw_writer_opts o = { .sz = sizeof(o),
					      .threads = threads[t],
					      .chunk_size = 16384 };
		struct thaw_writer *w;
		CHECK_OK(thaw_writer_open(path, &o, &w));
		struct thaw_region_desc r = region(0x200000, m, len, "x");
		CHECK_OK(thaw_writer_add_region(w, &r));
		CHECK_OK(thaw_writer_close(w));
		int fd = open(path, O_RDONLY);
		CHECK(fd >= 0);
		sizes[t] = file_size(path);
		bytes[t] = malloc(sizes[t]);
		CHECK_EQ(pread(fd, bytes[t], sizes[t], 0), (ssize_t)sizes[t]);
		close(fd);
	}
	for (int t = 1; t < 3; t++) {
		CHECK_EQ(sizes[t], sizes[0]);
		CHECK_MSG(!memcmp(bytes[t], bytes[0], sizes[0]), "%d threads wrote different bytes",
			  threads[t]);
	}
	for (int t = 0; t < 3; t++)
		free(bytes[t]);
	free(m);
	return 0;
}

/* Sources other than memory: a file (pread) and this very process (process_vm_readv). */
static int case_fd_and_pid_sources(void)
{
	size_t len = (2u << 20) + 3 * PAGE;
	uint8_t *m = alloc_fill(len, 2, 21);
	const char *img = test_path("image.raw");
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, m, PAGE, 0), PAGE); /* a header page before the region */
	CHECK_EQ(pwrite(fd, m, len, PAGE), (ssize_t)len);
	const char *path = test_path("src.thaw");
	struct thaw_writer *w;
	CHECK_OK(thaw_writer_open(path, NULL, &w));
	struct thaw_region_desc a = region(0x100000000, NULL, len, "from-fd");
	a.fd = fd;
	a.fd_offset = PAGE;
	CHECK_OK(thaw_writer_add_region(w, &a));
	struct thaw_region_desc b = region((uint64_t)(uintptr_t)m, NULL, len, "from-pid");
	b.pid = getpid();
	CHECK_OK(thaw_writer_add_region(w, &b));
	CHECK_OK(thaw_writer_close(w));
	close(fd);
	struct thaw_snapshot *s = open_ok(path);
	a.mem = m;
	b.mem = m;
	struct thaw_region_desc rs[2] = { a, b };
	if (b.addr < a.addr) {
		rs[0] = b;
		rs[1] = a;
	}
	verify(s, rs, 2);
	thaw_snapshot_close(s);
	free(m);
	return 0;
}

/*
 * An 8 GiB sparse memory file with data at a few places (past 4 GiB too),
 * read at an unaligned file offset: holes become ZERO chunks without
 * being read, the data comes back exact, and memory stays bounded.
 */
static int case_large_sparse_file(void)
{
	const uint64_t len = 8ull << 30, skew = 100;
	const uint64_t at[] = { 0, 3ull << 30, (5ull << 30) + 12345 * PAGE, len - (1u << 20) };
	const size_t dlen = 1u << 20;
	uint8_t *d = alloc_fill(dlen, 1, 8); /* random: no zero chunk inside the data */
	const char *img = test_path("sparse.raw");
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)(len + skew)) == 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pwrite(fd, d, dlen, (off_t)(at[i] + skew)), (ssize_t)dlen);
	const char *path = test_path("sparse.thaw");
	char err[512] = "";
	struct thaw_writer_opts o = { .sz = sizeof(o),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };
	struct thaw_writer *w;
	CHECK_OK(thaw_writer_open(path, &o, &w));
	struct thaw_region_desc r = region(0x100000000, NULL, len, "guest-mem-0");
	r.fd = fd;
	r.fd_offset = skew;
	CHECK_OK(thaw_writer_add_region(w, &r));
	uint64_t t0 = test_now_ns();
	int rc = thaw_writer_close(w);
	CHECK_MSG(rc == 0, "%s", err);
	printf("# 8 GiB sparse image written in %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	CHECK_LT(ru.ru_maxrss, 200 * 1024); /* KiB */

	struct thaw_snapshot *s = open_ok(path);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	CHECK_EQ(info.raw_bytes, len);
	CHECK_EQ(info.chunk_count, len / (64u << 10));
	/* 1 MiB of data is 16 chunks, 17 for the one not chunk aligned. */
	CHECK_EQ(info.chunk_count - info.chunks_by_kind[THAW_CHUNK_ZERO], 16 + 16 + 17 + 16);
	uint8_t *buf = malloc(64u << 10), *got = malloc(dlen + (128u << 10));
	for (int i = 0; i < 4; i++) {
		uint64_t c0 = at[i] / (64u << 10), c1 = (at[i] + dlen - 1) / (64u << 10);
		for (uint64_t c = c0; c <= c1; c++)
			CHECK_EQ(thaw_snapshot_read_chunk(s, c, got + (c - c0) * (64u << 10),
							  64u << 10),
				 64u << 10);
		CHECK_MSG(!memcmp(got + at[i] % (64u << 10), d, dlen),
			  "data at %" PRIu64 " differs", at[i]);
		/* The chunks around it are zero. */
		if (c0 > 0) {
			memset(buf, 0xa5, 64u << 10);
			CHECK_EQ(thaw_snapshot_read_chunk(s, c0 - 1, buf, 64u << 10), 64u << 10);
			for (size_t b = 0; b < (64u << 10); b++)
				CHECK_MSG(!buf[b], "byte %zu of chunk %" PRIu64 " is %u", b, c0 - 1,
					  buf[b]);
		}
	}
	thaw_snapshot_close(s);

	/* A region running past the end of a sparse file fails; the hole is not taken for zeros beyond EOF. */
	CHECK(ftruncate(fd, 1u << 20) == 0);
	CHECK_OK(thaw_writer_open(test_path("past.thaw"), &o, &w));
	r.len = 2u << 20;
	r.fd_offset = 0;
	CHECK_OK(thaw_writer_add_region(w, &r));
	CHECK_LT(thaw_writer_close(w), 0);
	CHECK_MSG(strstr(err, "end of file"), "%s", err);
	close(fd);
	free(buf);
	free(got);
	free(d);
	return 0;
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
	uint64_t *st = ctx;
	CHECK_GE(done, st[0]);
	CHECK_LE(done, total);
	st[0] = done;
	st[1] = total;
	st[2]++;
}

static int case_progress(void)
{
	size_t len = 40u << 20;
	uint8_t *m = alloc_fill(len, 2, 3);
	uint64_t st[3] = { 0 };
	struct thaw_writer_opts o = { .sz = sizeof(o),
				      .progress = progress_cb,
				      .progress_ctx = st };
	struct thaw_writer *w;
	CHECK_OK(thaw_writer_open(test_path("p.thaw"), &o, &w));
	struct thaw_region_desc r = region(0x200000, m, len, "x");
	CHECK_OK(thaw_writer_add_region(w, &r));
	CHECK_OK(thaw_writer_close(w));
	CHECK_EQ(st[0], len);
	CHECK_EQ(st[1], len);
	CHECK_GE(st[2], 4); /* every few MiB, not just at the end */
	free(m);
	return 0;
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int case_writer_errors(void)
{
	char err[512] = "";
	struct thaw_writer_opts o = { .sz = sizeof(o),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };
	struct thaw_writer *w;
	o.chunk_size = 12345;
	CHECK_EQ(thaw_writer_open(test_path("e.thaw"), &o, &w), -EINVAL);
	CHECK_MSG(strstr(err, "chunk_size"), "%s", err);
	o.chunk_size = 4u << 20;
	CHECK_EQ(thaw_writer_open(test_path("e.thaw"), &o, &w), -EINVAL);
	o.chunk_size = 0;
	CHECK_LT(thaw_writer_open("/nonexistent-dir/x.thaw", &o, &w), 0);

	uint8_t *m = alloc_fill(16 * PAGE, 1, 1);
	CHECK_OK(thaw_writer_open(test_path("e.thaw"), &o, &w));
	struct thaw_region_desc r = region(0x100000, m, 8 * PAGE, "a");
	CHECK_OK(thaw_writer_add_region(w, &r));
	struct thaw_region_desc bad = region(0x100000 + 7 * PAGE, m, 2 * PAGE, "b");
	CHECK_EQ(thaw_writer_add_region(w, &bad), -EINVAL);
	CHECK_MSG(strstr(err, "overlaps"), "%s", err);
	bad = region(0xff000, m, 2 * PAGE, "c"); /* overlaps from below */
	CHECK_EQ(thaw_writer_add_region(w, &bad), -EINVAL);
	bad = region(0x200001, m, PAGE, "d");
	CHECK_EQ(thaw_writer_add_region(w, &bad), -EINVAL);
	bad = region(0x200000, m, 100, "e");
	CHECK_EQ(thaw_writer_add_region(w, &bad), -EINVAL);
	bad = region(0x200000, NULL, PAGE, "f"); /* no source */
	CHECK_EQ(thaw_writer_add_region(w, &bad), -EINVAL);
	/* A region added below the first is fine and sorted into place. */
	struct thaw_region_desc low = region(0x10000, m + 8 * PAGE, 8 * PAGE, "low");
	CHECK_OK(thaw_writer_add_region(w, &low));
	CHECK_OK(thaw_writer_close(w));
	struct thaw_snapshot *s = open_ok(test_path("e.thaw"));
	struct thaw_region_desc rs[2] = { low, r };
	verify(s, rs, 2);
	thaw_snapshot_close(s);

	/* A source that fails mid-way: close fails and leaves no file behind. */
	int before = count_files(test_tmpdir());
	const char *img = test_path("short.raw");
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_EQ(pwrite(fd, m, 4 * PAGE, 0), 4 * PAGE);
	CHECK_OK(thaw_writer_open(test_path("fail.thaw"), &o, &w));
	struct thaw_region_desc f = region(0x100000, NULL, 64 * PAGE, "short");
	f.fd = fd;
	CHECK_OK(thaw_writer_add_region(w, &f));
	CHECK_LT(thaw_writer_close(w), 0);
	CHECK_MSG(strstr(err, "end of file"), "%s", err);
	CHECK(access(test_path("fail.thaw"), F_OK) != 0);
	CHECK_EQ(count_files(test_tmpdir()), before + 1); /* only short.raw is new */
	/* Abort leaves nothing either. */
	CHECK_OK(thaw_writer_open(test_path("abort.thaw"), &o, &w));
	thaw_writer_abort(w);
	CHECK_EQ(count_files(test_tmpdir()), before + 1);
	close(fd);
	free(m);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Corruption */

struct blob {
	uint8_t *p;
	size_t len;
};

static struct blob load(const char *path)
{
	struct blob b = { .len = file_size(path) };
	b.p = malloc(b.len);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && b.p);
	CHECK_EQ(pread(fd, b.p, b.len, 0), (ssize_t)b.len);
	close(fd);
	return b;
}

static void save(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, p, len, 0), (ssize_t)len);
	close(fd);
}

static struct thaw__fmt_header *hdr(struct blob *b)
{
	return (struct thaw__fmt_header *)b->p;
}

/* Make the digest right again, so the deeper check is what must catch a change. */
static void redigest(struct blob *b)
{
	struct thaw__fmt_header h;
	memcpy(&h, b->p, sizeof(h));
	uint64_t tl = h.tables_len <= b->len ? h.tables_len : b->len;
	thaw__layout_digest(&h, b->p, tl, h.digest);
	memcpy(b->p, &h, sizeof(h));
}

/* Opening path must fail with code and a message containing what. */
static void expect_refused(const char *path, int code, const char *what)
{
	char err[512] = "";
	struct thaw_open_opts o = { .sz = sizeof(o), .err_buf = err, .err_buf_size = sizeof(err) };
	struct thaw_snapshot *s = NULL;
	int r = thaw_snapshot_open(path, &o, &s);
	CHECK_MSG(r == code, "expected %s refused with %d, got %d (%s); message: %s", what, code, r,
		  thaw_strerror(r), err);
	CHECK(s == NULL);
	CHECK_MSG(strstr(err, what), "message does not name %s: %s", what, err);
}

/* A snapshot with every chunk kind: zero, zstd, raw, dup; three regions. */
static struct blob corpus(const char *path, uint8_t **mem)
{
	const uint32_t cs = 64u << 10;
	size_t len = 8 * (size_t)cs;
	uint8_t *m = alloc_fill(len + 2 * cs + 3 * PAGE, 2, 77);
	memset(m, 0, cs);		     /* chunk 0: ZERO */
	test_fill_random(m + 2 * cs, cs, 1); /* chunk 2: RAW */
	memcpy(m + 3 * cs, m + 2 * cs, cs);  /* chunk 3: DUP of 2 */
	memset(m + 4 * cs, 'x', cs);	     /* chunk 4: ZSTD */
	struct thaw_region_desc rs[3] = {
		region(0x10000000, m, len, "first"),
		region(0x20000000, m + len, 2 * cs, "[stack]"),
		region(0x30000000, m + len + 2 * cs, 3 * PAGE, "tail"),
	};
	CHECK_OK(fixture_write_snapshot(path, rs, 3, cs));
	*mem = m;
	return load(path);
}

static int case_truncated(void)
{
	uint8_t *m;
	const char *good = test_path("good.thaw");
	struct blob b = corpus(good, &m);
	struct thaw__fmt_header h = *hdr(&b);
	uint64_t cuts[] = { 0,
			    1,
			    8,
			    THAW__FMT_HEADER_SIZE - 1,
			    THAW__FMT_HEADER_SIZE,
			    THAW__FMT_HEADER_SIZE + 1,
			    h.names_off,
			    h.names_off + 3,
			    h.chunk_off,
			    h.chunk_off + 40,
			    h.zmask_off,
			    h.zmask_off + 8,
			    h.tables_len - 1,
			    h.tables_len,
			    h.tables_len + 1,
			    h.tables_len + 1000,
			    h.file_size / 2,
			    h.file_size - 1 };
	const char *bad = test_path("cut.thaw");
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		save(bad, b.p, cuts[i]);
		expect_refused(bad, -THAW_E_BAD_SNAPSHOT, "header");
	}
	/* Same cuts with header.file_size made to agree: the tables checks must hold. */
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		if (cuts[i] < THAW__FMT_HEADER_SIZE)
			continue;
		struct blob c = { malloc(cuts[i]), cuts[i] };
		memcpy(c.p, b.p, cuts[i]);
		hdr(&c)->file_size = cuts[i];
		redigest(&c);
		save(bad, c.p, c.len);
		expect_refused(bad, -THAW_E_BAD_SNAPSHOT, "header.");
		free(c.p);
	}
	save(bad, b.p, b.len);
	thaw_snapshot_close(open_ok(bad));
	free(b.p);
	free(m);
	return 0;
}

struct field_case {
	const char *name;
	size_t off, size;
	uint64_t value;
	int add; /* value is added to the current one */
	int code;
};

#define F(field, v, add_)                                                                          \
	{                                                                                          \
#field, offsetof(struct thaw__fmt_header, field),                                  \
			sizeof(((struct thaw__fmt_header *)0)->field), (uint64_t)(v), add_,        \
			-THAW_E_BAD_SNAPSHOT                                                       \
	}

static int case_header_fields(void)
{
	uint8_t *m;
	const char *good = test_path("good.thaw");
	struct blob b = corpus(good, &m);
	const struct field_case cases[] = {
		F(version, 2, 0),
		F(header_size, 168, 0),
		F(header_size, 80, 0),
		F(page_size, 12345, 0),
		F(page_size, 2048, 0),
		F(page_size, 0, 0),
		F(chunk_size, 12345, 0),
		F(chunk_size, 2048, 0),
		F(chunk_size, 4u << 20, 0),
		F(codec, 0, 0),
		F(codec, 2, 0),
		F(flags, 1u << 31, 0),
		F(flags, 4, 0),
		F(region_count, 1ull << 60, 0),
		F(region_count, 1, 1),
		F(region_off, 1, 1),
		F(region_off, 0, 0),
		F(region_off, -8ll, 1),
		F(names_off, 1, 1),
		F(names_off, 1ull << 40, 0),
		F(names_len, 1ull << 62, 0),
		F(chunk_count, 1ull << 60, 0),
		F(chunk_count, 1, 1),
		F(chunk_count, -1ll, 1),
		F(chunk_off, 4, 1),
		F(chunk_off, 8, 0),
		F(zmask_off, 8, 1),
		F(zmask_off, -8ll, 1),
		F(tables_len, 8, 1),
		F(tables_len, -8ll, 1),
		F(tables_len, 1ull << 62, 0),
		F(data_off, 8, 1),
		F(data_len, 1, 1),
		F(data_len, -1ll, 1),
		F(file_size, 1, 1),
		F(file_size, 0, 0),
		F(raw_bytes, 4096, 1),
		F(raw_bytes, -4096ll, 1),
		F(prefetch_off, 1, 0),
		F(prefetch_len, 1ull << 63, 0),
	};
	const char *bad = test_path("bad.thaw");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct field_case *fc = &cases[i];
		struct blob c = { malloc(b.len), b.len };
		memcpy(c.p, b.p, b.len);
		uint64_t v = 0;
		memcpy(&v, c.p + fc->off, fc->size);
		v = fc->add ? v + fc->value : fc->value;
		memcpy(c.p + fc->off, &v, fc->size);
		redigest(&c);
		save(bad, c.p, c.len);
		char what[64];
		snprintf(what, sizeof(what), "header.%.*s", (int)strcspn(fc->name, "["), fc->name);
		expect_refused(bad, strcmp(fc->name, "version") ? fc->code : -THAW_E_VERSION, what);
		free(c.p);
	}
	/* The magic, and the digest itself (not recomputed, of course). */
	struct blob c = { malloc(b.len), b.len };
	memcpy(c.p, b.p, b.len);
	c.p[0] ^= 0x20;
	save(bad, c.p, c.len);
	expect_refused(bad, -THAW_E_BAD_SNAPSHOT, "header.magic");
	memcpy(c.p, b.p, b.len);
	hdr(&c)->digest[5] ^= 1;
	save(bad, c.p, c.len);
	expect_refused(bad, -THAW_E_BAD_SNAPSHOT, "header.digest");
	/* Any change to the tables without a new digest is caught by the digest. */
	memcpy(c.p, b.p, b.len);
	c.p[hdr(&c)->chunk_off + 3] ^= 0x10;
	save(bad, c.p, c.len);
	expect_refused(bad, -THAW_E_BAD_SNAPSHOT, "header.digest");
	free(c.p);
	free(b.p);
	free(m);
	return 0;
}

static struct thaw__fmt_region *reg(struct blob *b, int i)
{
	return (struct thaw__fmt_region *)(b->p + hdr(b)->region_off) + i;
}

static struct thaw__fmt_chunk *chk(struct blob *b, uint64_t i)
{
	return (struct thaw__fmt_chunk *)(b->p + hdr(b)->chunk_off) + i;
}

static uint64_t *zm(struct blob *b, uint64_t i)
{
	return (uint64_t *)(b->p + hdr(b)->zmask_off) + i; /* one word per chunk at 64 KiB */
}

/* A table corruption, with the digest recomputed, must name region/chunk. */
typedef void (*mutate_fn)(struct blob *b);

static void m_addr(struct blob *b)
{
	reg(b, 0)->addr += 1;
}
static void m_len0(struct blob *b)
{
	reg(b, 1)->len = 0;
}
static void m_lenodd(struct blob *b)
{
	reg(b, 1)->len += 100;
}
static void m_overlap(struct blob *b)
{
	reg(b, 1)->addr = reg(b, 0)->addr + 4096;
}
static void m_order(struct blob *b)
{
	reg(b, 2)->addr = 0x1000;
}
static void m_wrap(struct blob *b)
{
	reg(b, 2)->addr = 0xfffffffffffff000ull;
}
static void m_prot(struct blob *b)
{
	reg(b, 0)->prot = 8;
}
static void m_nameoff(struct blob *b)
{
	reg(b, 2)->name_off = (uint32_t)hdr(b)->names_len;
}
static void m_namelen(struct blob *b)
{
	reg(b, 0)->name_len = THAW__NAME_MAX + 1;
}
static void m_namenul(struct blob *b)
{
	b->p[hdr(b)->names_off + 1] = 0;
}
static void m_first(struct blob *b)
{
	reg(b, 1)->first_chunk += 1;
}
static void m_morechunks(struct blob *b)
{
	reg(b, 2)->len += 64u << 10;
}

static void m_kind(struct blob *b)
{
	chk(b, 4)->kind = 9;
}
static void m_zero_off(struct blob *b)
{
	chk(b, 0)->offset = hdr(b)->data_off;
}
static void m_zero_hash(struct blob *b)
{
	chk(b, 0)->hash ^= 1;
}
static void m_zero_mask(struct blob *b)
{
	*zm(b, 0) &= ~2ull;
}
static void m_raw_len(struct blob *b)
{
	chk(b, 2)->stored_len -= 1;
}
static void m_zstd_len0(struct blob *b)
{
	chk(b, 4)->stored_len = 0;
}
static void m_zstd_big(struct blob *b)
{
	chk(b, 4)->stored_len = (uint32_t)ZSTD_compressBound(65536) + 1;
}
static void m_past_end(struct blob *b)
{
	chk(b, 4)->offset = hdr(b)->file_size - 2;
}
static void m_before_data(struct blob *b)
{
	chk(b, 4)->offset = 8;
}
static void m_dup_self(struct blob *b)
{
	chk(b, 3)->ref = 3;
}
static void m_dup_fwd(struct blob *b)
{
	chk(b, 3)->ref = 5;
}
static void m_dup_zero(struct blob *b)
{
	chk(b, 3)->ref = 0;
}
static void m_dup_off(struct blob *b)
{
	chk(b, 3)->offset += 1;
}
static void m_dup_hash(struct blob *b)
{
	chk(b, 3)->hash ^= 4;
}
static void m_dup_mask(struct blob *b)
{
	*zm(b, 3) |= 1;
}
static void m_ref_nondup(struct blob *b)
{
	chk(b, 4)->ref = 1;
}
static void m_mask_beyond(struct blob *b)
{
	*zm(b, 4) |= 1ull << 16;
}
static void m_mask_short(struct blob *b)
{
	*zm(b, hdr(b)->chunk_count - 1) |= 1ull << 3;
}
static void m_kind_dup_raw(struct blob *b)
{
	chk(b, 2)->kind = 3;
}

static int case_table_corruption(void)
{
	uint8_t *m;
	const char *good = test_path("good.thaw");
	struct blob b = corpus(good, &m);
	/* The corpus layout the mutations rely on. */
	CHECK_EQ(chk(&b, 0)->kind, THAW_CHUNK_ZERO);
	CHECK_EQ(chk(&b, 2)->kind, THAW_CHUNK_RAW);
	CHECK_EQ(chk(&b, 3)->kind, THAW_CHUNK_DUP);
	CHECK_EQ(chk(&b, 3)->ref, 2);
	CHECK_EQ(chk(&b, 4)->kind, THAW_CHUNK_ZSTD);
	CHECK_EQ(*zm(&b, 0), 0xffff);
	const struct {
		mutate_fn fn;
		const char *what;
	} cases[] = {
		{ m_addr, "region 0: addr" },
		{ m_len0, "region 1: len" },
		{ m_lenodd, "region 1: len" },
		{ m_overlap, "region 1: addr" },
		{ m_order, "region 2: addr" },
		{ m_wrap, "region 2: addr" },
		{ m_prot, "region 0: prot" },
		{ m_nameoff, "region 2: name_off" },
		{ m_namelen, "region 0: name_len" },
		{ m_namenul, "region 0: name" },
		{ m_first, "region 1: first_chunk" },
		{ m_morechunks, "region 2:" },
		{ m_kind, "chunk 4: kind" },
		{ m_zero_off, "chunk 0: ZERO" },
		{ m_zero_hash, "chunk 0: ZERO" },
		{ m_zero_mask, "chunk 0: ZERO" },
		{ m_raw_len, "chunk 2: RAW" },
		{ m_zstd_len0, "chunk 4: ZSTD" },
		{ m_zstd_big, "chunk 4: ZSTD" },
		{ m_past_end, "chunk 4: offset" },
		{ m_before_data, "chunk 4: offset" },
		{ m_dup_self, "chunk 3: DUP ref" },
		{ m_dup_fwd, "chunk 3: DUP ref" },
		{ m_dup_zero, "chunk 3: DUP ref" },
		{ m_dup_off, "chunk 3: DUP" },
		{ m_dup_hash, "chunk 3: DUP" },
		{ m_dup_mask, "chunk 3: DUP zero mask" },
		{ m_ref_nondup, "chunk 4: ref" },
		{ m_mask_beyond, "chunk 4: zero mask" },
		{ m_mask_short, "zero mask" },
		{ m_kind_dup_raw, "chunk 2: DUP ref" },
	};
	const char *bad = test_path("bad.thaw");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct blob c = { malloc(b.len), b.len };
		memcpy(c.p, b.p, b.len);
		cases[i].fn(&c);
		redigest(&c);
		save(bad, c.p, c.len);
		expect_refused(bad, -THAW_E_BAD_SNAPSHOT, cases[i].what);
		free(c.p);
	}
	free(b.p);
	free(m);
	return 0;
}

/* A flipped byte in the data section is caught by the chunk hash (or the codec). */
static int case_flipped_data(void)
{
	uint8_t *m;
	const char *good = test_path("good.thaw");
	struct blob b = corpus(good, &m);
	const char *bad = test_path("flip.thaw");
	uint8_t buf[64 << 10];
	for (int which = 0; which < 2; which++) {
		uint64_t id = which ? 4 : 2; /* RAW, then ZSTD */
		struct blob c = { malloc(b.len), b.len };
		memcpy(c.p, b.p, b.len);
		const struct thaw__fmt_chunk *ch = chk(&c, id);
		for (uint32_t pos = 0; pos < ch->stored_len; pos += ch->stored_len / 7 + 1) {
			c.p[ch->offset + pos] ^= 0x40;
			save(bad, c.p, c.len);
			struct thaw_snapshot *s = open_ok(bad); /* the tables are intact */
			ssize_t r = thaw_snapshot_read_chunk(s, id, buf, sizeof(buf));
			CHECK_MSG(r == -THAW_E_HASH || r == -THAW_E_CODEC,
				  "chunk %" PRIu64 " byte %u: read gave %zd", id, pos, r);
			if (!which) {
				/* The DUP that shares those bytes fails the same way. */
				CHECK_EQ(thaw_snapshot_read_chunk(s, 3, buf, sizeof(buf)),
					 -THAW_E_HASH);
			}
			/* Other chunks still read. */
			CHECK_EQ(thaw_snapshot_read_chunk(s, 1, buf, sizeof(buf)), sizeof(buf));
			CHECK(!memcmp(buf, m + sizeof(buf), sizeof(buf)));
			thaw_snapshot_close(s);
			c.p[ch->offset + pos] ^= 0x40;
		}
		free(c.p);
	}
	/* A zero mask that lies about a stored chunk's bytes is caught on read. */
	struct blob c = { malloc(b.len), b.len };
	memcpy(c.p, b.p, b.len);
	*zm(&c, 4) |= 1ull << 5; /* chunk 4 is all 'x' */
	redigest(&c);
	save(bad, c.p, c.len);
	struct thaw_snapshot *s = open_ok(bad);
	CHECK_EQ(thaw_snapshot_read_chunk(s, 4, buf, sizeof(buf)), -THAW_E_BAD_SNAPSHOT);
	thaw_snapshot_close(s);
	uint64_t mixed = 0; /* a stored chunk with some zero pages */
	for (uint64_t i = 5; i < hdr(&b)->chunk_count && !mixed; i++)
		if (chk(&b, i)->kind == THAW_CHUNK_ZSTD && *zm(&b, i))
			mixed = i;
	CHECK_GT(mixed, 0);
	memcpy(c.p, b.p, b.len);
	*zm(&c, mixed) = 0;
	redigest(&c);
	save(bad, c.p, c.len);
	s = open_ok(bad);
	CHECK_EQ(thaw_snapshot_read_chunk(s, mixed, buf, sizeof(buf)), -THAW_E_BAD_SNAPSHOT);
	thaw_snapshot_close(s);
	free(c.p);
	/* A too-small buffer or a chunk out of range is refused without reading. */
	s = open_ok(good);
	CHECK_EQ(thaw_snapshot_read_chunk(s, 1, buf, 4096), -EINVAL);
	CHECK_EQ(thaw_snapshot_read_chunk(s, 1u << 20, buf, sizeof(buf)), -EINVAL);
	struct thaw_chunk_info ci = { .sz = sizeof(ci) };
	CHECK_EQ(thaw_snapshot_chunk(s, 1u << 20, &ci), -EINVAL);
	struct thaw_region_info ri = { .sz = sizeof(ri) };
	CHECK_EQ(thaw_snapshot_region(s, 3, &ri), -EINVAL);
	thaw_snapshot_close(s);
	free(b.p);
	free(m);
	return 0;
}

/*
 * Random damage to the tables (digest recomputed, so the deep checks are
 * on their own): open either refuses with a named field or yields a
 * snapshot every chunk of which reads back or fails cleanly. Run under
 * ASan/UBSan this is a small fuzzer of the parser.
 */
static int case_random_mutations(void)
{
	uint8_t *m;
	const char *good = test_path("good.thaw");
	struct blob b = corpus(good, &m);
	const char *bad = test_path("mut.thaw");
	uint64_t tl = hdr(&b)->tables_len, x = 12345;
	uint8_t *buf = malloc(64u << 10);
	int refused = 0, opened = 0;
	for (int it = 0; it < 1500; it++) {
		struct blob c = { malloc(b.len), b.len };
		memcpy(c.p, b.p, b.len);
		int flips = 1 + it % 4;
		for (int k = 0; k < flips; k++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t pos = (x >> 17) % tl;
			if (pos >= offsetof(struct thaw__fmt_header, digest) &&
			    pos < THAW__FMT_HEADER_SIZE)
				continue;
			c.p[pos] ^= (uint8_t)(1u << ((x >> 5) & 7));
		}
		redigest(&c);
		save(bad, c.p, c.len);
		char err[512] = "";
		struct thaw_open_opts o = { .sz = sizeof(o),
					    .err_buf = err,
					    .err_buf_size = sizeof(err) };
		struct thaw_snapshot *s = NULL;
		int r = thaw_snapshot_open(bad, &o, &s);
		if (r) {
			CHECK_MSG(r == -THAW_E_BAD_SNAPSHOT || r == -THAW_E_VERSION, "open: %d %s",
				  r, err);
			CHECK_MSG(strstr(err, "header") || strstr(err, "region ") ||
					  strstr(err, "chunk "),
				  "unnamed refusal: %s", err);
			refused++;
			free(c.p);
			continue;
		}
		opened++;
		struct thaw_snapshot_info info = { .sz = sizeof(info) };
		CHECK_OK(thaw_snapshot_get_info(s, &info));
		for (uint64_t i = 0; i < info.chunk_count; i++) {
			struct thaw_chunk_info ci = { .sz = sizeof(ci) };
			CHECK_OK(thaw_snapshot_chunk(s, i, &ci));
			CHECK_LE(ci.len, info.chunk_size);
			ssize_t n = thaw_snapshot_read_chunk(s, i, buf, 64u << 10);
			CHECK_MSG(n == ci.len || n == -THAW_E_HASH || n == -THAW_E_CODEC ||
					  n == -THAW_E_BAD_SNAPSHOT,
				  "chunk %" PRIu64 ": %zd", i, n);
		}
		thaw_snapshot_close(s);
		free(c.p);
	}
	printf("# %d mutated snapshots refused, %d opened\n", refused, opened);
	CHECK_GT(refused, 1000);
	free(buf);
	free(b.p);
	free(m);
	return 0;
}

struct log_capture {
	int errors;
	char last[512];
};

static void log_cb(enum thaw_log_level level, const char *msg, void *ctx)
{
	struct log_capture *lc = ctx;
	if (level == THAW_LOG_ERROR) {
		lc->errors++;
		snprintf(lc->last, sizeof(lc->last), "%s", msg);
	}
}

static int case_open_paths(void)
{
	uint8_t *m;
	const char *good = test_path("good.thaw");
	struct blob b = corpus(good, &m);
	char uri[600];
	snprintf(uri, sizeof(uri), "file://%s", good);
	thaw_snapshot_close(open_ok(uri));
	/* Errors reach the log callback too, naming the field. */
	struct log_capture lc = { 0 };
	struct thaw_open_opts o = { .sz = sizeof(o), .log_fn = log_cb, .log_ctx = &lc };
	struct thaw_snapshot *s = NULL;
	hdr(&b)->chunk_size = 3;
	save(test_path("bad.thaw"), b.p, b.len);
	CHECK_EQ(thaw_snapshot_open(test_path("bad.thaw"), &o, &s), -THAW_E_BAD_SNAPSHOT);
	CHECK_EQ(lc.errors, 1);
	CHECK_MSG(strstr(lc.last, "header.chunk_size"), "%s", lc.last);
	CHECK_EQ(thaw_snapshot_open(test_path("missing.thaw"), &o, &s), -ENOENT);
	CHECK_EQ(thaw_snapshot_open("ftp://example.com/x", &o, &s), -EPROTONOSUPPORT);
	CHECK_EQ(thaw_snapshot_open(test_tmpdir(), &o, &s), -EINVAL); /* a directory */
	/* The digest shown is the header's. */
	s = open_ok(good);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	struct blob g = load(good);
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", hdr(&g)->digest[i]);
	CHECK_MSG(!strcmp(hex, info.digest), "%s vs %s", hex, info.digest);
	thaw_snapshot_close(s);
	thaw_snapshot_close(NULL);
	free(g.p);
	free(b.p);
	free(m);
	return 0;
}

struct reader_arg {
	struct thaw_snapshot *s;
	const uint8_t *mem;
	uint64_t chunks;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t *buf = malloc(16384);
	for (int round = 0; round < 4; round++)
		for (uint64_t i = 0; i < a->chunks; i++) {
			ssize_t r = thaw_snapshot_read_chunk(a->s, i, buf, 16384);
			if (r != 16384 || memcmp(buf, a->mem + i * 16384, 16384))
				a->bad++;
		}
	free(buf);
	return NULL;
}

static int case_concurrent_reads(void)
{
	size_t len = 8u << 20;
	uint8_t *m = alloc_fill(len, 2, 31);
	struct thaw_region_desc r = region(0x200000, m, len, "x");
	const char *path = test_path("c.thaw");
	CHECK_OK(fixture_write_snapshot(path, &r, 1, 16384));
	struct thaw_snapshot *s = open_ok(path);
	pthread_t t[12];
	struct reader_arg a[12];
	for (int i = 0; i < 12; i++) {
		a[i] = (struct reader_arg){ s, m, len / 16384, 0 };
		CHECK(pthread_create(&t[i], NULL, reader, &a[i]) == 0);
	}
	for (int i = 0; i < 12; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(a[i].bad, 0);
	}
	thaw_snapshot_close(s);
	free(m);
	return 0;
}

/* The writer's level reaches zstd: every zstd chunk is what zstd makes at that level. */
static int case_writer_level(void)
{
	const size_t len = 4u << 20, chunk = 64u << 10;
	unsigned char *mem = malloc(len), *z = malloc(chunk * 2);
	CHECK(mem && z);
	fixture_fill_mixed(mem, len, 31);
	for (int level = 1; level <= 19; level += 18) {
		const char *path = test_path("level.thaw");
		struct thaw_writer_opts o = { .sz = sizeof(o), .level = level };
		struct thaw_writer *w;
		CHECK_OK(thaw_writer_open(path, &o, &w));
		struct thaw_region_desc r = region(0x100000000, mem, len, "level");
		CHECK_OK(thaw_writer_add_region(w, &r));
		CHECK_OK(thaw_writer_close(w));
		struct thaw_snapshot *s = open_ok(path);
		size_t nzstd = 0;
		for (uint64_t id = 0; id < len / chunk; id++) {
			struct thaw_chunk_info ci = { .sz = sizeof(ci) };
			CHECK_OK(thaw_snapshot_chunk(s, id, &ci));
			if (ci.kind != THAW_CHUNK_ZSTD)
				continue;
			size_t want = ZSTD_compress(z, chunk * 2, mem + id * chunk, chunk, level);
			CHECK_MSG(ci.stored_len == want,
				  "level %d chunk %llu: %u stored, zstd makes %zu", level,
				  (unsigned long long)id, ci.stored_len, want);
			nzstd++;
		}
		CHECK_GT(nzstd, 8);
		thaw_snapshot_close(s);
	}
	free(mem);
	free(z);
	return 0;
}

static const struct test_case cases[] = {
	{ "shapes_every_chunk_size", case_shapes, 120 },
	{ "all_zero", case_all_zero },
	{ "all_random", case_all_random },
	{ "duplicates_stored_once", case_duplicates },
	{ "mixed_fixture_ratio", case_mixed_ratio },
	{ "same_file_any_thread_count", case_deterministic },
	{ "fd_and_pid_sources", case_fd_and_pid_sources },
	{ "large_sparse_file", case_large_sparse_file, 120 },
	{ "progress", case_progress },
	{ "writer_errors", case_writer_errors },
	{ "writer_level", case_writer_level },
	{ "truncated", case_truncated },
	{ "header_fields", case_header_fields },
	{ "table_corruption", case_table_corruption },
	{ "random_mutations", case_random_mutations, 120 },
	{ "flipped_data", case_flipped_data },
	{ "open_paths_and_log", case_open_paths },
	{ "concurrent_reads", case_concurrent_reads },
};

TEST_MAIN(cases)
