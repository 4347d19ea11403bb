/* SPDX-License-Identifier: MIT */
/*
 * vmm_client: a VMM-style client of `thaw serve`, and its test client.
 *
 *   vmm_client --socket PATH --snapshot SNAP [OPTIONS]
 *
 * Does what Firecracker does when it resumes a VM from a UFFD backend:
 * allocates the guest memory as anonymous private regions, creates a
 * userfaultfd with REMOVE events, registers the regions in MISSING mode and
 * sends the handshake (a JSON array of mappings, the uffd by SCM_RIGHTS).
 * Then it runs a workload over the memory (pages touched in a scattered
 * order, then every byte compared with the snapshot, which it reads through
 * the library, or with the raw memory file it was made from under --image)
 * and optionally exercises events: a balloon (MADV_DONTNEED,
 * afterwards only zeros may be read there), munmap, mremap, fork. Prints
 * one line and exits 0 when every byte read was right, 1 otherwise.
 *
 * Options:
 *   --image RAW        the raw memory the snapshot was made from: the bytes to
 *                      expect, read without the library
 *   --regions N        split the memory into N regions at non-contiguous addresses
 *   --events all       also enable UNMAP, REMAP and FORK events (default: REMOVE)
 *   --balloon          remove 1/8 of the memory while a thread reads it
 *   --unmap            munmap the last 1/8 of region 0 before touching it
 *   --remap            mremap 1/8 of region 0 elsewhere before touching it
 *   --fork             fork before touching; the child checks all its memory too
 *   --pause-after N    first touch N pages, print "paused", wait for a line on stdin
 *   --die-after N      touch N pages, then SIGKILL itself
 *   --page-size-kib    send the deprecated "page_size_kib" key
 *   --json TEXT        send TEXT as the handshake instead (with --expect-refused)
 *   --no-fd            send no fd with the handshake
 *   --offset-add N     add N to every mapping's offset
 *   --size-add N       add N to every mapping's size
 *   --expect-refused   succeed only if the server closes the connection
 *   --measure PCT      instead of the workload: touch PCT% of the pages that
 *                      hold data, in random order, timing each touch that
 *                      faults (mincore says the page is not there yet); print
 *                      {"fault_p50_us": .., "fault_p99_us": .., "faults": ..}
 *   --in-process       with --measure: restore SNAP into this process with
 *                      thaw_restore_start instead of asking the server (the
 *                      baseline the server is compared with)
 */
#include <thaw.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE	    4096u
#define MAX_REGIONS 8

struct region {
	char *addr;
	uint64_t len, offset; /* offset: in the snapshot's flat memory */
};

struct client {
	const char *socket_path, *snap_path, *json, *image_path;
	int nregions;
	bool all_events, balloon, unmap, remap, do_fork, kib, no_fd, expect_refused, in_process;
	double measure_pct; /* > 0: latency measurement instead of the workload */
	bool *data_page;    /* per page of the flat memory: its chunk holds data */
	long pause_after, die_after;
	uint64_t offset_add, size_add;
	struct region reg[MAX_REGIONS];
	unsigned char *expect; /* the snapshot's flat memory, read through the library */
	uint64_t total;
	/* Ranges whose contents must be zero (balloon) or must not be read (unmapped). */
	uint64_t zero_from, zero_to, skip_from, skip_to;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vmm_client: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return 1;
}

/* Replace what the library decoded with the source's own bytes. */
static int read_image(struct client *c)
{
	int fd = open(c->image_path, O_RDONLY);
	if (fd < 0)
		return fail("cannot open %s: %s", c->image_path, strerror(errno));
	uint64_t at = 0;
	while (at < c->total) {
		ssize_t n = pread(fd, c->expect + at, c->total - at, (off_t)at);
		if (n <= 0)
			break;
		at += (uint64_t)n;
	}
	close(fd);
	if (at != c->total)
		return fail("%s: %" PRIu64 " bytes, the snapshot holds %" PRIu64, c->image_path, at,
			    c->total);
	return 0;
}

static int read_snapshot(struct client *c)
{
	struct thaw_snapshot *s;
	int err = thaw_snapshot_open(c->snap_path, NULL, &s);
	if (err)
		return fail("cannot open %s: %s", c->snap_path, thaw_strerror(err));
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	thaw_snapshot_get_info(s, &info);
	c->total = info.raw_bytes;
	c->expect = malloc(c->total ? c->total : 1);
	c->data_page = calloc(c->total / PAGE + 1, sizeof(*c->data_page));
	if (!c->expect || !c->data_page) {
		thaw_snapshot_close(s);
		return fail("no memory for %" PRIu64 " bytes", c->total);
	}
	uint64_t at = 0;
	for (uint64_t i = 0; i < info.chunk_count; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		thaw_snapshot_chunk(s, i, &ci);
		ssize_t n = thaw_snapshot_read_chunk(s, i, c->expect + at, ci.len);
		if (n < 0) {
			thaw_snapshot_close(s);
			return fail("reading chunk %" PRIu64 ": %s", i, thaw_strerror((int)n));
		}
		for (uint64_t p = at / PAGE; p < (at + ci.len) / PAGE; p++)
			c->data_page[p] = ci.kind != THAW_CHUNK_ZERO;
		at += (uint64_t)n;
	}
	thaw_snapshot_close(s);
	return c->image_path ? read_image(c) : 0;
}

/* Regions of page-multiple sizes, each followed by an unmapped gap: not contiguous. */
static int map_guest(struct client *c)
{
	uint64_t pages = c->total / PAGE, at = 0;
	uint64_t span = c->total + (uint64_t)c->nregions * 16 * PAGE;
	char *base =
		mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return fail("reserving %" PRIu64 " bytes: %s", span, strerror(errno));
	munmap(base, span);
	char *next = base;
	for (int i = 0; i < c->nregions; i++) {
		uint64_t n = i == c->nregions - 1 ? pages - at / PAGE : pages / c->nregions;
		struct region *r = &c->reg[i];
		r->len = n * PAGE;
		r->offset = at;
		r->addr = mmap(next, r->len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			       -1, 0);
		if (r->addr == MAP_FAILED)
			return fail("mapping region %d: %s", i, strerror(errno));
		at += r->len;
		next = r->addr + r->len + 16 * PAGE;
	}
	return 0;
}

static int make_uffd(struct client *c)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -fail("userfaultfd: %s", strerror(errno));
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
	if (c->all_events)
		api.features |= UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP |
				UFFD_FEATURE_EVENT_FORK;
	if (ioctl(fd, UFFDIO_API, &api))
		return -fail("UFFDIO_API: %s", strerror(errno));
	for (int i = 0; i < c->nregions; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uint64_t)(uintptr_t)c->reg[i].addr,
				   .len = c->reg[i].len },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(fd, UFFDIO_REGISTER, &reg))
			return -fail("UFFDIO_REGISTER region %d: %s", i, strerror(errno));
	}
	return fd;
}

static int send_handshake(struct client *c, int sock, int uffd)
{
	char text[8192];
	size_t n = 0;
	if (c->json) {
		n = (size_t)snprintf(text, sizeof(text), "%s", c->json);
	} else {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[");
		for (int i = 0; i < c->nregions; i++)
			n += (size_t)snprintf(
				text + n, sizeof(text) - n,
				"%s{\"base_host_virt_addr\": %" PRIu64 ", \"size\": %" PRIu64
				", \"offset\": %" PRIu64 ", \"%s\": %u}",
				i ? ", " : "", (uint64_t)(uintptr_t)c->reg[i].addr,
				c->reg[i].len + c->size_add, c->reg[i].offset + c->offset_add,
				c->kib ? "page_size_kib" : "page_size", PAGE);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "]");
	}
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = text, .iov_len = n };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (!c->no_fd) {
		msg.msg_control = &ctl;
		msg.msg_controllen = sizeof(ctl);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &uffd, sizeof(int));
	}
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)n)
		return 0;
	/* A server that refuses this peer (SO_PEERCRED) may close before the handshake is sent. */
	if (c->expect_refused && (errno == EPIPE || errno == ECONNRESET))
		return 0;
	return fail("sending the handshake: %s", strerror(errno));
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -fail("connecting to %s: %s", path, strerror(errno));
	return fd;
}

/* Where flat offset off lives in this process, or NULL when it is in no region. */
static volatile unsigned char *at_flat(struct client *c, uint64_t off)
{
	for (int i = 0; i < c->nregions; i++)
		if (off >= c->reg[i].offset && off < c->reg[i].offset + c->reg[i].len)
			return (volatile unsigned char *)c->reg[i].addr + (off - c->reg[i].offset);
	return NULL;
}

static bool skipped(const struct client *c, uint64_t off)
{
	return off >= c->skip_from && off < c->skip_to;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Touch pages [0, n) of a scattered permutation (a stride coprime with the page count). */
static void touch(struct client *c, uint64_t from, uint64_t n)
{
	uint64_t pages = c->total / PAGE, stride = 7919;
	while (pages > 1 && gcd(stride, pages) != 1)
		stride++;
	for (uint64_t i = from; i < from + n && i < pages; i++) {
		uint64_t off = (i * stride % pages) * PAGE;
		volatile unsigned char *p = at_flat(c, off);
		if (p && !skipped(c, off))
			(void)*p;
	}
}

static int verify(struct client *c, const char *who)
{
	for (uint64_t off = 0; off < c->total; off += PAGE) {
		volatile unsigned char *p = at_flat(c, off);
		if (!p || skipped(c, off))
			continue;
		bool zero = off >= c->zero_from && off < c->zero_to;
		for (uint32_t k = 0; k < PAGE; k++) {
			unsigned char want = zero ? 0 : c->expect[off + k];
			if (p[k] != want)
				return fail("%s: byte at offset 0x%" PRIx64
					    " is 0x%02x, want 0x%02x%s",
					    who, off + k, p[k], want,
					    zero ? " (a removed page must read as zero)" : "");
		}
	}
	return 0;
}

struct balloon_reader {
	struct client *c;
	atomic_bool stop;
};

/* Reads the balloon range while it is being removed: faults race the REMOVE. */
static void *balloon_reader(void *arg)
{
	struct balloon_reader *b = arg;
	while (!atomic_load(&b->stop))
		for (uint64_t off = b->c->zero_from; off < b->c->zero_to; off += PAGE)
			(void)*at_flat(b->c, off);
	return NULL;
}

static int inflate_balloon(struct client *c)
{
	struct region *r = &c->reg[0];
	uint64_t len = (r->len / 8) & ~(uint64_t)(PAGE - 1);
	if (!len)
		return 0;
	c->zero_from = r->offset + r->len / 2;
	c->zero_to = c->zero_from + len;
	struct balloon_reader b = { .c = c };
	pthread_t th;
	pthread_create(&th, NULL, balloon_reader, &b);
	usleep(1000);
	int err = madvise((char *)at_flat(c, c->zero_from), len, MADV_DONTNEED);
	atomic_store(&b.stop, true);
	pthread_join(th, NULL);
	if (err)
		return fail("MADV_DONTNEED: %s", strerror(errno));
	return 0;
}

static int move_part(struct client *c)
{
	struct region *r = &c->reg[0];
	uint64_t len = (r->len / 8) & ~(uint64_t)(PAGE - 1);
	if (!len)
		return 0;
	if (c->unmap) {
		c->skip_from = r->offset + r->len - len;
		c->skip_to = r->offset + r->len;
		if (munmap(r->addr + r->len - len, len))
			return fail("munmap: %s", strerror(errno));
	}
	if (c->remap) {
		/* The first eighth moves to a fresh address; region 0 becomes two regions. */
		char *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (to == MAP_FAILED ||
		    mremap(r->addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to)
			return fail("mremap: %s", strerror(errno));
		if (c->nregions == MAX_REGIONS)
			return fail("too many regions");
		c->reg[c->nregions++] =
			(struct region){ .addr = to, .len = len, .offset = r->offset };
		r->addr += len;
		r->len -= len;
		r->offset += len;
	}
	return 0;
}

static int run_fork(struct client *c)
{
	pid_t pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(verify(c, "forked child") ? 1 : 0);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the forked child's memory was wrong (status 0x%x)", st);
	return 0;
}

static int expect_refusal(int sock)
{
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char b;
	ssize_t n = recv(sock, &b, 1, 0);
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		printf("vmm_client: refused, as expected\n");
		return 0;
	}
	return fail("the server did not refuse the handshake");
}

static int parse(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "image", required_argument, NULL, 'i' },
		{ "regions", required_argument, NULL, 'r' },
		{ "events", required_argument, NULL, 'e' },
		{ "balloon", no_argument, NULL, 'b' },
		{ "unmap", no_argument, NULL, 'u' },
		{ "remap", no_argument, NULL, 'm' },
		{ "fork", no_argument, NULL, 'f' },
		{ "pause-after", required_argument, NULL, 'p' },
		{ "die-after", required_argument, NULL, 'd' },
		{ "page-size-kib", no_argument, NULL, 'k' },
		{ "json", required_argument, NULL, 'j' },
		{ "no-fd", no_argument, NULL, 'n' },
		{ "offset-add", required_argument, NULL, 'o' },
		{ "size-add", required_argument, NULL, 'z' },
		{ "expect-refused", no_argument, NULL, 'x' },
		{ "measure", required_argument, NULL, 'M' },
		{ "in-process", no_argument, NULL, 'I' },
		{ 0 },
	};
	c->nregions = 1;
	c->pause_after = c->die_after = -1;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			c->socket_path = optarg;
			break;
		case 'S':
			c->snap_path = optarg;
			break;
		case 'i':
			c->image_path = optarg;
			break;
		case 'r':
			c->nregions = atoi(optarg);
			break;
		case 'e':
			c->all_events = !strcmp(optarg, "all");
			break;
		case 'b':
			c->balloon = true;
			break;
		case 'u':
			c->unmap = c->all_events = true;
			break;
		case 'm':
			c->remap = c->all_events = true;
			break;
		case 'f':
			c->do_fork = c->all_events = true;
			break;
		case 'p':
			c->pause_after = atol(optarg);
			break;
		case 'd':
			c->die_after = atol(optarg);
			break;
		case 'k':
			c->kib = true;
			break;
		case 'j':
			c->json = optarg;
			break;
		case 'n':
			c->no_fd = true;
			break;
		case 'o':
			c->offset_add = strtoull(optarg, NULL, 0);
			break;
		case 'z':
			c->size_add = strtoull(optarg, NULL, 0);
			break;
		case 'x':
			c->expect_refused = true;
			break;
		case 'M':
			c->measure_pct = atof(optarg);
			break;
		case 'I':
			c->in_process = true;
			break;
		default:
			return fail("unknown option (see the comment at the top of vmm_client.c)");
		}
	}
	if ((!c->socket_path && !c->in_process) || !c->snap_path)
		return fail("usage: vmm_client --socket PATH --snapshot SNAP [OPTIONS]");
	if (c->nregions < 1 || c->nregions > MAX_REGIONS / 2)
		return fail("--regions: 1 to %d", MAX_REGIONS / 2);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Per-fault latency as the toucher sees it: the same for in-process and served memory. */
static int measure(struct client *c)
{
	uint64_t pages = c->total / PAGE, n = 0;
	uint64_t *pick = malloc(pages * sizeof(*pick)), *lat = malloc(pages * sizeof(*lat));
	if (!pick || !lat)
		return fail("no memory");
	for (uint64_t p = 0; p < pages; p++)
		if (c->data_page[p])
			pick[n++] = p;
	uint64_t seed = 88172645463325252ull;
	for (uint64_t i = n; i > 1; i--) { /* Fisher-Yates, xorshift: same pages every run */
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		uint64_t j = seed % i, t = pick[i - 1];
		pick[i - 1] = pick[j];
		pick[j] = t;
	}
	uint64_t want = (uint64_t)((double)n * c->measure_pct / 100.0), k = 0, bad = 0;
	for (uint64_t i = 0; i < want; i++) {
		volatile unsigned char *p = at_flat(c, pick[i] * PAGE);
		unsigned char vec = 0;
		mincore((void *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1)), PAGE, &vec);
		uint64_t t0 = now_ns();
		unsigned char v = p[pick[i] % PAGE];
		uint64_t t1 = now_ns();
		bad += v != c->expect[pick[i] * PAGE + pick[i] % PAGE];
		if (!(vec & 1))
			lat[k++] = t1 - t0;
	}
	qsort(lat, k, sizeof(*lat), cmp_u64);
	printf("{\"faults\": %" PRIu64 ", \"fault_p50_us\": %.2f, \"fault_p99_us\": %.2f, "
	       "\"wrong_bytes\": %" PRIu64 "}\n",
	       k, k ? (double)lat[k / 2] / 1e3 : 0.0, k ? (double)lat[k * 99 / 100] / 1e3 : 0.0,
	       bad);
	free(pick);
	free(lat);
	return bad ? fail("%" PRIu64 " bytes read wrong", bad) : 0;
}

/* The baseline: the same snapshot restored into this process by the library. */
static int measure_in_process(struct client *c)
{
	struct thaw_snapshot *s;
	struct thaw_restore *r;
	int err = thaw_snapshot_open(c->snap_path, NULL, &s);
	if (!err) {
		err = thaw_restore_start(s, NULL, &r);
		if (err)
			thaw_snapshot_close(s);
	}
	if (err)
		return fail("in-process restore of %s: %s", c->snap_path, thaw_strerror(err));
	uint64_t at = 0;
	c->nregions = (int)thaw_snapshot_region_count(s);
	for (int i = 0; i < c->nregions && i < MAX_REGIONS; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		thaw_snapshot_region(s, (size_t)i, &ri);
		c->reg[i] = (struct region){ .addr = thaw_restore_region_addr(r, (size_t)i),
					     .len = ri.len,
					     .offset = at };
		at += ri.len;
	}
	int ret = c->nregions > MAX_REGIONS ? fail("too many regions") : measure(c);
	thaw_restore_free(r);
	for (int i = 0; i < c->nregions && i < MAX_REGIONS; i++)
		munmap(c->reg[i].addr, c->reg[i].len);
	thaw_snapshot_close(s);
	return ret;
}

/* Guest-style work after the handshake: events, touches, checks. */
static int run_guest(struct client *c)
{
	uint64_t pages = c->total / PAGE;
	if (c->measure_pct > 0)
		return measure(c);
	if (move_part(c))
		return 1;
	if (c->die_after >= 0) {
		touch(c, 0, (uint64_t)c->die_after);
		raise(SIGKILL);
	}
	if (c->pause_after >= 0) {
		touch(c, 0, (uint64_t)c->pause_after);
		printf("paused\n");
		fflush(stdout);
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return fail("stdin closed while paused");
	}
	if (c->balloon && inflate_balloon(c))
		return 1;
	/* Early, while most pages are still missing: the child's come through its own uffd. */
	if (c->do_fork && run_fork(c))
		return 1;
	touch(c, 0, pages / 2);
	touch(c, pages / 2, pages - pages / 2);
	return verify(c, "client");
}

static int run(struct client *c)
{
	if (c->in_process)
		return measure_in_process(c);
	if (map_guest(c))
		return 1;
	int uffd = make_uffd(c);
	if (uffd < 0)
		return 1;
	int sock = connect_to(c->socket_path);
	if (sock < 0 || send_handshake(c, sock, uffd))
		return 1;
	if (c->expect_refused)
		return expect_refusal(sock);
	/* The server holds its own copy now; ours would keep the uffd alive after a crash. */
	close(uffd);
	int ret = run_guest(c);
	if (!ret && c->measure_pct <= 0)
		printf("vmm_client: ok: %" PRIu64 " bytes in %d regions checked%s%s%s%s\n",
		       c->total, c->nregions, c->balloon ? ", balloon zeros" : "",
		       c->unmap ? ", unmap" : "", c->remap ? ", remap" : "",
		       c->do_fork ? ", fork" : "");
	close(sock);
	return ret;
}

int main(int argc, char **argv)
{
	struct client c = { 0 };
	int ret = parse(&c, argc, argv) || read_snapshot(&c) || run(&c);
	free(c.expect);
	free(c.data_page);
	return ret;
}
