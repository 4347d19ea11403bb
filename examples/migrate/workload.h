/* SPDX-License-Identifier: MIT */
/*
 * The migrated workload, shared by source.c and destination.c: a region
 * at a fixed address holding mixed content (untouched zero pages, text,
 * counters, noise) and, in its first page, the workload's whole state
 * (which workload included, so the destination carries on with it). A
 * step picks a page and rewrites a slice of it from the state, so a run
 * that moves half-way from one process to another ends with the same
 * bytes (and checksum) as a run that never moved. Two workloads:
 *
 * - uniform: each step writes a page picked at random among all the data,
 *   with no other work. Until nearly all memory is in, nearly every step
 *   faults: the worst case for post-copy, and no fetch order helps it.
 * - hot: what services do. Most steps touch a hot set, a few a page
 *   anywhere, and each step computes on what it read. The figures are
 *   picked, not tuned: 90% of steps in 10% of the data (the 90/10 rule of
 *   thumb for working sets; a YCSB zipfian at 0.99 puts ~90% of requests on
 *   ~10% of keys); the hot set one stretch of memory (the arenas and slabs
 *   a live service allocates from), starting mid-memory, where neither an
 *   address-order pass nor its reverse comes first, and sliding one page
 *   every 256 steps (~2% of the data a second); about a microsecond of
 *   work a step (a small request's parse and lookup).
 */
#ifndef THAW_EXAMPLES_MIGRATE_WORKLOAD_H
#define THAW_EXAMPLES_MIGRATE_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WL_PAGE	 4096ul
#define WL_ADDR	 0x5a0000000000ul /* where the region lives in both processes */
#define WL_MAGIC 0x74686177776c3031ull

enum wl_kind { WL_UNIFORM, WL_HOT };
#define WL_HOT_DRIFT 256 /* steps per page the hot set moves */
#define WL_HOT_WORK  512 /* rounds of arithmetic a step does on what it read */

struct wl_state {
	uint64_t magic;
	uint64_t size;	/* bytes of the region */
	uint64_t step;	/* steps done */
	uint64_t steps; /* steps of a whole run */
	uint64_t rng;
	uint64_t sum;  /* folded from what each step reads: the workload's own checksum */
	uint64_t kind; /* enum wl_kind */
};

static inline uint64_t wl_next(uint64_t *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

static inline uint64_t wl_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The initial content: a third of the pages never written, the rest mixed. */
static inline void wl_init(uint8_t *m, uint64_t size, uint64_t steps, enum wl_kind kind)
{
	uint64_t x = 88172645463325252ull;
	for (uint64_t pg = 1; pg < size / WL_PAGE; pg++) {
		uint8_t *p = m + pg * WL_PAGE;
		switch ((pg / 16) % 6) { /* whole 64 KiB chunks of each kind */
		case 0:
		case 3:
			break;
		case 1:
		case 4:
			for (size_t i = 0; i + 32 <= WL_PAGE; i += 32)
				snprintf((char *)p + i, 32, "sess %07llu user %04zu ok\n",
					 (unsigned long long)(pg % 10000000), i);
			break;
		case 2:
			for (size_t i = 0; i < WL_PAGE; i += 8) {
				uint64_t v = pg * 512 + i / 8;
				memcpy(p + i, &v, 8);
			}
			break;
		default:
			for (size_t i = 0; i < WL_PAGE; i += 8) {
				uint64_t v = wl_next(&x);
				memcpy(p + i, &v, 8);
			}
		}
	}
	struct wl_state *s = (struct wl_state *)m;
	*s = (struct wl_state){
		.magic = WL_MAGIC, .size = size, .steps = steps, .rng = 2463534242, .kind = kind
	};
}

/*
 * Which page step r touches. Only pages written at init are picked (chunk
 * kinds 1, 2, 4, 5), so the untouched third stays untouched, as memory a
 * service never uses does. The hot set is a stretch of data pages in
 * address order, data page d being page d % 16 of data chunk d / 16.
 */
static inline uint64_t wl_page(const struct wl_state *s, uint64_t r)
{
	static const uint8_t kinds[4] = { 1, 2, 4, 5 };
	uint64_t chunks = s->size / (16 * WL_PAGE) / 6 * 4, k = r % chunks, pg = (r >> 32) % 16;
	if (s->kind == WL_HOT && (r >> 56) % 10 != 0) { /* 9 steps in 10 */
		uint64_t n = chunks * 16;
		uint64_t d = (n / 2 + s->step / WL_HOT_DRIFT + (r >> 8) % (n / 10)) % n;
		k = d / 16;
		pg = d % 16;
	}
	return ((k / 4) * 6 + kinds[k % 4]) * 16 + pg;
}

/* One step: read a slice of a page into the sum, rewrite it, and (hot) work on it. */
static inline void wl_step(uint8_t *m)
{
	struct wl_state *s = (struct wl_state *)m;
	uint64_t r = wl_next(&s->rng);
	uint64_t *w = (uint64_t *)(m + wl_page(s, r) * WL_PAGE + ((r >> 40) % (WL_PAGE / 64)) * 64);
	for (int i = 0; i < 8; i++) {
		s->sum = (s->sum ^ w[i]) * 0x100000001b3ull;
		w[i] = s->sum + s->step;
	}
	for (int i = 0; s->kind == WL_HOT && i < WL_HOT_WORK; i++)
		s->sum = (s->sum ^ (s->sum >> 29)) * 0x100000001b3ull;
	s->step++;
}

/* Checksum of the whole region (words, so about memory speed). */
static inline uint64_t wl_checksum(const uint8_t *m, uint64_t size)
{
	const uint64_t *w = (const uint64_t *)m;
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint64_t i = 0; i < size / 8; i++)
		h = ((h ^ w[i]) * 0x100000001b3ull) ^ (h >> 29);
	return h;
}

#endif
