/* SPDX-License-Identifier: MIT */
/*
 * A snapshot's decoded-chunk cache, shared by its restores: bounded in
 * bytes, least recently used out first. Thread-safe.
 */
#ifndef THAW_RESTORE_CHUNK_CACHE_H
#define THAW_RESTORE_CHUNK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "thaw.h"

struct thaw__chunk_cache;

/* A cache for chunk ids [0, nchunks) holding at most limit bytes. */
int thaw__chunk_cache_new(uint64_t limit, uint64_t nchunks, struct thaw__chunk_cache **out);
void thaw__chunk_cache_free(struct thaw__chunk_cache *c);
/* Copy chunk id's len decoded bytes into dst; false when not held. Counts a hit. */
bool thaw__chunk_cache_get(struct thaw__chunk_cache *c, uint64_t id, void *dst, uint32_t len);
/* Is chunk id held (no copy, no count)? */
bool thaw__chunk_cache_has(struct thaw__chunk_cache *c, uint64_t id);
/* Keep a copy of chunk id's decoded bytes (ignored if held, too large, or out of memory). */
void thaw__chunk_cache_put(struct thaw__chunk_cache *c, uint64_t id, const void *src, uint32_t len);
void thaw__chunk_cache_stats(struct thaw__chunk_cache *c, struct thaw_cache_stats *st);

#endif
