/* SPDX-License-Identifier: MIT */
/* The progress bar every long-running subcommand draws on a terminal. */
#include "cli_progress.h"
#include "cli_util.h"

#include <stdio.h>
#include <unistd.h>

void cli_progress_init(struct cli_progress *p, const char *label, bool quiet)
{
	/* A pipe or a log file would fill with carriage returns: draw for people only. */
	p->on = !quiet && isatty(STDERR_FILENO) == 1;
	p->label = label;
	p->start_ns = cli_now_ns();
	p->last_draw_ns = 0;
}

void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t total)
{
	if (!p->on || !total)
		return;
	uint64_t now = cli_now_ns();
	if (done < total && now - p->last_draw_ns < 100000000ull)
		return;
	p->last_draw_ns = now;
	enum { WIDTH = 30 };
	double frac = done >= total ? 1.0 : (double)done / (double)total;
	char bar[WIDTH + 1];
	int fill = (int)(frac * WIDTH);
	for (int i = 0; i < WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[WIDTH] = 0;
	double secs = (double)(now - p->start_ns) / 1e9;
	char a[32], b[32];
	fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %.0f MB/s\033[K", p->label, bar,
		(int)(frac * 100), cli_fmt_bytes(done, a, sizeof(a)),
		cli_fmt_bytes(total, b, sizeof(b)), secs > 0 ? (double)done / secs / 1e6 : 0.0);
	fflush(stderr);
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->on && p->last_draw_ns) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	p->last_draw_ns = 0;
}

void cli_progress_fn(uint64_t done, uint64_t total, void *ctx)
{
	cli_progress_update(ctx, done, total);
}
