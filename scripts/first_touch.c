/* SPDX-License-Identifier: MIT */
/*
 * first_touch: what the first access to a page costs the program, by how
 * the page came in, against a page it wrote itself (resident memory). The
 * floor under `make bench`'s prefetch / resident figure: every page a lazy
 * restore streams is installed by the kernel, and its first touch by the
 * program is one of these.
 *
 *   cc -O2 -pthread -o first_touch scripts/first_touch.c
 *   first_touch [MiB] [percent]   default 2048 and 10; prints one JSON object
 *
 * A random percent of the pages of a fresh anonymous range (like the
 * prefetch bench's working set) is filled in three ways:
 *   resident   the program writes each page (memset): eager decode's pages;
 *   copy       another thread installs them with UFFDIO_COPY, then the
 *              program sums each page, twice (first and second touch);
 *   copy+read  as copy, but the installing thread reads a byte of each page
 *              right after its copy (user mode): which thread pays the first
 *              access, and what the copy then costs.
 * On bare metal or with nested paging the first touch of a copied page
 * costs about what a resident one does; under a hypervisor that shadows
 * page tables (PVM) it costs several microseconds more, once per page, in
 * whichever thread of the process reads it first. Medians of three runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_uffd.h"

#define PAGE 4096ul
#define RUNS 3

struct run {
	char *mem;
	const uint64_t *pages;
	size_t n;
	const char *src;
	int uffd;
	bool read_after;
	double install_us; /* per page, in the installing thread */
	int err;
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *install(void *arg)
{
	struct run *r = arg;
	double t0 = now_us();
	for (size_t i = 0; i < r->n; i++) {
		char *dst = r->mem + r->pages[i] * PAGE;
		struct uffdio_copy c = { .dst = (uintptr_t)dst,
					 .src = (uintptr_t)r->src,
					 .len = PAGE };
		if (ioctl(r->uffd, UFFDIO_COPY, &c) < 0) {
			r->err = errno;
			return NULL;
		}
		if (r->read_after)
			(void)*(volatile char *)dst;
	}
	r->install_us = (now_us() - t0) / (double)r->n;
	return NULL;
}

/* Microseconds per page of summing every listed page (in a scrambled order); sum kept in *acc. */
static double touch(const char *mem, const uint64_t *pages, size_t n, uint64_t *acc)
{
	double t0 = now_us();
	for (size_t i = 0; i < n; i++) {
		const uint64_t *p = (const uint64_t *)(mem + pages[(i * 7919) % n] * PAGE);
		for (size_t j = 0; j < PAGE / 8; j++)
			*acc += p[j];
	}
	return (now_us() - t0) / (double)n;
}

/*
 * One run of one way (0 resident, 1 copy, 2 copy+read) over a fresh range:
 * out[0] the install (or write) per page, out[1] and out[2] the first and
 * second touch per page. 0 or -errno.
 */
static int one_run(int way, size_t len, const uint64_t *pages, size_t n, const char *src,
		   uint64_t *acc, double out[3])
{
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	int err = 0;
	if (way == 0) {
		double t0 = now_us();
		for (size_t i = 0; i < n; i++)
			memcpy(mem + pages[i] * PAGE, src, PAGE);
		out[0] = (now_us() - t0) / (double)n;
	} else {
		struct run r = {
			.mem = mem, .pages = pages, .n = n, .src = src, .read_after = way == 2
		};
		r.uffd = bench_open_uffd();
		struct uffdio_register reg = { .range = { (uintptr_t)mem, len },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };
		pthread_t t;
		if (r.uffd < 0 || ioctl(r.uffd, UFFDIO_REGISTER, &reg) < 0)
			err = -errno;
		else if ((err = -pthread_create(&t, NULL, install, &r)) == 0)
			pthread_join(t, NULL);
		if (!err && r.err)
			err = -r.err;
		if (r.uffd >= 0)
			close(r.uffd); /* unregisters: every listed page is in */
		out[0] = r.install_us;
	}
	if (!err) {
		out[1] = touch(mem, pages, n, acc);
		out[2] = touch(mem, pages, n, acc);
	}
	munmap(mem, len);
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 2048) << 20;
	double pct = argc > 2 ? strtod(argv[2], NULL) : 10;
	size_t total = len / PAGE, n = (size_t)((double)total * pct / 100);
	uint64_t *pages = malloc((n ? n : 1) * sizeof(*pages));
	uint8_t *used = calloc(total ? total : 1, 1);
	char *src = aligned_alloc(PAGE, PAGE);
	if (!n || !pages || !used || !src)
		return 1;
	memset(src, 7, PAGE);
	uint64_t x = 88172645463325252ull, acc = 0;
	for (size_t i = 0; i < n;) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t p = x % total;
		if (!used[p]) {
			used[p] = 1;
			pages[i++] = p;
		}
	}
	/* [way][figure][run], interleaved runs: a shared VM drifts. */
	double r[3][3][RUNS];
	for (int k = 0; k < RUNS; k++)
		for (int way = 0; way < 3; way++) {
			double out[3] = { 0 };
			int err = one_run(way, len, pages, n, src, &acc, out);
			if (err) {
				fprintf(stderr, "first_touch: %s\n", strerror(-err));
				return 1;
			}
			for (int f = 0; f < 3; f++)
				r[way][f][k] = out[f];
		}
	for (int way = 0; way < 3; way++)
		for (int f = 0; f < 3; f++)
			qsort(r[way][f], RUNS, sizeof(double), cmp_double);
#define MED(w, f) r[w][f][RUNS / 2]
	printf("{\"pages\": %zu, \"resident_write_us\": %.2f, \"resident_touch_us\": %.2f, "
	       "\"resident_touch2_us\": %.2f, \"copy_us\": %.2f, \"copy_touch_us\": %.2f, "
	       "\"copy_touch2_us\": %.2f, \"copy_read_us\": %.2f, \"copy_read_touch_us\": %.2f, "
	       "\"sum\": %llu}\n",
	       n, MED(0, 0), MED(0, 1), MED(0, 2), MED(1, 0), MED(1, 1), MED(1, 2), MED(2, 0),
	       MED(2, 1), (unsigned long long)(acc & 0xff));
	return 0;
}
