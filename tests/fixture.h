/* SPDX-License-Identifier: MIT */
/* Test fixtures: realistic memory contents and snapshots written from them. */
#ifndef THAW_TESTS_FIXTURE_H
#define THAW_TESTS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "thaw.h"

/*
 * Fill buf (len bytes, a multiple of 4096) with a deterministic mix that
 * looks like a process image: runs of zero pages (~35% of pages), text-like
 * and structured (pointer/integer tables) pages that compress well, random
 * pages that do not, and copies of a few repeated pages. zstd at 64 KiB
 * chunks stores it at roughly 25–40% of its raw size. Same seed, same bytes.
 */
void fixture_fill_mixed(void *buf, size_t len, uint64_t seed);

/*
 * Write a snapshot at path from n in-memory regions (each with .mem set;
 * .sz may be 0) with the given chunk size (0 = default), through the
 * public writer API. Returns 0 or the writer's negative error.
 */
int fixture_write_snapshot(const char *path, const struct thaw_region_desc *regions, size_t n,
			   uint32_t chunk_size);

/*
 * Write src (len bytes, recorded at addr) as a one-region snapshot at path,
 * open it and start an in-process restore with flags. Both handles are the
 * caller's. Returns 0 or the first negative error.
 */
int fixture_restore_region(const char *path, const void *src, size_t len, uint64_t addr,
			   unsigned flags, struct thaw_snapshot **snap, struct thaw_restore **r);

#endif
