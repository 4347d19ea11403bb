/* SPDX-License-Identifier: MIT */
/*
 * migrate/destination: where the process moves to.
 *
 *   destination --handoff FIFO --done FIFO [--expect CHECKSUM]
 *               [--stop-and-copy] [--low-speed-ms N] [--retries N]
 *
 * Waits for the source's "url=URL paused_at_ns=T" line, restores the
 * region lazily at its recorded address from that URL and resumes the
 * workload at once: pages arrive on first touch while the background pass
 * pulls the rest. When every page is resident it writes "done" to the done
 * FIFO (the source may exit), then reports QEMU's postcopy figures and the
 * checksum. --stop-and-copy is the baseline instead: copy all memory over
 * the same link first (4 MiB range GETs of the export's data pipelined on
 * one connection, served as post-copy's background windows are; zero pages
 * skipped as QEMU skips them), then resume. The workload (uniform or hot,
 * workload.h) is the one the source ran: its state says which.
 *
 * The last line is machine-readable: "RESULT key=value ...".
 */
#include <thaw.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workload.h"

/* The workload notes the time every PROGRESS_STEPS steps: how fast it went when. */
#define PROGRESS_STEPS 1024

struct figures {
	uint64_t t_pause, t_resume, t_work_done, t_resident; /* CLOCK_REALTIME ns */
	uint64_t *stamps;				     /* the workload's progress notes */
	size_t nstamps, stamps_cap;
	struct thaw_stats st;
	uint64_t bytes; /* moved over the network after the pause */
	uint64_t data;	/* bytes of the snapshot's data section: what had to move */
	int status;	/* 0, or the restore's error */
	int wl_tid;	/* the workload thread, once it runs */
	/* Its scheduler times (ns) over post-copy, from /proc: on a CPU, runnable but
	 * waiting for one; what remains of the phase it was asleep (faults). -1: unknown. */
	int64_t wl_run_ns, wl_wait_ns;
};

static int read_handoff(const char *path, char *url, size_t url_len, uint64_t *paused_at)
{
	char line[512];
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	char *ok = fgets(line, sizeof(line), f);
	fclose(f);
	unsigned long long t;
	char fmt[32];
	snprintf(fmt, sizeof(fmt), "url=%%%zus paused_at_ns=%%llu", url_len - 1);
	if (!ok || sscanf(line, fmt, url, &t) != 2)
		return -EINVAL;
	*paused_at = t;
	return 0;
}

/* One range the baseline asks for: stored bytes [off, off + len), to go to addr. */
struct piece {
	uint64_t off, len, addr;
};

/* A socket read through a buffer, for the replies' header blocks; bodies go straight to memory. */
struct conn {
	int fd;
	char buf[16384];
	size_t at, end;
};

/* The next reply's header block: 0 when it is a 206 with len bytes of body. */
static int reply_head(struct conn *c, uint64_t len)
{
	char *eoh;
	for (;;) {
		c->buf[c->end] = 0;
		if ((eoh = strstr(c->buf + c->at, "\r\n\r\n")))
			break;
		if (c->at) {
			memmove(c->buf, c->buf + c->at, c->end - c->at);
			c->end -= c->at;
			c->at = 0;
		}
		if (c->end >= sizeof(c->buf) - 1)
			return -EPROTO;
		ssize_t k = read(c->fd, c->buf + c->end, sizeof(c->buf) - 1 - c->end);
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		c->end += (size_t)k;
	}
	const char *h = c->buf + c->at, *cl = strcasestr(h, "\r\nContent-Length:");
	c->at = (size_t)(eoh + 4 - c->buf);
	if (strncmp(h, "HTTP/1.1 206", 12) || !cl || cl > eoh || strtoull(cl + 17, NULL, 10) != len)
		return -EPROTO;
	return 0;
}

static int body_read(struct conn *c, uint8_t *dst, uint64_t len)
{
	size_t n = c->end - c->at < len ? c->end - c->at : (size_t)len;
	memcpy(dst, c->buf + c->at, n);
	c->at += n;
	for (uint64_t at = n; at < len;) {
		ssize_t k = read(c->fd, dst + at, len - at);
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		at += (uint64_t)k;
	}
	return 0;
}

/* One GET: pieces [first, first + count), stored back to back from off, len bytes in all. */
struct ask {
	uint64_t off, len;
	size_t first, count;
};

/* As large as the post-copy background pass's windows (the HTTP store's bg_max). */
#define ASK_MAX (4u << 20)

struct asker {
	int fd;
	const char *host;
	const struct ask *q;
	size_t n;
	int err;
};

/* Write every range request, pipelined on the one connection; the replies come back in order. */
static void *ask_all(void *arg)
{
	struct asker *a = arg;
	char req[256];
	for (size_t i = 0; i < a->n; i++) {
		int n = snprintf(req, sizeof(req),
				 "GET /thaw.snap HTTP/1.1\r\nHost: %s\r\nRange: bytes=%" PRIu64
				 "-%" PRIu64 "\r\n\r\n",
				 a->host, a->q[i].off, a->q[i].off + a->q[i].len - 1);
		for (int at = 0; at < n;) {
			ssize_t k = write(a->fd, req + at, (size_t)(n - at));
			if (k <= 0) {
				a->err = -errno;
				return NULL;
			}
			at += (int)k;
		}
	}
	return NULL;
}

/*
 * The stop-and-copy baseline's transfer, served as post-copy's background
 * pass is: range GETs of up to 4 MiB of the export's data (its windows'
 * size), pipelined on one connection, so the source answers each the same
 * way (sendfile from the memfd when the range is one piece of guest memory,
 * else writev from its shared mapping), and each run of chunks is read
 * straight to its address (zero chunks store nothing: the fresh mapping is
 * zero already). One GET of the whole data section crossed 5461 pieces, more
 * than one writev holds, and the source copied it out in user space; one GET
 * per piece (all sendfile) cost the source more CPU per byte than either.
 */
static int copy_all(const char *url, struct thaw_snapshot *snap)
{
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	char host[64];
	unsigned port;
	if (thaw_snapshot_get_info(snap, &in) < 0 ||
	    sscanf(url, "http://%63[^:]:%u/", host, &port) != 2)
		return -EINVAL;
	struct piece *p = malloc(in.chunk_count * sizeof(*p) + 1);
	size_t n = 0;
	if (!p)
		return -ENOMEM;
	int e = 0;
	for (uint64_t i = 0; i < in.chunk_count && !e; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		e = thaw_snapshot_chunk(snap, i, &ci);
		if (e || ci.kind != THAW_CHUNK_RAW)
			continue;
		if (n && p[n - 1].off + p[n - 1].len == ci.stored_off &&
		    p[n - 1].addr + p[n - 1].len == ci.addr)
			p[n - 1].len += ci.len;
		else
			p[n++] = (struct piece){ ci.stored_off, ci.len, ci.addr };
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct conn *c = malloc(sizeof(*c));
	if (e || !c) {
		free(p);
		free(c);
		return e ? e : -ENOMEM;
	}
	c->at = c->end = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Pieces in GETs of up to ASK_MAX, as the background pass asks for its windows. */
	struct ask *q = malloc((n + 1) * sizeof(*q));
	size_t nq = 0;
	for (size_t i = 0; q && i < n; i++) {
		if (nq && q[nq - 1].off + q[nq - 1].len == p[i].off &&
		    q[nq - 1].len + p[i].len <= ASK_MAX) {
			q[nq - 1].len += p[i].len;
			q[nq - 1].count++;
		} else {
			q[nq++] = (struct ask){ p[i].off, p[i].len, i, 1 };
		}
	}
	struct asker a = { .fd = c->fd, .host = host, .q = q, .n = nq };
	pthread_t t;
	e = -EIO;
	if (!q || c->fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    pthread_create(&t, NULL, ask_all, &a))
		goto out;
	e = 0;
	for (size_t i = 0; i < nq && !e; i++) {
		e = reply_head(c, q[i].len);
		for (size_t k = q[i].first; !e && k < q[i].first + q[i].count; k++)
			e = body_read(c, (uint8_t *)(uintptr_t)p[k].addr, p[k].len);
	}
	if (e)
		shutdown(c->fd, SHUT_RDWR); /* the asker may be blocked writing */
	pthread_join(t, NULL);
	if (!e)
		e = a.err;
out:
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	free(q);
	free(p);
	return e;
}

/* Tell the source it may exit (it still waits until every data chunk went out). */
static void say_done(const char *path, int status)
{
	FILE *d = fopen(path, "w");
	if (d) {
		fputs(status ? "failed\n" : "done\n", d);
		fclose(d);
	}
}

struct workload {
	uint8_t *mem;
	struct figures *f;
};

static void *run_workload(void *arg)
{
	struct workload *w = arg;
	struct figures *f = w->f;
	struct wl_state *st = (struct wl_state *)w->mem;
	__atomic_store_n(&f->wl_tid, (int)gettid(), __ATOMIC_RELEASE);
	f->stamps = calloc(st->steps / PROGRESS_STEPS + 1, sizeof(*f->stamps));
	f->stamps_cap = f->stamps ? st->steps / PROGRESS_STEPS + 1 : 0;
	while (st->step < st->steps) {
		wl_step(w->mem);
		if (st->step % PROGRESS_STEPS == 0 && f->nstamps < f->stamps_cap)
			f->stamps[f->nstamps++] = wl_ns(CLOCK_REALTIME);
	}
	f->t_work_done = wl_ns(CLOCK_REALTIME);
	return NULL;
}

/*
 * What the workload itself lost while memory was arriving: the share of
 * the post-copy phase in which it did not progress, measured against its
 * own pace once everything was resident (its progress notes). Unlike the
 * engine's blocktime, this counts every wait: the fault's trip to the
 * manager, the wake-up, time the workload's CPU went to the restore.
 * -1 when the workload ran too briefly after residency to know its pace.
 */
static double progress_lost(const struct figures *f)
{
	size_t during = 0;
	while (during < f->nstamps && f->stamps[during] <= f->t_resident)
		during++;
	size_t after = f->nstamps - during;
	if (after < 16 || f->t_resident <= f->t_resume)
		return -1;
	double ns_per_step = (double)(f->stamps[f->nstamps - 1] - f->t_resident) /
			     ((double)after * PROGRESS_STEPS);
	double worked = (double)during * PROGRESS_STEPS * ns_per_step;
	double phase = (double)(f->t_resident - f->t_resume);
	return worked >= phase ? 0 : 1 - worked / phase;
}

static int stop_and_copy(struct thaw_snapshot *snap, const char *url, struct figures *f)
{
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	struct thaw_region_info ri = { .sz = sizeof(ri) };
	if (thaw_snapshot_get_info(snap, &in) < 0 || thaw_snapshot_region(snap, 0, &ri) < 0)
		return -EINVAL;
	uint8_t *m = mmap((void *)(uintptr_t)ri.addr, ri.len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	int r = copy_all(url, snap);
	if (r < 0)
		return r;
	f->bytes = in.file_size;
	f->t_resume = f->t_resident = wl_ns(CLOCK_REALTIME);
	struct workload w = { m, f };
	run_workload(&w);
	return 0;
}

/* The workload thread's time on a CPU and waiting for one so far (it started at resume). */
static void sched_times(struct figures *f)
{
	char path[64];
	long long run, wait;
	f->wl_run_ns = f->wl_wait_ns = -1;
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat",
		 __atomic_load_n(&f->wl_tid, __ATOMIC_ACQUIRE));
	FILE *s = fopen(path, "r");
	if (!s)
		return;
	if (fscanf(s, "%lld %lld", &run, &wait) == 2) {
		f->wl_run_ns = run;
		f->wl_wait_ns = wait;
	}
	fclose(s);
}

static int post_copy(struct thaw_snapshot *snap, const char *done, struct figures *f)
{
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_FIXED_ADDR };
	struct thaw_restore *r = NULL;
	int e = thaw_restore_start(snap, &ro, &r);
	if (e < 0)
		return e;
	f->t_resume = wl_ns(CLOCK_REALTIME); /* the workload's next instruction runs here */
	/* The workload runs on its own thread, as the guest's vCPU would, while
	 * this one watches the memory arrive. */
	struct workload w = { thaw_restore_region_addr(r, 0), f };
	pthread_t t;
	if (pthread_create(&t, NULL, run_workload, &w)) {
		thaw_restore_free(r);
		return -EAGAIN;
	}
	f->status = thaw_restore_wait(r, -1);
	f->t_resident = wl_ns(CLOCK_REALTIME);
	sched_times(f);
	say_done(done, f->status);
	pthread_join(t, NULL);
	f->st.sz = sizeof(f->st);
	thaw_restore_stats(r, &f->st);
	f->bytes = f->st.http_bytes;
	thaw_restore_free(r);
	return 0;
}

static void report(const struct figures *f, int copy, uint64_t sum, const char *expect)
{
	double down = (f->t_resume - f->t_pause) / 1e6, total = (f->t_resident - f->t_pause) / 1e6;
	double bg_s = (f->t_resident - f->t_resume) / 1e9;
	double lost = copy ? -1 : progress_lost(f);
	printf("destination: %s, %s workload\n",
	       copy ? "stop-and-copy baseline" : "post-copy (thaw)",
	       ((const struct wl_state *)WL_ADDR)->kind == WL_HOT ? "hot" : "uniform");
	printf("  downtime (source pause -> first instruction here)  %10.2f ms\n", down);
	printf("  total migration time (pause -> all memory here)    %10.2f ms\n", total);
	printf("  workload finished                                  %10.2f ms after the pause\n",
	       (f->t_work_done - f->t_pause) / 1e6);
	if (!copy) {
		printf("  faults during post-copy   %" PRIu64 " (%" PRIu64
		       " pages on demand, %" PRIu64 " in the background)\n",
		       f->st.faults, f->st.pages_fault, f->st.pages_background);
		printf("  blocktime                 %.2f ms (fault service p50 %" PRIu64
		       " us, p99 %" PRIu64 " us)\n",
		       f->st.fault_wait_us / 1e3, f->st.fault_p50_us, f->st.fault_p99_us);
		printf("  blocktime / post-copy     %.1f%%\n",
		       total > down ? 100.0 * f->st.fault_wait_us / 1e3 / (total - down) : 0.0);
		if (lost >= 0)
			printf("  workload progress lost    %.1f%% of post-copy (its pace once "
			       "resident)\n",
			       100 * lost);
		if (f->wl_run_ns >= 0)
			printf("  workload in post-copy     on a CPU %.1f ms, waiting for one %.1f "
			       "ms, "
			       "asleep %.1f ms\n",
			       f->wl_run_ns / 1e6, f->wl_wait_ns / 1e6,
			       (total - down) - (f->wl_run_ns + f->wl_wait_ns) / 1e6);
		printf("  HTTP fault lane           p50 %" PRIu64 " us, p99 %" PRIu64
		       " us (background p50 %" PRIu64 " us, p99 %" PRIu64 " us)\n",
		       f->st.http_fault_p50_us, f->st.http_fault_p99_us, f->st.http_bg_p50_us,
		       f->st.http_bg_p99_us);
		printf("  background throughput     %.0f MB/s (%" PRIu64 " requests, %" PRIu64
		       " retries)\n",
		       bg_s > 0 ? f->bytes / bg_s / 1e6 : 0.0, f->st.http_requests,
		       f->st.http_retries);
	}
	printf("  bytes moved               %.1f MiB for %.1f MiB of data (%.3fx)\n",
	       f->bytes / 1048576.0, f->data / 1048576.0,
	       f->data ? (double)f->bytes / f->data : 0.0);
	printf("  checksum                  %016" PRIx64 "%s\n", sum,
	       !expect				   ? ""
	       : strtoull(expect, NULL, 16) == sum ? " (matches the reference run)"
						   : " (DIFFERS from the reference run)");
	if (f->status)
		printf("  restore FAILED: %s\n", thaw_strerror(f->status));
	printf("RESULT mode=%s downtime_ms=%.3f total_ms=%.3f faults=%" PRIu64
	       " blocktime_ms=%.3f bytes=%" PRIu64 " checksum=%016" PRIx64 " status=%d"
	       " data_bytes=%" PRIu64 " fault_p50_us=%" PRIu64 " fault_p99_us=%" PRIu64
	       " progress_lost_pct=%.1f wl_cpu_ms=%.1f wl_wait_ms=%.1f\n",
	       copy ? "stop-and-copy" : "post-copy", down, total, f->st.faults,
	       f->st.fault_wait_us / 1e3, f->bytes, sum, f->status, f->data, f->st.fault_p50_us,
	       f->st.fault_p99_us, 100 * lost, f->wl_run_ns / 1e6, f->wl_wait_ns / 1e6);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "handoff", required_argument, 0, 'H' },
					      { "done", required_argument, 0, 'D' },
					      { "expect", required_argument, 0, 'e' },
					      { "stop-and-copy", no_argument, 0, 'c' },
					      { "low-speed-ms", required_argument, 0, 'L' },
					      { "retries", required_argument, 0, 'R' },
					      { 0 } };
	const char *handoff = NULL, *done = NULL, *expect = NULL;
	int copy = 0, low_speed_ms = 20000, retries = 10;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 'H':
			handoff = optarg;
			break;
		case 'D':
			done = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'c':
			copy = 1;
			break;
		case 'L':
			low_speed_ms = atoi(optarg);
			break;
		case 'R':
			retries = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!handoff || !done) {
		fprintf(stderr, "usage: destination --handoff FIFO --done FIFO [--expect CHECKSUM] "
				"[--stop-and-copy] [--low-speed-ms N] [--retries N]\n");
		return 2;
	}
	char url[256];
	struct figures f = { 0 };
	int r = read_handoff(handoff, url, sizeof(url), &f.t_pause);
	if (r < 0) {
		fprintf(stderr, "destination: no handoff line in %s: %s\n", handoff, strerror(-r));
		return 1;
	}
	char err[256] = "";
	/* The link may drop for a while: wait out stalls and retry rather than poison. */
	struct thaw_open_opts oo = { .sz = sizeof(oo),
				     .err_buf = err,
				     .err_buf_size = sizeof(err),
				     .connect_timeout_ms = 2000,
				     .low_speed_timeout_ms = low_speed_ms,
				     .max_retries = retries };
	struct thaw_snapshot *snap = NULL;
	r = thaw_snapshot_open(url, &oo, &snap);
	if (r == 0) {
		struct thaw_snapshot_info in = { .sz = sizeof(in) };
		if (!thaw_snapshot_get_info(snap, &in))
			f.data = in.stored_bytes;
	}
	if (r == 0)
		r = copy ? stop_and_copy(snap, url, &f) : post_copy(snap, done, &f);
	if (r < 0) {
		fprintf(stderr, "destination: %s: %s\n", url, err[0] ? err : thaw_strerror(r));
		return 1;
	}
	if (copy)
		say_done(done, 0);
	uint64_t sum = wl_checksum((const uint8_t *)WL_ADDR, ((struct wl_state *)WL_ADDR)->size);
	report(&f, copy, sum, expect);
	free(f.stamps);
	thaw_snapshot_close(snap);
	int match = !expect || strtoull(expect, NULL, 16) == sum;
	return f.status == 0 && match ? 0 : 1;
}
