/* SPDX-License-Identifier: MIT */
/*
 * Forks of a process whose own memory an engine serves. glibc's fork()
 * takes every malloc arena lock (and stdio's list lock) before the fork
 * system call and drops them after it, and the system call waits until
 * the manager has read the FORK event. A manager that called malloc or
 * free meanwhile would wait for the forking thread, which waits for it.
 *
 * So before glibc takes those locks (a pthread_atfork prepare handler),
 * every such manager is asked to park: it finishes what it is doing and
 * from then on only reads its uffd, holding the messages (events and faults
 * alike, in order) in memory it mapped itself and keeping the layout lock,
 * so no install lands between an event and its handling. After the fork
 * (the parent handler) each one replays what it read, FORK included
 * (engine.c, which this registry never calls: it only wakes the manager
 * through its eventfd), which creates the child's restore with the locks free.
 *
 * The registry is process-wide because fork is; it only lists engines
 * whose manager thread runs, and the prepare and parent handlers hold its
 * lock across the fork, so registering waits for a fork in progress.
 */
#include "uffd_priv.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thaw__engine *fork_engines;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&fork_lock);
	for (struct thaw__engine *e = fork_engines; e; e = e->fork_next) {
		pthread_mutex_lock(&e->lock);
		__atomic_store_n(&e->park, true, __ATOMIC_RELEASE);
		thaw__engine_kick(e);
		while (!e->parked && !e->mgr_exited)
			pthread_cond_wait(&e->cond, &e->lock);
		pthread_mutex_unlock(&e->lock);
	}
}

static void fork_parent(void)
{
	for (struct thaw__engine *e = fork_engines; e; e = e->fork_next) {
		pthread_mutex_lock(&e->lock);
		__atomic_store_n(&e->park, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
	}
	pthread_mutex_unlock(&fork_lock);
}

static void fork_child(void)
{
	/* The child has no manager threads: its copies of these engines are inert. */
	pthread_mutex_unlock(&fork_lock);
}

static void fork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void thaw__fork_register(struct thaw__engine *e)
{
	pthread_once(&fork_once, fork_init);
	pthread_mutex_lock(&fork_lock);
	e->fork_next = fork_engines;
	fork_engines = e;
	e->fork_registered = true;
	pthread_mutex_unlock(&fork_lock);
}

void thaw__fork_unregister(struct thaw__engine *e)
{
	if (!e->fork_registered)
		return;
	pthread_mutex_lock(&fork_lock);
	for (struct thaw__engine **p = &fork_engines; *p; p = &(*p)->fork_next) {
		if (*p == e) {
			*p = e->fork_next;
			break;
		}
	}
	e->fork_registered = false;
	pthread_mutex_unlock(&fork_lock);
}

void thaw__fork_mgr_exit(struct thaw__engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->mgr_exited = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* Parked: read what the uffd holds, keep it for later. No malloc, no logging. */
static void hold_messages(struct thaw__engine *e)
{
	for (;;) {
		ssize_t n = read(e->uffd, e->msgs, sizeof(e->msgs));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		size_t count = (size_t)n / sizeof(e->msgs[0]);
		void *p = e->held;
		int err = thaw__uffd_grow(&p, &e->held_cap, e->nheld + count, sizeof(*e->held));
		e->held = p;
		if (err)
			return; /* left in the kernel's queue: read again after the fork */
		for (size_t i = 0; i < count; i++)
			e->held[e->nheld++] = e->msgs[i];
	}
}

bool thaw__fork_park_point(struct thaw__engine *e)
{
	if (!__atomic_load_n(&e->park, __ATOMIC_ACQUIRE))
		return false;
	if (e->events)
		pthread_rwlock_wrlock(&e->layout_lock);
	pthread_mutex_lock(&e->lock);
	e->parked = true;
	pthread_cond_broadcast(&e->cond);
	while (__atomic_load_n(&e->park, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&e->lock);
		/* The FORK event arrives here; a short poll keeps the unpark prompt. */
		struct pollfd p = { .fd = e->uffd, .events = POLLIN };
		poll(&p, 1, 1);
		hold_messages(e);
		pthread_mutex_lock(&e->lock);
	}
	e->parked = false;
	pthread_mutex_unlock(&e->lock);
	hold_messages(e);
	return true;
}
