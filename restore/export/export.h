/* SPDX-License-Identifier: MIT */
/*
 * restore/export/: the live export, serving a running process's memory as
 * a thaw v1 object over HTTP so another machine restores it lazily. Built
 * on format/ and common/; a peer of lazy/ and write/.
 *
 * The live export's internals, shared by its modules:
 *   export_view.c  the thaw v1 view of live memory: header and tables
 *   export.c       serving that view over HTTP (libmicrohttpd)
 *
 * The object is laid out as tables, then the bytes of the data chunks (not
 * ZERO) in chunk order, back to back: a background read-ahead window then
 * carries only data, and consecutive data chunks are consecutive memory
 * too, so most ranges map onto one piece of memory (or of the memfd).
 */
#ifndef THAW_RESTORE_EXPORT_H
#define THAW_RESTORE_EXPORT_H

#include <stdint.h>

#include "format/format.h"
#include "thaw.h"

struct thaw__export_span {
	uint64_t addr, len;
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
	const struct thaw__fmt_chunk *chunks; /* in tables */
	uint64_t *data_ids; /* owned: the data chunks' ids, in stored (= id) order */
	uint64_t chunks_data;
	char etag[48]; /* strong, quoted */
};

/* Build the view of regions (validated: aligned, ascending, readable memfds). */
int thaw__export_view_build(const struct thaw_export_region *regions, size_t n, uint32_t chunk_size,
			    struct thaw__export_view *out, char *err, size_t err_len);
void thaw__export_view_free(struct thaw__export_view *v);
/*
 * A piece of the object: bytes from off that lie contiguous in one place,
 * the tables or memory (and, for a memfd region, the file).
 */
struct thaw__export_piece {
	const void *mem;
	uint64_t len;
	int memfd; /* -1: none */
	uint64_t memfd_off;
};

/* The piece at object offset off (< size), at most max bytes long. */
void thaw__export_piece_at(const struct thaw__export_view *v, uint64_t off, uint64_t max,
			   struct thaw__export_piece *p);
/* Index in data_ids of the first data chunk stored at or after off. */
uint64_t thaw__export_data_from(const struct thaw__export_view *v, uint64_t off);

#endif
