/* SPDX-License-Identifier: MIT */
/*
 * The bench helpers' userfaultfd (scripts/uffd_copy_rate.c,
 * scripts/population_ceiling.c): non-blocking, API negotiated, no features.
 */
#ifndef THAW_SCRIPTS_BENCH_UFFD_H
#define THAW_SCRIPTS_BENCH_UFFD_H

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A new userfaultfd, or -1 with errno set. */
static int bench_open_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		/* Without the syscall allowed, /dev/userfaultfd may still be. */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	struct uffdio_api api = { .api = UFFD_API };
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

#endif
