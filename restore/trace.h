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

#endif
