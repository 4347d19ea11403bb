/* SPDX-License-Identifier: MIT */
/*
 * What `thaw trace` makes of the kernel's events: first touches per page
 * (and the trace file of them), stall histograms in total and per thread,
 * and the report, as text or JSON. Knows nothing of BPF.
 */
#ifndef THAW_CLI_TRACE_STATS_H
#define THAW_CLI_TRACE_STATS_H

#include "cli/cli_util.h"

#include <sys/types.h>

/* Bucket 0 holds stalls under 1 us; bucket b >= 1 holds [2^(b-1), 2^b) us. */
#define CLI_TRACE_HIST_BUCKETS 40

struct cli_trace_thread {
	uint32_t tid;
	uint64_t faults, pages, stalls, stall_ns, max_ns;
	uint64_t hist[CLI_TRACE_HIST_BUCKETS];
};

struct cli_trace_stats {
	pid_t pid;
	uint64_t t0_ns; /* trace start, on the clock of the event times */
	uint64_t page_mask;
	struct thaw_trace *trace; /* first touches; NULL when not recorded */

	/*
	 * Pages seen so far: open addressing on page addresses, 0 = empty.
	 * seen_n is the number of first-touch pages.
	 */
	uint64_t *seen;
	size_t seen_cap, seen_n;

	struct cli_trace_thread *threads;
	size_t nthreads, threads_cap;

	uint64_t *stall_ns; /* every stall; sorted by cli_trace_stats_finish */
	size_t nstalls, stalls_cap;

	uint64_t faults, blocked_ns;
	uint64_t hist[CLI_TRACE_HIST_BUCKETS];
};

/* How the trace ended, for the report. */
struct cli_trace_end {
	uint64_t elapsed_ns;
	uint64_t lost;	 /* events the kernel side could not send */
	int exit_status; /* of a started command: exit code, 128+signal, or -1 */
};

/*
 * Zeroes s; with record, first touches also go to s->trace. The caller
 * sets pid and t0_ns. 0 or -ENOMEM (free s even then).
 */
int cli_trace_stats_init(struct cli_trace_stats *s, bool record);
/* A user page fault at addr by tid at ts_ns. 0 or -ENOMEM. */
int cli_trace_stats_fault(struct cli_trace_stats *s, uint64_t ts_ns, uint64_t addr, uint32_t tid);
/* tid was off-CPU for stall_ns while handling a fault. 0 or -ENOMEM. */
int cli_trace_stats_stall(struct cli_trace_stats *s, uint64_t stall_ns, uint32_t tid);
/* After the last event: prepares the percentiles. */
void cli_trace_stats_finish(struct cli_trace_stats *s);
void cli_trace_stats_print_text(const struct cli_trace_stats *s, const struct cli_trace_end *end);
/* trace_path: where the trace file went, or NULL. */
void cli_trace_stats_print_json(const struct cli_trace_stats *s, const struct cli_trace_end *end,
				const char *trace_path);
void cli_trace_stats_free(struct cli_trace_stats *s);

#endif
