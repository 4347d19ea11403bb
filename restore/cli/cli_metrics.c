/* SPDX-License-Identifier: MIT */
/* `thaw serve --metrics`: Prometheus text exposition over a tiny HTTP/1.0 server. */
#include "cli_metrics.h"
#include "cli_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A scraper gets this long to send its request; one at a time is plenty for a monitor. */
#define REQUEST_TIMEOUT_MS 2000
#define REQUEST_MAX	   4096

struct cli_metrics {
	int lfd, stop_fd;
	char addr[128];
	bool unix_path;
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	struct cli_metrics_daemon d;
	struct cli_metrics_client *c;
	size_t n, cap;
	struct thaw_stats ended; /* sums over the clients that have ended */
};

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("thaw serve: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Counters that add across clients; latency percentiles do not and are left out. */
static void add_stats(struct thaw_stats *sum, const struct thaw_stats *st)
{
	sum->faults += st->faults;
	sum->pages_fault += st->pages_fault;
	sum->pages_background += st->pages_background;
	sum->pages_zero += st->pages_zero;
	sum->pages_prefetch += st->pages_prefetch;
	sum->chunks_fetched += st->chunks_fetched;
	sum->chunks_poisoned += st->chunks_poisoned;
	sum->bytes_read += st->bytes_read;
	sum->fault_wait_us += st->fault_wait_us;
	for (int i = 0; i < THAW_LAT_BUCKETS; i++)
		sum->fault_lat_hist[i] += st->fault_lat_hist[i];
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void u64_line(FILE *f, const char *name, const char *labels, uint64_t v)
{
	fprintf(f, "%s%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		(unsigned long long)v);
}

static void labels_of(char *buf, size_t len, const struct cli_metrics_client *c)
{
	snprintf(buf, len, "client=\"%u\",pid=\"%d\"", c->id, (int)c->pid);
}

/*
 * thaw_stats' histogram as a Prometheus one: bucket i holds services of
 * [2^i, 2^(i+1)) us, so its upper bound is 2^(i+1) us; buckets are cumulative.
 * The sum is the time faulting threads waited (fault_wait_us).
 */
static void histogram(FILE *f, const char *name, const char *labels, const struct thaw_stats *st)
{
	uint64_t cum = 0;
	const char *sep = labels[0] ? "," : "";
	for (int i = 0; i < THAW_LAT_BUCKETS; i++) {
		cum += st->fault_lat_hist[i];
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
			(double)(1ull << (i + 1)) / 1e6, (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
	fprintf(f, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		(double)st->fault_wait_us / 1e6);
	fprintf(f, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
		labels[0] ? "}" : "", (unsigned long long)cum);
}

/* Counters kept per client and summed for the daemon, under both prefixes. */
static const struct {
	const char *name, *help;
	size_t off;
} counters[] = {
	{ "faults_total", "page-fault events received", offsetof(struct thaw_stats, faults) },
	{ "bytes_read_total", "stored bytes read from the store",
	  offsetof(struct thaw_stats, bytes_read) },
	{ "chunks_fetched_total", "chunks read from the store",
	  offsetof(struct thaw_stats, chunks_fetched) },
	{ "chunks_poisoned_total", "chunks that could not be had (touching them raises SIGBUS)",
	  offsetof(struct thaw_stats, chunks_poisoned) },
};

static const struct {
	const char *how;
	size_t off;
} pages[] = {
	{ "fault", offsetof(struct thaw_stats, pages_fault) },
	{ "background", offsetof(struct thaw_stats, pages_background) },
	{ "zero", offsetof(struct thaw_stats, pages_zero) },
	{ "prefetch", offsetof(struct thaw_stats, pages_prefetch) },
};

static uint64_t field(const struct thaw_stats *st, size_t off)
{
	return *(const uint64_t *)((const char *)st + off);
}

static void render_daemon(FILE *f, const struct cli_metrics *m, const struct thaw_stats *all)
{
	const struct cli_metrics_daemon *d = &m->d;
	family(f, "thaw_serve_uptime_seconds", "gauge", "time since the daemon started");
	fprintf(f, "thaw_serve_uptime_seconds %.3f\n", (double)d->uptime_ms / 1e3);
	static const struct {
		const char *name, *help;
		size_t off;
	} cl[] = {
		{ "thaw_serve_clients_accepted_total", "connections accepted",
		  offsetof(struct cli_metrics_daemon, accepted) },
		{ "thaw_serve_clients_refused_total", "clients refused (handshake, uid, shutdown)",
		  offsetof(struct cli_metrics_daemon, refused) },
		{ "thaw_serve_clients_served_total", "clients whose every page was put in",
		  offsetof(struct cli_metrics_daemon, served) },
		{ "thaw_serve_clients_ended_early_total", "clients gone before every page was in",
		  offsetof(struct cli_metrics_daemon, ended_early) },
	};
	for (size_t i = 0; i < sizeof(cl) / sizeof(cl[0]); i++) {
		family(f, cl[i].name, "counter", cl[i].help);
		u64_line(f, cl[i].name, "", *(const uint64_t *)((const char *)d + cl[i].off));
	}
	family(f, "thaw_serve_clients_active", "gauge", "clients being served now");
	u64_line(f, "thaw_serve_clients_active", "", d->active);
	char name[96];
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		snprintf(name, sizeof(name), "thaw_serve_%s", counters[i].name);
		family(f, name, "counter", counters[i].help);
		u64_line(f, name, "", field(all, counters[i].off));
	}
	family(f, "thaw_serve_pages_total", "counter", "pages installed, by how");
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		snprintf(name, sizeof(name), "how=\"%s\"", pages[i].how);
		u64_line(f, "thaw_serve_pages_total", name, field(all, pages[i].off));
	}
	family(f, "thaw_serve_fault_latency_seconds", "histogram",
	       "fault service time, every client");
	histogram(f, "thaw_serve_fault_latency_seconds", "", all);
	family(f, "thaw_serve_cache_limit_bytes", "gauge", "decoded-chunk cache size allowed");
	u64_line(f, "thaw_serve_cache_limit_bytes", "", d->cache.limit);
	family(f, "thaw_serve_cache_bytes", "gauge", "decoded-chunk cache bytes held");
	u64_line(f, "thaw_serve_cache_bytes", "", d->cache.bytes);
	family(f, "thaw_serve_cache_hits_total", "counter",
	       "chunks installed from the cache instead of the store");
	u64_line(f, "thaw_serve_cache_hits_total", "", d->cache.hits);
	family(f, "thaw_serve_cache_inserts_total", "counter", "chunks decoded and kept");
	u64_line(f, "thaw_serve_cache_inserts_total", "", d->cache.inserts);
	family(f, "thaw_serve_cache_evictions_total", "counter", "chunks dropped to fit");
	u64_line(f, "thaw_serve_cache_evictions_total", "", d->cache.evictions);
}

/* Prometheus wants each family's lines together: one pass over the clients per family. */
static void render_clients(FILE *f, const struct cli_metrics *m)
{
	char name[96], lab[96], lab2[128];
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		snprintf(name, sizeof(name), "thaw_client_%s", counters[i].name);
		family(f, name, "counter", counters[i].help);
		for (size_t k = 0; k < m->n; k++) {
			labels_of(lab, sizeof(lab), &m->c[k]);
			u64_line(f, name, lab, field(&m->c[k].st, counters[i].off));
		}
	}
	family(f, "thaw_client_pages_total", "counter", "pages installed, by how");
	for (size_t k = 0; k < m->n; k++) {
		labels_of(lab, sizeof(lab), &m->c[k]);
		for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
			snprintf(lab2, sizeof(lab2), "%s,how=\"%s\"", lab, pages[i].how);
			u64_line(f, "thaw_client_pages_total", lab2,
				 field(&m->c[k].st, pages[i].off));
		}
	}
	family(f, "thaw_client_fault_p50_seconds", "gauge", "median fault service time");
	for (size_t k = 0; k < m->n; k++) {
		labels_of(lab, sizeof(lab), &m->c[k]);
		fprintf(f, "thaw_client_fault_p50_seconds{%s} %.6f\n", lab,
			(double)m->c[k].st.fault_p50_us / 1e6);
	}
	family(f, "thaw_client_fault_p99_seconds", "gauge", "99th percentile fault service time");
	for (size_t k = 0; k < m->n; k++) {
		labels_of(lab, sizeof(lab), &m->c[k]);
		fprintf(f, "thaw_client_fault_p99_seconds{%s} %.6f\n", lab,
			(double)m->c[k].st.fault_p99_us / 1e6);
	}
	family(f, "thaw_client_resident", "gauge", "1 once every page is in");
	for (size_t k = 0; k < m->n; k++) {
		labels_of(lab, sizeof(lab), &m->c[k]);
		u64_line(f, "thaw_client_resident", lab, m->c[k].st.resident ? 1 : 0);
	}
	family(f, "thaw_client_fault_latency_seconds", "histogram", "fault service time");
	for (size_t k = 0; k < m->n; k++) {
		labels_of(lab, sizeof(lab), &m->c[k]);
		histogram(f, "thaw_client_fault_latency_seconds", lab, &m->c[k].st);
	}
}

/* The exposition text, malloc'ed into *out; its length, or -ENOMEM. */
static ssize_t render(struct cli_metrics *m, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	struct thaw_stats all = m->ended;
	for (size_t k = 0; k < m->n; k++)
		add_stats(&all, &m->c[k].st);
	render_daemon(f, m, &all);
	render_clients(f, m);
	pthread_mutex_unlock(&m->lock);
	if (fclose(f)) {
		free(*out);
		return -ENOMEM;
	}
	return (ssize_t)len;
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the scraper went away or stalled past SO_SNDTIMEO */
		p += n;
		len -= (size_t)n;
	}
}

static void reply(int fd, const char *status, const char *type, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, type, len);
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

/* One request on fd: GET /metrics gets the text; anything else a short error. */
static void answer(struct cli_metrics *m, int fd)
{
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char req[REQUEST_MAX + 1];
	size_t len = 0;
	while (len < REQUEST_MAX) {
		ssize_t n = recv(fd, req + len, REQUEST_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	static const char text[] = "text/plain; charset=utf-8";
	if (strncmp(req, "GET ", 4)) {
		reply(fd, "405 Method Not Allowed", text, "only GET\n", 9);
		return;
	}
	const char *path = req + 4;
	size_t plen = strcspn(path, " ?\r\n");
	if (plen != 8 || strncmp(path, "/metrics", 8)) {
		reply(fd, "404 Not Found", text, "try /metrics\n", 13);
		return;
	}
	char *body = NULL;
	ssize_t n = render(m, &body);
	if (n < 0)
		reply(fd, "500 Internal Server Error", text, "out of memory\n", 14);
	else
		reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, (size_t)n);
	free(body);
}

static void *metrics_thread(void *arg)
{
	struct cli_metrics *m = arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = m->lfd, .events = POLLIN },
				       { .fd = m->stop_fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		answer(m, fd);
		close(fd);
	}
	return NULL;
}

static int listen_unix(struct cli_metrics *m, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(m->addr))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	strcpy(m->addr, path);
	m->unix_path = true;
	m->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->lfd < 0)
		return -errno;
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a previous run's: nobody listens on it now */
	return bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
}

static int listen_tcp(struct cli_metrics *m, const char *addr)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	long port;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	if (!colon || (size_t)(colon - addr) >= sizeof(host) ||
	    cli_parse_int(colon + 1, 0, 65535, &port))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	sa.sin_port = htons((uint16_t)port);
	m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->lfd < 0)
		return -errno;
	int one = 1;
	setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t len = sizeof(sa);
	if (bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(m->lfd, (struct sockaddr *)&sa, &len))
		return -errno;
	snprintf(m->addr, sizeof(m->addr), "%s:%u", host, (unsigned)ntohs(sa.sin_port));
	return 0;
}

int cli_metrics_start(const char *addr, struct cli_metrics **out)
{
	struct cli_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->lfd = m->stop_fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	int err = strchr(addr, '/') ? listen_unix(m, addr) : listen_tcp(m, addr);
	if (!err && listen(m->lfd, 16))
		err = -errno;
	if (!err && (m->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		err = -errno;
	if (!err)
		err = -pthread_create(&m->thread, NULL, metrics_thread, m);
	if (err) {
		if (err == -EINVAL)
			warn("bad --metrics '%s': want a Unix socket path or IPV4:PORT", addr);
		else
			warn("cannot serve metrics on %s: %s", addr, strerror(-err));
		if (m->lfd >= 0)
			close(m->lfd);
		if (m->stop_fd >= 0)
			close(m->stop_fd);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return err;
	}
	*out = m;
	return 0;
}

const char *cli_metrics_addr(const struct cli_metrics *m)
{
	return m->addr;
}

void cli_metrics_publish(struct cli_metrics *m, const struct cli_metrics_daemon *d,
			 const struct cli_metrics_client *c, size_t n)
{
	pthread_mutex_lock(&m->lock);
	m->d = *d;
	if (n > m->cap) {
		struct cli_metrics_client *p = realloc(m->c, n * sizeof(*p));
		if (p) {
			m->c = p;
			m->cap = n;
		}
	}
	m->n = n <= m->cap ? n : m->cap; /* short of memory: the clients that fit */
	if (m->n)
		memcpy(m->c, c, m->n * sizeof(*c));
	pthread_mutex_unlock(&m->lock);
}

void cli_metrics_client_ended(struct cli_metrics *m, unsigned id, const struct thaw_stats *st)
{
	pthread_mutex_lock(&m->lock);
	add_stats(&m->ended, st);
	/* Until the next publish, so that no scrape counts the client twice. */
	for (size_t k = 0; k < m->n; k++)
		if (m->c[k].id == id) {
			m->c[k] = m->c[--m->n];
			break;
		}
	pthread_mutex_unlock(&m->lock);
}

void cli_metrics_stop(struct cli_metrics *m)
{
	if (!m)
		return;
	uint64_t one = 1;
	if (write(m->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(m->thread, NULL);
	close(m->stop_fd);
	close(m->lfd);
	if (m->unix_path)
		unlink(m->addr);
	pthread_mutex_destroy(&m->lock);
	free(m->c);
	free(m);
}
