/* SPDX-License-Identifier: MIT */
/*
 * The engine: one userfaultfd, one manager thread, one io_uring. The ring
 * multishot-polls the uffd and an eventfd; faults are read in batches and
 * handed to the source, which submits its own I/O on the same ring. This
 * file creates the engine, runs its thread and loop and keeps the ring's
 * requests; what a read of the uffd returns is handled in engine_msg.c.
 */
#include "uffd_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Creation and feature negotiation                                    */
/* ------------------------------------------------------------------ */

#define LAYOUT_EVENTS                                                                              \
	(UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP |         \
	 UFFD_FEATURE_EVENT_FORK)

static int negotiate(struct thaw__engine *e, uint64_t extra, bool layout)
{
	char names[256];
	uint64_t have = 0;
	int ret = thaw__uffd_probe(e->user_mode_only ? UFFD_USER_MODE_ONLY : 0, &have);
	if (ret < 0) {
		thaw__err(e->log, "userfaultfd: probing features failed: %s", strerror(-ret));
		return ret;
	}
	if (!(have & UFFD_FEATURE_POISON)) {
		thaw__err(e->log, "userfaultfd: the kernel lacks UFFD_FEATURE_POISON (Linux 6.6+), "
				  "needed to make pages that cannot be had raise SIGBUS");
		return -THAW_E_UFFD_FEATURE;
	}
	if (extra & ~have) {
		thaw__uffd_feature_names(extra & ~have, names, sizeof(names));
		thaw__err(e->log, "userfaultfd: the kernel lacks %s", names);
		return -THAW_E_UFFD_FEATURE;
	}
	uint64_t want = UFFD_FEATURE_POISON | (have & UFFD_FEATURE_THREAD_ID) | extra;
	if (layout)
		want |= have & LAYOUT_EVENTS;
	ret = thaw__uffd_api(e->uffd, want, NULL);
	if (ret == -EPERM && layout && (want & UFFD_FEATURE_EVENT_FORK)) {
		/* The kernel keeps FORK for CAP_SYS_PTRACE; the API call may be retried. */
		thaw__warn(e->log, "userfaultfd: FORK events need CAP_SYS_PTRACE; a forked child "
				   "reads zeros where its pages were not restored yet");
		want &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
		ret = thaw__uffd_api(e->uffd, want, NULL);
	}
	if (ret < 0) {
		thaw__uffd_feature_names(want, names, sizeof(names));
		thaw__err(e->log, "userfaultfd: UFFDIO_API with %s failed: %s", names,
			  strerror(-ret));
		return ret == -EINVAL ? -THAW_E_UFFD_FEATURE : ret;
	}
	/* The kernel answers with everything it offers; what is enabled is what we asked. */
	e->features = want;
	e->poison = true;
	thaw__uffd_feature_names(want, names, sizeof(names));
	thaw__debug(e->log, "userfaultfd %d: features %s%s", e->uffd, names,
		    e->user_mode_only ? " (user mode only)" : "");
	return 0;
}

static bool is_userfaultfd(int fd)
{
	char path[64], target[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return true; /* no /proc: cannot tell, let the ioctls decide */
	target[n] = 0;
	return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

/*
 * The sender did the UFFDIO_API handshake and the kernel does not say what
 * it enabled, so take opts->features on trust and learn what we can.
 */
static int adopt(struct thaw__engine *e, uint64_t extra)
{
	e->adopted = true;
	if (!is_userfaultfd(e->uffd)) {
		thaw__err(e->log, "fd %d handed to the engine is not a userfaultfd", e->uffd);
		return -EINVAL;
	}
	int fl = fcntl(e->uffd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK)) {
		/* The loop reads until EAGAIN; a blocking uffd would stall it. */
		thaw__debug(e->log, "adopted userfaultfd %d: setting O_NONBLOCK", e->uffd);
		if (fcntl(e->uffd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
	}
	uint64_t have = 0;
	int ret = thaw__uffd_probe(0, &have);
	if (ret < 0)
		ret = thaw__uffd_probe(UFFD_USER_MODE_ONLY, &have);
	if (ret < 0) {
		/* Registration still checks that UFFDIO_POISON is allowed on the ranges. */
		thaw__debug(e->log, "adopted userfaultfd %d: cannot probe features here (%s)",
			    e->uffd, strerror(-ret));
	} else if (!(have & UFFD_FEATURE_POISON)) {
		thaw__err(e->log, "userfaultfd: the kernel lacks UFFD_FEATURE_POISON (Linux 6.6+), "
				  "needed to make pages that cannot be had raise SIGBUS");
		return -THAW_E_UFFD_FEATURE;
	}
	e->features = extra | UFFD_FEATURE_POISON;
	e->poison = true;
	return 0;
}

int thaw__engine_new(const struct thaw__engine_opts *opts, struct thaw__engine **out)
{
	*out = NULL;
	if (!opts || !opts->ops || !opts->ops->fault) {
		if (opts && opts->uffd >= 0)
			close(opts->uffd);
		return -EINVAL;
	}
	struct thaw__engine *e = calloc(1, sizeof(*e));
	if (!e) {
		if (opts->uffd >= 0)
			close(opts->uffd);
		return -ENOMEM;
	}
	e->ops = opts->ops;
	e->ctx = opts->ctx;
	e->log = opts->log;
	e->uffd = opts->uffd;
	e->efd = -1;
	e->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	e->ring_entries = opts->ring_entries ? opts->ring_entries : 256;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	/* The manager must not wait behind a stream of installs to read an event. */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->layout_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	atomic_init(&e->stop_requested, false);

	int ret;
	e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->efd < 0) {
		ret = -errno;
		goto fail;
	}
	if (e->uffd >= 0) {
		ret = adopt(e, opts->features);
	} else {
		e->uffd = thaw__uffd_open(e->log, &e->user_mode_only);
		ret = e->uffd < 0 ? e->uffd : negotiate(e, opts->features, opts->layout_events);
	}
	if (ret < 0)
		goto fail;
	/* An adopted uffd carries whatever events its creator asked for. */
	e->events = e->adopted || (e->features & LAYOUT_EVENTS);
	*out = e;
	return 0;
fail:
	thaw__engine_free(e);
	return ret;
}

bool thaw__engine_target_gone(struct thaw__engine *e, uint64_t probe)
{
	struct uffdio_zeropage z = { .range = { .start = probe, .len = e->page_size },
				     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };
	return ioctl(e->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno == ESRCH;
}

void thaw__engine_keep_uffd(struct thaw__engine *e)
{
	e->keep_uffd = true;
}

bool thaw__engine_user_mode_only(const struct thaw__engine *e)
{
	return e->user_mode_only;
}

int thaw__engine_uffd(const struct thaw__engine *e)
{
	return e->uffd;
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

int thaw__engine_register(struct thaw__engine *e, uint64_t addr, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(e->uffd, UFFDIO_REGISTER, &reg) < 0) {
		int err = -errno;
		thaw__err(e->log, "userfaultfd: UFFDIO_REGISTER [0x%llx, +0x%llx) failed: %s",
			  (unsigned long long)addr, (unsigned long long)len, strerror(-err));
		return err;
	}
	static const struct {
		int bit;
		const char *name;
	} need[] = {
		{ _UFFDIO_COPY, "UFFDIO_COPY" },
		{ _UFFDIO_ZEROPAGE, "UFFDIO_ZEROPAGE" },
		{ _UFFDIO_WAKE, "UFFDIO_WAKE" },
		{ _UFFDIO_POISON, "UFFDIO_POISON" },
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (need[i].bit == _UFFDIO_POISON && !e->poison)
			continue;
		if (reg.ioctls & (1ull << need[i].bit))
			continue;
		thaw__err(e->log,
			  "userfaultfd: %s not allowed on [0x%llx, +0x%llx) (ioctls 0x%llx)",
			  need[i].name, (unsigned long long)addr, (unsigned long long)len,
			  (unsigned long long)reg.ioctls);
		thaw__engine_unregister(e, addr, len);
		return -THAW_E_UFFD_FEATURE;
	}
	thaw__debug(e->log, "userfaultfd %d: registered [0x%llx, +0x%llx)", e->uffd,
		    (unsigned long long)addr, (unsigned long long)len);
	return 0;
}

int thaw__engine_unregister(struct thaw__engine *e, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { .start = addr, .len = len };
	if (ioctl(e->uffd, UFFDIO_UNREGISTER, &r) < 0) {
		int err = -errno;
		thaw__err(e->log, "userfaultfd: UFFDIO_UNREGISTER [0x%llx, +0x%llx) failed: %s",
			  (unsigned long long)addr, (unsigned long long)len, strerror(-err));
		return err;
	}
	/*
	 * UNREGISTER wakes the range's waiters before it clears the range's
	 * flags, and a fault taken under the per-VMA lock does not wait for it:
	 * it can still see the range registered, queue and sleep after that
	 * wake, with nobody left to answer it (seen here: a touch asleep until a
	 * signal, about once in 50 restores). Waking the range once more after
	 * the flags are gone reaches it; later faults no longer come to us.
	 */
	ioctl(e->uffd, UFFDIO_WAKE, &r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Ring requests (manager thread)                                      */
/* ------------------------------------------------------------------ */

static bool on_manager(const struct thaw__engine *e)
{
	return e->ring_up && pthread_equal(pthread_self(), e->mgr);
}

/* An SQE, flushing the SQ to the kernel once if it is full. */
static struct io_uring_sqe *get_sqe(struct thaw__engine *e)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	if (sqe)
		return sqe;
	io_uring_submit(&e->ring);
	return io_uring_get_sqe(&e->ring);
}

static bool is_own(const struct thaw__engine *e, const struct thaw__ring_req *req)
{
	return req == &e->uffd_req || req == &e->efd_req || req == &e->cancel_req;
}

static void queued(struct thaw__engine *e, struct io_uring_sqe *sqe, struct thaw__ring_req *req)
{
	io_uring_sqe_set_data(sqe, req);
	e->inflight++;
	if (is_own(e, req))
		e->own_inflight++;
}

int thaw__ring_read(struct thaw__engine *e, struct thaw__ring_req *req, int fd, void *buf,
		    uint32_t len, uint64_t off)
{
	if (!on_manager(e))
		return -EPERM;
	struct io_uring_sqe *sqe = get_sqe(e);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, buf, len, off);
	queued(e, sqe, req);
	return 0;
}

int thaw__ring_poll(struct thaw__engine *e, struct thaw__ring_req *req, int fd, unsigned events,
		    bool multishot)
{
	if (!on_manager(e))
		return -EPERM;
	struct io_uring_sqe *sqe = get_sqe(e);
	if (!sqe)
		return -EBUSY;
	if (multishot)
		io_uring_prep_poll_multishot(sqe, fd, events);
	else
		io_uring_prep_poll_add(sqe, fd, events);
	queued(e, sqe, req);
	return 0;
}

int thaw__ring_timeout(struct thaw__engine *e, struct thaw__ring_req *req, uint64_t ns)
{
	if (!on_manager(e))
		return -EPERM;
	struct io_uring_sqe *sqe = get_sqe(e);
	if (!sqe)
		return -EBUSY;
	/* The kernel reads the timespec when the SQE is submitted, which may be later
	 * in this loop iteration; a slot per SQ entry keeps it alive until then. */
	struct __kernel_timespec *ts = &e->timeouts[sqe - e->ring.sq.sqes];
	ts->tv_sec = (long long)(ns / 1000000000u);
	ts->tv_nsec = (long long)(ns % 1000000000u);
	io_uring_prep_timeout(sqe, ts, 0, 0);
	queued(e, sqe, req);
	return 0;
}

int thaw__ring_cancel(struct thaw__engine *e, struct thaw__ring_req *req)
{
	if (!on_manager(e))
		return -EPERM;
	struct io_uring_sqe *sqe = get_sqe(e);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, 0);
	queued(e, sqe, &e->cancel_req);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

static int arm_poll(struct thaw__engine *e, struct thaw__ring_req *req, int fd, bool *armed)
{
	struct io_uring_sqe *sqe = get_sqe(e);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	queued(e, sqe, req);
	*armed = true;
	return 0;
}

/*
 * One of our multishot polls completed. An error on the fd ends the loop
 * (the source can no longer be served); an ended multishot (the kernel does
 * that, e.g. when the CQ overflows) is re-armed unless we cancelled it.
 * Returns whether the fd is usable.
 */
static bool own_poll(struct thaw__engine *e, struct thaw__ring_req *req, int fd, bool *armed,
		     int res, bool more, const char *what)
{
	bool failed = res > 0 && (res & (POLLERR | POLLNVAL));
	if (failed && !e->stopping && !e->polls_cancelled) {
		thaw__err(e->log, "%s: poll reports %s; the engine stops", what,
			  res & POLLNVAL ? "POLLNVAL" : "POLLERR");
		thaw__engine_fail(e, -EIO);
	}
	if (more)
		return !failed;
	*armed = false;
	if (failed || e->polls_cancelled)
		return !failed;
	thaw__debug(e->log, "%s: multishot poll ended (%d), re-arming", what, res);
	if (arm_poll(e, req, fd, armed) < 0)
		thaw__err(e->log, "%s: cannot re-arm poll: ring full", what);
	return true;
}

static void uffd_ready(struct thaw__ring_req *req, int res, bool more)
{
	struct thaw__engine *e = container_of(req, struct thaw__engine, uffd_req);
	if (own_poll(e, req, e->uffd, &e->uffd_armed, res, more, "userfaultfd") && res > 0 &&
	    (res & POLLIN))
		thaw__engine_drain(e);
}

static void efd_ready(struct thaw__ring_req *req, int res, bool more)
{
	struct thaw__engine *e = container_of(req, struct thaw__engine, efd_req);
	uint64_t v;
	if (own_poll(e, req, e->efd, &e->efd_armed, res, more, "engine eventfd") && res > 0 &&
	    read(e->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		thaw__err(e->log, "engine eventfd: read failed: %s", strerror(errno));
}

static void cancel_done(struct thaw__ring_req *req, int res, bool more)
{
	/* -ENOENT / -EALREADY just mean the target finished first; its own CQE says how. */
}

struct cqe_copy {
	struct thaw__ring_req *req;
	int res;
	bool more, urgent; /* urgent read before any done() runs: one may free req */
};

static void complete(struct thaw__engine *e, struct cqe_copy *c)
{
	if (!c->more) {
		e->inflight--;
		if (is_own(e, c->req))
			e->own_inflight--;
	}
	c->req->done(c->req, c->res, c->more);
}

/*
 * Reap completions in batches. The CQEs are copied out first so done()
 * callbacks may submit freely, and uffd readiness is handled before the
 * rest of its batch: a fault jumps ahead of background completions.
 * Returns whether anything was reaped.
 */
static bool reap(struct thaw__engine *e)
{
	struct io_uring_cqe *cqes[THAW__CQE_BATCH];
	struct cqe_copy batch[THAW__CQE_BATCH];
	bool any = false;
	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&e->ring, cqes, THAW__CQE_BATCH);
		if (!n)
			return any;
		any = true;
		for (unsigned i = 0; i < n; i++) {
			batch[i].req = io_uring_cqe_get_data(cqes[i]);
			batch[i].res = cqes[i]->res;
			batch[i].more = cqes[i]->flags & IORING_CQE_F_MORE;
			batch[i].urgent = batch[i].req->urgent;
		}
		io_uring_cq_advance(&e->ring, n);
		/* A background completion may take milliseconds (a window of bytes read and
		 * copied out): what faults wait for is handled, and sent on, before it. */
		bool urgent = false;
		for (unsigned i = 0; i < n; i++)
			if (batch[i].urgent) {
				complete(e, &batch[i]);
				urgent = true;
			}
		if (urgent && e->ops->tick)
			e->ops->tick(e->ctx);
		/* A fault read meanwhile is served between them, not after the batch. */
		for (unsigned i = 0; i < n; i++)
			if (!batch[i].urgent) {
				complete(e, &batch[i]);
				thaw__engine_poll_faults(e);
			}
		if (e->ops->tick)
			e->ops->tick(e->ctx);
	}
}

static void cancel_own(struct thaw__engine *e, struct thaw__ring_req *req, bool armed)
{
	if (!armed)
		return;
	struct io_uring_sqe *sqe = get_sqe(e);
	if (!sqe) {
		thaw__err(e->log, "engine: ring full, cannot cancel own poll");
		return;
	}
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, 0);
	queued(e, sqe, &e->cancel_req);
}

/* Consecutive io_uring_enter failures after which the drain is abandoned. */
#define THAW__ENTER_RETRIES 64

/*
 * THAW__SPIN_NS (uffd_priv.h): how long the manager stays awake after a fault.
 * Returns whether it reaped anything: then the loop must look at its state
 * again before it sleeps, since what it reaped may have been the eventfd's
 * wake-up for a stop or a fork's park, and no other wake-up follows.
 */
static bool spin_after_fault(struct thaw__engine *e)
{
	bool any = false;
	while (!__atomic_load_n(&e->park, __ATOMIC_RELAXED) && !e->stopping &&
	       !atomic_load_explicit(&e->stop_requested, memory_order_relaxed) &&
	       thaw__now_ns() - atomic_load_explicit(&e->last_fault_ns, memory_order_relaxed) <
		       THAW__SPIN_NS) {
		/* Submits what tick() queued and runs the ring's task work, never sleeping. */
		int ret = io_uring_submit_and_get_events(&e->ring);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			break; /* the blocking wait in the loop meets it again and reports it */
		if (reap(e))
			any = true;
		else
			sched_yield();
	}
	return any;
}

/* After a fork the parked manager took part in: what it read meanwhile, in order. */
static void replay_held(struct thaw__engine *e)
{
	for (size_t i = 0; i < e->nheld; i++)
		thaw__engine_take_msg(e, &e->held[i]);
	e->nheld = 0;
	if (e->events)
		pthread_rwlock_unlock(&e->layout_lock);
	thaw__engine_serve_faults(e);
}

static int loop(struct thaw__engine *e)
{
	unsigned failures = 0;
	for (;;) {
		if (thaw__fork_park_point(e))
			replay_held(e);
		if (!e->stopping &&
		    atomic_load_explicit(&e->stop_requested, memory_order_acquire)) {
			e->stopping = true;
			thaw__debug(e->log, "engine: stopping, %u ring requests outstanding",
				    e->inflight - e->own_inflight);
			if (e->ops->stop)
				e->ops->stop(e->ctx);
		}
		/* Faults are still served while the source's requests drain. */
		if (e->stopping && !e->polls_cancelled && e->inflight == e->own_inflight) {
			e->polls_cancelled = true;
			cancel_own(e, &e->uffd_req, e->uffd_armed);
			cancel_own(e, &e->efd_req, e->efd_armed);
		}
		if (e->polls_cancelled && e->inflight == 0)
			return e->loop_err;
		if (spin_after_fault(e))
			continue;
		/* One submit per iteration; with DEFER_TASKRUN, task work (poll wake-ups,
		 * read completions) only runs inside this wait. */
		int ret = io_uring_submit_and_wait(&e->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME) {
			thaw__err(e->log, "engine: io_uring_enter failed: %s", strerror(-ret));
			thaw__engine_fail(e, ret);
			if (++failures >= THAW__ENTER_RETRIES) {
				/* Tearing the ring down cancels what is left in the kernel;
				 * those requests' done() never runs. */
				thaw__err(e->log, "engine: abandoning %u ring requests",
					  e->inflight);
				return ret;
			}
		} else {
			failures = 0;
		}
		reap(e);
	}
}

static int ring_setup(struct thaw__engine *e)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN };
	int ret = io_uring_queue_init_params(e->ring_entries, &e->ring, &p);
	if (ret == -EINVAL) {
		thaw__debug(e->log, "engine: io_uring refuses SINGLE_ISSUER|DEFER_TASKRUN, using "
				    "plain flags");
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(e->ring_entries, &e->ring, &p);
	}
	if (ret < 0) {
		thaw__err(e->log, "engine: io_uring_queue_init(%u) failed: %s", e->ring_entries,
			  strerror(-ret));
		return ret;
	}
	e->timeouts = calloc(e->ring.sq.ring_entries, sizeof(*e->timeouts));
	if (!e->timeouts) {
		io_uring_queue_exit(&e->ring);
		return -ENOMEM;
	}
	e->ring_up = true;
	e->uffd_req.done = uffd_ready;
	e->uffd_req.urgent = true;
	e->efd_req.done = efd_ready;
	e->cancel_req.done = cancel_done;
	ret = arm_poll(e, &e->uffd_req, e->uffd, &e->uffd_armed);
	if (!ret)
		ret = arm_poll(e, &e->efd_req, e->efd, &e->efd_armed);
	return ret;
}

static void ring_teardown(struct thaw__engine *e)
{
	if (!e->ring_up)
		return;
	e->ring_up = false;
	io_uring_queue_exit(&e->ring);
	free(e->timeouts);
	e->timeouts = NULL;
}

static void setup_finished(struct thaw__engine *e, int err)
{
	pthread_mutex_lock(&e->lock);
	e->setup_err = err;
	e->setup_done = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

static void *manager_main(void *arg)
{
	struct thaw__engine *e = arg;
	e->mgr = pthread_self();
	int ret = ring_setup(e);
	if (ret < 0) {
		ring_teardown(e);
		setup_finished(e, ret);
		return NULL;
	}
	if (e->ops->start) {
		ret = e->ops->start(e->ctx, e);
		if (ret < 0) {
			/* The source may have queued requests before failing: let stop()
			 * cancel them and drain, then report the failure to run(). */
			atomic_store(&e->stop_requested, true);
			loop(e);
			e->loop_err = 0; /* run() reports the start error instead */
			ring_teardown(e);
			setup_finished(e, ret);
			return NULL;
		}
	}
	setup_finished(e, 0);
	loop(e); /* its error, if any, is in e->loop_err */
	if (!e->stopping && e->ops->stop)
		e->ops->stop(e->ctx); /* abandoned the ring: still tell the source */
	thaw__fork_mgr_exit(e);
	ring_teardown(e);
	thaw__debug(e->log, "engine: manager thread ends (%d)", e->loop_err);
	return NULL;
}

int thaw__engine_run(struct thaw__engine *e)
{
	if (e->ran)
		return -EALREADY;
	e->ran = true;
	/* The manager thread starts with signals blocked: the application's handlers
	 * should not run there, and it should not see EINTR storms. Faults the thread
	 * itself causes (SIGSEGV, SIGBUS...) are synchronous and still delivered. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int ret = pthread_create(&e->thread, NULL, manager_main, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		thaw__err(e->log, "engine: cannot start the manager thread: %s", strerror(ret));
		return -ret;
	}
	e->thread_live = true;
	pthread_mutex_lock(&e->lock);
	while (!e->setup_done)
		pthread_cond_wait(&e->cond, &e->lock);
	ret = e->setup_err;
	pthread_mutex_unlock(&e->lock);
	if (ret < 0) {
		pthread_join(e->thread, NULL);
		e->thread_live = false;
	} else if (!e->adopted && (e->features & UFFD_FEATURE_EVENT_FORK)) {
		thaw__fork_register(e);
	}
	return ret;
}

void thaw__engine_notify(struct thaw__engine *e)
{
	thaw__engine_kick(e);
}

void thaw__engine_request_stop(struct thaw__engine *e)
{
	atomic_store_explicit(&e->stop_requested, true, memory_order_release);
	thaw__engine_kick(e);
}

int thaw__engine_join(struct thaw__engine *e)
{
	if (e->thread_live) {
		pthread_join(e->thread, NULL);
		e->thread_live = false;
	}
	thaw__fork_unregister(e);
	return e->loop_err;
}

void thaw__engine_free(struct thaw__engine *e)
{
	if (!e)
		return;
	if (e->thread_live) {
		thaw__engine_request_stop(e);
		thaw__engine_join(e);
	}
	if (e->uffd >= 0 && !e->keep_uffd)
		close(e->uffd);
	if (e->efd >= 0)
		close(e->efd);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	pthread_rwlock_destroy(&e->layout_lock);
	thaw__range_set_free(&e->removed);
	thaw__uffd_grown_free(e->faults, e->faults_cap, sizeof(*e->faults));
	thaw__uffd_grown_free(e->held, e->held_cap, sizeof(*e->held));
	free(e);
}
