/* SPDX-License-Identifier: MIT */
/* thaw trace's aggregates and report: see cli_trace_stats.h. */
#include "cli_trace_stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hist_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	int b = us ? 64 - __builtin_clzll(us) : 0;
	return b < CLI_TRACE_HIST_BUCKETS ? b : CLI_TRACE_HIST_BUCKETS - 1;
}

static size_t seen_slot(const uint64_t *tab, size_t cap, uint64_t page)
{
	size_t i = (size_t)((page >> 12) * 0x9e3779b97f4a7c15ull) & (cap - 1);
	while (tab[i] && tab[i] != page)
		i = (i + 1) & (cap - 1);
	return i;
}

/* 1 when page is new (and now recorded), 0 when seen before, or -ENOMEM. */
static int seen_add(struct cli_trace_stats *t, uint64_t page)
{
	/* Address 0 marks an empty slot; a fault on page 0 is still new once. */
	page |= 1;
	if ((t->seen_n + 1) * 2 > t->seen_cap) {
		size_t cap = t->seen_cap ? t->seen_cap * 2 : 4096;
		uint64_t *tab = calloc(cap, sizeof(*tab));
		if (!tab)
			return -ENOMEM;
		for (size_t i = 0; i < t->seen_cap; i++)
			if (t->seen[i])
				tab[seen_slot(tab, cap, t->seen[i])] = t->seen[i];
		free(t->seen);
		t->seen = tab;
		t->seen_cap = cap;
	}
	size_t i = seen_slot(t->seen, t->seen_cap, page);
	if (t->seen[i])
		return 0;
	t->seen[i] = page;
	t->seen_n++;
	return 1;
}

static struct cli_trace_thread *thread_of(struct cli_trace_stats *t, uint32_t tid)
{
	for (size_t i = 0; i < t->nthreads; i++)
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	if (cli_grow((void **)&t->threads, &t->threads_cap, t->nthreads + 1, sizeof(*t->threads)))
		return NULL;
	struct cli_trace_thread *th = &t->threads[t->nthreads++];
	memset(th, 0, sizeof(*th));
	th->tid = tid;
	return th;
}

int cli_trace_stats_fault(struct cli_trace_stats *t, uint64_t ts_ns, uint64_t addr, uint32_t tid)
{
	struct cli_trace_thread *th = thread_of(t, tid);
	if (!th)
		return -ENOMEM;
	t->faults++;
	th->faults++;
	uint64_t page = addr & t->page_mask;
	int fresh = seen_add(t, page);
	if (fresh <= 0)
		return fresh;
	th->pages++;
	if (!t->trace)
		return 0;
	uint64_t t_us = ts_ns > t->t0_ns ? (ts_ns - t->t0_ns) / 1000 : 0;
	return thaw_trace_add_page(t->trace, t_us, page, tid);
}

int cli_trace_stats_stall(struct cli_trace_stats *t, uint64_t stall_ns, uint32_t tid)
{
	struct cli_trace_thread *th = thread_of(t, tid);
	if (!th ||
	    cli_grow((void **)&t->stall_ns, &t->stalls_cap, t->nstalls + 1, sizeof(*t->stall_ns)))
		return -ENOMEM;
	t->stall_ns[t->nstalls++] = stall_ns;
	int b = hist_bucket(stall_ns);
	t->hist[b]++;
	t->blocked_ns += stall_ns;
	th->hist[b]++;
	th->stalls++;
	th->stall_ns += stall_ns;
	if (stall_ns > th->max_ns)
		th->max_ns = stall_ns;
	return 0;
}

int cli_trace_stats_init(struct cli_trace_stats *t, bool record)
{
	memset(t, 0, sizeof(*t));
	t->page_mask = ~((uint64_t)sysconf(_SC_PAGESIZE) - 1);
	return record ? thaw_trace_new(&t->trace) : 0;
}

/* The q-quantile (nearest rank) of the sorted stalls, 0 when there are none. */
static uint64_t stall_quantile(const struct cli_trace_stats *t, double q)
{
	if (!t->nstalls)
		return 0;
	size_t i = (size_t)ceil(q * (double)t->nstalls);
	return t->stall_ns[i ? i - 1 : 0];
}

static void bucket_bounds(int b, uint64_t *lo_us, uint64_t *hi_us)
{
	*lo_us = b ? 1ull << (b - 1) : 0;
	*hi_us = 1ull << b;
}

static void print_hist(const uint64_t *hist, const char *indent)
{
	uint64_t max = 0;
	for (int b = 0; b < CLI_TRACE_HIST_BUCKETS; b++)
		max = hist[b] > max ? hist[b] : max;
	for (int b = 0; b < CLI_TRACE_HIST_BUCKETS; b++) {
		if (!hist[b])
			continue;
		uint64_t lo, hi;
		bucket_bounds(b, &lo, &hi);
		char range[48];
		snprintf(range, sizeof(range), "[%llu, %llu) us", (unsigned long long)lo,
			 (unsigned long long)hi);
		int bar = (int)((hist[b] * 40 + max - 1) / max);
		printf("%s%-22s %10llu |%-40.*s|\n", indent, range, (unsigned long long)hist[b],
		       bar, "########################################");
	}
}

void cli_trace_stats_print_text(const struct cli_trace_stats *t, const struct cli_trace_end *end)
{
	char a[32], b[32], c[32], d[32];
	printf("process %d: %llu faults, %llu first-touch pages, %zu threads in %s", (int)t->pid,
	       (unsigned long long)t->faults, (unsigned long long)t->seen_n, t->nthreads,
	       cli_fmt_ns(end->elapsed_ns, a, sizeof(a)));
	if (end->exit_status >= 0)
		printf(", exit status %d", end->exit_status);
	printf("\n");
	if (end->lost)
		printf("warning: %llu events lost (the ring buffer was full); counts are low\n",
		       (unsigned long long)end->lost);
	printf("stalls: %zu, blocked %s in total, p50 %s, p99 %s, max %s\n", t->nstalls,
	       cli_fmt_ns(t->blocked_ns, a, sizeof(a)),
	       cli_fmt_ns(stall_quantile(t, 0.5), b, sizeof(b)),
	       cli_fmt_ns(stall_quantile(t, 0.99), c, sizeof(c)),
	       cli_fmt_ns(stall_quantile(t, 1.0), d, sizeof(d)));
	print_hist(t->hist, "  ");
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct cli_trace_thread *th = &t->threads[i];
		printf("thread %u: %llu faults, %llu first-touch pages, %llu stalls, blocked %s, "
		       "max %s\n",
		       th->tid, (unsigned long long)th->faults, (unsigned long long)th->pages,
		       (unsigned long long)th->stalls, cli_fmt_ns(th->stall_ns, a, sizeof(a)),
		       cli_fmt_ns(th->max_ns, b, sizeof(b)));
		print_hist(th->hist, "  ");
	}
}

static void json_hist(struct cli_json *j, const uint64_t *hist)
{
	cli_json_arr_begin(j, "hist");
	for (int b = 0; b < CLI_TRACE_HIST_BUCKETS; b++) {
		if (!hist[b])
			continue;
		uint64_t lo, hi;
		bucket_bounds(b, &lo, &hi);
		cli_json_obj_begin(j, NULL);
		cli_json_u64(j, "ge_us", lo);
		cli_json_u64(j, "lt_us", hi);
		cli_json_u64(j, "count", hist[b]);
		cli_json_obj_end(j);
	}
	cli_json_arr_end(j);
}

void cli_trace_stats_print_json(const struct cli_trace_stats *t, const struct cli_trace_end *end,
				const char *trace_path)
{
	struct cli_json j;
	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_i64(&j, "pid", t->pid);
	cli_json_f64(&j, "elapsed_ms", (double)end->elapsed_ns / 1e6, 3);
	if (end->exit_status >= 0)
		cli_json_i64(&j, "exit_status", end->exit_status);
	else
		cli_json_null(&j, "exit_status");
	cli_json_u64(&j, "faults", t->faults);
	cli_json_u64(&j, "pages", t->seen_n);
	cli_json_u64(&j, "lost_events", end->lost);
	cli_json_u64(&j, "stalls", t->nstalls);
	cli_json_f64(&j, "blocked_us", (double)t->blocked_ns / 1e3, 3);
	cli_json_f64(&j, "stall_p50_us", (double)stall_quantile(t, 0.5) / 1e3, 3);
	cli_json_f64(&j, "stall_p99_us", (double)stall_quantile(t, 0.99) / 1e3, 3);
	cli_json_f64(&j, "stall_max_us", (double)stall_quantile(t, 1.0) / 1e3, 3);
	cli_json_str(&j, "trace", trace_path);
	json_hist(&j, t->hist);
	cli_json_arr_begin(&j, "threads");
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct cli_trace_thread *th = &t->threads[i];
		cli_json_obj_begin(&j, NULL);
		cli_json_u64(&j, "tid", th->tid);
		cli_json_u64(&j, "faults", th->faults);
		cli_json_u64(&j, "pages", th->pages);
		cli_json_u64(&j, "stalls", th->stalls);
		cli_json_f64(&j, "blocked_us", (double)th->stall_ns / 1e3, 3);
		cli_json_f64(&j, "stall_max_us", (double)th->max_ns / 1e3, 3);
		json_hist(&j, th->hist);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_obj_end(&j);
}

void cli_trace_stats_finish(struct cli_trace_stats *t)
{
	if (t->nstalls)
		qsort(t->stall_ns, t->nstalls, sizeof(*t->stall_ns), cli_cmp_u64);
}

void cli_trace_stats_free(struct cli_trace_stats *t)
{
	thaw_trace_free(t->trace);
	free(t->seen);
	free(t->threads);
	free(t->stall_ns);
}
