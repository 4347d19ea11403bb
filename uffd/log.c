/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void thaw__logger_init(struct thaw__logger *lg, thaw_log_fn fn, void *ctx)
{
	lg->fn = fn;
	lg->ctx = ctx;
	lg->max_level = fn ? THAW_LOG_DEBUG : -1;
	if (fn)
		return;
	/* The stderr sink speaks only when asked to, so embedding programs stay quiet. */
	const char *env = getenv("THAW_LOG");
	if (!env)
		return;
	for (int i = THAW_LOG_ERROR; i <= THAW_LOG_DEBUG; i++)
		if (!strcasecmp(env, level_names[i]))
			lg->max_level = i;
}

void thaw__log(const struct thaw__logger *lg, enum thaw_log_level level, const char *fmt, ...)
{
	if (!lg || (int)level > lg->max_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (lg->fn)
		lg->fn(level, msg, lg->ctx);
	else
		fprintf(stderr, "thaw %s: %s\n", level_names[level], msg);
}
