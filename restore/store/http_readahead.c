/* SPDX-License-Identifier: MIT */
/*
 * The HTTP stream's memory in front of its transfers: background read-ahead
 * windows and the cache of ranges asked for again. It sends its own GETs
 * through the stream (the submit and kick pointers in struct
 * thaw__http_ra), so it depends on nothing in http_stream.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http_stream.h"
#include "uffd/base.h"

/*
 * The background pass reads the data section mostly in file order, but in
 * runs broken wherever a chunk stores nothing (all-zero or duplicate
 * chunks): many small requests for ranges that follow each other. Each
 * HTTP request costs far more than a local read, so sequential background
 * requests are served from windows: one GET for a large range ahead,
 * requests copied out of it. Window sizes follow the background policy:
 * they double while no fault arrives and halve when one does, between
 * bg_min and bg_max. A request that jumps elsewhere (a duplicate's bytes
 * further back) goes out on its own. If a window fails, each request it
 * held is retried on its own, so one bad range costs only its own chunks.
 */
struct ra_win {
	struct thaw__store_req req; /* the window's own read; req.buf is owned */
	uint64_t cap;		    /* bytes req.buf holds (req.len is this window's) */
	struct thaw__http_ra *ra;
	bool busy, ok;
	struct thaw__store_req *waiters, **wtail; /* linked through ->priv */
};

static struct thaw__store_req **next_of(struct thaw__store_req *r)
{
	return (struct thaw__store_req **)&r->priv;
}

/* req's bytes are in its buffer: report it from the kick, never inside submit(). */
static void ready_add(struct thaw__http_ra *ra, struct thaw__store_req *req)
{
	*next_of(req) = NULL;
	*ra->ready_tail = req;
	ra->ready_tail = next_of(req);
	ra->kick(ra->ctx);
}

static void ra_copy(const struct ra_win *w, struct thaw__store_req *r)
{
	memcpy(r->buf, (const unsigned char *)w->req.buf + (r->off - w->req.off), r->len);
}

static void ra_win_done(struct thaw__store_req *wreq, int err)
{
	struct ra_win *w = container_of(wreq, struct ra_win, req);
	struct thaw__http_ra *ra = w->ra;
	struct thaw__store_req *r = w->waiters, *next;
	w->waiters = NULL;
	w->wtail = &w->waiters;
	w->busy = false;
	w->ok = !err;
	for (; r; r = next) {
		next = *next_of(r);
		if (!err) {
			ra_copy(w, r);
			r->done(r, 0);
			/* A window is MiBs of copies and installs handed out: faults go between. */
			if (next)
				ra->interlude(ra->ctx);
		} else if (err == -THAW_E_CHANGED || err == -ECANCELED || ra->closing) {
			r->done(r, err);
		} else {
			/* Alone, with its own retries: only the bytes that cannot be had fail. */
			int e = ra->submit(ra->ctx, r);
			if (e)
				r->done(r, e);
		}
	}
}

static void ra_wait(struct ra_win *w, struct thaw__store_req *r)
{
	*next_of(r) = NULL;
	*w->wtail = r;
	w->wtail = next_of(r);
}

/* A window [off, off + len) in a free slot (the oldest idle one is reused). NULL if none. */
static struct ra_win *ra_window(struct thaw__http_ra *ra, uint64_t off, uint64_t len)
{
	struct ra_win *w = NULL;
	int slot = -1;
	for (int i = 0; i < THAW__HTTP_RA_WINDOWS; i++) {
		struct ra_win *c = ra->win[i];
		if (!c) {
			slot = i;
			w = NULL;
			break;
		}
		if (!c->busy && (slot < 0 || c->req.off < ra->win[slot]->req.off)) {
			slot = i;
			w = c;
		}
	}
	if (slot < 0)
		return NULL;
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return NULL;
		w->ra = ra;
		ra->win[slot] = w;
	}
	if (w->cap < len) {
		/* The old window's bytes are not wanted: no realloc, which would copy them. */
		void *b = malloc(len);
		if (!b)
			return NULL;
		free(w->req.buf);
		w->req.buf = b;
		w->cap = len;
	}
	w->req.off = off;
	w->req.len = (uint32_t)len;
	w->req.lane = THAW__LANE_BACKGROUND;
	w->req.attempt = 0;
	w->req.done = ra_win_done;
	w->waiters = NULL;
	w->wtail = &w->waiters;
	w->ok = false;
	if (ra->submit(ra->ctx, &w->req)) {
		w->req.off = w->req.len = 0; /* an empty slot */
		return NULL;
	}
	w->busy = true;
	return w;
}

/* The next window's size: grow while no fault comes, shrink when one does. */
static uint64_t ra_next_size(struct thaw__http_ra *ra, uint64_t at_least)
{
	const struct thaw__store *s = ra->store;
	if (ra->fault)
		ra->size = ra->size / 2 > s->bg_min ? ra->size / 2 : s->bg_min;
	else if (ra->size < s->bg_max)
		ra->size = ra->size * 2 < s->bg_max ? ra->size * 2 : s->bg_max;
	ra->fault = false;
	return ra->size > at_least ? ra->size : at_least;
}

static struct ra_win *ra_covering(struct thaw__http_ra *ra, uint64_t off, uint64_t end)
{
	for (int i = 0; i < THAW__HTTP_RA_WINDOWS; i++) {
		struct ra_win *w = ra->win[i];
		if (w && (w->busy || w->ok) && off >= w->req.off && end <= w->req.off + w->req.len)
			return w;
	}
	return NULL;
}

/* When reading passes the middle of window w, fetch the one after it. */
static void ra_prefetch(struct thaw__http_ra *ra, const struct ra_win *w, uint64_t end)
{
	uint64_t wend = w->req.off + w->req.len, size = ra->store->size;
	if (end < w->req.off + w->req.len / 2 || wend >= size || ra_covering(ra, wend, wend + 1))
		return;
	uint64_t len = ra_next_size(ra, 1);
	ra_window(ra, wend, len < size - wend ? len : size - wend);
}

/*
 * Duplicate chunks store no bytes of their own: each names an earlier
 * chunk's, and images repeat a few pages many times (the same library
 * page, a filler pattern), so the background pass asks for the same small
 * ranges again and again, out of order. Those answers are kept, keyed by
 * exact range, and served from memory when asked for again.
 */
struct repeat {
	uint64_t off;
	uint32_t len, hits;
	void *buf;
};

static struct repeat *repeat_slot(struct thaw__http_ra *ra, uint64_t off, uint32_t len, bool insert)
{
	if (!ra->rep) {
		if (!insert || !(ra->rep = calloc(THAW__HTTP_REPEAT_SLOTS, sizeof(*ra->rep))))
			return NULL;
	}
	size_t h = (size_t)((off * 0x9E3779B97F4A7C15ull) >> 40) % THAW__HTTP_REPEAT_SLOTS;
	struct repeat *victim = NULL;
	for (unsigned i = 0; i < 8; i++) {
		struct repeat *e = &ra->rep[(h + i) % THAW__HTTP_REPEAT_SLOTS];
		if (e->buf && e->off == off && e->len == len)
			return e;
		if (!victim || !e->buf || (victim->buf && e->hits < victim->hits))
			victim = e;
	}
	return insert ? victim : NULL;
}

static bool repeat_lookup(struct thaw__http_ra *ra, struct thaw__store_req *req)
{
	struct repeat *e = repeat_slot(ra, req->off, req->len, false);
	if (!e)
		return false;
	e->hits++;
	memcpy(req->buf, e->buf, req->len);
	ready_add(ra, req);
	return true;
}

void thaw__http_ra_keep(struct thaw__http_ra *ra, const struct thaw__store_req *req)
{
	if (req->len > THAW__HTTP_REPEAT_MAX_LEN)
		return;
	struct repeat *e = repeat_slot(ra, req->off, req->len, true);
	if (!e)
		return;
	if (e->buf && e->off == req->off && e->len == req->len)
		return;
	void *b = e->buf && e->len >= req->len ? e->buf : realloc(e->buf, req->len);
	if (!b)
		return;
	memcpy(b, req->buf, req->len);
	*e = (struct repeat){ .off = req->off, .len = req->len, .hits = 0, .buf = b };
	/* Everything ages, so entries that stop being asked for make room. */
	for (unsigned i = 0; i < 8; i++) {
		struct repeat *o = &ra->rep[(e - ra->rep + i) % THAW__HTTP_REPEAT_SLOTS];
		o->hits /= 2;
	}
}

static void repeat_free(struct thaw__http_ra *ra)
{
	for (unsigned i = 0; ra->rep && i < THAW__HTTP_REPEAT_SLOTS; i++)
		free(ra->rep[i].buf);
	free(ra->rep);
	ra->rep = NULL;
}

static int ra_place(struct thaw__http_ra *ra, struct thaw__store_req *req, uint64_t seen);

/*
 * A request that starts inside a window and runs past its end: the window
 * serves its head and the rest goes on as a request of its own (into the
 * next window, usually), so no byte is fetched twice. The background pass
 * asks for runs of chunks as large as the windows, so sending such a
 * request alone fetched again most of what a window already held (18% more
 * bytes than the snapshot over a full population of mixed2g).
 */
struct ra_split {
	struct thaw__store_req head, tail;
	struct thaw__store_req *parent;
	int parts, err;
};

static void ra_split_put(struct ra_split *sp, int err)
{
	if (err && !sp->err)
		sp->err = err;
	if (--sp->parts)
		return;
	struct thaw__store_req *parent = sp->parent;
	err = sp->err;
	free(sp);
	parent->done(parent, err);
}

static void ra_head_done(struct thaw__store_req *part, int err)
{
	ra_split_put(container_of(part, struct ra_split, head), err);
}

static void ra_tail_done(struct thaw__store_req *part, int err)
{
	ra_split_put(container_of(part, struct ra_split, tail), err);
}

/* req starts inside w and ends past it. False when it cannot be split (it goes alone). */
static bool ra_split(struct thaw__http_ra *ra, struct ra_win *w, struct thaw__store_req *req)
{
	uint64_t wend = w->req.off + w->req.len;
	struct ra_split *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return false;
	sp->parent = req;
	sp->parts = 2;
	sp->head = (struct thaw__store_req){ .off = req->off,
					     .len = (uint32_t)(wend - req->off),
					     .buf = req->buf,
					     .lane = req->lane,
					     .done = ra_head_done };
	sp->tail = (struct thaw__store_req){ .off = wend,
					     .len = (uint32_t)(req->off + req->len - wend),
					     .buf = (unsigned char *)req->buf + (wend - req->off),
					     .lane = req->lane,
					     .done = ra_tail_done };
	/* The head first: placing the tail may reuse w's slot once w is idle. */
	if (w->busy) {
		ra_wait(w, &sp->head);
	} else {
		ra_copy(w, &sp->head);
		ready_add(ra, &sp->head);
	}
	/* The tail carries on from the window's end: read-ahead continues there. If it
	 * cannot go out, the request fails once the head is in (never inside submit). */
	if (ra_place(ra, &sp->tail, wend)) {
		int e = ra->submit(ra->ctx, &sp->tail);
		if (e)
			ra_split_put(sp, e);
	}
	return true;
}

int thaw__http_ra_submit(struct thaw__http_ra *ra, struct thaw__store_req *req)
{
	uint64_t seen = ra->next;
	if (req->off + req->len > ra->next)
		ra->next = req->off + req->len;
	return ra_place(ra, req, seen);
}

/* 0: req is served from a window or the repeat cache; 1: send it alone; 2: same, keep it. */
static int ra_place(struct thaw__http_ra *ra, struct thaw__store_req *req, uint64_t seen)
{
	uint64_t off = req->off, end = off + req->len, size = ra->store->size;
	struct ra_win *w = ra_covering(ra, off, end);
	if (w) {
		if (w->busy) {
			ra_wait(w, req);
		} else {
			/* Copied now: the window may be reused before the kick. */
			ra_copy(w, req);
			ready_add(ra, req);
		}
		ra_prefetch(ra, w, end);
		return 0;
	}
	w = ra_covering(ra, off, off + 1);
	if (w && off >= seen && ra_split(ra, w, req))
		return 0;
	/* Only a request that starts beyond every window and carries on from where
	 * background reading got to opens a window. One reaching back (a duplicate
	 * chunk's bytes) may be one asked before. */
	if (off < seen)
		return repeat_lookup(ra, req) ? 0 : 2;
	if (off - seen > ra->size || w)
		return 1;
	uint64_t len = ra_next_size(ra, req->len);
	w = ra_window(ra, off, len < size - off ? len : size - off);
	if (!w)
		return 1;
	ra_wait(w, req);
	return 0;
}

/* Their bytes are copied already. */
void thaw__http_ra_deliver(struct thaw__http_ra *ra, int err)
{
	struct thaw__store_req *r = ra->ready, *next;
	ra->ready = NULL;
	ra->ready_tail = &ra->ready;
	for (; r; r = next) {
		next = *next_of(r);
		r->done(r, err);
	}
}

static void windows_free(struct thaw__http_ra *ra)
{
	for (int i = 0; i < THAW__HTTP_RA_WINDOWS; i++) {
		if (ra->win[i])
			free(ra->win[i]->req.buf);
		free(ra->win[i]);
		ra->win[i] = NULL;
	}
}

/*
 * A fault whose bytes a window or the repeat cache holds needs no request.
 * That includes a window still in flight whose bytes so far reach past the
 * fault's: in a migration the workload touches memory at random, and near
 * the end most of what is missing is in windows on their way, so each such
 * fault would otherwise fetch its chunk a second time on the fault lane.
 */
static bool fault_from_memory(struct thaw__http_ra *ra, struct thaw__store_req *req)
{
	uint64_t end = req->off + req->len;
	struct ra_win *w = ra_covering(ra, req->off, end);
	if (w && (w->ok || (w->busy && ra->got(ra->ctx, &w->req) >= end - w->req.off))) {
		ra_copy(w, req);
		ready_add(ra, req);
		return true;
	}
	return repeat_lookup(ra, req);
}

bool thaw__http_ra_fault(struct thaw__http_ra *ra, struct thaw__store_req *req)
{
	ra->fault = true;
	return !req->attempt && fault_from_memory(ra, req);
}

void thaw__http_ra_init(struct thaw__http_ra *ra, const struct thaw__store *store,
			int (*submit)(void *ctx, struct thaw__store_req *req),
			void (*kick)(void *ctx), void (*interlude)(void *ctx),
			uint64_t (*got)(void *ctx, const struct thaw__store_req *req), void *ctx)
{
	*ra = (struct thaw__http_ra){ .store = store,
				      .submit = submit,
				      .kick = kick,
				      .interlude = interlude,
				      .got = got,
				      .ctx = ctx };
	ra->ready_tail = &ra->ready;
	ra->size = store->bg_min ? store->bg_min : 64u << 10;
}

void thaw__http_ra_free(struct thaw__http_ra *ra)
{
	windows_free(ra);
	repeat_free(ra);
}
