/* SPDX-License-Identifier: MIT */
/*
 * curl's sockets and timers on the engine's ring, for the HTTP stream:
 * curl's socket callback arms one-shot poll requests, its timer callback a
 * ring timeout, and their completions hand the event back to the stream
 * (struct thaw__hstream's action and completed pointers, so that this file
 * does not link against http_stream.c, which links against it). A request
 * the full ring refused is marked and armed again after the next completion.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "http_stream.h"

static void sock_update(struct thaw__hsock *sk);

static void sock_unlink_free(struct thaw__hsock *sk)
{
	thaw__list_del(&sk->lane->st->socks, &sk->node);
	free(sk);
}

static void poll_done(struct thaw__ring_req *rr, int res, bool more)
{
	struct thaw__hsock *sk = container_of(rr, struct thaw__hsock, req);
	struct thaw__hlane *ln = sk->lane;
	struct thaw__hstream *st = ln->st;
	sk->armed = sk->cancelling = false;
	if (!sk->removed && !st->closing && res != -ECANCELED) {
		int ev = 0;
		if (res < 0) {
			ev = CURL_CSELECT_ERR;
		} else {
			/* On HUP/ERR let curl read or write to learn what happened. */
			unsigned r = (unsigned)res;
			if ((r & (POLLIN | POLLHUP | POLLERR)) && (sk->want & POLLIN))
				ev |= CURL_CSELECT_IN;
			if ((r & (POLLOUT | POLLHUP | POLLERR)) && (sk->want & POLLOUT))
				ev |= CURL_CSELECT_OUT;
		}
		sk->dispatching = true;
		st->action(ln, sk->fd, ev);
		sk->dispatching = false;
	}
	sock_update(sk);
	st->completed(st);
}

static void sock_arm(struct thaw__hsock *sk)
{
	struct thaw__hstream *st = sk->lane->st;
	int err = thaw__ring_poll(st->e, &sk->req, sk->fd, sk->want, false);
	if (err) {
		thaw__warn(&st->s->log, "HTTP: cannot poll a socket on the ring (%s); retrying",
			   thaw_strerror(err));
		sk->rearm = true;
		return;
	}
	sk->rearm = false;
	sk->armed = true;
	sk->armed_ev = sk->want;
	st->ring_users++;
}

/* Bring the ring's poll in line with what curl wants. */
static void sock_update(struct thaw__hsock *sk)
{
	struct thaw__hstream *st = sk->lane->st;
	if (sk->armed) {
		if ((sk->removed || sk->armed_ev != sk->want) && !sk->cancelling &&
		    !thaw__ring_cancel(st->e, &sk->req))
			sk->cancelling = true;
		return;
	}
	if (sk->removed) {
		if (!sk->dispatching)
			sock_unlink_free(sk);
		return;
	}
	if (sk->want && !sk->dispatching)
		sock_arm(sk);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct thaw__hlane *ln = userp;
	struct thaw__hsock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sk) {
			curl_multi_assign(ln->multi, fd, NULL);
			sk->removed = true;
			sk->want = 0;
			sock_update(sk);
		}
		return 0;
	}
	if (!sk) {
		sk = calloc(1, sizeof(*sk));
		if (!sk)
			return -1; /* curl fails the transfer */
		sk->req.done = poll_done;
		sk->req.urgent = ln->id == THAW__LANE_FAULT; /* a fault waits on its bytes */
		sk->lane = ln;
		sk->fd = fd;
		thaw__list_add_head(&ln->st->socks, &sk->node);
		curl_multi_assign(ln->multi, fd, sk);
	}
	sk->want = (what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0);
	/* While its poll completion is being handled, the socket is re-armed right after. */
	if (!sk->dispatching)
		sock_update(sk);
	return 0;
}

static void timer_update(struct thaw__hlane *ln);

static void timer_done(struct thaw__ring_req *rr, int res, bool more)
{
	struct thaw__hlane *ln = container_of(rr, struct thaw__hlane, timer);
	struct thaw__hstream *st = ln->st;
	ln->timer_armed = ln->timer_cancelling = false;
	ln->timer_armed_us = 0;
	if (!st->closing) {
		if (ln->timer_want_us && thaw__now_us() >= ln->timer_want_us) {
			ln->timer_want_us = 0;
			st->action(ln, CURL_SOCKET_TIMEOUT, 0);
		}
		timer_update(ln);
	}
	st->completed(st);
}

static void timer_update(struct thaw__hlane *ln)
{
	struct thaw__hstream *st = ln->st;
	if (!ln->timer_want_us || st->closing)
		return; /* an armed timer fires harmlessly */
	if (ln->timer_armed) {
		/* Only a deadline moving earlier needs a cancel; a later one re-arms on expiry. */
		if (ln->timer_armed_us > ln->timer_want_us + 50 && !ln->timer_cancelling &&
		    !thaw__ring_cancel(st->e, &ln->timer))
			ln->timer_cancelling = true;
		return;
	}
	uint64_t now = thaw__now_us();
	uint64_t us = ln->timer_want_us > now ? ln->timer_want_us - now : 0;
	if (thaw__ring_timeout(st->e, &ln->timer, us * 1000u)) {
		ln->timer_rearm = true;
		return;
	}
	ln->timer_rearm = false;
	ln->timer_armed = true;
	ln->timer_armed_us = now + us;
	st->ring_users++;
}

static int timer_cb(CURLM *multi, long ms, void *userp)
{
	struct thaw__hlane *ln = userp;
	if (ms == 0 && ln->in_submit) {
		/* A new transfer wants to start: submit() does it now, not a ring trip later. */
		ln->kick_now = true;
		ln->timer_want_us = 0;
		return 0;
	}
	ln->timer_want_us = ms < 0 ? 0 : thaw__now_us() + (uint64_t)ms * 1000u;
	timer_update(ln);
	return 0;
}

void thaw__http_ring_rearm(struct thaw__hstream *st)
{
	for (struct thaw__list_node *n = st->socks.first; n; n = n->next) {
		struct thaw__hsock *sk = container_of(n, struct thaw__hsock, node);
		if (sk->rearm && !sk->armed && !sk->removed && sk->want)
			sock_arm(sk);
		else if (sk->armed && !sk->cancelling && sk->armed_ev != sk->want)
			sock_update(sk); /* a cancel the full ring refused */
	}
	for (int l = 0; l < THAW__LANES; l++)
		if (st->lanes[l].timer_rearm)
			timer_update(&st->lanes[l]);
}

void thaw__http_ring_lane_init(struct thaw__hlane *ln)
{
	ln->timer.done = timer_done;
	curl_multi_setopt(ln->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(ln->multi, CURLMOPT_SOCKETDATA, ln);
	curl_multi_setopt(ln->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(ln->multi, CURLMOPT_TIMERDATA, ln);
}

void thaw__http_ring_close(struct thaw__hstream *st)
{
	/* Sockets curl did not report removed: stop watching them. */
	for (struct thaw__list_node *n = st->socks.first, *next; n; n = next) {
		next = n->next;
		struct thaw__hsock *sk = container_of(n, struct thaw__hsock, node);
		sk->removed = true;
		if (sk->armed) {
			if (!sk->cancelling)
				thaw__ring_cancel(st->e, &sk->req);
			sk->cancelling = true;
		} else {
			sock_unlink_free(sk);
		}
	}
}
