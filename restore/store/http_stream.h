/* SPDX-License-Identifier: MIT */
/*
 * The HTTP stream's internals, shared by its files:
 *   http_stream.c     transfers: queue, merge, start, retry, finish; the store ops
 *   http_readahead.c  read-ahead windows and the repeat cache, in front of it
 * The read-ahead sends through function pointers, not by name, so it does
 * not link against the file that links against it.
 */
#ifndef THAW_RESTORE_HTTP_STREAM_H
#define THAW_RESTORE_HTTP_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

struct ra_win;
struct repeat;

/* Background read-ahead and the repeat cache; owned by one stream, used on its ring's thread. */
struct thaw__http_ra {
	const struct thaw__store *store; /* size, bg_min, bg_max */
	/* The stream's: send req as its own transfer (0 or -err); run
	 * thaw__http_ra_deliver from the ring soon, never inside a submit. */
	int (*submit)(void *ctx, struct thaw__store_req *req);
	void (*kick)(void *ctx);
	void *ctx;
	bool closing; /* the stream is closing: failed windows are not retried */
	struct ra_win *win[THAW__HTTP_RA_WINDOWS];
	uint64_t next; /* end of the furthest background request seen */
	uint32_t size; /* size of the next window */
	bool fault;    /* a fault-lane request since the last window */
	struct thaw__store_req *ready, **ready_tail; /* served from memory, to report */
	struct repeat *rep; /* THAW__HTTP_REPEAT_SLOTS, allocated on first use */
};

void thaw__http_ra_init(struct thaw__http_ra *ra, const struct thaw__store *store,
			int (*submit)(void *ctx, struct thaw__store_req *req),
			void (*kick)(void *ctx), void *ctx);
void thaw__http_ra_free(struct thaw__http_ra *ra);
/* Serve a background request from a window or the repeat cache: 0 when taken, 1 to send
 * it on its own, 2 to send it on its own and keep the answer (thaw__http_ra_keep). */
int thaw__http_ra_submit(struct thaw__http_ra *ra, struct thaw__store_req *req);
/* A fault-lane request: true when memory serves it (it is reported from the kick). */
bool thaw__http_ra_fault(struct thaw__http_ra *ra, struct thaw__store_req *req);
/* Keep the answer to req (it may be asked for again). */
void thaw__http_ra_keep(struct thaw__http_ra *ra, const struct thaw__store_req *req);
/* Report the requests served from memory, with err. */
void thaw__http_ra_deliver(struct thaw__http_ra *ra, int err);

#endif
