/* SPDX-License-Identifier: MIT */
/* Chunk codec: decode stored bytes and check the hash of the result. */
#ifndef THAW_RESTORE_CODEC_H
#define THAW_RESTORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct thaw__decoder; /* one per thread: holds a zstd context */

int thaw__decoder_new(struct thaw__decoder **out);
void thaw__decoder_free(struct thaw__decoder *d);

/*
 * Decode a chunk of kind (RAW or ZSTD; ZERO fills zeros) from src into dst,
 * which must receive exactly dst_len bytes, then check xxh3-64 == *hash
 * (hash NULL: the snapshot records no hashes, nothing to check).
 * Returns 0, -THAW_E_CODEC (bad frame, wrong size) or -THAW_E_HASH.
 */
int thaw__decode_chunk(struct thaw__decoder *d, unsigned kind, const void *src, size_t src_len,
		       void *dst, size_t dst_len, const uint64_t *hash);

uint64_t thaw__hash64(const void *p, size_t len);

#endif
