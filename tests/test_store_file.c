/* SPDX-License-Identifier: MIT */
/* The local file store: sync reads, and streams on a real engine's io_uring. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "testlib.h"
#include "thaw.h"

#define FILE_LEN (8u << 20)

struct log_capture {
	char last[512];
};

static void log_cb(enum thaw_log_level level, const char *msg, void *ctx)
{
	struct log_capture *lc = ctx;
	if (level == THAW_LOG_ERROR)
		snprintf(lc->last, sizeof(lc->last), "%s", msg);
}

static uint8_t *make_file(const char *path, size_t len)
{
	uint8_t *b = malloc(len);
	CHECK(b);
	test_fill_random(b, len, 17);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, b, len), (ssize_t)len);
	close(fd);
	return b;
}

static struct thaw__store *open_store(const char *path, struct thaw__logger *lg)
{
	char err[256] = "";
	struct thaw__store *s = NULL;
	int r = thaw__store_file_open(path, lg, &s, err, sizeof(err));
	CHECK_MSG(r == 0, "%s", err);
	return s;
}

static int case_sync(void)
{
	struct log_capture lc = { { 0 } };
	struct thaw__logger lg;
	thaw__logger_init(&lg, log_cb, &lc);
	const char *path = test_path("f.bin");
	uint8_t *want = make_file(path, FILE_LEN);
	struct thaw__store *s = open_store(path, &lg);
	CHECK_EQ(s->size, FILE_LEN);
	CHECK_EQ(s->inflight[THAW__LANE_FAULT], 8);
	CHECK_EQ(s->inflight[THAW__LANE_BACKGROUND], 4);
	CHECK_EQ(s->bg_min, 256u << 10);
	CHECK_EQ(s->bg_max, 1u << 20);
	uint8_t *buf = malloc(FILE_LEN);
	CHECK_OK(s->ops->pread(s, buf, FILE_LEN, 0));
	CHECK(!memcmp(buf, want, FILE_LEN));
	CHECK_OK(s->ops->pread(s, buf, 1234, FILE_LEN - 1234));
	CHECK(!memcmp(buf, want + FILE_LEN - 1234, 1234));
	/* Past the end: an error naming the offset. */
	CHECK_LT(s->ops->pread(s, buf, 2, FILE_LEN - 1), 0);
	CHECK_MSG(strstr(lc.last, "8388607"), "%s", lc.last);
	/* The file shrinking under us is an error, never a short read. */
	CHECK(truncate(path, 1000) == 0);
	CHECK_EQ(s->ops->pread(s, buf, 4096, 0), -EIO);
	CHECK_MSG(strstr(lc.last, "offset 1000"), "%s", lc.last);
	thaw__store_close(s);

	char err[256] = "";
	CHECK_EQ(thaw__store_file_open(test_path("missing"), &lg, &s, err, sizeof(err)), -ENOENT);
	CHECK_MSG(strstr(err, "missing"), "%s", err);
	free(buf);
	free(want);
	return 0;
}

/* ---------------------------------------------------------------- */

#define NREQ 300

struct sreq {
	struct thaw__store_req req;
	int err;
	bool done;
};

struct ctx {
	struct thaw__store *s;
	struct thaw__store_stream *st;
	struct thaw__engine *e;
	const uint8_t *want;
	struct sreq reqs[NREQ];
	int next, ndone, nfailed, mode;
	bool closed;
};

enum { MODE_READS, MODE_CANCEL };

static void req_done(struct thaw__store_req *req, int err)
{
	struct sreq *r = (struct sreq *)req;
	r->err = err;
	r->done = true;
}

/* Submit what the ring takes; tick() comes back for the rest. */
static void pump(struct ctx *c)
{
	while (c->next < NREQ) {
		struct sreq *r = &c->reqs[c->next];
		int e = c->s->ops->submit(c->st, &r->req);
		if (e == -EBUSY)
			return;
		CHECK_OK(e);
		c->next++;
	}
}

static int on_start(void *ctx, struct thaw__engine *e)
{
	struct ctx *c = ctx;
	c->e = e;
	int r = c->s->ops->stream_open(c->s, e, &c->st);
	if (r)
		return r;
	/* Out of range: refused at once, done() never runs. */
	uint8_t small[20];
	struct sreq bad = {
		.req = { .off = FILE_LEN - 10, .len = 20, .buf = small, .done = req_done }
	};
	CHECK_EQ(c->s->ops->submit(c->st, &bad.req), -EINVAL);
	CHECK(!bad.done);
	if (c->mode == MODE_CANCEL) {
		for (int i = 0; i < 16; i++)
			CHECK_OK(c->s->ops->submit(c->st, &c->reqs[i].req));
		c->next = NREQ;
		c->s->ops->stream_close(c->st); /* with all 16 in flight */
		c->closed = true;
		thaw__engine_request_stop(e);
		return 0;
	}
	pump(c);
	return 0;
}

static void on_tick(void *ctx)
{
	struct ctx *c = ctx;
	if (c->closed)
		return;
	pump(c);
	int n = 0;
	for (int i = 0; i < NREQ; i++)
		n += c->reqs[i].done;
	if (n == NREQ)
		thaw__engine_request_stop(c->e);
}

static void on_stop(void *ctx)
{
	struct ctx *c = ctx;
	if (!c->closed && c->st)
		c->s->ops->stream_close(c->st);
	c->closed = true;
}

static void on_fault(void *ctx, uint64_t addr, uint64_t flags)
{
	(void)ctx;
	(void)addr;
	(void)flags;
}

static void run_engine(struct ctx *c)
{
	struct thaw__logger lg;
	thaw__logger_init(&lg, NULL, NULL);
	struct thaw__engine_ops ops = {
		.start = on_start, .fault = on_fault, .tick = on_tick, .stop = on_stop
	};
	struct thaw__engine_opts eo = { .ops = &ops, .ctx = c, .log = &lg, .uffd = -1 };
	struct thaw__engine *e;
	int r = thaw__engine_new(&eo, &e);
	if (r == -EPERM || r == -ENOSYS || r == -THAW_E_UFFD_FEATURE)
		test_skip("no usable userfaultfd for the engine: %s", thaw_strerror(r));
	CHECK_OK(r);
	CHECK_OK(thaw__engine_run(e));
	CHECK_OK(thaw__engine_join(e));
	thaw__engine_free(e);
}

static void setup_reqs(struct ctx *c)
{
	uint64_t x = 99;
	for (int i = 0; i < NREQ; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t len = i % 10 == 0 ? (4u << 20) : 4096u << ((x >> 33) % 7);
		uint64_t off = (x >> 20) % (FILE_LEN - len + 1);
		c->reqs[i].req = (struct thaw__store_req){
			.off = off,
			.len = len,
			.buf = malloc(len),
			.lane = i % 3 ? THAW__LANE_FAULT : THAW__LANE_BACKGROUND,
			.done = req_done,
		};
		CHECK(c->reqs[i].req.buf);
	}
}

/* A stream case's start: FILE_LEN random bytes in a file, its store, NREQ requests. */
static struct ctx *ctx_new(int mode)
{
	const char *path = test_path("f.bin");
	struct ctx *c = calloc(1, sizeof(*c));
	CHECK(c);
	c->want = make_file(path, FILE_LEN);
	struct thaw__logger lg;
	thaw__logger_init(&lg, NULL, NULL); /* the store keeps a copy */
	c->s = open_store(path, &lg);
	c->mode = mode;
	setup_reqs(c);
	return c;
}

static void ctx_free(struct ctx *c)
{
	thaw__store_close(c->s);
	free((void *)c->want);
	free(c);
}

static int case_stream_reads(void)
{
	struct ctx *c = ctx_new(MODE_READS);
	run_engine(c);
	for (int i = 0; i < NREQ; i++) {
		struct sreq *r = &c->reqs[i];
		CHECK_MSG(r->done, "request %d never completed", i);
		CHECK_MSG(r->err == 0, "request %d: %s", i, thaw_strerror(r->err));
		CHECK_MSG(!memcmp(r->req.buf, c->want + r->req.off, r->req.len),
			  "request %d: wrong bytes", i);
		free(r->req.buf);
	}
	ctx_free(c);
	return 0;
}

/* Closing a stream with reads in flight: each still completes, as cancelled. */
static int case_stream_close_inflight(void)
{
	struct ctx *c = ctx_new(MODE_CANCEL);
	run_engine(c);
	for (int i = 0; i < 16; i++) {
		CHECK_MSG(c->reqs[i].done, "request %d never completed", i);
		CHECK_EQ(c->reqs[i].err, -ECANCELED);
	}
	for (int i = 0; i < NREQ; i++)
		free(c->reqs[i].req.buf);
	ctx_free(c);
	return 0;
}

/* A file that shrinks under a stream: a short read, then an error, never partial data as success. */
static int case_stream_shrunk_file(void)
{
	struct ctx *c = ctx_new(MODE_READS);
	CHECK(truncate(test_path("f.bin"), FILE_LEN / 2 + 123) == 0);
	run_engine(c);
	int ok = 0, eio = 0;
	for (int i = 0; i < NREQ; i++) {
		struct sreq *r = &c->reqs[i];
		CHECK(r->done);
		if (r->req.off + r->req.len <= FILE_LEN / 2 + 123) {
			CHECK_MSG(r->err == 0, "request %d: %s", i, thaw_strerror(r->err));
			CHECK(!memcmp(r->req.buf, c->want + r->req.off, r->req.len));
			ok++;
		} else {
			CHECK_EQ(r->err, -EIO);
			eio++;
		}
		free(r->req.buf);
	}
	CHECK_GT(ok, 0);
	CHECK_GT(eio, 0);
	ctx_free(c);
	return 0;
}

static const struct test_case cases[] = {
	{ "sync_pread", case_sync },
	{ "stream_reads", case_stream_reads },
	{ "stream_close_inflight", case_stream_close_inflight },
	{ "stream_shrunk_file", case_stream_shrunk_file },
};

TEST_MAIN(cases)
