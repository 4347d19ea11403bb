/* SPDX-License-Identifier: MIT */
/*
 * migrate: post-copy live migration in miniature.
 *
 *   migrate [SIZE_MiB] [SNAP]       defaults: 512, /tmp/thaw-migrate-PID.snap
 *
 * A "source" process builds a working buffer, snapshots it and exits, as a
 * VM or a service would when it is moved away. The "destination" (this
 * process) restores the snapshot lazily and starts working on the buffer
 * at once: its hot set arrives on demand while the background pass
 * streams the rest. It prints how long until it could run and until the
 * buffer was fully resident, and checks the bytes against the source.
 */
#include <thaw.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t hash_bytes(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len / 8; i++)
		h = ((h ^ w[i]) * 0x100000001b3ull) ^ (h >> 29);
	return h;
}

/* A working set like a service's: zero, text-like, counters and noise. */
static void fill(uint8_t *buf, size_t len)
{
	uint64_t x = 88172645463325252ull;
	for (size_t pg = 0; pg < len / PAGE; pg++) {
		uint8_t *p = buf + pg * PAGE;
		switch (pg % 8) {
		case 0:
		case 1:
		case 2:
			break; /* never written: stays zero */
		case 3:
		case 4:
		case 5:
			for (size_t i = 0; i < PAGE; i += 32)
				snprintf((char *)p + i, 32, "sess %07zu user %04zu ok\n",
					 pg % 10000000, i);
			break;
		case 6:
			for (size_t i = 0; i < PAGE; i += 8) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				memcpy(p + i, &x, 8);
			}
			break;
		case 7:
			for (size_t i = 0; i < PAGE; i += 8) {
				uint64_t v = pg * 512 + i / 8;
				memcpy(p + i, &v, 8);
			}
			break;
		}
	}
}

/* The source side: build, snapshot, report the hash, exit. */
static int source(const char *path, size_t len, int out_fd)
{
	uint8_t *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	fill(buf, len);
	uint64_t h = hash_bytes(buf, len);
	char err[256] = "";
	struct thaw_writer_opts wo = { .sz = sizeof(wo),
				       .err_buf = err,
				       .err_buf_size = sizeof(err) };
	struct thaw_writer *w;
	int r = thaw_writer_open(path, &wo, &w);
	if (r == 0) {
		struct thaw_region_desc d = { .sz = sizeof(d),
					      .addr = (uintptr_t)buf,
					      .len = len,
					      .prot = PROT_READ | PROT_WRITE,
					      .name = "working-set",
					      .mem = buf,
					      .fd = -1 };
		r = thaw_writer_add_region(w, &d);
		r = r < 0 ? (thaw_writer_abort(w), r) : thaw_writer_close(w);
	}
	if (r < 0) {
		fprintf(stderr, "source: snapshot failed: %s\n", err[0] ? err : thaw_strerror(r));
		return 1;
	}
	return write(out_fd, &h, sizeof(h)) == sizeof(h) ? 0 : 1;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 512;
	char path[256];
	if (argc > 2)
		snprintf(path, sizeof(path), "%s", argv[2]);
	else
		snprintf(path, sizeof(path), "/tmp/thaw-migrate-%d.snap", (int)getpid());
	if (mib == 0 || argc > 3) {
		fprintf(stderr, "usage: migrate [SIZE_MiB] [SNAP]\n");
		return 2;
	}
	size_t len = mib << 20;

	int pfd[2];
	if (pipe(pfd) < 0)
		return 1;
	double t_src = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		_exit(source(path, len, pfd[1]));
	}
	close(pfd[1]);
	uint64_t src_hash;
	ssize_t n = read(pfd[0], &src_hash, sizeof(src_hash));
	int st;
	waitpid(pid, &st, 0);
	if (n != sizeof(src_hash) || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "migrate: the source failed\n");
		return 1;
	}
	printf("source: %zu MiB working set snapshotted to %s in %.0f ms, then it exited\n", mib,
	       path, now_ms() - t_src);

	/* Destination: restore and run at once. */
	struct thaw_snapshot *snap;
	int r = thaw_snapshot_open(path, NULL, &snap);
	if (r < 0) {
		fprintf(stderr, "migrate: open %s: %s\n", path, thaw_strerror(r));
		return 1;
	}
	double t0 = now_ms();
	struct thaw_restore *rs;
	r = thaw_restore_start(snap, NULL, &rs);
	if (r < 0) {
		fprintf(stderr, "migrate: restore: %s\n", thaw_strerror(r));
		return 1;
	}
	volatile uint8_t *mem = thaw_restore_region_addr(rs, 0);
	double t_ready = now_ms();

	/* The workload's first request reads one record... */
	uint64_t acc = mem[3 * PAGE] + mem[7 * PAGE];
	double t_first = now_ms();
	/* ...then it serves a hot set of 1% of the pages scattered over the buffer. */
	size_t pages = len / PAGE;
	for (size_t i = 0; i < pages / 100; i++)
		acc += mem[((i * 2654435761u) % pages) * PAGE + (i % PAGE)];
	double t_hot = now_ms();

	r = thaw_restore_wait(rs, -1);
	double t_res = now_ms();
	struct thaw_stats stt;
	thaw_restore_stats(rs, &stt);
	thaw_restore_free(rs);
	uint64_t h = hash_bytes((const void *)mem, len);

	printf("destination: restore start returned after %.3f ms\n", t_ready - t0);
	printf("destination: first request served after   %.3f ms\n", t_first - t0);
	printf("destination: hot set (1%% of pages) done   %.3f ms\n", t_hot - t0);
	printf("destination: fully resident after         %.3f ms%s\n", t_res - t0,
	       r == 0 ? "" : " (with errors)");
	printf("             %" PRIu64 " pages came on demand, %" PRIu64 " in the background\n",
	       stt.pages_fault, stt.pages_background);
	printf("content %s the source (hash %016" PRIx64 ")\n",
	       h == src_hash ? "matches" : "DIFFERS FROM", h);
	(void)acc; /* the reads are volatile; the sum only gives them a use */

	munmap((void *)mem, len);
	thaw_snapshot_close(snap);
	if (argc <= 2)
		unlink(path);
	return h == src_hash && r == 0 ? 0 : 1;
}
