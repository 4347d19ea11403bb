/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's floor, outside the library: built into its own archive
 * (build/libthaw-floor.a) that only the thaw command and the tests link,
 * so it is no part of the installed ABI.
 */
#ifndef THAW_UFFD_FLOOR_H
#define THAW_UFFD_FLOOR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Bare userfaultfd round trip, the floor a lazy restore is measured
 * against: registers `pages` fresh pages, touches them in `order` (an
 * array of page indexes, or NULL for ascending) from the calling thread
 * while a handler thread installs each with UFFDIO_COPY from a ready
 * buffer. Fills per-touch latencies in ns into lat_ns (pages entries).
 * 0, or -EINVAL (bad arguments, order not a permutation) or -errno.
 */
int thaw__bench_floor(size_t pages, const uint32_t *order, uint64_t *lat_ns);

#endif
