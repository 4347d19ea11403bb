/* SPDX-License-Identifier: MIT */
/*
 * systemd's two protocols, spoken directly (no libsystemd needed): socket
 * activation (sd_listen_fds(3): LISTEN_PID and LISTEN_FDS name fds from 3
 * on) and readiness notification (sd_notify(3): datagrams such as
 * "READY=1" to the Unix socket NOTIFY_SOCKET names).
 */
#ifndef THAW_CLI_SYSTEMD_H
#define THAW_CLI_SYSTEMD_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

/* True when systemd passed this process listening sockets (LISTEN_PID is our pid). */
bool cli_sd_activated(void);
/*
 * The one listening Unix stream socket systemd passed (fd 3), made
 * non-blocking and close-on-exec; the LISTEN_* variables are removed so that
 * children do not take the fds for theirs. -EINVAL (with a message on
 * stderr) when there is not exactly one fd or it is not a listening Unix
 * stream socket.
 */
int cli_sd_listen_fd(const char *cmd);

/* Where notifications go; fd -1 when NOTIFY_SOCKET is not set. */
struct cli_sd_notify {
	int fd;
	struct sockaddr_un sa;
	socklen_t len;
};
/* Set up from NOTIFY_SOCKET (a path, or '@' for the abstract namespace). */
void cli_sd_notify_init(struct cli_sd_notify *n);
/* Send one message ("READY=1\nSTATUS=..."); does nothing without NOTIFY_SOCKET. */
void cli_sd_notify(const struct cli_sd_notify *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_sd_notify_close(struct cli_sd_notify *n);

#endif
