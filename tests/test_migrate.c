/* SPDX-License-Identifier: MIT */
/*
 * Live export (post-copy migration source): the view of live memory served
 * over HTTP restores byte-identical through the ordinary HTTP store, the
 * export will not stop while a destination may still need a chunk, and,
 * across two network namespaces, a cut link is survived and a killed
 * source poisons what is missing instead of zero-filling it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE 4096ul

/* Mixed content with a third of the pages never touched (zero per the page tables). */
static void *source_memory(size_t len, uint64_t seed)
{
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	uint8_t *tmp = malloc(len);
	CHECK(tmp);
	fixture_fill_mixed(tmp, len, seed);
	static const uint8_t zero[PAGE];
	/* Every third 64 KiB chunk and the fixture's zero pages stay untouched. */
	for (size_t p = 0; p < len / PAGE; p++)
		if ((p / 16) % 3 != 1 && memcmp(tmp + p * PAGE, zero, PAGE))
			memcpy(m + p * PAGE, tmp + p * PAGE, PAGE);
	free(tmp);
	return m;
}

static struct thaw_export *export_one(void *mem, size_t len, int memfd)
{
	struct thaw_export_region rg = { .addr = (uint64_t)(uintptr_t)mem,
					 .len = len,
					 .prot = PROT_READ | PROT_WRITE,
					 .name = "test-mem",
					 .memfd = memfd };
	struct thaw_export *x = NULL;
	CHECK_OK(thaw_export_start(&rg, 1, NULL, &x));
	return x;
}

/* Restore relocated, touch every page in a scattered order, compare each with the source. */
static void restore_and_compare(struct thaw_export *x, const uint8_t *src, size_t len)
{
	struct thaw_snapshot *s = NULL;
	CHECK_OK(thaw_snapshot_open(thaw_export_url(x), NULL, &s));
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	CHECK_EQ(in.hashes, 0);
	CHECK_EQ(in.raw_bytes, len);
	CHECK_GT(in.chunks_by_kind[THAW_CHUNK_ZERO], 0);
	struct thaw_restore *r = NULL;
	CHECK_OK(thaw_restore_start(s, NULL, &r));
	const uint8_t *dst = thaw_restore_region_addr(r, 0);
	CHECK(dst && dst != src);
	size_t pages = len / PAGE;
	/* A stride coprime with the page count: every page once, far from stream order. */
	for (size_t i = 0, p = pages - 1; i < pages; i++, p = (p + 7919) % pages)
		CHECK_MSG(!memcmp(dst + p * PAGE, src + p * PAGE, PAGE), "page %zu differs", p);
	CHECK_OK(thaw_restore_wait(r, 30000));
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.faults, 0);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	munmap((void *)dst, len);
}

/* After a full restore: every data chunk went out (by sendfile or not), zero ones did not. */
static void stop_when_all_sent(struct thaw_export *x, bool sendfile)
{
	CHECK_OK(thaw_export_wait(x, 5000));
	struct thaw_export_stats es = { .sz = sizeof(es) };
	CHECK_OK(thaw_export_stats(x, &es));
	CHECK_EQ(es.chunks_sent, es.chunks_data);
	CHECK_GT(es.complete_us, 0);
	CHECK_LT(es.chunks_data, es.chunks);
	CHECK_EQ(es.requests_sendfile > 0, sendfile);
	CHECK_OK(thaw_export_stop(x, 0));
}

static int anonymous_pages(void)
{
	size_t len = 24ul << 20;
	uint8_t *m = source_memory(len, 11);
	struct thaw_export *x = export_one(m, len, -1);
	restore_and_compare(x, m, len);
	stop_when_all_sent(x, false);
	return 0;
}

static int memfd_sendfile(void)
{
	size_t len = 16ul << 20;
	int fd = memfd_create("thaw-test", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, (off_t)len));
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	uint8_t *tmp = source_memory(len, 12);
	static const uint8_t zero[PAGE];
	/* Holes where the source has zeros; some pages written through the fd, so
	 * they are in the file but not in this process's page tables. */
	for (size_t p = 0; p < len / PAGE; p++)
		if (!memcmp(tmp + p * PAGE, zero, PAGE))
			continue;
		else if (p % 5 == 0)
			CHECK_EQ(pwrite(fd, tmp + p * PAGE, PAGE, (off_t)(p * PAGE)), PAGE);
		else
			memcpy(m + p * PAGE, tmp + p * PAGE, PAGE);
	munmap(tmp, len);
	struct thaw_export *x = export_one(m, len, fd);
	restore_and_compare(x, m, len);
	stop_when_all_sent(x, true);
	close(fd);
	return 0;
}

/* One GET of the export's first bytes with this Priority header, on a connection left open. */
static int get_with_priority(struct thaw_export *x, const char *prio)
{
	unsigned port = 0;
	CHECK_EQ(sscanf(thaw_export_url(x), "http://127.0.0.1:%u/", &port), 1);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	char req[256], reply[4096];
	int n = snprintf(req, sizeof(req),
			 "GET /thaw.snap HTTP/1.1\r\nHost: t\r\nRange: bytes=0-99\r\n"
			 "Priority: %s\r\n\r\n",
			 prio);
	CHECK_EQ(write(fd, req, (size_t)n), n);
	CHECK_GT(read(fd, reply, sizeof(reply)), 0);
	CHECK(!strncmp(reply, "HTTP/1.1 206", 12));
	return fd;
}

/* Threads of this process with this nice value. */
static int threads_at_nice(int nice)
{
	DIR *d = opendir("/proc/self/task");
	CHECK(d);
	int count = 0;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], stat[1024];
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		FILE *f = e->d_name[0] == '.' ? NULL : fopen(path, "r");
		if (!f)
			continue;
		size_t got = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[got] = 0;
		/* Field 19 is the nice value, counted after the name's closing parenthesis. */
		const char *p = strrchr(stat, ')');
		for (int field = 2; p && field < 19; field++)
			p = strchr(p + 1, ' ');
		count += p && atoi(p + 1) == nice;
	}
	closedir(d);
	return count;
}

/* Background replies (RFC 9218 urgency 4-7) go out from threads at a lower CPU priority. */
static int background_served_at_low_priority(void)
{
	size_t len = 1ul << 20;
	uint8_t *m = source_memory(len, 13);
	struct thaw_export *x = export_one(m, len, -1);
	int before = threads_at_nice(10);
	int urgent = get_with_priority(x, "u=0");
	CHECK_EQ(threads_at_nice(10), before);
	int bulk = get_with_priority(x, "u=7, i");
	CHECK_EQ(threads_at_nice(10), before + 1);
	close(urgent);
	close(bulk);
	CHECK_OK(thaw_export_stop(x, 1));
	return 0;
}

/*
 * Until each data chunk went out once, stop refuses: before any client,
 * and while a destination that fetches only what it touches has touched
 * half. Once it touched everything, stop succeeds.
 */
static int stop_refused_until_sent(void)
{
	size_t len = 4ul << 20;
	uint8_t *m = source_memory(len, 13);
	struct thaw_export *x = export_one(m, len, -1);
	CHECK_EQ(thaw_export_stop(x, 0), -EBUSY);
	CHECK_EQ(thaw_export_wait(x, 50), -ETIMEDOUT);
	struct thaw_snapshot *s = NULL;
	CHECK_OK(thaw_snapshot_open(thaw_export_url(x), NULL, &s));
	struct thaw_restore_opts ro = { .sz = sizeof(ro), .flags = THAW_RESTORE_NO_BACKGROUND };
	struct thaw_restore *r = NULL;
	CHECK_OK(thaw_restore_start(s, &ro, &r));
	const uint8_t *dst = thaw_restore_region_addr(r, 0);
	CHECK(!memcmp(dst, m, len / 2));
	CHECK_EQ(thaw_export_stop(x, 0), -EBUSY);
	CHECK_EQ(thaw_export_wait(x, 50), -ETIMEDOUT);
	CHECK(!memcmp(dst + len / 2, m + len / 2, len / 2));
	stop_when_all_sent(x, false);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

/* Regions the view cannot describe truthfully are refused, naming why. */
static int bad_regions_refused(void)
{
	uint8_t *anon = source_memory(1ul << 20, 15);
	uint8_t *shared =
		mmap(NULL, 1ul << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	uint8_t *holed = mmap(NULL, 2ul << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(holed != MAP_FAILED);
	CHECK_OK(munmap(holed + (1ul << 20), 1ul << 20));
	int fd = memfd_create("thaw-test", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, 1 << 20));
	struct {
		uint64_t addr, len;
		int memfd;
		uint64_t memfd_offset;
		const char *why;
	} bad[] = {
		{ (uint64_t)(uintptr_t)anon + 100, PAGE, -1, 0, "page-aligned" },
		{ (uint64_t)(uintptr_t)shared, 1ul << 20, -1, 0, "not private anonymous" },
		{ (uint64_t)(uintptr_t)holed, 2ul << 20, -1, 0, "not mapped" },
		{ (uint64_t)(uintptr_t)anon, 1ul << 20, fd, 1ul << 20, "within its" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct thaw_export_region rg = { .addr = bad[i].addr,
						 .len = bad[i].len,
						 .memfd = bad[i].memfd,
						 .memfd_offset = bad[i].memfd_offset };
		char err[256] = "";
		struct thaw_export_opts xo = { .sz = sizeof(xo),
					       .err_buf = err,
					       .err_buf_size = sizeof(err) };
		struct thaw_export *x = NULL;
		CHECK_EQ(thaw_export_start(&rg, 1, &xo, &x), -EINVAL);
		CHECK(x == NULL);
		CHECK_MSG(strstr(err, bad[i].why), "case %zu: \"%s\" does not say \"%s\"", i, err,
			  bad[i].why);
	}
	struct thaw_export_region two[2] = {
		{ .addr = (uint64_t)(uintptr_t)anon + PAGE, .len = PAGE, .memfd = -1 },
		{ .addr = (uint64_t)(uintptr_t)anon, .len = PAGE, .memfd = -1 },
	};
	struct thaw_export *x = NULL;
	CHECK_EQ(thaw_export_start(two, 2, NULL, &x), -EINVAL);
	close(fd);
	return 0;
}

/*
 * A range of more pieces than one writev takes (every other page zero,
 * 4 KiB chunks, one GET of the whole data section) arrives whole and right.
 */
static int long_range_copied(void)
{
	size_t pages = 8192;
	uint8_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	CHECK(m != MAP_FAILED);
	for (size_t p = 1; p < pages; p += 2)
		test_fill_random(m + p * PAGE, PAGE, p);
	struct thaw_export_region rg = { .addr = (uint64_t)(uintptr_t)m,
					 .len = pages * PAGE,
					 .memfd = -1 };
	struct thaw_export_opts xo = { .sz = sizeof(xo), .chunk_size = 4096 };
	struct thaw_export *x = NULL;
	CHECK_OK(thaw_export_start(&rg, 1, &xo, &x));
	struct thaw_export_stats es = { .sz = sizeof(es) };
	CHECK_OK(thaw_export_stats(x, &es));
	CHECK_EQ(es.chunks_data, pages / 2);
	char out[512];
	const char *body = test_path("body");
	int st = test_run(out, sizeof(out), "curl -sf -r %llu- -o %s %s",
			  (unsigned long long)es.tables_len, body, thaw_export_url(x));
	CHECK_MSG(st == 0, "curl: %d: %s", st, out);
	FILE *f = fopen(body, "rb");
	CHECK(f);
	uint8_t page[PAGE];
	for (size_t p = 1; p < pages; p += 2) {
		CHECK_EQ(fread(page, 1, PAGE, f), PAGE);
		CHECK_MSG(!memcmp(page, m + p * PAGE, PAGE), "page %zu differs", p);
	}
	CHECK_EQ(fread(page, 1, 1, f), 0);
	fclose(f);
	CHECK_OK(thaw_export_wait(x, 1000)); /* that one reply sent every data chunk */
	CHECK_OK(thaw_export_stop(x, 0));
	return 0;
}

/* thaw info and thaw verify say that an export's chunks carry no hashes. */
static int info_and_verify(void)
{
	size_t len = 2ul << 20;
	uint8_t *m = source_memory(len, 14);
	struct thaw_export *x = export_one(m, len, -1);
	char out[4096];
	int st = test_run(out, sizeof(out), "%s info %s", test_build_path("thaw"),
			  thaw_export_url(x));
	CHECK_MSG(st == 0 && strstr(out, "none recorded (a live export)"), "thaw info: %d: %s", st,
		  out);
	st = test_run(out, sizeof(out), "%s verify %s", test_build_path("thaw"),
		      thaw_export_url(x));
	CHECK_MSG(st == 0 && strstr(out, "no chunk hashes recorded") && strstr(out, "\nOK"),
		  "thaw verify: %d: %s", st, out);
	CHECK_OK(thaw_export_stop(x, 1));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Two hosts: the source in its own network namespace, joined by a veth */
/* ------------------------------------------------------------------ */

/*
 * The namespaces are unnamed and belong to the case's processes, so they
 * and the veth pair vanish with them, whatever way the case ends.
 */
#define NET_SRC_ADDR "10.99.0.1"
#define NET_DST_ADDR "10.99.0.2"
#define NET_PORT     8642
#define NET_RATE     "80mbit" /* slow enough that the migration is still going when we act */

struct two_hosts {
	pid_t source;
	char src_if[16], dst_if[16];
	char url[64];
};

/* The source: export mem from its own namespace until done or killed. */
static void source_main(void *mem, size_t len, int ready_w, int go_r)
{
	char c;
	if (unshare(CLONE_NEWNET) < 0 || write(ready_w, "n", 1) != 1 || read(go_r, &c, 1) != 1)
		_exit(3);
	struct thaw_export_region rg = { .addr = (uint64_t)(uintptr_t)mem,
					 .len = len,
					 .prot = PROT_READ | PROT_WRITE,
					 .name = "guest",
					 .memfd = -1 };
	struct thaw_export_opts xo = { .sz = sizeof(xo),
				       .bind_addr = NET_SRC_ADDR,
				       .port = NET_PORT };
	struct thaw_export *x = NULL;
	if (thaw_export_start(&rg, 1, &xo, &x) < 0 || write(ready_w, "x", 1) != 1)
		_exit(4);
	thaw_export_wait(x, -1);
	_exit(thaw_export_stop(x, 0) ? 5 : 0);
}

static void sh(const char *fmt, const char *a, const char *b)
{
	char cmd[512], out[512];
	snprintf(cmd, sizeof(cmd), fmt, a, b);
	int st = test_run(out, sizeof(out), "%s", cmd);
	CHECK_MSG(st == 0, "%s: exit %d: %s", cmd, st, out);
}

/* Fork the source exporting mem, put this process in a namespace of its own, link the two. */
static void two_hosts_start(struct two_hosts *h, void *mem, size_t len)
{
	int ready[2], go[2];
	CHECK_OK(pipe(ready));
	CHECK_OK(pipe(go));
	h->source = fork();
	CHECK(h->source >= 0);
	if (h->source == 0) {
		close(ready[0]);
		close(go[1]);
		source_main(mem, len, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	CHECK_EQ(read(ready[0], &c, 1), 1);
	if (unshare(CLONE_NEWNET) < 0)
		test_skip("unshare(CLONE_NEWNET): %s", strerror(errno));
	snprintf(h->src_if, sizeof(h->src_if), "tms%d", (int)getpid());
	snprintf(h->dst_if, sizeof(h->dst_if), "tmd%d", (int)getpid());
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)h->source);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %%s netns %%s", h->dst_if);
	sh(cmd, h->src_if, pid);
	snprintf(cmd, sizeof(cmd),
		 "ip link set lo up && ip addr add " NET_DST_ADDR
		 "/24 dev %%s && ip link set %%s up");
	sh(cmd, h->dst_if, h->dst_if);
	snprintf(cmd, sizeof(cmd),
		 "nsenter -t %%s -n sh -c 'ip link set lo up && ip addr add " NET_SRC_ADDR
		 "/24 dev %s && ip link set %s up && tc qdisc add dev %s root tbf rate " NET_RATE
		 " burst 64kb latency 2000ms'%%s",
		 h->src_if, h->src_if, h->src_if);
	sh(cmd, pid, "");
	CHECK_EQ(write(go[1], "g", 1), 1);
	CHECK_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(go[1]);
	snprintf(h->url, sizeof(h->url), "http://" NET_SRC_ADDR ":%d/thaw.snap", NET_PORT);
}

static struct thaw_restore *restore_from(const char *url, struct thaw_snapshot **snap,
					 int low_speed_ms, int retries)
{
	struct thaw_open_opts oo = { .sz = sizeof(oo),
				     .connect_timeout_ms = 1000,
				     .low_speed_timeout_ms = low_speed_ms,
				     .max_retries = retries };
	CHECK_OK(thaw_snapshot_open(url, &oo, snap));
	struct thaw_restore *r = NULL;
	CHECK_OK(thaw_restore_start(*snap, NULL, &r));
	return r;
}

static void link_set(const struct two_hosts *h, const char *state)
{
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)h->source);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "nsenter -t %%s -n ip link set %s %%s", h->src_if);
	sh(cmd, pid, state);
}

/* The link is cut for 3 s while pages are still streaming; all arrive, byte-identical. */
static int link_cut_mid_migration(void)
{
	size_t len = 32ul << 20;
	uint8_t *m = source_memory(len, 21);
	struct two_hosts h;
	two_hosts_start(&h, m, len);
	struct thaw_snapshot *s = NULL;
	struct thaw_restore *r = restore_from(h.url, &s, 20000, 10);
	const uint8_t *dst = thaw_restore_region_addr(r, 0);
	CHECK(!memcmp(dst + len / 2, m + len / 2, PAGE));
	usleep(300 * 1000);
	link_set(&h, "down");
	usleep(3000 * 1000);
	CHECK_EQ(thaw_restore_wait(r, 0), -ETIMEDOUT); /* the cut really came mid-migration */
	link_set(&h, "up");
	CHECK_OK(thaw_restore_wait(r, 30000));
	CHECK(!memcmp(dst, m, len));
	int st;
	CHECK_EQ(waitpid(h.source, &st, 0), h.source);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "source ended with status 0x%x", st);
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

/*
 * The source dies mid-migration: pages already here stay intact, the rest
 * are poisoned (SIGBUS on touch, never zeros) and the restore reports it.
 */
static int source_killed(void)
{
	size_t len = 32ul << 20;
	uint8_t *m = source_memory(len, 22);
	struct two_hosts h;
	two_hosts_start(&h, m, len);
	struct thaw_snapshot *s = NULL;
	struct thaw_restore *r = restore_from(h.url, &s, 1000, 1);
	const uint8_t *dst = thaw_restore_region_addr(r, 0);
	CHECK(!memcmp(dst + len / 2, m + len / 2, PAGE)); /* resident before the kill */
	usleep(300 * 1000);
	CHECK_OK(kill(h.source, SIGKILL));
	CHECK_EQ(waitpid(h.source, NULL, 0), h.source);
	CHECK_EQ(thaw_restore_wait(r, 30000), -THAW_E_POISONED);
	struct thaw_stats st = { .sz = sizeof(st) };
	CHECK_OK(thaw_restore_stats(r, &st));
	CHECK_GT(st.chunks_poisoned, 0);

	uint8_t page[PAGE];
	size_t bus = 0, same = 0;
	for (size_t p = 0; p < len / PAGE; p++) {
		if (!test_read_or_sigbus(dst + p * PAGE, page, PAGE))
			bus++;
		else {
			CHECK_MSG(!memcmp(page, m + p * PAGE, PAGE),
				  "page %zu neither poisoned nor intact", p);
			same++;
		}
	}
	CHECK_GT(bus, 0);
	CHECK_GT(same, 0);
	CHECK(!memcmp(dst + len / 2, m + len / 2, PAGE));
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	return 0;
}

static const struct test_case cases[] = {
	{ "anonymous_pages", anonymous_pages, 60 },
	{ "memfd_sendfile", memfd_sendfile, 60 },
	{ "stop_refused_until_sent", stop_refused_until_sent, 30 },
	{ "background_served_at_low_priority", background_served_at_low_priority, 30 },
	{ "bad_regions_refused", bad_regions_refused, 30 },
	{ "long_range_copied", long_range_copied, 30 },
	{ "info_and_verify", info_and_verify, 30 },
	{ "link_cut_mid_migration", link_cut_mid_migration, 60 },
	{ "source_killed", source_killed, 60 },
};

TEST_MAIN(cases)
