/* SPDX-License-Identifier: MIT */
/*
 * The uffd engine against the real kernel: a small source defined here
 * serves faults from an in-memory buffer (or a file read on the engine's
 * ring) through thaw__install_*.
 */
#include "thaw.h"
#include "uffd/engine.h"
#include "uffd/floor.h"
#include "uffd/uffd_priv.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static size_t PAGE;

/* ------------------------------------------------------------------ */
/* The test source                                                     */
/* ------------------------------------------------------------------ */

struct tsrc {
	struct thaw__engine *e;
	struct thaw__logger lg;
	char *base; /* registered region */
	size_t len;
	char *data;	  /* what the region must hold */
	long bad_page;	  /* a fault here is answered with poison; -1 none */
	atomic_bool zero; /* answer faults with zero pages */
	int file_fd;	  /* >= 0: read the page from this file on the ring */
	atomic_long faults, ticks, starts, stops, removes, unmaps, remaps, forks, reads;
	atomic_int err;
	/* Last event of each kind: REMOVE, UNMAP, REMAP (from, to, len), FORK (fd). */
	_Atomic uint64_t rm_start, rm_end, um_start, um_end, rp_from, rp_to, rp_len, fork_fd;
	/* Faults the engine had read and not yet served when the last REMOVE came. */
	_Atomic uint64_t rm_pending, rm_pending_addr;
	/* Hooks for cases that drive the ring themselves (manager thread). */
	int (*start_hook)(struct tsrc *s);
	void (*tick_hook)(struct tsrc *s);
	void (*stop_hook)(struct tsrc *s);
	void *hook;
};

struct rread {
	struct thaw__ring_req req;
	struct tsrc *s;
	uint64_t addr;
	char *buf;
};

static void note_err(struct tsrc *s, int err)
{
	int zero = 0;
	if (err < 0)
		atomic_compare_exchange_strong(&s->err, &zero, err);
}

static void rread_done(struct thaw__ring_req *req, int res, bool more)
{
	struct rread *r = container_of(req, struct rread, req);
	atomic_fetch_add(&r->s->reads, 1);
	if (res != (int)PAGE)
		note_err(r->s, res < 0 ? res : -EIO);
	else
		note_err(r->s, thaw__install_copy(r->s->e, r->addr, r->buf, PAGE, true));
	free(r->buf);
	free(r);
}

static void src_fault(void *ctx, uint64_t addr, uint64_t flags)
{
	struct tsrc *s = ctx;
	atomic_fetch_add(&s->faults, 1);
	uint64_t off = addr - (uint64_t)(uintptr_t)s->base;
	if (addr < (uint64_t)(uintptr_t)s->base || off >= s->len || addr % PAGE) {
		note_err(s, -ERANGE);
		return;
	}
	if (s->bad_page >= 0 && off / PAGE == (uint64_t)s->bad_page) {
		note_err(s, thaw__install_poison(s->e, addr, PAGE));
	} else if (s->zero) {
		note_err(s, thaw__install_zero(s->e, addr, PAGE));
	} else if (s->file_fd >= 0) {
		struct rread *r = calloc(1, sizeof(*r));
		r->buf = aligned_alloc(PAGE, PAGE);
		r->req.done = rread_done;
		r->s = s;
		r->addr = addr;
		int ret = thaw__ring_read(s->e, &r->req, s->file_fd, r->buf, (uint32_t)PAGE, off);
		if (ret < 0) {
			note_err(s, ret);
			free(r->buf);
			free(r);
		}
	} else {
		note_err(s, thaw__install_copy(s->e, addr, s->data + off, PAGE, true));
	}
}

static int src_start(void *ctx, struct thaw__engine *e)
{
	struct tsrc *s = ctx;
	atomic_fetch_add(&s->starts, 1);
	return s->start_hook ? s->start_hook(s) : 0;
}

static void src_tick(void *ctx)
{
	struct tsrc *s = ctx;
	atomic_fetch_add(&s->ticks, 1);
	if (s->tick_hook)
		s->tick_hook(s);
}

static void src_stop(void *ctx)
{
	struct tsrc *s = ctx;
	atomic_fetch_add(&s->stops, 1);
	if (s->stop_hook)
		s->stop_hook(s);
}

static void src_remove(void *ctx, uint64_t start, uint64_t end)
{
	struct tsrc *s = ctx;
	s->rm_start = start;
	s->rm_end = end;
	/* The manager thread calls this from its drain, which owns the fault list. */
	s->rm_pending = s->e->nfaults;
	s->rm_pending_addr = s->e->nfaults ? s->e->faults[0].addr : 0;
	atomic_fetch_add(&s->removes, 1);
}

static void src_unmap(void *ctx, uint64_t start, uint64_t end)
{
	struct tsrc *s = ctx;
	s->um_end = end; /* before start: the test waits on start */
	s->um_start = start;
	atomic_fetch_add(&s->unmaps, 1);
}

static void src_remap(void *ctx, uint64_t from, uint64_t to, uint64_t len)
{
	struct tsrc *s = ctx;
	s->rp_from = from;
	s->rp_to = to;
	s->rp_len = len;
	atomic_fetch_add(&s->remaps, 1);
}

static void src_fork(void *ctx, int child_uffd)
{
	struct tsrc *s = ctx;
	s->fork_fd = (uint64_t)child_uffd;
	if (child_uffd >= 0)
		close(child_uffd);
	atomic_fetch_add(&s->forks, 1);
}

static const struct thaw__engine_ops full_ops = {
	.start = src_start,
	.fault = src_fault,
	.tick = src_tick,
	.remove = src_remove,
	.unmap = src_unmap,
	.remap = src_remap,
	.fork = src_fork,
	.stop = src_stop,
};

/* Only what every engine needs: event kinds left NULL are logged and ignored. */
static const struct thaw__engine_ops min_ops = {
	.fault = src_fault,
	.tick = src_tick,
	.stop = src_stop,
};

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

static void tsrc_init(struct tsrc *s, size_t pages, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	PAGE = (size_t)sysconf(_SC_PAGESIZE);
	thaw__logger_init(&s->lg, NULL, NULL);
	s->len = pages * PAGE;
	s->base = map_anon(s->len);
	s->data = map_anon(s->len);
	test_fill_random(s->data, s->len, seed);
	s->bad_page = -1;
	s->file_fd = -1;
}

static int engine_new_or_skip(struct tsrc *s, const struct thaw__engine_ops *ops, uint64_t features,
			      int uffd)
{
	struct thaw__engine_opts o = {
		.ops = ops, .ctx = s, .log = &s->lg, .uffd = uffd, .features = features
	};
	int ret = thaw__engine_new(&o, &s->e);
	if (ret == -THAW_E_UFFD_FEATURE)
		test_skip(
			"kernel lacks a userfaultfd feature (UFFD_FEATURE_POISON or events 0x%llx)",
			(unsigned long long)features);
	if (ret == -ENOSYS)
		test_skip("no userfaultfd in this kernel");
	return ret;
}

/* Create, register the whole region and start the manager thread. */
static void tsrc_start(struct tsrc *s, const struct thaw__engine_ops *ops, uint64_t features)
{
	CHECK_OK(engine_new_or_skip(s, ops, features, -1));
	CHECK_OK(thaw__engine_register(s->e, (uint64_t)(uintptr_t)s->base, s->len));
	CHECK_OK(thaw__engine_run(s->e));
}

static void tsrc_finish(struct tsrc *s)
{
	thaw__engine_request_stop(s->e);
	CHECK_OK(thaw__engine_join(s->e));
	CHECK_EQ(atomic_load(&s->stops), 1);
	thaw__engine_free(s->e);
	s->e = NULL;
	CHECK_EQ(atomic_load(&s->err), 0);
}

/* Wait for *v to reach want (the manager thread's doing); fails after 5 s. */
static void wait_atomic(atomic_long *v, long want, const char *what)
{
	uint64_t deadline = test_now_ns() + 5000000000ull;
	while (atomic_load(v) < want) {
		CHECK_MSG(test_now_ns() < deadline, "waited 5 s for %s: %ld < %ld", what,
			  atomic_load(v), want);
		usleep(200);
	}
}

static void wait_u64(_Atomic uint64_t *v, uint64_t want, const char *what)
{
	uint64_t deadline = test_now_ns() + 5000000000ull;
	while (atomic_load(v) != want) {
		CHECK_MSG(test_now_ns() < deadline, "waited 5 s for %s: 0x%llx != 0x%llx", what,
			  (unsigned long long)atomic_load(v), (unsigned long long)want);
		usleep(200);
	}
}

static _Thread_local volatile char sink;

static void touch_all(const char *base, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		sink = base[i * PAGE];
}

static bool verbose(void)
{
	return getenv("THAW_TEST_VERBOSE") != NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t percentile(uint64_t *v, size_t n, unsigned pct)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(n - 1) * pct / 100];
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

static int t_open(void)
{
	struct thaw__logger lg;
	thaw__logger_init(&lg, NULL, NULL);
	bool umo = true;
	int fd = thaw__uffd_open(&lg, &umo);
	CHECK_OK(fd);
	int fl = fcntl(fd, F_GETFL);
	CHECK(fl & O_NONBLOCK);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	if (geteuid() == 0)
		CHECK(!umo); /* root may always have kernel-mode faults */
	close(fd);

	struct tsrc s;
	tsrc_init(&s, 4, 1);
	CHECK_OK(engine_new_or_skip(&s, &min_ops, 0, -1));
	CHECK_GE(thaw__engine_uffd(s.e), 0);
	CHECK_EQ(thaw__engine_user_mode_only(s.e), umo);
	/* No thread yet: free must not wait for one. */
	thaw__engine_free(s.e);
	thaw__engine_free(NULL);
	return 0;
}

static int t_bad_features(void)
{
	struct tsrc s;
	tsrc_init(&s, 4, 1);
	struct thaw__engine_opts o = {
		.ops = &min_ops, .ctx = &s, .log = &s.lg, .uffd = -1, .features = 1ull << 62
	};
	CHECK_EQ(thaw__engine_new(&o, &s.e), -THAW_E_UFFD_FEATURE);
	CHECK(s.e == NULL);
	o.features = 0;
	o.ops = NULL;
	CHECK_EQ(thaw__engine_new(&o, &s.e), -EINVAL);
	/* Adopting something that is not a userfaultfd; the fd passes to the engine. */
	o.ops = &min_ops;
	o.uffd = eventfd(0, EFD_CLOEXEC);
	CHECK_GE(o.uffd, 0);
	int fd = o.uffd;
	CHECK_EQ(thaw__engine_new(&o, &s.e), -EINVAL);
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	return 0;
}

static int t_register_errors(void)
{
	struct tsrc s;
	tsrc_init(&s, 4, 1);
	CHECK_OK(engine_new_or_skip(&s, &min_ops, 0, -1));
	/* A hole in the address space cannot be registered. */
	char *hole = map_anon(4 * PAGE);
	munmap(hole, 4 * PAGE);
	CHECK_LT(thaw__engine_register(s.e, (uint64_t)(uintptr_t)hole, 4 * PAGE), 0);
	CHECK_LT(thaw__engine_register(s.e, (uint64_t)(uintptr_t)s.base + 1, PAGE), 0);
	CHECK_OK(thaw__engine_register(s.e, (uint64_t)(uintptr_t)s.base, s.len));
	CHECK_OK(thaw__engine_unregister(s.e, (uint64_t)(uintptr_t)s.base, s.len));
	thaw__engine_free(s.e);
	return 0;
}

static int t_fault_content(void)
{
	struct tsrc s;
	const size_t pages = 2048;
	tsrc_init(&s, pages, 2);
	tsrc_start(&s, &full_ops, 0);
	CHECK_EQ(atomic_load(&s.starts), 1);
	touch_all(s.base, pages);
	CHECK_EQ(atomic_load(&s.faults), pages);
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	tsrc_finish(&s);
	CHECK_GT(atomic_load(&s.ticks), 0);
	return 0;
}

static int t_write_fault(void)
{
	struct tsrc s;
	const size_t pages = 64;
	tsrc_init(&s, pages, 3);
	tsrc_start(&s, &min_ops, 0);
	for (size_t i = 0; i < pages; i++)
		s.base[i * PAGE + 5] = (char)0xee; /* a write fault: installed, then written */
	for (size_t i = 0; i < pages; i++) {
		s.data[i * PAGE + 5] = (char)0xee;
	}
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	CHECK_EQ(atomic_load(&s.faults), pages);
	tsrc_finish(&s);
	return 0;
}

struct toucher {
	struct tsrc *s;
	size_t pages;
	uint64_t seed;
	pthread_barrier_t *bar;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	uint32_t *order = malloc(t->pages * sizeof(*order));
	for (size_t i = 0; i < t->pages; i++)
		order[i] = (uint32_t)i;
	uint64_t x = t->seed * 0x9E3779B97F4A7C15ull + 7;
	for (size_t i = t->pages - 1; i > 0; i--) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t j = x % (i + 1);
		uint32_t tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	/* Every thread hits the same few pages at once first. */
	pthread_barrier_wait(t->bar);
	for (size_t i = 0; i < 8; i++)
		sink = t->s->base[i * 37 % t->pages * PAGE];
	pthread_barrier_wait(t->bar);
	for (size_t i = 0; i < t->pages; i++)
		sink = t->s->base[order[i] * PAGE + (i % PAGE)];
	free(order);
	return NULL;
}

static int t_threads_random(void)
{
	struct tsrc s;
	const size_t pages = 4096;
	enum { N = 4 };
	tsrc_init(&s, pages, 4);
	tsrc_start(&s, &min_ops, 0);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, N);
	pthread_t th[N];
	struct toucher t[N];
	for (int i = 0; i < N; i++) {
		t[i] = (struct toucher){
			.s = &s, .pages = pages, .seed = (uint64_t)i + 11, .bar = &bar
		};
		CHECK_EQ(pthread_create(&th[i], NULL, toucher_main, &t[i]), 0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	/* Threads racing on one page each get a message; the extra installs hit EEXIST. */
	CHECK_GE(atomic_load(&s.faults), pages);
	tsrc_finish(&s);
	return 0;
}

static int t_kernel_mode(void)
{
	struct tsrc s;
	const size_t pages = 64;
	tsrc_init(&s, pages, 5);
	tsrc_start(&s, &min_ops, 0);
	if (thaw__engine_user_mode_only(s.e))
		test_skip("userfaultfd is user-mode-only here: kernel-mode faults are refused");
	/* read(2) into missing registered pages: the kernel faults, the source fills, the
	 * read then overwrites the first half with the file's bytes. */
	size_t half = s.len / 2;
	char *file = map_anon(half);
	test_fill_random(file, half, 99);
	int fd = open(test_path("in"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_GE(fd, 0);
	CHECK_EQ(write(fd, file, half), (ssize_t)half);
	CHECK_EQ(pread(fd, s.base + PAGE / 2, half, 0), (ssize_t)half);
	close(fd);
	CHECK(memcmp(s.base + PAGE / 2, file, half) == 0);
	CHECK(memcmp(s.base, s.data, PAGE / 2) == 0);
	/* write(2) out of missing registered pages: the file gets the source's data. */
	fd = open(test_path("out"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_GE(fd, 0);
	size_t rest = s.len - half - PAGE;
	CHECK_EQ(write(fd, s.base + half + PAGE, rest), (ssize_t)rest);
	char *back = map_anon(rest);
	CHECK_EQ(pread(fd, back, rest, 0), (ssize_t)rest);
	close(fd);
	CHECK(memcmp(back, s.data + half + PAGE, rest) == 0);
	CHECK_GT(atomic_load(&s.faults), 0);
	tsrc_finish(&s);
	return 0;
}

static int t_ring_read_source(void)
{
	struct tsrc s;
	const size_t pages = 512;
	tsrc_init(&s, pages, 6);
	int fd = open(test_path("src"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_GE(fd, 0);
	CHECK_EQ(write(fd, s.data, s.len), (ssize_t)s.len);
	s.file_fd = fd;
	tsrc_start(&s, &full_ops, 0);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	pthread_t th[2];
	struct toucher t[2];
	for (int i = 0; i < 2; i++) {
		t[i] = (struct toucher){
			.s = &s, .pages = pages, .seed = (uint64_t)i + 3, .bar = &bar
		};
		CHECK_EQ(pthread_create(&th[i], NULL, toucher_main, &t[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	CHECK_GE(atomic_load(&s.reads), pages);
	tsrc_finish(&s);
	/* Every read was answered before the thread ended. */
	CHECK_EQ(atomic_load(&s.reads), atomic_load(&s.faults));
	close(fd);
	return 0;
}

/* Ring timeouts, polls and cancels, driven from the manager thread. */
struct rt {
	struct thaw__ring_req t1, t2, p1, p2;
	int pipe1[2], pipe2[2];
	uint64_t t1_start;
	atomic_long t1_ns, p2_more, done;
	atomic_int t1_res, t2_res, p1_res, p2_res;
	struct thaw__engine *e;
};

static void rt_t1(struct thaw__ring_req *req, int res, bool more)
{
	struct rt *r = container_of(req, struct rt, t1);
	r->t1_res = res;
	r->t1_ns = (long)(test_now_ns() - r->t1_start);
	atomic_fetch_add(&r->done, 1);
}

static void rt_t2(struct thaw__ring_req *req, int res, bool more)
{
	struct rt *r = container_of(req, struct rt, t2);
	r->t2_res = res;
	atomic_fetch_add(&r->done, 1);
}

static void rt_p1(struct thaw__ring_req *req, int res, bool more)
{
	struct rt *r = container_of(req, struct rt, p1);
	r->p1_res = res;
	atomic_fetch_add(&r->done, 1);
}

static void rt_p2(struct thaw__ring_req *req, int res, bool more)
{
	struct rt *r = container_of(req, struct rt, p2);
	if (more) {
		char b[16];
		CHECK_GT(read(r->pipe2[0], b, sizeof(b)), 0);
		if (atomic_fetch_add(&r->p2_more, 1) + 1 == 2)
			CHECK_OK(thaw__ring_cancel(r->e, &r->p2));
		return;
	}
	r->p2_res = res;
	atomic_fetch_add(&r->done, 1);
}

static int rt_start(struct tsrc *s)
{
	struct rt *r = s->hook;
	r->e = s->e;
	r->t1.done = rt_t1;
	r->t2.done = rt_t2;
	r->p1.done = rt_p1;
	r->p2.done = rt_p2;
	r->t1_start = test_now_ns();
	CHECK_OK(thaw__ring_timeout(s->e, &r->t1, 5000000));
	CHECK_OK(thaw__ring_timeout(s->e, &r->t2, 10000000000ull));
	CHECK_OK(thaw__ring_cancel(s->e, &r->t2));
	CHECK_OK(thaw__ring_poll(s->e, &r->p1, r->pipe1[0], POLLIN, false));
	CHECK_OK(thaw__ring_poll(s->e, &r->p2, r->pipe2[0], POLLIN, true));
	return 0;
}

static int t_ring_timeout_cancel(void)
{
	struct tsrc s;
	struct rt r = { 0 };
	tsrc_init(&s, 4, 7);
	CHECK_EQ(pipe(r.pipe1), 0);
	CHECK_EQ(pipe(r.pipe2), 0);
	s.hook = &r;
	s.start_hook = rt_start;
	tsrc_start(&s, &full_ops, 0);
	/* Ring calls belong to the manager thread. */
	struct thaw__ring_req stray = { .done = rt_t1 };
	CHECK_EQ(thaw__ring_timeout(s.e, &stray, 1000), -EPERM);
	CHECK_EQ(thaw__ring_poll(s.e, &stray, r.pipe1[0], POLLIN, false), -EPERM);

	wait_atomic(&r.done, 2, "the two timeouts");
	CHECK_EQ(r.t1_res, -ETIME);
	CHECK_GE(r.t1_ns, 5000000);
	CHECK_EQ(r.t2_res, -ECANCELED);
	CHECK_EQ(write(r.pipe1[1], "x", 1), 1);
	wait_atomic(&r.done, 3, "the single-shot poll");
	CHECK(r.p1_res & POLLIN);
	CHECK_EQ(write(r.pipe2[1], "a", 1), 1);
	wait_atomic(&r.p2_more, 1, "the first multishot poll event");
	CHECK_EQ(write(r.pipe2[1], "b", 1), 1);
	wait_atomic(&r.done, 4, "the multishot poll's cancellation");
	CHECK_EQ(r.p2_res, -ECANCELED);
	CHECK_EQ(atomic_load(&r.p2_more), 2);
	tsrc_finish(&s);
	return 0;
}

/*
 * Two polls woken at once, from the manager thread itself so both complete
 * in one batch: the urgent one completes first and a tick runs before the
 * other.
 */
struct urg {
	struct thaw__ring_req plain, urgent;
	int pipe[2];
	struct tsrc *s;
	atomic_bool go, written;
	atomic_long order;    /* completions so far */
	atomic_long recorded; /* callbacks that wrote their figures below */
	long plain_at, urgent_at;
	long plain_ticks, urgent_ticks;
};

static void urg_plain(struct thaw__ring_req *req, int res, bool more)
{
	struct urg *u = container_of(req, struct urg, plain);
	u->plain_ticks = atomic_load(&u->s->ticks);
	u->plain_at = atomic_fetch_add(&u->order, 1);
	atomic_fetch_add(&u->recorded, 1);
}

static void urg_urgent(struct thaw__ring_req *req, int res, bool more)
{
	struct urg *u = container_of(req, struct urg, urgent);
	u->urgent_ticks = atomic_load(&u->s->ticks);
	u->urgent_at = atomic_fetch_add(&u->order, 1);
	atomic_fetch_add(&u->recorded, 1);
}

static int urg_start(struct tsrc *s)
{
	struct urg *u = s->hook;
	u->s = s;
	u->plain.done = urg_plain;
	u->urgent.done = urg_urgent;
	u->urgent.urgent = true;
	CHECK_OK(thaw__ring_poll(s->e, &u->urgent, u->pipe[0], POLLIN, false));
	CHECK_OK(thaw__ring_poll(s->e, &u->plain, u->pipe[0], POLLIN, false));
	return 0;
}

static void urg_tick(struct tsrc *s)
{
	struct urg *u = s->hook;
	if (atomic_load(&u->go) && !atomic_exchange(&u->written, true))
		CHECK_EQ(write(u->pipe[1], "x", 1), 1);
}

static int t_urgent_first(void)
{
	struct tsrc s;
	struct urg u = { 0 };
	tsrc_init(&s, 4, 9);
	CHECK_EQ(pipe(u.pipe), 0);
	s.hook = &u;
	s.start_hook = urg_start;
	s.tick_hook = urg_tick;
	tsrc_start(&s, &full_ops, 0);
	atomic_store(&u.go, true);
	thaw__engine_notify(s.e);
	wait_atomic(&u.recorded, 2, "both polls");
	CHECK_EQ(u.urgent_at, 0);
	CHECK_EQ(u.plain_at, 1);
	CHECK_GT(u.plain_ticks, u.urgent_ticks);
	tsrc_finish(&s);
	return 0;
}

/*
 * A fault that arrives while the manager is inside one long completion
 * (a large background transfer's bytes, say) is served from inside it when
 * that work calls thaw__engine_poll_faults, and urgent() runs after it:
 * the toucher waits microseconds, not for the rest of the work.
 */
#define BULK_NS (400 * 1000000ull)

struct bulk {
	struct thaw__ring_req req;
	struct tsrc *s;
	atomic_bool busy;
	atomic_long urgents;
	atomic_long faults_inside; /* faults served while the bulk work ran */
};

static struct bulk *the_bulk; /* src_urgent has only the source */

static void bulk_done(struct thaw__ring_req *req, int res, bool more)
{
	struct bulk *b = container_of(req, struct bulk, req);
	long before = atomic_load(&b->s->faults);
	atomic_store(&b->busy, true);
	for (uint64_t t0 = test_now_ns(); test_now_ns() - t0 < BULK_NS;)
		thaw__engine_poll_faults(b->s->e);
	atomic_store(&b->faults_inside, atomic_load(&b->s->faults) - before);
	atomic_store(&b->busy, false);
}

static int bulk_start(struct tsrc *s)
{
	struct bulk *b = s->hook;
	b->s = s;
	b->req.done = bulk_done;
	CHECK_OK(thaw__ring_timeout(s->e, &b->req, 1000000));
	return 0;
}

static void src_urgent(void *ctx)
{
	atomic_fetch_add(&the_bulk->urgents, 1);
}

static const struct thaw__engine_ops bulk_ops = {
	.start = src_start,
	.fault = src_fault,
	.tick = src_tick,
	.urgent = src_urgent,
	.stop = src_stop,
};

static int t_fault_inside_bulk(void)
{
	struct tsrc s;
	struct bulk b = { 0 };
	tsrc_init(&s, 4, 12);
	the_bulk = &b;
	s.hook = &b;
	s.start_hook = bulk_start;
	tsrc_start(&s, &bulk_ops, 0);
	uint64_t deadline = test_now_ns() + 5000000000ull;
	while (!atomic_load(&b.busy))
		CHECK_MSG(test_now_ns() < deadline, "the bulk work never started");
	uint64_t t0 = test_now_ns();
	volatile char c = s.base[PAGE + 7]; /* the manager is busy for another ~400 ms */
	uint64_t waited = test_now_ns() - t0;
	CHECK_EQ(c, s.data[PAGE + 7]);
	CHECK_MSG(atomic_load(&b.busy), "the fault waited for the bulk work to end (%llu us)",
		  (unsigned long long)(waited / 1000));
	CHECK_MSG(waited < BULK_NS / 4, "the fault waited %llu us inside the bulk work",
		  (unsigned long long)(waited / 1000));
	while (atomic_load(&b.busy))
		;
	CHECK_EQ(atomic_load(&b.faults_inside), 1);
	CHECK_GT(atomic_load(&b.urgents), 0);
	tsrc_finish(&s);
	return 0;
}

static int t_notify_tick(void)
{
	struct tsrc s;
	tsrc_init(&s, 4, 8);
	tsrc_start(&s, &min_ops, 0);
	for (long i = 0; i < 20; i++) {
		long before = atomic_load(&s.ticks);
		thaw__engine_notify(s.e);
		wait_atomic(&s.ticks, before + 1, "a tick after notify");
	}
	tsrc_finish(&s);
	return 0;
}

static int t_install_zero(void)
{
	struct tsrc s;
	const size_t pages = 16;
	tsrc_init(&s, pages, 9);
	tsrc_start(&s, &min_ops, 0);
	uint64_t b = (uint64_t)(uintptr_t)s.base;
	CHECK_OK(thaw__install_zero(s.e, b, 4 * PAGE));
	CHECK_OK(thaw__install_copy(s.e, b + 4 * PAGE, s.data + 4 * PAGE, 4 * PAGE, true));
	/* Over pages already present: EEXIST everywhere, reported as done, nothing clobbered. */
	CHECK_OK(thaw__install_zero(s.e, b, 8 * PAGE));
	char *zero = calloc(1, 4 * PAGE);
	CHECK(memcmp(s.base, zero, 4 * PAGE) == 0);
	CHECK(memcmp(s.base + 4 * PAGE, s.data + 4 * PAGE, 4 * PAGE) == 0);
	CHECK_EQ(atomic_load(&s.faults), 0);
	/* Faults answered with zero pages. */
	s.zero = true;
	touch_all(s.base + 8 * PAGE, 8);
	CHECK(memcmp(s.base + 8 * PAGE, zero, 4 * PAGE) == 0);
	CHECK_EQ(atomic_load(&s.faults), 8);
	/* A write to a zero page gets its own private page. */
	s.base[9 * PAGE] = 1;
	CHECK_EQ(s.base[9 * PAGE], 1);
	CHECK_EQ(s.base[10 * PAGE], 0);
	tsrc_finish(&s);
	free(zero);
	return 0;
}

static int t_eexist(void)
{
	struct tsrc s;
	const size_t pages = 8;
	tsrc_init(&s, pages, 10);
	tsrc_start(&s, &min_ops, 0);
	uint64_t b = (uint64_t)(uintptr_t)s.base;
	char *other = map_anon(s.len);
	test_fill_random(other, s.len, 1234);
	CHECK_OK(thaw__install_copy(s.e, b + 2 * PAGE, other + 2 * PAGE, PAGE, true));
	CHECK_OK(thaw__install_copy(s.e, b + 5 * PAGE, other + 5 * PAGE, 2 * PAGE, false));
	CHECK_OK(thaw__install_copy(s.e, b, s.data, s.len, true));
	CHECK_OK(thaw__install_copy(s.e, b, s.data, s.len, true)); /* twice is fine */
	for (size_t i = 0; i < pages; i++) {
		const char *want = (i == 2 || i == 5 || i == 6 ? other : s.data) + i * PAGE;
		CHECK_MSG(memcmp(s.base + i * PAGE, want, PAGE) == 0, "page %zu", i);
	}
	CHECK_EQ(atomic_load(&s.faults), 0);
	/* Outside any registered range: the target is "gone". */
	char *plain = map_anon(PAGE);
	CHECK_EQ(thaw__install_copy(s.e, (uint64_t)(uintptr_t)plain, s.data, PAGE, true), -ESRCH);
	CHECK_EQ(thaw__install_zero(s.e, (uint64_t)(uintptr_t)plain, PAGE), -ESRCH);
	CHECK_LT(thaw__install_copy(s.e, b + 1, s.data, PAGE, true), 0);
	tsrc_finish(&s);
	return 0;
}

static int t_unregister(void)
{
	struct tsrc s;
	const size_t pages = 8;
	tsrc_init(&s, pages, 11);
	tsrc_start(&s, &min_ops, 0);
	sink = s.base[0];
	CHECK_EQ(atomic_load(&s.faults), 1);
	CHECK_OK(thaw__engine_unregister(s.e, (uint64_t)(uintptr_t)s.base, s.len));
	for (size_t i = 1; i < pages; i++)
		CHECK_EQ(s.base[i * PAGE + 3], 0); /* plain anonymous memory now */
	CHECK_EQ(atomic_load(&s.faults), 1);
	CHECK(memcmp(s.base, s.data, PAGE) == 0);
	s.base[PAGE] = 7;
	CHECK_EQ(s.base[PAGE], 7);
	tsrc_finish(&s);
	return 0;
}

/* Stop: stop() cancels two requests, a third must still be waited for. */
struct drain {
	struct thaw__ring_req a, b, c;
	int pipe[2];
	atomic_int a_res, b_res, c_res;
	atomic_long done;
	uint64_t t0;
	atomic_long c_ns;
	struct thaw__engine *e;
};

static void dr_a(struct thaw__ring_req *req, int res, bool more)
{
	struct drain *d = container_of(req, struct drain, a);
	d->a_res = res;
	atomic_fetch_add(&d->done, 1);
}

static void dr_b(struct thaw__ring_req *req, int res, bool more)
{
	struct drain *d = container_of(req, struct drain, b);
	d->b_res = res;
	atomic_fetch_add(&d->done, 1);
}

static void dr_c(struct thaw__ring_req *req, int res, bool more)
{
	struct drain *d = container_of(req, struct drain, c);
	d->c_res = res;
	d->c_ns = (long)(test_now_ns() - d->t0);
	atomic_fetch_add(&d->done, 1);
}

static int dr_start(struct tsrc *s)
{
	struct drain *d = s->hook;
	d->e = s->e;
	d->a.done = dr_a;
	d->b.done = dr_b;
	d->c.done = dr_c;
	d->t0 = test_now_ns();
	CHECK_OK(thaw__ring_timeout(s->e, &d->a, 30000000000ull));
	CHECK_OK(thaw__ring_poll(s->e, &d->b, d->pipe[0], POLLIN, true));
	CHECK_OK(thaw__ring_timeout(s->e, &d->c, 80000000));
	return 0;
}

static void dr_stop(struct tsrc *s)
{
	struct drain *d = s->hook;
	CHECK_OK(thaw__ring_cancel(s->e, &d->a));
	CHECK_OK(thaw__ring_cancel(s->e, &d->b));
}

static int t_stop_drains(void)
{
	struct tsrc s;
	struct drain d = { 0 };
	tsrc_init(&s, 16, 12);
	CHECK_EQ(pipe(d.pipe), 0);
	s.hook = &d;
	s.start_hook = dr_start;
	s.stop_hook = dr_stop;
	tsrc_start(&s, &full_ops, 0);
	touch_all(s.base, 16);
	uint64_t t0 = test_now_ns();
	thaw__engine_request_stop(s.e);
	thaw__engine_request_stop(s.e); /* twice: still one stop() */
	CHECK_OK(thaw__engine_join(s.e));
	uint64_t waited = test_now_ns() - t0;
	CHECK_EQ(atomic_load(&d.done), 3);
	CHECK_EQ(d.a_res, -ECANCELED);
	CHECK_EQ(d.b_res, -ECANCELED);
	CHECK_EQ(d.c_res, -ETIME);
	CHECK_GE(d.c_ns, 80000000);
	CHECK_LT(waited, 5000000000ull);
	CHECK_EQ(atomic_load(&s.stops), 1);
	CHECK_OK(thaw__engine_join(s.e)); /* joining again is harmless */
	thaw__engine_free(s.e);
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	return 0;
}

static int fail_start(struct tsrc *s)
{
	struct drain *d = s->hook;
	d->a.done = dr_a;
	CHECK_OK(thaw__ring_timeout(s->e, &d->a, 30000000000ull));
	return -EIO;
}

static void fail_stop(struct tsrc *s)
{
	struct drain *d = s->hook;
	CHECK_OK(thaw__ring_cancel(s->e, &d->a));
}

static int t_start_fails(void)
{
	struct tsrc s;
	struct drain d = { 0 };
	tsrc_init(&s, 4, 13);
	s.hook = &d;
	s.start_hook = fail_start;
	s.stop_hook = fail_stop;
	CHECK_OK(engine_new_or_skip(&s, &full_ops, 0, -1));
	CHECK_EQ(thaw__engine_run(s.e), -EIO);
	CHECK_EQ(atomic_load(&s.stops), 1);
	CHECK_EQ(d.a_res, -ECANCELED);
	CHECK_EQ(thaw__engine_run(s.e), -EALREADY);
	thaw__engine_free(s.e);
	return 0;
}

/* A tiny ring: submissions beyond the SQ flush it, completions overflow the CQ. */
enum { FLOOD = 100 };
struct flood {
	struct thaw__ring_req t[FLOOD];
	atomic_long expired;
};

static struct flood *flood_of; /* one per case process */

static void flood_timeout(struct thaw__ring_req *req, int res, bool more)
{
	if (res == -ETIME)
		atomic_fetch_add(&flood_of->expired, 1);
}

static int flood_start(struct tsrc *s)
{
	struct flood *f = s->hook;
	for (int i = 0; i < FLOOD; i++) {
		f->t[i].done = flood_timeout;
		CHECK_OK(thaw__ring_timeout(s->e, &f->t[i], 1000000 + (uint64_t)i * 10000));
	}
	return 0;
}

static int t_ring_full(void)
{
	struct tsrc s;
	struct flood f = { 0 };
	const size_t pages = 256;
	flood_of = &f;
	tsrc_init(&s, pages, 22);
	s.hook = &f;
	s.start_hook = flood_start;
	struct thaw__engine_opts o = {
		.ops = &full_ops, .ctx = &s, .log = &s.lg, .uffd = -1, .ring_entries = 2
	};
	CHECK_OK(thaw__engine_new(&o, &s.e));
	CHECK_OK(thaw__engine_register(s.e, (uint64_t)(uintptr_t)s.base, s.len));
	CHECK_OK(thaw__engine_run(s.e));
	for (size_t i = 0; i < pages; i++) {
		thaw__engine_notify(s.e);
		sink = s.base[i * PAGE];
	}
	wait_atomic(&f.expired, FLOOD, "every timeout");
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	tsrc_finish(&s);
	return 0;
}

struct region_toucher {
	struct tsrc *s;
	size_t pages;
};

static void *region_toucher(void *arg)
{
	struct region_toucher *t = arg;
	for (size_t i = t->pages; i-- > 0;)
		sink = t->s->base[i * PAGE];
	return NULL;
}

static int t_two_engines(void)
{
	struct tsrc s1, s2;
	const size_t pages = 1024;
	tsrc_init(&s1, pages, 14);
	tsrc_init(&s2, pages, 15);
	tsrc_start(&s1, &min_ops, 0);
	tsrc_start(&s2, &full_ops, 0);
	CHECK_NE(thaw__engine_uffd(s1.e), thaw__engine_uffd(s2.e));
	pthread_t th[2];
	struct region_toucher t[2] = { { &s1, pages }, { &s2, pages } };
	CHECK_EQ(pthread_create(&th[0], NULL, region_toucher, &t[0]), 0);
	CHECK_EQ(pthread_create(&th[1], NULL, region_toucher, &t[1]), 0);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	CHECK(memcmp(s1.base, s1.data, s1.len) == 0);
	CHECK(memcmp(s2.base, s2.data, s2.len) == 0);
	CHECK_EQ(atomic_load(&s1.faults), pages);
	CHECK_EQ(atomic_load(&s2.faults), pages);
	tsrc_finish(&s1);
	/* One engine gone, the other still serves. */
	CHECK_OK(thaw__install_zero(s2.e, (uint64_t)(uintptr_t)s2.base, PAGE));
	tsrc_finish(&s2);
	return 0;
}

static void no_core(void)
{
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
}

/* In a child: a poisoned page kills its toucher with SIGBUS, other pages are fine. */
static int poison_child(bool through_fault)
{
	pid_t pid = fork();
	CHECK_GE(pid, 0);
	if (pid == 0) {
		no_core();
		struct tsrc s;
		tsrc_init(&s, 16, 16);
		s.bad_page = 5;
		tsrc_start(&s, &min_ops, 0);
		if (!through_fault)
			CHECK_OK(thaw__install_poison(s.e, (uint64_t)(uintptr_t)s.base + 9 * PAGE,
						      PAGE));
		touch_all(s.base, 4);
		if (memcmp(s.base, s.data, 4 * PAGE) != 0)
			_exit(3);
		signal(SIGBUS, SIG_DFL); /* sanitizers catch it otherwise */
		sink = s.base[(through_fault ? 5 : 9) * PAGE];
		_exit(4); /* survived the poisoned page */
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_MSG(WIFSIGNALED(st), "child exited with status %d", WEXITSTATUS(st));
	CHECK_EQ(WTERMSIG(st), SIGBUS);
	return 0;
}

static int t_poison(void)
{
	poison_child(false);
	poison_child(true);
	return 0;
}

static int t_events(void)
{
	struct tsrc s;
	const size_t pages = 32;
	tsrc_init(&s, pages, 17);
	uint64_t ev = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
		      UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_FORK;
	tsrc_start(&s, &full_ops, ev);
	uint64_t b = (uint64_t)(uintptr_t)s.base;
	touch_all(s.base, 8);

	CHECK_EQ(madvise(s.base + 2 * PAGE, 2 * PAGE, MADV_DONTNEED), 0);
	wait_atomic(&s.removes, 1, "REMOVE");
	CHECK_EQ(s.rm_start, b + 2 * PAGE);
	CHECK_EQ(s.rm_end, b + 4 * PAGE);
	/* The removed pages read as zeros from now on: the engine answers, not the source. */
	long f = atomic_load(&s.faults);
	for (size_t i = 2 * PAGE; i < 4 * PAGE; i++)
		CHECK_EQ(s.base[i], 0);
	CHECK_EQ(atomic_load(&s.faults), f);
	thaw__engine_hold(s.e); /* the removed set must not change under the copy */
	CHECK_EQ(thaw__install_copy(s.e, b + 2 * PAGE, s.data + 2 * PAGE, 2 * PAGE, true), 0);
	thaw__engine_release(s.e);
	CHECK_EQ(s.base[2 * PAGE + 1], 0); /* a copy never lands on a removed page */

	char *to = map_anon(4 * PAGE);
	CHECK(mremap(s.base + 24 * PAGE, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to) ==
	      to);
	wait_atomic(&s.remaps, 1, "REMAP");
	CHECK_EQ(s.rp_from, b + 24 * PAGE);
	CHECK_EQ(s.rp_to, (uint64_t)(uintptr_t)to);
	CHECK_EQ(s.rp_len, 4 * PAGE);

	/* mremap may report its old range as unmapped too, in either order. */
	CHECK_EQ(munmap(s.base + 28 * PAGE, 4 * PAGE), 0);
	wait_u64(&s.um_start, b + 28 * PAGE, "UNMAP");
	CHECK_EQ(s.um_end, b + 32 * PAGE);

	pid_t pid = fork();
	CHECK_GE(pid, 0);
	if (pid == 0)
		_exit(0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	wait_atomic(&s.forks, 1, "FORK");
	CHECK_GE((int64_t)s.fork_fd, 0);
	tsrc_finish(&s);
	return 0;
}

/* Holds the manager in a tick while the test lines up messages on the uffd. */
struct gate {
	atomic_int state; /* 1: armed, 2: manager held, 3: released */
};

static void gate_tick(struct tsrc *s)
{
	struct gate *g = s->hook;
	int armed = 1;
	if (!atomic_compare_exchange_strong(&g->state, &armed, 2))
		return;
	while (atomic_load(&g->state) != 3)
		usleep(1000);
}

struct reader {
	volatile char *p;
	char got;
	atomic_int done;
};

static void *read_page(void *arg)
{
	struct reader *r = arg;
	r->got = *r->p;
	atomic_store(&r->done, 1);
	return NULL;
}

static void *remove_page(void *arg)
{
	madvise(arg, PAGE, MADV_DONTNEED);
	return NULL;
}

/*
 * The kernel hands out pending faults before pending events: a fault on a
 * page and the REMOVE of that page, queued while the manager is busy, are
 * read fault first. The fault must get a zero page, never the source's data.
 */
static int t_fault_before_remove(void)
{
	struct tsrc s;
	struct gate g = { 0 };
	tsrc_init(&s, 8, 19);
	s.hook = &g;
	s.tick_hook = gate_tick;
	tsrc_start(&s, &full_ops, UFFD_FEATURE_EVENT_REMOVE);
	touch_all(s.base, 2);
	atomic_store(&g.state, 1);
	thaw__engine_notify(s.e);
	while (atomic_load(&g.state) != 2)
		usleep(1000);
	long f = atomic_load(&s.faults);
	struct reader rd = { .p = s.base + 5 * PAGE };
	pthread_t tr, tm;
	CHECK_EQ(pthread_create(&tr, NULL, read_page, &rd), 0);
	usleep(50000); /* its fault is queued */
	CHECK_EQ(pthread_create(&tm, NULL, remove_page, s.base + 5 * PAGE), 0);
	usleep(50000); /* the REMOVE is queued behind it */
	CHECK_EQ(atomic_load(&rd.done), 0);
	atomic_store(&g.state, 3);
	pthread_join(tm, NULL);
	pthread_join(tr, NULL);
	CHECK_EQ(rd.got, 0);
	CHECK_NE(s.data[5 * PAGE], 0);
	CHECK_EQ(atomic_load(&s.faults), f); /* answered by the engine, not the source */
	CHECK_EQ(atomic_load(&s.removes), 1);
	/* The case this test is for: the fault was read before the REMOVE. */
	uint64_t pending = atomic_load(&s.rm_pending), at = atomic_load(&s.rm_pending_addr);
	CHECK_MSG(pending == 1, "%llu faults read before the REMOVE", (unsigned long long)pending);
	CHECK_EQ(at, (uint64_t)(uintptr_t)(s.base + 5 * PAGE));
	CHECK_EQ(atomic_load(&s.err), 0);
	tsrc_finish(&s);
	return 0;
}

static int t_events_unhandled(void)
{
	struct tsrc s;
	const size_t pages = 16;
	tsrc_init(&s, pages, 18);
	tsrc_start(&s, &min_ops, UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_FORK);
	touch_all(s.base, pages);
	/* No remove/fork ops: the engine reads, logs and ignores; nobody blocks. */
	CHECK_EQ(madvise(s.base, 4 * PAGE, MADV_DONTNEED), 0);
	pid_t pid = fork();
	CHECK_GE(pid, 0);
	if (pid == 0) {
		/* Its uffd was closed, so its copy is plain memory: the removed page
		 * reads as zero, the others as installed. */
		_exit(s.base[8 * PAGE] == s.data[8 * PAGE] && s.base[PAGE] == 0 ? 0 : 1);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Removed pages read as zeros, never as the source's data. */
	for (size_t i = 0; i < 4 * PAGE; i++)
		CHECK_EQ(s.base[i], 0);
	CHECK(memcmp(s.base + 4 * PAGE, s.data + 4 * PAGE, s.len - 4 * PAGE) == 0);
	tsrc_finish(&s);
	return 0;
}

/*
 * Keeps the manager awake as workers answering a stream of faults do
 * (thaw__engine_keep_awake): it spins, reaping completions, and never sleeps.
 */
struct awake {
	pthread_t th;
	struct thaw__engine *e;
	atomic_bool on;
};

static void *awake_main(void *arg)
{
	struct awake *a = arg;
	while (atomic_load(&a->on)) {
		thaw__engine_keep_awake(a->e);
		usleep(5);
	}
	return NULL;
}

static void awake_start(struct awake *a, struct thaw__engine *e)
{
	a->e = e;
	atomic_init(&a->on, true);
	CHECK_EQ(pthread_create(&a->th, NULL, awake_main, a), 0);
}

static void awake_stop(struct awake *a)
{
	atomic_store(&a->on, false);
	pthread_join(a->th, NULL);
}

/*
 * A watchdog for cases whose failure is a hang somewhere a CHECK cannot
 * reach (fork() waiting for a parked manager): it fails the case with what.
 */
struct watchdog {
	pthread_t th;
	uint64_t deadline;
	const char *what;
	atomic_bool done;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	while (!atomic_load(&w->done)) {
		CHECK_MSG(test_now_ns() < w->deadline, "still waiting for %s", w->what);
		usleep(1000);
	}
	return NULL;
}

static void watchdog_start(struct watchdog *w, unsigned seconds, const char *what)
{
	w->deadline = test_now_ns() + seconds * 1000000000ull;
	w->what = what;
	atomic_init(&w->done, false);
	CHECK_EQ(pthread_create(&w->th, NULL, watchdog_main, w), 0);
}

static void watchdog_stop(struct watchdog *w)
{
	atomic_store(&w->done, true);
	pthread_join(w->th, NULL);
}

/*
 * While the manager stays awake after faults (THAW__SPIN_NS) it reaps
 * completions as it spins, the eventfd's among them. A stop asked for then
 * must still end the loop: the wake-up it came with is gone, and no other
 * follows. A fault first wakes the manager into the spin.
 */
static int t_stop_while_awake(void)
{
	struct tsrc s;
	const size_t rounds = 200;
	tsrc_init(&s, rounds, 24);
	for (size_t i = 0; i < rounds; i++) {
		struct awake a;
		tsrc_start(&s, &min_ops, 0);
		awake_start(&a, s.e);
		sink = s.base[i * PAGE];
		thaw__engine_request_stop(s.e);
		wait_atomic(&s.stops, 1, "stop() after a stop asked for while the manager spins");
		awake_stop(&a);
		tsrc_finish(&s);
		atomic_store(&s.stops, 0);
	}
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	return 0;
}

/* The same for a fork's request to park (fork.c): fork() waits until the manager parks. */
static int t_fork_while_awake(void)
{
	struct tsrc s;
	const size_t rounds = 100;
	tsrc_init(&s, rounds, 25);
	tsrc_start(&s, &full_ops, UFFD_FEATURE_EVENT_FORK);
	struct awake a;
	awake_start(&a, s.e);
	struct watchdog w;
	watchdog_start(&w, 10, "a fork while the manager spins (the manager to park)");
	for (size_t i = 0; i < rounds; i++) {
		sink = s.base[i * PAGE];
		pid_t pid = fork();
		CHECK_GE(pid, 0);
		if (pid == 0)
			_exit(0);
		int st;
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	watchdog_stop(&w);
	awake_stop(&a);
	wait_atomic(&s.forks, (long)rounds, "FORK events");
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	tsrc_finish(&s);
	return 0;
}

static int t_adopt(void)
{
	struct tsrc s;
	const size_t pages = 64;
	tsrc_init(&s, pages, 19);
	/* What a sender does before handing its uffd over a socket. */
	bool umo;
	int fd = thaw__uffd_open(&s.lg, &umo);
	CHECK_OK(fd);
	struct uffdio_api api = { .api = UFFD_API, .features = 1ull << 14 /* POISON */ };
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		test_skip("UFFDIO_API with UFFD_FEATURE_POISON: %s", strerror(errno));
	CHECK_EQ(fcntl(fd, F_SETFL, 0), 0); /* a blocking uffd must become non-blocking */
	CHECK_OK(engine_new_or_skip(&s, &min_ops, 0, fd));
	CHECK_EQ(thaw__engine_uffd(s.e), fd);
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	CHECK_OK(thaw__engine_register(s.e, (uint64_t)(uintptr_t)s.base, s.len));
	CHECK_OK(thaw__engine_run(s.e));
	touch_all(s.base, pages);
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	tsrc_finish(&s);
	CHECK(fcntl(fd, F_GETFD) < 0); /* the engine closed what it adopted */
	return 0;
}

/* A uffd the sender never initialised polls as POLLERR: the loop ends on its own. */
static int t_uffd_error_stops(void)
{
	struct tsrc s;
	tsrc_init(&s, 4, 23);
	bool umo;
	int fd = thaw__uffd_open(&s.lg, &umo);
	CHECK_OK(fd);
	CHECK_OK(engine_new_or_skip(&s, &min_ops, 0, fd));
	CHECK_OK(thaw__engine_run(s.e));
	wait_atomic(&s.stops, 1, "stop() after the uffd failed");
	CHECK_EQ(thaw__engine_join(s.e), -EIO);
	CHECK_EQ(atomic_load(&s.stops), 1);
	thaw__engine_free(s.e);
	return 0;
}

static char umo_log[4096];

static void umo_sink(enum thaw_log_level level, const char *msg, void *ctx)
{
	if (level == THAW_LOG_WARN)
		snprintf(umo_log + strlen(umo_log), sizeof(umo_log) - strlen(umo_log), "%s\n", msg);
}

static int t_user_mode_only(void)
{
	if (geteuid() != 0)
		test_skip("needs root to drop to an unprivileged user");
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int unpriv = 1;
	if (f) {
		if (fscanf(f, "%d", &unpriv) != 1)
			unpriv = 1;
		fclose(f);
	}
	if (unpriv)
		test_skip("vm.unprivileged_userfaultfd=1: an unprivileged user is not refused");
	pid_t pid = fork();
	CHECK_GE(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(10);
		struct tsrc s;
		tsrc_init(&s, 8, 20);
		thaw__logger_init(&s.lg, umo_sink, NULL);
		tsrc_start(&s, &min_ops, 0);
		if (!thaw__engine_user_mode_only(s.e))
			_exit(11);
		if (!strstr(umo_log, "UFFD_USER_MODE_ONLY") || !strstr(umo_log, "EFAULT"))
			_exit(12);
		/* A kernel-mode access to a missing page now fails instead of faulting in. */
		int p[2];
		if (pipe(p) || write(p[1], "hello", 5) != 5)
			_exit(13);
		if (read(p[0], s.base + 3 * PAGE, 5) != -1 || errno != EFAULT)
			_exit(14);
		touch_all(s.base, 8);
		if (memcmp(s.base, s.data, s.len) != 0)
			_exit(15);
		tsrc_finish(&s);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	return 0;
}

static uint64_t floor_p50(size_t pages)
{
	uint64_t *lat = calloc(pages, sizeof(*lat));
	CHECK_OK(thaw__bench_floor(pages, NULL, lat));
	uint64_t p50 = percentile(lat, pages, 50);
	free(lat);
	return p50;
}

static int t_bench_floor(void)
{
	const size_t pages = 1024;
	uint64_t *lat = calloc(pages, sizeof(*lat));
	uint32_t *order = calloc(pages, sizeof(*order));
	for (size_t i = 0; i < pages; i++)
		order[i] = (uint32_t)((i * 389) % pages); /* a permutation: 389 is prime */
	CHECK_OK(thaw__bench_floor(pages, order, lat));
	for (size_t i = 0; i < pages; i++)
		CHECK_GT(lat[i], 0);
	uint64_t p50 = percentile(lat, pages, 50), p99 = percentile(lat, pages, 99);
	/* A round trip is a few µs; a wait on anything slower (a timer, a tick) would show. */
	CHECK_LT(p50, 500000);
	CHECK_GT(p50, 200); /* faster than this was no fault at all */
	CHECK_OK(thaw__bench_floor(pages, NULL, lat));
	uint64_t asc = percentile(lat, pages, 50);
	CHECK_LT(asc, 500000);
	order[3] = (uint32_t)pages;
	CHECK_EQ(thaw__bench_floor(pages, order, lat), -EINVAL);
	CHECK_EQ(thaw__bench_floor(0, NULL, lat), -EINVAL);
	if (verbose())
		printf("# floor: p50 %.2f us (permuted), %.2f us (ascending), p99 %.2f us\n",
		       p50 / 1e3, asc / 1e3, p99 / 1e3);
	free(lat);
	free(order);
	return 0;
}

static int t_fault_latency(void)
{
	const size_t pages = 4096;
	struct tsrc s;
	tsrc_init(&s, pages, 21);
	tsrc_start(&s, &min_ops, 0);
	uint64_t *lat = calloc(pages, sizeof(*lat));
	for (size_t i = 0; i < pages; i++) {
		volatile const char *p = s.base + i * PAGE;
		uint64_t t0 = test_now_ns();
		(void)*p;
		lat[i] = test_now_ns() - t0;
	}
	CHECK(memcmp(s.base, s.data, s.len) == 0);
	tsrc_finish(&s);
	uint64_t p50 = percentile(lat, pages, 50), p99 = percentile(lat, pages, 99);
	uint64_t fl = floor_p50(pages);
	if (verbose())
		printf("# engine fault p50 %.2f us p99 %.2f us; floor p50 %.2f us; ratio %.2f\n",
		       p50 / 1e3, p99 / 1e3, fl / 1e3, (double)p50 / (double)fl);
	/* Loose, for a busy 2-CPU machine: the engine must stay the same order as the floor. */
	CHECK_MSG(p50 < 4 * fl + 30000, "engine p50 %llu ns vs floor p50 %llu ns",
		  (unsigned long long)p50, (unsigned long long)fl);
	free(lat);
	return 0;
}

static const struct test_case cases[] = {
	{ "open", t_open },
	{ "bad_features", t_bad_features },
	{ "register_errors", t_register_errors },
	{ "fault_content", t_fault_content },
	{ "write_fault", t_write_fault },
	{ "threads_random", t_threads_random },
	{ "kernel_mode_read_write", t_kernel_mode },
	{ "ring_read_source", t_ring_read_source },
	{ "ring_timeout_cancel", t_ring_timeout_cancel },
	{ "urgent_first", t_urgent_first },
	{ "fault_inside_bulk", t_fault_inside_bulk, 10 },
	{ "notify_tick", t_notify_tick },
	{ "ring_full", t_ring_full },
	{ "install_zero", t_install_zero },
	{ "eexist", t_eexist },
	{ "unregister", t_unregister },
	{ "stop_drains", t_stop_drains },
	{ "start_fails", t_start_fails },
	{ "two_engines", t_two_engines },
	{ "poison_sigbus", t_poison },
	{ "events", t_events },
	{ "fault_before_remove", t_fault_before_remove, 10 },
	{ "events_unhandled", t_events_unhandled },
	{ "adopt", t_adopt },
	{ "stop_while_awake", t_stop_while_awake, 20 },
	{ "fork_while_awake", t_fork_while_awake, 20 },
	{ "uffd_error_stops", t_uffd_error_stops },
	{ "user_mode_only", t_user_mode_only },
	{ "bench_floor", t_bench_floor, 30 },
	{ "fault_latency", t_fault_latency, 30 },
};

TEST_MAIN(cases)
