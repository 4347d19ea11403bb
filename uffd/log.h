/* SPDX-License-Identifier: MIT */
/* Logging through the caller's sink (or THAW_LOG's stderr sink). */
#ifndef THAW_UFFD_LOG_H
#define THAW_UFFD_LOG_H

#include "thaw.h"

struct thaw__logger {
	thaw_log_fn fn; /* NULL: stderr sink, enabled only when THAW_LOG is set */
	void *ctx;
	int max_level; /* lines above this level are dropped; -1 drops all */
};

/* Set up a logger; with fn NULL the level comes from the THAW_LOG variable. */
void thaw__logger_init(struct thaw__logger *lg, thaw_log_fn fn, void *ctx);
void thaw__log(const struct thaw__logger *lg, enum thaw_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define thaw__err(lg, ...)   thaw__log(lg, THAW_LOG_ERROR, __VA_ARGS__)
#define thaw__warn(lg, ...)  thaw__log(lg, THAW_LOG_WARN, __VA_ARGS__)
#define thaw__info(lg, ...)  thaw__log(lg, THAW_LOG_INFO, __VA_ARGS__)
#define thaw__debug(lg, ...) thaw__log(lg, THAW_LOG_DEBUG, __VA_ARGS__)

#endif
