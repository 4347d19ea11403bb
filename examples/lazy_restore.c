/* SPDX-License-Identifier: MIT */
/*
 * lazy_restore: restore a snapshot into this process and use it at once.
 *
 *   lazy_restore SNAP
 *
 * Opens SNAP (a path or an http(s):// URL), starts a lazy restore, reads
 * the first byte of every region straight away (each read waits only for
 * its own chunk), then reads every page while the background pass streams
 * the rest in, waits until the whole snapshot is resident and prints the
 * restore's counters.
 */
#include <thaw.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void log_line(enum thaw_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= THAW_LOG_WARN)
		fprintf(stderr, "lazy_restore: %s\n", msg);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: lazy_restore SNAP\n");
		return 2;
	}
	char err[256] = "";
	struct thaw_open_opts oo = {
		.sz = sizeof(oo), .log_fn = log_line, .err_buf = err, .err_buf_size = sizeof(err)
	};
	struct thaw_snapshot *snap;
	int r = thaw_snapshot_open(argv[1], &oo, &snap);
	if (r < 0) {
		fprintf(stderr, "lazy_restore: %s: %s\n", argv[1], err[0] ? err : thaw_strerror(r));
		return 1;
	}
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	thaw_snapshot_get_info(snap, &info);
	size_t nreg = thaw_snapshot_region_count(snap);

	double t0 = now_ms();
	struct thaw_restore *rs;
	r = thaw_restore_start(snap, NULL, &rs);
	double t_start = now_ms();
	if (r < 0) {
		fprintf(stderr, "lazy_restore: restore: %s\n", thaw_strerror(r));
		thaw_snapshot_close(snap);
		return 1;
	}

	/* Usable now: the first byte of each region arrives on demand. */
	uint64_t sum = 0;
	for (size_t i = 0; i < nreg; i++)
		sum += *(volatile uint8_t *)thaw_restore_region_addr(rs, i);
	double t_first = now_ms();

	/* Read every page; pages the background pass already brought are free. */
	for (size_t i = 0; i < nreg; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		thaw_snapshot_region(snap, i, &ri);
		const volatile uint8_t *p = thaw_restore_region_addr(rs, i);
		for (uint64_t off = 0; off < ri.len; off += info.page_size)
			sum += p[off];
	}
	double t_read = now_ms();

	r = thaw_restore_wait(rs, -1);
	double t_res = now_ms();
	struct thaw_stats st = { .sz = sizeof(st) };
	thaw_restore_stats(rs, &st);

	printf("snapshot: %zu regions, %.1f MiB raw, %.1f MiB stored\n", nreg,
	       (double)info.raw_bytes / 1048576, (double)info.stored_bytes / 1048576);
	printf("restore start:        %8.3f ms\n", t_start - t0);
	printf("first byte of each region read after %8.3f ms\n", t_first - t0);
	printf("every page read after %8.3f ms (checksum %" PRIx64 ")\n", t_read - t0, sum);
	printf("fully resident after  %8.3f ms (%s)\n", t_res - t0,
	       r == 0 ? "ok" : thaw_strerror(r));
	printf("faults %" PRIu64 ", pages by fault %" PRIu64 ", in background %" PRIu64
	       ", zero %" PRIu64 "\n",
	       st.faults, st.pages_fault, st.pages_background, st.pages_zero);
	printf("fault service p50 %" PRIu64 " us, p99 %" PRIu64 " us; %" PRIu64 " bytes read\n",
	       st.fault_p50_us, st.fault_p99_us, st.bytes_read);

	/* The restore is done; its memory is ours to keep or unmap. */
	void **addr = calloc(nreg ? nreg : 1, sizeof(*addr));
	for (size_t i = 0; addr && i < nreg; i++)
		addr[i] = thaw_restore_region_addr(rs, i);
	thaw_restore_free(rs);
	for (size_t i = 0; addr && i < nreg; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		thaw_snapshot_region(snap, i, &ri);
		munmap(addr[i], ri.len);
	}
	free(addr);
	thaw_snapshot_close(snap);
	return r == 0 ? 0 : 1;
}
