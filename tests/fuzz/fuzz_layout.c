/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the snapshot parser: any byte string, taken as the
 * start of a snapshot file, is either refused with a message or parsed
 * into a layout whose every chunk can be asked about without a crash.
 * Run with `make fuzz` (FUZZ_SECONDS=60 by default).
 */
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "fuzz_seal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char err[256];
	uint64_t tables_len;
	unsigned char *file = fuzz_sealed_copy(data, size);
	if (!file)
		return 0;
	/* The input is the whole file: its size is what offsets are checked against. */
	int bad = thaw__layout_check_header(file, size, &tables_len, err, sizeof(err));
	if (bad || tables_len > size) {
		free(file);
		return 0;
	}
	void *tables = malloc(tables_len);
	if (!tables) {
		free(file);
		return 0;
	}
	memcpy(tables, file, tables_len);
	free(file);
	struct thaw__layout l;
	if (thaw__layout_parse(tables, tables_len, size, &l, err, sizeof(err))) {
		free(tables);
		return 0;
	}
	for (uint64_t id = 0; id < l.hdr.chunk_count; id++) {
		const struct thaw__fmt_chunk *st = thaw__layout_stored(&l, id);
		/* Parsed means every stored range lies inside the file. */
		if (st->offset + st->stored_len > size)
			abort();
		(void)thaw__layout_chunk_addr(&l, id);
		(void)thaw__layout_chunk_len(&l, id);
	}
	/* Parsed means every prefetch entry names a chunk, every listed page a
	 * stored page, and every frame lies in the file and holds listed pages. */
	for (uint64_t i = 0; i < l.prefetch_count; i++)
		if (l.prefetch[i] >= l.hdr.chunk_count)
			abort();
	for (uint64_t i = 0; i < l.ws_page_count; i++)
		if (l.ws_pages[i] / l.pages_per_chunk >= l.hdr.chunk_count ||
		    thaw__layout_page_zero(&l, l.ws_pages[i]))
			abort();
	for (uint64_t k = 0; k < l.frame_count; k++)
		if (l.frames[k].offset + l.frames[k].stored_len > size ||
		    l.frame_first[k] + l.frames[k].page_count > l.ws_page_count)
			abort();
	thaw__layout_free(&l);
	return 0;
}
