/* SPDX-License-Identifier: MIT */
/*
 * In-process restores under what programs do to their memory: fork (with
 * and without the background pass, then exec), MADV_DONTNEED, munmap,
 * mremap. Every case compares the bytes with a copy of the source the test
 * keeps, never with what the library reads.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE  4096u
#define LEN   (16u << 20)
#define CHUNK (64u << 10)

struct fx {
	unsigned char *src; /* the source bytes, kept by the test */
	struct thaw_snapshot *snap;
	struct thaw_restore *r;
	unsigned char *mem;
};

static void start(struct fx *f, unsigned flags)
{
	f->src = malloc(LEN);
	CHECK(f->src);
	fixture_fill_mixed(f->src, LEN, 12);
	/* Some random pages in every chunk: a zero chunk would read zeros either way. */
	for (size_t off = 0; off < LEN; off += CHUNK)
		test_fill_random(f->src + off + PAGE, PAGE, off);
	CHECK_OK(fixture_restore_region(test_path("s.thaw"), f->src, LEN, 0x200000000ull, flags,
					&f->snap, &f->r));
	f->mem = thaw_restore_region_addr(f->r, 0);
	CHECK(f->mem);
}

/* Page i of mem holds the source's page i; fails naming the first bad byte. */
static void check_page(const unsigned char *mem, const unsigned char *src, size_t i)
{
	unsigned char got[PAGE];
	CHECK_MSG(test_read_or_sigbus(mem + i * PAGE, got, PAGE), "page %zu raised SIGBUS", i);
	for (size_t k = 0; k < PAGE; k++)
		CHECK_MSG(got[k] == src[i * PAGE + k], "page %zu byte %zu: 0x%02x, want 0x%02x", i,
			  k, got[k], src[i * PAGE + k]);
}

static void check_zero_page(const unsigned char *mem, size_t i)
{
	unsigned char got[PAGE];
	CHECK_MSG(test_read_or_sigbus(mem + i * PAGE, got, PAGE), "page %zu raised SIGBUS", i);
	for (size_t k = 0; k < PAGE; k++)
		CHECK_MSG(got[k] == 0, "page %zu byte %zu: 0x%02x, want 0 (removed)", i, k, got[k]);
}

static void check_range(const unsigned char *mem, const unsigned char *src, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		check_page(mem, src, i);
}

static void finish(struct fx *f)
{
	thaw_restore_free(f->r);
	thaw_snapshot_close(f->snap);
	free(f->src);
}

/* The child reads every page; its exit status says how many differ (capped). */
static int child_reads_all(const unsigned char *mem, const unsigned char *src)
{
	unsigned bad = 0;
	for (size_t i = 0; i < LEN / PAGE; i++)
		bad += memcmp(mem + i * PAGE, src + i * PAGE, PAGE) != 0;
	return bad > 100 ? 100 : (int)bad;
}

static void fork_and_compare(unsigned flags)
{
	struct fx f;
	start(&f, flags);
	/* Without the pass: part restored before the fork, the rest missing in both
	 * processes. With it: right after the start, as the pass streams. */
	if (flags & THAW_RESTORE_NO_BACKGROUND)
		check_range(f.mem, f.src, 0, LEN / PAGE / 4);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child_reads_all(f.mem, f.src));
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_MSG(WIFEXITED(status), "child status 0x%x", status);
	CHECK_MSG(WEXITSTATUS(status) == 0, "the child read %d pages that differ from the source",
		  WEXITSTATUS(status));
	check_range(f.mem, f.src, 0, LEN / PAGE);
	finish(&f);
}

static int fork_with_background(void)
{
	fork_and_compare(0);
	return 0;
}

static int fork_without_background(void)
{
	fork_and_compare(THAW_RESTORE_NO_BACKGROUND);
	return 0;
}

/* A child forks too: the grandchild is served by this process as well. */
static int fork_grandchild(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		pid_t g = fork();
		if (g < 0)
			_exit(120);
		if (g == 0)
			_exit(child_reads_all(f.mem, f.src));
		int status;
		if (waitpid(g, &status, 0) != g || !WIFEXITED(status))
			_exit(121);
		_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : child_reads_all(f.mem, f.src));
	}
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
	check_range(f.mem, f.src, 0, LEN / PAGE);
	finish(&f);
	return 0;
}

/* The child touches a few pages, then execs: the parent's restore is not disturbed. */
static int fork_then_exec(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	for (int round = 0; round < 8; round++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			size_t i = (size_t)round * 97 % (LEN / PAGE);
			if (memcmp(f.mem + i * PAGE, f.src + i * PAGE, PAGE))
				_exit(9);
			execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
			_exit(8);
		}
		int status;
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 7, "child status 0x%x",
			  status);
	}
	check_range(f.mem, f.src, 0, LEN / PAGE);
	finish(&f);
	return 0;
}

/*
 * MADV_DONTNEED of a restored page and of an untouched one: both read zeros
 * at once, and still after every other page is in.
 */
static void dontneed(unsigned flags)
{
	struct fx f;
	start(&f, flags);
	size_t restored = 3 * CHUNK / PAGE + 1, untouched = 40 * CHUNK / PAGE + 1;
	check_page(f.mem, f.src, restored);
	CHECK_OK(madvise(f.mem + restored * PAGE, PAGE, MADV_DONTNEED) ? -errno : 0);
	CHECK_OK(madvise(f.mem + untouched * PAGE, PAGE, MADV_DONTNEED) ? -errno : 0);
	check_zero_page(f.mem, restored);
	check_zero_page(f.mem, untouched);
	/* Written after the remove: the write stays. */
	f.mem[restored * PAGE + 5] = 0x5a;
	CHECK_EQ(f.mem[restored * PAGE + 5], 0x5a);
	f.mem[restored * PAGE + 5] = 0;
	check_page(f.mem, f.src, restored + 1);
	check_page(f.mem, f.src, untouched - 1);
	if (!(flags & THAW_RESTORE_NO_BACKGROUND))
		CHECK_EQ(thaw_restore_wait(f.r, 30000), 0);
	/* Free finishes population; the memory stays ours. */
	thaw_restore_free(f.r);
	f.r = NULL;
	check_zero_page(f.mem, restored);
	check_zero_page(f.mem, untouched);
	for (size_t i = 0; i < LEN / PAGE; i++)
		if (i != restored && i != untouched)
			check_page(f.mem, f.src, i);
	finish(&f);
}

static int dontneed_with_background(void)
{
	dontneed(0);
	return 0;
}

static int dontneed_without_background(void)
{
	dontneed(THAW_RESTORE_NO_BACKGROUND);
	return 0;
}

/* munmap in the middle: both sides still read the snapshot, the restore completes. */
static int munmap_middle(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	size_t from = LEN / PAGE / 2 - 64, to = LEN / PAGE / 2 + 64;
	CHECK_OK(munmap(f.mem + from * PAGE, (to - from) * PAGE) ? -errno : 0);
	check_page(f.mem, f.src, from - 1);
	check_page(f.mem, f.src, to);
	CHECK_EQ(test_child_touch(f.mem + from * PAGE), SIGSEGV);
	thaw_restore_free(f.r);
	f.r = NULL;
	check_range(f.mem, f.src, 0, from);
	check_range(f.mem, f.src, to, LEN / PAGE);
	finish(&f);
	return 0;
}

/* mremap of an untouched and of a restored range: the moved bytes are the snapshot's. */
static void mremap_range(bool touch_first, unsigned flags)
{
	struct fx f;
	start(&f, flags);
	size_t from = LEN / PAGE / 4, n = 256;
	if (touch_first)
		check_range(f.mem, f.src, from, from + n);
	unsigned char *to = mmap(NULL, n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(to != MAP_FAILED);
	unsigned char *moved =
		mremap(f.mem + from * PAGE, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	CHECK(moved == to);
	check_range(moved, f.src + from * PAGE, 0, n);
	check_page(f.mem, f.src, from - 1);
	check_page(f.mem, f.src, from + n);
	thaw_restore_free(f.r);
	f.r = NULL;
	check_range(moved, f.src + from * PAGE, 0, n);
	check_range(f.mem, f.src, 0, from);
	check_range(f.mem, f.src, from + n, LEN / PAGE);
	munmap(moved, n * PAGE);
	finish(&f);
}

static int mremap_untouched(void)
{
	mremap_range(false, THAW_RESTORE_NO_BACKGROUND);
	return 0;
}

static int mremap_restored(void)
{
	mremap_range(true, 0);
	return 0;
}

/*
 * A region grown in place by mremap: the new tail is registered memory the
 * snapshot does not cover; it must read zeros like any new memory, not hang.
 */
static int mremap_grow_in_place(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	/* Room after the region: move it into a hole twice its size first. */
	unsigned char *hole =
		mmap(NULL, 2 * (size_t)LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(hole != MAP_FAILED);
	munmap(hole + LEN, LEN);
	unsigned char *m = mremap(f.mem, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	CHECK(m == hole);
	unsigned char *g = mremap(m, LEN, 2 * (size_t)LEN, 0);
	CHECK_MSG(g == m, "mremap grow in place: %s", g == MAP_FAILED ? strerror(errno) : "moved");
	check_zero_page(g, LEN / PAGE + 3);
	check_range(g, f.src, 0, 64);
	thaw_restore_free(f.r);
	f.r = NULL;
	check_range(g, f.src, 0, LEN / PAGE);
	check_zero_page(g, 2 * (size_t)LEN / PAGE - 1);
	munmap(g, 2 * (size_t)LEN);
	thaw_snapshot_close(f.snap);
	free(f.src);
	return 0;
}

/* Ending early: resident pages stay, the rest raises SIGBUS, nothing is fetched. */
static int stop_early(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	check_range(f.mem, f.src, 0, LEN / PAGE / 4);
	uint64_t t0 = test_now_ns();
	CHECK_OK(thaw_restore_stop(f.r));
	CHECK_LT(test_now_ns() - t0, 2000000000ull);
	CHECK_EQ(thaw_restore_wait(f.r, 0), -ECANCELED);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(f.r, &st));
	CHECK_GT(st.chunks_poisoned, 0);
	check_range(f.mem, f.src, 0, LEN / PAGE / 4);
	/* Page 1 of each chunk is random data (start()): never in, so poisoned. */
	unsigned char c;
	size_t untouched = LEN / PAGE / 2 + 1;
	CHECK_MSG(!test_read_or_sigbus(f.mem + untouched * PAGE, &c, 1), "page %zu read 0x%02x",
		  untouched, c);
	t0 = test_now_ns();
	thaw_restore_free(f.r);
	CHECK_LT(test_now_ns() - t0, 2000000000ull);
	check_range(f.mem, f.src, 0, LEN / PAGE / 4);
	CHECK(!test_read_or_sigbus(f.mem + untouched * PAGE, &c, 1));
	thaw_snapshot_close(f.snap);
	free(f.src);
	return 0;
}

/* Threads of this process, from /proc. */
static int thread_count(void)
{
	char line[256];
	int n = -1;
	FILE *fp = fopen("/proc/self/status", "r");
	CHECK(fp);
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(fp);
	return n;
}

/*
 * Two hundred short-lived children, each served while it lives: the ended
 * ones are freed (their threads and uffds), not kept until the end.
 */
static int many_short_children(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	int base = thread_count();
	for (int i = 0; i < 200; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			size_t p = (size_t)i * 37 % (LEN / PAGE);
			_exit(memcmp(f.mem + p * PAGE, f.src + p * PAGE, PAGE) ? 1 : 0);
		}
		int status;
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: 0x%x", i,
			  status);
	}
	CHECK_EQ(thaw_restore_wait(f.r, 0), -ETIMEDOUT); /* frees the ended children */
	CHECK_LE(thread_count(), base + 2);
	finish(&f);
	return 0;
}

static const struct test_case cases[] = {
	{ "fork_with_background", fork_with_background, 60 },
	{ "fork_without_background", fork_without_background, 60 },
	{ "fork_grandchild", fork_grandchild, 60 },
	{ "fork_then_exec", fork_then_exec, 60 },
	{ "dontneed_with_background", dontneed_with_background, 60 },
	{ "dontneed_without_background", dontneed_without_background, 60 },
	{ "munmap_middle", munmap_middle, 60 },
	{ "mremap_untouched", mremap_untouched, 60 },
	{ "mremap_restored", mremap_restored, 60 },
	{ "mremap_grow_in_place", mremap_grow_in_place, 60 },
	{ "stop_early", stop_early, 60 },
	{ "many_short_children", many_short_children, 60 },
};

TEST_MAIN(cases)
