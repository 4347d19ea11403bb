/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the chunk read path: any byte string, taken as a
 * whole snapshot file, is opened through the library (a memfd), then every
 * chunk is read with thaw_snapshot_read_chunk (stored bytes, zstd decode,
 * hash and zero-mask checks) and every working-set frame is decoded as a
 * restore decodes it. Each read either fails with an error or returns the
 * chunk's whole length; nothing crashes or reads outside its buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "thaw.h"
#include "format/codec.h"
#include "format/format.h"
#include "fuzz_seal.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

#define MAX_CHUNKS 4096 /* enough for any input the fuzzer keeps; bounds a run's time */

static void quiet(enum thaw_log_level level, const char *msg, void *ctx)
{
}

/* Decode frame k as ws_stream.c does: one zstd frame of its pages, hash-checked. */
static void decode_frame(struct thaw_snapshot *s, struct thaw__decoder *dec, uint64_t k)
{
	const struct thaw__layout *l = &s->layout;
	const struct thaw__fmt_frame *fr = &l->frames[k];
	size_t raw_len = (size_t)fr->page_count * l->hdr.page_size;
	void *src = malloc(fr->stored_len ? fr->stored_len : 1),
	     *raw = malloc(raw_len ? raw_len : 1);
	if (src && raw && !s->store->ops->pread(s->store, src, fr->stored_len, fr->offset))
		(void)thaw__decode_chunk(dec, THAW_CHUNK_ZSTD, src, fr->stored_len, raw, raw_len,
					 &fr->hash);
	free(src);
	free(raw);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	unsigned char *file = fuzz_sealed_copy(data, size);
	if (!file)
		return 0;
	int fd = memfd_create("snap", MFD_CLOEXEC);
	if (fd < 0 || write(fd, file, size) != (ssize_t)size)
		abort();
	free(file);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct thaw_open_opts oo = { .sz = sizeof(oo), .log_fn = quiet };
	struct thaw_snapshot *s;
	if (thaw_snapshot_open(path, &oo, &s)) {
		close(fd);
		return 0;
	}
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	if (thaw_snapshot_get_info(s, &info))
		abort();
	void *buf = malloc(info.chunk_size);
	for (uint64_t id = 0; buf && id < info.chunk_count && id < MAX_CHUNKS; id++) {
		ssize_t n = thaw_snapshot_read_chunk(s, id, buf, info.chunk_size);
		if (n >= 0 && (uint64_t)n != thaw__layout_chunk_len(&s->layout, id))
			abort();
	}
	free(buf);
	struct thaw__decoder *dec;
	if (!thaw__decoder_new(&dec)) {
		for (uint64_t k = 0; k < s->layout.frame_count && k < MAX_CHUNKS; k++)
			decode_frame(s, dec, k);
		thaw__decoder_free(dec);
	}
	thaw_snapshot_close(s);
	close(fd);
	return 0;
}
