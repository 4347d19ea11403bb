/* SPDX-License-Identifier: MIT */
/*
 * The shared decoded-chunk cache: a slot per chunk id pointing at its
 * bytes, and a recency list to evict from. One lock; a hit costs a lookup
 * and a memcpy of one chunk, far less than a store read plus a decode.
 */
#include "chunk_cache.h"
#include "uffd/base.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct thaw__list_node lru; /* recency: first is the most recent */
	uint64_t id;
	uint32_t len;
	unsigned char bytes[];
};

struct thaw__chunk_cache {
	pthread_mutex_t lock;
	struct entry **slot; /* by chunk id */
	uint64_t nchunks;
	struct thaw__list lru;
	struct thaw_cache_stats st;
};

int thaw__chunk_cache_new(uint64_t limit, uint64_t nchunks, struct thaw__chunk_cache **out)
{
	struct thaw__chunk_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->slot = calloc(nchunks ? nchunks : 1, sizeof(*c->slot));
	if (!c->slot) {
		free(c);
		return -ENOMEM;
	}
	c->nchunks = nchunks;
	c->st.limit = limit;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void thaw__chunk_cache_free(struct thaw__chunk_cache *c)
{
	if (!c)
		return;
	for (struct thaw__list_node *n = c->lru.first, *next; n; n = next) {
		next = n->next;
		free(container_of(n, struct entry, lru));
	}
	pthread_mutex_destroy(&c->lock);
	free(c->slot);
	free(c);
}

bool thaw__chunk_cache_get(struct thaw__chunk_cache *c, uint64_t id, void *dst, uint32_t len)
{
	if (id >= c->nchunks)
		return false;
	pthread_mutex_lock(&c->lock);
	struct entry *e = c->slot[id];
	bool hit = e && e->len == len;
	if (hit) {
		memcpy(dst, e->bytes, len);
		thaw__list_del(&c->lru, &e->lru);
		thaw__list_add_head(&c->lru, &e->lru);
		c->st.hits++;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

bool thaw__chunk_cache_has(struct thaw__chunk_cache *c, uint64_t id)
{
	if (id >= c->nchunks)
		return false;
	pthread_mutex_lock(&c->lock);
	bool has = c->slot[id] != NULL;
	pthread_mutex_unlock(&c->lock);
	return has;
}

void thaw__chunk_cache_put(struct thaw__chunk_cache *c, uint64_t id, const void *src, uint32_t len)
{
	if (id >= c->nchunks || len > c->st.limit)
		return;
	/* Copied outside the lock: the common case is a chunk nobody else holds. */
	struct entry *e = malloc(sizeof(*e) + len);
	if (!e)
		return;
	*e = (struct entry){ .id = id, .len = len };
	memcpy(e->bytes, src, len);
	pthread_mutex_lock(&c->lock);
	if (c->slot[id]) {
		pthread_mutex_unlock(&c->lock);
		free(e);
		return;
	}
	while (c->lru.last && c->st.bytes + len > c->st.limit) {
		struct entry *old = container_of(c->lru.last, struct entry, lru);
		thaw__list_del(&c->lru, &old->lru);
		c->slot[old->id] = NULL;
		c->st.bytes -= old->len;
		c->st.evictions++;
		free(old);
	}
	c->slot[id] = e;
	thaw__list_add_head(&c->lru, &e->lru);
	c->st.bytes += len;
	c->st.inserts++;
	pthread_mutex_unlock(&c->lock);
}

void thaw__chunk_cache_stats(struct thaw__chunk_cache *c, struct thaw_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}
