/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for HTTP reply handling: the header and body callbacks
 * curl calls (status line, Content-Range, ETag, Last-Modified, Retry-After,
 * body lengths, scatter over several buffers, the growing open request)
 * and the verdict drawn from them. The input is a request description
 * (12 bytes) then a reply: header lines, an empty line, the body. A reply
 * judged OK must be exactly what was asked; the delay is always bounded.
 */
#include <stdlib.h>
#include <string.h>

#include "store/http.h"

struct req {
	uint32_t off;
	uint16_t len;
	uint8_t flags; /* 1 grow, 2 pinned by ETag, 4 by date, 8 scatter, 16 total known */
	uint8_t rc;    /* curl result when the callbacks did not stop the transfer */
	uint32_t total;
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct req q;
	if (size < sizeof(q))
		return 0;
	memcpy(&q, data, sizeof(q));
	data += sizeof(q);
	size -= sizeof(q);
	bool grow = q.flags & 1;
	struct thaw__http_url pin = { .pinned = (q.flags & 6) != 0, .pin_is_etag = q.flags & 2 };
	strcpy(pin.validator, q.flags & 2 ? "\"v1\"" : "Wed, 21 Oct 2015 07:28:00 GMT");
	struct thaw__http_expect want = { .off = grow ? 0 : q.off,
					  .len = grow ? 4096 : (uint64_t)q.len + 1,
					  .total = q.flags & 16 ? q.total : 0,
					  .pin = q.flags & 6 ? &pin : NULL };
	struct thaw__http_resp r = { .grow = grow };
	unsigned char *buf = malloc(want.len);
	thaw__http_resp_reset(&r, &want, buf);
	struct iovec iov[2];
	if ((q.flags & 8) && !grow && want.len > 1) {
		iov[0] = (struct iovec){ buf, want.len / 3 };
		iov[1] = (struct iovec){ buf + want.len / 3, want.len - want.len / 3 };
		r.iov = iov;
		r.iovcnt = 2;
	}

	/* Header lines up to the first empty one, each with its line end, as curl passes them. */
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	size_t at = 0;
	bool stopped = false;
	while (at < size) {
		char *nl = memchr(text + at, '\n', size - at);
		size_t n = nl ? (size_t)(nl - (text + at)) + 1 : size - at;
		bool empty = n <= 2 && (text[at] == '\n' || text[at] == '\r');
		if (thaw__http_header_cb(text + at, 1, n, &r) != n)
			abort();
		at += n;
		if (empty)
			break;
	}
	/* The body in pieces of varying sizes. */
	for (size_t piece = 1; at < size && !stopped; piece = piece * 3 % 1024 + 1) {
		size_t n = piece < size - at ? piece : size - at;
		stopped = thaw__http_write_cb(text + at, 1, n, &r) != n;
		at += n;
	}
	static const CURLcode rcs[] = { CURLE_OK, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE,
					CURLE_OPERATION_TIMEDOUT, CURLE_PEER_FAILED_VERIFICATION };
	CURLcode rc = stopped ? CURLE_WRITE_ERROR : rcs[q.rc % 5];
	struct thaw__http_outcome o;
	thaw__http_judge(&r, rc, NULL, &o);

	if (o.verdict == THAW__HTTP_OK) {
		if (r.status != 206 || !r.range_seen)
			abort();
		if (!grow && (r.got != want.len || r.range_start != want.off ||
			      r.range_end != want.off + want.len - 1 ||
			      (want.total && r.range_total != want.total)))
			abort();
		if (grow && r.range_start != 0)
			abort();
	} else if (o.err >= 0) {
		abort(); /* every failure names its error */
	}
	if (o.retry_after_ms < -1)
		abort();
	uint64_t seed = 1;
	for (int retry = 0; retry < 12; retry++)
		if (thaw__http_backoff_ms(retry, o.retry_after_ms, &seed) >
		    (THAW__HTTP_RETRY_AFTER_MAX_MS > THAW__HTTP_BACKOFF_MAX_MS
			     ? THAW__HTTP_RETRY_AFTER_MAX_MS
			     : THAW__HTTP_BACKOFF_MAX_MS))
			abort();
	free(r.grow ? r.buf : buf);
	free(text);
	return 0;
}
