/* SPDX-License-Identifier: MIT */
/*
 * The HTTP stream's internals, shared by its files:
 *   http_stream.c     transfers: queue, merge, start, retry, finish; the store ops
 *   http_readahead.c  read-ahead windows and the repeat cache, in front of it
 *   http_ring.c       curl's sockets and timers on the engine's ring, below it
 * Both call back into http_stream.c through function pointers, not by name,
 * so that neither links against the file that links against it.
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
	/* Between pieces of a long copy-out: let faults that arrived meanwhile go first. */
	void (*interlude)(void *ctx);
	/* How many of req's first bytes are in its buffer (a submitted request in flight). */
	uint64_t (*got)(void *ctx, const struct thaw__store_req *req);
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
			void (*kick)(void *ctx), void (*interlude)(void *ctx),
			uint64_t (*got)(void *ctx, const struct thaw__store_req *req), void *ctx);
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

/* A socket curl asked us to watch. */
struct thaw__hsock {
	struct thaw__ring_req req;
	struct thaw__list_node node; /* on the stream's socks */
	struct thaw__hlane *lane;
	curl_socket_t fd;
	unsigned want;	   /* POLLIN / POLLOUT curl wants */
	unsigned armed_ev; /* what the armed poll waits for */
	bool armed, cancelling, removed, dispatching, rearm;
};

/* A lane (fault or background): its own multi handle, so its own connections. */
struct thaw__hlane {
	struct thaw__hstream *st;
	enum thaw__lane id;
	CURLM *multi;
	unsigned limit, running;
	struct thaw__list queue, active;
	/* curl's timer: one ring timeout, moved earlier by cancel + re-arm. */
	struct thaw__ring_req timer;
	bool timer_armed, timer_cancelling, timer_rearm;
	bool in_submit, kick_now; /* submit() runs curl's immediate timeout itself */
	bool receiving; /* inside curl_multi_socket_action from the ring: bytes may arrive */
	uint64_t timer_want_us, timer_armed_us; /* 0: none */
	CURL *pool[16];
	unsigned npool;
	struct thaw__lat_hist hist;
};

/* One restore's HTTP stream (a struct thaw__store_stream), used on its ring's thread. */
struct thaw__hstream {
	struct thaw__http_store *s;
	struct thaw__engine *e;
	struct thaw__hlane lanes[THAW__LANES];
	struct thaw__list socks;       /* of struct thaw__hsock */
	struct thaw__list backing_off; /* waiting for their backoff timeout */
	struct thaw__list failed;      /* failed outside a completion: reported from the kick */
	struct thaw__ring_req kick;
	bool kick_armed, kick_rearm;
	unsigned ring_users; /* our ring requests outstanding */
	bool closing;
	uint64_t seed;
	uint64_t requests, bytes, retries, failures;
	struct thaw__http_ra ra; /* background read-ahead, the repeat cache (http_readahead.c) */
	uint64_t interlude_ns;	 /* faults were last let in between background work */
	bool in_interlude;
	/* http_stream.c's, for http_ring.c: curl_multi_socket_action and what follows
	 * it; the end of every ring completion (re-arms, and the last one frees st). */
	void (*action)(struct thaw__hlane *ln, curl_socket_t fd, int ev);
	void (*completed)(struct thaw__hstream *st);
};

/* http_ring.c: set curl's socket and timer callbacks on ln's multi handle. */
void thaw__http_ring_lane_init(struct thaw__hlane *ln);
/* Arm again the socket polls and lane timers the full ring refused. */
void thaw__http_ring_rearm(struct thaw__hstream *st);
/* The stream closes: stop watching every socket (each is freed once its poll is back). */
void thaw__http_ring_close(struct thaw__hstream *st);

#endif
