/* SPDX-License-Identifier: MIT */
/*
 * The HTTP store's URLs: each one's pin (the validator every later request
 * carries), whether a mirror holds the same object, and setting up an easy
 * handle for one. Shared by the synchronous reads (store_http.c) and the
 * asynchronous stream (http_stream.c); apart from both so that neither
 * calls into the other for them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

/* ------------------------------------------------------------------ */
/* A URL's state, and an easy handle for it                            */
/* ------------------------------------------------------------------ */

bool thaw__http_url_pinned(struct thaw__http_store *s, size_t i)
{
	pthread_mutex_lock(&s->lock);
	bool p = s->urls[i].pinned;
	pthread_mutex_unlock(&s->lock);
	return p;
}

void thaw__http_url_foreign(struct thaw__http_store *s, size_t i)
{
	pthread_mutex_lock(&s->lock);
	s->urls[i].foreign = true;
	pthread_mutex_unlock(&s->lock);
}

bool thaw__http_url_is_foreign(struct thaw__http_store *s, size_t i)
{
	pthread_mutex_lock(&s->lock);
	bool f = s->urls[i].foreign;
	pthread_mutex_unlock(&s->lock);
	return f;
}

int thaw__http_easy_setup(struct thaw__http_store *s, CURL *easy, size_t i,
			  struct thaw__http_resp *resp, char *errbuf)
{
	const struct thaw__http_url *u = &s->urls[i];
	char range[64];
	if (resp->want.len)
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)resp->want.off,
			 (unsigned long long)(resp->want.off + resp->want.len - 1));
	else
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)resp->want.off,
			 (unsigned long long)(resp->want.off + THAW__HTTP_HEAD_CAP - 1));
	errbuf[0] = 0;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(easy, opt, val);                                     \
	} while (0)
	SET(CURLOPT_URL, u->url);
	SET(CURLOPT_RANGE, range);
	/* A pinned URL's header lists carry its If-Match / If-Unmodified-Since. */
	const struct curl_slist *h = s->headers;
	if (u->pinned && resp->want.pin)
		h = u->lane_headers[resp->want.lane] ? u->lane_headers[resp->want.lane]
						     : u->headers;
	SET(CURLOPT_HTTPHEADER, h);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	/* A stalled transfer (no byte for this long) is a connection error: retried. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, s->low_speed_time_s);
	SET(CURLOPT_HEADERFUNCTION, thaw__http_header_cb);
	SET(CURLOPT_HEADERDATA, resp);
	SET(CURLOPT_WRITEFUNCTION, thaw__http_write_cb);
	SET(CURLOPT_WRITEDATA, resp);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_SHARE, s->share);
	SET(CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
	if (s->cacert)
		SET(CURLOPT_CAINFO, s->cacert);
	if (s->sigv4) {
		SET(CURLOPT_AWS_SIGV4, s->sigv4);
		SET(CURLOPT_USERPWD, s->userpwd);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

/* ------------------------------------------------------------------ */
/* Pins                                                                */
/* ------------------------------------------------------------------ */

/* A copy of base with line appended (none when line is empty); NULL when out of memory. */
static struct curl_slist *list_plus(const struct curl_slist *base, const char *line)
{
	struct curl_slist *list = NULL, *n;
	for (; base; base = base->next) {
		if (!(n = curl_slist_append(list, base->data)))
			goto nomem;
		list = n;
	}
	if (!line[0])
		return list;
	if ((n = curl_slist_append(list, line)))
		return n;
nomem:
	curl_slist_free_all(list);
	return NULL;
}

int thaw__http_pin(struct thaw__http_store *s, size_t i, const struct thaw__http_resp *r)
{
	/* RFC 9218 urgency: 0 is the highest, 7 the lowest ("background"). */
	static const char *const priority[THAW__LANES] = {
		[THAW__LANE_FAULT] = "Priority: u=0",
		[THAW__LANE_BACKGROUND] = "Priority: u=7",
	};
	struct thaw__http_url *u = &s->urls[i];
	pthread_mutex_lock(&s->lock);
	if (u->pinned) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	/* If-Match compares strongly: a weak ETag would fail every request. */
	bool etag = r->etag[0] && strncmp(r->etag, "W/", 2) != 0;
	const char *val = etag ? r->etag : r->last_modified;
	char line[THAW__HTTP_VALIDATOR_MAX + 32] = "";
	if (val[0]) {
		snprintf(line, sizeof(line), "%s: %s", etag ? "If-Match" : "If-Unmodified-Since",
			 val);
		snprintf(u->validator, sizeof(u->validator), "%s", val);
	} else {
		thaw__warn(&s->log,
			   "%s: the server sends neither ETag nor Last-Modified; a replaced object "
			   "will be caught only by chunk hashes",
			   u->url);
	}
	struct curl_slist *list = list_plus(s->headers, line);
	if (!list && (s->headers || line[0])) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	/* Without them requests go out with list alone: unprioritised, still correct. */
	for (int l = 0; l < THAW__LANES; l++)
		u->lane_headers[l] = list_plus(list, priority[l]);
	u->pin_is_etag = etag;
	u->headers = list;
	u->pinned = true;
	pthread_mutex_unlock(&s->lock);
	thaw__debug(&s->log, "%s: pinned by %s %s", u->url, etag ? "ETag" : "Last-Modified", val);
	return 0;
}

int thaw__http_probe_check(struct thaw__http_store *s, const struct thaw__http_resp *r,
			   const void *buf, char *why, size_t why_len)
{
	if (r->range_total != s->base.size) {
		snprintf(why, why_len, "mirror object is %llu bytes, the snapshot %llu",
			 (unsigned long long)r->range_total, (unsigned long long)s->base.size);
		return -THAW_E_CHANGED;
	}
	if (r->got > s->head_len || memcmp(buf, s->head, r->got)) {
		snprintf(why, why_len, "mirror object's first bytes differ from the snapshot's");
		return -THAW_E_CHANGED;
	}
	return 0;
}
