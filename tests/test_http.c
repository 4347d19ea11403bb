/* SPDX-License-Identifier: MIT */
/*
 * The HTTP store against real servers on loopback: nginx, a fault-injecting
 * server (tests/faulty_http.py) and s3rver. Covers open, info/verify/extract
 * from a URL, lazy restores under concurrent faults, coalescing, the fault
 * lane's independence from background transfers, retries through server
 * restarts and injected failures, pinning against a replaced object,
 * mirrors, SigV4 signing, custom headers, TLS, and poisoning when every
 * retry is exhausted.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thaw.h"
#include "fixture.h"
#include "httpd.h"
#include "testlib.h"
#include "store/store.h"
#include "uffd/engine.h"

/*
 * Test allocations live until the case's process exits; they are kept
 * reachable from here so leak checkers (make asan) report only the library's.
 */
static void *kept[4096];
static size_t nkept;

static void *keep(void *p)
{
	CHECK(p);
	if (nkept < sizeof(kept) / sizeof(kept[0]))
		kept[nkept++] = p;
	return p;
}

#define tmalloc(n)     keep(malloc(n))
#define tcalloc(n, sz) keep(calloc(n, sz))

#define PAGE  4096u
#define CHUNK (64u << 10)
#define ADDR  0x200000000ull

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

/* Memory that looks like a process image: zero, repeated, text-like and random pages. */
static unsigned char *make_source(size_t len, uint64_t seed)
{
	unsigned char *p =
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	for (size_t off = 0; off < len; off += PAGE) {
		size_t page = off / PAGE;
		switch ((page * 7 + seed) % 6) {
		case 0:
			break;
		case 1:
			memset(p + off, (int)((page + seed) & 0xff), PAGE);
			break;
		case 2:
			for (size_t i = 0; i < PAGE; i++)
				p[off + i] = "lazy pages arrive over http on first touch "
					[(i + page + seed) % 43];
			break;
		default:
			test_fill_random(p + off, PAGE, seed * 1000003 + page);
		}
	}
	/* Some whole zero chunks, as real images have. */
	if (len >= (2u << 20))
		memset(p + len / 4, 0, 4 * CHUNK);
	return p;
}

static void write_snapshot(const char *path, const void *mem, size_t len)
{
	struct thaw_region_desc d = { .addr = ADDR,
				      .len = len,
				      .prot = PROT_READ | PROT_WRITE,
				      .name = "http-test",
				      .mem = mem,
				      .fd = -1 };
	CHECK_OK(fixture_write_snapshot(path, &d, 1, CHUNK));
}

/* A snapshot of len bytes written at path; returns its source memory. */
static unsigned char *snapshot_at(const char *path, size_t len, uint64_t seed)
{
	unsigned char *src = make_source(len, seed);
	write_snapshot(path, src, len);
	return src;
}

/* Log lines collected for assertions on what the library reported. */
struct logbuf {
	pthread_mutex_t lock;
	char text[1 << 20];
	size_t len;
};

static void log_collect(enum thaw_log_level level, const char *msg, void *ctx)
{
	struct logbuf *lb = ctx;
	pthread_mutex_lock(&lb->lock);
	int n = snprintf(lb->text + lb->len, sizeof(lb->text) - lb->len, "%d %s\n", (int)level,
			 msg);
	if (n > 0 && lb->len + (size_t)n < sizeof(lb->text))
		lb->len += (size_t)n;
	pthread_mutex_unlock(&lb->lock);
	if (getenv("THAW_TEST_VERBOSE"))
		fprintf(stderr, "log %d: %s\n", (int)level, msg);
}

static bool log_has(struct logbuf *lb, const char *needle)
{
	pthread_mutex_lock(&lb->lock);
	bool found = strstr(lb->text, needle) != NULL;
	pthread_mutex_unlock(&lb->lock);
	return found;
}

static struct logbuf *logbuf_new(void)
{
	struct logbuf *lb = tcalloc(1, sizeof(*lb));
	CHECK(lb);
	pthread_mutex_init(&lb->lock, NULL);
	return lb;
}

struct opener {
	struct thaw_open_opts oo;
	char err[512];
	struct logbuf *log;
};

static void opener_init(struct opener *o)
{
	memset(o, 0, sizeof(*o));
	o->log = logbuf_new();
	o->oo = (struct thaw_open_opts){ .sz = sizeof(o->oo),
					 .log_fn = log_collect,
					 .log_ctx = o->log,
					 .err_buf = o->err,
					 .err_buf_size = sizeof(o->err) };
}

static struct thaw_snapshot *open_ok(struct opener *o, const char *uri)
{
	struct thaw_snapshot *s = NULL;
	int r = thaw_snapshot_open(uri, &o->oo, &s);
	CHECK_MSG(r == 0, "open %s: %s (%s)", uri, thaw_strerror(r), o->err);
	return s;
}

/* The set-up most cases share: a server holding a snapshot of len bytes of
 * fresh memory (seed) as s.thaw, and an opener. Returns that memory. */
static unsigned char *nginx_snapshot(struct httpd *h, struct opener *o, size_t len, uint64_t seed)
{
	httpd_start(h, test_tmpdir());
	opener_init(o);
	return snapshot_at(httpd_file(h, "s.thaw"), len, seed);
}

/* The same from the fault-injecting server, which serves the test directory. */
static unsigned char *faulty_snapshot(struct faulty *f, struct opener *o, size_t len, uint64_t seed)
{
	faulty_start(f, test_tmpdir(), "");
	opener_init(o);
	return snapshot_at(test_path("s.thaw"), len, seed);
}

static uint64_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	uint64_t n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static const char *nginx_access_log(const struct httpd *h)
{
	static char p[600];
	snprintf(p, sizeof(p), "%s/access.log", h->prefix);
	return p;
}

/* Copy a file (to put the same snapshot under another name or server). */
static void copy_file(const char *from, const char *to)
{
	char out[512];
	CHECK_EQ(test_run(out, sizeof(out), "cp '%s' '%s'", from, to), 0);
}

/* Where chunk i's stored bytes begin (to aim injected faults at it). */
static uint64_t chunk_offset(struct thaw_snapshot *s, uint64_t i)
{
	struct thaw_chunk_info ci = { .sz = sizeof(ci) };
	CHECK_OK(thaw_snapshot_chunk(s, i, &ci));
	return ci.stored_off;
}

/* A stored (non-zero) chunk at or after i. */
static uint64_t stored_chunk_from(struct thaw_snapshot *s, uint64_t i)
{
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	for (; i < in.chunk_count; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(s, i, &ci));
		if (ci.kind == THAW_CHUNK_ZSTD || ci.kind == THAW_CHUNK_RAW)
			return i;
	}
	test_fail(__FILE__, __LINE__, "no stored chunk from %llu", (unsigned long long)i);
}

/* ------------------------------------------------------------------ */
/* Touching restored memory                                            */
/* ------------------------------------------------------------------ */

struct toucher {
	const volatile unsigned char *dst;
	const unsigned char *src;
	size_t pages;
	uint64_t seed;
	size_t mismatches;
	pthread_barrier_t *start; /* when set, every toucher starts at once */
};

static void *touch_random(void *arg)
{
	struct toucher *t = arg;
	if (t->start)
		pthread_barrier_wait(t->start);
	uint64_t x = t->seed | 1;
	for (size_t i = 0; i < t->pages / 2; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Every thread also hits page 0 now and then, so one chunk faults at once. */
		size_t page = i % 32 == 0 ? 0 : x % t->pages;
		size_t at = page * PAGE + (x >> 40) % PAGE;
		if (t->dst[at] != t->src[at])
			t->mismatches++;
	}
	return NULL;
}

static struct thaw_restore *restore_start(struct thaw_snapshot *s, unsigned flags)
{
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = flags };
	struct thaw_restore *r = NULL;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	return r;
}

static void restore_end(struct thaw_restore *r, void *dst, size_t len)
{
	thaw_restore_free(r);
	munmap(dst, len);
}

/* ------------------------------------------------------------------ */
/* Stream harness: the store's asynchronous side on a real engine ring */
/* ------------------------------------------------------------------ */

struct hreq {
	struct thaw__store_req req;
	struct harness *h;
	bool done;
	int err;
	uint64_t t_submit, t_done;
};

struct harness {
	struct thaw__logger log;
	struct thaw__engine *e;
	struct thaw__store *store;
	struct thaw__store_stream *st;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hreq *todo[64];
	int ntodo;
	struct thaw_stats final;
	bool closed;
};

static void h_done(struct thaw__store_req *req, int err)
{
	struct hreq *r = (struct hreq *)req;
	pthread_mutex_lock(&r->h->lock);
	r->done = true;
	r->err = err;
	r->t_done = test_now_ns();
	pthread_cond_broadcast(&r->h->cond);
	pthread_mutex_unlock(&r->h->lock);
}

static int h_start(void *ctx, struct thaw__engine *e)
{
	struct harness *h = ctx;
	return h->store->ops->stream_open(h->store, e, &h->st);
}

static void h_fault(void *ctx, uint64_t addr, uint64_t flags)
{
}

static void h_tick(void *ctx)
{
	struct harness *h = ctx;
	struct hreq *batch[64];
	pthread_mutex_lock(&h->lock);
	int n = h->ntodo;
	memcpy(batch, h->todo, sizeof(batch[0]) * (size_t)n);
	h->ntodo = 0;
	pthread_mutex_unlock(&h->lock);
	for (int i = 0; i < n; i++) {
		batch[i]->t_submit = test_now_ns();
		int err = h->store->ops->submit(h->st, &batch[i]->req);
		if (err)
			h_done(&batch[i]->req, err);
	}
}

static void h_stop(void *ctx)
{
	struct harness *h = ctx;
	if (!h->st)
		return;
	pthread_mutex_lock(&h->lock);
	h->store->ops->stream_stats(h->st, &h->final);
	h->closed = true;
	pthread_mutex_unlock(&h->lock);
	h->store->ops->stream_close(h->st);
}

static const struct thaw__engine_ops harness_ops = {
	.start = h_start, .fault = h_fault, .tick = h_tick, .stop = h_stop
};

static struct harness *harness_open(const char *url, struct opener *o)
{
	struct harness *h = tcalloc(1, sizeof(*h));
	CHECK(h);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	thaw__logger_init(&h->log, log_collect, o->log);
	int r = thaw__store_http_open(url, &o->oo, &h->log, &h->store, o->err, sizeof(o->err));
	CHECK_MSG(r == 0, "store open %s: %s (%s)", url, thaw_strerror(r), o->err);
	struct thaw__engine_opts eo = { .ops = &harness_ops, .ctx = h, .log = &h->log, .uffd = -1 };
	r = thaw__engine_new(&eo, &h->e);
	if (r == -EPERM || r == -ENOSYS)
		test_skip("userfaultfd not available: %s", thaw_strerror(r));
	CHECK_OK(r);
	CHECK_OK(thaw__engine_run(h->e));
	return h;
}

static struct hreq *hsubmit_attempt(struct harness *h, uint64_t off, uint32_t len,
				    enum thaw__lane lane, uint32_t attempt)
{
	struct hreq *r = tcalloc(1, sizeof(*r));
	CHECK(r);
	r->h = h;
	r->req.off = off;
	r->req.len = len;
	r->req.buf = tmalloc(len);
	CHECK(r->req.buf);
	memset(r->req.buf, 0xEE, len);
	r->req.lane = lane;
	r->req.attempt = attempt;
	r->req.done = h_done;
	pthread_mutex_lock(&h->lock);
	CHECK(h->ntodo < 64);
	h->todo[h->ntodo++] = r;
	pthread_mutex_unlock(&h->lock);
	thaw__engine_notify(h->e);
	return r;
}

static struct hreq *hsubmit(struct harness *h, uint64_t off, uint32_t len, enum thaw__lane lane)
{
	return hsubmit_attempt(h, off, len, lane, 0);
}

/* Wait for r; returns its error, or -ETIMEDOUT. */
static int hwait(struct hreq *r, int timeout_ms)
{
	struct harness *h = r->h;
	uint64_t deadline = test_now_ns() + (uint64_t)timeout_ms * 1000000u;
	pthread_mutex_lock(&h->lock);
	while (!r->done && test_now_ns() < deadline) {
		pthread_mutex_unlock(&h->lock);
		usleep(1000);
		pthread_mutex_lock(&h->lock);
	}
	int err = r->done ? r->err : -ETIMEDOUT;
	pthread_mutex_unlock(&h->lock);
	return err;
}

static void hstats(struct harness *h, struct thaw_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&h->lock);
	if (h->closed)
		*st = h->final;
	else
		h->store->ops->stream_stats(h->st, st);
	pthread_mutex_unlock(&h->lock);
}

static void harness_close(struct harness *h)
{
	thaw__engine_request_stop(h->e);
	CHECK_OK(thaw__engine_join(h->e));
	thaw__engine_free(h->e);
	thaw__store_close(h->store);
}

/* The file's bytes at [off, off+len) as the server should send them. */
static unsigned char *file_bytes(const char *path, uint64_t off, size_t len)
{
	unsigned char *b = tmalloc(len);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, b, len, (off_t)off), (ssize_t)len);
	close(fd);
	return b;
}

static void random_file(const char *path, size_t len, uint64_t seed)
{
	unsigned char *b = malloc(len);
	CHECK(b);
	test_fill_random(b, len, seed);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, b, len), (ssize_t)len);
	close(fd);
	free(b);
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

/* Open reads the header and tables with one request; info and chunks equal the local file's. */
static int open_and_read(void)
{
	const size_t len = 8u << 20;
	struct httpd h;
	struct opener o;
	unsigned char *src = nginx_snapshot(&h, &o, len, 1);
	uint64_t before = count_lines(nginx_access_log(&h));
	struct thaw_snapshot *s = open_ok(&o, httpd_url(&h, "s.thaw"));
	usleep(50000); /* nginx logs a request when its connection is done with it */
	CHECK_EQ(count_lines(nginx_access_log(&h)) - before, 1);
	struct thaw_snapshot *local = open_ok(&o, httpd_file(&h, "s.thaw"));
	struct thaw_snapshot_info a = { .sz = sizeof(a) }, b = { .sz = sizeof(b) };
	CHECK_OK(thaw_snapshot_get_info(s, &a));
	CHECK_OK(thaw_snapshot_get_info(local, &b));
	CHECK(!strcmp(a.digest, b.digest));
	CHECK_EQ(a.file_size, b.file_size);
	CHECK_EQ(a.chunk_count, b.chunk_count);
	unsigned char *buf = tmalloc(CHUNK);
	for (uint64_t i = 0; i < a.chunk_count; i++) {
		ssize_t n = thaw_snapshot_read_chunk(s, i, buf, CHUNK);
		CHECK_MSG(n == CHUNK, "chunk %llu: %zd (%s)", (unsigned long long)i, n,
			  thaw_strerror((int)n));
		CHECK(!memcmp(buf, src + i * CHUNK, CHUNK));
	}
	thaw_snapshot_close(local);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	return 0;
}

/* 404 and 403 at open fail at once with the status in the message; no server → network error. */
static int open_errors(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	mkdir(httpd_file(&h, "forbidden"), 0755);
	snapshot_at(httpd_file(&h, "forbidden/s.thaw"), 1u << 20, 2);
	struct opener o;
	opener_init(&o);
	struct thaw_snapshot *s = NULL;
	uint64_t t0 = test_now_ns();
	int r = thaw_snapshot_open(httpd_url(&h, "missing.thaw"), &o.oo, &s);
	CHECK_EQ(r, -THAW_E_HTTP);
	CHECK_MSG(strstr(o.err, "404 Not Found") && strstr(o.err, "missing.thaw"), "err: %s",
		  o.err);
	r = thaw_snapshot_open(httpd_url(&h, "forbidden/s.thaw"), &o.oo, &s);
	CHECK_EQ(r, -THAW_E_HTTP);
	CHECK_MSG(strstr(o.err, "403 Forbidden"), "err: %s", o.err);
	CHECK_LT((test_now_ns() - t0) / 1000000, 1000); /* not retried */

	/* Not a snapshot at all. */
	random_file(httpd_file(&h, "junk.bin"), 100000, 3);
	r = thaw_snapshot_open(httpd_url(&h, "junk.bin"), &o.oo, &s);
	CHECK_EQ(r, -THAW_E_BAD_SNAPSHOT);

	/* Nobody listening: retried, then a network error naming the URL. */
	o.oo.max_retries = 2;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/s.thaw", httpd_free_port());
	r = thaw_snapshot_open(url, &o.oo, &s);
	CHECK_EQ(r, -THAW_E_NET);
	CHECK_MSG(strstr(o.err, url), "err: %s", o.err);
	httpd_stop(&h);
	return 0;
}

/* The thaw command takes a URL wherever it takes SNAP. */
static int cli_from_url(void)
{
	const char *thaw = test_build_path("thaw");
	if (access(thaw, X_OK))
		test_skip("%s not built", thaw);
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	const size_t len = 4u << 20;
	unsigned char *src = snapshot_at(httpd_file(&h, "s.thaw"), len, 4);
	static char out[16384];
	int st = test_run(out, sizeof(out), "%s info %s", thaw, httpd_url(&h, "s.thaw"));
	CHECK_MSG(st == 0 && strstr(out, "http-test"), "thaw info: status %d: %s", st, out);
	st = test_run(out, sizeof(out), "%s verify %s", thaw, httpd_url(&h, "s.thaw"));
	CHECK_MSG(st == 0, "thaw verify: status %d: %s", st, out);
	st = test_run(out, sizeof(out), "%s extract %s -o %s", thaw, httpd_url(&h, "s.thaw"),
		      test_path("out.raw"));
	CHECK_MSG(st == 0, "thaw extract: status %d: %s", st, out);
	unsigned char *got = file_bytes(test_path("out.raw"), 0, len);
	CHECK(!memcmp(got, src, len));
	/* A corrupted copy on the server fails verify. */
	copy_file(httpd_file(&h, "s.thaw"), httpd_file(&h, "bad.thaw"));
	{
		struct opener o;
		opener_init(&o);
		struct thaw_snapshot *s = open_ok(&o, httpd_file(&h, "bad.thaw"));
		uint64_t off = chunk_offset(s, stored_chunk_from(s, 3)) + 10;
		thaw_snapshot_close(s);
		int fd = open(httpd_file(&h, "bad.thaw"), O_RDWR);
		unsigned char c;
		CHECK_EQ(pread(fd, &c, 1, (off_t)off), 1);
		c ^= 0x40;
		CHECK_EQ(pwrite(fd, &c, 1, (off_t)off), 1);
		close(fd);
	}
	st = test_run(out, sizeof(out), "%s verify %s", thaw, httpd_url(&h, "bad.thaw"));
	CHECK_MSG(st != 0, "thaw verify of a corrupted snapshot passed: %s", out);
	st = test_run(out, sizeof(out), "%s info %s", thaw, httpd_url(&h, "nope.thaw"));
	CHECK_MSG(st != 0 && strstr(out, "404"), "thaw info 404: status %d: %s", st, out);

	/* --mirror takes over from a dead first URL. */
	int dead = httpd_free_port();
	st = test_run(out, sizeof(out), "%s extract http://127.0.0.1:%d/s.thaw --mirror %s -o %s",
		      thaw, dead, httpd_url(&h, "s.thaw"), test_path("out2.raw"));
	CHECK_MSG(st == 0, "thaw extract --mirror: status %d: %s", st, out);
	got = file_bytes(test_path("out2.raw"), 0, len);
	CHECK(!memcmp(got, src, len));

	/* --header, and THAW_HTTP_HEADERS, reach a server that demands one. */
	struct faulty f;
	faulty_start(&f, h.root, "--require-header 'Authorization: Bearer sekrit'");
	st = test_run(out, sizeof(out), "%s info %s", thaw, faulty_url(&f, "s.thaw"));
	CHECK_MSG(st != 0 && strstr(out, "401"), "thaw info without the header: status %d: %s", st,
		  out);
	st = test_run(out, sizeof(out), "%s verify %s --header 'Authorization: Bearer sekrit'",
		      thaw, faulty_url(&f, "s.thaw"));
	CHECK_MSG(st == 0, "thaw verify --header: status %d: %s", st, out);
	st = test_run(out, sizeof(out),
		      "THAW_HTTP_HEADERS='Authorization: Bearer sekrit' %s info %s", thaw,
		      faulty_url(&f, "s.thaw"));
	CHECK_MSG(st == 0, "thaw info with THAW_HTTP_HEADERS: status %d: %s", st, out);
	st = test_run(out, sizeof(out), "%s info %s --header nocolon", thaw,
		      faulty_url(&f, "s.thaw"));
	CHECK_MSG(st == 2, "thaw info --header nocolon: status %d: %s", st, out);
	faulty_stop(&f);
	httpd_stop(&h);
	return 0;
}

/* A lazy restore over HTTP under concurrent faults ends byte-identical. */
static int lazy_restore(void)
{
	const size_t len = 32u << 20;
	struct httpd h;
	struct opener o;
	unsigned char *src = nginx_snapshot(&h, &o, len, 5);
	struct thaw_snapshot *s = open_ok(&o, httpd_url(&h, "s.thaw"));
	struct thaw_restore *r = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	struct toucher t[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct toucher){
			.dst = dst, .src = src, .pages = len / PAGE, .seed = 11 + (uint64_t)i
		};
		CHECK_EQ(pthread_create(&th[i], NULL, touch_random, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(t[i].mismatches, 0);
	}
	CHECK_OK(thaw_restore_wait(r, 60000));
	CHECK(!memcmp(dst, src, len));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.faults, 0);
	CHECK_EQ(st.chunks_poisoned, 0);
	CHECK_GT(st.http_requests, 0);
	/* Fully resident: every stored byte crossed the wire at least once. (Not
	 * bytes_read: a fault served from a read-ahead window in flight reads bytes
	 * the window's one transfer also brought for the background pass.) */
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	CHECK_GE(st.http_bytes, in.stored_bytes);
	CHECK_EQ(st.http_failures, 0);
	CHECK_GT(st.http_fault_p50_us, 0);
	CHECK_GE(st.http_fault_p99_us, st.http_fault_p50_us);
	CHECK_GT(st.http_bg_p50_us, 0);
	CHECK_GE(st.http_bg_p99_us, st.http_bg_p50_us);
	restore_end(r, dst, len);
	/* Keep-alive: a handful of connections carried every request. */
	char out[256];
	usleep(100000);
	CHECK_EQ(test_run(out, sizeof(out), "wc -l < '%s'; cut -d' ' -f1 '%s' | sort -u | wc -l",
			  nginx_access_log(&h), nginx_access_log(&h)),
		 0);
	unsigned long lines = 0, conns = 0;
	CHECK_EQ(sscanf(out, "%lu %lu", &lines, &conns), 2);
	CHECK_MSG(lines >= st.http_requests && conns <= 8 + 4 + 2,
		  "%lu requests over %lu connections (%llu from the stream)", lines, conns,
		  (unsigned long long)st.http_requests);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	return 0;
}

/* Adjacent missing chunks travel together: far fewer requests than chunks. */
static int coalescing(void)
{
	const size_t len = 16u << 20;
	struct httpd h;
	struct opener o;
	unsigned char *src = nginx_snapshot(&h, &o, len, 6);
	struct thaw_snapshot *s = open_ok(&o, httpd_url(&h, "s.thaw"));
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	uint64_t stored = in.chunks_by_kind[THAW_CHUNK_ZSTD] + in.chunks_by_kind[THAW_CHUNK_RAW];

	/* The background pass alone: ranges of many chunks each. */
	struct thaw_restore *r = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	CHECK_OK(thaw_restore_wait(r, 60000));
	CHECK(!memcmp(dst, src, len));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_MSG(st.http_requests * 4 < stored, "%llu requests for %llu stored chunks",
		  (unsigned long long)st.http_requests, (unsigned long long)stored);
	/* Read-ahead windows never fetch the same bytes twice (beyond a few edges). */
	CHECK_MSG(st.http_bytes < in.stored_bytes + in.stored_bytes / 10 + (1u << 20),
		  "%llu bytes over HTTP for %llu stored", (unsigned long long)st.http_bytes,
		  (unsigned long long)in.stored_bytes);
	restore_end(r, dst, len);

	/* Faults only: threads touching N adjacent chunks at once. Each round is timed
	 * by the scheduler, so the claim is on the median of 5, not the luckiest. */
	enum { N = 16, ROUNDS = 5 };
	uint64_t reqs[ROUNDS];
	for (int round = 0; round < ROUNDS; round++) {
		r = restore_start(s, THAW_RESTORE_NO_BACKGROUND);
		dst = thaw_restore_region_addr(r, 0);
		struct toucher t[N];
		pthread_t th[N];
		/* Released together: "at once" must not depend on how fast threads start
		 * (under TSan each start alone outlasts a fault). */
		pthread_barrier_t start;
		CHECK_EQ(pthread_barrier_init(&start, NULL, N), 0);
		uint64_t first = stored_chunk_from(s, 8 + (uint64_t)round * 40);
		for (int i = 0; i < N; i++) {
			t[i] = (struct toucher){ .dst = dst + (first + (uint64_t)i) * CHUNK,
						 .src = src + (first + (uint64_t)i) * CHUNK,
						 .pages = 2,
						 .seed = 1,
						 .start = &start };
		}
		for (int i = 0; i < N; i++)
			CHECK_EQ(pthread_create(&th[i], NULL, touch_random, &t[i]), 0);
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			CHECK_EQ(t[i].mismatches, 0);
		}
		pthread_barrier_destroy(&start);
		CHECK_OK(thaw_restore_stats(r, &st));
		reqs[round] = st.http_requests;
		for (int j = round; j > 0 && reqs[j - 1] > reqs[j]; j--) {
			uint64_t x = reqs[j];
			reqs[j] = reqs[j - 1];
			reqs[j - 1] = x;
		}
		restore_end(r, dst, len);
	}
	CHECK_MSG(reqs[ROUNDS / 2] < N,
		  "touching %d adjacent chunks at once cost %llu..%llu requests, median %llu", N,
		  (unsigned long long)reqs[0], (unsigned long long)reqs[ROUNDS - 1],
		  (unsigned long long)reqs[ROUNDS / 2]);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	return 0;
}

/* A fault's request does not wait behind a multi-MiB background range in flight. */
static int fault_lane_not_blocked(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	/* nginx serves /slow/ at 1 MB/s after the first 256 KiB of each reply (see httpd.c). */
	mkdir(httpd_file(&h, "slow"), 0755);
	random_file(httpd_file(&h, "slow/big.bin"), 8u << 20, 7);
	struct opener o;
	opener_init(&o);
	struct harness *hs = harness_open(httpd_url(&h, "slow/big.bin"), &o);
	struct hreq *bg = hsubmit(hs, 1u << 20, 4u << 20, THAW__LANE_BACKGROUND);
	usleep(300000); /* the background range is flowing, throttled */
	uint64_t worst = 0;
	for (int i = 0; i < 5; i++) {
		struct hreq *f =
			hsubmit(hs, (6u << 20) + (uint64_t)i * CHUNK, CHUNK, THAW__LANE_FAULT);
		CHECK_OK(hwait(f, 10000));
		uint64_t us = (f->t_done - f->t_submit) / 1000;
		worst = us > worst ? us : worst;
		unsigned char *want = file_bytes(httpd_file(&h, "slow/big.bin"), f->req.off, CHUNK);
		CHECK(!memcmp(f->req.buf, want, CHUNK));
	}
	pthread_mutex_lock(&hs->lock);
	bool bg_done = bg->done;
	pthread_mutex_unlock(&hs->lock);
	CHECK_MSG(!bg_done, "the background range finished before the faults were measured");
	CHECK_MSG(worst < 200000, "a fault waited %llu us while a background range was in flight",
		  (unsigned long long)worst);
	CHECK_OK(hwait(bg, 20000));
	unsigned char *want = file_bytes(httpd_file(&h, "slow/big.bin"), 1u << 20, 4u << 20);
	CHECK(!memcmp(bg->req.buf, want, 4u << 20));
	harness_close(hs);
	httpd_stop(&h);
	return 0;
}

/* Each lane says how urgent its requests are (RFC 9218 Priority): faults u=0, population u=7. */
static int priority_by_lane(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	random_file(httpd_file(&h, "p.bin"), 1u << 20, 5);
	struct opener o;
	opener_init(&o);
	struct harness *hs = harness_open(httpd_url(&h, "p.bin"), &o);
	CHECK_OK(hwait(hsubmit(hs, 0, CHUNK, THAW__LANE_FAULT), 10000));
	CHECK_OK(hwait(hsubmit(hs, 8 * CHUNK, CHUNK, THAW__LANE_BACKGROUND), 10000));
	harness_close(hs);
	char out[4096];
	usleep(100000);
	CHECK_EQ(test_run(out, sizeof(out), "grep '\"bytes=0-65535\"' '%s'; grep -c 'u=7' '%s'",
			  nginx_access_log(&h), nginx_access_log(&h)),
		 0);
	CHECK_MSG(strstr(out, "\"u=0\""), "the fault's GET was not marked urgent: %s", out);
	CHECK_MSG(strtoul(strchr(out, '\n') + 1, NULL, 10) >= 1,
		  "no background GET was marked u=7: %s", out);
	httpd_stop(&h);
	return 0;
}

/* Duplicate chunks name a few other chunks' bytes many times: each is fetched once. */
static int duplicates_fetched_once(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	const size_t len = 16u << 20;
	unsigned char *src = make_source(len, 24);
	/* Every other chunk a copy of one of four chunks near the start. */
	for (size_t c = 9; c < len / CHUNK; c += 2)
		memcpy(src + c * CHUNK, src + (1 + 2 * (c % 4)) * CHUNK, CHUNK);
	write_snapshot(httpd_file(&h, "s.thaw"), src, len);
	struct opener o;
	opener_init(&o);
	struct thaw_snapshot *s = open_ok(&o, httpd_url(&h, "s.thaw"));
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	CHECK_GT(in.chunks_by_kind[THAW_CHUNK_DUP], 100);
	struct thaw_restore *r = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	CHECK_OK(thaw_restore_wait(r, 60000));
	CHECK(!memcmp(dst, src, len));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_MSG(st.http_requests * 4 < in.chunks_by_kind[THAW_CHUNK_DUP],
		  "%llu GETs for %llu duplicate chunks", (unsigned long long)st.http_requests,
		  (unsigned long long)in.chunks_by_kind[THAW_CHUNK_DUP]);
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	return 0;
}

/* A fault for bytes a read-ahead window already holds costs no request. */
static int fault_from_window(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	random_file(httpd_file(&h, "obj.bin"), 8u << 20, 25);
	unsigned char *want = file_bytes(httpd_file(&h, "obj.bin"), 0, 8u << 20);
	struct opener o;
	opener_init(&o);
	struct harness *hs = harness_open(httpd_url(&h, "obj.bin"), &o);
	/* Background reading in order: the second request opens a window ahead. */
	struct hreq *a = hsubmit(hs, 1000, 20000, THAW__LANE_BACKGROUND);
	CHECK_OK(hwait(a, 10000));
	struct hreq *b = hsubmit(hs, 21000, 20000, THAW__LANE_BACKGROUND);
	CHECK_OK(hwait(b, 10000));
	CHECK(!memcmp(b->req.buf, want + 21000, 20000));
	struct thaw_stats before = { .sz = sizeof(before) }, after = { .sz = sizeof(after) };
	hstats(hs, &before);
	struct hreq *f = hsubmit(hs, 50000, 4000, THAW__LANE_FAULT);
	CHECK_OK(hwait(f, 10000));
	CHECK(!memcmp(f->req.buf, want + 50000, 4000));
	hstats(hs, &after);
	CHECK_EQ(after.http_requests, before.http_requests);
	/* Beyond every window: a request of its own. */
	f = hsubmit(hs, 6u << 20, 4000, THAW__LANE_FAULT);
	CHECK_OK(hwait(f, 10000));
	CHECK(!memcmp(f->req.buf, want + (6u << 20), 4000));
	hstats(hs, &after);
	CHECK_EQ(after.http_requests, before.http_requests + 1);
	harness_close(hs);
	httpd_stop(&h);
	return 0;
}

/* Requests queued behind busy transfers for adjacent bytes share one GET. */
static int merge_adjacent(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	mkdir(httpd_file(&h, "slow"), 0755);
	random_file(httpd_file(&h, "slow/obj.bin"), 24u << 20, 21);
	unsigned char *want = file_bytes(httpd_file(&h, "slow/obj.bin"), 0, 24u << 20);
	struct opener o;
	opener_init(&o);
	struct harness *hs = harness_open(httpd_url(&h, "slow/obj.bin"), &o);
	struct thaw_stats before = { .sz = sizeof(before) }, after = { .sz = sizeof(after) };
	hstats(hs, &before);
	/* Throttled 3 MiB ranges (more than a socket buffer holds) keep every background
	 * transfer busy for a while... */
	struct hreq *big[4];
	for (int i = 0; i < 4; i++)
		big[i] = hsubmit(hs, (8u << 20) + (uint64_t)i * (3u << 20), 3u << 20,
				 THAW__LANE_BACKGROUND);
	usleep(100000);
	/* ...so these queue, adjacent, of uneven sizes, and go out together. */
	enum { N = 40 };
	struct hreq *r[N];
	uint64_t off = 100;
	for (int i = 0; i < N; i++) {
		uint32_t len = 1000 + (uint32_t)(i * 977) % 6000;
		r[i] = hsubmit(hs, off, len, THAW__LANE_BACKGROUND);
		off += len;
	}
	for (int i = 0; i < N; i++) {
		CHECK_OK(hwait(r[i], 20000));
		CHECK_MSG(!memcmp(r[i]->req.buf, want + r[i]->req.off, r[i]->req.len),
			  "request %d: wrong bytes", i);
	}
	for (int i = 0; i < 4; i++) {
		CHECK_OK(hwait(big[i], 20000));
		CHECK(!memcmp(big[i]->req.buf, want + big[i]->req.off, big[i]->req.len));
	}
	hstats(hs, &after);
	uint64_t reqs = after.http_requests - before.http_requests;
	CHECK_MSG(reqs <= 4 + 3, "%llu GETs for 4 + %d requests", (unsigned long long)reqs, N);
	CHECK_EQ(after.http_retries, before.http_retries);
	harness_close(hs);
	httpd_stop(&h);
	return 0;
}

/* Bytes that came back bad are asked again: after a backoff, from the next mirror. */
static int resubmit_after_bad_bytes(void)
{
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	random_file(httpd_file(&h, "obj.bin"), 1u << 20, 22);
	unsigned char *want = file_bytes(httpd_file(&h, "obj.bin"), 0, 1u << 20);
	struct faulty f;
	faulty_start(&f, h.root, "");
	struct opener o;
	opener_init(&o);
	o.oo.max_retries = 2;
	const char *mirrors[] = { faulty_url(&f, "obj.bin"), NULL };
	o.oo.mirrors = mirrors;
	struct harness *hs = harness_open(httpd_url(&h, "obj.bin"), &o);
	struct thaw_stats before = { .sz = sizeof(before) }, after = { .sz = sizeof(after) };
	hstats(hs, &before);
	struct hreq *r = hsubmit_attempt(hs, 5000, 30000, THAW__LANE_FAULT, 1);
	CHECK_OK(hwait(r, 10000));
	CHECK(!memcmp(r->req.buf, want + 5000, 30000));
	CHECK_GE((r->t_done - r->t_submit) / 1000000, 40); /* the backoff */
	CHECK_EQ(faulty_stat(&f, "range_requests"), 2);	   /* the mirror's probe, then the read */
	hstats(hs, &after);
	CHECK_EQ(after.http_retries, before.http_retries + 1);
	/* The mirror served last, so it is where requests start now: attempt 2 comes round
	 * to it again. Past the budget (2 retries x 2 URLs) the read fails. */
	r = hsubmit_attempt(hs, 5000, 30000, THAW__LANE_BACKGROUND, 2);
	CHECK_OK(hwait(r, 10000));
	CHECK(!memcmp(r->req.buf, want + 5000, 30000));
	CHECK_EQ(faulty_stat(&f, "range_requests"), 3);
	r = hsubmit_attempt(hs, 5000, 30000, THAW__LANE_FAULT, 5);
	CHECK_EQ(hwait(r, 10000), -THAW_E_NET);
	harness_close(hs);
	faulty_stop(&f);
	httpd_stop(&h);
	return 0;
}

struct blocked_read {
	const volatile unsigned char *p;
	unsigned char got;
	atomic_int done;
};

static void *read_one(void *arg)
{
	struct blocked_read *b = arg;
	b->got = *b->p;
	atomic_store(&b->done, 1);
	return NULL;
}

/*
 * The server goes away mid-restore and comes back: a fault taken while it is
 * down blocks (never zero-filled, never poisoned within the retry budget) and
 * gets the right bytes once it is back. No background pass, so the fault's
 * own retries are the only ones counted.
 */
static int server_restart(void)
{
	const size_t len = 64u << 20;
	struct httpd h;
	struct opener o;
	unsigned char *src = nginx_snapshot(&h, &o, len, 8);
	struct thaw_snapshot *s = open_ok(&o, httpd_url(&h, "s.thaw"));
	struct thaw_restore *r = restore_start(s, THAW_RESTORE_NO_BACKGROUND);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	unsigned char c;
	CHECK(test_read_or_sigbus(dst + 5 * PAGE, &c, 1) && c == src[5 * PAGE]);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.http_retries, 0);
	httpd_stop(&h);

	/* Far from page 5, so no read-ahead window of that fault holds it. */
	uint64_t id = stored_chunk_from(s, 700);
	size_t at = id * CHUNK + 123;
	struct blocked_read b = { .p = dst + at };
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, read_one, &b), 0);
	sleep(1);
	CHECK_MSG(!atomic_load(&b.done), "a fault returned while the server was down");
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.http_retries, 0);
	CHECK_EQ(httpd_restart(&h), 0);
	pthread_join(th, NULL);
	CHECK_EQ(b.got, src[at]);
	CHECK(!memcmp(dst + id * CHUNK, src + id * CHUNK, CHUNK));

	/* The restore goes on as if nothing happened. */
	struct toucher t = { .dst = dst, .src = src, .pages = 64, .seed = 99 };
	touch_random(&t);
	CHECK_EQ(t.mismatches, 0);
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.chunks_poisoned, 0);
	CHECK_EQ(st.http_failures, 0);
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	return 0;
}

/* The snapshot is replaced on the server mid-restore: refused (412), never mixed in. */
static int replaced_midrestore(void)
{
	const size_t len = 8u << 20;
	struct httpd h;
	struct opener o;
	unsigned char *src = nginx_snapshot(&h, &o, len, 9);
	struct thaw_snapshot *s = open_ok(&o, httpd_url(&h, "s.thaw"));
	struct thaw_restore *r = restore_start(s, THAW_RESTORE_NO_BACKGROUND);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	unsigned char c;
	for (size_t p = 0; p < 32; p++)
		CHECK(test_read_or_sigbus(dst + p * PAGE + 7, &c, 1) && c == src[p * PAGE + 7]);

	/* A new snapshot of other memory, renamed over the old one, one second newer
	 * (nginx's ETag is the mtime in seconds and the size). */
	unsigned char *other = snapshot_at(test_path("new.thaw"), len, 10);
	struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_sec = time(NULL) + 10 } };
	CHECK_OK(utimensat(AT_FDCWD, test_path("new.thaw"), ts, 0));
	char out[256];
	CHECK_EQ(test_run(out, sizeof(out), "mv '%s' '%s'", test_path("new.thaw"),
			  httpd_file(&h, "s.thaw")),
		 0);

	size_t bus = 0, good = 0;
	for (size_t p = 64; p < len / PAGE; p += 37) {
		if (!test_read_or_sigbus(dst + p * PAGE + 9, &c, 1)) {
			bus++;
			continue;
		}
		CHECK_MSG(c == src[p * PAGE + 9] || src[p * PAGE + 9] == other[p * PAGE + 9],
			  "page %zu holds bytes of the new snapshot", p);
		good++;
	}
	CHECK_GT(bus, 0);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.chunks_poisoned, 0);
	CHECK_GT(st.http_failures, 0);
	CHECK_MSG(log_has(o.log, "changed on the server"), "log: %s", o.log->text);
	restore_end(r, dst, len);
	/* A whole restore against the replaced object ends poisoned, never "resident". */
	r = restore_start(s, 0);
	dst = thaw_restore_region_addr(r, 0);
	CHECK_EQ(thaw_restore_wait(r, 60000), -THAW_E_POISONED);
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	return 0;
}

/* Every misbehaviour the fault-injecting server produces, through the stream. */
struct fault_case {
	const char *ctl; /* query for /_ctl */
	int expect;	 /* the request's result */
	int min_retries;
	uint64_t min_ms; /* at least this long (Retry-After) */
};

static const struct fault_case fault_cases[] = {
	{ "fault=status&status=503&count=3", 0, 3, 0 },
	{ "fault=status&status=500&count=1", 0, 1, 0 },
	{ "fault=429&retry_after=1&count=1", 0, 1, 900 },
	{ "fault=short&count=2", 0, 2, 0 },
	{ "fault=long&count=1", 0, 1, 0 },
	{ "fault=wrong_range&count=1", 0, 1, 0 },
	{ "fault=close&count=2", 0, 1, 0 }, /* curl itself retries a reused connection once */
	{ "fault=stall&stall=20&count=1", 0, 1, 900 },
	{ "fault=status&status=412&count=1", -THAW_E_CHANGED, 0, 0 },
	{ "fault=status&status=404&count=1", -THAW_E_HTTP, 0, 0 },
	{ "fault=ignore_range&count=1", -THAW_E_HTTP, 0, 0 },
	{ "fault=status&status=503&count=-1", -THAW_E_HTTP, 2, 0 },
};

static int injected_faults_stream(void)
{
	struct faulty f;
	faulty_start(&f, test_tmpdir(), "");
	random_file(test_path("obj.bin"), 2u << 20, 12);
	struct opener o;
	opener_init(&o);
	o.oo.max_retries = 3;
	o.oo.low_speed_timeout_ms = 1000;
	struct harness *hs = harness_open(faulty_url(&f, "obj.bin"), &o);
	unsigned char *want = file_bytes(test_path("obj.bin"), 0, 2u << 20);
	for (size_t i = 0; i < sizeof(fault_cases) / sizeof(fault_cases[0]); i++) {
		const struct fault_case *fc = &fault_cases[i];
		CHECK_OK(faulty_ctl(&f, "clear=1", NULL, 0));
		CHECK_OK(faulty_ctl(&f, fc->ctl, NULL, 0));
		struct thaw_stats before = { .sz = sizeof(before) },
				  after = { .sz = sizeof(after) };
		hstats(hs, &before);
		uint64_t off = 4096 + i * 8192;
		enum thaw__lane lane = i % 2 ? THAW__LANE_BACKGROUND : THAW__LANE_FAULT;
		struct hreq *r = hsubmit(hs, off, 100000, lane);
		int err = hwait(r, 30000);
		hstats(hs, &after);
		uint64_t ms = (r->t_done - r->t_submit) / 1000000;
		CHECK_MSG(err == fc->expect, "%s: got %d (%s), want %d", fc->ctl, err,
			  thaw_strerror(err), fc->expect);
		if (!err)
			CHECK_MSG(!memcmp(r->req.buf, want + off, 100000), "%s: wrong bytes",
				  fc->ctl);
		CHECK_MSG(after.http_retries - before.http_retries >= (uint64_t)fc->min_retries,
			  "%s: %llu retries", fc->ctl,
			  (unsigned long long)(after.http_retries - before.http_retries));
		if (fc->expect == -THAW_E_CHANGED || fc->expect == -THAW_E_HTTP)
			CHECK_MSG(after.http_failures == before.http_failures + 1,
				  "%s: failures not counted", fc->ctl);
		if (fc->expect == -THAW_E_CHANGED)
			CHECK_EQ(after.http_retries,
				 before.http_retries); /* 412 is never retried */
		CHECK_MSG(ms >= fc->min_ms, "%s: took %llu ms", fc->ctl, (unsigned long long)ms);
	}
	harness_close(hs);
	faulty_stop(&f);
	return 0;
}

/* The same through the synchronous reads (open, info, verify, extract). */
static int injected_faults_sync(void)
{
	const size_t len = 4u << 20;
	struct faulty f;
	struct opener o;
	unsigned char *src = faulty_snapshot(&f, &o, len, 13);
	o.oo.max_retries = 3;
	o.oo.low_speed_timeout_ms = 1000;
	/* The open request itself survives two 503s. */
	CHECK_OK(faulty_ctl(&f, "fault=status&status=503&count=2", NULL, 0));
	struct thaw_snapshot *s = open_ok(&o, faulty_url(&f, "s.thaw"));
	unsigned char *buf = tmalloc(CHUNK);
	const char *kinds[] = { "fault=status&status=502&count=2", "fault=short&count=1",
				"fault=wrong_range&count=1",	   "fault=long&count=1",
				"fault=429&retry_after=1&count=1", "fault=stall&stall=20&count=1" };
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		uint64_t id = stored_chunk_from(s, 5 + k * 3);
		CHECK_OK(faulty_ctl(&f, "clear=1", NULL, 0));
		CHECK_OK(faulty_ctl(&f, kinds[k], NULL, 0));
		long faults = faulty_stat(&f, "faults");
		ssize_t n = thaw_snapshot_read_chunk(s, id, buf, CHUNK);
		CHECK_MSG(n == CHUNK, "%s: %zd (%s)", kinds[k], n, thaw_strerror((int)n));
		CHECK(!memcmp(buf, src + id * CHUNK, CHUNK));
		CHECK_MSG(faulty_stat(&f, "faults") == faults + (k == 0 ? 2 : 1),
			  "%s: fault not served", kinds[k]);
	}
	/* A flipped byte is caught by the chunk's hash, never returned. */
	uint64_t id = stored_chunk_from(s, 40);
	CHECK_OK(faulty_ctl(&f, "clear=1", NULL, 0));
	CHECK_OK(faulty_ctl(&f, "fault=flip&count=1", NULL, 0));
	/* Within the retry budget the bad reply is read again: the caller sees good bytes. */
	long faults = faulty_stat(&f, "faults");
	ssize_t n = thaw_snapshot_read_chunk(s, id, buf, CHUNK);
	CHECK_MSG(n == CHUNK, "flip: %zd (%s)", n, thaw_strerror((int)n));
	CHECK(!memcmp(buf, src + id * CHUNK, CHUNK));
	CHECK_EQ(faulty_stat(&f, "faults"), faults + 1);
	thaw_snapshot_close(s);
	faulty_stop(&f);
	return 0;
}

/* A flipped byte in a reply during a restore: refetched, the memory stays right. */
static int flipped_byte_restore(void)
{
	const size_t len = 8u << 20;
	struct faulty f;
	struct opener o;
	unsigned char *src = faulty_snapshot(&f, &o, len, 14);
	struct thaw_snapshot *s = open_ok(&o, faulty_url(&f, "s.thaw"));
	uint64_t id = stored_chunk_from(s, 20);
	char q[128];
	snprintf(q, sizeof(q), "fault=flip&count=1&match=%llu",
		 (unsigned long long)chunk_offset(s, id) + 100);
	CHECK_OK(faulty_ctl(&f, q, NULL, 0));
	struct thaw_restore *r = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	CHECK_OK(thaw_restore_wait(r, 60000));
	CHECK(!memcmp(dst, src, len));
	CHECK_EQ(faulty_stat(&f, "faults"), 1);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.chunks_poisoned, 0);
	restore_end(r, dst, len);
	thaw_snapshot_close(s);

	/* The first URL corrupts that chunk every time: the refetch goes to the mirror. */
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	copy_file(test_path("s.thaw"), httpd_file(&h, "s.thaw"));
	const char *mirrors[] = { httpd_url(&h, "s.thaw"), NULL };
	o.oo.mirrors = mirrors;
	s = open_ok(&o, faulty_url(&f, "s.thaw"));
	snprintf(q, sizeof(q), "fault=flip&count=-1&match=%llu",
		 (unsigned long long)chunk_offset(s, id) + 100);
	CHECK_OK(faulty_ctl(&f, q, NULL, 0));
	r = restore_start(s, 0);
	dst = thaw_restore_region_addr(r, 0);
	CHECK_OK(thaw_restore_wait(r, 60000));
	CHECK(!memcmp(dst, src, len));
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.chunks_poisoned, 0);
	CHECK_GE(st.http_retries, 1);
	CHECK_GE(faulty_stat(&f, "faults"), 2);
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	httpd_stop(&h);
	faulty_stop(&f);
	return 0;
}

/* The first URL is dead: a mirror serves open and the restore. */
static int mirror_takeover(void)
{
	const size_t len = 8u << 20;
	struct httpd h;
	struct opener o;
	unsigned char *src = nginx_snapshot(&h, &o, len, 15);
	o.oo.max_retries = 1;
	char dead[128];
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/s.thaw", httpd_free_port());
	const char *mirrors[] = { httpd_url(&h, "s.thaw"), NULL };
	o.oo.mirrors = mirrors;
	struct thaw_snapshot *s = open_ok(&o, dead);
	struct thaw_restore *r = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	CHECK_OK(thaw_restore_wait(r, 60000));
	CHECK(!memcmp(dst, src, len));
	restore_end(r, dst, len);
	thaw_snapshot_close(s);

	/* The primary dies mid-restore: the mirror (another server) takes over. */
	struct faulty f;
	faulty_start(&f, h.root, "");
	const char *mirrors2[] = { faulty_url(&f, "s.thaw"), NULL };
	o.oo.mirrors = mirrors2;
	s = open_ok(&o, httpd_url(&h, "s.thaw"));
	r = restore_start(s, THAW_RESTORE_NO_BACKGROUND);
	dst = thaw_restore_region_addr(r, 0);
	unsigned char c;
	CHECK(test_read_or_sigbus(dst + 3 * PAGE, &c, 1) && c == src[3 * PAGE]);
	httpd_stop(&h);
	for (size_t p = 0; p < len / PAGE; p += 13)
		CHECK(test_read_or_sigbus(dst + p * PAGE + 1, &c, 1) && c == src[p * PAGE + 1]);
	CHECK_GT(faulty_stat(&f, "range_requests"), 0);
	restore_end(r, dst, len);
	thaw_snapshot_close(s);

	/* A mirror holding a different object is never used. */
	snapshot_at(test_path("other.thaw"), len, 16);
	CHECK_EQ(httpd_restart(&h), 0);
	mkdir(test_path("w2"), 0755);
	copy_file(test_path("other.thaw"), test_path("w2/s.thaw"));
	faulty_stop(&f);
	faulty_start(&f, test_path("w2"), "");
	const char *mirrors3[] = { faulty_url(&f, "s.thaw"), NULL };
	o.oo.mirrors = mirrors3;
	s = open_ok(&o, httpd_url(&h, "s.thaw"));
	r = restore_start(s, THAW_RESTORE_NO_BACKGROUND);
	dst = thaw_restore_region_addr(r, 0);
	CHECK(test_read_or_sigbus(dst + 3 * PAGE, &c, 1) && c == src[3 * PAGE]);
	httpd_stop(&h);
	size_t bus = 0;
	for (size_t p = 64; p < len / PAGE; p += 97) {
		if (!test_read_or_sigbus(dst + p * PAGE + 1, &c, 1))
			bus++;
		else
			CHECK_EQ(c, src[p * PAGE + 1]);
	}
	CHECK_GT(bus, 0);
	CHECK_MSG(log_has(o.log, "not the snapshot's object"), "log: %s", o.log->text);
	CHECK_EQ(faulty_stat(&f, "range_requests"), 1); /* one probe, never data */
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	faulty_stop(&f);
	return 0;
}

/* Every retry exhausted: that chunk alone is poisoned (SIGBUS), the rest is right. */
static int poison_after_retries(void)
{
	const size_t len = 4u << 20;
	struct faulty f;
	struct opener o;
	unsigned char *src = faulty_snapshot(&f, &o, len, 17);
	o.oo.max_retries = 2;
	struct thaw_snapshot *s = open_ok(&o, faulty_url(&f, "s.thaw"));
	uint64_t bad = stored_chunk_from(s, 10);
	char q[128];
	snprintf(q, sizeof(q), "fault=status&status=503&count=-1&match=%llu",
		 (unsigned long long)chunk_offset(s, bad) + 1);
	CHECK_OK(faulty_ctl(&f, q, NULL, 0));
	struct thaw_restore *r = restore_start(s, THAW_RESTORE_NO_BACKGROUND);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	unsigned char c;
	CHECK_MSG(!test_read_or_sigbus(dst + bad * CHUNK + PAGE + 5, &c, 1),
		  "a page of the failed chunk read 0x%02x", c);
	CHECK_EQ(test_child_touch(dst + bad * CHUNK + 5), SIGBUS);
	for (size_t p = 0; p < len / PAGE; p++) {
		if (p / (CHUNK / PAGE) == bad)
			continue;
		CHECK_MSG(test_read_or_sigbus(dst + p * PAGE + 33, &c, 1), "page %zu raised SIGBUS",
			  p);
		CHECK_EQ(c, src[p * PAGE + 33]);
	}
	CHECK(!memcmp(dst, src, bad * CHUNK));
	CHECK(!memcmp(dst + (bad + 1) * CHUNK, src + (bad + 1) * CHUNK, len - (bad + 1) * CHUNK));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_EQ(st.chunks_poisoned, 1);
	CHECK_GE(st.http_failures, 1);
	CHECK_GE(st.http_retries, 2);
	CHECK_MSG(log_has(o.log, "every retry and mirror"), "log: %s", o.log->text);
	CHECK_MSG(log_has(o.log, "poisoned"), "log: %s", o.log->text);
	CHECK_EQ(thaw_restore_wait(r, 1000), -THAW_E_POISONED); /* every page was touched */
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	faulty_stop(&f);
	return 0;
}

/* A background read-ahead window that cannot be had costs only the chunks behind the bad bytes. */
static int window_failure_contained(void)
{
	struct faulty f;
	faulty_start(&f, test_tmpdir(), "");
	/* Every fourth chunk zero: the restore asks for runs of at most three chunks, which
	 * read-ahead serves from large windows. */
	const size_t len = 16u << 20;
	unsigned char *src = make_source(len, 23);
	for (size_t c = 0; c < len / CHUNK; c += 4)
		memset(src + c * CHUNK, 0, CHUNK);
	write_snapshot(test_path("s.thaw"), src, len);
	struct opener o;
	opener_init(&o);
	o.oo.max_retries = 1;
	struct thaw_snapshot *s = open_ok(&o, faulty_url(&f, "s.thaw"));
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	uint64_t bad = stored_chunk_from(s, in.chunk_count / 2);
	char q[128];
	snprintf(q, sizeof(q), "fault=status&status=503&count=-1&match=%llu",
		 (unsigned long long)chunk_offset(s, bad) + 7);
	CHECK_OK(faulty_ctl(&f, q, NULL, 0));
	struct thaw_restore *r = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(r, 0);
	CHECK_EQ(thaw_restore_wait(r, 60000), -THAW_E_POISONED);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GE(st.chunks_poisoned, 1);
	/* 64 runs of three chunks went out as far fewer GETs (windows), retries and the
	 * halving of the failed range included. */
	CHECK_LT(st.http_requests, 48);
	CHECK_MSG(st.chunks_poisoned <= 3, "%llu chunks poisoned for one bad range",
		  (unsigned long long)st.chunks_poisoned);
	uint64_t bus = 0;
	for (uint64_t c = 0; c < in.chunk_count; c++) {
		unsigned char b;
		if (!test_read_or_sigbus(dst + c * CHUNK, &b, 1)) {
			bus++;
			continue;
		}
		CHECK_MSG(!memcmp(dst + c * CHUNK, src + c * CHUNK, CHUNK), "chunk %llu differs",
			  (unsigned long long)c);
	}
	CHECK_EQ(bus, st.chunks_poisoned);
	unsigned char b;
	CHECK(!test_read_or_sigbus(dst + bad * CHUNK + 100, &b, 1));
	restore_end(r, dst, len);
	thaw_snapshot_close(s);
	faulty_stop(&f);
	return 0;
}

/*
 * SigV4 through curl's signing. s3rver (an S3-compatible store) serves the
 * signed restore and refuses an unknown access key; it does not verify V4
 * signatures themselves (s3rver 3.7 leaves that unimplemented): sigv4_signing
 * checks those.
 */
static int sigv4_s3(void)
{
	struct s3server s3;
	s3_start(&s3, test_tmpdir(), "snaps");
	const size_t len = 4u << 20;
	unsigned char *src = snapshot_at(test_path("s.thaw"), len, 18);
	CHECK_OK(s3_put(&s3, "snaps", "dir/s.thaw", test_path("s.thaw")));
	char url[256];
	snprintf(url, sizeof(url), "%s/snaps/dir/s.thaw", s3.base);
	struct opener o;
	opener_init(&o);
	o.oo.aws_sigv4 = "aws:us-east-1:s3";
	struct thaw_snapshot *s = NULL;

	setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY", 1);
	setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY, 1);
	int r = thaw_snapshot_open(url, &o.oo, &s);
	CHECK_MSG(r == -THAW_E_HTTP && strstr(o.err, "403 Forbidden"), "unknown key: %d %s", r,
		  o.err);

	setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY, 1);
	s = open_ok(&o, url);
	struct thaw_restore *rs = restore_start(s, 0);
	unsigned char *dst = thaw_restore_region_addr(rs, 0);
	CHECK_OK(thaw_restore_wait(rs, 60000));
	CHECK(!memcmp(dst, src, len));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(rs, &st));
	CHECK_EQ(st.http_failures, 0);
	restore_end(rs, dst, len);
	thaw_snapshot_close(s);
	s3_stop(&s3);
	return 0;
}

/*
 * The signatures themselves, against tests/faulty_http.py --sigv4, which
 * recomputes every one: needs only python, so it runs where s3rver is missing.
 */
static int sigv4_signing(void)
{
	const size_t len = 4u << 20;
	unsigned char *src = snapshot_at(test_path("s.thaw"), len, 18);
	struct opener o;
	opener_init(&o);
	o.oo.aws_sigv4 = "aws:us-east-1:s3";
	struct thaw_snapshot *s = NULL;
	int r;
	setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY, 1);
	setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY, 1);
	/* Right secret works, a wrong one gets 403. */
	struct faulty f;
	faulty_start(&f, test_tmpdir(), "--sigv4 " S3_ACCESS_KEY ":" S3_SECRET_KEY);
	s = open_ok(&o, faulty_url(&f, "s.thaw"));
	unsigned char buf[CHUNK];
	uint64_t id = stored_chunk_from(s, 3);
	CHECK_EQ(thaw_snapshot_read_chunk(s, id, buf, CHUNK), CHUNK);
	CHECK(!memcmp(buf, src + id * CHUNK, CHUNK));
	thaw_snapshot_close(s);
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret", 1);
	r = thaw_snapshot_open(faulty_url(&f, "s.thaw"), &o.oo, &s);
	CHECK_MSG(r == -THAW_E_HTTP && strstr(o.err, "403 Forbidden"), "wrong secret: %d %s", r,
		  o.err);
	o.oo.aws_sigv4 = NULL;
	r = thaw_snapshot_open(faulty_url(&f, "s.thaw"), &o.oo, &s);
	CHECK_MSG(r == -THAW_E_HTTP && strstr(o.err, "403"), "unsigned: %d %s", r, o.err);
	o.oo.aws_sigv4 = "aws:us-east-1:s3";

	/* The command line, as the README writes it: thaw bench URL --aws-sigv4 ... */
	const char *thaw = test_build_path("thaw");
	static char out[16384];
	setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY, 1);
	int st = test_run(out, sizeof(out),
			  "%s bench %s --aws-sigv4 aws:eu-west-1:s3 --touch random:10%% --json",
			  thaw, faulty_url(&f, "s.thaw"));
	CHECK_MSG(st == 0 && strstr(out, "\"http_failures\": 0"), "thaw bench --aws-sigv4: %d %s",
		  st, out);
	st = test_run(out, sizeof(out), "%s extract %s --aws-sigv4 aws:eu-west-1:s3 -o %s", thaw,
		      faulty_url(&f, "s.thaw"), test_path("signed.raw"));
	CHECK_MSG(st == 0, "thaw extract --aws-sigv4: %d %s", st, out);
	CHECK(!memcmp(file_bytes(test_path("signed.raw"), 0, len), src, len));
	st = test_run(out, sizeof(out), "%s info %s", thaw, faulty_url(&f, "s.thaw"));
	CHECK_MSG(st == 1 && strstr(out, "403"), "thaw info unsigned: %d %s", st, out);

	/* Missing credentials: a clear error before any request. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	r = thaw_snapshot_open(faulty_url(&f, "s.thaw"), &o.oo, &s);
	CHECK_MSG(r < 0 && strstr(o.err, "AWS_SECRET_ACCESS_KEY"), "no secret: %d %s", r, o.err);
	faulty_stop(&f);
	return 0;
}

/* Custom headers (options and THAW_HTTP_HEADERS) reach the server. */
static int custom_headers(void)
{
	struct faulty f;
	faulty_start(&f, test_tmpdir(), "--require-header 'Authorization: Bearer sekrit'");
	unsigned char *src = snapshot_at(test_path("s.thaw"), 1u << 20, 19);
	struct opener o;
	opener_init(&o);
	struct thaw_snapshot *s = NULL;
	int r = thaw_snapshot_open(faulty_url(&f, "s.thaw"), &o.oo, &s);
	CHECK_MSG(r == -THAW_E_HTTP && strstr(o.err, "401"), "no header: %d %s", r, o.err);
	const char *hdrs[] = { "X-Other: 1", "Authorization: Bearer sekrit", NULL };
	o.oo.headers = hdrs;
	s = open_ok(&o, faulty_url(&f, "s.thaw"));
	unsigned char buf[CHUNK];
	uint64_t id = stored_chunk_from(s, 0);
	CHECK_EQ(thaw_snapshot_read_chunk(s, id, buf, CHUNK), CHUNK);
	CHECK(!memcmp(buf, src + id * CHUNK, CHUNK));
	thaw_snapshot_close(s);
	o.oo.headers = NULL;
	setenv("THAW_HTTP_HEADERS", "X-Trace: abc\nAuthorization: Bearer sekrit\n", 1);
	s = open_ok(&o, faulty_url(&f, "s.thaw"));
	thaw_snapshot_close(s);
	setenv("THAW_HTTP_HEADERS", "no colon here", 1);
	r = thaw_snapshot_open(faulty_url(&f, "s.thaw"), &o.oo, &s);
	CHECK_EQ(r, -EINVAL);
	CHECK_MSG(!strstr(o.err, "no colon"), "a header's text leaked into the message: %s", o.err);
	unsetenv("THAW_HTTP_HEADERS");
	faulty_stop(&f);
	return 0;
}

/* HTTPS: verification on by default, a CA bundle makes it pass, --insecure skips it. */
static int tls_verification(void)
{
	char out[4096];
	if (test_run(out, sizeof(out), "command -v openssl") != 0)
		test_skip("openssl is not installed");
	const char *dir = test_tmpdir();
	int st = test_run(
		out, sizeof(out),
		"cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
		"-addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem",
		dir);
	CHECK_MSG(st == 0, "openssl: %s", out);
	struct faulty f;
	char args[1024];
	snprintf(args, sizeof(args), "--tls-cert '%s/cert.pem' --tls-key '%s/key.pem'", dir, dir);
	faulty_start(&f, dir, args);
	unsigned char *src = snapshot_at(test_path("s.thaw"), 1u << 20, 20);
	char url[256];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/s.thaw", f.port);
	struct opener o;
	opener_init(&o);
	o.oo.max_retries = 1;
	struct thaw_snapshot *s = NULL;
	int r = thaw_snapshot_open(url, &o.oo, &s);
	CHECK_MSG(r == -THAW_E_NET && (strstr(o.err, "certificate") || strstr(o.err, "SSL")),
		  "self-signed without a CA: %d %s", r, o.err);
	o.oo.cacert = test_path("cert.pem");
	s = open_ok(&o, url);
	unsigned char buf[CHUNK];
	uint64_t id = stored_chunk_from(s, 0);
	CHECK_EQ(thaw_snapshot_read_chunk(s, id, buf, CHUNK), CHUNK);
	CHECK(!memcmp(buf, src + id * CHUNK, CHUNK));
	thaw_snapshot_close(s);
	o.oo.cacert = NULL;
	o.oo.insecure = 1;
	s = open_ok(&o, url);
	id = stored_chunk_from(s, 3);
	CHECK_EQ(thaw_snapshot_read_chunk(s, id, buf, CHUNK), CHUNK);
	CHECK(!memcmp(buf, src + id * CHUNK, CHUNK));
	thaw_snapshot_close(s);
	CHECK(log_has(o.log, "verification is off"));

	/* The same on the command line, as the README writes it. */
	const char *thaw = test_build_path("thaw");
	st = test_run(out, sizeof(out), "%s info %s", thaw, url);
	CHECK_MSG(st == 1 && (strstr(out, "certificate") || strstr(out, "SSL")),
		  "thaw info https without a CA: %d %s", st, out);
	st = test_run(out, sizeof(out), "%s info %s --cacert %s/cert.pem", thaw, url, dir);
	CHECK_MSG(st == 0 && strstr(out, "http-test"), "thaw info --cacert: %d %s", st, out);
	st = test_run(out, sizeof(out), "%s extract %s -o %s --insecure", thaw, url,
		      test_path("tls.raw"));
	CHECK_MSG(st == 0, "thaw extract --insecure: %d %s", st, out);
	CHECK(!memcmp(file_bytes(test_path("tls.raw"), 0, 1u << 20), src, 1u << 20));
	faulty_stop(&f);
	return 0;
}

static const struct test_case cases[] = {
	{ "open_and_read", open_and_read, 30 },
	{ "open_errors", open_errors, 30 },
	{ "cli_from_url", cli_from_url, 60 },
	{ "lazy_restore", lazy_restore, 60 },
	{ "coalescing", coalescing, 60 },
	{ "fault_lane_not_blocked", fault_lane_not_blocked, 60 },
	{ "priority_by_lane", priority_by_lane, 30 },
	{ "merge_adjacent", merge_adjacent, 30 },
	{ "fault_from_window", fault_from_window, 30 },
	{ "duplicates_fetched_once", duplicates_fetched_once, 30 },
	{ "resubmit_after_bad_bytes", resubmit_after_bad_bytes, 30 },
	{ "server_restart", server_restart, 90 },
	{ "replaced_midrestore", replaced_midrestore, 60 },
	{ "injected_faults_stream", injected_faults_stream, 120 },
	{ "injected_faults_sync", injected_faults_sync, 90 },
	{ "flipped_byte_restore", flipped_byte_restore, 60 },
	{ "mirror_takeover", mirror_takeover, 90 },
	{ "poison_after_retries", poison_after_retries, 60 },
	{ "window_failure_contained", window_failure_contained, 60 },
	{ "sigv4_s3", sigv4_s3, 90 },
	{ "sigv4_signing", sigv4_signing, 30 },
	{ "custom_headers", custom_headers, 30 },
	{ "tls_verification", tls_verification, 30 },
};

TEST_MAIN(cases)
