/* SPDX-License-Identifier: MIT */
/*
 * Build the working-set frames. Pages are listed in first-touch order,
 * which jumps between chunks; so the raw bytes of all listed pages are
 * gathered first, each chunk read and decoded once (in chunk order, i.e.
 * mostly sequential reads), then cut into frames and compressed.
 */
#include "ws_frames.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "format/codec.h"
#include "snapshot/snapshot.h"

/* Frames are compressed at zstd's default: the snapshot does not record its level. */
#define FRAME_LEVEL 3

struct slot {
	uint64_t page; /* global page number */
	uint64_t pos;  /* index in the page list */
};

static int cmp_slot(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	return x->page < y->page ? -1 : x->page > y->page;
}

/* raw[pos * page_size] = the bytes of pages[pos], for every pos. */
static int gather(struct thaw_snapshot *snap, const uint64_t *pages, uint64_t npages, uint8_t *raw)
{
	const struct thaw__layout *l = &snap->layout;
	uint32_t ps = l->hdr.page_size;
	struct slot *s = malloc((npages ? npages : 1) * sizeof(*s));
	uint8_t *chunk = malloc(l->hdr.chunk_size);
	int r = s && chunk ? 0 : -ENOMEM;
	for (uint64_t i = 0; !r && i < npages; i++)
		s[i] = (struct slot){ pages[i], i };
	if (!r)
		qsort(s, npages, sizeof(*s), cmp_slot);
	uint64_t have = UINT64_MAX;
	for (uint64_t i = 0; !r && i < npages; i++) {
		uint64_t id = s[i].page / l->pages_per_chunk;
		if (id != have) {
			ssize_t n = thaw_snapshot_read_chunk(snap, id, chunk, l->hdr.chunk_size);
			r = n < 0 ? (int)n : 0;
			have = id;
		}
		if (!r)
			memcpy(raw + s[i].pos * ps,
			       chunk + (s[i].page % l->pages_per_chunk) * (uint64_t)ps, ps);
	}
	free(chunk);
	free(s);
	return r;
}

int thaw__ws_frames_build(struct thaw_snapshot *snap, const uint64_t *pages, uint64_t npages,
			  struct thaw__ws_frames *out)
{
	uint32_t ps = snap->layout.hdr.page_size;
	uint64_t n = (npages + THAW__FRAME_PAGES_MAX - 1) / THAW__FRAME_PAGES_MAX;
	size_t bound = ZSTD_compressBound((size_t)THAW__FRAME_PAGES_MAX * ps);
	memset(out, 0, sizeof(*out));
	uint8_t *raw = malloc((npages ? npages : 1) * (uint64_t)ps);
	out->frames = calloc(n ? n : 1, sizeof(*out->frames));
	out->data = malloc((n ? n : 1) * bound);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	int r = raw && out->frames && out->data && cctx ? 0 : -ENOMEM;
	if (!r)
		r = gather(snap, pages, npages, raw);
	for (uint64_t k = 0; !r && k < n; k++) {
		uint64_t first = k * THAW__FRAME_PAGES_MAX;
		uint32_t count =
			(uint32_t)(npages - first < THAW__FRAME_PAGES_MAX ? npages - first
									  : THAW__FRAME_PAGES_MAX);
		const uint8_t *src = raw + first * ps;
		size_t len = ZSTD_compressCCtx(cctx, out->data + out->len, bound, src,
					       (size_t)count * ps, FRAME_LEVEL);
		if (ZSTD_isError(len)) {
			r = -THAW_E_CODEC;
			break;
		}
		out->frames[k] = (struct thaw__fmt_frame){
			.offset = out->len,
			.stored_len = (uint32_t)len,
			.page_count = count,
			.hash = thaw__hash64(src, (size_t)count * ps),
		};
		out->len += len;
	}
	out->count = n;
	ZSTD_freeCCtx(cctx);
	free(raw);
	if (r)
		thaw__ws_frames_free(out);
	return r;
}

void thaw__ws_frames_free(struct thaw__ws_frames *f)
{
	free(f->frames);
	free(f->data);
	memset(f, 0, sizeof(*f));
}
