/* SPDX-License-Identifier: MIT */
/*
 * Live export (post-copy migration source): the view of live memory served
 * over HTTP restores byte-identical through the ordinary HTTP store, the
 * export will not stop while a destination may still need a chunk, and,
 * across two network namespaces, a cut link is survived and a killed
 * source poisons what is missing instead of zero-filling it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE 4096ul

/* Mixed content with a third of the pages never touched (zero per the page tables). */
static void *source_memory(size_t len, uint64_t seed)
{
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	uint8_t *tmp = malloc(len);
	CHECK(tmp);
	fixture_fill_mixed(tmp, len, seed);
	static const uint8_t zero[PAGE];
	/* Every third 64 KiB chunk and the fixture's zero pages stay untouched. */
	for (size_t p = 0; p < len / PAGE; p++)
		if ((p / 16) % 3 != 1 && memcmp(tmp + p * PAGE, zero, PAGE))
			memcpy(m + p * PAGE, tmp + p * PAGE, PAGE);
	free(tmp);
	return m;
}

static struct thaw_export *export_one(void *mem, size_t len, int memfd)
{
	struct thaw_export_region rg = { .sz = sizeof(rg),
					 .addr = (uint64_t)(uintptr_t)mem,
					 .len = len,
					 .prot = PROT_READ | PROT_WRITE,
					 .name = "test-mem",
					 .memfd = memfd };
	struct thaw_export *x = NULL;
	CHECK_OK(thaw_export_start(&rg, 1, NULL, &x));
	return x;
}

/* Restore relocated, touch every page in a scattered order, compare each with the source. */
static void restore_and_compare(struct thaw_export *x, const uint8_t *src, size_t len)
{
	struct thaw_snapshot *s = NULL;
	CHECK_OK(thaw_snapshot_open(thaw_export_url(x), NULL, &s));
	struct thaw_snapshot_info in;
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	CHECK_EQ(in.hashes, 0);
	CHECK_EQ(in.raw_bytes, len);
	CHECK_GT(in.chunks_by_kind[THAW_CHUNK_ZERO], 0);
	struct thaw_restore *r = NULL;
	CHECK_OK(thaw_restore_start(s, NULL, &r));
	const uint8_t *dst = thaw_restore_region_addr(r, 0);
	CHECK(dst && dst != src);
	size_t pages = len / PAGE;
	/* A stride coprime with the page count: every page once, far from stream order. */
	for (size_t i = 0, p = pages - 1; i < pages; i++, p = (p + 7919) % pages)
		CHECK_MSG(!memcmp(dst + p * PAGE, src + p * PAGE, PAGE), "page %zu differs", p);
	CHECK_OK(thaw_restore_wait(r, 30000));
	struct thaw_stats st;
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.faults, 0);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	munmap((void *)dst, len);
}

static int anonymous_pages(void)
{
	size_t len = 24ul << 20;
	uint8_t *m = source_memory(len, 11);
	struct thaw_export *x = export_one(m, len, -1);
	restore_and_compare(x, m, len);
	CHECK_OK(thaw_export_wait(x, 5000));
	struct thaw_export_stats es;
	CHECK_OK(thaw_export_stats(x, &es));
	CHECK_EQ(es.chunks_sent, es.chunks_data);
	CHECK_LT(es.chunks_data, es.chunks);
	CHECK_EQ(es.requests_sendfile, 0);
	CHECK_OK(thaw_export_stop(x, 0));
	return 0;
}

static int memfd_sendfile(void)
{
	size_t len = 16ul << 20;
	int fd = memfd_create("thaw-test", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, (off_t)len));
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	uint8_t *tmp = source_memory(len, 12);
	static const uint8_t zero[PAGE];
	for (size_t p = 0; p < len / PAGE; p++) /* leave holes where the source has zeros */
		if (memcmp(tmp + p * PAGE, zero, PAGE))
			memcpy(m + p * PAGE, tmp + p * PAGE, PAGE);
	munmap(tmp, len);
	struct thaw_export *x = export_one(m, len, fd);
	restore_and_compare(x, m, len);
	CHECK_OK(thaw_export_wait(x, 5000));
	struct thaw_export_stats es;
	CHECK_OK(thaw_export_stats(x, &es));
	CHECK_GT(es.requests_sendfile, 0);
	CHECK_LT(es.chunks_data, es.chunks);
	CHECK_OK(thaw_export_stop(x, 0));
	close(fd);
	return 0;
}

/*
 * Until each data chunk went out once, stop refuses: before any client,
 * and while a destination that fetches only what it touches has touched
 * half. Once it touched everything, stop succeeds.
 */
static int stop_refused_until_sent(void)
{
	size_t len = 4ul << 20;
	uint8_t *m = source_memory(len, 13);
	struct thaw_export *x = export_one(m, len, -1);
	CHECK_EQ(thaw_export_stop(x, 0), -EBUSY);
	CHECK_EQ(thaw_export_wait(x, 50), -ETIMEDOUT);
	struct thaw_snapshot *s = NULL;
	CHECK_OK(thaw_snapshot_open(thaw_export_url(x), NULL, &s));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r = NULL;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	const uint8_t *dst = thaw_restore_region_addr(r, 0);
	CHECK(!memcmp(dst, m, len / 2));
	CHECK_EQ(thaw_export_stop(x, 0), -EBUSY);
	CHECK_EQ(thaw_export_wait(x, 50), -ETIMEDOUT);
	CHECK(!memcmp(dst + len / 2, m + len / 2, len / 2));
	struct thaw_export_stats es;
	CHECK_OK(thaw_export_wait(x, 5000));
	CHECK_OK(thaw_export_stats(x, &es));
	CHECK_EQ(es.chunks_sent, es.chunks_data);
	CHECK_GT(es.complete_us, 0);
	CHECK_OK(thaw_export_stop(x, 0));
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

static const struct test_case cases[] = {
	{ "anonymous_pages", anonymous_pages, 60 },
	{ "memfd_sendfile", memfd_sendfile, 60 },
	{ "stop_refused_until_sent", stop_refused_until_sent, 30 },
};

TEST_MAIN(cases)
