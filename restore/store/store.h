/* SPDX-License-Identifier: MIT */
/*
 * restore/store/: where a snapshot's bytes come from, a local file
 * (store_file.c) or HTTP URLs (store_http.c and the http_* files, see
 * http.h), behind this one interface. Knows byte ranges, not chunks (the
 * HTTP store reads the v1 header only to learn how much to fetch at open);
 * uses common/, format/ and the engine's ring (uffd/engine.h).
 *
 * Synchronous reads serve open and the tools; streams serve a restore,
 * with their I/O on the restore engine's ring.
 */
#ifndef THAW_RESTORE_STORE_H
#define THAW_RESTORE_STORE_H

#include <stdint.h>

#include "thaw.h"
#include "uffd/engine.h"

struct thaw__store;
struct thaw__store_stream;

enum thaw__lane {
	THAW__LANE_FAULT = 0,	   /* someone is waiting: never queue behind background */
	THAW__LANE_BACKGROUND = 1, /* population: large ranges, yields to faults */
	THAW__LANES
};

/* One asynchronous read; owned by the submitter until done() runs. */
struct thaw__store_req {
	uint64_t off;
	uint32_t len;
	void *buf; /* len bytes, private memory (never registered memory) */
	enum thaw__lane lane;
	/* 0 for a first read. When the bytes came back bad (hash or codec check) and
	 * are asked for again, the submitter sets how many times that happened: the
	 * HTTP store counts it as a retry, waits its backoff, and asks the next
	 * mirror in turn. It is the store's retry budget too: past max_retries on
	 * every URL it fails the read with -THAW_E_NET. Stores may ignore it. */
	uint32_t attempt;
	/* 0 when all len bytes arrived, else -errno or -THAW_E_*; manager thread,
	 * never from inside submit(). */
	void (*done)(struct thaw__store_req *req, int err);
	struct thaw__ring_req ring; /* for the store's use */
	void *priv;		    /* for the store's use */
};

struct thaw__store_ops {
	/* len bytes at off into buf; thread-safe. 0 or -err (a short read is an error). */
	int (*pread)(struct thaw__store *s, void *buf, uint64_t len, uint64_t off);
	/* Manager thread: set up asynchronous reads on e's ring. */
	int (*stream_open)(struct thaw__store *s, struct thaw__engine *e,
			   struct thaw__store_stream **out);
	/* Manager thread: queue req. 0 or -err (then done() is never called). */
	int (*submit)(struct thaw__store_stream *st, struct thaw__store_req *req);
	/* Any thread: add the stream's transport counters (http_*) to st. NULL if none. */
	void (*stream_stats)(const struct thaw__store_stream *st, struct thaw_stats *stats);
	/* Manager thread: release ring users. Requests still in flight complete
	 * with -ECANCELED (their done() runs now or while the engine drains). */
	void (*stream_close)(struct thaw__store_stream *st);
	void (*close)(struct thaw__store *s);
};

struct thaw__store {
	const struct thaw__store_ops *ops;
	uint64_t size; /* object size in bytes */
	/* Tuning the restore reads: requests in flight per lane, background range bounds. */
	uint32_t inflight[THAW__LANES];
	uint32_t bg_min, bg_max;
	/* How often a chunk whose bytes fail their check is read again before it
	 * is poisoned; 0 = 2. A store with mirrors wants enough to try them all. */
	uint32_t max_refetch;
};

/* Local file. On failure a message for the user is written to err. */
int thaw__store_file_open(const char *path, const struct thaw__logger *log,
			  struct thaw__store **out, char *err, size_t err_len);
/* HTTP(S) URL with the open options' mirrors, headers, TLS and signing settings (opts read
 * in full: this library's struct, never NULL). */
int thaw__store_http_open(const char *url, const struct thaw_open_opts *opts,
			  const struct thaw__logger *log, struct thaw__store **out, char *err,
			  size_t err_len);

static inline void thaw__store_close(struct thaw__store *s)
{
	if (s)
		s->ops->close(s);
}

#endif
