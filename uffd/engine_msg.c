/* SPDX-License-Identifier: MIT */
/*
 * The engine's messages: reading the uffd, the non-cooperative events
 * (REMOVE, UNMAP, REMAP, FORK) handled as they are read, the faults kept
 * for after the drain and handed to the source, and the layout lock that
 * keeps installs out of a range the target is changing. engine.c's loop
 * calls in here; nothing here calls the loop.
 */
#include "uffd_priv.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void removed_changed(struct thaw__engine *e, int err, const char *what)
{
	/* Without the set we could write snapshot data where zeros belong: stop. */
	if (err) {
		thaw__err(e->log, "userfaultfd: recording %s: %s; the engine stops", what,
			  strerror(-err));
		thaw__engine_fail(e, err);
	}
}

/* A non-fault message; the caller holds layout_lock for writing. */
static void dispatch_event(struct thaw__engine *e, const struct uffd_msg *m)
{
	const struct thaw__engine_ops *ops = e->ops;
	switch (m->event) {
	case UFFD_EVENT_REMOVE:
		removed_changed(
			e, thaw__range_set_add(&e->removed, m->arg.remove.start, m->arg.remove.end),
			"a REMOVE");
		thaw__debug(e->log, "userfaultfd: REMOVE [0x%llx, 0x%llx)",
			    (unsigned long long)m->arg.remove.start,
			    (unsigned long long)m->arg.remove.end);
		if (ops->remove)
			ops->remove(e->ctx, m->arg.remove.start, m->arg.remove.end);
		return;
	case UFFD_EVENT_UNMAP:
		removed_changed(
			e, thaw__range_set_cut(&e->removed, m->arg.remove.start, m->arg.remove.end),
			"an UNMAP");
		thaw__debug(e->log, "userfaultfd: UNMAP [0x%llx, 0x%llx)",
			    (unsigned long long)m->arg.remove.start,
			    (unsigned long long)m->arg.remove.end);
		if (ops->unmap)
			ops->unmap(e->ctx, m->arg.remove.start, m->arg.remove.end);
		return;
	case UFFD_EVENT_REMAP:
		removed_changed(e,
				thaw__range_set_move(&e->removed, m->arg.remap.from,
						     m->arg.remap.to, m->arg.remap.len),
				"a REMAP");
		thaw__debug(e->log, "userfaultfd: REMAP 0x%llx -> 0x%llx (+0x%llx)",
			    (unsigned long long)m->arg.remap.from,
			    (unsigned long long)m->arg.remap.to,
			    (unsigned long long)m->arg.remap.len);
		if (ops->remap)
			ops->remap(e->ctx, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		return;
	case UFFD_EVENT_FORK:
		thaw__debug(e->log, "userfaultfd: FORK, child uffd %u", m->arg.fork.ufd);
		if (ops->fork) {
			ops->fork(e->ctx, (int)m->arg.fork.ufd);
		} else {
			/* Closing the child's uffd unregisters its copies: it runs on plain memory. */
			thaw__debug(e->log, "userfaultfd: FORK not handled, closing child uffd %u",
				    m->arg.fork.ufd);
			close((int)m->arg.fork.ufd);
		}
		return;
	default:
		thaw__warn(e->log, "userfaultfd: unknown event %u", m->event);
	}
}

static void keep_fault(struct thaw__engine *e, const struct uffd_msg *m)
{
	void *p = e->faults;
	int err = thaw__uffd_grow(&p, &e->faults_cap, e->nfaults + 1, sizeof(*e->faults));
	e->faults = p;
	if (err) {
		thaw__err(e->log, "userfaultfd: no memory to keep a fault; the engine stops");
		thaw__engine_fail(e, err);
		return;
	}
	e->faults[e->nfaults++] = (struct thaw__fault){
		.addr = m->arg.pagefault.address & ~(e->page_size - 1),
		.flags = m->arg.pagefault.flags,
	};
}

void thaw__engine_take_msg(struct thaw__engine *e, const struct uffd_msg *m)
{
	if (m->event == UFFD_EVENT_PAGEFAULT)
		keep_fault(e, m);
	else
		dispatch_event(e, m);
}

/*
 * Read every queued message. The kernel hands out pending faults before
 * pending events, so a fault may come ahead of the REMOVE that explains it:
 * events are handled as they are read, faults only after the whole drain.
 * A short read means the queue was empty when the kernel looked; anything
 * queued after that wakes the multishot poll again, so the EAGAIN read a
 * full drain would end with is skipped on the hot path.
 */
static void read_events(struct thaw__engine *e)
{
	bool was = e->reading;
	e->reading = true;
	e->last_look_ns = thaw__now_ns();
	if (e->events)
		pthread_rwlock_wrlock(&e->layout_lock);
	for (;;) {
		ssize_t n = read(e->uffd, e->msgs, sizeof(e->msgs));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				thaw__err(e->log, "userfaultfd: read failed: %s", strerror(errno));
			break;
		}
		size_t count = (size_t)n / sizeof(e->msgs[0]);
		for (size_t i = 0; i < count; i++)
			thaw__engine_take_msg(e, &e->msgs[i]);
		if (count < THAW__MSG_BATCH)
			break;
	}
	if (e->events)
		pthread_rwlock_unlock(&e->layout_lock);
	e->reading = was;
}

/*
 * Only the thread identity, not ring_up: installs run on workers while the
 * manager tears its ring down, and hold and release must agree.
 */
static bool is_manager_thread(const struct thaw__engine *e)
{
	return pthread_equal(pthread_self(), e->mgr);
}

/*
 * How long an install answered -EAGAIN keeps being retried. The kernel
 * answers -EAGAIN until the thread that caused the event runs again after
 * we read it (only then is mmap_changing dropped): normally microseconds,
 * longer only if that thread is stopped.
 */
#define THAW__LAYOUT_WAIT_NS (10ull * 1000000000ull)

bool thaw__engine_await_layout(struct thaw__engine *e, uint64_t *t0)
{
	uint64_t now = thaw__now_ns();
	if (!*t0)
		*t0 = now;
	else if (now - *t0 > THAW__LAYOUT_WAIT_NS)
		return false;
	/* The manager is the one who reads the event that blocks the install. */
	if (is_manager_thread(e))
		read_events(e);
	sched_yield();
	return true;
}

/* A removed page reads as zeros: the source never sees the fault. */
static void fault_on_removed(struct thaw__engine *e, uint64_t addr)
{
	uint64_t t0 = 0;
	int err;
	while ((err = thaw__install_zero(e, addr, e->page_size)) == -EAGAIN &&
	       thaw__engine_await_layout(e, &t0))
		;
	if (err == -EAGAIN)
		thaw__err(e->log,
			  "userfaultfd: zero page for removed 0x%llx: layout keeps changing",
			  (unsigned long long)addr);
	else if (err && err != -ESRCH)
		thaw__err(e->log, "userfaultfd: zero page for removed 0x%llx: %s",
			  (unsigned long long)addr, strerror(-err));
}

void thaw__engine_drain(struct thaw__engine *e)
{
	read_events(e);
	thaw__engine_serve_faults(e);
}

/* Faults were read or answered: the manager stays awake a while for the next one. */
void thaw__engine_keep_awake(struct thaw__engine *e)
{
	atomic_store_explicit(&e->last_fault_ns, thaw__now_ns(), memory_order_relaxed);
}

void thaw__engine_serve_faults(struct thaw__engine *e)
{
	/* Callbacks may read more messages (after -EAGAIN): the list can grow meanwhile. */
	if (e->nfaults)
		thaw__engine_keep_awake(e);
	bool was = e->reading;
	e->reading = true;
	for (size_t i = 0; i < e->nfaults; i++) {
		struct thaw__fault f = e->faults[i];
		if (thaw__range_set_has(&e->removed, f.addr))
			fault_on_removed(e, f.addr);
		else
			e->ops->fault(e->ctx, f.addr, f.flags);
	}
	e->nfaults = 0;
	e->reading = was;
}

void thaw__engine_poll_faults(struct thaw__engine *e)
{
	if (!e->ring_up || !is_manager_thread(e) || e->reading || e->stopping ||
	    __atomic_load_n(&e->park, __ATOMIC_RELAXED))
		return;
	uint64_t now = thaw__now_ns();
	if (now - e->last_look_ns < THAW__LOOK_GAP_NS)
		return;
	e->last_look_ns = now;
	/* Most looks find nothing: ask first, without the layout lock the read takes. */
	struct pollfd p = { .fd = e->uffd, .events = POLLIN };
	if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
		return;
	read_events(e);
	if (!e->nfaults)
		return;
	thaw__engine_serve_faults(e);
	if (e->ops->urgent) {
		e->reading = true; /* what urgent() starts may land back here: not again */
		e->ops->urgent(e->ctx);
		e->reading = false;
	}
}

void thaw__engine_hold(struct thaw__engine *e)
{
	if (e->events && !is_manager_thread(e))
		pthread_rwlock_rdlock(&e->layout_lock);
}

void thaw__engine_release(struct thaw__engine *e)
{
	if (e->events && !is_manager_thread(e))
		pthread_rwlock_unlock(&e->layout_lock);
}

int thaw__engine_inherit_removed(struct thaw__engine *child, const struct thaw__engine *e)
{
	return thaw__range_set_copy(&child->removed, &e->removed);
}
