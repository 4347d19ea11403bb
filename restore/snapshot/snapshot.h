/* SPDX-License-Identifier: MIT */
/*
 * restore/snapshot/: an opened snapshot (snapshot.c: its parsed layout, its
 * store, a pool of decoders) and the decoded-chunk cache its restores share
 * (chunk_cache.c). Built on format/ and store/; lazy/, write/ and export/
 * are its users.
 *
 * The open snapshot handle, shared by the restore and the tools.
 */
#ifndef THAW_RESTORE_SNAPSHOT_H
#define THAW_RESTORE_SNAPSHOT_H

#include <pthread.h>

#include "common/errors.h"
#include "format/format.h"
#include "store/store.h"

#define THAW__DECODER_POOL 8

struct thaw__chunk_cache;
struct thaw__snap_decoder; /* a decoder plus its staging buffer (snapshot.c) */

struct thaw_snapshot {
	struct thaw__layout layout;
	struct thaw__store *store; /* owned */
	struct thaw__logger log;
	char *uri; /* owned */
	uint64_t chunks_by_kind[THAW_CHUNK_KINDS];
	/* Idle decoders for thaw_snapshot_read_chunk, reused across calls and
	 * threads; at most THAW__DECODER_POOL are kept. */
	pthread_mutex_t pool_lock;
	struct thaw__snap_decoder *pool[THAW__DECODER_POOL];
	unsigned pool_n;
	struct thaw__chunk_cache *cache; /* owned; NULL = none (thaw_snapshot_set_cache) */
};

#endif
