/* SPDX-License-Identifier: MIT */
/*
 * thaw__bench_floor: the bare userfaultfd round trip, with nothing of the
 * engine in the way (no ring, no source), so a restore's fault latency can
 * be read as a multiple of it.
 */
#include "floor.h"
#include "uffd_priv.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct floor {
	int uffd;
	int stop_fd;
	uint64_t page_size;
	const void *page; /* the ready source page */
	struct uffdio_range range;
	int err;
};

/* The handler cannot go on: let the toucher run on plain zero pages rather than hang. */
static void *floor_fail(struct floor *f, int err)
{
	f->err = err;
	ioctl(f->uffd, UFFDIO_UNREGISTER, &f->range);
	return NULL;
}

/*
 * Sleeps in poll() only THAW__SPIN_NS after the last fault, spinning on the
 * non-blocking uffd until then, as the engine's manager does: a ratio to
 * this floor compares two handlers that wake alike.
 */
static void *floor_handler(void *arg)
{
	struct floor *f = arg;
	struct pollfd pfd[2] = { { .fd = f->uffd, .events = POLLIN },
				 { .fd = f->stop_fd, .events = POLLIN } };
	uint64_t last_fault = 0;
	for (;;) {
		bool spin = last_fault && thaw__now_ns() - last_fault < THAW__SPIN_NS;
		if (!spin) {
			if (poll(pfd, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				return floor_fail(f, -errno);
			}
			if (pfd[1].revents)
				return NULL;
		}
		struct uffd_msg msg;
		ssize_t n = read(f->uffd, &msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN && spin)
				sched_yield();
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return floor_fail(f, -errno);
		}
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		struct uffdio_copy c = {
			.dst = msg.arg.pagefault.address & ~(f->page_size - 1),
			.src = (uint64_t)(uintptr_t)f->page,
			.len = f->page_size,
		};
		if (ioctl(f->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
			return floor_fail(f, -errno);
		last_fault = thaw__now_ns();
	}
}

int thaw__bench_floor(size_t pages, const uint32_t *order, uint64_t *lat_ns)
{
	if (!pages || !lat_ns)
		return -EINVAL;
	if (order)
		for (size_t i = 0; i < pages; i++)
			if (order[i] >= pages)
				return -EINVAL;
	struct floor f = { .uffd = -1,
			   .stop_fd = -1,
			   .page_size = (uint64_t)sysconf(_SC_PAGESIZE) };
	size_t len = pages * f.page_size;
	int ret = 0;
	char *mem = MAP_FAILED, *src = MAP_FAILED;
	bool umo;

	f.uffd = thaw__uffd_open(NULL, &umo);
	if (f.uffd < 0)
		return f.uffd;
	ret = thaw__uffd_api(f.uffd, 0, NULL);
	if (ret < 0)
		goto out;
	f.stop_fd = eventfd(0, EFD_CLOEXEC);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, f.page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f.stop_fd < 0 || mem == MAP_FAILED || src == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	memset(src, 0x5a, f.page_size); /* populated: the copy reads no fault of its own */
	f.page = src;
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)mem, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	f.range = reg.range;
	if (ioctl(f.uffd, UFFDIO_REGISTER, &reg) < 0) {
		ret = -errno;
		goto out;
	}
	pthread_t th;
	ret = -pthread_create(&th, NULL, floor_handler, &f);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < pages; i++) {
		volatile const char *p = mem + (size_t)(order ? order[i] : i) * f.page_size;
		uint64_t t0 = thaw__now_ns();
		(void)*p;
		lat_ns[i] = thaw__now_ns() - t0;
	}
	uint64_t one = 1;
	if (write(f.stop_fd, &one, sizeof(one)) < 0)
		ret = -errno;
	pthread_join(th, NULL);
	if (f.err < 0)
		ret = f.err;
out:
	if (mem != MAP_FAILED)
		munmap(mem, len);
	if (src != MAP_FAILED)
		munmap(src, f.page_size);
	if (f.stop_fd >= 0)
		close(f.stop_fd);
	close(f.uffd);
	return ret;
}
