/* SPDX-License-Identifier: MIT */
/*
 * A process tree for CRIU to checkpoint and thaw to restore: a parent and a
 * child, each filling MIB MiB of anonymous memory with its own mix (pages
 * never touched, zeros written, random bytes, text, 64 KiB blocks repeated),
 * then waiting. Once DIR/go exists, each one forks a grandchild (which
 * checks the memory it inherited, while it may still be lazy), drops a
 * range with MADV_DONTNEED (must read zeros), unmaps one, moves one with
 * mremap, and then checks every page against what it wrote.
 *
 *   workload DIR MIB     writes DIR/ready-1, DIR/ready-2 (the pids) when filled,
 *                        DIR/result-TAG with "ok" or the first bad page
 * plus, on "ok", how long the checks took and each page's first read
 * (p50/p99/max): what the lazy restore cost the process.
 * The parent exits 0 when its memory, its child's and both grandchildren's
 * check out; otherwise 1 (its own), 2 (a grandchild) or 3 (its child).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE  4096ul
#define GROUP 16ul /* pages: a 64 KiB chunk */

static const char *dir;
static unsigned char *mem;
static size_t npages;
/* A read-only mapping of its own whose last page alone was written: the rest was never
 * dumped, so the daemon must answer faults there with zero pages. */
#define SPARE_PAGES 64
static unsigned char *spare;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

enum kind { UNTOUCHED, ZEROS, RANDOM, TEXT, REPEATED, KINDS };

static enum kind page_kind(int tag, size_t i)
{
	uint64_t g = mix((uint64_t)tag << 40 | i / GROUP) % 8;
	if (g < KINDS)
		return (enum kind)g;
	return (enum kind)(mix((uint64_t)tag << 40 | i | 1ull << 39) % KINDS); /* mixed group */
}

/* What page i of tag's memory holds. */
static void expected(int tag, size_t i, unsigned char *out)
{
	switch (page_kind(tag, i)) {
	case UNTOUCHED:
	case ZEROS:
		memset(out, 0, PAGE);
		break;
	case RANDOM: {
		uint64_t x = mix((uint64_t)tag * 1000003 + i) | 1;
		for (size_t k = 0; k < PAGE; k += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(out + k, &x, 8);
		}
		break;
	}
	case TEXT: {
		size_t n = 0;
		for (int line = 0; n < PAGE; line++) {
			char buf[96];
			int len =
				snprintf(buf, sizeof(buf), "task %d page %zu line %d: %s\n", tag, i,
					 line, line % 3 ? "the quick brown fox" : "jumps over");
			size_t c = n + len > PAGE ? PAGE - n : (size_t)len;
			memcpy(out + n, buf, c);
			n += c;
		}
		break;
	}
	case REPEATED:
		/* The same 64 KiB in every such group: identical chunks, stored once. */
		for (size_t k = 0; k < PAGE; k++)
			out[k] = (unsigned char)(tag * 31 + (i % GROUP) * 7 + k * 13 / 5);
		break;
	default:
		abort();
	}
}

static void fill(int tag)
{
	unsigned char page[PAGE];
	for (size_t i = 0; i < npages; i++) {
		if (page_kind(tag, i) == UNTOUCHED)
			continue;
		expected(tag, i, page);
		memcpy(mem + i * PAGE, page, PAGE);
	}
}

static void result(int tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void result(int tag, const char *fmt, ...)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/result-%d", dir, tag);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
	rename(tmp, path);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* How long each page's first read took (ns): what a lazy restore costs the process. */
static uint64_t *touch_ns;
static size_t ntouch;

/* Pages [from, to) of mem (at base) against tag's content; the first bad page or -1. */
static long check(int tag, const unsigned char *base, size_t from, size_t to, bool zero)
{
	unsigned char want[PAGE];
	for (size_t i = from; i < to; i++) {
		if (zero)
			memset(want, 0, PAGE);
		else
			expected(tag, i, want);
		uint64_t t0 = now_ns();
		volatile unsigned char first = base[(i - from) * PAGE];
		(void)first;
		if (touch_ns && ntouch < npages)
			touch_ns[ntouch++] = now_ns() - t0;
		if (memcmp(base + (i - from) * PAGE, want, PAGE))
			return (long)i;
	}
	return -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct_us(double q)
{
	return ntouch ? touch_ns[(size_t)(q * (ntouch - 1))] / 1000 : 0;
}

/* The checks after the restore; 0 when every page is right. */
static int verify(int tag, int child_tag)
{
	/* Fork first, while most pages are still lazy: the grandchild reads what it inherited. */
	uint64_t tf = now_ns();
	pid_t g = fork();
	tf = now_ns() - tf;
	if (g == 0) {
		long bad = check(tag, mem, 0, npages, false);
		if (bad >= 0)
			result(child_tag, "bad page %ld (kind %d) in the forked child", bad,
			       page_kind(tag, bad));
		else
			result(child_tag, "ok");
		_exit(bad >= 0);
	}
	/* A quarter in: dropped (reads zeros), unmapped, and moved, before any touch. */
	size_t q = npages / 4, len = npages / 16;
	unsigned char *drop = mem + q * PAGE, *gone = drop + len * PAGE, *moved = gone + len * PAGE;
	uint64_t te = now_ns(); /* the three calls wait for the daemon to take their events */
	if (madvise(drop, len * PAGE, MADV_DONTNEED) || munmap(gone, len * PAGE)) {
		result(tag, "madvise/munmap: %s", strerror(errno));
		return 1;
	}
	unsigned char *to = mremap(moved, len * PAGE, len * PAGE, MREMAP_MAYMOVE);
	if (to == MAP_FAILED) {
		result(tag, "mremap: %s", strerror(errno));
		return 1;
	}
	te = now_ns() - te;
	touch_ns = calloc(npages, sizeof(*touch_ns));
	uint64_t t0 = now_ns();
	long bad = -1;
	for (size_t i = 0; i < SPARE_PAGES && bad < 0; i++)
		for (size_t k = 0; k < PAGE && bad < 0; k++)
			if (spare[i * PAGE + k] !=
			    (i == SPARE_PAGES - 1 ? (unsigned char)(tag + k) : 0))
				bad = (long)(npages + i);
	if (bad < 0)
		bad = check(tag, mem, 0, q, false);
	if (bad < 0)
		bad = check(tag, drop, q, q + len, true);
	if (bad < 0)
		bad = check(tag, to, q + 2 * len, q + 3 * len, false);
	if (bad < 0)
		bad = check(tag, mem + (q + 3 * len) * PAGE, q + 3 * len, npages, false);
	uint64_t verify_us = (now_ns() - t0) / 1000;
	int st = 0;
	waitpid(g, &st, 0);
	if (bad >= 0) {
		result(tag, "bad page %ld (kind %d)", bad, page_kind(tag, bad));
		return 1;
	}
	qsort(touch_ns, ntouch, sizeof(*touch_ns), cmp_u64);
	result(tag,
	       "ok verify_us=%llu touch_p50_us=%llu touch_p99_us=%llu touch_max_us=%llu "
	       "fork_us=%llu "
	       "events_us=%llu",
	       (unsigned long long)verify_us, (unsigned long long)pct_us(0.5),
	       (unsigned long long)pct_us(0.99), (unsigned long long)pct_us(1.0),
	       (unsigned long long)(tf / 1000), (unsigned long long)(te / 1000));
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
}

static void mark_ready(int tag)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/ready-%d", dir, tag);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
		rename(tmp, path); /* whole, for whoever waits on it */
	}
}

static void wait_go(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/go", dir);
	while (access(path, F_OK))
		usleep(10000);
}

int main(int argc, char **argv)
{
	if (argc != 3 || atoi(argv[2]) <= 0) {
		fprintf(stderr, "usage: workload DIR MIB\n");
		return 64;
	}
	dir = argv[1];
	npages = (size_t)atoi(argv[2]) * (1 << 20) / PAGE;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 65;
	pid_t child = fork();
	int tag = child == 0 ? 2 : 1;
	fill(tag);
	spare = mmap(NULL, SPARE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	if (spare == MAP_FAILED)
		return 65;
	for (size_t k = 0; k < PAGE; k++)
		spare[(SPARE_PAGES - 1) * PAGE + k] = (unsigned char)(tag + k);
	mprotect(spare, SPARE_PAGES * PAGE, PROT_READ); /* not merged with its neighbours */
	mark_ready(tag);
	wait_go();
	int rc = verify(tag, tag * 10);
	if (child > 0) {
		int st = 0;
		waitpid(child, &st, 0);
		if (!rc && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			rc = 3;
	}
	return rc;
}
