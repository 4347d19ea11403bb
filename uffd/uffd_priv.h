/* SPDX-License-Identifier: MIT */
/*
 * Private to uffd/: the engine's state and the userfaultfd definitions that
 * Debian 12's linux-libc-dev (6.1) lacks although the running kernel has them.
 */
#ifndef THAW_UFFD_PRIV_H
#define THAW_UFFD_PRIV_H

#include <errno.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "engine.h"
#include "log.h"
#include "range_set.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC	    0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
/* Values from include/uapi/linux/userfaultfd.h since Linux 6.6. */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated; /* written by the kernel: bytes poisoned or -errno */
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#define THAW__MSG_BATCH 64

/*
 * How long a handler stays awake after handing out or answering a fault (the
 * manager, and the bare floor it is measured against, so both wait alike). A
 * thread touching restored memory faults again microseconds after it is
 * woken; a handler asleep by then must itself be woken, and when the kernel
 * does that on the other CPU it costs ~40 us on this kind of VM (a zero-chunk
 * fault measured 56-61 us with the manager on the other CPU, 20-22 us with
 * this spin; on the same CPU both ~10 us). Counted from the answer, not only
 * from the read: a data fault takes longer than this to answer, and the next
 * fault comes right after it. Each idle round yields, so a toucher sharing
 * the CPU still runs.
 */
#define THAW__SPIN_NS	50000ull
#define THAW__CQE_BATCH 64
/* Inside a long piece of background work, the uffd is looked at no more often than this. */
#define THAW__LOOK_GAP_NS 30000ull

struct thaw__engine {
	const struct thaw__engine_ops *ops;
	void *ctx;
	const struct thaw__logger *log;
	int uffd;
	int efd; /* eventfd behind notify and request_stop */
	bool user_mode_only;
	bool adopted;
	bool keep_uffd;	   /* thaw__engine_keep_uffd: left open at free */
	bool poison;	   /* UFFDIO_POISON usable on this uffd */
	uint64_t features; /* negotiated UFFD_FEATURE_* (adopted: what the kernel offers) */
	uint64_t page_size;
	unsigned ring_entries;

	/* Thread lifecycle, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool setup_done;
	int setup_err;
	bool thread_live; /* created and not yet joined */
	bool ran;
	pthread_t thread;
	int loop_err;
	atomic_bool stop_requested;

	/* Manager thread only (mgr and ring_up are also read by the ring calls' guard). */
	pthread_t mgr;
	bool ring_up;
	struct io_uring ring;
	struct __kernel_timespec *timeouts; /* one per SQ slot, read by the kernel at submit */
	unsigned inflight;		    /* ring requests whose last CQE has not arrived */
	unsigned own_inflight;		    /* of which the engine's own polls and cancels */
	struct thaw__ring_req uffd_req, efd_req, cancel_req;
	bool uffd_armed, efd_armed;
	bool stopping; /* stop() has run */
	bool polls_cancelled;
	/* CLOCK_MONOTONIC when faults were last handed to the source or answered (any thread) */
	atomic_uint_fast64_t last_fault_ns;
	struct uffd_msg msgs[THAW__MSG_BATCH];
	/* thaw__engine_poll_faults: when the uffd was last looked at, and whether a
	 * read or the serving of its faults is under way (no nesting into those). */
	uint64_t last_look_ns;
	bool reading;

	/*
	 * Non-cooperative events. The manager holds layout_lock for writing
	 * across every read of the uffd and the handling of the events it
	 * returns (any read may return one, so fault-only reads take it too);
	 * installs on other threads hold it for reading (thaw__engine_hold), so
	 * none lands in a range between the kernel learning of its removal and
	 * us. Only taken when events can arrive (events).
	 */
	bool events;
	pthread_rwlock_t layout_lock;
	struct thaw__range_set removed; /* pages removed by the target: zeros, never data */
	struct thaw__fault *faults;	/* faults read, waiting for the batch's events */
	size_t nfaults, faults_cap;

	/*
	 * Forks of this process (fork.c). Under lock: park asks the manager to
	 * stop at a safe point, parked says it has, mgr_exited that it never
	 * will again. While parked it only reads the uffd into held (mapped,
	 * never malloc'd), keeping layout_lock, and replays them afterwards.
	 */
	bool fork_registered;
	struct thaw__engine *fork_next;
	bool park, parked, mgr_exited;
	struct uffd_msg *held;
	size_t nheld, held_cap;
};

struct thaw__fault {
	uint64_t addr, flags;
};

/* engine_msg.c: one message read while parked, replayed now; layout_lock held for writing. */
void thaw__engine_take_msg(struct thaw__engine *e, const struct uffd_msg *m);
/* engine_msg.c: faults read by the last drain, handed to the source. */
void thaw__engine_serve_faults(struct thaw__engine *e);
/* engine_msg.c, manager thread: read every queued message, then serve the faults. */
void thaw__engine_drain(struct thaw__engine *e);
/*
 * The loop ends on its own when the uffd or the ring fails: record the first
 * error and stop as if asked, so stop() runs and the source's requests drain.
 * Manager thread.
 */
static inline void thaw__engine_fail(struct thaw__engine *e, int err)
{
	if (!e->loop_err)
		e->loop_err = err;
	atomic_store_explicit(&e->stop_requested, true, memory_order_release);
}
/* Wake the manager thread through its eventfd. Any thread. */
static inline void thaw__engine_kick(struct thaw__engine *e)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the loop has a wake-up pending anyway. */
	if (write(e->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		thaw__err(e->log, "engine eventfd: write failed: %s", strerror(errno));
}

/* fork.c: park this process's in-process managers across its forks. */
void thaw__fork_register(struct thaw__engine *e);
void thaw__fork_unregister(struct thaw__engine *e);
/*
 * Manager thread: if a fork asked, park until it is done, holding what the
 * uffd gave meanwhile (e->held) and, with events, the layout lock. true when
 * it parked: the caller replays the held messages and drops the lock.
 */
bool thaw__fork_park_point(struct thaw__engine *e);
/* Manager thread: it ends; a fork waiting for it to park need not. */
void thaw__fork_mgr_exit(struct thaw__engine *e);

/* uffd_open.c: open with exactly these flags (dev first, then syscall); fd or -errno. */
int thaw__uffd_open_flags(int flags);
/* UFFDIO_API handshake asking for want; *got receives what the kernel enabled. */
int thaw__uffd_api(int fd, uint64_t want, uint64_t *got);
/* Features this kernel offers, learnt on a throwaway uffd opened with flags. */
int thaw__uffd_probe(int flags, uint64_t *features);
/* Writes the names of the UFFD_FEATURE_* bits in mask into buf ("A|B"). */
void thaw__uffd_feature_names(uint64_t mask, char *buf, size_t len);

#endif
