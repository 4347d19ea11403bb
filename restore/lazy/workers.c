/* SPDX-License-Identifier: MIT */
/*
 * The decode workers: a pool of threads running jobs the manager (or a
 * worker) queues, each job carrying the function that does it (a chunk to
 * decode and install, a working-set frame). They know nothing of either.
 */
#include "restore.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Nice value of the decode workers: about a tenth of a normal thread's share. */
#define WORKER_NICE 10

#include "format/codec.h"

void thaw__workers_push(struct thaw_restore *r, thaw__job_fn run, uint64_t arg)
{
	pthread_mutex_lock(&r->q_lock);
	if (r->q_len == r->q_cap) {
		/* A chunk fetched again after a bad hash may sit in the queue twice. */
		size_t cap = r->q_cap * 2;
		struct thaw__job *q = malloc(cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&r->q_lock);
			thaw__restore_fail(r, -ENOMEM);
			return;
		}
		for (size_t i = 0; i < r->q_len; i++)
			q[i] = r->queue[(r->q_head + i) % r->q_cap];
		free(r->queue);
		r->queue = q;
		r->q_head = 0;
		r->q_cap = cap;
	}
	r->queue[(r->q_head + r->q_len) % r->q_cap] = (struct thaw__job){ run, arg };
	r->q_len++;
	pthread_cond_signal(&r->q_cond);
	pthread_mutex_unlock(&r->q_lock);
}

static bool pop(struct thaw_restore *r, struct thaw__job *job)
{
	pthread_mutex_lock(&r->q_lock);
	while (!r->q_len && !r->q_quit)
		pthread_cond_wait(&r->q_cond, &r->q_lock);
	bool got = r->q_len > 0;
	if (got) {
		*job = r->queue[r->q_head];
		r->q_head = (r->q_head + 1) % r->q_cap;
		r->q_len--;
	}
	pthread_mutex_unlock(&r->q_lock);
	return got;
}

static void *worker_main(void *arg)
{
	struct thaw_restore *r = arg;
	/* Background work yields to the workload and the manager (a woken faulting
	 * thread preempts it), but is not starved: SCHED_IDLE workers got no CPU on
	 * a host busy with other work, so population times spread with the load
	 * (median 1032 -> 851 ms, 6 interleaved runs at load 2.8), and one holding
	 * the layout lock for an install stalled every fault behind it. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
	struct thaw__decoder *dec = NULL;
	/* One buffer for any job: a chunk's raw bytes or a working-set frame's. */
	size_t buf_len =
		r->frame_max > r->lay->hdr.chunk_size ? r->frame_max : r->lay->hdr.chunk_size;
	void *scratch = malloc(buf_len);
	if (thaw__decoder_new(&dec) || !scratch)
		thaw__restore_fail(r, -ENOMEM);
	struct thaw__job job;
	while (pop(r, &job))
		job.run(r, dec && scratch ? dec : NULL, scratch, job.arg);
	thaw__decoder_free(dec);
	free(scratch);
	return NULL;
}

int thaw__workers_start(struct thaw_restore *r, int n)
{
	r->q_cap = r->nchunks ? r->nchunks : 1;
	r->queue = malloc(r->q_cap * sizeof(*r->queue));
	r->workers = calloc((size_t)n, sizeof(*r->workers));
	if (!r->queue || !r->workers)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int err = pthread_create(&r->workers[i], NULL, worker_main, r);
		if (err)
			return -err;
		r->nworkers++;
	}
	return 0;
}

void thaw__workers_stop(struct thaw_restore *r)
{
	pthread_mutex_lock(&r->q_lock);
	r->q_quit = true;
	pthread_cond_broadcast(&r->q_cond);
	pthread_mutex_unlock(&r->q_lock);
	for (int i = 0; i < r->nworkers; i++)
		pthread_join(r->workers[i], NULL);
	r->nworkers = 0;
}
