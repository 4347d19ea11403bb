/* SPDX-License-Identifier: MIT */
/*
 * Install failures, injected: this program defines ioctl(), so the
 * library's UFFDIO_COPY and UFFDIO_POISON calls come here first and fail
 * as the cases ask (transient ENOMEM, or EIO into one chunk), everything
 * else going to the kernel. Shows that a transient failure is retried and
 * that a page neither installed nor poisoned never reads zeros.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif

#define PAGE	 4096u
#define CHUNK	 (64u << 10)
#define LEN	 (4u << 20)
#define BAD	 9 /* the chunk that can be neither installed nor poisoned */
#define BAD_SEED 77

static atomic_int copy_enomem; /* UFFDIO_COPY calls still to fail with ENOMEM */
/* A COPY of these bytes (chunk BAD's start) fails with EIO, and so does any POISON
 * meeting where it was headed, [eio_lo, eio_hi). By content: sanitizers forbid a
 * fixed address, and the restore may reach the chunk before its address is known. */
static _Atomic(const unsigned char *) bad_bytes;
static atomic_uint_fast64_t eio_lo, eio_hi;

static bool meets_eio(uint64_t a, uint64_t len)
{
	return a < atomic_load(&eio_hi) && a + len > atomic_load(&eio_lo);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (req == UFFDIO_COPY) {
		struct uffdio_copy *c = arg;
		const unsigned char *bad = atomic_load(&bad_bytes);
		int err = 0;
		if (bad && c->len >= 64 && !memcmp((const void *)(uintptr_t)c->src, bad, 64)) {
			atomic_store(&eio_lo, c->dst);
			atomic_store(&eio_hi, c->dst + c->len);
			err = EIO;
		}
		if (!err && atomic_fetch_sub(&copy_enomem, 1) > 0)
			err = ENOMEM;
		if (err) {
			c->copy = -err;
			errno = err;
			return -1;
		}
	} else if (req == UFFDIO_POISON) {
		struct uffdio_poison *p = arg;
		if (meets_eio(p->range.start, p->range.len)) {
			p->updated = -EIO;
			errno = EIO;
			return -1;
		}
	}
	return (int)syscall(SYS_ioctl, fd, req, arg);
}

struct fx {
	unsigned char *src;
	struct thaw_snapshot *snap;
	struct thaw_restore *r;
	unsigned char *mem;
};

static void start(struct fx *f, unsigned flags)
{
	f->src = malloc(LEN);
	CHECK(f->src);
	fixture_fill_mixed(f->src, LEN, 5);
	test_fill_random(f->src + BAD * CHUNK, CHUNK, BAD_SEED);
	CHECK_OK(fixture_restore_region(test_path("s.thaw"), f->src, LEN, 0x300000000ull, flags,
					&f->snap, &f->r));
	f->mem = thaw_restore_region_addr(f->r, 0);
	CHECK(f->mem);
}

static void check_pages(const struct fx *f, size_t from, size_t to)
{
	unsigned char page[PAGE];
	for (size_t i = from; i < to; i++) {
		CHECK_MSG(test_read_or_sigbus(f->mem + i * PAGE, page, PAGE), "page %zu: SIGBUS",
			  i);
		CHECK_MSG(!memcmp(page, f->src + i * PAGE, PAGE), "page %zu differs", i);
	}
}

/* -ENOMEM from UFFDIO_COPY (a memory cgroup at its limit) is retried, not poisoned. */
static int copy_enomem_retried(void)
{
	struct fx f;
	start(&f, THAW_RESTORE_NO_BACKGROUND);
	atomic_store(&copy_enomem, 4);
	check_pages(&f, 0, LEN / PAGE);
	CHECK_LE(atomic_load(&copy_enomem), 0);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(f.r, &st));
	CHECK_EQ(st.chunks_poisoned, 0);
	CHECK_EQ(st.chunks_failed, 0);
	thaw_restore_free(f.r);
	thaw_snapshot_close(f.snap);
	free(f.src);
	return 0;
}

/* Is addr in a mapping still registered with a userfaultfd (VmFlags "um")? */
static bool registered(const void *addr)
{
	FILE *fp = fopen("/proc/self/smaps", "r");
	CHECK(fp);
	char line[512];
	bool in = false, um = false;
	while (fgets(line, sizeof(line), fp)) {
		unsigned long lo, hi;
		/* A mapping's first line; field lines never parse as two numbers. */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && !strncmp(line, "VmFlags:", 8))
			um = strstr(line, " um") != NULL;
	}
	fclose(fp);
	return um;
}

/*
 * One chunk's COPY and POISON both fail: it is reported (wait, stats), stays
 * registered while the restore lives and is sealed at free, never zeros.
 */
static int neither_copy_nor_poison(void)
{
	struct fx f;
	static unsigned char bad[CHUNK];
	test_fill_random(bad, CHUNK, BAD_SEED); /* chunk BAD's bytes, armed before the start */
	atomic_store(&bad_bytes, bad);
	start(&f, 0);
	CHECK_EQ(thaw_restore_wait(f.r, 20000), -THAW_E_UNINSTALLED);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(f.r, &st));
	CHECK_EQ(st.chunks_failed, 1);
	CHECK_EQ(st.chunks_poisoned, 0);
	CHECK_MSG(registered(f.mem + BAD * CHUNK + PAGE), "chunk %d was unregistered", BAD);
	CHECK_MSG(!registered(f.mem + (BAD + 1) * CHUNK), "the rest stayed registered");
	check_pages(&f, 0, BAD * CHUNK / PAGE);
	check_pages(&f, (BAD + 1) * CHUNK / PAGE, LEN / PAGE);
	thaw_restore_free(f.r);
	/* Never zeros: the memory is sealed. */
	CHECK_EQ(test_child_touch(f.mem + BAD * CHUNK + 5), SIGSEGV);
	check_pages(&f, (BAD + 1) * CHUNK / PAGE, LEN / PAGE);
	thaw_snapshot_close(f.snap);
	free(f.src);
	return 0;
}

static const struct test_case cases[] = {
	{ "copy_enomem_retried", copy_enomem_retried, 60 },
	{ "neither_copy_nor_poison", neither_copy_nor_poison, 60 },
};

TEST_MAIN(cases)
