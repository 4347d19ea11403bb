/* SPDX-License-Identifier: MIT */
/*
 * The HTTP store's internals, shared by its modules:
 *   store_http.c   the store: settings, open, synchronous pread
 *   http_urls.c    each URL's pin and trust, and easy-handle setup for it
 *   http_stream.c  asynchronous range GETs: curl multi driven by the engine's ring
 *                  (with http_readahead.c and http_ring.c; see http_stream.h)
 *   http_policy.c  one response's checks, the retry policy, latency histograms
 */
#ifndef THAW_RESTORE_HTTP_H
#define THAW_RESTORE_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <curl/curl.h>

#include "common/latency.h"
#include "store.h"

#define THAW__HTTP_VALIDATOR_MAX   256
#define THAW__HTTP_HEAD_CAP	   (64u << 20) /* most the open request reads */
#define THAW__HTTP_PROBE_LEN	   4096u       /* bytes compared before a mirror is trusted */
#define THAW__HTTP_FAULT_MERGE_MAX (1u << 20)  /* most one fault-lane GET serves */
/* HTTP transfers at once per lane. The restore may keep more requests
 * outstanding (store->inflight): the queued ones wait, and adjacent ones
 * merge into one GET when a transfer slot frees. */
#define THAW__HTTP_FAULT_TRANSFERS    8
#define THAW__HTTP_BG_TRANSFERS	      4
#define THAW__HTTP_REPEAT_SLOTS	      512	  /* ranges asked again kept (duplicate chunks) */
#define THAW__HTTP_REPEAT_MAX_LEN     (64u << 10) /* larger answers are not kept */
#define THAW__HTTP_RA_WINDOWS	      3		  /* background read-ahead windows kept */
#define THAW__HTTP_BACKOFF_BASE_MS    100
#define THAW__HTTP_BACKOFF_MAX_MS     5000
#define THAW__HTTP_RETRY_AFTER_MAX_MS 60000

/* One URL of the object (the primary or a mirror) and what pins it. */
struct thaw__http_url {
	char *url;
	/* Set once, under the store's lock; never changes afterwards. */
	bool pinned;
	bool foreign; /* a mirror that holds another object: never used */
	bool pin_is_etag;
	char validator[THAW__HTTP_VALIDATOR_MAX]; /* the ETag, else the Last-Modified date */
	struct curl_slist *headers; /* the store's headers + If-Match/If-Unmodified-Since */
	/* The same plus each lane's Priority (RFC 9218): a server that honours it sends
	 * what a fault waits for ahead of population. NULL: headers alone. */
	struct curl_slist *lane_headers[THAW__LANES];
};

struct thaw__http_store {
	struct thaw__store base;
	struct thaw__logger log;
	pthread_mutex_t lock;

	struct thaw__http_url *urls;
	size_t nurls;
	unsigned active; /* the URL that last worked; requests start there */

	/* Request settings (fixed after open). */
	struct curl_slist *headers; /* custom headers, AWS session token */
	char *cacert;
	bool insecure;
	char *sigv4;   /* curl's provider1:provider2:region:service form */
	char *userpwd; /* key:secret for SigV4 */
	long connect_timeout_ms;
	long low_speed_time_s;
	int max_retries;

	/* The first bytes of the object, read at open: serves the header and tables. */
	unsigned char *head;
	uint64_t head_len;

	/* Easy handles for synchronous reads, reused for their connections. */
	CURL *pool[8];
	unsigned npool;
	CURLSH *share; /* DNS and TLS session cache for every handle */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	/* Counters of the synchronous reads. */
	uint64_t sync_requests, sync_retries, sync_bytes;
};

/* What one range request expects. */
struct thaw__http_expect {
	uint64_t off, len;
	uint64_t total;			  /* object size; 0 while unknown (the open request) */
	const struct thaw__http_url *pin; /* checked against the reply's ETag/Last-Modified */
	enum thaw__lane lane;		  /* how urgent, on the wire: a pinned URL's Priority */
};

/* What one reply was, filled by curl's header and write callbacks. */
struct thaw__http_resp {
	struct thaw__http_expect want;
	void *buf; /* want.len bytes; with grow, reallocated as needed */
	/* Or, when set, the body is scattered over these (their lengths add up to want.len):
	 * several requests for adjacent ranges served by one GET. */
	const struct iovec *iov;
	unsigned iovcnt;
	bool grow; /* open: buf grows, total is learned from Content-Range, and the
		    * transfer stops once it holds the header and declared tables */

	long status;
	char reason[64];
	bool range_seen;
	uint64_t range_start, range_end, range_total;
	char etag[THAW__HTTP_VALIDATOR_MAX];
	char last_modified[THAW__HTTP_VALIDATOR_MAX];
	long retry_after_ms; /* -1: none */

	uint64_t got;	    /* body bytes placed in buf */
	uint64_t received;  /* all body and header bytes over the wire */
	uint64_t discarded; /* body bytes of a non-206 reply */
	int abort;	    /* enum thaw__http_abort: why the write callback stopped */
	char abort_why[128];
};

enum thaw__http_abort {
	THAW__HTTP_ABORT_NONE = 0,
	THAW__HTTP_ABORT_ENOUGH, /* grow: we have what we need, on purpose */
	THAW__HTTP_ABORT_RANGE,	 /* Content-Range does not match the request */
	THAW__HTTP_ABORT_LONG,	 /* more body than asked for */
	THAW__HTTP_ABORT_NOMEM,
	THAW__HTTP_ABORT_ERRBODY, /* an error reply with a large body */
};

/* What to do after an attempt. */
enum thaw__http_verdict {
	THAW__HTTP_OK,
	THAW__HTTP_RETRY,    /* same URL, after a backoff */
	THAW__HTTP_NEXT_URL, /* this URL cannot serve it: a mirror may */
	THAW__HTTP_FAIL,     /* nothing can: the object changed */
};

struct thaw__http_outcome {
	enum thaw__http_verdict verdict;
	int err;	     /* -THAW_E_* / -errno for the final failure */
	long retry_after_ms; /* server-requested delay, -1 if none */
	char why[256];	     /* for the log and error messages */
};

/* Set up resp for a fresh attempt at want (buf not owned). */
void thaw__http_resp_reset(struct thaw__http_resp *r, const struct thaw__http_expect *want,
			   void *buf);
/* curl callbacks; userdata is a struct thaw__http_resp. */
size_t thaw__http_header_cb(char *data, size_t size, size_t n, void *userdata);
size_t thaw__http_write_cb(char *data, size_t size, size_t n, void *userdata);
/* Judge a finished attempt from curl's result and what the callbacks saw. */
void thaw__http_judge(const struct thaw__http_resp *r, CURLcode rc, const char *curl_err,
		      struct thaw__http_outcome *out);
/* Delay before retry number `retry` (1-based), with jitter; honours retry_after_ms. */
uint64_t thaw__http_backoff_ms(int retry, long retry_after_ms, uint64_t *seed);

/* http_urls.c: used by the synchronous reads and the stream alike. */
/* Apply the store's settings to an easy handle for url (TLS, auth, timeouts). */
int thaw__http_easy_setup(struct thaw__http_store *s, CURL *easy, size_t url,
			  struct thaw__http_resp *resp, char *errbuf);
/* Pin URL i from a probe reply that matched the object read at open. */
int thaw__http_pin(struct thaw__http_store *s, size_t i, const struct thaw__http_resp *r);
/* Compare a probe reply with the bytes read at open; 0 when it is the same object. */
int thaw__http_probe_check(struct thaw__http_store *s, const struct thaw__http_resp *r,
			   const void *buf, char *why, size_t why_len);
bool thaw__http_url_pinned(struct thaw__http_store *s, size_t i);
/* Mark mirror i as holding another object, so no request goes there again. */
void thaw__http_url_foreign(struct thaw__http_store *s, size_t i);
bool thaw__http_url_is_foreign(struct thaw__http_store *s, size_t i);

int thaw__http_stream_open(struct thaw__store *store, struct thaw__engine *e,
			   struct thaw__store_stream **out);
int thaw__http_stream_submit(struct thaw__store_stream *st, struct thaw__store_req *req);
void thaw__http_stream_stats(const struct thaw__store_stream *st, struct thaw_stats *stats);
void thaw__http_stream_close(struct thaw__store_stream *st);

#endif
