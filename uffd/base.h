/* SPDX-License-Identifier: MIT */
/*
 * The small helpers every layer uses, spelled once: container_of and the
 * monotonic clock. It sits in uffd/, the bottom layer, so that the engine
 * and every layer of restore/ can include it; it is header-only (static
 * inline) so that using it adds no link-time edge between object files.
 * Not installed.
 */
#ifndef THAW_UFFD_BASE_H
#define THAW_UFFD_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The struct that holds member, from a pointer to member. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* CLOCK_MONOTONIC in nanoseconds: the one clock for deadlines and latencies. */
static inline uint64_t thaw__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t thaw__now_us(void)
{
	return thaw__now_ns() / 1000u;
}

#endif
