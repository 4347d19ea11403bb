/* SPDX-License-Identifier: MIT */
/* Time and latency: one monotonic clock and one log2 histogram for the whole library. */
#ifndef THAW_RESTORE_LATENCY_H
#define THAW_RESTORE_LATENCY_H

#include <stdint.h>

#include "thaw.h"
#include "uffd/base.h" /* the clock: thaw__now_ns, thaw__now_us */

/*
 * Log2 histogram of latencies in µs: bucket i counts [2^i, 2^(i+1)), bucket
 * 0 also what is under 1 µs (the layout of thaw_stats.fault_lat_hist).
 * Added to from any thread, read from any.
 */
struct thaw__lat_hist {
	uint64_t bucket[THAW_LAT_BUCKETS];
	uint64_t sum_us; /* of every latency added */
};
void thaw__lat_add(struct thaw__lat_hist *h, uint64_t us);
/* Copy the counts into out (may be NULL); returns the pct-th percentile (0..100) in µs. */
uint64_t thaw__lat_pct(const struct thaw__lat_hist *h, double pct, uint64_t out[THAW_LAT_BUCKETS]);

#endif
