/* SPDX-License-Identifier: MIT */
/* Shared by the snapshot fuzz targets (header only: each target stays one file to build). */
#ifndef THAW_FUZZ_SEAL_H
#define THAW_FUZZ_SEAL_H

#include <stdlib.h>
#include <string.h>

#include "format/format.h"

/*
 * A malloc'ed copy of a fuzz input taken as a snapshot file, its header
 * digest re-sealed so mutations reach the checks behind it; NULL when the
 * input is too short for a header (or memory ran out).
 */
static inline unsigned char *fuzz_sealed_copy(const unsigned char *data, size_t size)
{
	if (size < THAW__FMT_HEADER_SIZE)
		return NULL;
	unsigned char *file = malloc(size);
	if (!file)
		return NULL;
	memcpy(file, data, size);
	struct thaw__fmt_header *h = (struct thaw__fmt_header *)file;
	if (h->tables_len >= THAW__FMT_HEADER_SIZE && h->tables_len <= size)
		thaw__layout_digest(h, file, h->tables_len, h->digest);
	return file;
}

#endif
