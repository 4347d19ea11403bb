/* SPDX-License-Identifier: MIT */
/*
 * restore/write/: making snapshots: the writer (writer.c), snapshots of a
 * live process (process.c), rewriting one in a recorded touch order
 * (optimize.c) and the working-set frames that order gives (ws_frames.c).
 * Built on format/ and snapshot/; a peer of lazy/ and export/, not a user.
 *
 * Internal hooks between the snapshot writer (writer.c) and the process walker (process.c).
 */
#ifndef THAW_RESTORE_WRITER_H
#define THAW_RESTORE_WRITER_H

#include <stdint.h>

#include "thaw.h"
#include "uffd/log.h"

/*
 * thaw_writer_add_region, where bit p of known_zero (one bit per page,
 * u64 words, bit p in word p / 64) marks page p of the region as zero
 * already: it is recorded as zero and never read. known_zero is copied;
 * NULL means no page is known.
 */
int thaw__writer_add_region_known_zero(struct thaw_writer *w, const struct thaw_region_desc *desc,
				       const uint64_t *known_zero);

/* Record a failure in the writer's err_buf and log; returns code. */
int thaw__writer_fail(struct thaw_writer *w, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const struct thaw__logger *thaw__writer_log(const struct thaw_writer *w);
uint32_t thaw__writer_page_size(const struct thaw_writer *w);

#endif
