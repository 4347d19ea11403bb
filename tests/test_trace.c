/* SPDX-License-Identifier: MIT */
/*
 * `thaw trace`, the BPF fault tracer, run as a user would against real
 * processes: which pages they touch first and in what order, how long
 * their faulting threads block when a userfaultfd handler serves them, and
 * the errors a user gets when the process or the privileges are missing.
 */
#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_LEN	  (256 * 1024)
#define PAGE	  4096u
#define CHUNK	  (64u * 1024)
#define N_PAGES	  48 /* touched by the anonymous-memory child */
#define N_CHUNKS  32 /* touched by the lazy-restore child */
#define SNAP_BASE 0x7f3300000000ull

static char out[OUT_LEN];

/* The JSON object of thread tid in the "threads" array (its text onwards). */
static const char *json_thread(long tid)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"tid\": %ld,", tid);
	const char *p = strstr(out, pat);
	CHECK_MSG(p, "no thread %ld in JSON output:\n%.3000s", tid, out);
	return p;
}

static void read_whole(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	size_t n = 0;
	ssize_t r;
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd);
}

/*
 * A running `thaw trace`: stdout goes to a file, stderr to a pipe that is
 * read until the "tracing" line, so the traced process is only let go once
 * the BPF program is attached.
 */
struct tracer {
	pid_t pid;
	int err_fd;
	char err[4096];
	size_t err_len;
	const char *stdout_path;
};

static void tracer_read_err(struct tracer *t, bool until_attached)
{
	while (t->err_len + 1 < sizeof(t->err)) {
		ssize_t r = read(t->err_fd, t->err + t->err_len, sizeof(t->err) - 1 - t->err_len);
		if (r <= 0)
			break;
		t->err_len += (size_t)r;
		t->err[t->err_len] = 0;
		if (until_attached && strstr(t->err, "thaw trace: tracing "))
			return;
	}
	if (until_attached)
		test_fail(__FILE__, __LINE__, "thaw trace did not attach; it said:\n%s", t->err);
}

static void tracer_start(struct tracer *t, const char *args)
{
	int p[2];
	CHECK_EQ(pipe(p), 0);
	memset(t, 0, sizeof(*t));
	t->stdout_path = test_path("trace.stdout");
	t->pid = fork();
	CHECK(t->pid >= 0);
	if (t->pid == 0) {
		int fd = open(t->stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		char cmdline[4096];
		snprintf(cmdline, sizeof(cmdline), "exec %s trace %s", test_build_bin("thaw"),
			 args);
		execl("/bin/sh", "sh", "-c", cmdline, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	t->err_fd = p[0];
	tracer_read_err(t, true);
}

/* Wait for the tracer to end; its stdout lands in `out`. Returns its exit status. */
static int tracer_finish(struct tracer *t)
{
	tracer_read_err(t, false);
	close(t->err_fd);
	int st;
	CHECK_EQ(waitpid(t->pid, &st, 0), t->pid);
	read_whole(t->stdout_path, out, sizeof(out));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Fork a child that runs fn(arg) once `thaw trace --pid CHILD [-o tf]
 * --json` is attached to it; wait for both. The tracer's JSON is left in
 * `out`. Checks that both succeeded and returns the child's pid.
 */
static pid_t trace_child(void (*fn)(void *), void *arg, const char *tf)
{
	int p[2];
	CHECK_EQ(pipe(p), 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		close(p[1]);
		char c;
		if (read(p[0], &c, 1) != 1)
			_exit(3);
		fn(arg);
		_exit(0);
	}
	close(p[0]);
	char args[1024];
	snprintf(args, sizeof(args), "--pid %d%s%s --json", (int)child, tf ? " -o " : "",
		 tf ? tf : "");
	struct tracer t;
	tracer_start(&t, args);
	CHECK_EQ(write(p[1], "g", 1), 1);
	close(p[1]);
	int st = tracer_finish(&t);
	CHECK_MSG(st == 0, "thaw trace exited %d:\n%s\n%s", st, t.err, out);
	int cst;
	CHECK_EQ(waitpid(child, &cst, 0), child);
	CHECK_MSG(WIFEXITED(cst) && WEXITSTATUS(cst) == 0, "the traced child failed: %#x", cst);
	return child;
}

/*
 * Page addresses of the trace file's records inside [lo, hi), in file
 * order, into addrs (at most max); checks every one was taken by tid.
 * Returns how many.
 */
static size_t trace_pages_in(const char *path, uint64_t lo, uint64_t hi, long tid, uint64_t *addrs,
			     size_t max)
{
	static char text[OUT_LEN];
	read_whole(path, text, sizeof(text));
	size_t n = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long t_us, addr;
		long rec_tid;
		if (sscanf(line, "%llu page 0x%llx %ld", &t_us, &addr, &rec_tid) != 3 ||
		    addr < lo || addr >= hi)
			continue;
		CHECK_MSG(rec_tid == tid, "page 0x%llx was taken by thread %ld, not %ld", addr,
			  rec_tid, tid);
		CHECK_LT(n, max);
		addrs[n++] = addr;
	}
	return n;
}

/* The trace file loads through the library and holds the JSON's page count. */
static void check_trace_loads(const char *path, uint64_t pages)
{
	struct thaw_trace *tr = NULL;
	char err[256] = "";
	struct thaw_trace_opts to = { .sz = sizeof(to),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };
	int e = thaw_trace_load(path, &to, &tr);
	CHECK_MSG(e == 0, "thaw_trace_load(%s): %s (%s)", path, thaw_strerror(e), err);
	CHECK_EQ(thaw_trace_count(tr), pages);
	CHECK(thaw_trace_snapshot(tr) == NULL);
	thaw_trace_free(tr);
}

static uint8_t *anon_region;

/* Touches every page of anon_region once, in the order i * 7 mod N_PAGES. */
static void touch_anon(void *arg)
{
	for (unsigned i = 0; i < N_PAGES; i++)
		anon_region[(size_t)(i * 7 % N_PAGES) * PAGE] = (uint8_t)i;
}

/*
 * A child touches N known pages of fresh anonymous memory: the trace has
 * exactly those N first touches, in the order made, and nothing twice.
 */
static int trace_first_touch_order(void)
{
	/* Mapped, never touched here: each page's first touch is the child's. */
	anon_region = mmap(NULL, N_PAGES * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon_region != MAP_FAILED);
	const char *tf = test_path("anon.trace");
	pid_t child = trace_child(touch_anon, NULL, tf);

	uint64_t pages = (uint64_t)test_json_num(out, "pages");
	CHECK_GE(pages, N_PAGES);
	CHECK_GE(test_json_num(out, "faults"), pages);
	CHECK_EQ(test_json_num(out, "lost_events"), 0);
	check_trace_loads(tf, pages);
	uint64_t got[N_PAGES + 1];
	uint64_t base = (uint64_t)(uintptr_t)anon_region;
	size_t n = trace_pages_in(tf, base, base + N_PAGES * PAGE, child, got, N_PAGES + 1);
	CHECK_EQ(n, N_PAGES);
	for (unsigned i = 0; i < N_PAGES; i++)
		CHECK_MSG(got[i] == base + (uint64_t)(i * 7 % N_PAGES) * PAGE,
			  "record %u is page 0x%llx, want page %u of the region", i,
			  (unsigned long long)got[i], i * 7 % N_PAGES);
	return 0;
}

static const char *write_snap(size_t len)
{
	void *mem = malloc(len);
	CHECK(mem);
	fixture_fill_mixed(mem, len, 7);
	/* Every chunk holds data, so each first touch is a fetch, not a zero page. */
	for (size_t off = 0; off < len; off += CHUNK)
		memset((char *)mem + off, 0x5a, 64);
	struct thaw_region_desc rd = { .sz = sizeof(rd),
				       .addr = SNAP_BASE,
				       .len = len,
				       .prot = PROT_READ | PROT_WRITE,
				       .name = "data",
				       .mem = mem };
	const char *snap = test_path("t.snap");
	CHECK_OK(fixture_write_snapshot(snap, &rd, 1, CHUNK));
	free(mem);
	return snap;
}

struct lazy_child {
	const char *snap;
	int stats_fd; /* the child writes its thaw_stats.faults here */
};

/* An in-process lazy restore at the recorded address, touched a chunk at a time, backwards. */
static void touch_restored(void *arg)
{
	struct lazy_child *lc = arg;
	struct thaw_snapshot *s;
	struct thaw_restore *r;
	struct thaw_restore_opts ro = {
		.sz = sizeof(ro), .flags = THAW_RESTORE_FIXED_ADDR | THAW_RESTORE_NO_BACKGROUND
	};
	if (thaw_snapshot_open(lc->snap, NULL, &s) < 0 || thaw_restore_start(s, &ro, &r) < 0)
		_exit(4);
	volatile uint8_t *p = thaw_restore_region_addr(r, 0);
	unsigned sum = 0;
	for (int i = N_CHUNKS - 1; i >= 0; i--)
		sum += p[(size_t)i * CHUNK];
	struct thaw_stats st = { .sz = sizeof(st) };
	if (sum != 0x5a * N_CHUNKS || thaw_restore_stats(r, &st) < 0)
		_exit(5);
	/* The regions stay mapped; the restore's threads end (sanitizers check). */
	thaw_restore_free(r);
	thaw_snapshot_close(s);
	if (write(lc->stats_fd, &st.faults, sizeof(st.faults)) != sizeof(st.faults))
		_exit(6);
	_exit(0);
}

/*
 * Run touch_restored on snap under `thaw trace --pid -o tf --json` (its
 * JSON in `out`); returns the child's pid, its thaw_stats.faults in *faults.
 */
static pid_t traced_restore(const char *snap, const char *tf, uint64_t *faults)
{
	struct lazy_child lc = { .snap = snap };
	int sp[2];
	CHECK_EQ(pipe(sp), 0);
	lc.stats_fd = sp[1];
	pid_t child = trace_child(touch_restored, &lc, tf);
	close(sp[1]);
	CHECK_EQ(read(sp[0], faults, sizeof(*faults)), sizeof(*faults));
	close(sp[0]);
	return child;
}

/*
 * Faults served by a real userfaultfd handler block the faulting thread:
 * the tracer sees one stall per fault of the touching thread, a non-empty
 * histogram, blocked time, and the chunks' first touches in order.
 */
static int trace_uffd_stalls(void)
{
	const char *tf = test_path("uffd.trace");
	uint64_t faults;
	pid_t child = traced_restore(write_snap((size_t)N_CHUNKS * CHUNK), tf, &faults);
	CHECK_EQ(faults, N_CHUNKS);

	const char *th = json_thread(child);
	CHECK_GE(test_json_num(th, "stalls"), N_CHUNKS * 3 / 4);
	CHECK_GT(test_json_num(th, "blocked_us"), 0);
	CHECK_GE(test_json_num(out, "stalls"), test_json_num(th, "stalls"));
	CHECK_GT(test_json_num(out, "stall_p50_us"), 0);
	CHECK_MSG(strstr(out, "\"hist\": [\n"), "empty stall histogram:\n%.3000s", out);
	CHECK_GT(test_json_num(strstr(out, "\"hist\""), "count"), 0);

	uint64_t got[N_CHUNKS + 1];
	size_t n = trace_pages_in(tf, SNAP_BASE, SNAP_BASE + (uint64_t)N_CHUNKS * CHUNK, child, got,
				  N_CHUNKS + 1);
	CHECK_EQ(n, N_CHUNKS);
	for (unsigned i = 0; i < N_CHUNKS; i++)
		CHECK_EQ(got[i], SNAP_BASE + (uint64_t)(N_CHUNKS - 1 - i) * CHUNK);
	check_trace_loads(tf, (uint64_t)test_json_num(out, "pages"));
	return 0;
}

/*
 * A trace file from `thaw trace` drives `thaw optimize`: the restored
 * chunks it saw become the prefetch order, the rest of the process's pages
 * are ignored, and the optimized snapshot holds the same bytes.
 */
static int trace_drives_optimize(void)
{
	const char *snap = write_snap((size_t)N_CHUNKS * 2 * CHUNK);
	const char *tf = test_path("opt.trace"), *opt = test_path("opt.snap");
	uint64_t faults;
	traced_restore(snap, tf, &faults);
	CHECK_EQ(faults, N_CHUNKS);
	int st = test_run(out, sizeof(out), "%s optimize %s --trace %s -o %s --json",
			  test_build_bin("thaw"), snap, tf, opt);
	CHECK_MSG(st == 0, "optimize exited %d:\n%s", st, out);
	CHECK_EQ(test_json_num(out, "chunks_ordered"), N_CHUNKS);
	CHECK_GT(test_json_num(out, "pages_ignored"), 0);
	st = test_run(out, sizeof(out), "%s info --json %s", test_build_bin("thaw"), opt);
	CHECK_MSG(st == 0, "info exited %d:\n%s", st, out);
	CHECK_EQ(test_json_num(out, "prefetch_count"), N_CHUNKS);
	st = test_run(out, sizeof(out), "%s verify %s", test_build_bin("thaw"), opt);
	CHECK_MSG(st == 0, "verify exited %d:\n%s", st, out);
	const char *a = test_path("a.raw"), *b = test_path("b.raw");
	st = test_run(out, sizeof(out), "%s extract %s -o %s && %s extract %s -o %s && cmp %s %s",
		      test_build_bin("thaw"), snap, a, test_build_bin("thaw"), opt, b, a, b);
	CHECK_MSG(st == 0, "the optimized snapshot's bytes differ (%d):\n%s", st, out);
	return 0;
}

#define N_FILE_PAGES 64 /* touched by the file-paging child, every 4th page */

static const uint8_t *file_map;

static void touch_file(void *arg)
{
	/* Checked again here, where the tracer is attached: a page back in the page
	 * cache would be read without a wait, and the case would test nothing. */
	unsigned char vec[N_FILE_PAGES * 4];
	if (mincore((void *)file_map, sizeof(vec) * PAGE, vec))
		_exit(6);
	for (unsigned i = 0; i < N_FILE_PAGES * 4; i++)
		if (vec[i] & 1)
			_exit(7);
	unsigned sum = 0;
	for (unsigned i = 0; i < N_FILE_PAGES; i++)
		sum += file_map[(size_t)i * 4 * PAGE];
	_exit(sum == *(unsigned *)arg ? 0 : 5);
}

/*
 * The kernel's own file paging, no userfaultfd: reads of a file mapping
 * whose pages are not in the page cache wait for the disk, and the tracer
 * sees those waits as stalls just the same.
 */
static int trace_file_paging(void)
{
	const size_t len = (size_t)N_FILE_PAGES * 4 * PAGE;
	uint8_t *data = malloc(len);
	CHECK(data);
	test_fill_random(data, len, 11);
	unsigned want = 0;
	for (unsigned i = 0; i < N_FILE_PAGES; i++)
		want += data[(size_t)i * 4 * PAGE];
	const char *path = test_path("paged");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, data, len), (ssize_t)len);
	free(data);
	CHECK_EQ(fsync(fd), 0);
	/* Clean pages leave the page cache; no readahead brings neighbours back. */
	CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	file_map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(file_map != MAP_FAILED);
	CHECK_EQ(madvise((void *)file_map, len, MADV_RANDOM), 0);
	unsigned char vec[N_FILE_PAGES * 4];
	CHECK_EQ(mincore((void *)file_map, len, vec), 0);
	for (unsigned i = 0; i < N_FILE_PAGES * 4; i++)
		CHECK_MSG(!(vec[i] & 1), "page %u of the file stayed in the page cache", i);

	pid_t child = trace_child(touch_file, &want, NULL);
	close(fd);
	const char *th = json_thread(child);
	/* The figures that tell a wait that was not seen from one that did not happen. */
	CHECK_MSG(test_json_num(th, "stalls") >= N_FILE_PAGES * 3 / 4,
		  "%.0f stalls for %u reads of uncached pages (%.0f faults, %.0f lost events, "
		  "%.0f us blocked)",
		  test_json_num(th, "stalls"), N_FILE_PAGES, test_json_num(th, "faults"),
		  test_json_num(out, "lost_events"), test_json_num(th, "blocked_us"));
	CHECK_GT(test_json_num(th, "blocked_us"), 0);
	return 0;
}

/*
 * `thaw trace -- CMD`: CMD is held until tracing is attached, so a lazy
 * restore by `thaw bench` shows its first fault; stalls match its faults.
 */
static int trace_command(void)
{
	const char *snap = write_snap(1u << 20);
	const char *bench_json = test_path("bench.json");
	char args[2048];
	/* As the README writes it: thaw trace --json -o run.trace -- CMD */
	const char *trace = test_path("run.trace");
	snprintf(
		args, sizeof(args),
		"--json -o %s -- /bin/sh -c 'exec %s bench %s --touch seq --no-background --json > "
		"%s'",
		trace, test_build_bin("thaw"), snap, bench_json);
	struct tracer t;
	tracer_start(&t, args);
	int st = tracer_finish(&t);
	CHECK_MSG(st == 0, "thaw trace exited %d:\n%s\n%s", st, t.err, out);
	CHECK_EQ(test_json_num(out, "exit_status"), 0);
	double stalls = test_json_num(out, "stalls");
	double pages = test_json_num(out, "pages");
	static char bench[OUT_LEN];
	read_whole(bench_json, bench, sizeof(bench));
	double faults = test_json_num(bench, "faults");
	CHECK_EQ(faults, (1u << 20) / CHUNK);
	CHECK_GE(stalls, faults * 3 / 4);
	/* The bench's own faults are among the first touches, with its start-up's. */
	CHECK_GE(pages, faults);
	/* -o wrote each first touch as a "<t_us> page 0x<addr> <tid>" record. */
	static char text[1 << 20];
	read_whole(trace, text, sizeof(text));
	size_t records = 0;
	for (const char *p = text; (p = strstr(p, " page 0x")); p++)
		records++;
	CHECK_MSG(records == (size_t)pages, "%zu records in %s, %.0f pages", records, trace, pages);
	return 0;
}

/* No such process, no privileges, bad usage: a clear message and status. */
static int trace_errors(void)
{
	pid_t gone = fork();
	CHECK(gone >= 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	int st = test_run(out, sizeof(out), "%s trace --pid %d", test_build_bin("thaw"), (int)gone);
	CHECK_MSG(st == 1, "exit %d:\n%s", st, out);
	char want[64];
	snprintf(want, sizeof(want), "no process %d", (int)gone);
	CHECK_MSG(strstr(out, want), "no '%s' in:\n%s", want, out);

	/* Root without capabilities cannot load BPF and is told so. */
	st = test_run(out, sizeof(out),
		      "setpriv --bounding-set=-all --inh-caps=-all %s trace --pid %d",
		      test_build_bin("thaw"), (int)getpid());
	CHECK_MSG(st == 1, "exit %d:\n%s", st, out);
	CHECK_MSG(strstr(out, "BPF cannot load: not permitted"), "unclear message:\n%s", out);

	st = test_run(out, sizeof(out), "%s trace -- %s", test_build_bin("thaw"),
		      test_path("no-such-command"));
	CHECK_MSG(st == 1 && strstr(out, "cannot run"), "exit %d:\n%s", st, out);

	st = test_run(out, sizeof(out), "%s trace --help", test_build_bin("thaw"));
	CHECK_MSG(st == 0 && strstr(out, "Usage: thaw trace --pid PID"), "exit %d:\n%s", st, out);
	st = test_run(out, sizeof(out), "%s --help", test_build_bin("thaw"));
	CHECK_MSG(st == 0 && strstr(out, "  trace "), "trace is not listed:\n%s", out);
	st = test_run(out, sizeof(out), "%s trace -o x", test_build_bin("thaw"));
	CHECK_MSG(st == 2 && strstr(out, "missing --pid"), "exit %d:\n%s", st, out);
	st = test_run(out, sizeof(out), "%s trace --pid 1 -- true", test_build_bin("thaw"));
	CHECK_MSG(st == 2 && strstr(out, "not both"), "exit %d:\n%s", st, out);
	st = test_run(out, sizeof(out), "%s trace --pid 1 --duration 0", test_build_bin("thaw"));
	CHECK_MSG(st == 2 && strstr(out, "bad --duration"), "exit %d:\n%s", st, out);
	return 0;
}

/* --duration ends a trace of a process that keeps running. */
static int trace_duration(void)
{
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	uint64_t t0 = test_now_ns();
	int st = test_run(out, sizeof(out), "%s trace --pid %d --duration 0.3",
			  test_build_bin("thaw"), (int)child);
	uint64_t ms = (test_now_ns() - t0) / 1000000;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK_MSG(st == 0, "exit %d:\n%s", st, out);
	CHECK_MSG(strstr(out, "stalls: 0,"), "a sleeping process stalled:\n%s", out);
	CHECK_GE(ms, 300);
	CHECK_LT(ms, 10000);
	return 0;
}

/*
 * SIGTERM ends a trace like the process's exit does: status 0 and the
 * summary, also when stdout is a file (flushed only at the end).
 */
static int trace_sigterm(void)
{
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	char args[64];
	snprintf(args, sizeof(args), "--pid %d", (int)child);
	struct tracer t;
	tracer_start(&t, args);
	CHECK_EQ(kill(t.pid, SIGTERM), 0);
	int st = tracer_finish(&t);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK_MSG(st == 0, "thaw trace exited %d on SIGTERM:\n%s", st, t.err);
	CHECK_MSG(strstr(out, "stalls: 0,"), "no summary after SIGTERM:\n%s", out);
	return 0;
}

static const struct test_case cases[] = {
	{ "first_touch_order", trace_first_touch_order, 30 },
	{ "uffd_stalls", trace_uffd_stalls, 30 },
	{ "drives_optimize", trace_drives_optimize, 30 },
	{ "file_paging", trace_file_paging, 30 },
	{ "command", trace_command, 30 },
	{ "errors", trace_errors, 30 },
	{ "duration", trace_duration, 30 },
	{ "sigterm", trace_sigterm, 30 },
};

TEST_MAIN(cases)
