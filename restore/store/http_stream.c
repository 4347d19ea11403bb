/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous range GETs for a restore: libcurl's multi interface driven
 * by the restore engine's io_uring ring, so faults, file reads and HTTP
 * share one loop on one thread. curl's socket callback arms one-shot poll
 * requests on the ring; its timer callback arms a ring timeout; their
 * completions call curl_multi_socket_action (http_ring.c).
 *
 * Two lanes, each its own multi handle and so its own connection pool:
 * a fault never waits for a connection busy with a multi-MiB background
 * range. Each lane runs a few transfers at once (THAW__HTTP_*_TRANSFERS)
 * and queues the rest; queued requests for adjacent bytes merge into one
 * GET. Failed attempts are retried after a backoff that is a ring timeout
 * (the manager thread never sleeps), then the next mirror is tried; only
 * then does the request fail.
 */
#include <errno.h>
#include <poll.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>

#include "http_stream.h"

/* One queued or running request. */
struct xfer {
	struct thaw__list_node node; /* on its lane's queue or running list, or a stream list */
	struct thaw__hstream *st;
	struct thaw__store_req *req; /* NULL once completed (a zombie awaiting its timer) */
	enum thaw__lane lane;
	CURL *easy;
	struct thaw__http_resp resp;
	char errbuf[CURL_ERROR_SIZE];
	size_t url;
	unsigned urls_tried;
	int retry;	  /* retries on the current URL */
	bool probing;	  /* the current transfer checks an unpinned mirror */
	bool ended_later; /* finished inside submit(): handled from the kick */
	bool keep;	  /* on success, remember the bytes: they may be asked for again */
	/* Queued requests for the bytes right after this one's, riding on its GET. */
	struct xfer *merged;
	struct iovec *iov;
	unsigned iov_cap;
	CURLcode ended_rc;
	unsigned char *probe_buf;
	struct thaw__ring_req backoff;
	bool backoff_armed;
	uint64_t t0_us;
	int first_err; /* the failure on the first URL tried: the one reported */
};

/* A transfer is on one list at a time, through its node. */
static void list_add(struct thaw__list *l, struct xfer *x, bool front)
{
	if (front)
		thaw__list_add_head(l, &x->node);
	else
		thaw__list_add_tail(l, &x->node);
}

static void list_del(struct thaw__list *l, struct xfer *x)
{
	thaw__list_del(l, &x->node);
}

static struct xfer *list_first(const struct thaw__list *l)
{
	return thaw__list_entry(l->first, struct xfer, node);
}

static struct xfer *list_next(const struct xfer *x)
{
	return thaw__list_entry(x->node.next, struct xfer, node);
}

static void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static void stream_free(struct thaw__hstream *st)
{
	thaw__http_ra_free(&st->ra);
	for (int l = 0; l < THAW__LANES; l++) {
		struct thaw__hlane *ln = &st->lanes[l];
		for (unsigned i = 0; i < ln->npool; i++)
			curl_easy_cleanup(ln->pool[i]);
		ln->npool = 0;
	}
	free(st);
}

/* Every ring completion ends here: the last one of a closed stream frees it. */
static void ring_put(struct thaw__hstream *st)
{
	st->ring_users--;
	if (st->closing && !st->ring_users)
		stream_free(st);
}

static void completed(struct thaw__hstream *st);
static void ended(struct thaw__hlane *ln, struct xfer *x, CURLcode rc);
static void pump(struct thaw__hlane *ln);
static void unmerge(struct thaw__hlane *ln, struct xfer *x);

/* ------------------------------------------------------------------ */
/* Completing requests                                                 */
/* ------------------------------------------------------------------ */

static void xfer_free(struct xfer *x)
{
	free(x->probe_buf);
	free(x->iov);
	free(x);
}

/* Report req's end to its owner; x is freed unless its backoff timer is still out. */
static void finish(struct xfer *x, int err)
{
	struct thaw__hstream *st = x->st;
	struct thaw__store_req *req = x->req;
	x->req = NULL;
	if (!err) {
		thaw__lat_add(&st->lanes[x->lane].hist, thaw__now_us() - x->t0_us);
		if (x->keep && req)
			thaw__http_ra_keep(&st->ra, req);
	} else if (err != -ECANCELED)
		stat_add(&st->failures, 1);
	if (!x->backoff_armed)
		xfer_free(x);
	if (req)
		req->done(req, err);
}

static void kick_done(struct thaw__ring_req *rr, int res, bool more)
{
	struct thaw__hstream *st = container_of(rr, struct thaw__hstream, kick);
	st->kick_armed = false;
	thaw__http_ra_deliver(&st->ra, 0);
	struct xfer *x;
	while ((x = list_first(&st->failed))) {
		list_del(&st->failed, x);
		finish(x, x->first_err);
	}
	for (int l = 0; l < THAW__LANES && !st->closing; l++) {
		struct thaw__hlane *ln = &st->lanes[l];
		bool again = true;
		while (again) {
			again = false;
			for (x = list_first(&ln->active); x; x = list_next(x))
				if (x->ended_later) {
					x->ended_later = false;
					ended(ln, x, x->ended_rc);
					again = true; /* ended() may have changed the list */
					break;
				}
		}
		pump(ln);
	}
	completed(st);
}

/* Run kick_done soon: reports that must not happen inside submit() go from there. */
static void arm_kick(struct thaw__hstream *st)
{
	if (st->kick_armed)
		return;
	if (thaw__ring_timeout(st->e, &st->kick, 0)) {
		st->kick_rearm = true; /* ring full: tried again after the next completion */
		return;
	}
	st->kick_rearm = false;
	st->kick_armed = true;
	st->ring_users++;
}

/* Fail x from a context where done() must not run (inside submit): report it from the ring. */
static void finish_later(struct xfer *x, int err)
{
	struct thaw__hstream *st = x->st;
	x->first_err = err;
	list_add(&st->failed, x, false);
	arm_kick(st);
}

/* ------------------------------------------------------------------ */
/* Starting transfers                                                  */
/* ------------------------------------------------------------------ */

static CURL *lane_easy(struct thaw__hlane *ln)
{
	if (ln->npool)
		return ln->pool[--ln->npool];
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	/* Fewer, larger reads per readiness event for large ranges. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE,
			 ln->id == THAW__LANE_FAULT ? 256L << 10 : 1024L << 10);
	return e;
}

static void lane_easy_put(struct thaw__hlane *ln, CURL *e)
{
	if (ln->npool < sizeof(ln->pool) / sizeof(ln->pool[0]))
		ln->pool[ln->npool++] = e;
	else
		curl_easy_cleanup(e);
}

/*
 * Requests queued right behind x for the bytes that follow its own (the
 * restore asks for runs of chunks, and runs broken only by chunks that
 * store nothing are adjacent in the file) ride on x's GET: fewer, larger
 * requests. Returns how many requests the GET serves, x included.
 */
static unsigned merge_queued(struct thaw__hlane *ln, struct xfer *x)
{
	const struct thaw__http_store *s = ln->st->s;
	uint64_t cap = ln->id == THAW__LANE_FAULT ? THAW__HTTP_FAULT_MERGE_MAX : s->base.bg_max;
	uint64_t end = x->req->off + x->req->len, total = x->req->len;
	unsigned n = 1;
	struct xfer **tail = &x->merged, *y;
	while ((y = list_first(&ln->queue)) && y->url == x->url && y->req->off == end &&
	       total + y->req->len <= cap) {
		list_del(&ln->queue, y);
		*tail = y;
		tail = &y->merged;
		end += y->req->len;
		total += y->req->len;
		n++;
	}
	*tail = NULL;
	if (n == 1)
		return 1;
	if (x->iov_cap < n) {
		struct iovec *v = realloc(x->iov, n * sizeof(*v));
		if (!v) {
			unmerge(ln, x);
			return 1;
		}
		x->iov = v;
		x->iov_cap = n;
	}
	unsigned i = 0;
	for (y = x; y; y = y->merged, i++)
		x->iov[i] = (struct iovec){ .iov_base = y->req->buf, .iov_len = y->req->len };
	return n;
}

/* Put x's riders back at the head of the queue, in order, to go on their own. */
static void unmerge(struct thaw__hlane *ln, struct xfer *x)
{
	struct xfer *chain[64], *y = x->merged;
	x->merged = NULL;
	while (y) {
		unsigned k = 0;
		for (; y && k < 64; k++, y = y->merged)
			chain[k] = y;
		while (k--) {
			chain[k]->merged = NULL;
			list_add(&ln->queue, chain[k], true);
		}
	}
}

/* How often, at most, a background transfer's bytes pause for faults. */
#define INTERLUDE_GAP_NS 30000ull

static void socket_action(struct thaw__hlane *ln, curl_socket_t fd, int ev);

/*
 * Fault-lane replies that arrived while the manager was busy with
 * background bytes: read them now (one poll(2) over the lane's sockets
 * says which), so a fault's reply is not left waiting for the background
 * transfer to end. Their ring polls fire later and find nothing.
 */
static void fault_lane_progress(struct thaw__hstream *st)
{
	struct thaw__hlane *fl = &st->lanes[THAW__LANE_FAULT];
	struct pollfd p[2 * THAW__HTTP_FAULT_TRANSFERS];
	nfds_t n = 0;
	if (!fl->running || fl->receiving)
		return;
	for (struct thaw__list_node *nd = st->socks.first; nd && n < sizeof(p) / sizeof(p[0]);
	     nd = nd->next) {
		struct thaw__hsock *sk = container_of(nd, struct thaw__hsock, node);
		if (sk->lane == fl && !sk->removed && (sk->want & POLLIN))
			p[n++] = (struct pollfd){ .fd = sk->fd, .events = POLLIN };
	}
	if (!n || poll(p, n, 0) <= 0)
		return;
	/* By fd, not by socket: curl may drop a socket (and we free it) on the way. */
	for (nfds_t i = 0; i < n && !st->closing; i++)
		if (p[i].revents)
			socket_action(fl, p[i].fd, CURL_CSELECT_IN);
}

/*
 * In the middle of background work on the manager thread (a large
 * transfer's bytes, a window handed out): faults read from the uffd go out
 * on the fault lane, and fault replies that are in are taken, before the
 * background work carries on. Without this, a fault waited for whole
 * background completions (MiBs received and copied) to be read at all.
 */
static void interlude(void *ctx)
{
	struct thaw__hstream *st = ctx;
	uint64_t now = thaw__now_ns();
	if (st->closing || st->in_interlude || now - st->interlude_ns < INTERLUDE_GAP_NS)
		return;
	st->interlude_ns = now;
	st->in_interlude = true;
	thaw__engine_poll_faults(st->e);
	fault_lane_progress(st);
	st->in_interlude = false;
}

/* A background transfer's bytes: placed, then, while the ring delivers them, faults go between. */
static size_t bg_write_cb(char *data, size_t size, size_t n, void *userdata)
{
	struct xfer *x = userdata;
	size_t took = thaw__http_write_cb(data, size, n, &x->resp);
	if (took == size * n && x->st->lanes[THAW__LANE_BACKGROUND].receiving)
		interlude(x->st);
	return took;
}

/* Start x's next attempt on its lane (a slot is free). 0 or -err. */
static int start(struct xfer *x)
{
	struct thaw__hstream *st = x->st;
	struct thaw__http_store *s = st->s;
	struct thaw__hlane *ln = &st->lanes[x->lane];
	struct thaw__http_expect want;
	void *buf;
	x->probing = !thaw__http_url_pinned(s, x->url);
	if (x->probing) {
		uint64_t len =
			s->head_len < THAW__HTTP_PROBE_LEN ? s->head_len : THAW__HTTP_PROBE_LEN;
		if (!x->probe_buf && !(x->probe_buf = malloc(THAW__HTTP_PROBE_LEN)))
			return -ENOMEM;
		want = (struct thaw__http_expect){ .off = 0, .len = len, .total = s->base.size };
		buf = x->probe_buf;
	} else {
		want = (struct thaw__http_expect){ .off = x->req->off,
						   .len = x->req->len,
						   .total = s->base.size,
						   .pin = &s->urls[x->url],
						   .lane = x->lane };
		buf = x->req->buf;
	}
	unsigned n = x->probing ? 0 : merge_queued(ln, x);
	if (n > 1) {
		want.len = 0;
		for (struct xfer *y = x; y; y = y->merged)
			want.len += y->req->len;
	}
	x->easy = lane_easy(ln);
	if (!x->easy) {
		unmerge(ln, x);
		return -ENOMEM;
	}
	thaw__http_resp_reset(&x->resp, &want, buf);
	if (n > 1) {
		x->resp.iov = x->iov;
		x->resp.iovcnt = n;
	}
	bool bg = x->lane == THAW__LANE_BACKGROUND && !x->probing;
	if (thaw__http_easy_setup(s, x->easy, x->url, &x->resp, x->errbuf) ||
	    (bg && (curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, bg_write_cb) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK)) ||
	    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK) {
		lane_easy_put(ln, x->easy);
		x->easy = NULL;
		unmerge(ln, x);
		return -EINVAL;
	}
	if (curl_multi_add_handle(ln->multi, x->easy) != CURLM_OK) {
		lane_easy_put(ln, x->easy);
		x->easy = NULL;
		unmerge(ln, x);
		return -ENOMEM;
	}
	list_add(&ln->active, x, false);
	ln->running++;
	stat_add(&st->requests, 1);
	return 0;
}

/* Start queued requests while the lane has free slots. */
static void pump(struct thaw__hlane *ln)
{
	struct xfer *x;
	while (ln->running < ln->limit && (x = list_first(&ln->queue))) {
		list_del(&ln->queue, x);
		int err = start(x);
		if (err)
			finish_later(x, err);
	}
}

/* ------------------------------------------------------------------ */
/* Finished transfers                                                  */
/* ------------------------------------------------------------------ */

static void backoff_done(struct thaw__ring_req *rr, int res, bool more)
{
	struct xfer *x = container_of(rr, struct xfer, backoff);
	struct thaw__hstream *st = x->st;
	x->backoff_armed = false;
	if (!x->req) {
		xfer_free(x); /* completed (cancelled) while its timer was out */
	} else {
		list_del(&st->backing_off, x);
		list_add(&st->lanes[x->lane].queue, x, true);
		pump(&st->lanes[x->lane]);
	}
	completed(st);
}

/* Give up on x's current URL: the next mirror, or the end. */
static void next_url(struct xfer *x, const struct thaw__http_outcome *o)
{
	struct thaw__http_store *s = x->st->s;
	if (!x->first_err)
		x->first_err = o->err;
	thaw__warn(&s->log, "%s: bytes %llu-%llu: %s%s", s->urls[x->url].url,
		   (unsigned long long)x->req->off,
		   (unsigned long long)(x->req->off + x->req->len - 1), o->why,
		   ++x->urls_tried < s->nurls ? "; trying the next mirror" : "");
	/* A mirror known to hold another object counts as tried: running out of
	 * URLs that way is the same end as running out of retries. */
	for (;;) {
		if (x->urls_tried >= s->nurls) {
			thaw__err(&s->log,
				  "%s: bytes %llu-%llu failed after every retry and mirror",
				  s->urls[0].url, (unsigned long long)x->req->off,
				  (unsigned long long)(x->req->off + x->req->len - 1));
			finish(x, x->first_err == -THAW_E_CHANGED || x->first_err == -THAW_E_HTTP
					  ? x->first_err
					  : -THAW_E_NET);
			return;
		}
		x->url = (x->url + 1) % s->nurls;
		if (!thaw__http_url_is_foreign(s, x->url))
			break;
		x->urls_tried++;
	}
	x->retry = 0;
	struct thaw__hlane *ln = &x->st->lanes[x->lane];
	list_add(&ln->queue, x, true);
	pump(ln);
}

static void retry_later(struct xfer *x, const struct thaw__http_outcome *o)
{
	struct thaw__hstream *st = x->st;
	struct thaw__http_store *s = st->s;
	x->retry++;
	stat_add(&st->retries, 1);
	uint64_t ms = thaw__http_backoff_ms(x->retry, o->retry_after_ms, &st->seed);
	thaw__info(&s->log, "%s: bytes %llu-%llu: %s; retry %d/%d in %llu ms", s->urls[x->url].url,
		   (unsigned long long)x->req->off,
		   (unsigned long long)(x->req->off + x->req->len - 1), o->why, x->retry,
		   s->max_retries, (unsigned long long)ms);
	int err = thaw__ring_timeout(st->e, &x->backoff, ms * 1000000u);
	if (err) {
		/* No timer to wait on: go straight to the next URL rather than stall. */
		next_url(x, o);
		return;
	}
	x->backoff_armed = true;
	st->ring_users++;
	list_add(&st->backing_off, x, false);
}

static void ended(struct thaw__hlane *ln, struct xfer *x, CURLcode rc)
{
	struct thaw__hstream *st = ln->st;
	struct thaw__http_store *s = st->s;
	list_del(&ln->active, x);
	ln->running--;
	lane_easy_put(ln, x->easy);
	x->easy = NULL;
	stat_add(&st->bytes, x->resp.received);

	struct thaw__http_outcome o;
	thaw__http_judge(&x->resp, rc, x->errbuf, &o);
	if (x->probing && (o.verdict == THAW__HTTP_OK || o.err == -THAW_E_CHANGED)) {
		int err = o.verdict == THAW__HTTP_OK
				  ? thaw__http_probe_check(s, &x->resp, x->probe_buf, o.why,
							   sizeof(o.why))
				  : o.err;
		if (!err)
			err = thaw__http_pin(s, x->url, &x->resp);
		/* Another object there: the other URLs may still serve. */
		if (err == -THAW_E_CHANGED)
			thaw__http_url_foreign(s, x->url);
		if (err) {
			o.verdict = err == -ENOMEM ? THAW__HTTP_FAIL : THAW__HTTP_NEXT_URL;
			o.err = err;
		} else {
			/* The mirror holds the same object: now the real request, in the same slot. */
			list_add(&ln->queue, x, true);
			return;
		}
	}
	if (o.verdict == THAW__HTTP_OK) {
		__atomic_store_n(&s->active, (unsigned)x->url, __ATOMIC_RELAXED);
		struct xfer *y = x->merged, *next;
		x->merged = NULL;
		for (; y; y = next) {
			next = y->merged;
			y->merged = NULL;
			finish(y, 0);
		}
		finish(x, 0);
		return;
	}
	/* Each rider goes on by itself; x alone is retried or failed. */
	unmerge(ln, x);
	switch (o.verdict) {
	case THAW__HTTP_OK:
		break;
	case THAW__HTTP_RETRY:
		if (s->max_retries >= 0 && x->retry < s->max_retries) {
			retry_later(x, &o);
			break;
		}
		/* fall through */
	case THAW__HTTP_NEXT_URL:
		next_url(x, &o);
		break;
	case THAW__HTTP_FAIL:
		thaw__err(&s->log, "%s: bytes %llu-%llu: %s", s->urls[x->url].url,
			  (unsigned long long)x->req->off,
			  (unsigned long long)(x->req->off + x->req->len - 1), o.why);
		finish(x, o.err);
		break;
	}
}

/*
 * Hand each transfer curl finished to ended(). Inside submit() (defer)
 * none may report: each is marked, and handled from the kick.
 */
static void reap(struct thaw__hlane *ln, bool defer)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(ln->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *easy = m->easy_handle;
		CURLcode rc = m->data.result;
		struct xfer *x = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(ln->multi, easy);
		if (!x)
			continue;
		if (defer) {
			x->ended_later = true;
			x->ended_rc = rc;
			arm_kick(ln->st);
		} else {
			ended(ln, x, rc);
		}
	}
}

static void socket_action(struct thaw__hlane *ln, curl_socket_t fd, int ev)
{
	int running;
	ln->receiving = true;
	curl_multi_socket_action(ln->multi, fd, ev, &running);
	ln->receiving = false;
	reap(ln, false);
	pump(ln);
}

/* Ring submissions that failed (ring full) are tried again after any completion. */
static void process_rearms(struct thaw__hstream *st)
{
	if (st->closing)
		return;
	thaw__http_ring_rearm(st);
	if (st->kick_rearm)
		arm_kick(st);
}

/* Ends every ring completion of the stream's, here and in http_ring.c. */
static void completed(struct thaw__hstream *st)
{
	process_rearms(st);
	ring_put(st);
}

/* ------------------------------------------------------------------ */
/* Store ops                                                           */
/* ------------------------------------------------------------------ */

/*
 * These bytes came back bad before (req->attempt times): a retry, from the
 * next URL in turn, after a backoff. True when x is taken care of (waiting
 * on its backoff, or failed because the retry budget is spent).
 */
static bool resubmitted(struct xfer *x)
{
	struct thaw__hstream *st = x->st;
	struct thaw__http_store *s = st->s;
	uint32_t attempt = x->req->attempt;
	/* The budget the store announced (store_http.c), so both agree on it. */
	if (attempt > s->base.max_refetch) {
		thaw__err(&s->log, "%s: bytes %llu-%llu came back bad %u times: giving up",
			  s->urls[0].url, (unsigned long long)x->req->off,
			  (unsigned long long)(x->req->off + x->req->len - 1), attempt);
		finish_later(x, -THAW_E_NET);
		return true;
	}
	/* Move on attempt URLs (mod their number), over mirrors that hold another object. */
	for (size_t moved = 0, guard = 0; moved < attempt % s->nurls && guard < 2 * s->nurls;
	     guard++) {
		x->url = (x->url + 1) % s->nurls;
		if (!thaw__http_url_is_foreign(s, x->url))
			moved++;
	}
	stat_add(&st->retries, 1);
	uint64_t ms = thaw__http_backoff_ms((int)attempt, -1, &st->seed);
	thaw__info(&s->log, "%s: bytes %llu-%llu came back bad; retry %u in %llu ms",
		   s->urls[x->url].url, (unsigned long long)x->req->off,
		   (unsigned long long)(x->req->off + x->req->len - 1), attempt,
		   (unsigned long long)ms);
	if (thaw__ring_timeout(st->e, &x->backoff, ms * 1000000u))
		return false; /* no timer: go now */
	x->backoff_armed = true;
	st->ring_users++;
	list_add(&st->backing_off, x, false);
	return true;
}

/* Queue req as its own transfer (or riding on a neighbour's). */
static int direct_submit(struct thaw__hstream *st, struct thaw__store_req *req)
{
	struct xfer *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->st = st;
	x->req = req;
	x->lane = req->lane;
	x->url = __atomic_load_n(&st->s->active, __ATOMIC_RELAXED);
	x->backoff.done = backoff_done;
	x->t0_us = thaw__now_us();
	req->priv = x;
	struct thaw__hlane *ln = &st->lanes[x->lane];
	if (req->attempt && resubmitted(x))
		return 0;
	list_add(&ln->queue, x, false);
	ln->in_submit = true;
	pump(ln);
	ln->in_submit = false;
	if (ln->kick_now) {
		/* Start the transfer (send the request) at once. */
		ln->kick_now = false;
		int running;
		curl_multi_socket_action(ln->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		reap(ln, true);
	}
	return 0;
}

/* The read-ahead's way to the transfers (struct thaw__http_ra). */
static int ra_send(void *ctx, struct thaw__store_req *req)
{
	return direct_submit(ctx, req);
}

static void ra_kick(void *ctx)
{
	arm_kick(ctx);
}

/* Body bytes arrive in order, so those in req's buffer so far are a prefix of it.
 * Queued, backing off or riding on another's GET: none yet that are known. */
static uint64_t ra_got(void *ctx, const struct thaw__store_req *req)
{
	const struct xfer *x = req->priv;
	(void)ctx;
	if (!x || x->req != req || !x->easy || x->probing)
		return 0;
	return x->resp.got < req->len ? x->resp.got : req->len;
}

int thaw__http_stream_submit(struct thaw__store_stream *sst, struct thaw__store_req *req)
{
	struct thaw__hstream *st = (struct thaw__hstream *)sst;
	if (st->closing)
		return -ECANCELED;
	if (req->lane >= THAW__LANES || !req->len || req->off > st->s->base.size ||
	    req->len > st->s->base.size - req->off)
		return -EINVAL;
	int how = 1;
	if (req->lane == THAW__LANE_FAULT) {
		if (thaw__http_ra_fault(&st->ra, req))
			return 0;
	} else if (!req->attempt && !(how = thaw__http_ra_submit(&st->ra, req))) {
		return 0;
	}
	int err = direct_submit(st, req);
	if (!err && how == 2 && req->priv)
		((struct xfer *)req->priv)->keep = true;
	return err;
}

static uint64_t stat_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void thaw__http_stream_stats(const struct thaw__store_stream *sst, struct thaw_stats *stats)
{
	const struct thaw__hstream *st = (const struct thaw__hstream *)sst;
	stats->http_requests += stat_get(&st->requests);
	stats->http_bytes += stat_get(&st->bytes);
	stats->http_retries += stat_get(&st->retries);
	stats->http_failures += stat_get(&st->failures);
	stats->http_fault_p50_us = thaw__lat_pct(&st->lanes[THAW__LANE_FAULT].hist, 50, NULL);
	stats->http_fault_p99_us = thaw__lat_pct(&st->lanes[THAW__LANE_FAULT].hist, 99, NULL);
	stats->http_bg_p50_us = thaw__lat_pct(&st->lanes[THAW__LANE_BACKGROUND].hist, 50, NULL);
	stats->http_bg_p99_us = thaw__lat_pct(&st->lanes[THAW__LANE_BACKGROUND].hist, 99, NULL);
}

int thaw__http_stream_open(struct thaw__store *store, struct thaw__engine *e,
			   struct thaw__store_stream **out)
{
	struct thaw__http_store *s = (struct thaw__http_store *)store;
	struct thaw__hstream *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->s = s;
	st->e = e;
	st->kick.done = kick_done;
	st->action = socket_action;
	st->completed = completed;
	thaw__http_ra_init(&st->ra, store, ra_send, ra_kick, interlude, ra_got, st);
	st->seed = thaw__now_us() ^ (uint64_t)(uintptr_t)st;
	for (int l = 0; l < THAW__LANES; l++) {
		struct thaw__hlane *ln = &st->lanes[l];
		ln->st = st;
		ln->id = (enum thaw__lane)l;
		ln->limit = l == THAW__LANE_FAULT ? THAW__HTTP_FAULT_TRANSFERS
						  : THAW__HTTP_BG_TRANSFERS;
		ln->multi = curl_multi_init();
		if (!ln->multi) {
			for (int k = 0; k < l; k++)
				curl_multi_cleanup(st->lanes[k].multi);
			free(st);
			return -ENOMEM;
		}
		thaw__http_ring_lane_init(ln);
		/* Keep every lane connection alive between requests. */
		curl_multi_setopt(ln->multi, CURLMOPT_MAXCONNECTS, (long)ln->limit * 2);
	}
	*out = (struct thaw__store_stream *)st;
	return 0;
}

void thaw__http_stream_close(struct thaw__store_stream *sst)
{
	struct thaw__hstream *st = (struct thaw__hstream *)sst;
	if (!st)
		return;
	struct xfer *x;
	for (int l = 0; l < THAW__LANES; l++) {
		struct thaw__hlane *ln = &st->lanes[l];
		while ((x = list_first(&ln->active))) {
			list_del(&ln->active, x);
			ln->running--;
			curl_multi_remove_handle(ln->multi, x->easy);
			lane_easy_put(ln, x->easy);
			x->easy = NULL;
			unmerge(ln, x); /* the riders are cancelled from the queue below */
			finish(x, -ECANCELED);
		}
		while ((x = list_first(&ln->queue))) {
			list_del(&ln->queue, x);
			finish(x, -ECANCELED);
		}
	}
	while ((x = list_first(&st->failed))) {
		list_del(&st->failed, x);
		finish(x, -ECANCELED);
	}
	thaw__http_ra_deliver(&st->ra, -ECANCELED);
	/* Backoff timers are cancelled; each xfer is freed when its timer completes. */
	while ((x = list_first(&st->backing_off))) {
		list_del(&st->backing_off, x);
		thaw__ring_cancel(st->e, &x->backoff);
		finish(x, -ECANCELED);
	}
	st->closing = true;
	st->ra.closing = true;
	for (int l = 0; l < THAW__LANES; l++) {
		struct thaw__hlane *ln = &st->lanes[l];
		curl_multi_cleanup(ln->multi);
		ln->multi = NULL;
		if (ln->timer_armed && !ln->timer_cancelling)
			thaw__ring_cancel(st->e, &ln->timer);
	}
	thaw__http_ring_close(st);
	if (!st->ring_users)
		stream_free(st);
}
