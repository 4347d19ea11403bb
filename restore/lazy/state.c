/* SPDX-License-Identifier: MIT */
/*
 * The restore's shared state at the bottom of the runtime: what every
 * module may call and which calls none of them (failing the restore, the
 * fault-latency histogram, the prefetch count).
 */
#include "state.h"

int thaw__restore_fail(struct thaw_restore *r, int err)
{
	pthread_mutex_lock(&r->done_lock);
	if (!r->error) {
		r->error = err;
		thaw__err(r->log, "restore stopped: %s", thaw_strerror(err));
	}
	err = r->error;
	pthread_cond_broadcast(&r->done_cond);
	pthread_mutex_unlock(&r->done_lock);
	thaw__engine_request_stop(r->eng);
	return err;
}

void thaw__restore_note_latency(struct thaw_restore *r, uint64_t since_ns)
{
	thaw__engine_keep_awake(r->eng);
	thaw__lat_add(&r->c.fault_lat, (thaw__now_ns() - since_ns) / 1000);
}

void thaw__prefetch_finished(struct thaw_restore *r, uint64_t id)
{
	if (r->in_prefetch[id] &&
	    atomic_fetch_sub_explicit(&r->prefetch_left, 1, memory_order_acq_rel) == 1)
		atomic_store(&r->prefetch_done_us, (thaw__now_ns() - r->t_start_ns) / 1000 ?: 1);
}
