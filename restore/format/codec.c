/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "thaw.h"

struct thaw__decoder {
	ZSTD_DCtx *dctx;
};

int thaw__decoder_new(struct thaw__decoder **out)
{
	struct thaw__decoder *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->dctx = ZSTD_createDCtx();
	if (!d->dctx) {
		free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

void thaw__decoder_free(struct thaw__decoder *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->dctx);
	free(d);
}

uint64_t thaw__hash64(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

int thaw__decode_chunk(struct thaw__decoder *d, unsigned kind, const void *src, size_t src_len,
		       void *dst, size_t dst_len, const uint64_t *hash)
{
	switch (kind) {
	case THAW_CHUNK_ZERO:
		memset(dst, 0, dst_len);
		break;
	case THAW_CHUNK_RAW:
		if (src_len != dst_len)
			return -THAW_E_CODEC;
		/* Callers may read a RAW chunk straight into its destination. */
		if (src != dst)
			memmove(dst, src, dst_len);
		break;
	case THAW_CHUNK_ZSTD: {
		/* dst_len is the capacity too, so a frame that would produce
		 * more fails with dstSize_tooSmall instead of overrunning. */
		size_t n = ZSTD_decompressDCtx(d->dctx, dst, dst_len, src, src_len);
		if (ZSTD_isError(n) || n != dst_len)
			return -THAW_E_CODEC;
		break;
	}
	default:
		return -THAW_E_CODEC;
	}
	return !hash || XXH3_64bits(dst, dst_len) == *hash ? 0 : -THAW_E_HASH;
}
