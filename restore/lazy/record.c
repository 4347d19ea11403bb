/* SPDX-License-Identifier: MIT */
/*
 * A recording run. A lazy restore installs whole chunks, so a fault shows
 * only the first touched page of each; to learn the working set page by
 * page, a recording run installs just the faulting page and records it.
 * Each fault decodes its chunk (on the manager thread: this run is slow on
 * purpose and done once), keeping the last one decoded, for runs that
 * touch pages of one chunk in a row. A direct-mapped cache of 32 chunks
 * measured no faster (mixed 256 MiB, random 10% and sequential touches:
 * the chunks a random run revisits are too far apart, and 2 MiB of decoded
 * chunks falls out of the CPU caches). Chunk states are left as they
 * are: when the restore ends, the chunk path fills the rest, and its
 * copies skip the pages already here.
 */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/trace.h"

struct record_cache {
	uint64_t id;  /* chunk id + 1 of the bytes in raw; 0 = none */
	uint8_t *raw; /* one chunk's raw bytes */
};

void thaw__record_free(struct thaw_restore *r)
{
	if (!r->rec_cache)
		return;
	free(r->rec_cache->raw);
	free(r->rec_cache);
	r->rec_cache = NULL;
}

/* Chunk id's raw bytes, decoded through the cache; NULL with *err set if they cannot be had. */
static const uint8_t *decoded(struct thaw_restore *r, uint64_t id, int *err)
{
	uint32_t size = r->lay->hdr.chunk_size;
	struct record_cache *c = r->rec_cache;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c)
			c->raw = malloc(size);
		r->rec_cache = c;
		if (!c || !c->raw) {
			thaw__record_free(r);
			*err = -ENOMEM;
			return NULL;
		}
	}
	if (c->id == id + 1)
		return c->raw;
	c->id = 0;
	ssize_t n = thaw_snapshot_read_chunk(r->snap, id, c->raw, size);
	if (n < 0) {
		*err = (int)n;
		return NULL;
	}
	c->id = id + 1;
	return c->raw;
}

void thaw__record_page(struct thaw_restore *r, uint64_t g, uint64_t addr, uint64_t now)
{
	const struct thaw__layout *l = r->lay;
	uint32_t ps = l->hdr.page_size;
	uint64_t id = g / l->pages_per_chunk;
	uint32_t p = (uint32_t)(g % l->pages_per_chunk);
	/* The page's address in the source, whatever address it is restored at. */
	uint64_t src = thaw__layout_chunk_addr(l, id) + (uint64_t)p * ps;
	if (!r->fault_seen[g]) {
		r->fault_seen[g] = 1;
		int err = thaw_trace_add_page(r->record, (now - r->t_start_ns) / 1000, src, 0);
		if (err)
			thaw__warn(r->log, "recording page 0x%llx: %s", (unsigned long long)src,
				   thaw_strerror(err));
	}
	uint8_t st = atomic_load(&r->state[id]);
	if (st == CHUNK_DONE || st == CHUNK_POISONED) {
		thaw__install_wake(r->eng, addr, ps);
		return;
	}
	int err = 0;
	const uint8_t *raw = NULL;
	bool zero = thaw__layout_page_zero(l, g);
	if (!zero)
		raw = decoded(r, id, &err);
	if (err) {
		/* As a chunk fetch would: the chunk cannot be had, so it is poisoned. */
		uint8_t missing = CHUNK_MISSING;
		if (atomic_compare_exchange_strong(&r->state[id], &missing, CHUNK_DECODING))
			thaw__populate_poison(r, id, err);
		else
			thaw__install_wake(r->eng, addr, ps);
		return;
	}
	atomic_fetch_add_explicit(&r->c.pages_fault, 1, memory_order_relaxed);
	if (zero)
		atomic_fetch_add_explicit(&r->c.pages_zero, 1, memory_order_relaxed);
	uint64_t flat = thaw__chunk_flat(r, id) + (uint64_t)p * ps;
	err = zero ? thaw__restore_put_flat(r, flat, ps, THAW__PUT_ZERO, NULL)
		   : thaw__restore_put_flat(r, flat, ps, THAW__PUT_COPY, raw + (uint64_t)p * ps);
	if (err == -ESRCH)
		thaw__restore_fail(r, -THAW_E_TARGET_GONE);
	thaw__restore_note_latency(r, now);
}
