/* SPDX-License-Identifier: MIT */
/* Snapshotting a live, stopped process with thaw_writer_add_process. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#define PAGE	     4096u
#define PATTERN_LEN  ((6u << 20) + 3 * PAGE)
#define BIG_LEN	     (1ull << 30)
#define SPARSE_PAGES 64
#define FILE_BYTES   10000 /* the file mapping spans 5 pages; only 3 hold file */

struct child_addrs {
	uint64_t pattern, big, sparse, file;
};

static void sparse_page(uint8_t *p, unsigned i)
{
	memset(p, (int)(i + 1), PAGE);
	memcpy(p, &i, sizeof(i));
}

static void file_bytes(uint8_t *p)
{
	for (unsigned i = 0; i < FILE_BYTES; i++)
		p[i] = (uint8_t)(i * 7 + 3);
}

/*
 * Fork a child that lays out known memory, reports where, and stops
 * itself: a mixed pattern, a never-touched 1 GiB mapping, a mapping with
 * every fourth page written, and a private mapping of a short file.
 */
static pid_t start_child(struct child_addrs *a, const char *file)
{
	uint8_t fb[FILE_BYTES];
	file_bytes(fb);
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, fb, sizeof(fb)), sizeof(fb));
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		struct child_addrs c;
		uint8_t *pat = mmap(NULL, PATTERN_LEN, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint8_t *big = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		uint8_t *sp = mmap(NULL, SPARSE_PAGES * PAGE, PROT_READ,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint8_t *fm = mmap(NULL, 5 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		if (pat == MAP_FAILED || big == MAP_FAILED || sp == MAP_FAILED || fm == MAP_FAILED)
			_exit(2);
		fixture_fill_mixed(pat, PATTERN_LEN, 42);
		mprotect(sp, SPARSE_PAGES * PAGE, PROT_READ | PROT_WRITE);
		for (unsigned i = 0; i < SPARSE_PAGES; i += 4)
			sparse_page(sp + i * PAGE, i);
		mprotect(sp, SPARSE_PAGES * PAGE, PROT_READ);
		c = (struct child_addrs){ (uintptr_t)pat, (uintptr_t)big, (uintptr_t)sp,
					  (uintptr_t)fm };
		if (write(pfd[1], &c, sizeof(c)) != sizeof(c))
			_exit(3);
		raise(SIGSTOP);
		_exit(0);
	}
	close(fd);
	close(pfd[1]);
	CHECK_EQ(read(pfd[0], a, sizeof(*a)), sizeof(*a));
	close(pfd[0]);
	int st;
	CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
	CHECK_MSG(WIFSTOPPED(st), "child did not stop (status 0x%x)", st);
	return pid;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static struct thaw_snapshot *snapshot_of(pid_t pid, unsigned flags, const char *path, int *nregions)
{
	char err[512] = "";
	struct thaw_writer_opts o = { .sz = sizeof(o),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };
	struct thaw_writer *w;
	CHECK_OK(thaw_writer_open(path, &o, &w));
	int n = thaw_writer_add_process(w, pid, flags);
	CHECK_MSG(n > 0, "add_process: %d (%s) %s", n, thaw_strerror(n), err);
	int r = thaw_writer_close(w);
	CHECK_MSG(r == 0, "close: %s %s", thaw_strerror(r), err);
	*nregions = n;
	struct thaw_snapshot *s;
	struct thaw_open_opts oo = { .sz = sizeof(oo),
				     .err_buf = err,
				     .err_buf_size = sizeof(err) };
	r = thaw_snapshot_open(path, &oo, &s);
	CHECK_MSG(r == 0, "open: %s", err);
	return s;
}

/* The region holding addr, or -1. */
static long region_at(struct thaw_snapshot *s, uint64_t addr, struct thaw_region_info *ri)
{
	for (size_t i = 0; i < thaw_snapshot_region_count(s); i++) {
		CHECK_OK(thaw_snapshot_region(s, i, ri));
		if (addr >= ri->addr && addr < ri->addr + ri->len)
			return (long)i;
	}
	return -1;
}

/*
 * Read [addr, addr+len) of the source out of the snapshot (one region).
 * Counts the chunks lying wholly inside the range by kind.
 */
static void read_back(struct thaw_snapshot *s, uint64_t addr, uint64_t len, uint8_t *out,
		      uint64_t *kinds)
{
	struct thaw_region_info ri = { .sz = sizeof(ri) };
	CHECK_MSG(region_at(s, addr, &ri) >= 0, "no region holds 0x%" PRIx64, addr);
	CHECK_MSG(addr + len <= ri.addr + ri.len,
		  "region %s [0x%" PRIx64 ", +%" PRIu64 ") is short of 0x%" PRIx64, ri.name,
		  ri.addr, ri.len, addr + len);
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	CHECK_OK(thaw_snapshot_get_info(s, &info));
	uint8_t *buf = malloc(info.chunk_size);
	CHECK(buf);
	for (uint64_t c = 0; c < ri.chunk_count; c++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(s, ri.first_chunk + c, &ci));
		if (ci.addr + ci.len <= addr || ci.addr >= addr + len)
			continue;
		if (kinds && ci.addr >= addr && ci.addr + ci.len <= addr + len)
			kinds[ci.kind]++;
		if (!out)
			continue;
		CHECK_EQ(thaw_snapshot_read_chunk(s, ri.first_chunk + c, buf, info.chunk_size),
			 ci.len);
		uint64_t lo = ci.addr > addr ? ci.addr : addr;
		uint64_t hi = ci.addr + ci.len < addr + len ? ci.addr + ci.len : addr + len;
		memcpy(out + (lo - addr), buf + (lo - ci.addr), hi - lo);
	}
	free(buf);
}

/* Pages of [addr, addr+len) in pid that pagemap shows present. */
static uint64_t present_pages(pid_t pid, uint64_t addr, uint64_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/pagemap", (int)pid);
	int fd = open(p, O_RDONLY);
	CHECK(fd >= 0);
	uint64_t n = 0, ent[512];
	for (uint64_t pg = 0; pg < len / PAGE; pg += 512) {
		CHECK_EQ(pread(fd, ent, sizeof(ent), (off_t)((addr / PAGE + pg) * 8)), sizeof(ent));
		for (int i = 0; i < 512; i++)
			n += ent[i] >> 63;
	}
	close(fd);
	return n;
}

static int case_dump_and_verify(void)
{
	struct child_addrs a;
	const char *file = test_path("mapped.bin");
	pid_t pid = start_child(&a, file);
	int n;
	struct thaw_snapshot *s = snapshot_of(pid, 0, test_path("proc.thaw"), &n);
	/* Never-touched memory was not read (reading would have populated it). */
	CHECK_EQ(present_pages(pid, a.big, BIG_LEN), 0);
	end_child(pid);
	CHECK_EQ((size_t)n, thaw_snapshot_region_count(s));

	/* The pattern, byte for byte. */
	uint8_t *want = malloc(PATTERN_LEN), *got = malloc(PATTERN_LEN);
	CHECK(want && got);
	fixture_fill_mixed(want, PATTERN_LEN, 42);
	memset(got, 0x5a, PATTERN_LEN);
	read_back(s, a.pattern, PATTERN_LEN, got, NULL);
	CHECK_MSG(!memcmp(got, want, PATTERN_LEN), "pattern differs");

	/* The untouched gigabyte: nothing but ZERO chunks. */
	uint64_t kinds[THAW_CHUNK_KINDS] = { 0 };
	read_back(s, a.big, BIG_LEN, NULL, kinds);
	CHECK_GE(kinds[THAW_CHUNK_ZERO], BIG_LEN / (64u << 10) - 1);
	CHECK_EQ(kinds[THAW_CHUNK_RAW] + kinds[THAW_CHUNK_ZSTD] + kinds[THAW_CHUNK_DUP], 0);

	/* Every fourth page written, the rest never touched, and the zero mask says which. */
	uint8_t *sp = malloc(SPARSE_PAGES * PAGE), page[PAGE], zero[PAGE] = { 0 };
	read_back(s, a.sparse, SPARSE_PAGES * PAGE, sp, NULL);
	for (unsigned i = 0; i < SPARSE_PAGES; i++) {
		if (i % 4 == 0)
			sparse_page(page, i);
		CHECK_MSG(!memcmp(sp + i * PAGE, i % 4 ? zero : page, PAGE),
			  "sparse page %u differs", i);
	}
	struct thaw_region_info ri = { .sz = sizeof(ri) };
	CHECK(region_at(s, a.sparse, &ri) >= 0);
	CHECK_EQ(ri.prot, PROT_READ);

	/* The file mapping: named by its path, cut at the end of the file. */
	CHECK(region_at(s, a.file, &ri) >= 0);
	CHECK_MSG(!strcmp(ri.name, file), "file region named \"%s\"", ri.name);
	CHECK_EQ(ri.addr, a.file);
	CHECK_EQ(ri.len, 3 * PAGE);
	uint8_t fb[3 * PAGE] = { 0 }, fwant[3 * PAGE] = { 0 };
	file_bytes(fwant);
	read_back(s, a.file, 3 * PAGE, fb, NULL);
	CHECK(!memcmp(fb, fwant, sizeof(fb)));

	/* Kernel pages that cannot be restored are left out; the stack is named. */
	bool stack = false;
	for (size_t i = 0; i < thaw_snapshot_region_count(s); i++) {
		CHECK_OK(thaw_snapshot_region(s, i, &ri));
		CHECK_MSG(strcmp(ri.name, "[vvar]") && strcmp(ri.name, "[vsyscall]") &&
				  strcmp(ri.name, "[vvar_vclock]"),
			  "region %s was included", ri.name);
		stack |= !strcmp(ri.name, "[stack]");
	}
	CHECK(stack);
	thaw_snapshot_close(s);
	free(want);
	free(got);
	free(sp);
	return 0;
}

static int case_anonymous_only(void)
{
	struct child_addrs a;
	const char *file = test_path("mapped.bin");
	pid_t pid = start_child(&a, file);
	int n;
	struct thaw_snapshot *s =
		snapshot_of(pid, THAW_PROCESS_SKIP_FILE_MAPPINGS, test_path("anon.thaw"), &n);
	end_child(pid);
	struct thaw_region_info ri = { .sz = sizeof(ri) };
	CHECK_EQ(region_at(s, a.file, &ri), -1);
	for (size_t i = 0; i < thaw_snapshot_region_count(s); i++) {
		CHECK_OK(thaw_snapshot_region(s, i, &ri));
		CHECK_MSG(ri.name[0] == 0 || ri.name[0] == '[', "file mapping %s included",
			  ri.name);
	}
	uint8_t *want = malloc(PATTERN_LEN), *got = malloc(PATTERN_LEN);
	fixture_fill_mixed(want, PATTERN_LEN, 42);
	read_back(s, a.pattern, PATTERN_LEN, got, NULL);
	CHECK(!memcmp(got, want, PATTERN_LEN));
	thaw_snapshot_close(s);
	free(want);
	free(got);
	return 0;
}

static int case_no_such_process(void)
{
	char err[512] = "";
	struct thaw_writer_opts o = { .sz = sizeof(o),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };
	struct thaw_writer *w;
	CHECK_OK(thaw_writer_open(test_path("none.thaw"), &o, &w));
	/* A child that has exited and been reaped leaves a pid nobody holds. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	CHECK_EQ(thaw_writer_add_process(w, pid, 0), -ENOENT);
	CHECK_MSG(strstr(err, "maps"), "%s", err);
	CHECK_EQ(thaw_writer_add_process(w, 0, 0), -EINVAL);
	thaw_writer_abort(w);
	CHECK(access(test_path("none.thaw"), F_OK) != 0);
	return 0;
}

static const struct test_case cases[] = {
	{ "dump_and_verify", case_dump_and_verify, 120 },
	{ "anonymous_only", case_anonymous_only, 120 },
	{ "no_such_process", case_no_such_process },
};

TEST_MAIN(cases)
