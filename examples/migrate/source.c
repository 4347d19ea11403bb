/* SPDX-License-Identifier: MIT */
/*
 * migrate/source: the process that moves away.
 *
 *   source --handoff FIFO --done FIFO [--size MiB] [--memfd] [--bind ADDR]
 *          [--port N] [--steps N] [--workload uniform|hot] [--pause-after-ms N]
 *          [--linger-s N]
 *   source --reference [--size MiB] [--steps N] [--workload uniform|hot]
 *
 * Builds a region at a fixed address (anonymous, or a memfd as VMMs use
 * for guest memory) and runs the workload on it. On SIGUSR1 (or after
 * --pause-after-ms) it pauses the workload, exports the region over HTTP
 * and writes "url=URL paused_at_ns=T" to the handoff FIFO; then it serves
 * until the destination writes "done" to the done FIFO and every data
 * chunk has been sent, and exits. --reference runs the whole workload here
 * without moving and prints the checksum a migrated run must end with.
 * --workload picks what the steps do (workload.h): uniform (the default)
 * writes pages at random across all data, hot mostly within a slowly
 * moving hot set, with some work a step. The choice lives in the
 * workload's state, so the destination carries on with the same one.
 */
#include <thaw.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "workload.h"

struct source {
	uint8_t *mem;
	uint64_t size;
	int memfd;
	atomic_bool pause;
};

static void *run(void *arg)
{
	struct source *s = arg;
	struct wl_state *st = (struct wl_state *)s->mem;
	while (!atomic_load_explicit(&s->pause, memory_order_relaxed) && st->step < st->steps)
		wl_step(s->mem);
	return NULL;
}

static int map_region(struct source *s, int use_memfd)
{
	s->memfd = -1;
	int flags = MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS;
	if (use_memfd) {
		s->memfd = memfd_create("guest-mem", MFD_CLOEXEC);
		if (s->memfd < 0 || ftruncate(s->memfd, (off_t)s->size) < 0)
			return -errno;
		flags = MAP_FIXED_NOREPLACE | MAP_SHARED;
	}
	s->mem = mmap((void *)WL_ADDR, s->size, PROT_READ | PROT_WRITE, flags, s->memfd, 0);
	return s->mem == MAP_FAILED ? -errno : 0;
}

/*
 * Serve until the destination says it is done and nothing it needs is
 * unsent; es receives the export's last counters.
 */
static int serve_until_done(struct thaw_export *x, const char *done_path, int linger_s,
			    struct thaw_export_stats *es)
{
	char line[64] = "";
	FILE *f = fopen(done_path, "r");
	if (!f || !fgets(line, sizeof(line), f))
		fprintf(stderr, "source: the destination went away without saying done\n");
	if (f)
		fclose(f);
	for (int i = 0; i <= linger_s; i++) {
		thaw_export_stats(x, es);
		if (thaw_export_stop(x, 0) == 0)
			return strncmp(line, "done", 4) ? 1 : 0;
		thaw_export_wait(x, 1000);
	}
	fprintf(stderr, "source: pages still unsent after %d s; stopping anyway\n", linger_s);
	thaw_export_stop(x, 1);
	return 1;
}

/* CPU time this process has used, in ms. */
static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int migrate(struct source *s, const char *handoff, const char *done, const char *bind,
		   uint16_t port, int linger_s, uint64_t t_pause, uint64_t t_pause_mono)
{
	uint64_t t0 = wl_ns(CLOCK_MONOTONIC);
	double cpu0 = cpu_ms();
	struct thaw_export_region rg = { .addr = WL_ADDR,
					 .len = s->size,
					 .prot = PROT_READ | PROT_WRITE,
					 .name = s->memfd >= 0 ? "guest-mem" : "workload",
					 .memfd = s->memfd };
	char err[256] = "";
	struct thaw_export_opts xo = { .sz = sizeof(xo),
				       .bind_addr = bind,
				       .port = port,
				       .err_buf = err,
				       .err_buf_size = sizeof(err) };
	struct thaw_export *x = NULL;
	int r = thaw_export_start(&rg, 1, &xo, &x);
	if (r < 0) {
		fprintf(stderr, "source: export: %s\n", err[0] ? err : thaw_strerror(r));
		return 1;
	}
	uint64_t t_served = wl_ns(CLOCK_MONOTONIC);
	FILE *h = fopen(handoff, "w");
	if (!h ||
	    fprintf(h, "url=%s paused_at_ns=%" PRIu64 "\n", thaw_export_url(x), t_pause) < 0 ||
	    fclose(h)) {
		fprintf(stderr, "source: handoff %s: %s\n", handoff, strerror(errno));
		thaw_export_stop(x, 1);
		return 1;
	}
	printf("source: paused at step %" PRIu64 "; exported %s in %.2f ms\n",
	       ((struct wl_state *)s->mem)->step, thaw_export_url(x), (t_served - t0) / 1e6);
	fflush(stdout);
	struct thaw_export_stats es = { .sz = sizeof(es) };
	r = serve_until_done(x, done, linger_s, &es);
	printf("source: view of %" PRIu64 " chunks (%" PRIu64 " with data) built in %" PRIu64
	       " us; %" PRIu64 " requests (%" PRIu64 " by sendfile), %.1f MiB sent; every data "
	       "chunk sent %.0f ms after the pause; serving took %.0f ms of CPU\n",
	       es.chunks, es.chunks_data, es.build_us, es.requests, es.requests_sendfile,
	       es.bytes_sent / 1048576.0,
	       es.complete_us ? (t0 - t_pause_mono) / 1e6 + es.complete_us / 1e3 : 0.0,
	       cpu_ms() - cpu0);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "handoff", required_argument, 0, 'H' },
					      { "done", required_argument, 0, 'D' },
					      { "size", required_argument, 0, 's' },
					      { "memfd", no_argument, 0, 'm' },
					      { "bind", required_argument, 0, 'b' },
					      { "port", required_argument, 0, 'p' },
					      { "steps", required_argument, 0, 'n' },
					      { "pause-after-ms", required_argument, 0, 'a' },
					      { "linger-s", required_argument, 0, 'l' },
					      { "reference", no_argument, 0, 'r' },
					      { "workload", required_argument, 0, 'w' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	const char *handoff = NULL, *done = NULL, *bind = "127.0.0.1";
	uint64_t mib = 1024, steps = 20000000;
	int use_memfd = 0, reference = 0, linger_s = 120, pause_ms = -1, help = 0;
	enum wl_kind kind = WL_UNIFORM;
	uint16_t port = 0;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 'H':
			handoff = optarg;
			break;
		case 'D':
			done = optarg;
			break;
		case 's':
			mib = strtoull(optarg, NULL, 0);
			break;
		case 'm':
			use_memfd = 1;
			break;
		case 'b':
			bind = optarg;
			break;
		case 'p':
			port = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			steps = strtoull(optarg, NULL, 0);
			break;
		case 'a':
			pause_ms = atoi(optarg);
			break;
		case 'l':
			linger_s = atoi(optarg);
			break;
		case 'r':
			reference = 1;
			break;
		case 'h':
			help = 1;
			break;
		case 'w':
			if (strcmp(optarg, "hot") && strcmp(optarg, "uniform")) {
				fprintf(stderr, "source: --workload is uniform or hot\n");
				return 2;
			}
			kind = strcmp(optarg, "hot") ? WL_UNIFORM : WL_HOT;
			break;
		default:
			return 2;
		}
	}
	if (help || !mib || (!reference && (!handoff || !done))) {
		fprintf(help ? stdout : stderr,
			"usage: source --handoff FIFO --done FIFO [--size MiB] [--memfd] "
			"[--bind ADDR] [--port N] [--steps N] [--workload uniform|hot] "
			"[--pause-after-ms N] | --reference [--size MiB] [--steps N] "
			"[--workload uniform|hot]\n"
			"  --workload uniform  every step writes a random data page (the default)\n"
			"  --workload hot      90%% of steps in a slowly moving tenth of the "
			"data,\n"
			"                      about a microsecond of work a step\n");
		return help ? 0 : 2;
	}
	struct source s = { .size = mib << 20 };
	int r = map_region(&s, use_memfd);
	if (r < 0) {
		fprintf(stderr, "source: mapping %" PRIu64 " MiB at 0x%lx: %s\n", mib, WL_ADDR,
			strerror(-r));
		return 1;
	}
	wl_init(s.mem, s.size, steps, kind);
	if (reference) {
		run(&s);
		printf("checksum=%016" PRIx64 "\n", wl_checksum(s.mem, s.size));
		return 0;
	}
	/* SIGUSR1 is taken by sigwait here, never delivered to the workload. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, run, &s))
		return 1;
	printf("source: %" PRIu64 " MiB %s region at 0x%lx, %s workload running (pid %d)\n", mib,
	       use_memfd ? "memfd" : "anonymous", WL_ADDR, kind == WL_HOT ? "hot" : "uniform",
	       (int)getpid());
	fflush(stdout);
	if (pause_ms < 0) {
		int sig;
		sigwait(&set, &sig);
	} else {
		struct timespec ts = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000 };
		sigtimedwait(&set, NULL, &ts);
	}
	atomic_store(&s.pause, true);
	pthread_join(t, NULL);
	uint64_t t_pause = wl_ns(CLOCK_REALTIME), t_pause_mono = wl_ns(CLOCK_MONOTONIC);
	return migrate(&s, handoff, done, bind, port, linger_s, t_pause, t_pause_mono);
}
