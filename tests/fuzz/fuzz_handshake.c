/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the `thaw serve` handshake: the first byte says how
 * many descriptors come with the message (0-5, over SCM_RIGHTS), the rest
 * is the message. It is refused with a reason, every descriptor closed, or
 * accepted with one descriptor kept and 1 to CLI_HANDSHAKE_MAX_MAPPINGS
 * mappings. No descriptor leaks either way.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli_handshake.h"

static int lowest_free_fd(void)
{
	int fd = dup(0);
	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1 || size > 60000)
		return 0;
	int before = lowest_free_fd();
	unsigned nfd = data[0] % 6;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	int fds[5];
	for (unsigned i = 0; i < nfd; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(fds))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)(data + 1), .iov_len = size - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfd) {
		msg.msg_control = &ctl;
		msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	}
	if (size > 1 || nfd) {
		if (sendmsg(sv[0], &msg, 0) < 0)
			abort();
	}
	for (unsigned i = 0; i < nfd; i++)
		close(fds[i]);
	close(sv[0]); /* an empty message reads as a close */
	struct cli_handshake h;
	char why[256] = "";
	int r = cli_handshake_recv(sv[1], 4096, &h, why, sizeof(why));
	close(sv[1]);
	if (r) {
		if (r > 0 || h.uffd >= 0 || !why[0])
			abort();
	} else {
		if (h.uffd < 0 || h.n < 1 || h.n > CLI_HANDSHAKE_MAX_MAPPINGS)
			abort();
		close(h.uffd);
	}
	if (lowest_free_fd() != before)
		abort(); /* a descriptor leaked */
	return 0;
}
