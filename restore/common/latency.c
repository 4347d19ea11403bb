/* SPDX-License-Identifier: MIT */
#include "latency.h"

void thaw__lat_add(struct thaw__lat_hist *h, uint64_t us)
{
	unsigned b = us ? 63u - (unsigned)__builtin_clzll(us) : 0;
	if (b >= THAW_LAT_BUCKETS)
		b = THAW_LAT_BUCKETS - 1;
	__atomic_fetch_add(&h->bucket[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_us, us, __ATOMIC_RELAXED);
}

uint64_t thaw__lat_pct(const struct thaw__lat_hist *h, double pct, uint64_t out[THAW_LAT_BUCKETS])
{
	uint64_t counts[THAW_LAT_BUCKETS], total = 0;
	for (unsigned i = 0; i < THAW_LAT_BUCKETS; i++) {
		counts[i] = __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		total += counts[i];
		if (out)
			out[i] = counts[i];
	}
	if (!total)
		return 0;
	double rank = pct / 100.0 * (double)total, seen = 0;
	for (unsigned i = 0; i < THAW_LAT_BUCKETS; i++) {
		if (!counts[i])
			continue;
		if (seen + (double)counts[i] >= rank) {
			/* Interpolate inside [2^i, 2^(i+1)). */
			double lo = (double)(1ull << i), frac = (rank - seen) / (double)counts[i];
			return (uint64_t)(lo + lo * frac);
		}
		seen += (double)counts[i];
	}
	return 1ull << (THAW_LAT_BUCKETS - 1);
}
