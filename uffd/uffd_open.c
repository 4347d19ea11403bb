/* SPDX-License-Identifier: MIT */
/* Creating a userfaultfd and the UFFDIO_API handshake. */
#include "uffd_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_dev(int flags)
{
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK | flags);
	int err = fd < 0 ? -errno : 0;
	close(dev);
	return fd < 0 ? err : fd;
}

static int open_syscall(int flags)
{
#ifdef __NR_userfaultfd
	long fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);
	return fd < 0 ? -errno : (int)fd;
#else
	return -ENOSYS;
#endif
}

static bool refused(int err)
{
	return err == -EPERM || err == -EACCES;
}

int thaw__uffd_open_flags(int flags)
{
	/* The device is checked by file permissions, not vm.unprivileged_userfaultfd,
	 * so it can grant kernel-mode faults where the syscall would not. */
	int fd = open_dev(flags);
	if (fd >= 0)
		return fd;
	int dev_err = fd;
	fd = open_syscall(flags);
	if (fd >= 0)
		return fd;
	/* Report a refusal over "no such device" so the caller knows a retry may help. */
	return refused(dev_err) && !refused(fd) ? dev_err : fd;
}

int thaw__uffd_open(const struct thaw__logger *log, bool *user_mode_only)
{
	*user_mode_only = false;
	int fd = thaw__uffd_open_flags(0);
	if (fd >= 0)
		return fd;
	if (!refused(fd)) {
		thaw__err(log, "userfaultfd: cannot create one: %s", strerror(-fd));
		return fd;
	}
	int first = fd;
	fd = thaw__uffd_open_flags(UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		thaw__err(log, "userfaultfd: refused (%s), also with UFFD_USER_MODE_ONLY (%s)",
			  strerror(-first), strerror(-fd));
		return fd;
	}
	*user_mode_only = true;
	thaw__warn(
		log,
		"userfaultfd: kernel-mode faults refused (%s: needs root, CAP_SYS_PTRACE, access "
		"to /dev/userfaultfd or vm.unprivileged_userfaultfd=1); using UFFD_USER_MODE_ONLY, "
		"so system calls that touch missing restored pages (read(2) into them, write(2) "
		"out of them) will fail with EFAULT",
		strerror(-first));
	return fd;
}

int thaw__uffd_api(int fd, uint64_t want, uint64_t *got)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	if (got)
		*got = api.features;
	return 0;
}

int thaw__uffd_probe(int flags, uint64_t *features)
{
	/* UFFDIO_API succeeds only once per fd, so ask on one we throw away. */
	int fd = thaw__uffd_open_flags(flags);
	if (fd < 0)
		return fd;
	int ret = thaw__uffd_api(fd, 0, features);
	close(fd);
	return ret;
}

static const char *const feature_names[] = {
	"UFFD_FEATURE_PAGEFAULT_FLAG_WP",
	"UFFD_FEATURE_EVENT_FORK",
	"UFFD_FEATURE_EVENT_REMAP",
	"UFFD_FEATURE_EVENT_REMOVE",
	"UFFD_FEATURE_MISSING_HUGETLBFS",
	"UFFD_FEATURE_MISSING_SHMEM",
	"UFFD_FEATURE_EVENT_UNMAP",
	"UFFD_FEATURE_SIGBUS",
	"UFFD_FEATURE_THREAD_ID",
	"UFFD_FEATURE_MINOR_HUGETLBFS",
	"UFFD_FEATURE_MINOR_SHMEM",
	"UFFD_FEATURE_EXACT_ADDRESS",
	"UFFD_FEATURE_WP_HUGETLBFS_SHMEM",
	"UFFD_FEATURE_WP_UNPOPULATED",
	"UFFD_FEATURE_POISON",
	"UFFD_FEATURE_WP_ASYNC",
	"UFFD_FEATURE_MOVE",
};

void thaw__uffd_feature_names(uint64_t mask, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = 0;
	for (unsigned bit = 0; bit < 64 && used < len; bit++) {
		if (!(mask & (1ull << bit)))
			continue;
		const char *sep = used ? "|" : "";
		int n;
		if (bit < sizeof(feature_names) / sizeof(feature_names[0]))
			n = snprintf(buf + used, len - used, "%s%s", sep, feature_names[bit]);
		else
			n = snprintf(buf + used, len - used, "%sbit %u", sep, bit);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
