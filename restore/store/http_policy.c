/* SPDX-License-Identifier: MIT */
/*
 * What one HTTP reply means: the header and body callbacks record and
 * check what arrives against what was asked, and thaw__http_judge turns
 * that into retry / next mirror / fail. Shared by the synchronous reads
 * and the streams so both apply exactly the same rules.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "format/format.h"
#include "http.h"

#define ERRBODY_MAX (64u << 10) /* error replies are read (to keep the connection) up to this */

void thaw__http_resp_reset(struct thaw__http_resp *r, const struct thaw__http_expect *want,
			   void *buf)
{
	bool grow = r->grow;
	memset(r, 0, sizeof(*r));
	r->want = *want;
	r->buf = buf;
	r->grow = grow;
	r->retry_after_ms = -1;
}

/* Copy a header value without surrounding blanks or CR/LF. */
static void header_value(char *dst, size_t dst_len, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= dst_len)
		n = dst_len - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val,
		      size_t *val_len)
{
	size_t l = strlen(name);
	if (n <= l || line[l] != ':' || strncasecmp(line, name, l))
		return false;
	*val = line + l + 1;
	*val_len = n - l - 1;
	return true;
}

/* Decimal digits at *s, no sign and no wrap-around (%llu takes "-1" as 2^64-1). */
static bool take_dec(const char **s, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	if (p == *s)
		return false;
	*s = p;
	*v = x;
	return true;
}

static void parse_content_range(struct thaw__http_resp *r, const char *v)
{
	uint64_t a, b, t;
	/* "bytes A-B/TOTAL" with A <= B < TOTAL; the 416 form, with "*" for the range, is ignored */
	if (strncmp(v, "bytes ", 6))
		return;
	v += 6;
	if (!take_dec(&v, &a) || *v++ != '-' || !take_dec(&v, &b) || *v++ != '/' ||
	    !take_dec(&v, &t) || *v || a > b || b >= t)
		return;
	r->range_seen = true;
	r->range_start = a;
	r->range_end = b;
	r->range_total = t;
}

/* Milliseconds to wait, at most the most ever waited (no overflow on a huge value). */
static long parse_retry_after(const char *v)
{
	const long max_s = THAW__HTTP_RETRY_AFTER_MAX_MS / 1000;
	char *end;
	long secs = strtol(v, &end, 10);
	if (end != v && *end == 0)
		return secs < 0 ? 0 : (secs > max_s ? max_s : secs) * 1000;
	time_t when = curl_getdate(v, NULL); /* HTTP-date form */
	if (when < 0)
		return -1;
	time_t now = time(NULL);
	return when <= now ? 0 : when - now > max_s ? max_s * 1000 : (long)(when - now) * 1000;
}

size_t thaw__http_header_cb(char *data, size_t size, size_t n, void *userdata)
{
	struct thaw__http_resp *r = userdata;
	size_t len = size * n;
	const char *v;
	size_t vl;
	char tmp[THAW__HTTP_VALIDATOR_MAX];

	r->received += len;
	if (len > 5 && !strncmp(data, "HTTP/", 5)) {
		/* A new reply (after a redirect or 100 Continue): forget the previous one's fields. */
		r->range_seen = false;
		r->etag[0] = r->last_modified[0] = 0;
		r->retry_after_ms = -1;
		const char *sp = memchr(data, ' ', len);
		if (sp) {
			r->status = strtol(sp + 1, NULL, 10);
			header_value(r->reason, sizeof(r->reason), sp + 1,
				     len - (size_t)(sp + 1 - data));
		}
	} else if (header_is(data, len, "content-range", &v, &vl)) {
		header_value(tmp, sizeof(tmp), v, vl);
		parse_content_range(r, tmp);
	} else if (header_is(data, len, "etag", &v, &vl)) {
		header_value(r->etag, sizeof(r->etag), v, vl);
	} else if (header_is(data, len, "last-modified", &v, &vl)) {
		header_value(r->last_modified, sizeof(r->last_modified), v, vl);
	} else if (header_is(data, len, "retry-after", &v, &vl)) {
		header_value(tmp, sizeof(tmp), v, vl);
		r->retry_after_ms = parse_retry_after(tmp);
	}
	return len;
}

static size_t stop(struct thaw__http_resp *r, int why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static size_t stop(struct thaw__http_resp *r, int why, const char *fmt, ...)
{
	r->abort = why;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->abort_why, sizeof(r->abort_why), fmt, ap);
		va_end(ap);
	}
	return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
}

/*
 * The open request asks for a generous range and stops once it holds the
 * header and the tables the header declares, so one request serves open.
 */
static uint64_t head_needed(const struct thaw__http_resp *r)
{
	uint64_t total = r->want.total;
	uint64_t need = THAW__FMT_HEADER_SIZE;
	if (r->got >= THAW__FMT_HEADER_SIZE && !memcmp(r->buf, THAW__FMT_MAGIC, 8)) {
		uint64_t tl;
		memcpy(&tl, (const char *)r->buf + offsetof(struct thaw__fmt_header, tables_len),
		       sizeof(tl));
		if (tl > need)
			need = tl;
	}
	if (need > THAW__HTTP_HEAD_CAP)
		need = THAW__HTTP_HEAD_CAP;
	return need < total ? need : total;
}

static size_t write_grow(struct thaw__http_resp *r, const char *data, size_t len)
{
	if (r->got == 0) {
		if (r->range_start != 0)
			return stop(r, THAW__HTTP_ABORT_RANGE,
				    "Content-Range starts at %llu, asked 0",
				    (unsigned long long)r->range_start);
		r->want.total = r->range_total;
	}
	if (r->got + len > r->want.len) {
		uint64_t cap = r->want.len ? r->want.len : 65536;
		while (cap < r->got + len)
			cap *= 2;
		void *nb = realloc(r->buf, cap);
		if (!nb)
			return stop(r, THAW__HTTP_ABORT_NOMEM, "out of memory");
		r->buf = nb;
		r->want.len = cap;
	}
	memcpy((char *)r->buf + r->got, data, len);
	r->got += len;
	if (r->got >= head_needed(r) && r->got < r->want.total)
		return stop(r, THAW__HTTP_ABORT_ENOUGH, NULL);
	return len;
}

size_t thaw__http_write_cb(char *data, size_t size, size_t n, void *userdata)
{
	struct thaw__http_resp *r = userdata;
	size_t len = size * n;

	r->received += len;
	if (r->status != 206) {
		/* Read small error bodies so the connection survives; never into buf. */
		r->discarded += len;
		if (r->discarded > ERRBODY_MAX)
			return stop(r, THAW__HTTP_ABORT_ERRBODY, NULL);
		return len;
	}
	if (!r->range_seen)
		return stop(r, THAW__HTTP_ABORT_RANGE, "206 reply without Content-Range");
	if (r->grow)
		return write_grow(r, data, len);
	if (r->got == 0) {
		uint64_t end = r->want.off + r->want.len - 1;
		if (r->range_start != r->want.off || r->range_end != end ||
		    (r->want.total && r->range_total != r->want.total))
			return stop(r, THAW__HTTP_ABORT_RANGE,
				    "Content-Range bytes %llu-%llu/%llu, asked %llu-%llu/%llu",
				    (unsigned long long)r->range_start,
				    (unsigned long long)r->range_end,
				    (unsigned long long)r->range_total,
				    (unsigned long long)r->want.off, (unsigned long long)end,
				    (unsigned long long)r->want.total);
	}
	if (r->got + len > r->want.len)
		return stop(r, THAW__HTTP_ABORT_LONG, "body longer than the %llu bytes asked",
			    (unsigned long long)r->want.len);
	if (r->iov) {
		/* Scatter: find the piece holding body offset got, copy, move on. */
		uint64_t base = 0, done = 0;
		for (unsigned i = 0; i < r->iovcnt && done < len; i++) {
			uint64_t end = base + r->iov[i].iov_len;
			if (r->got + done < end) {
				uint64_t at = r->got + done - base, take = end - (r->got + done);
				if (take > len - done)
					take = len - done;
				memcpy((char *)r->iov[i].iov_base + at, data + done, take);
				done += take;
			}
			base = end;
		}
	} else {
		memcpy((char *)r->buf + r->got, data, len);
	}
	r->got += len;
	return len;
}

static void outcome(struct thaw__http_outcome *o, enum thaw__http_verdict v, int err,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void outcome(struct thaw__http_outcome *o, enum thaw__http_verdict v, int err,
		    const char *fmt, ...)
{
	o->verdict = v;
	o->err = err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, ap);
	va_end(ap);
}

/* curl failures a retry on the same URL cannot fix. */
static bool curl_permanent(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_AUTH_ERROR:
	case CURLE_BAD_CONTENT_ENCODING:
		return true;
	default:
		return false;
	}
}

static void judge_206(const struct thaw__http_resp *r, struct thaw__http_outcome *o)
{
	const struct thaw__http_url *pin = r->want.pin;
	if (pin && pin->pinned) {
		/* A server that ignores If-Match still names what it sent. */
		if (pin->pin_is_etag && r->etag[0] && strcmp(r->etag, pin->validator)) {
			outcome(o, THAW__HTTP_FAIL, -THAW_E_CHANGED,
				"object changed on the server (ETag %s, pinned %s)", r->etag,
				pin->validator);
			return;
		}
		if (!pin->pin_is_etag && r->last_modified[0] &&
		    strcmp(r->last_modified, pin->validator)) {
			outcome(o, THAW__HTTP_FAIL, -THAW_E_CHANGED,
				"object changed on the server (Last-Modified %s, pinned %s)",
				r->last_modified, pin->validator);
			return;
		}
	}
	/* The open request learns the object's size from the first body bytes: with
	 * none, "all of it" would be nothing at all. */
	if (!r->range_seen || (r->grow && !r->got)) {
		outcome(o, THAW__HTTP_RETRY, -THAW_E_NET, "206 reply without %s",
			r->range_seen ? "a body" : "Content-Range");
		return;
	}
	if (r->grow) {
		uint64_t need =
			r->want.total < THAW__HTTP_HEAD_CAP ? r->want.total : THAW__HTTP_HEAD_CAP;
		if (r->abort == THAW__HTTP_ABORT_ENOUGH || r->got >= need)
			outcome(o, THAW__HTTP_OK, 0, "ok");
		else
			outcome(o, THAW__HTTP_RETRY, -THAW_E_NET, "short body: %llu of %llu bytes",
				(unsigned long long)r->got, (unsigned long long)need);
		return;
	}
	if (r->got != r->want.len)
		outcome(o, THAW__HTTP_RETRY, -THAW_E_NET, "short body: %llu of %llu bytes",
			(unsigned long long)r->got, (unsigned long long)r->want.len);
	else
		outcome(o, THAW__HTTP_OK, 0, "ok");
}

void thaw__http_judge(const struct thaw__http_resp *r, CURLcode rc, const char *curl_err,
		      struct thaw__http_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->retry_after_ms = -1;
	switch (r->abort) {
	case THAW__HTTP_ABORT_RANGE:
		if (r->want.total && r->range_seen && r->range_total != r->want.total) {
			/* Without a pin this is a mirror being checked: it holds another object. */
			outcome(o, THAW__HTTP_FAIL, -THAW_E_CHANGED,
				r->want.pin ? "object changed on the server (%s)"
					    : "not the snapshot's object (%s)",
				r->abort_why);
			return;
		}
		outcome(o, THAW__HTTP_RETRY, -THAW_E_NET, "%s", r->abort_why);
		return;
	case THAW__HTTP_ABORT_LONG:
		outcome(o, THAW__HTTP_RETRY, -THAW_E_NET, "%s", r->abort_why);
		return;
	case THAW__HTTP_ABORT_NOMEM:
		outcome(o, THAW__HTTP_FAIL, -ENOMEM, "out of memory");
		return;
	case THAW__HTTP_ABORT_ENOUGH:
		judge_206(r, o);
		return;
	default:
		break;
	}
	if (rc != CURLE_OK && r->abort != THAW__HTTP_ABORT_ERRBODY) {
		const char *msg = curl_err && *curl_err ? curl_err : curl_easy_strerror(rc);
		outcome(o, curl_permanent(rc) ? THAW__HTTP_NEXT_URL : THAW__HTTP_RETRY, -THAW_E_NET,
			"%s", msg);
		return;
	}
	long st = r->status;
	if (st == 206) {
		judge_206(r, o);
		return;
	}
	o->retry_after_ms = r->retry_after_ms;
	const char *reason = r->reason[0] ? r->reason : "";
	if (st == 412)
		outcome(o, THAW__HTTP_FAIL, -THAW_E_CHANGED,
			"object changed on the server (HTTP %s)", reason);
	else if (st == 408 || st == 429 || (st >= 500 && st <= 599))
		outcome(o, THAW__HTTP_RETRY, -THAW_E_HTTP, "HTTP %s", reason);
	else if (st == 200)
		outcome(o, THAW__HTTP_NEXT_URL, -THAW_E_HTTP,
			"server ignored the Range header (HTTP %s)", reason);
	else
		outcome(o, THAW__HTTP_NEXT_URL, -THAW_E_HTTP, "HTTP %s", reason);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

uint64_t thaw__http_backoff_ms(int retry, long retry_after_ms, uint64_t *seed)
{
	uint64_t d = THAW__HTTP_BACKOFF_BASE_MS;
	for (int i = 1; i < retry && d < THAW__HTTP_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > THAW__HTTP_BACKOFF_MAX_MS)
		d = THAW__HTTP_BACKOFF_MAX_MS;
	/* Half fixed, half random: clients that failed together do not retry together. */
	d = d / 2 + xorshift(seed) % (d / 2 + 1);
	if (retry_after_ms >= 0) {
		uint64_t ra = (uint64_t)retry_after_ms;
		if (ra > THAW__HTTP_RETRY_AFTER_MAX_MS)
			ra = THAW__HTTP_RETRY_AFTER_MAX_MS;
		if (ra > d)
			d = ra;
	}
	return d;
}
