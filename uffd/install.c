/* SPDX-License-Identifier: MIT */
/*
 * Installing pages: UFFDIO_COPY, ZEROPAGE, POISON and WAKE. Thread-safe:
 * they touch nothing but the uffd, and the kernel serialises per page.
 *
 * Resuming: each call reports progress only through its return value, so a
 * caller that gets -EAGAIN (the address space is changing: let the manager
 * read the pending events) simply retries the same whole call later. The
 * pages already installed then answer EEXIST and are skipped as done.
 */
#include "uffd_priv.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

enum install_kind { INSTALL_COPY, INSTALL_ZERO, INSTALL_POISON };

static const char *const kind_names[] = { "UFFDIO_COPY", "UFFDIO_ZEROPAGE", "UFFDIO_POISON" };

/* One ioctl over [dst, dst+len); returns 0 or -errno and sets *done to the bytes it installed. */
static int install_once(struct thaw__engine *e, enum install_kind kind, uint64_t dst,
			const char *src, uint64_t len, bool wake, int64_t *done)
{
	int ret;
	switch (kind) {
	case INSTALL_COPY: {
		struct uffdio_copy c = {
			.dst = dst,
			.src = (uint64_t)(uintptr_t)src,
			.len = len,
			.mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE,
		};
		ret = ioctl(e->uffd, UFFDIO_COPY, &c);
		*done = c.copy;
		break;
	}
	case INSTALL_ZERO: {
		struct uffdio_zeropage z = {
			.range = { .start = dst, .len = len },
			.mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE,
		};
		ret = ioctl(e->uffd, UFFDIO_ZEROPAGE, &z);
		*done = z.zeropage;
		break;
	}
	default: {
		struct uffdio_poison p = {
			.range = { .start = dst, .len = len },
			.mode = wake ? 0 : UFFDIO_POISON_MODE_DONTWAKE,
		};
		ret = ioctl(e->uffd, UFFDIO_POISON, &p);
		*done = p.updated;
		break;
	}
	}
	if (ret == 0) {
		*done = (int64_t)len;
		return 0;
	}
	int err = -errno;
	if (*done < 0)
		*done = 0; /* the field holds -errno when nothing was installed */
	return err;
}

/*
 * The kernel stops at the first page it cannot fill. After partial progress it
 * reports only the count (with EAGAIN), so continue from there to learn why;
 * a page already present (EEXIST) is skipped as done.
 */
static int install(struct thaw__engine *e, enum install_kind kind, uint64_t dst, const void *src,
		   uint64_t len, bool wake)
{
	uint64_t off = 0, step = len;
	bool skipped = false;
	while (off < len) {
		int64_t done = 0;
		uint64_t n = len - off < step ? len - off : step;
		int ret = install_once(e, kind, dst + off, src ? (const char *)src + off : NULL, n,
				       wake, &done);
		off += (uint64_t)done;
		if (ret == 0 || done > 0)
			continue;
		switch (ret) {
		case -EEXIST:
			off += e->page_size;
			skipped = true;
			continue;
		case -EINTR:
			continue;
		case -EAGAIN:
			return -EAGAIN;
		case -ENOENT:
			/* The kernel refuses a range that is not inside one VMA: one
			 * split under us still takes its pages one at a time. */
			if (step > e->page_size) {
				step = e->page_size;
				continue;
			}
			/* fall through */
		case -ESRCH:
			/* Unregistered or unmapped range, or the target's mm has exited. */
			thaw__warn(e->log, "%s at 0x%llx (+0x%llx): %s", kind_names[kind],
				   (unsigned long long)(dst + off), (unsigned long long)(len - off),
				   ret == -ESRCH ? "the target process is gone"
						 : "the range is not registered or not mapped");
			return -ESRCH;
		default:
			thaw__err(e->log, "%s at 0x%llx (+0x%llx) failed: %s", kind_names[kind],
				  (unsigned long long)(dst + off), (unsigned long long)(len - off),
				  strerror(-ret));
			return ret;
		}
	}
	/* A page found present may have been installed with DONTWAKE by someone
	 * else: never leave a thread asleep on a range we report as done. */
	if (skipped && wake)
		return thaw__install_wake(e, dst, len);
	return 0;
}

/*
 * Copies and poisons go around the pages the target removed: those read as
 * zeros from now on (a fault there gets a zero page from the engine).
 * Callers off the manager thread hold the layout (thaw__engine_hold), so
 * the set cannot grow between this look and the ioctls.
 */
static int install_kept(struct thaw__engine *e, enum install_kind kind, uint64_t dst,
			const void *src, uint64_t len, bool wake)
{
	const struct thaw__range_set *rm = &e->removed;
	size_t i = thaw__range_set_first_after(rm, dst);
	if (i == rm->n || rm->r[i].start >= dst + len)
		return install(e, kind, dst, src, len, wake);
	uint64_t at = dst, end = dst + len;
	for (; at < end; i++) {
		uint64_t gap_end = i < rm->n && rm->r[i].start < end ? rm->r[i].start : end;
		if (gap_end > at) {
			int err = install(e, kind, at, src ? (const char *)src + (at - dst) : NULL,
					  gap_end - at, wake);
			if (err)
				return err;
		}
		if (i >= rm->n || rm->r[i].start >= end)
			break;
		at = rm->r[i].end;
	}
	return 0;
}

int thaw__install_copy(struct thaw__engine *e, uint64_t dst, const void *src, uint64_t len,
		       bool wake)
{
	return install_kept(e, INSTALL_COPY, dst, src, len, wake);
}

int thaw__install_zero(struct thaw__engine *e, uint64_t dst, uint64_t len)
{
	return install(e, INSTALL_ZERO, dst, NULL, len, true);
}

int thaw__install_poison(struct thaw__engine *e, uint64_t dst, uint64_t len)
{
	if (!e->poison)
		return -THAW_E_UFFD_FEATURE;
	return install_kept(e, INSTALL_POISON, dst, NULL, len, true);
}

int thaw__install_wake(struct thaw__engine *e, uint64_t dst, uint64_t len)
{
	struct uffdio_range r = { .start = dst, .len = len };
	if (ioctl(e->uffd, UFFDIO_WAKE, &r) == 0)
		return 0;
	int err = -errno;
	if (err == -ENOENT || err == -ESRCH)
		return -ESRCH;
	thaw__err(e->log, "UFFDIO_WAKE at 0x%llx (+0x%llx) failed: %s", (unsigned long long)dst,
		  (unsigned long long)len, strerror(-err));
	return err;
}
