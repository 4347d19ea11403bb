/* SPDX-License-Identifier: MIT */
/*
 * The Firecracker UFFD handshake, as `thaw serve` receives it: one message
 * on a Unix stream socket holding a JSON array of
 *   {"base_host_virt_addr": u64, "size": u64, "offset": u64, "page_size": u64}
 * ("page_size_kib" is accepted for page_size; Firecracker puts bytes in it
 * too) with the userfaultfd attached by SCM_RIGHTS.
 */
#ifndef THAW_CLI_HANDSHAKE_H
#define THAW_CLI_HANDSHAKE_H

#include <stddef.h>
#include <sys/types.h>

#include "thaw.h"

#define CLI_HANDSHAKE_MAX_MAPPINGS 256

struct cli_handshake {
	int uffd; /* owned by the caller once received; -1 if none came */
	struct thaw_mapping maps[CLI_HANDSHAKE_MAX_MAPPINGS];
	size_t n;
	pid_t pid; /* the peer, from SO_PEERCRED */
	uid_t uid;
};

/*
 * Receive and parse one handshake from the connected socket fd. Checks the
 * JSON shape and the page size against page_size; the mappings' fit in
 * the snapshot is thaw_restore_attach's to check. Returns 0, or -errno
 * with a one-line reason in why (h->uffd, if one came, is then closed).
 */
int cli_handshake_recv(int fd, uint64_t page_size, struct cli_handshake *h, char *why,
		       size_t why_len);

#endif
