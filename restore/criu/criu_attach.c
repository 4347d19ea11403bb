/* SPDX-License-Identifier: MIT */
/*
 * thaw_criu_attach: serve one task of a `criu restore --lazy-pages` from a
 * snapshot thaw_criu_import wrote. The task's regions are found by name
 * ("pid N ...") and placed at their address without the task index bits.
 */
#include "criu/criu_priv.h"
#include "common/abi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

int thaw_criu_task_mappings(const struct thaw_snapshot *snap, pid_t pid, struct thaw_mapping *maps,
			    size_t n)
{
	if (!snap || pid <= 0 || (n && !maps))
		return -EINVAL;
	char prefix[32];
	int plen = snprintf(prefix, sizeof(prefix), "pid %d ", (int)pid);
	size_t count = 0, nreg = thaw_snapshot_region_count(snap);
	uint64_t flat = 0;
	for (size_t i = 0; i < nreg; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		int err = thaw_snapshot_region(snap, i, &ri);
		if (err)
			return err;
		if (!strncmp(ri.name, prefix, plen)) {
			if (count < n)
				maps[count] = (struct thaw_mapping){ .addr = ri.addr &
									     THAW__CRIU_ADDR_MASK,
								     .len = ri.len,
								     .offset = flat };
			count++;
		}
		flat += ri.len;
	}
	return count > INT32_MAX ? -E2BIG : (int)count;
}

int thaw_criu_attach(struct thaw_snapshot *snap, pid_t pid, int uffd,
		     const struct thaw_restore_opts *opts, struct thaw_restore **out)
{
	int n = thaw_criu_task_mappings(snap, pid, NULL, 0);
	if (n <= 0) {
		if (uffd >= 0)
			close(uffd);
		if (!n && snap)
			thaw__err(&snap->log, "the snapshot holds no memory of pid %d", (int)pid);
		return n ? n : -ENOENT;
	}
	struct thaw_mapping *maps = calloc(n, sizeof(*maps));
	if (!maps) {
		close(uffd);
		return -ENOMEM;
	}
	thaw_criu_task_mappings(snap, pid, maps, n);
	/* What the snapshot does not hold was never dumped: the restore answers faults
	 * there with zero pages, as CRIU's daemon does. */
	struct thaw_restore_opts o;
	if (THAW__OPTS_READ(&o, opts)) {
		free(maps);
		close(uffd);
		return -EINVAL;
	}
	int err = thaw_restore_attach(snap, uffd, maps, n, &o, out);
	free(maps);
	return err;
}
