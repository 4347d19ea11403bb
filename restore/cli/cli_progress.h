/* SPDX-License-Identifier: MIT */
#ifndef THAW_CLI_PROGRESS_H
#define THAW_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A progress bar on stderr, drawn only when stderr is a terminal, not
 * quiet, and at most ten times a second. Use from one thread at a time.
 */
struct cli_progress {
	bool on;
	const char *label;
	uint64_t start_ns;
	uint64_t last_draw_ns;
};
void cli_progress_init(struct cli_progress *p, const char *label, bool quiet);
void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t total);
/* Erase the bar so the next line starts clean. */
void cli_progress_done(struct cli_progress *p);
/* Adapter for thaw_progress_fn; ctx is a struct cli_progress. */
void cli_progress_fn(uint64_t done, uint64_t total, void *ctx);

#endif
