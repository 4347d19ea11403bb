/* SPDX-License-Identifier: MIT */
/*
 * The live export's internals, shared by its modules:
 *   export_view.c  the thaw v1 view of live memory: header and tables
 *   export.c       serving that view over HTTP (libmicrohttpd)
 *
 * The object is laid out as tables, then the regions' bytes back to back:
 * a chunk's stored offset is data_off plus its offset in the concatenated
 * regions, so any byte range maps straight onto memory.
 */
#ifndef THAW_RESTORE_EXPORT_H
#define THAW_RESTORE_EXPORT_H

#include <stdint.h>

#include "thaw.h"

struct thaw__export_span {
	uint64_t addr, len;
	uint64_t data_off; /* where its bytes start in the data section */
	uint64_t first_chunk;
	int memfd; /* borrowed from the caller; -1: anonymous */
	uint64_t memfd_offset;
};

struct thaw__export_view {
	void *tables;	     /* owned: tables_len bytes, header first */
	uint64_t tables_len; /* = data_off */
	uint64_t size;	     /* object size */
	uint32_t chunk_size;
	struct thaw__export_span *spans; /* owned, ascending */
	size_t nspans;
	uint64_t chunk_count;
	uint8_t *chunk_data; /* owned: 1 = chunk has data (RAW), 0 = ZERO */
	uint64_t chunks_data;
	char etag[48]; /* strong, quoted */
};

/* Build the view of regions (validated: aligned, ascending, readable memfds). */
int thaw__export_view_build(const struct thaw_export_region *regions, size_t n, uint32_t chunk_size,
			    struct thaw__export_view *out, char *err, size_t err_len);
void thaw__export_view_free(struct thaw__export_view *v);
/* The span holding data-section offset off (relative to data_off), or NULL past the end. */
const struct thaw__export_span *thaw__export_span_at(const struct thaw__export_view *v,
						     uint64_t off);

#endif
