/* SPDX-License-Identifier: MIT */
/*
 * The live export: a snapshot view of this process's memory served over
 * HTTP with libmicrohttpd, answering what the HTTP store asks of a server:
 * single-range GETs answered 206 with Content-Range, a strong ETag honoured
 * in If-Match, Content-Length. A range that is one piece of a memfd is
 * answered from the fd, so the kernel sends the pages (sendfile); anything
 * else goes out by writev straight from memory.
 *
 * "Sent" means a reply's last byte went to the socket: a chunk counts once
 * some reply covering it all completed. Until every data chunk has, a
 * destination may still need one, and the export refuses to stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "export.h"
#include "common/abi.h"
#include "common/latency.h"
#include "uffd/log.h"

#define EXPORT_PATH	"/thaw.snap"
#define CONNECTIONS_MAX 256
/* Most pieces in one writev reply: libmicrohttpd 0.9.75 aborts the process
 * ("Failed to destroy mutex") on a reply of 4096 iovecs; 768 were fine. */
#define IOV_PIECES_MAX 512
#define COPY_BLOCK     (256u << 10) /* bytes a copied reply hands over at a time */
/* CPU priority of a connection sending background replies (RFC 9218 urgency 4-7). */
#define BULK_NICE 10

struct thaw_export {
	struct thaw__export_view view;
	struct thaw__logger log;
	struct MHD_Daemon *daemon;
	char url[96];
	uint64_t t0_ns;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t all_sent;
	uint8_t *sent; /* per chunk: a reply covering it completed */
	struct thaw_export_stats st;
};

/* One request's range, [start, end), as answered. */
struct export_req {
	struct thaw_export *exp;
	uint64_t start, end;
	bool head;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct thaw_export *x = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	thaw__warn(&x->log, "export: %s", msg);
}

/* Count the data chunks [start, end) covers in full as sent. Under the lock. */
static void mark_sent(struct thaw_export *x, uint64_t start, uint64_t end)
{
	const struct thaw__export_view *v = &x->view;
	for (uint64_t j = thaw__export_data_from(v, start); j < v->chunks_data; j++) {
		const struct thaw__fmt_chunk *c = &v->chunks[v->data_ids[j]];
		if (c->offset + c->stored_len > end)
			break;
		if (!x->sent[j]) {
			x->sent[j] = 1;
			x->st.chunks_sent++;
		}
	}
	if (x->st.chunks_sent == v->chunks_data && !x->st.complete_us) {
		x->st.complete_us = (thaw__now_ns() - x->t0_ns) / 1000;
		pthread_cond_broadcast(&x->all_sent);
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct thaw_export *x = cls;
	struct export_req *rq = *req_cls;
	if (!rq || *req_cls == x) { /* no reply of ours was queued (the first call's mark) */
		*req_cls = NULL;
		return;
	}
	pthread_mutex_lock(&x->lock);
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		if (!rq->head)
			x->st.bytes_sent += rq->end - rq->start;
		/* A reply that begins with the tables is how a reader opens the
		 * snapshot: it keeps the tables and drops the rest, which may all be
		 * in the socket by then. Only replies for data alone count. */
		if (!rq->head && rq->start >= x->view.tables_len)
			mark_sent(x, rq->start, rq->end);
	} else {
		x->st.requests_aborted++;
	}
	pthread_mutex_unlock(&x->lock);
	free(rq);
	*req_cls = NULL;
}

/*
 * The Range header: "bytes=A-B", "bytes=A-" or "bytes=-N". 1 with [*a, *b]
 * set, 0 to answer the whole object (no range, or one we do not serve as a
 * range, such as several), -1 when it lies past the end (416).
 */
static int parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
	unsigned long long x, y;
	int n = 0;
	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return 0;
	h += 6;
	if (sscanf(h, "-%llu%n", &x, &n) == 1 && !h[n]) {
		if (!x || !size)
			return -1;
		*a = x < size ? size - x : 0;
		*b = size - 1;
		return 1;
	}
	if (sscanf(h, "%llu-%n", &x, &n) != 1)
		return 0;
	if (!h[n])
		y = size ? size - 1 : 0;
	else if (sscanf(h + n, "%llu", &y) != 1 || y < x)
		return 0;
	if (x >= size)
		return -1;
	*a = x;
	*b = y < size ? y : size - 1;
	return 1;
}

/*
 * RFC 9218 urgency of a request: the Priority header's u= (0 the most
 * urgent, 7 the least), 3 without one.
 */
static int urgency(const char *prio)
{
	for (const char *p = prio; p && *p; p += strcspn(p, ",")) {
		p += strspn(p, ", \t");
		if (p[0] == 'u' && p[1] == '=' && p[2] >= '0' && p[2] <= '7')
			return p[2] - '0';
	}
	return 3;
}

/*
 * Each connection has its thread, and a destination keeps population and
 * faults on connections of their own: the threads of background replies
 * (urgency 4-7) run at a lower CPU priority, so on a busy source the reply
 * a fault waits for is sent first, as QEMU's postcopy-preempt channel is.
 * Raising the priority again may be refused (no CAP_SYS_NICE): the
 * connection then just stays background.
 */
static void serve_at_urgency(int u)
{
	int nice = u >= 4 ? BULK_NICE : 0;
	pid_t tid = gettid();
	errno = 0;
	if (getpriority(PRIO_PROCESS, (id_t)tid) != nice || errno)
		setpriority(PRIO_PROCESS, (id_t)tid, nice);
}

static enum MHD_Result reply_status(struct MHD_Connection *c, unsigned status,
				    const char *content_range)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	if (content_range)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A reply of too many pieces for one writev, copied out in blocks. */
static ssize_t copy_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct export_req *rq = cls;
	uint64_t at = rq->start + pos;
	size_t done = 0;
	if (at >= rq->end)
		return MHD_CONTENT_READER_END_OF_STREAM;
	while (done < max && at < rq->end) {
		struct thaw__export_piece p;
		uint64_t want = rq->end - at < max - done ? rq->end - at : max - done;
		thaw__export_piece_at(&rq->exp->view, at, want, &p);
		memcpy(buf + done, p.mem, (size_t)p.len);
		done += (size_t)p.len;
		at += p.len;
	}
	return (ssize_t)done;
}

/*
 * The response body for [rq->start, rq->end): from the fd (sendfile) when
 * one piece of a memfd holds it all, else straight from memory by writev
 * over its pieces (the tables, and memory, which for a memfd region is its
 * shared mapping); no copy in user space either way. A range of more
 * pieces than one writev takes (only a client asking for most of the
 * object at once: the HTTP store asks at most 4 MiB) is copied instead.
 */
static struct MHD_Response *body(struct thaw_export *x, struct export_req *rq)
{
	const struct thaw__export_view *v = &x->view;
	uint64_t len = rq->end - rq->start;
	struct thaw__export_piece p;
	thaw__export_piece_at(v, rq->start, len, &p);
	if (p.len == len && p.memfd >= 0) {
		int fd = dup(p.memfd); /* MHD closes the fd it is given */
		struct MHD_Response *r =
			fd < 0 ? NULL
			       : MHD_create_response_from_fd_at_offset64(len, fd, p.memfd_off);
		if (r) {
			pthread_mutex_lock(&x->lock);
			x->st.requests_sendfile++;
			pthread_mutex_unlock(&x->lock);
			return r;
		}
		if (fd >= 0)
			close(fd);
	}
	struct MHD_IoVec *iov = malloc(IOV_PIECES_MAX * sizeof(*iov));
	size_t n = 0;
	for (uint64_t at = rq->start; iov && at < rq->end && n <= IOV_PIECES_MAX; at += p.len) {
		thaw__export_piece_at(v, at, rq->end - at, &p);
		if (n < IOV_PIECES_MAX)
			iov[n] = (struct MHD_IoVec){ .iov_base = p.mem, .iov_len = (size_t)p.len };
		n++;
	}
	struct MHD_Response *r =
		!iov ? NULL
		: n <= IOV_PIECES_MAX
			? MHD_create_response_from_iovec(iov, (unsigned)n, NULL, NULL)
			: MHD_create_response_from_callback(len, COPY_BLOCK, copy_cb, rq, NULL);
	free(iov); /* MHD keeps its own copy */
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	struct thaw_export *x = cls;
	const struct thaw__export_view *v = &x->view;
	/* libmicrohttpd closes the connection after a reply queued in the first call for
	 * a request (it cannot know the request carries no body), so every GET cost a new
	 * connection, a thread and a TCP slow start: answer from the second call. */
	if (!*req_cls) {
		*req_cls = x;
		return MHD_YES;
	}
	bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
	if (!head && strcmp(method, MHD_HTTP_METHOD_GET))
		return reply_status(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL);
	if (strcmp(url, EXPORT_PATH))
		return reply_status(c, MHD_HTTP_NOT_FOUND, NULL);
	serve_at_urgency(urgency(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Priority")));
	pthread_mutex_lock(&x->lock);
	if (!x->st.requests++)
		x->st.first_request_us = (thaw__now_ns() - x->t0_ns) / 1000;
	pthread_mutex_unlock(&x->lock);

	const char *im = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
	if (im && strcmp(im, "*") && !strstr(im, v->etag))
		return reply_status(c, MHD_HTTP_PRECONDITION_FAILED, NULL);
	uint64_t a = 0, b = v->size - 1;
	int ranged =
		parse_range(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE),
			    v->size, &a, &b);
	char cr[80];
	if (ranged < 0) {
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, v->size);
		return reply_status(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, cr);
	}
	struct export_req *rq = malloc(sizeof(*rq));
	if (!rq)
		return MHD_NO;
	*rq = (struct export_req){ .exp = x, .start = a, .end = b + 1, .head = head };
	struct MHD_Response *r = body(x, rq);
	if (!r) {
		free(rq);
		return MHD_NO;
	}
	*req_cls = rq; /* freed when the request completes */
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, v->etag);
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (ranged) {
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a, b, v->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	enum MHD_Result ret =
		MHD_queue_response(c, ranged ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void export_free(struct thaw_export *x)
{
	if (x->daemon)
		MHD_stop_daemon(x->daemon);
	thaw__export_view_free(&x->view);
	pthread_cond_destroy(&x->all_sent);
	pthread_mutex_destroy(&x->lock);
	free(x->sent);
	free(x);
}

static int start_daemon(struct thaw_export *x, const char *addr, uint16_t port, char *err,
			size_t err_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		snprintf(err, err_len, "export: bind address \"%s\" is not an IPv4 address", addr);
		return -EINVAL;
	}
	x->daemon = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		port, NULL, NULL, handle, x, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, x,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
		completed, x, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
		MHD_OPTION_END);
	if (!x->daemon) {
		int e = errno ? errno : EADDRINUSE;
		snprintf(err, err_len, "export: cannot listen on %s:%u: %s", addr, port,
			 strerror(e));
		return -e;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(x->daemon, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(x->url, sizeof(x->url), "http://%s:%u" EXPORT_PATH, addr,
		 di ? di->port : (unsigned)port);
	return 0;
}

int thaw_export_start(const struct thaw_export_region *regions, size_t n,
		      const struct thaw_export_opts *opts, struct thaw_export **out)
{
	struct thaw_export_opts o;
	if (!regions || !out || THAW__OPTS_READ(&o, opts))
		return -EINVAL;
	*out = NULL;
	char errbuf[256] = "";
	char *err = o.err_buf ? o.err_buf : errbuf;
	size_t err_len = o.err_buf ? o.err_buf_size : sizeof(errbuf);
	struct thaw_export *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	thaw__logger_init(&x->log, o.log_fn, o.log_ctx);
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->all_sent, &ca);
	pthread_condattr_destroy(&ca);
	x->t0_ns = thaw__now_ns();

	int e = thaw__export_view_build(regions, n, o.chunk_size, &x->view, err, err_len);
	if (!e) {
		x->sent = calloc(x->view.chunks_data ? x->view.chunks_data : 1, 1);
		e = x->sent ? 0 : -ENOMEM;
	}
	if (!e) {
		x->st.build_us = (thaw__now_ns() - x->t0_ns) / 1000;
		x->st.object_size = x->view.size;
		x->st.tables_len = x->view.tables_len;
		x->st.chunks = x->view.chunk_count;
		x->st.chunks_data = x->view.chunks_data;
		const char *addr = o.bind_addr ? o.bind_addr : "127.0.0.1";
		e = start_daemon(x, addr, o.port, err, err_len);
	}
	if (e) {
		thaw__err(&x->log, "%s", err[0] ? err : strerror(-e));
		export_free(x);
		return e;
	}
	thaw__info(&x->log,
		   "export: %s serves %zu regions, %" PRIu64 " of %" PRIu64
		   " chunks with data, view built in %" PRIu64 " us",
		   x->url, n, x->view.chunks_data, x->view.chunk_count, x->st.build_us);
	*out = x;
	return 0;
}

const char *thaw_export_url(const struct thaw_export *x)
{
	return x ? x->url : NULL;
}

int thaw_export_wait(struct thaw_export *x, int timeout_ms)
{
	if (!x)
		return -EINVAL;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms > 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	int e = 0;
	pthread_mutex_lock(&x->lock);
	while (x->st.chunks_sent < x->view.chunks_data && !e) {
		if (timeout_ms < 0)
			pthread_cond_wait(&x->all_sent, &x->lock);
		else
			e = pthread_cond_timedwait(&x->all_sent, &x->lock, &ts);
	}
	bool done = x->st.chunks_sent == x->view.chunks_data;
	pthread_mutex_unlock(&x->lock);
	return done ? 0 : -ETIMEDOUT;
}

int thaw_export_stats(const struct thaw_export *x, struct thaw_export_stats *out)
{
	if (!x || !out)
		return -EINVAL;
	pthread_mutex_lock((pthread_mutex_t *)&x->lock);
	struct thaw_export_stats st = x->st;
	pthread_mutex_unlock((pthread_mutex_t *)&x->lock);
	return THAW__OUT_WRITE(out, &st);
}

int thaw_export_stop(struct thaw_export *x, int force)
{
	if (!x)
		return 0;
	pthread_mutex_lock(&x->lock);
	uint64_t missing = x->view.chunks_data - x->st.chunks_sent;
	pthread_mutex_unlock(&x->lock);
	if (missing && !force) {
		thaw__warn(&x->log, "export: %s: %" PRIu64 " data chunks never sent; not stopping",
			   x->url, missing);
		return -EBUSY;
	}
	if (missing)
		thaw__warn(&x->log,
			   "export: %s: stopped by force with %" PRIu64 " data chunks never sent",
			   x->url, missing);
	export_free(x);
	return 0;
}
