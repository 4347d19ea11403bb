/* SPDX-License-Identifier: MIT */
/* The local file store: pread for open and the tools, io_uring reads for a restore. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "uffd/base.h"

struct file_store {
	struct thaw__store base;
	int fd;
	struct thaw__logger log; /* a copy: the store may outlive the caller's */
	char *path;
};

/*
 * A local read cannot be cancelled on the ring, so a stream closed with
 * reads in flight stays allocated until the last one completes (as
 * cancelled); the engine drains the ring before its thread ends.
 */
struct file_stream {
	struct file_store *fs;
	struct thaw__engine *e;
	uint32_t inflight;
	bool closed;
};

/* Per request, in req->priv: how far a read that came back short has got. */
struct file_req_state {
	struct file_stream *st;
	uint32_t done;
};

static int file_pread(struct thaw__store *s, void *buf, uint64_t len, uint64_t off)
{
	struct file_store *fs = (struct file_store *)s;
	if (off > s->size || len > s->size - off) {
		thaw__err(&fs->log,
			  "%s: reading %" PRIu64 " bytes at offset %" PRIu64
			  " runs past the end (%" PRIu64 " bytes)",
			  fs->path, len, off, s->size);
		return -EIO;
	}
	uint8_t *p = buf;
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t r = pread(fs->fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			thaw__err(&fs->log, "%s: read at offset %" PRIu64 ": %s", fs->path, off,
				  strerror(-e));
			return e;
		}
		if (r == 0) {
			thaw__err(&fs->log,
				  "%s: unexpected end of file at offset %" PRIu64
				  " (did it shrink?)",
				  fs->path, off);
			return -EIO;
		}
		p += r;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

static void read_done(struct thaw__ring_req *rr, int res, bool more);

static int issue(struct file_stream *st, struct thaw__store_req *req)
{
	struct file_req_state *rs = req->priv;
	req->ring.done = read_done;
	int r = thaw__ring_read(st->e, &req->ring, st->fs->fd, (uint8_t *)req->buf + rs->done,
				req->len - rs->done, req->off + rs->done);
	if (!r)
		st->inflight++;
	return r;
}

static void finish(struct thaw__store_req *req, int err)
{
	free(req->priv);
	req->priv = NULL;
	req->done(req, err);
}

static void read_done(struct thaw__ring_req *rr, int res, bool more)
{
	struct thaw__store_req *req = container_of(rr, struct thaw__store_req, ring);
	struct file_req_state *rs = req->priv;
	struct file_stream *st = rs->st;
	(void)more;
	st->inflight--;
	if (st->closed) {
		finish(req, -ECANCELED);
		if (!st->inflight)
			free(st);
		return;
	}
	if (res == -EAGAIN || res == -EINTR) {
		res = 0; /* nothing read; issue the same range again */
	} else if (res < 0) {
		thaw__err(&st->fs->log, "%s: read of %u bytes at offset %" PRIu64 ": %s",
			  st->fs->path, req->len - rs->done, req->off + rs->done, strerror(-res));
		finish(req, res);
		return;
	} else if (res == 0) {
		thaw__err(&st->fs->log, "%s: unexpected end of file at offset %" PRIu64,
			  st->fs->path, req->off + rs->done);
		finish(req, -EIO);
		return;
	}
	rs->done += (uint32_t)res;
	if (rs->done == req->len) {
		finish(req, 0);
		return;
	}
	int r = issue(st, req);
	if (r == -EBUSY) {
		/* No room on the ring from inside a completion: the rest of a
		 * short local read is quicker to fetch here than to park. */
		r = file_pread(&st->fs->base, (uint8_t *)req->buf + rs->done, req->len - rs->done,
			       req->off + rs->done);
		finish(req, r);
	} else if (r) {
		finish(req, r);
	}
}

static int file_stream_open(struct thaw__store *s, struct thaw__engine *e,
			    struct thaw__store_stream **out)
{
	struct file_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->fs = (struct file_store *)s;
	st->e = e;
	*out = (struct thaw__store_stream *)st;
	return 0;
}

static int file_submit(struct thaw__store_stream *sst, struct thaw__store_req *req)
{
	struct file_stream *st = (struct file_stream *)sst;
	if (st->closed)
		return -ECANCELED;
	if (!req->len || req->off > st->fs->base.size || req->len > st->fs->base.size - req->off) {
		thaw__err(&st->fs->log,
			  "%s: request for %u bytes at offset %" PRIu64
			  " is outside the file (%" PRIu64 " bytes)",
			  st->fs->path, req->len, req->off, st->fs->base.size);
		return -EINVAL;
	}
	struct file_req_state *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	rs->st = st;
	req->priv = rs;
	int r = issue(st, req);
	if (r) {
		req->priv = NULL;
		free(rs);
	}
	return r;
}

static void file_stream_close(struct thaw__store_stream *sst)
{
	struct file_stream *st = (struct file_stream *)sst;
	if (!st)
		return;
	st->closed = true;
	if (!st->inflight)
		free(st);
}

static void file_close(struct thaw__store *s)
{
	struct file_store *fs = (struct file_store *)s;
	if (fs->fd >= 0)
		close(fs->fd);
	free(fs->path);
	free(fs);
}

static const struct thaw__store_ops file_ops = {
	.pread = file_pread,
	.stream_open = file_stream_open,
	.submit = file_submit,
	.stream_stats = NULL,
	.stream_close = file_stream_close,
	.close = file_close,
};

int thaw__store_file_open(const char *path, const struct thaw__logger *log,
			  struct thaw__store **out, char *err, size_t err_len)
{
	struct file_store *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->fd = -1;
	if (log)
		fs->log = *log;
	else
		fs->log.max_level = -1;
	fs->path = strdup(path);
	int r;
	if (!fs->path) {
		r = -ENOMEM;
		goto fail;
	}
	fs->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fs->fd < 0) {
		r = -errno;
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", path, strerror(-r));
		goto fail;
	}
	struct stat sb;
	if (fstat(fs->fd, &sb) < 0) {
		r = -errno;
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", path, strerror(-r));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		if (err && err_len)
			snprintf(err, err_len, "%s: not a regular file", path);
		goto fail;
	}
	fs->base.ops = &file_ops;
	fs->base.size = (uint64_t)sb.st_size;
	fs->base.inflight[THAW__LANE_FAULT] = 8;
	fs->base.inflight[THAW__LANE_BACKGROUND] = 4;
	fs->base.bg_min = 256u << 10;
	fs->base.bg_max = 1u << 20;
	*out = &fs->base;
	return 0;
fail:
	file_close(&fs->base);
	return r;
}
