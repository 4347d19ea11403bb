/* SPDX-License-Identifier: MIT */
/* First-touch traces (the public thaw_trace): their records, for the modules that use them. */
#ifndef THAW_RESTORE_TRACE_H
#define THAW_RESTORE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thaw.h"

enum thaw__trace_kind {
	THAW__TRACE_CHUNK,
	THAW__TRACE_PAGE,
};

struct thaw__trace_rec {
	uint64_t t_us;
	uint64_t value; /* chunk id or page address */
	uint32_t tid;	/* pages only; 0 = unknown */
	uint8_t kind;	/* enum thaw__trace_kind */
};

struct thaw_trace {
	char snapshot[33]; /* hex digest, "" = none named */
	struct thaw__trace_rec *rec;
	size_t n, cap;
};

struct thaw__layout;

/* What the traces touched, by earliest first touch. */
struct thaw__trace_order {
	uint64_t *chunks; /* chunk ids (malloc'ed) */
	uint64_t nchunks;
	uint64_t *pages; /* global page numbers of the stored pages page records name (malloc'ed) */
	uint64_t npages;
	uint64_t *zeros; /* global page numbers of the zero pages they name (malloc'ed) */
	uint64_t nzeros;
	uint64_t ignored; /* page records outside every region */
};

/*
 * Turn traces into one prefetch order for the snapshot l whose hex digest
 * is digest: each chunk any trace touched, and each stored page and each
 * zero page a page record names, by earliest first-touch time, ties broken by trace
 * order then record order. Chunk records need the trace to name this
 * snapshot and ids in range; page records are mapped through the region
 * table's recorded addresses, and those outside every region are counted
 * in ignored. A trace with page records none of which maps is refused.
 * names[i] (may be NULL) names trace i in messages. On success the caller
 * frees o with thaw__trace_order_free. Errors: -EINVAL with a message in
 * err, -ENOMEM.
 */
int thaw__trace_order(const struct thaw_trace *const *traces, const char *const *names, size_t n,
		      const struct thaw__layout *l, const char *digest, struct thaw__trace_order *o,
		      char *err, size_t err_len);
/* Free o's lists and zero it. */
void thaw__trace_order_free(struct thaw__trace_order *o);

#endif
