/* SPDX-License-Identifier: MIT */
/*
 * Working-set prefetch: recording first touches page by page, thaw_optimize
 * (and `thaw optimize`), the prefetch section (chunk order, working-set
 * pages and their frames), and restores that stream it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/format.h"
#include "fixture.h"
#include "httpd.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE  4096u
#define CHUNK (64u << 10)
#define LEN   (8u << 20)	/* 128 chunks */
#define BASE  0x567000000000ull /* free under ASan too */

static void *source(void)
{
	void *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	fixture_fill_mixed(p, LEN, 7);
	/* Chunk 93 repeats chunk 8 (a DUP), both in the working set: 93 is touched first. */
	memcpy((char *)p + 93 * CHUNK, (char *)p + 8 * CHUNK, CHUNK);
	return p;
}

static void write_source(const char *path, const void *src)
{
	struct thaw_region_desc d = { .sz = sizeof(d),
				      .addr = BASE,
				      .len = LEN,
				      .prot = PROT_READ | PROT_WRITE,
				      .name = "heap",
				      .mem = src,
				      .fd = -1 };
	CHECK_OK(fixture_write_snapshot(path, &d, 1, CHUNK));
}

static struct thaw_snapshot *open_snap(const char *uri)
{
	struct thaw_snapshot *s;
	char err[512] = "";
	struct thaw_open_opts oo = { .sz = sizeof(oo),
				     .err_buf = err,
				     .err_buf_size = sizeof(err) };
	int r = thaw_snapshot_open(uri, &oo, &s);
	CHECK_MSG(r == 0, "open %s: %s (%s)", uri, thaw_strerror(r), err);
	return s;
}

/* The fixed working set: page p of every chunk whose index is 3 mod 5, chunks taken backwards. */
static size_t working_set(uint64_t *pages, size_t max)
{
	size_t n = 0;
	for (int c = LEN / CHUNK - 1; c >= 0 && n < max; c--)
		if (c % 5 == 3)
			pages[n++] = (uint64_t)c * (CHUNK / PAGE) + (uint64_t)c % (CHUNK / PAGE);
	return n;
}

static uint64_t touch(const volatile unsigned char *base, const uint64_t *pages, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += base[pages[i] * PAGE + 8];
	return sum;
}

static int optimize(struct thaw_snapshot *s, struct thaw_trace *const *t, size_t n, const char *out,
		    struct thaw_optimize_result *res, char *err, size_t err_len)
{
	struct thaw_optimize_opts o = { .sz = sizeof(o), .err_buf = err, .err_buf_size = err_len };
	err[0] = 0;
	return thaw_optimize(s, (const struct thaw_trace *const *)t, n, out, &o, res);
}

/* Restore snap on demand, touch the working set, return the recorded trace. */
static struct thaw_trace *record_run(struct thaw_snapshot *s, const uint64_t *pages, size_t n)
{
	struct thaw_trace *t;
	struct thaw_restore *r;
	CHECK_OK(thaw_trace_new(&t));
	struct thaw_restore_opts ro = { .sz = sizeof(ro),
					.flags = THAW_RESTORE_NO_BACKGROUND,
					.record = t };
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	touch(thaw_restore_region_addr(r, 0), pages, n);
	void *base = thaw_restore_region_addr(r, 0);
	thaw_restore_free(r);
	munmap(base, LEN);
	return t;
}

/* A snapshot of the mixed source, and an on-demand run over it that recorded the working set. */
struct recorded {
	void *src;
	struct thaw_snapshot *s;
	struct thaw_trace *t;
	uint64_t pages[64];
	size_t n;
};

static void recorded_setup(struct recorded *f, const char *path)
{
	f->src = source();
	write_source(path, f->src);
	f->n = working_set(f->pages, 64);
	f->s = open_snap(path);
	f->t = record_run(f->s, f->pages, f->n);
}

static void recorded_free(struct recorded *f)
{
	thaw_trace_free(f->t);
	thaw_snapshot_close(f->s);
	munmap(f->src, LEN);
}

/* The header and prefetch section of a snapshot file, read directly. */
static struct thaw__fmt_header file_header(const char *path, struct thaw__fmt_prefetch *sec,
					   uint64_t **order)
{
	struct thaw__fmt_header h;
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK_EQ(pread(fd, sec, sizeof(*sec), (off_t)h.prefetch_off), (ssize_t)sizeof(*sec));
	*order = malloc(sec->chunk_count * 8 + 8);
	CHECK_EQ(pread(fd, *order, sec->chunk_count * 8, (off_t)(h.prefetch_off + sizeof(*sec))),
		 (ssize_t)(sec->chunk_count * 8));
	close(fd);
	return h;
}

/* Pages of pages[] that hold data (a snapshot stores no zero page). */
static size_t data_pages(const unsigned char *src, const uint64_t *pages, size_t n)
{
	static const unsigned char zero[PAGE];
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += memcmp(src + pages[i] * PAGE, zero, PAGE) != 0;
	return k;
}

/*
 * Restore snap without the background pass, wait for the prefetch order to
 * be in, make the recorded touches: none may fault on the recorded set, and
 * the memory must be the source's. *st gets the stats after the touches.
 */
static void replay(struct thaw_snapshot *snap, const uint64_t *pages, size_t n, const void *src,
		   struct thaw_stats *st)
{
	struct thaw_restore *r;
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	CHECK_OK(thaw_restore_start(snap, &ro, &r));
	for (int i = 0; i < 10000; i++) {
		CHECK_OK(thaw_restore_stats(r, st));
		if (st->prefetch_done_us)
			break;
		usleep(1000);
	}
	CHECK_GT(st->prefetch_done_us, 0);
	const unsigned char *base = thaw_restore_region_addr(r, 0);
	touch(base, pages, n);
	CHECK_OK(thaw_restore_stats(r, st));
	CHECK_EQ(st->prefetch_late, 0);
	CHECK_EQ(st->faults, 0);
	/* The frames put in the listed pages, but for any whose chunk beat them to it. */
	CHECK_LE(st->pages_ws, st->ws_pages);
	CHECK_GT(st->pages_ws, st->ws_pages / 2);
	thaw_restore_free(r);
	CHECK(!memcmp(base, src, LEN));
	munmap((void *)base, LEN);
}

static int record_then_replay(void)
{
	struct recorded f;
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	recorded_setup(&f, orig);
	/* One page record per page touched, zero pages included, and the snapshot named. */
	CHECK_EQ(thaw_trace_count(f.t), f.n);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(f.s, &info));
	CHECK(thaw_trace_snapshot(f.t) && !strcmp(thaw_trace_snapshot(f.t), info.digest));
	size_t data = 0;
	for (size_t i = 0; i < f.n; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(f.s, f.pages[i] / (CHUNK / PAGE), &ci));
		data += ci.kind != THAW_CHUNK_ZERO;
	}
	CHECK_GT(data, 10);
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	int rc = optimize(f.s, &f.t, 1, opt, &res, err, sizeof(err));
	CHECK_MSG(rc == 0, "optimize: %s (%s)", thaw_strerror(rc), err);
	CHECK_EQ(res.chunks_ordered, f.n); /* zero chunks too: their touches fault as well */
	CHECK_EQ(res.ws_pages, data_pages(f.src, f.pages, f.n));
	CHECK_EQ(res.ws_frames, (res.ws_pages + 63) / 64);
	CHECK(strcmp(res.digest, info.digest) != 0);

	/* Replay: once the prefetch is in, the same touches do not fault at all. */
	struct thaw_snapshot *so = open_snap(opt);
	struct thaw_stats st = { .sz = sizeof(st) };
	replay(so, f.pages, f.n, f.src, &st);
	CHECK_EQ(st.prefetch_chunks, f.n);
	CHECK_EQ(st.faults, 0);
	CHECK_EQ(st.faults_unlisted, 0);
	CHECK_EQ(st.ws_pages, res.ws_pages);
	CHECK_EQ(st.frames_dropped, 0);
	/* The frames' pages and the listed zero pages, then whole chunks (zero ones
	 * included) around them. */
	CHECK_EQ(res.ws_pages + res.ws_zero_pages, f.n);
	CHECK_GE(st.pages_prefetch, st.pages_ws + f.n * (CHUNK / PAGE));
	CHECK_LE(st.pages_prefetch, st.pages_ws + f.n * (CHUNK / PAGE) + res.ws_zero_pages);
	CHECK_GE(st.pages_zero, (f.n - data) * (CHUNK / PAGE));
	CHECK_LE(st.pages_zero, (f.n - data) * (CHUNK / PAGE) + res.ws_zero_pages);
	CHECK_EQ(st.pages_background, 0);
	thaw_snapshot_close(so);
	recorded_free(&f);
	return 0;
}

/* Every chunk of a and b decodes to the same bytes; b passes a full read-and-hash check. */
static void same_content(struct thaw_snapshot *a, struct thaw_snapshot *b)
{
	static char x[CHUNK], y[CHUNK];
	for (uint64_t i = 0; i < LEN / CHUNK; i++) {
		ssize_t nx = thaw_snapshot_read_chunk(a, i, x, sizeof(x));
		ssize_t ny = thaw_snapshot_read_chunk(b, i, y, sizeof(y));
		CHECK_OK(nx);
		CHECK_OK(ny);
		CHECK_EQ(nx, ny);
		CHECK_MSG(!memcmp(x, y, (size_t)nx), "chunk %llu differs", (unsigned long long)i);
	}
}

static int optimized_layout_and_content(void)
{
	struct recorded f;
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	recorded_setup(&f, orig);
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	CHECK_OK(optimize(f.s, &f.t, 1, opt, &res, err, sizeof(err)));
	struct thaw_snapshot *so = open_snap(opt);
	same_content(f.s, so);
	struct thaw_snapshot_info a = { .sz = sizeof(a) }, b = { .sz = sizeof(b) };
	CHECK_OK(thaw_snapshot_get_info(f.s, &a));
	CHECK_OK(thaw_snapshot_get_info(so, &b));
	CHECK_EQ(b.stored_bytes, a.stored_bytes + res.frame_bytes);
	CHECK_GT(a.chunks_by_kind[THAW_CHUNK_DUP], 0);
	CHECK_EQ(b.prefetch_count, res.chunks_ordered);
	CHECK_EQ(b.ws_pages, res.ws_pages);
	CHECK_EQ(b.ws_frames, res.ws_frames);
	CHECK(!strcmp(b.digest, res.digest));
	/* The working set is one range at the front of the data: the frames, then
	 * the chunks in first-touch order. */
	uint64_t *order;
	struct thaw__fmt_prefetch sec;
	struct thaw__fmt_header h = file_header(opt, &sec, &order);
	CHECK_EQ(sec.frame_count, res.ws_frames);
	uint64_t at = h.data_off + res.frame_bytes;
	for (uint64_t i = 0; i < sec.chunk_count; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(so, order[i], &ci));
		if (ci.kind == THAW_CHUNK_ZERO)
			continue; /* listed, but nothing stored */
		if (ci.stored_off < at) {
			/* Bytes shared with a chunk listed earlier (a DUP and its target). */
			CHECK_GE(ci.stored_off, h.data_off);
			continue;
		}
		CHECK_EQ(ci.stored_off, at);
		at += ci.stored_len;
	}
	CHECK_EQ(at - h.data_off, res.stored_bytes);
	/* Addresses and regions unchanged; the command-line check agrees. */
	struct thaw_region_info ra = { .sz = sizeof(ra) }, rb = { .sz = sizeof(rb) };
	CHECK_OK(thaw_snapshot_region(f.s, 0, &ra));
	CHECK_OK(thaw_snapshot_region(so, 0, &rb));
	CHECK_EQ(ra.addr, rb.addr);
	CHECK_EQ(ra.len, rb.len);
	char out[4096];
	CHECK_EQ(test_run(out, sizeof(out), "%s verify %s", test_build_path("thaw"), opt), 0);
	/* A restore with the background pass streams the order, then the rest: all identical. */
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(so, NULL, &r));
	CHECK_OK(thaw_restore_wait(r, 10000));
	unsigned char *base = thaw_restore_region_addr(r, 0);
	CHECK(!memcmp(base, f.src, LEN));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.pages_prefetch, 0);
	thaw_restore_free(r);
	munmap(base, LEN);
	free(order);
	thaw_snapshot_close(so);
	recorded_free(&f);
	return 0;
}

static int foreign_and_bad_traces_refused(void)
{
	void *src = source();
	const char *orig = test_path("orig.thaw"), *other = test_path("other.thaw");
	write_source(orig, src);
	fixture_fill_mixed(src, LEN, 8);
	write_source(other, src);
	struct thaw_snapshot *s = open_snap(orig), *so = open_snap(other);
	struct thaw_snapshot_info io = { .sz = sizeof(io) };
	CHECK_OK(thaw_snapshot_get_info(so, &io));
	char err[512];
	const char *out = test_path("out.thaw");

	/* A trace recorded from another snapshot. */
	struct thaw_trace *t;
	CHECK_OK(thaw_trace_new(&t));
	CHECK_OK(thaw_trace_set_snapshot(t, io.digest));
	CHECK_OK(thaw_trace_add_chunk(t, 1, 3));
	const char *names[] = { "run-a.trace" };
	struct thaw_optimize_opts o = {
		.sz = sizeof(o), .trace_names = names, .err_buf = err, .err_buf_size = sizeof(err)
	};
	CHECK_EQ(thaw_optimize(s, (const struct thaw_trace *const *)&t, 1, out, &o, NULL), -EINVAL);
	CHECK_MSG(strstr(err, "run-a.trace") && strstr(err, io.digest), "message: %s", err);
	/* Nor may a restore of this snapshot record into it. */
	struct thaw_restore *r = NULL;
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .record = t };
	CHECK_EQ(thaw_restore_start(s, &ro, &r), -EINVAL);
	CHECK(r == NULL);
	CHECK(!strcmp(thaw_trace_snapshot(t), io.digest));
	thaw_trace_free(t);

	/* Chunk ids the snapshot does not have. */
	struct thaw_snapshot_info is = { .sz = sizeof(is) };
	CHECK_OK(thaw_snapshot_get_info(s, &is));
	CHECK_OK(thaw_trace_new(&t));
	CHECK_OK(thaw_trace_set_snapshot(t, is.digest));
	CHECK_OK(thaw_trace_add_chunk(t, 1, 3));
	CHECK_OK(thaw_trace_add_chunk(t, 2, LEN / CHUNK));
	CHECK_EQ(optimize(s, &t, 1, out, NULL, err, sizeof(err)), -EINVAL);
	CHECK_MSG(strstr(err, "trace 1") && strstr(err, "chunk 128 does not exist"), "message: %s",
		  err);
	thaw_trace_free(t);

	/* Page addresses none of which lies in the snapshot. */
	CHECK_OK(thaw_trace_new(&t));
	CHECK_OK(thaw_trace_add_page(t, 1, 0x1000, 7));
	CHECK_OK(thaw_trace_add_page(t, 2, BASE + LEN, 7));
	CHECK_EQ(optimize(s, &t, 1, out, NULL, err, sizeof(err)), -EINVAL);
	CHECK_MSG(strstr(err, "none of its 2 page addresses"), "message: %s", err);
	thaw_trace_free(t);
	CHECK_EQ(access(out, F_OK), -1); /* nothing written */

	/* The command names the file too, and exits 1. */
	char cmd_out[4096];
	const char *tf = test_path("foreign.trace");
	CHECK_OK(thaw_trace_new(&t));
	CHECK_OK(thaw_trace_set_snapshot(t, io.digest));
	CHECK_OK(thaw_trace_add_chunk(t, 1, 3));
	CHECK_OK(thaw_trace_save(t, tf));
	thaw_trace_free(t);
	CHECK_EQ(test_run(cmd_out, sizeof(cmd_out), "%s optimize %s --trace %s -o %s",
			  test_build_path("thaw"), orig, tf, out),
		 1);
	CHECK_MSG(strstr(cmd_out, tf) && strstr(cmd_out, "not this one"), "output: %s", cmd_out);
	thaw_snapshot_close(so);
	thaw_snapshot_close(s);
	return 0;
}

static int page_traces_merge(void)
{
	void *src = source();
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	write_source(orig, src);
	struct thaw_snapshot *s = open_snap(orig);
	/* Data chunks to name, found from the snapshot so the fixture may change. */
	uint64_t data[6];
	size_t nd = 0;
	for (uint64_t i = 0; i < LEN / CHUNK && nd < 6; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(s, i, &ci));
		if (ci.kind != THAW_CHUNK_ZERO)
			data[nd++] = i;
	}
	CHECK_EQ(nd, 6);
	/* Trace A (pages, as `thaw trace` writes them): d3 at 10 us, d0 twice, an outside page. */
	struct thaw_trace *t[2];
	CHECK_OK(thaw_trace_new(&t[0]));
	CHECK_OK(thaw_trace_add_page(t[0], 10, BASE + data[3] * CHUNK + 5 * PAGE, 11));
	CHECK_OK(thaw_trace_add_page(t[0], 20, 0x7fff0000, 11));
	CHECK_OK(thaw_trace_add_page(t[0], 30, BASE + data[0] * CHUNK, 11));
	CHECK_OK(thaw_trace_add_page(t[0], 40, BASE + data[0] * CHUNK + PAGE, 12));
	CHECK_OK(thaw_trace_add_page(t[0], 50, BASE + data[5] * CHUNK, 11));
	/* Trace B (chunks): d5 at 5 us (earlier than A's), d1 at 30 us (a tie with A's d0). */
	struct thaw_snapshot_info is = { .sz = sizeof(is) };
	CHECK_OK(thaw_snapshot_get_info(s, &is));
	CHECK_OK(thaw_trace_new(&t[1]));
	CHECK_OK(thaw_trace_set_snapshot(t[1], is.digest));
	CHECK_OK(thaw_trace_add_chunk(t[1], 5, data[5]));
	CHECK_OK(thaw_trace_add_chunk(t[1], 30, data[1]));
	/* Through files, as the command reads them. */
	const char *fa = test_path("a.trace"), *fb = test_path("b.trace");
	CHECK_OK(thaw_trace_save(t[0], fa));
	CHECK_OK(thaw_trace_save(t[1], fb));
	char out[4096];
	CHECK_EQ(test_run(out, sizeof(out), "%s optimize %s --trace %s --trace %s -o %s --json",
			  test_build_path("thaw"), orig, fa, fb, opt),
		 0);
	CHECK_MSG(strstr(out, "\"pages_ignored\": 1"), "output: %s", out);
	uint64_t *order;
	struct thaw__fmt_prefetch sec;
	file_header(opt, &sec, &order);
	const uint64_t want[] = { data[5], data[3], data[0], data[1] };
	CHECK_EQ(sec.chunk_count, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(order[i], want[i]);
	free(order);
	struct thaw_snapshot *so = open_snap(opt);
	same_content(s, so);
	thaw_snapshot_close(so);
	/* Chunk records alone: a chunk order and no working-set pages, restored as before. */
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	CHECK_OK(optimize(s, &t[1], 1, opt, &res, err, sizeof(err)));
	CHECK_EQ(res.chunks_ordered, 2);
	CHECK_EQ(res.ws_pages + res.ws_zero_pages + res.ws_frames + res.frame_bytes, 0);
	so = open_snap(opt);
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(so, NULL, &r));
	CHECK_OK(thaw_restore_wait(r, 10000));
	unsigned char *base = thaw_restore_region_addr(r, 0);
	CHECK(!memcmp(base, src, LEN));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.ws_pages, 0);
	CHECK_EQ(st.pages_ws, 0);
	CHECK_GE(st.pages_prefetch, 2 * (CHUNK / PAGE));
	thaw_restore_free(r);
	munmap(base, LEN);
	thaw_snapshot_close(so);
	thaw_trace_free(t[0]);
	thaw_trace_free(t[1]);
	thaw_snapshot_close(s);
	return 0;
}

/* Re-seal a mutated header so the prefetch checks, not the digest, see it. */
static void reseal(unsigned char *file, size_t len, const char *path)
{
	struct thaw__fmt_header *h = (struct thaw__fmt_header *)file;
	if (h->tables_len <= len)
		thaw__layout_digest(h, file, h->tables_len, h->digest);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, file, len), (ssize_t)len);
	close(fd);
}

static void expect_refused(const char *path, const char *what)
{
	struct thaw_snapshot *s = NULL;
	char err[512] = "";
	struct thaw_open_opts oo = { .sz = sizeof(oo),
				     .err_buf = err,
				     .err_buf_size = sizeof(err) };
	int r = thaw_snapshot_open(path, &oo, &s);
	CHECK_MSG(r == -THAW_E_BAD_SNAPSHOT, "%s: opened (%d) though %s", path, r, what);
	CHECK_MSG(strstr(err, what), "message does not name %s: %s", what, err);
}

static int malformed_prefetch_refused(void)
{
	struct recorded f;
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	const char *bad = test_path("bad.thaw");
	recorded_setup(&f, orig);
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	CHECK_OK(optimize(f.s, &f.t, 1, opt, &res, err, sizeof(err)));
	CHECK_GT(res.ws_zero_pages, 0);
	CHECK_GT(res.ws_pages, 1);
	struct stat stt;
	CHECK_OK(stat(opt, &stt));
	size_t len = (size_t)stt.st_size;
	unsigned char *good = malloc(len), *c = malloc(len);
	int fd = open(opt, O_RDONLY);
	CHECK_EQ(read(fd, good, len), (ssize_t)len);
	close(fd);
	struct thaw__fmt_header *h = (struct thaw__fmt_header *)c;
	uint64_t zero_chunk = UINT64_MAX;
	for (uint64_t i = 0; i < LEN / CHUNK && zero_chunk == UINT64_MAX; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(f.s, i, &ci));
		if (ci.kind == THAW_CHUNK_ZERO)
			zero_chunk = i;
	}
	CHECK(zero_chunk != UINT64_MAX);
#define SEC	  ((struct thaw__fmt_prefetch *)(c + h->prefetch_off))
#define ENTRY(k)  (((uint64_t *)(SEC + 1))[k])
#define PAGE_E(k) (((uint64_t *)(SEC + 1))[SEC->chunk_count + (k)])
#define FRAME(k)                                                                                   \
	(((struct thaw__fmt_frame *)((uint64_t *)(SEC + 1) + SEC->chunk_count + SEC->page_count +  \
				     SEC->zero_count))[k])
	struct {
		const char *what;
		int edit;
	} cases[] = {
		{ "chunk 128 is not below header.chunk_count", 0 },
		{ "is listed twice", 2 },
		{ "prefetch.chunk_count: 0 is outside", 3 },
		{ "prefetch.chunk_count: 129 is outside", 4 },
		{ "header.prefetch_off", 5 },
		{ "header.prefetch_off: 8 must be 0 without", 6 },
		{ "header.flags", 7 },
		{ "prefetch page entry 0: page 2048 is not a page of the snapshot", 8 },
		{ "prefetch page entry 1: page", 9 },
		{ "prefetch page entry 0: page", 10 },
		{ "frame 0: page_count 0 is outside", 11 },
		{ "frame 0: offset", 12 },
		{ "frame 0: stored_len 0 is outside", 13 },
		{ "header.prefetch_len", 14 },
		{ "prefetch.frame_count", 15 },
		{ "frame 0: page_count 65 is outside", 16 },
		{ "header.prefetch_len: 8 is shorter", 17 },
		{ "prefetch zero page entry 0: page", 18 },
		{ "prefetch zero page entry 0: page 2048 is not a page", 19 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		memcpy(c, good, len);
		switch (cases[k].edit) {
		case 0:
			ENTRY(1) = LEN / CHUNK;
			break;
		case 2:
			ENTRY(2) = ENTRY(0);
			break;
		case 3:
			SEC->chunk_count = 0;
			break;
		case 4:
			SEC->chunk_count = LEN / CHUNK + 1;
			break;
		case 5:
			h->prefetch_off += 4;
			break;
		case 6:
			h->flags = 0;
			h->prefetch_off = 8;
			h->prefetch_len = 0;
			break;
		case 7:
			h->flags |= 1u << 30;
			break;
		case 8:
			PAGE_E(0) = LEN / PAGE;
			break;
		case 9:
			PAGE_E(1) = PAGE_E(0);
			break;
		case 10:
			PAGE_E(0) = zero_chunk * (CHUNK / PAGE);
			break;
		case 11:
			FRAME(0).page_count = 0;
			break;
		case 12:
			FRAME(0).offset = len;
			break;
		case 13:
			FRAME(0).stored_len = 0;
			break;
		case 14:
			SEC->frame_count++;
			break;
		case 15:
			SEC->page_count = 0;
			break;
		case 16:
			FRAME(0).page_count = 65;
			break;
		case 17:
			h->prefetch_len = 8;
			break;
		case 18: /* a data page listed as a zero page */
			((uint64_t *)(SEC + 1))[SEC->chunk_count + SEC->page_count] = PAGE_E(0);
			break;
		case 19:
			((uint64_t *)(SEC + 1))[SEC->chunk_count + SEC->page_count] = LEN / PAGE;
			break;
		}
		reseal(c, len, bad);
		expect_refused(bad, cases[k].what);
	}
#undef SEC
#undef PAGE_E
#undef FRAME
#undef ENTRY
	/* Unchanged, it opens. */
	reseal(good, len, bad);
	thaw_snapshot_close(open_snap(bad));
	free(good);
	free(c);
	recorded_free(&f);
	return 0;
}

/* bench --record, optimize, bench again: the command-line loop, same bytes read. */
static int command_line_loop(void)
{
	void *src = source();
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	const char *tr = test_path("run.trace");
	write_source(orig, src);
	const char *thaw = test_build_path("thaw");
	char a[16384], b[16384];
	CHECK_EQ(test_run(a, sizeof(a),
			  "%s bench %s --touch random:5%% --passes 2 --no-background --record %s "
			  "--json",
			  thaw, orig, tr),
		 0);
	char out[4096];
	CHECK_EQ(test_run(out, sizeof(out), "%s optimize %s --trace %s -o %s", thaw, orig, tr, opt),
		 0);
	CHECK_MSG(strstr(out, "chunks in first-touch order"), "output: %s", out);
	CHECK_EQ(test_run(b, sizeof(b), "%s bench %s --touch random:5%% --passes 2 --json", thaw,
			  opt),
		 0);
	const char *ca = strstr(a, "\"checksum\""), *cb = strstr(b, "\"checksum\"");
	CHECK(ca && cb);
	CHECK_MSG(!strncmp(ca, cb, 40), "checksums differ: %.40s vs %.40s", ca, cb);
	CHECK_MSG(strstr(b, "\"prefetch_chunks\"") && strstr(b, "\"prefetch_hits\""), "json: %s",
		  b);
	CHECK_EQ(test_run(out, sizeof(out), "%s info %s", thaw, opt), 0);
	CHECK_MSG(strstr(out, "prefetch") && strstr(out, "working set"), "info: %s", out);
	/* The recording was page by page: the optimized snapshot carries frames. */
	CHECK_EQ(test_run(out, sizeof(out), "%s info %s --json", thaw, opt), 0);
	CHECK_MSG(strstr(out, "\"ws_frames\"") && !strstr(out, "\"ws_frames\": 0"), "info: %s",
		  out);
	return 0;
}

/* Over HTTP the prefetch streams the working set from nginx, in few requests. */
static int prefetch_over_http(void)
{
	struct httpd hd;
	httpd_start(&hd, test_tmpdir());
	struct recorded f;
	const char *orig = test_path("orig.thaw");
	recorded_setup(&f, orig);
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	CHECK_OK(optimize(f.s, &f.t, 1, httpd_file(&hd, "opt.thaw"), &res, err, sizeof(err)));
	struct thaw_snapshot *so = open_snap(httpd_url(&hd, "/opt.thaw"));
	struct thaw_stats st = { .sz = sizeof(st) };
	replay(so, f.pages, f.n, f.src, &st);
	/* A few large ranges, not one request per chunk. */
	CHECK_LE(st.http_requests, 1 + res.stored_bytes / (256u << 10) + 4);
	CHECK_LT(st.http_requests, res.chunks_ordered);
	thaw_snapshot_close(so);
	httpd_stop(&hd);
	recorded_free(&f);
	return 0;
}

/* A fixed pseudo-random tenth of the pages, in a scrambled order, each once. */
static size_t random_pages(uint64_t *pages, size_t max)
{
	static unsigned char taken[LEN / PAGE];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t n = 0;
	memset(taken, 0, sizeof(taken));
	while (n < max) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t p = x % (LEN / PAGE);
		if (!taken[p]) {
			taken[p] = 1;
			pages[n++] = p;
		}
	}
	return n;
}

/* The bytes of a file, whole. */
static unsigned char *slurp(const char *path, size_t *len)
{
	struct stat st;
	CHECK_OK(stat(path, &st));
	unsigned char *b = malloc((size_t)st.st_size + 1);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	b[st.st_size] = 0; /* text files read as strings */
	*len = (size_t)st.st_size;
	return b;
}

/*
 * A random tenth of the pages: recorded page by page, packed into frames,
 * replayed without a single fault; touched at once, byte-identical; and
 * `thaw extract` of the optimized snapshot gives the source's bytes.
 */
static int random_pages_replay(void)
{
	static uint64_t pages[LEN / PAGE / 10];
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	void *src = source();
	write_source(orig, src);
	size_t n = random_pages(pages, LEN / PAGE / 10);
	struct thaw_snapshot *s = open_snap(orig);
	struct thaw_trace *t = record_run(s, pages, n);
	CHECK_EQ(thaw_trace_count(t), n);
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	int rc = optimize(s, &t, 1, opt, &res, err, sizeof(err));
	CHECK_MSG(rc == 0, "optimize: %s (%s)", thaw_strerror(rc), err);
	CHECK_EQ(res.ws_pages, data_pages(src, pages, n));
	CHECK_GT(res.ws_frames, 1);
	struct thaw_snapshot *so = open_snap(opt);
	struct thaw_stats st = { .sz = sizeof(st) };
	replay(so, pages, n, src, &st);
	CHECK_EQ(st.faults_unlisted, 0);
	CHECK_EQ(st.frames_dropped, 0);

	/* Touched at once: faults jump ahead of the stream, the bytes stay right. */
	struct thaw_restore *r;
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	CHECK_OK(thaw_restore_start(so, &ro, &r));
	const unsigned char *base = thaw_restore_region_addr(r, 0);
	touch(base, pages, n);
	for (size_t i = 0; i < n; i++)
		CHECK_MSG(!memcmp(base + pages[i] * PAGE, (char *)src + pages[i] * PAGE, PAGE),
			  "page %llu differs", (unsigned long long)pages[i]);
	thaw_restore_free(r);
	munmap((void *)base, LEN);

	const char *out = test_path("opt.raw");
	char cmd[4096];
	CHECK_EQ(test_run(cmd, sizeof(cmd), "%s extract %s -o %s", test_build_path("thaw"), opt,
			  out),
		 0);
	size_t len;
	unsigned char *raw = slurp(out, &len);
	CHECK_EQ(len, LEN);
	CHECK(!memcmp(raw, src, LEN));
	free(raw);
	thaw_snapshot_close(so);
	thaw_trace_free(t);
	thaw_snapshot_close(s);
	munmap(src, LEN);
	return 0;
}

/* A frame whose stored bytes are damaged is dropped: its pages come from their chunks. */
static int damaged_frame_dropped(void)
{
	static uint64_t pages[LEN / PAGE / 10];
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	void *src = source();
	write_source(orig, src);
	size_t n = random_pages(pages, LEN / PAGE / 10);
	struct thaw_snapshot *s = open_snap(orig);
	struct thaw_trace *t = record_run(s, pages, n);
	char err[512];
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	CHECK_OK(optimize(s, &t, 1, opt, &res, err, sizeof(err)));
	/* The frames are data, outside the digest: flip a byte in the middle of the first. */
	uint64_t *order;
	struct thaw__fmt_prefetch sec;
	struct thaw__fmt_header h = file_header(opt, &sec, &order);
	free(order);
	struct thaw__fmt_frame fr;
	int fd = open(opt, O_RDWR);
	CHECK(fd >= 0);
	off_t at = (off_t)(h.prefetch_off + sizeof(sec) +
			   (sec.chunk_count + sec.page_count + sec.zero_count) * 8);
	CHECK_EQ(pread(fd, &fr, sizeof(fr), at), (ssize_t)sizeof(fr));
	unsigned char byte;
	CHECK_EQ(pread(fd, &byte, 1, (off_t)(fr.offset + fr.stored_len / 2)), 1);
	byte ^= 0x5a;
	CHECK_EQ(pwrite(fd, &byte, 1, (off_t)(fr.offset + fr.stored_len / 2)), 1);
	close(fd);

	struct thaw_snapshot *so = open_snap(opt);
	struct thaw_restore *r;
	CHECK_OK(thaw_restore_start(so, NULL, &r));
	const unsigned char *base = thaw_restore_region_addr(r, 0);
	touch(base, pages, n); /* the first pages touched are the damaged frame's */
	CHECK_OK(thaw_restore_wait(r, 10000));
	CHECK(!memcmp(base, src, LEN));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.frames_dropped, 1);
	CHECK_EQ(st.chunks_poisoned, 0);
	CHECK_LE(st.pages_ws, st.ws_pages - fr.page_count);
	thaw_restore_free(r);
	munmap((void *)base, LEN);
	thaw_snapshot_close(so);
	thaw_trace_free(t);
	thaw_snapshot_close(s);
	munmap(src, LEN);
	return 0;
}

/* A trace's records without their times: what two runs must agree on. */
static void untimed(const char *path, char *out, size_t max)
{
	size_t len;
	unsigned char *b = slurp(path, &len);
	size_t k = 0;
	for (char *line = strtok((char *)b, "\n"); line && k + 256 < max;
	     line = strtok(NULL, "\n")) {
		char *sp = strchr(line, ' ');
		k += (size_t)snprintf(out + k, max - k, "%s\n",
				      isdigit((unsigned char)line[0]) && sp ? sp + 1 : line);
	}
	free(b);
}

/* Recording names source addresses: a relocated restore records what a fixed one does. */
static int relocated_records_same_trace(void)
{
	static uint64_t pages[64];
	static char a[65536], b[65536];
	const char *orig = test_path("orig.thaw");
	void *src = source();
	write_source(orig, src);
	size_t n = random_pages(pages, 64);
	struct thaw_snapshot *s = open_snap(orig);
	const char *path[2] = { test_path("fixed.trace"), test_path("moved.trace") };
	for (int i = 0; i < 2; i++) {
		struct thaw_trace *t;
		struct thaw_restore *r;
		CHECK_OK(thaw_trace_new(&t));
		struct thaw_restore_opts ro = { .sz = sizeof(ro),
						.flags = i ? 0 : THAW_RESTORE_FIXED_ADDR,
						.record = t };
		CHECK_OK(thaw_restore_start(s, &ro, &r));
		unsigned char *base = thaw_restore_region_addr(r, 0);
		CHECK((uint64_t)(uintptr_t)base == BASE || i);
		CHECK((uint64_t)(uintptr_t)base != BASE || !i);
		touch(base, pages, n);
		/* Page-granular: a neighbour in the same chunk was not brought in. */
		struct thaw_stats st = { .sz = sizeof(st) };
		CHECK_OK(thaw_restore_stats(r, &st));
		CHECK_EQ(st.faults, n);
		CHECK_EQ(st.pages_background, 0);
		thaw_restore_free(r);
		munmap(base, LEN);
		CHECK_EQ(thaw_trace_count(t), n);
		CHECK_OK(thaw_trace_save(t, path[i]));
		thaw_trace_free(t);
	}
	untimed(path[0], a, sizeof(a));
	untimed(path[1], b, sizeof(b));
	CHECK_MSG(!strcmp(a, b), "fixed:\n%s\nmoved:\n%s", a, b);
	char want[64];
	snprintf(want, sizeof(want), "page 0x%llx ", (unsigned long long)(BASE + pages[0] * PAGE));
	CHECK_MSG(strstr(a, want), "first touch %s not in:\n%s", want, a);
	thaw_snapshot_close(s);
	munmap(src, LEN);
	return 0;
}

static const struct test_case cases[] = {
	{ "record_then_replay", record_then_replay, 30 },
	{ "optimized_layout_and_content", optimized_layout_and_content, 30 },
	{ "foreign_and_bad_traces_refused", foreign_and_bad_traces_refused, 30 },
	{ "page_traces_merge", page_traces_merge, 30 },
	{ "malformed_prefetch_refused", malformed_prefetch_refused, 30 },
	{ "command_line_loop", command_line_loop, 60 },
	{ "prefetch_over_http", prefetch_over_http, 60 },
	{ "random_pages_replay", random_pages_replay, 60 },
	{ "damaged_frame_dropped", damaged_frame_dropped, 60 },
	{ "relocated_records_same_trace", relocated_records_same_trace, 30 },
};

TEST_MAIN(cases)
