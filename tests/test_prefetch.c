/* SPDX-License-Identifier: MIT */
/*
 * Working-set prefetch: recording first touches, thaw_optimize (and `thaw
 * optimize`), the prefetch-order section, and restores that stream it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../restore/format.h"
#include "fixture.h"
#include "httpd.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE  4096u
#define CHUNK (64u << 10)
#define LEN   (8u << 20) /* 128 chunks */
#define BASE  0x200000000ull

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

/* The header and prefetch order of a snapshot file, read directly. */
static struct thaw__fmt_header file_header(const char *path, uint64_t **order)
{
	struct thaw__fmt_header h;
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	if (order) {
		*order = malloc(h.prefetch_count * 8 + 8);
		CHECK_EQ(pread(fd, *order, h.prefetch_count * 8, (off_t)h.prefetch_off),
			 (ssize_t)(h.prefetch_count * 8));
	}
	close(fd);
	return h;
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
	thaw_restore_free(r);
	CHECK(!memcmp(base, src, LEN));
	munmap((void *)base, LEN);
}

static int record_then_replay(void)
{
	struct recorded f;
	const char *orig = test_path("orig.thaw"), *opt = test_path("opt.thaw");
	recorded_setup(&f, orig);
	/* One record per chunk touched, zero chunks included, and the snapshot named. */
	CHECK_EQ(thaw_trace_count(f.t), f.n);
	struct thaw_snapshot_info info;
	CHECK_OK(thaw_snapshot_get_info(f.s, &info));
	CHECK(thaw_trace_snapshot(f.t) && !strcmp(thaw_trace_snapshot(f.t), info.digest));
	size_t data = 0;
	for (size_t i = 0; i < f.n; i++) {
		struct thaw_chunk_info ci;
		CHECK_OK(thaw_snapshot_chunk(f.s, f.pages[i] / (CHUNK / PAGE), &ci));
		data += ci.kind != THAW_CHUNK_ZERO;
	}
	CHECK_GT(data, 10);
	char err[512];
	struct thaw_optimize_result res;
	int rc = optimize(f.s, &f.t, 1, opt, &res, err, sizeof(err));
	CHECK_MSG(rc == 0, "optimize: %s (%s)", thaw_strerror(rc), err);
	CHECK_EQ(res.chunks_ordered, f.n); /* zero chunks too: their touches fault as well */
	CHECK(strcmp(res.digest, info.digest) != 0);

	/* Replay: once the prefetch is in, the same touches do not fault at all. */
	struct thaw_snapshot *so = open_snap(opt);
	struct thaw_stats st;
	replay(so, f.pages, f.n, f.src, &st);
	CHECK_EQ(st.prefetch_chunks, f.n);
	CHECK_EQ(st.faults, 0);
	CHECK_EQ(st.faults_unlisted, 0);
	CHECK_EQ(st.pages_prefetch, f.n * (CHUNK / PAGE)); /* whole chunks, zero ones included */
	CHECK_EQ(st.pages_zero, (f.n - data) * (CHUNK / PAGE));
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
	struct thaw_optimize_result res;
	CHECK_OK(optimize(f.s, &f.t, 1, opt, &res, err, sizeof(err)));
	struct thaw_snapshot *so = open_snap(opt);
	same_content(f.s, so);
	struct thaw_snapshot_info a, b;
	CHECK_OK(thaw_snapshot_get_info(f.s, &a));
	CHECK_OK(thaw_snapshot_get_info(so, &b));
	CHECK_EQ(b.stored_bytes, a.stored_bytes);
	CHECK_GT(a.chunks_by_kind[THAW_CHUNK_DUP], 0);
	CHECK_EQ(b.prefetch_count, res.chunks_ordered);
	CHECK(!strcmp(b.digest, res.digest));
	/* The working set is one range at the front of the data, in first-touch order. */
	uint64_t *order;
	struct thaw__fmt_header h = file_header(opt, &order);
	uint64_t at = h.data_off;
	for (uint64_t i = 0; i < h.prefetch_count; i++) {
		struct thaw_chunk_info ci;
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
	struct thaw_region_info ra, rb;
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
	struct thaw_stats st;
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
	struct thaw_snapshot_info io;
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
	struct thaw_snapshot_info is;
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
		struct thaw_chunk_info ci;
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
	struct thaw_snapshot_info is;
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
	struct thaw__fmt_header h = file_header(opt, &order);
	const uint64_t want[] = { data[5], data[3], data[0], data[1] };
	CHECK_EQ(h.prefetch_count, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(order[i], want[i]);
	free(order);
	struct thaw_snapshot *so = open_snap(opt);
	same_content(s, so);
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
	CHECK_OK(optimize(f.s, &f.t, 1, opt, NULL, err, sizeof(err)));
	struct stat stt;
	CHECK_OK(stat(opt, &stt));
	size_t len = (size_t)stt.st_size;
	unsigned char *good = malloc(len), *c = malloc(len);
	int fd = open(opt, O_RDONLY);
	CHECK_EQ(read(fd, good, len), (ssize_t)len);
	close(fd);
	struct thaw__fmt_header *h = (struct thaw__fmt_header *)c;
#define ENTRY(k) (*(uint64_t *)(c + h->prefetch_off + 8 * (k)))
	struct {
		const char *what;
		int edit;
	} cases[] = {
		{ "chunk 128 is not below header.chunk_count", 0 },
		{ "is listed twice", 2 },
		{ "header.prefetch_count: 0 is outside", 3 },
		{ "header.prefetch_count: 129 is outside", 4 },
		{ "header.prefetch_off", 5 },
		{ "header.prefetch_off: 8 must be 0 without", 6 },
		{ "header.flags", 7 },
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
			h->prefetch_count = 0;
			break;
		case 4:
			h->prefetch_count = LEN / CHUNK + 1;
			break;
		case 5:
			h->prefetch_off += 4;
			break;
		case 6:
			h->flags = 0;
			h->prefetch_off = 8;
			h->prefetch_count = 0;
			break;
		case 7:
			h->flags |= 1u << 30;
			break;
		}
		reseal(c, len, bad);
		expect_refused(bad, cases[k].what);
	}
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
	CHECK_MSG(strstr(out, "prefetch"), "info: %s", out);
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
	struct thaw_optimize_result res;
	CHECK_OK(optimize(f.s, &f.t, 1, httpd_file(&hd, "opt.thaw"), &res, err, sizeof(err)));
	struct thaw_snapshot *so = open_snap(httpd_url(&hd, "/opt.thaw"));
	struct thaw_stats st;
	replay(so, f.pages, f.n, f.src, &st);
	/* A few large ranges, not one request per chunk. */
	CHECK_LE(st.http_requests, 1 + res.stored_bytes / (256u << 10) + 4);
	CHECK_LT(st.http_requests, res.chunks_ordered);
	thaw_snapshot_close(so);
	httpd_stop(&hd);
	recorded_free(&f);
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
};

TEST_MAIN(cases)
