/* SPDX-License-Identifier: MIT */
/*
 * The kernel-facing engine: one userfaultfd, one manager thread, one
 * io_uring ring. It knows addresses and ranges, never snapshots: whoever
 * owns the memory (a "source") gets fault callbacks on the manager thread,
 * submits its own I/O on the same ring, and installs pages through the
 * thaw__install_* calls.
 */
#ifndef THAW_UFFD_ENGINE_H
#define THAW_UFFD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct thaw__engine;

/*
 * One request on the engine's ring. The submitter embeds it in its own
 * state, keeps it alive until done() runs with more == 0, and recovers
 * its state with container_of-style arithmetic.
 */
struct thaw__ring_req {
	/* res: the CQE result (bytes, revents, or -errno); more: a multishot
	 * request that will complete again. Runs on the manager thread. */
	void (*done)(struct thaw__ring_req *req, int res, bool more);
	/* Someone waits on it (a fault's reply): completed ahead of the rest of its
	 * batch, and tick() runs right after, before the others. */
	bool urgent;
};

/* Callbacks into the source; all run on the manager thread. */
struct thaw__engine_ops {
	/* Once, before the first event: set up ring users (store streams). On
	 * failure stop() still runs and the ring drains; run() returns the error. */
	int (*start)(void *ctx, struct thaw__engine *e);
	/* A missing-page fault at page-aligned addr; flags are UFFD_PAGEFAULT_FLAG_*. */
	void (*fault)(void *ctx, uint64_t addr, uint64_t flags);
	/* After each batch of events and completions: submit queued work. */
	void (*tick)(void *ctx);
	/* Optional: after faults were served by thaw__engine_poll_faults, in the middle of
	 * other work: send what they need (fault-lane reads) and nothing else. */
	void (*urgent)(void *ctx);
	/* Non-cooperative events, when the engine was asked for them. */
	void (*remove)(void *ctx, uint64_t start, uint64_t end);
	void (*unmap)(void *ctx, uint64_t start, uint64_t end);
	void (*remap)(void *ctx, uint64_t from, uint64_t to, uint64_t len);
	void (*fork)(void *ctx, int child_uffd); /* child_uffd owned by the callee */
	/* Once, whenever the loop ends (asked to, or on its own error): cancel
	 * ring users. The loop then drains every outstanding ring request
	 * before the thread ends. */
	void (*stop)(void *ctx);
};

struct thaw__engine_opts {
	const struct thaw__engine_ops *ops;
	void *ctx;
	const struct thaw__logger *log; /* must outlive the engine */
	int uffd;	   /* adopt this userfaultfd (ownership passes), or -1 to create one */
	uint64_t features; /* extra UFFD_FEATURE_* to ask for (event kinds) */
	/* Ask for REMOVE, UNMAP, REMAP and FORK, so memory the engine serves in its own
	 * process behaves like anonymous memory; FORK only where the kernel allows it
	 * (CAP_SYS_PTRACE), with a warning otherwise. Ignored for an adopted uffd. */
	bool layout_events;
	unsigned ring_entries; /* 0 = 256 */
};

/* Create the uffd (or adopt opts->uffd) and probe features; no thread yet. */
int thaw__engine_new(const struct thaw__engine_opts *opts, struct thaw__engine **out);
/* Register [addr, addr+len) for missing faults; checks COPY/ZEROPAGE/POISON are allowed. */
int thaw__engine_register(struct thaw__engine *e, uint64_t addr, uint64_t len);
int thaw__engine_unregister(struct thaw__engine *e, uint64_t addr, uint64_t len);
/* Start the manager thread; returns once its ring is up (or its set-up error). */
int thaw__engine_run(struct thaw__engine *e);
/*
 * Manager thread, from inside a long piece of background work (a large
 * transfer's bytes arriving, a window copied out): read the uffd and serve
 * the faults queued there, then urgent(), so a fault never waits for that
 * work to end. Looks at most every THAW__LOOK_GAP_NS and never nests into
 * a read of the uffd or the serving of faults; a no-op elsewhere.
 */
void thaw__engine_poll_faults(struct thaw__engine *e);
/* Any thread: make the loop run tick() soon. */
void thaw__engine_notify(struct thaw__engine *e);
/*
 * Any thread, after answering a fault: the manager stays awake a little
 * from now (THAW__SPIN_NS), as after reading one, since the thread just
 * woken is likely to fault again at once.
 */
void thaw__engine_keep_awake(struct thaw__engine *e);
/* Any thread: ask the loop to stop (stop() runs on the manager thread). */
void thaw__engine_request_stop(struct thaw__engine *e);
/* Wait for the manager thread to end; returns the loop's error or 0. */
int thaw__engine_join(struct thaw__engine *e);
/* Stops and joins if still running, closes the uffd and ring. NULL is a no-op. */
void thaw__engine_free(struct thaw__engine *e);
/* Do not close the uffd when freeing: registered pages the engine could fill
 * with nothing right must not fall back to the kernel's zero fill. */
void thaw__engine_keep_uffd(struct thaw__engine *e);
/*
 * Has the target's address space gone (its process exited or exec'd)? Asks
 * the kernel with a zero-page install at probe, an address the caller knows
 * holds none of the memory it serves: -ENOENT (nothing registered there)
 * means alive, -ESRCH gone. Any thread.
 */
bool thaw__engine_target_gone(struct thaw__engine *e, uint64_t probe);
/* True when the uffd had to be created with UFFD_USER_MODE_ONLY. */
bool thaw__engine_user_mode_only(const struct thaw__engine *e);
int thaw__engine_uffd(const struct thaw__engine *e);

/* Ring requests: manager thread only. Return 0 or -errno (ring full → -EBUSY). */
int thaw__ring_read(struct thaw__engine *e, struct thaw__ring_req *req, int fd, void *buf,
		    uint32_t len, uint64_t off);
int thaw__ring_poll(struct thaw__engine *e, struct thaw__ring_req *req, int fd, unsigned events,
		    bool multishot);
/* done() gets -ETIME when the timeout fires. */
int thaw__ring_timeout(struct thaw__engine *e, struct thaw__ring_req *req, uint64_t ns);
/* Cancel the poll or timeout behind req; its done() still runs (with -ECANCELED). */
int thaw__ring_cancel(struct thaw__engine *e, struct thaw__ring_req *req);

/*
 * Any thread but the manager: keep the target's layout still (events wait)
 * across a look-up of where a chunk goes and the installs that use it.
 * Never hold it across a wait for the manager. No-op on the manager thread
 * and when the engine gets no events.
 */
void thaw__engine_hold(struct thaw__engine *e);
void thaw__engine_release(struct thaw__engine *e);
/*
 * An install answered -EAGAIN (an event is not yet handled): wait a little
 * for the layout to settle, then retry the install. On the manager it reads
 * the waiting messages itself (their faults are served once the current
 * callback returns). *t0 starts at 0; false once it has waited too long.
 * Call without holding the layout.
 */
bool thaw__engine_await_layout(struct thaw__engine *e, uint64_t *t0);
/* Manager only, from the fork callback: child starts with e's removed ranges. */
int thaw__engine_inherit_removed(struct thaw__engine *child, const struct thaw__engine *e);

/*
 * Installs: any thread. Pages the target removed (REMOVE events) are never
 * written by a copy or a poison: those calls skip them; a fault on them is
 * answered with a zero page by the engine itself, never reaching fault().
 * Each returns 0 once every page of the range is present (pages that
 * already were, EEXIST, count as done), -EAGAIN when the address space is
 * changing (thaw__engine_await_layout, then retry), -ESRCH when the
 * target is gone, or another -errno. wake=false defers the wake-up.
 * After -EAGAIN, retry the same whole call: pages installed by the first
 * attempt answer EEXIST and are skipped.
 */
int thaw__install_copy(struct thaw__engine *e, uint64_t dst, const void *src, uint64_t len,
		       bool wake);
int thaw__install_zero(struct thaw__engine *e, uint64_t dst, uint64_t len);
int thaw__install_poison(struct thaw__engine *e, uint64_t dst, uint64_t len);
int thaw__install_wake(struct thaw__engine *e, uint64_t dst, uint64_t len);

/*
 * Open a userfaultfd (O_CLOEXEC | O_NONBLOCK), through /dev/userfaultfd or
 * the syscall, without UFFD_USER_MODE_ONLY when allowed; falls back to it
 * with a warning. *user_mode_only tells which. Returns the fd or -errno.
 */
int thaw__uffd_open(const struct thaw__logger *log, bool *user_mode_only);

#endif
