/* SPDX-License-Identifier: MIT */
/*
 * HTTP(S) store: a snapshot served by any HTTP server or object store,
 * read with HTTP/1.1 range GETs.
 *
 * Open reads the header and tables with one range request (it stops as
 * soon as it holds what the header declares) and pins the object by its
 * ETag (else Last-Modified): every later request carries If-Match (or
 * If-Unmodified-Since), so a snapshot replaced on the server is refused
 * with 412 instead of being mixed with the old one. Mirrors are trusted
 * only after their first bytes match what open read, and are pinned then.
 *
 * Request headers come from the open options and from the environment
 * variable THAW_HTTP_HEADERS (one "Name: value" per line), read here so
 * secrets reach every program that uses the library without appearing on
 * a command line. AWS SigV4 credentials come from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/errors.h"
#include "http.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct thaw__http_store *to_http(struct thaw__store *s)
{
	return (struct thaw__http_store *)s;
}

/* ------------------------------------------------------------------ */
/* Easy handles                                                        */
/* ------------------------------------------------------------------ */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
	struct thaw__http_store *s = ctx;
	pthread_mutex_lock(&s->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	struct thaw__http_store *s = ctx;
	pthread_mutex_unlock(&s->share_locks[data]);
}

static CURL *easy_get(struct thaw__http_store *s)
{
	CURL *e = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->npool)
		e = s->pool[--s->npool];
	pthread_mutex_unlock(&s->lock);
	return e ? e : curl_easy_init();
}

static void easy_put(struct thaw__http_store *s, CURL *e)
{
	pthread_mutex_lock(&s->lock);
	if (s->npool < sizeof(s->pool) / sizeof(s->pool[0])) {
		s->pool[s->npool++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	curl_easy_cleanup(e);
}

/* ------------------------------------------------------------------ */
/* Synchronous reads                                                   */
/* ------------------------------------------------------------------ */

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One range read on URL i, retried with backoff; o says how it ended. */
static void sync_attempts(struct thaw__http_store *s, CURL *easy, size_t i,
			  struct thaw__http_resp *resp, const struct thaw__http_expect *want,
			  void *buf, struct thaw__http_outcome *o)
{
	char errbuf[CURL_ERROR_SIZE];
	uint64_t seed = (uint64_t)(uintptr_t)resp ^ thaw__now_us();
	for (int retry = 0;; retry++) {
		if (resp->grow) {
			/* A partial buffer from a failed attempt is not reused. */
			free(resp->buf);
			buf = NULL;
		}
		thaw__http_resp_reset(resp, want, buf);
		if (thaw__http_easy_setup(s, easy, i, resp, errbuf)) {
			snprintf(o->why, sizeof(o->why), "setting up the request failed");
			o->verdict = THAW__HTTP_FAIL;
			o->err = -EINVAL;
			return;
		}
		__atomic_fetch_add(&s->sync_requests, 1, __ATOMIC_RELAXED);
		CURLcode rc = curl_easy_perform(easy);
		__atomic_fetch_add(&s->sync_bytes, resp->received, __ATOMIC_RELAXED);
		thaw__http_judge(resp, rc, errbuf, o);
		if (o->verdict != THAW__HTTP_RETRY)
			return;
		if (s->max_retries < 0 || retry >= s->max_retries)
			return;
		uint64_t ms = thaw__http_backoff_ms(retry + 1, o->retry_after_ms, &seed);
		thaw__warn(&s->log, "%s: %s; retry %d/%d in %llu ms", s->urls[i].url, o->why,
			   retry + 1, s->max_retries, (unsigned long long)ms);
		__atomic_fetch_add(&s->sync_retries, 1, __ATOMIC_RELAXED);
		sleep_ms(ms);
	}
}

/* Make sure URL i serves the object open read; pins it. */
static int sync_probe(struct thaw__http_store *s, CURL *easy, size_t i,
		      struct thaw__http_outcome *o)
{
	uint64_t len = s->head_len < THAW__HTTP_PROBE_LEN ? s->head_len : THAW__HTTP_PROBE_LEN;
	unsigned char buf[THAW__HTTP_PROBE_LEN];
	struct thaw__http_expect want = { .off = 0, .len = len, .total = s->base.size };
	struct thaw__http_resp resp = { 0 };
	sync_attempts(s, easy, i, &resp, &want, buf, o);
	int err = o->verdict == THAW__HTTP_OK
			  ? thaw__http_probe_check(s, &resp, buf, o->why, sizeof(o->why))
			  : o->err;
	if (err == -THAW_E_CHANGED) {
		/* Another object entirely: that mirror is out, the others may serve. */
		thaw__http_url_foreign(s, i);
		o->verdict = THAW__HTTP_NEXT_URL;
		o->err = err;
	}
	if (err)
		return err;
	return thaw__http_pin(s, i, &resp);
}

static int http_read_remote(struct thaw__http_store *s, void *buf, uint64_t len, uint64_t off)
{
	CURL *easy = easy_get(s);
	if (!easy)
		return -ENOMEM;
	struct thaw__http_resp resp = { 0 };
	struct thaw__http_outcome o = { .err = -THAW_E_NET };
	unsigned start = __atomic_load_n(&s->active, __ATOMIC_RELAXED);
	int first_err = 0;
	char first_why[sizeof(o.why)] = "";
	for (size_t k = 0; k < s->nurls; k++) {
		size_t i = (start + k) % s->nurls;
		if (thaw__http_url_is_foreign(s, i))
			continue;
		if (!thaw__http_url_pinned(s, i) && sync_probe(s, easy, i, &o)) {
			if (o.verdict == THAW__HTTP_FAIL && o.err != -THAW_E_CHANGED)
				break;
		} else {
			struct thaw__http_expect want = {
				.off = off, .len = len, .total = s->base.size, .pin = &s->urls[i]
			};
			sync_attempts(s, easy, i, &resp, &want, buf, &o);
			if (o.verdict == THAW__HTTP_OK) {
				__atomic_store_n(&s->active, (unsigned)i, __ATOMIC_RELAXED);
				easy_put(s, easy);
				return 0;
			}
			if (o.verdict == THAW__HTTP_FAIL)
				break; /* the pinned object changed: no mirror can be mixed in */
		}
		thaw__warn(&s->log, "%s: bytes %llu-%llu: %s", s->urls[i].url,
			   (unsigned long long)off, (unsigned long long)(off + len - 1), o.why);
		if (!first_err) {
			first_err = o.err;
			snprintf(first_why, sizeof(first_why), "%s", o.why);
		}
	}
	easy_put(s, easy);
	if (o.verdict == THAW__HTTP_FAIL)
		first_err = o.err;
	thaw__err(&s->log, "%s: bytes %llu-%llu could not be read from any URL: %s", s->urls[0].url,
		  (unsigned long long)off, (unsigned long long)(off + len - 1),
		  o.verdict == THAW__HTTP_FAIL ? o.why : first_why);
	return first_err ? first_err : -THAW_E_NET;
}

static int http_pread(struct thaw__store *st, void *buf, uint64_t len, uint64_t off)
{
	struct thaw__http_store *s = to_http(st);
	if (off > st->size || len > st->size - off)
		return -EINVAL;
	if (!len)
		return 0;
	/* The header and tables come from what open read. */
	if (off < s->head_len) {
		uint64_t n = s->head_len - off < len ? s->head_len - off : len;
		memcpy(buf, s->head + off, n);
		buf = (char *)buf + n;
		off += n;
		len -= n;
		if (!len)
			return 0;
	}
	return http_read_remote(s, buf, len, off);
}

/* ------------------------------------------------------------------ */
/* Open                                                                */
/* ------------------------------------------------------------------ */

static void http_close(struct thaw__store *st)
{
	struct thaw__http_store *s = to_http(st);
	if (!s)
		return;
	for (unsigned i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	if (s->share)
		curl_share_cleanup(s->share);
	for (size_t i = 0; i < s->nurls; i++) {
		free(s->urls[i].url);
		curl_slist_free_all(s->urls[i].headers);
		for (int l = 0; l < THAW__LANES; l++)
			curl_slist_free_all(s->urls[i].lane_headers[l]);
	}
	free(s->urls);
	curl_slist_free_all(s->headers);
	free(s->cacert);
	free(s->sigv4);
	if (s->userpwd) {
		explicit_bzero(s->userpwd, strlen(s->userpwd));
		free(s->userpwd);
	}
	free(s->head);
	pthread_mutex_destroy(&s->lock);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->share_locks[i]);
	free(s);
}

static int add_header(struct thaw__http_store *s, const char *line, char *err, size_t err_len)
{
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strcspn(line, "\r\n");
	if (!n)
		return 0;
	char *copy = strndup(line, n);
	if (!copy)
		return -ENOMEM;
	const char *colon = strchr(copy, ':');
	if (!colon || colon == copy) {
		free(copy); /* never echoed: it may hold a secret */
		return thaw__fail(&s->log, err, err_len, -EINVAL,
				  "a request header is not of the form \"Name: value\"");
	}
	struct curl_slist *l = curl_slist_append(s->headers, copy);
	free(copy);
	if (!l)
		return -ENOMEM;
	s->headers = l;
	return 0;
}

static int setup_headers(struct thaw__http_store *s, const struct thaw_open_opts *opts, char *err,
			 size_t err_len)
{
	const char *const *hdrs = opts->headers;
	for (size_t i = 0; hdrs && hdrs[i]; i++) {
		int r = add_header(s, hdrs[i], err, err_len);
		if (r)
			return r;
	}
	const char *env = getenv("THAW_HTTP_HEADERS");
	while (env && *env) {
		int r = add_header(s, env, err, err_len);
		if (r)
			return r;
		env += strcspn(env, "\n");
		env += *env == '\n';
	}
	return 0;
}

/*
 * "provider:region:service" (as the thaw command takes it) becomes curl's
 * "provider1:provider2:region:service" ("aws" → "aws:amz"); a four-field
 * value is passed as is.
 */
static int setup_sigv4(struct thaw__http_store *s, const char *spec, char *err, size_t err_len)
{
	int colons = 0;
	for (const char *p = spec; *p; p++)
		colons += *p == ':';
	char buf[256];
	const char *c = strchr(spec, ':');
	if (colons == 2 && c != spec) {
		int plen = (int)(c - spec);
		const char *second = plen == 3 && !strncasecmp(spec, "aws", 3) ? "amz" : NULL;
		snprintf(buf, sizeof(buf), "%.*s:%.*s%s", plen, spec, second ? 3 : plen,
			 second ? second : spec, c);
	} else if (colons == 3 && c != spec) {
		snprintf(buf, sizeof(buf), "%s", spec);
	} else {
		return thaw__fail(&s->log, err, err_len, -EINVAL,
				  "aws-sigv4 \"%s\": expected provider:region:service (e.g. "
				  "aws:us-east-1:s3)",
				  spec);
	}
	const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	if (!key || !*key || !secret || !*secret)
		return thaw__fail(
			&s->log, err, err_len, -EINVAL,
			"AWS SigV4 signing needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
			"in the environment");
	s->sigv4 = strdup(buf);
	if (asprintf(&s->userpwd, "%s:%s", key, secret) < 0)
		s->userpwd = NULL;
	if (!s->sigv4 || !s->userpwd)
		return -ENOMEM;
	/* S3 wants the payload's hash in a header; a GET has none to sign. */
	if (strstr(buf, ":amz:")) {
		struct curl_slist *l =
			curl_slist_append(s->headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
		if (!l)
			return -ENOMEM;
		s->headers = l;
	}
	const char *token = getenv("AWS_SESSION_TOKEN");
	if (token && *token) {
		char *line;
		if (asprintf(&line, "x-amz-security-token: %s", token) < 0)
			return -ENOMEM;
		struct curl_slist *l = curl_slist_append(s->headers, line);
		explicit_bzero(line, strlen(line));
		free(line);
		if (!l)
			return -ENOMEM;
		s->headers = l;
	}
	return 0;
}

static int setup_urls(struct thaw__http_store *s, const char *url,
		      const struct thaw_open_opts *opts)
{
	const char *const *mirrors = opts->mirrors;
	size_t n = 1;
	while (mirrors && mirrors[n - 1])
		n++;
	s->urls = calloc(n, sizeof(*s->urls));
	if (!s->urls)
		return -ENOMEM;
	s->nurls = n;
	for (size_t i = 0; i < n; i++)
		if (!(s->urls[i].url = strdup(i ? mirrors[i - 1] : url)))
			return -ENOMEM;
	return 0;
}

/* The first range request: size, pin, header and tables, from URL i. */
static int open_fetch(struct thaw__http_store *s, size_t i, struct thaw__http_outcome *o)
{
	CURL *easy = easy_get(s);
	if (!easy)
		return -ENOMEM;
	struct thaw__http_expect want = { .off = 0, .len = 0, .total = 0 };
	struct thaw__http_resp resp = { .grow = true };
	sync_attempts(s, easy, i, &resp, &want, NULL, o);
	easy_put(s, easy);
	if (o->verdict != THAW__HTTP_OK) {
		free(resp.buf);
		return o->err;
	}
	s->head = resp.buf;
	s->head_len = resp.got;
	s->base.size = resp.want.total;
	int err = thaw__http_pin(s, i, &resp);
	if (err)
		return err;
	s->active = (unsigned)i;
	thaw__debug(&s->log, "%s: %llu bytes, read the first %llu at open", s->urls[i].url,
		    (unsigned long long)s->base.size, (unsigned long long)s->head_len);
	return 0;
}

static const struct thaw__store_ops http_ops = {
	.pread = http_pread,
	.stream_open = thaw__http_stream_open,
	.submit = thaw__http_stream_submit,
	.stream_stats = thaw__http_stream_stats,
	.stream_close = thaw__http_stream_close,
	.close = http_close,
};

static int http_open(struct thaw__http_store *s, const char *url, const struct thaw_open_opts *opts,
		     char *err, size_t err_len)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return thaw__fail(&s->log, err, err_len, -ENOMEM,
				  "%s: libcurl failed to initialise: %s", url,
				  curl_easy_strerror(curl_init_rc));
	int r = setup_urls(s, url, opts);
	if (!r)
		r = setup_headers(s, opts, err, err_len);
	const char *sig = opts->aws_sigv4;
	if (!r && sig && *sig)
		r = setup_sigv4(s, sig, err, err_len);
	const char *cacert = opts->cacert;
	if (!r && cacert && !(s->cacert = strdup(cacert)))
		r = -ENOMEM;
	if (r)
		return r == -ENOMEM ? thaw__fail(&s->log, err, err_len, r, "%s: out of memory", url)
				    : r;
	s->insecure = opts->insecure != 0;
	int ct = opts->connect_timeout_ms, ls = opts->low_speed_timeout_ms;
	int mr = opts->max_retries;
	s->connect_timeout_ms = ct > 0 ? ct : 5000;
	s->low_speed_time_s = ls > 0 ? (ls + 999) / 1000 : 10;
	s->max_retries = mr > 0 ? mr : mr < 0 ? -1 : 6;
	if (s->insecure)
		thaw__warn(&s->log, "TLS peer verification is off (--insecure)");

	s->share = curl_share_init();
	if (!s->share)
		return thaw__fail(&s->log, err, err_len, -ENOMEM, "%s: out of memory", url);
	curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
	curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

	/* Bytes that fail their check are read again up to the same budget as any
	 * retry: max_retries on each URL in turn (see req->attempt in store.h). */
	uint64_t budget = s->max_retries > 0 ? (uint64_t)s->max_retries * s->nurls : 1;
	s->base.max_refetch = budget < 255 ? (uint32_t)budget : 255;

	/* The primary first, then each mirror, until one serves the object. */
	struct thaw__http_outcome o = { 0 };
	char first_why[sizeof(o.why)] = "";
	int first_err = 0;
	for (size_t i = 0; i < s->nurls; i++) {
		r = open_fetch(s, i, &o);
		if (!r)
			return 0;
		if (r == -ENOMEM)
			return thaw__fail(&s->log, err, err_len, r, "%s: out of memory", url);
		if (s->nurls > 1)
			thaw__warn(&s->log, "%s: %s", s->urls[i].url, o.why);
		if (!first_err) {
			first_err = r;
			snprintf(first_why, sizeof(first_why), "%s", o.why);
		}
	}
	if (s->nurls > 1)
		return thaw__fail(&s->log, err, err_len, first_err,
				  "%s: %s (and every mirror failed too)", url, first_why);
	return thaw__fail(&s->log, err, err_len, first_err, "%s: %s", url, first_why);
}

int thaw__store_http_open(const char *url, const struct thaw_open_opts *opts,
			  const struct thaw__logger *log, struct thaw__store **out, char *err,
			  size_t err_len)
{
	*out = NULL;
	struct thaw__http_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &http_ops;
	if (log)
		s->log = *log;
	else
		thaw__logger_init(&s->log, NULL, NULL);
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->share_locks[i], NULL);
	/* Transfers: ~8 hide loopback and LAN latency for faults; the background lane moves
	 * large ranges, so 4 saturate the link without crowding faults. The restore may keep
	 * 4x that many background requests outstanding: adjacent ones queued behind a busy
	 * lane merge into one GET (runs broken by chunks that store nothing are adjacent). */
	s->base.inflight[THAW__LANE_FAULT] = THAW__HTTP_FAULT_TRANSFERS;
	s->base.inflight[THAW__LANE_BACKGROUND] = 4 * THAW__HTTP_BG_TRANSFERS;
	s->base.bg_min = 64u << 10;
	s->base.bg_max = 4u << 20;
	int r = http_open(s, url, opts, err, err_len);
	if (r) {
		http_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}
