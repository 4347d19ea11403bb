/* SPDX-License-Identifier: MIT */
/*
 * restore/common/: the bottom of restore/, what every other layer may use
 * and which uses none of them: error text (thaw_strerror and the error
 * formatter below), latency histograms, /proc pagemap scans. The smaller
 * helpers (container_of, the clock, growth, lists) are in uffd/base.h, one
 * layer further down, so the engine shares them.
 */
#ifndef THAW_RESTORE_ERRORS_H
#define THAW_RESTORE_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

#include "thaw.h"
#include "uffd/log.h"

/*
 * The one error formatter: write "fmt..." into err (when err and err_len
 * are set) and log it at error level through log (NULL: do not log, for
 * callers that have no logger or whose caller reports the text itself).
 * Returns code, so a failure path is one `return thaw__fail(...)`.
 */
int thaw__fail(const struct thaw__logger *log, char *err, size_t err_len, int code, const char *fmt,
	       ...) __attribute__((format(printf, 5, 6)));
int thaw__vfail(const struct thaw__logger *log, char *err, size_t err_len, int code,
		const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
