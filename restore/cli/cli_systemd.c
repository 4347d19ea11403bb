/* SPDX-License-Identifier: MIT */
/* Socket activation and sd_notify for `thaw serve`, without libsystemd. */
#include "cli_systemd.h"
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3

bool cli_sd_activated(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	uint64_t p, n;
	return pid && fds && !cli_parse_u64(pid, &p) && p == (uint64_t)getpid() &&
	       !cli_parse_u64(fds, &n) && n > 0;
}

int cli_sd_listen_fd(const char *cmd)
{
	uint64_t n = 0;
	const char *fds = getenv("LISTEN_FDS");
	if (fds)
		cli_parse_u64(fds, &n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n != 1) {
		cli_err(cmd, "systemd passed %llu sockets; one Unix stream socket is served",
			(unsigned long long)n);
		return -EINVAL;
	}
	int fd = SD_LISTEN_FDS_START, type = 0, listening = 0;
	struct sockaddr_un sa;
	socklen_t tl = sizeof(type), ll = sizeof(listening), sl = sizeof(sa);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) || sa.sun_family != AF_UNIX ||
	    type != SOCK_STREAM || !listening) {
		cli_err(cmd, "fd 3 from systemd is not a listening Unix stream socket "
			     "(ListenStream=PATH in the .socket unit)");
		return -EINVAL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) || fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -errno;
	return fd;
}

void cli_sd_notify_init(struct cli_sd_notify *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0] || strlen(path) >= sizeof(n->sa.sun_path))
		return;
	if (path[0] != '/' && path[0] != '@')
		return; /* vsock addresses and the like: not for a Unix socket */
	n->sa.sun_family = AF_UNIX;
	memcpy(n->sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		n->sa.sun_path[0] = '\0'; /* abstract namespace; the length bounds the name */
	n->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

void cli_sd_notify(const struct cli_sd_notify *n, const char *fmt, ...)
{
	if (n->fd < 0)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	/* Best effort, like sd_notify(3): a manager that is gone must not stop the daemon. */
	sendto(n->fd, msg, (size_t)len < sizeof(msg) ? (size_t)len : sizeof(msg) - 1,
	       MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&n->sa, n->len);
}

void cli_sd_notify_close(struct cli_sd_notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
