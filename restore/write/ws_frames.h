/* SPDX-License-Identifier: MIT */
/* Working-set frames for thaw_optimize: the recorded pages packed into zstd frames. */
#ifndef THAW_RESTORE_WS_FRAMES_H
#define THAW_RESTORE_WS_FRAMES_H

#include <stdint.h>

#include "format/format.h"

struct thaw_snapshot;

struct thaw__ws_frames {
	struct thaw__fmt_frame *frames; /* offsets relative to the start of data */
	uint64_t count;
	uint8_t *data; /* the frames' stored bytes, back to back */
	uint64_t len;
};

/*
 * Pack the npages global page numbers pages[] (stored pages of snap, each
 * once) in that order into frames of up to THAW__FRAME_PAGES_MAX pages,
 * each chunk read and checked once. Errors as the store's reads and the
 * codec give them, -ENOMEM. out's arrays are malloc'ed: free with
 * thaw__ws_frames_free.
 */
int thaw__ws_frames_build(struct thaw_snapshot *snap, const uint64_t *pages, uint64_t npages,
			  struct thaw__ws_frames *out);
void thaw__ws_frames_free(struct thaw__ws_frames *f);

#endif
