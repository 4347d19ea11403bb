/* SPDX-License-Identifier: MIT */
/* thaw bench: the results, as a table or one JSON object. */
#include "cli_bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- results ---- */

const char *const cli_bench_mode_names[] = { "lazy", "eager", "mmap", "floor" };
const char *const cli_bench_only_names[] = { "all", "zero", "data" };

static double pick_us(const uint64_t *sorted, size_t from, size_t n, double q)
{
	if (!n)
		return NAN;
	return (double)sorted[from + (size_t)((double)(n - 1) * q + 0.5)] / 1e3;
}

/*
 * Touches that took a fault are the slowest ones: with K faults counted
 * (by the library, or the kernel's minor-fault counter), the fault
 * latencies are the top K touch latencies. That avoids guessing a
 * threshold between a resident read and a fault.
 */
int cli_bench_summarize(const struct bench *b, struct lat_summary *s)
{
	memset(s, 0, sizeof(*s));
	size_t n = b->ntouch;
	uint64_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, b->lat_ns, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cli_cmp_u64);
	for (size_t i = 0; i < n; i++) {
		unsigned bkt = sorted[i] ? 63 - (unsigned)__builtin_clzll(sorted[i]) : 0;
		s->hist[bkt]++;
	}
	s->touch_p50_us = pick_us(sorted, 0, n, 0.5);
	s->touch_p99_us = pick_us(sorted, 0, n, 0.99);
	s->touch_max_us = n ? (double)sorted[n - 1] / 1e3 : NAN;
	size_t k = b->faults < n ? (size_t)b->faults : n;
	s->fault_p50_us = pick_us(sorted, n - k, k, 0.5);
	s->fault_p99_us = pick_us(sorted, n - k, k, 0.99);
	free(sorted);
	return 0;
}

static double ms_between(uint64_t a, uint64_t b)
{
	return b >= a ? (double)(b - a) / 1e6 : 0.0;
}

/*
 * Touched chunks the prefetch had installed before their first touch: the
 * distinct chunks the touch list reaches, less one per fault. Exact with one
 * touching thread (a chunk faults at most once, as a whole); a lower bound
 * with several.
 */
static uint64_t prefetch_hits(const struct bench *b)
{
	return b->touched_chunks > b->lib.faults ? b->touched_chunks - b->lib.faults : 0;
}

void cli_bench_print_json(const struct bench *b, const struct lat_summary *s)
{
	struct cli_json j;
	char hex[24];
	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_str(&j, "snapshot", b->a.uri);
	cli_json_str(&j, "mode", cli_bench_mode_names[b->a.mode]);
	cli_json_str(&j, "touch", b->a.touch_text);
	cli_json_bool(&j, "whole_page", b->a.whole_page);
	cli_json_str(&j, "only", cli_bench_only_names[b->a.only]);
	cli_json_u64(&j, "threads", b->a.mode == MODE_FLOOR ? 1 : (uint64_t)b->a.threads);
	cli_json_u64(&j, "seed", b->a.seed);
	cli_json_bool(&j, "background", b->a.mode == MODE_LAZY && !b->a.no_bg);
	cli_json_u64(&j, "raw_bytes", b->info.raw_bytes);
	cli_json_u64(&j, "stored_bytes", b->info.stored_bytes);
	cli_json_u64(&j, "chunk_size", b->info.chunk_size);
	cli_json_u64(&j, "pages_total", b->pages_total);
	cli_json_u64(&j, "touches", b->ntouch);
	cli_json_f64(&j, "restore_start_us", (double)(b->ready_ns - b->t0_ns) / 1e3, 1);
	cli_json_f64(&j, "first_access_us", (double)(b->first_ns - b->t0_ns) / 1e3, 1);
	cli_json_u64(&j, "faults", b->faults);
	cli_json_u64(&j, "pages_fault", b->pages_fault);
	cli_json_u64(&j, "pages_background", b->lib.pages_background);
	cli_json_u64(&j, "pages_zero", b->lib.pages_zero);
	cli_json_u64(&j, "chunks_fetched", b->lib.chunks_fetched);
	cli_json_u64(&j, "chunks_poisoned", b->lib.chunks_poisoned);
	cli_json_u64(&j, "bytes_read", b->bytes_read);
	cli_json_f64(&j, "fault_p50_us", s->fault_p50_us, 2);
	cli_json_f64(&j, "fault_p99_us", s->fault_p99_us, 2);
	cli_json_f64(&j, "touch_p50_us", s->touch_p50_us, 3);
	cli_json_f64(&j, "touch_p99_us", s->touch_p99_us, 3);
	cli_json_f64(&j, "touch_max_us", s->touch_max_us, 1);
	if (b->have_lib) {
		cli_json_u64(&j, "lib_fault_p50_us", b->lib.fault_p50_us);
		cli_json_u64(&j, "lib_fault_p99_us", b->lib.fault_p99_us);
		cli_json_u64(&j, "lib_fault_wait_us", b->lib.fault_wait_us);
	}
	cli_json_u64(&j, "passes", (uint64_t)b->a.passes);
	cli_json_u64(&j, "touched_chunks", b->touched_chunks);
	if (b->have_lib && b->lib.prefetch_chunks) {
		cli_json_u64(&j, "prefetch_chunks", b->lib.prefetch_chunks);
		cli_json_u64(&j, "pages_prefetch", b->lib.pages_prefetch);
		cli_json_u64(&j, "prefetch_late", b->lib.prefetch_late);
		cli_json_u64(&j, "faults_unlisted", b->lib.faults_unlisted);
		cli_json_u64(&j, "prefetch_hits", prefetch_hits(b));
		cli_json_u64(&j, "ws_pages", b->lib.ws_pages);
		cli_json_u64(&j, "pages_ws", b->lib.pages_ws);
		cli_json_u64(&j, "frames_dropped", b->lib.frames_dropped);
		if (b->lib.prefetch_done_us)
			cli_json_f64(&j, "prefetch_done_ms", (double)b->lib.prefetch_done_us / 1e3,
				     3);
	}
	if (b->have_lib && b->lib.http_requests) {
		cli_json_u64(&j, "http_requests", b->lib.http_requests);
		cli_json_u64(&j, "http_bytes", b->lib.http_bytes);
		cli_json_u64(&j, "http_retries", b->lib.http_retries);
		cli_json_u64(&j, "http_failures", b->lib.http_failures);
		cli_json_u64(&j, "http_fault_p50_us", b->lib.http_fault_p50_us);
		cli_json_u64(&j, "http_fault_p99_us", b->lib.http_fault_p99_us);
		cli_json_u64(&j, "http_bg_p50_us", b->lib.http_bg_p50_us);
		cli_json_u64(&j, "http_bg_p99_us", b->lib.http_bg_p99_us);
	}
	cli_json_f64(&j, "touch_ms", ms_between(b->ready_ns, b->end_ns), 3);
	cli_json_f64(&j, "total_ms", ms_between(b->t0_ns, b->end_ns), 3);
	if (b->have_resident)
		cli_json_f64(&j, "resident_ms", ms_between(b->t0_ns, b->resident_ns), 3);
	else
		cli_json_null(&j, "resident_ms");
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)b->checksum);
	cli_json_str(&j, "checksum", b->a.mode == MODE_FLOOR ? NULL : hex);
	if (b->source_ok >= 0)
		cli_json_bool(&j, "source_match", b->source_ok);
	if (b->pop)
		cli_pop_json(b->pop, &j);
	cli_json_arr_begin(&j, "touch_hist");
	for (int i = 0; i < 64; i++) {
		if (!s->hist[i])
			continue;
		cli_json_obj_begin(&j, NULL);
		cli_json_u64(&j, "ge_ns", i ? 1ull << i : 0);
		cli_json_u64(&j, "count", s->hist[i]);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_obj_end(&j);
}

void cli_bench_print_text(const struct bench *b, const struct lat_summary *s)
{
	char a[32], c[32];
	printf("thaw bench %s\n", b->a.uri);
	printf("  mode              %s%s\n", cli_bench_mode_names[b->a.mode],
	       b->a.mode == MODE_LAZY
		       ? (b->a.no_bg ? " (no background pass)" : " (background pass on)")
		       : "");
	printf("  touch             %s%s%s%s: %zu of %llu pages, %d thread%s\n", b->a.touch_text,
	       b->a.whole_page ? ", whole pages" : "", b->a.only != ONLY_ALL ? ", only " : "",
	       b->a.only != ONLY_ALL ? cli_bench_only_names[b->a.only] : "", b->ntouch,
	       (unsigned long long)b->pages_total, b->a.mode == MODE_FLOOR ? 1 : b->a.threads,
	       b->a.mode == MODE_FLOOR || b->a.threads == 1 ? "" : "s");
	printf("  snapshot          raw %s, stored %s\n",
	       cli_fmt_bytes(b->info.raw_bytes, a, sizeof(a)),
	       cli_fmt_bytes(b->info.stored_bytes, c, sizeof(c)));
	printf("  restore start     %10.3f ms   (until the memory is usable)\n",
	       ms_between(b->t0_ns, b->ready_ns));
	printf("  first access      %10.3f ms   (from restore start)\n",
	       ms_between(b->t0_ns, b->first_ns));
	printf("  touches           %10.3f ms\n", ms_between(b->ready_ns, b->end_ns));
	printf("  total             %10.3f ms   (restore start to last touch)\n",
	       ms_between(b->t0_ns, b->end_ns));
	if (b->have_resident)
		printf("  fully resident    %10.3f ms\n", ms_between(b->t0_ns, b->resident_ns));
	printf("  faults            %10llu\n", (unsigned long long)b->faults);
	printf("  fault latency     p50 %.2f us, p99 %.2f us\n", s->fault_p50_us, s->fault_p99_us);
	printf("  touch latency     p50 %.3f us, p99 %.3f us, max %.1f us\n", s->touch_p50_us,
	       s->touch_p99_us, s->touch_max_us);
	if (b->have_lib) {
		printf("  library           %llu pages by fault, %llu in background, %llu zero; "
		       "%llu chunks read, %s\n",
		       (unsigned long long)b->pages_fault,
		       (unsigned long long)b->lib.pages_background,
		       (unsigned long long)b->lib.pages_zero,
		       (unsigned long long)b->lib.chunks_fetched,
		       cli_fmt_bytes(b->bytes_read, a, sizeof(a)));
		printf("                    fault service p50 %llu us, p99 %llu us; %llu chunks "
		       "poisoned\n",
		       (unsigned long long)b->lib.fault_p50_us,
		       (unsigned long long)b->lib.fault_p99_us,
		       (unsigned long long)b->lib.chunks_poisoned);
		if (b->lib.prefetch_chunks)
			printf("  prefetch          %llu chunks listed, %llu pages installed\n"
			       "                    ahead; %llu of %llu touched chunks hit, "
			       "%llu late faults, %llu faults elsewhere; set in after %.3f ms\n",
			       (unsigned long long)b->lib.prefetch_chunks,
			       (unsigned long long)b->lib.pages_prefetch,
			       (unsigned long long)prefetch_hits(b),
			       (unsigned long long)b->touched_chunks,
			       (unsigned long long)b->lib.prefetch_late,
			       (unsigned long long)b->lib.faults_unlisted,
			       (double)b->lib.prefetch_done_us / 1e3);
		if (b->lib.ws_pages)
			printf("  working set       %llu of %llu listed pages installed by the "
			       "frames; %llu frames dropped\n",
			       (unsigned long long)b->lib.pages_ws,
			       (unsigned long long)b->lib.ws_pages,
			       (unsigned long long)b->lib.frames_dropped);
	} else if (b->bytes_read) {
		printf("  bytes read        %s\n", cli_fmt_bytes(b->bytes_read, a, sizeof(a)));
	}
	if (b->source_ok >= 0)
		printf("  source check      bytes read %s %s\n",
		       b->source_ok ? "agree with" : "DIFFER from", b->a.source);
	uint64_t max = 0;
	for (int i = 0; i < 64; i++)
		if (s->hist[i] > max)
			max = s->hist[i];
	if (!max)
		return;
	printf("  per-touch latency histogram\n");
	for (int i = 0; i < 64; i++) {
		if (!s->hist[i])
			continue;
		char lo[24], hi[24], bar[41];
		cli_fmt_ns(i ? 1ull << i : 0, lo, sizeof(lo));
		cli_fmt_ns(1ull << (i + 1), hi, sizeof(hi));
		int w = (int)((s->hist[i] * 40 + max - 1) / max);
		memset(bar, '#', (size_t)w);
		bar[w] = 0;
		printf("    %8s - %-8s %10llu  %s\n", lo, hi, (unsigned long long)s->hist[i], bar);
	}
}
