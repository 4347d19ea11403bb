/* SPDX-License-Identifier: MIT */
/*
 * uffd_copy_rate: how fast this machine installs pages with UFFDIO_COPY,
 * the ceiling a background population is measured against in `make bench`.
 *
 *   cc -O2 -o uffd_copy_rate scripts/uffd_copy_rate.c -lm
 *   uffd_copy_rate [MiB]        default 512; prints one JSON object
 *
 * Registers a fresh anonymous range and fills it with UFFDIO_COPY from a
 * ready buffer, 4 KiB, 64 KiB and 2 MiB at a time, on one thread; no
 * faults are involved, only the install itself. Best of three runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench_uffd.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GB/s of filling len bytes with copies of `step` bytes each. */
static double copy_rate(int uffd, size_t len, size_t step, const void *src)
{
	char *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		return -1;
	struct uffdio_register reg = { .range = { (uintptr_t)dst, len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		munmap(dst, len);
		return -1;
	}
	double t0 = now_s();
	for (size_t off = 0; off < len; off += step) {
		struct uffdio_copy c = { .dst = (uintptr_t)dst + off,
					 .src = (uintptr_t)src,
					 .len = step };
		if (ioctl(uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST) {
			munmap(dst, len);
			return -1;
		}
	}
	double secs = now_s() - t0;
	munmap(dst, len); /* also unregisters */
	return (double)len / secs / 1e9;
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 512) << 20;
	int uffd = bench_open_uffd();
	if (uffd < 0) {
		fprintf(stderr, "uffd_copy_rate: no userfaultfd: %s\n", strerror(errno));
		return 1;
	}
	size_t big = 2u << 20;
	char *src = aligned_alloc(4096, big);
	if (!src)
		return 1;
	for (size_t i = 0; i < big; i++)
		src[i] = (char)(i * 131 + 7);
	/* A ceiling: the best of a few runs, since a shared VM only slows a run. */
	double r4k = 0, r64k = 0, r2m = 0;
	for (int i = 0; i < 3; i++) {
		r4k = fmax(r4k, copy_rate(uffd, len / 4, 4096, src));
		r64k = fmax(r64k, copy_rate(uffd, len, 65536, src));
		r2m = fmax(r2m, copy_rate(uffd, len, big, src));
	}
	printf("{\"copy_4k_gbs\": %.3f, \"copy_64k_gbs\": %.3f, \"copy_2m_gbs\": %.3f}\n", r4k,
	       r64k, r2m);
	return r4k > 0 && r64k > 0 && r2m > 0 ? 0 : 1;
}
