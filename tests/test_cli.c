/* SPDX-License-Identifier: MIT */
/* The `thaw` command, run as a user would: exit codes, messages, JSON, bytes. */
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
#include <zstd.h>

#define BASE	0x7f1200000000ull
#define OUT_LEN (256 * 1024)

static char out[OUT_LEN];

static double json_num(const char *key)
{
	return test_json_num(out, key);
}

static bool json_has(const char *key)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	return strstr(out, pat) != NULL;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, buf, len), (ssize_t)len);
	CHECK_EQ(close(fd), 0);
}

static void *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	off_t sz = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)sz + 1);
	CHECK(buf);
	CHECK_EQ(pread(fd, buf, (size_t)sz, 0), sz);
	close(fd);
	*len = (size_t)sz;
	return buf;
}

/*
 * A 4 MiB image in 64 chunks of 64 KiB: chunks 0-15 zero, 16-31 random,
 * 32-63 text-like (compressible), so every common chunk kind appears.
 */
#define IMG_LEN (4u << 20)
static uint8_t *make_image(const char *path)
{
	uint8_t *img = calloc(1, IMG_LEN);
	CHECK(img);
	test_fill_random(img + (1u << 20), 1u << 20, 7);
	for (size_t i = 2u << 20; i < IMG_LEN; i += 16) {
		char line[17];
		snprintf(line, sizeof(line), "line %010zu\n", i);
		memcpy(img + i, line, 16);
	}
	write_file(path, img, IMG_LEN);
	return img;
}

static void create_snap(const char *img, const char *snap)
{
	int st = test_run(out, sizeof(out), "%s create --raw %s --base 0x%llx -o %s",
			  test_build_bin("thaw"), img, BASE, snap);
	CHECK_MSG(st == 0, "create exited %d:\n%s", st, out);
}

static int cli_usage_errors(void)
{
	static const struct {
		const char *args;
		const char *says;
	} cases[] = {
		{ "", "no command" },
		{ "frobnicate", "unknown command 'frobnicate'" },
		{ "create --raw /dev/null --base 0x1000", "missing -o" },
		{ "create -o x.snap --raw img --base 0x1000 --chunk-size 3000", "--chunk-size" },
		{ "create -o x.snap --raw img --base 0x1000 --chunk-size 4M", "--chunk-size" },
		{ "create -o x.snap --raw img", "--raw needs --base" },
		{ "create -o x.snap --raw img --base 0x1001", "not aligned" },
		{ "create -o x.snap", "--raw FILE --base ADDR, or --pid PID" },
		{ "create -o x.snap --pid 1 --raw img --base 0", "cannot be combined" },
		{ "info --frobnicate x.snap", "unknown option '--frobnicate'" },
		{ "info", "missing SNAP" },
		{ "verify x.snap --threads zero", "bad --threads" },
		{ "extract x.snap", "missing -o" },
		{ "bench x.snap --mode turbo", "bad --mode" },
		{ "bench x.snap --touch random:150%", "bad --touch" },
		{ "bench x.snap --mode eager --no-background", "--no-background" },
		{ "bench x.snap --mode floor --passes 2", "--passes" },
		{ "bench x.snap --mode floor --whole-page", "--whole-page" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Usage errors stop before anything is read or written. */
		int st = test_run(out, sizeof(out), "%s %s", test_build_bin("thaw"), cases[i].args);
		CHECK_MSG(st == 2, "'thaw %s' exited %d, want 2:\n%s", cases[i].args, st, out);
		CHECK_MSG(strstr(out, cases[i].says), "'thaw %s' should say \"%s\":\n%s",
			  cases[i].args, cases[i].says, out);
	}
	return 0;
}

static int cli_help(void)
{
	static const char *const cmds[] = { "create", "info", "verify", "extract", "bench" };
	int st = test_run(out, sizeof(out), "%s --help", test_build_bin("thaw"));
	CHECK_EQ(st, 0);
	for (size_t i = 0; i < 5; i++)
		CHECK_MSG(strstr(out, cmds[i]), "--help does not mention %s:\n%s", cmds[i], out);
	for (size_t i = 0; i < 5; i++) {
		st = test_run(out, sizeof(out), "%s %s --help", test_build_bin("thaw"), cmds[i]);
		CHECK_MSG(st == 0, "thaw %s --help exited %d", cmds[i], st);
		char want[64];
		snprintf(want, sizeof(want), "Usage: thaw %s", cmds[i]);
		CHECK_MSG(strstr(out, want), "thaw %s --help:\n%s", cmds[i], out);
	}
	/* The version the build was made as (the Makefile, which names the .so),
	 * not the header macro the command prints itself. */
	char want[64] = "";
	st = test_run(want, sizeof(want), "sed -n 's/^VERSION := //p' Makefile");
	want[strcspn(want, "\n")] = 0;
	CHECK_MSG(st == 0 && want[0], "no VERSION in ./Makefile");
	CHECK_MSG(!strcmp(thaw_version(), want), "thaw_version() %s, Makefile %s", thaw_version(),
		  want);
	char so[256];
	snprintf(so, sizeof(so), "libthaw.so.%s", want);
	CHECK_MSG(!access(test_build_bin(so), F_OK), "no %s", so);
	st = test_run(out, sizeof(out), "%s --version", test_build_bin("thaw"));
	CHECK_EQ(st, 0);
	char line[160];
	snprintf(line, sizeof(line), "thaw %s (library %s)", want, want);
	CHECK_MSG(strstr(out, line), "--version printed %s, want %s", out, line);
	return 0;
}

static int cli_create_info(void)
{
	const char *img = test_path("img"), *snap = test_path("img.snap");
	free(make_image(img));
	create_snap(img, snap);
	CHECK_MSG(strstr(out, "1 regions") && strstr(out, "raw 4.00 MiB"), "summary:\n%s", out);

	int st = test_run(out, sizeof(out), "%s info %s --json", test_build_bin("thaw"), snap);
	CHECK_MSG(st == 0, "info exited %d:\n%s", st, out);
	CHECK_EQ(json_num("version"), 1);
	CHECK_EQ(json_num("page_size"), 4096);
	CHECK_EQ(json_num("chunk_size"), 65536);
	CHECK_EQ(json_num("raw_bytes"), IMG_LEN);
	CHECK_EQ(json_num("region_count"), 1);
	CHECK_EQ(json_num("chunk_count"), 64);
	CHECK_EQ(json_num("zero"), 16);
	CHECK_EQ(json_num("zero") + json_num("raw") + json_num("zstd") + json_num("dup"), 64);
	/* Random data does not compress; text does: stored is between. */
	double stored = json_num("stored_bytes");
	CHECK_GT(stored, 1u << 20);
	CHECK_LT(stored, 3u << 20);
	CHECK_EQ(json_num("addr"), BASE);
	CHECK_EQ(json_num("end"), BASE + IMG_LEN);
	CHECK_MSG(strstr(out, "\"prot\": \"rw-\"") && strstr(out, "\"name\": \"img\""), "%s", out);
	CHECK(strstr(out, "\"digest\": \""));

	/* The text form carries the same facts. */
	st = test_run(out, sizeof(out), "%s info %s", test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	CHECK_MSG(strstr(out, "0x00007f1200000000") && strstr(out, "16 zero") && strstr(out, "rw-"),
		  "%s", out);

	/* A different chunk size changes the index. */
	st = test_run(out, sizeof(out), "%s create --raw %s --base 0x%llx -o %s --chunk-size 1M",
		      test_build_bin("thaw"), img, BASE, snap);
	CHECK_EQ(st, 0);
	st = test_run(out, sizeof(out), "%s info --json %s", test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	CHECK_EQ(json_num("chunk_size"), 1u << 20);
	CHECK_EQ(json_num("chunk_count"), 4);

	/* A file that is not a page multiple is refused, saying why. */
	const char *odd = test_path("odd");
	write_file(odd, "abc", 3);
	st = test_run(out, sizeof(out), "%s create --raw %s --base 0x%llx -o %s",
		      test_build_bin("thaw"), odd, BASE, test_path("odd.snap"));
	CHECK_MSG(st == 1 && strstr(out, "multiple of the page size"), "status %d:\n%s", st, out);
	CHECK(access(test_path("odd.snap"), F_OK) != 0);
	/* A missing snapshot fails naming it. */
	st = test_run(out, sizeof(out), "%s info %s", test_build_bin("thaw"),
		      test_path("nope.snap"));
	CHECK_MSG(st == 1 && strstr(out, "nope.snap"), "status %d:\n%s", st, out);
	return 0;
}

static int cli_verify_corrupt(void)
{
	const char *img = test_path("img"), *snap = test_path("img.snap");
	free(make_image(img));
	create_snap(img, snap);
	int st = test_run(out, sizeof(out), "%s verify %s", test_build_bin("thaw"), snap);
	CHECK_MSG(st == 0 && strstr(out, "OK") && strstr(out, "0 bad"), "status %d:\n%s", st, out);

	/* Find a zstd chunk and flip a byte in the middle of its stored bytes. */
	struct thaw_snapshot *s;
	CHECK_OK(thaw_snapshot_open(snap, NULL, &s));
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(s, &in));
	struct thaw_chunk_info ci = { .sz = sizeof(ci) };
	uint64_t victim = UINT64_MAX;
	for (uint64_t i = 0; i < in.chunk_count && victim == UINT64_MAX; i++) {
		CHECK_OK(thaw_snapshot_chunk(s, i, &ci));
		if (ci.kind == THAW_CHUNK_ZSTD)
			victim = i;
	}
	thaw_snapshot_close(s);
	CHECK_MSG(victim != UINT64_MAX, "no zstd chunk in the fixture");
	int fd = open(snap, O_RDWR);
	CHECK(fd >= 0);
	uint8_t b;
	off_t at = (off_t)(ci.stored_off + ci.stored_len / 2);
	CHECK_EQ(pread(fd, &b, 1, at), 1);
	b ^= 0x5a;
	CHECK_EQ(pwrite(fd, &b, 1, at), 1);
	close(fd);

	st = test_run(out, sizeof(out), "%s verify %s", test_build_bin("thaw"), snap);
	char want[128];
	snprintf(want, sizeof(want), "bad chunk %llu at 0x%llx", (unsigned long long)victim,
		 (unsigned long long)ci.addr);
	CHECK_MSG(st == 1, "verify of a corrupt snapshot exited %d:\n%s", st, out);
	CHECK_MSG(strstr(out, want), "want \"%s\" in:\n%s", want, out);
	CHECK_MSG(strstr(out, "FAILED"), "%s", out);
	/* Exactly one line names a bad chunk. */
	CHECK(strstr(strstr(out, "bad chunk") + 1, "bad chunk") == NULL);

	st = test_run(out, sizeof(out), "%s verify --json %s", test_build_bin("thaw"), snap);
	CHECK_EQ(st, 1);
	CHECK_MSG(strstr(out, "\"ok\": false"), "%s", out);
	CHECK_EQ(json_num("bad_chunks"), 1);
	CHECK_EQ(json_num("chunk"), victim);
	CHECK_EQ(json_num("addr"), ci.addr);
	return 0;
}

static int cli_extract_roundtrip(void)
{
	const char *img = test_path("img"), *snap = test_path("img.snap"),
		   *back = test_path("back");
	uint8_t *orig = make_image(img);
	create_snap(img, snap);
	int st = test_run(out, sizeof(out), "%s extract %s -o %s", test_build_bin("thaw"), snap,
			  back);
	CHECK_MSG(st == 0, "extract exited %d:\n%s", st, out);
	size_t len;
	uint8_t *got = read_file(back, &len);
	CHECK_EQ(len, IMG_LEN);
	CHECK_MSG(memcmp(got, orig, IMG_LEN) == 0, "extracted bytes differ from the image");
	free(got);

	st = test_run(out, sizeof(out), "%s extract %s -o %s --region 0", test_build_bin("thaw"),
		      snap, back);
	CHECK_EQ(st, 0);
	got = read_file(back, &len);
	CHECK(len == IMG_LEN && memcmp(got, orig, IMG_LEN) == 0);
	free(got);

	st = test_run(out, sizeof(out), "%s extract %s -o %s --region 3", test_build_bin("thaw"),
		      snap, back);
	CHECK_MSG(st == 1 && strstr(out, "no region 3"), "status %d:\n%s", st, out);
	free(orig);
	return 0;
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strrchr(buf, ')');
	return p ? p[2] : 0;
}

/* Index of the region recorded at addr, from `thaw info --json` in out. */
static long region_at(uint64_t addr)
{
	const char *p = strstr(out, "\"regions\": [");
	CHECK(p);
	while ((p = strstr(p, "\"index\": "))) {
		long idx = (long)test_json_num(p, "index");
		if ((uint64_t)test_json_num(p, "addr") == addr)
			return idx;
		p++;
	}
	return -1;
}

#define PID_LEN (8u << 20)

/*
 * The target is a python3 process rather than a fork of this test, so the
 * test means the same under ASan (whose terabytes of shadow mappings a
 * forked child would carry). It maps private anonymous memory, fills it
 * with known bytes around a never-touched hole, writes the expected
 * contents to a file and prints the mapping's address.
 */
static const char pid_script[] =
	"import ctypes, mmap, random, signal, sys\n"
	"n = 8 << 20\n"
	"m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
	"m[:n // 2] = random.Random(99).randbytes(n // 2)\n"
	"m[n * 3 // 4:] = b'\\xab' * (n // 4)\n"
	"open(sys.argv[1], 'wb').write(m[:])\n"
	"print(ctypes.addressof(ctypes.c_char.from_buffer(m)), flush=True)\n"
	"while True:\n"
	"    signal.pause()\n";

static int cli_create_pid(void)
{
	int pfd[2];
	CHECK_EQ(pipe(pfd), 0);
	const char *expect_path = test_path("expected");
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		execlp("python3", "python3", "-c", pid_script, expect_path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	char line[64] = "";
	if (!f || !fgets(line, sizeof(line), f)) {
		int st;
		waitpid(child, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			test_skip("python3 is not installed (make deps installs it)");
		test_fail(__FILE__, __LINE__, "the python3 target printed no address");
	}
	fclose(f);
	uint64_t addr = strtoull(line, NULL, 10);
	CHECK(addr != 0);
	size_t want_len;
	uint8_t *want = read_file(expect_path, &want_len);
	CHECK_EQ(want_len, PID_LEN);

	const char *snap = test_path("proc.snap"), *back = test_path("region");
	int st = test_run(out, sizeof(out), "%s create --pid %d -o %s", test_build_bin("thaw"),
			  (int)child, snap);
	CHECK_MSG(st == 0, "create --pid exited %d:\n%s", st, out);
	char s = proc_state(child);
	CHECK_MSG(s != 'T' && s != 't', "the process was left stopped (state %c)", s);

	st = test_run(out, sizeof(out), "%s info --json %s", test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	long idx = region_at(addr);
	CHECK_MSG(idx >= 0, "no region at 0x%llx in:\n%.3000s", (unsigned long long)addr, out);
	st = test_run(out, sizeof(out), "%s extract %s --region %ld -o %s", test_build_bin("thaw"),
		      snap, idx, back);
	CHECK_MSG(st == 0, "extract exited %d:\n%s", st, out);
	size_t len;
	uint8_t *got = read_file(back, &len);
	CHECK_EQ(len, PID_LEN);
	CHECK_MSG(memcmp(got, want, PID_LEN) == 0, "the extracted region differs from the child's");
	free(got);

	/* --anon-only: the anonymous mapping, none of the file-backed ones (python's). */
	st = test_run(out, sizeof(out), "%s info --json %s", test_build_bin("thaw"), snap);
	CHECK_MSG(strstr(out, "\"name\": \"/"), "no file-backed region without --anon-only");
	st = test_run(out, sizeof(out), "%s create --pid %d -o %s --anon-only",
		      test_build_bin("thaw"), (int)child, test_path("anon.snap"));
	CHECK_MSG(st == 0, "create --anon-only exited %d:\n%s", st, out);
	st = test_run(out, sizeof(out), "%s info --json %s", test_build_bin("thaw"),
		      test_path("anon.snap"));
	CHECK_EQ(st, 0);
	CHECK_MSG(!strstr(out, "\"name\": \"/"), "a file-backed region under --anon-only:\n%s",
		  out);
	CHECK_GE(region_at(addr), 0);

	/* --leave-stopped leaves it stopped; our SIGCONT brings it back. */
	st = test_run(out, sizeof(out), "%s create --pid %d -o %s --leave-stopped",
		      test_build_bin("thaw"), (int)child, snap);
	CHECK_MSG(st == 0, "create --leave-stopped exited %d:\n%s", st, out);
	s = proc_state(child);
	CHECK_MSG(s == 'T' || s == 't', "state %c after --leave-stopped", s);
	kill(child, SIGCONT);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	/* A process that is gone fails cleanly. */
	st = test_run(out, sizeof(out), "%s create --pid %d -o %s", test_build_bin("thaw"),
		      (int)child, test_path("gone.snap"));
	CHECK_MSG(st == 1 && strstr(out, "no process"), "status %d:\n%s", st, out);
	free(want);
	return 0;
}

static int cli_bench_json(void)
{
	static const char *const modes[] = { "lazy", "eager", "mmap", "floor" };
	static const char *const fields[] = { "mode",	      "restore_start_us", "faults",
					      "pages_fault",  "pages_background", "bytes_read",
					      "fault_p50_us", "fault_p99_us",	  "touch_ms",
					      "total_ms",     "resident_ms",	  "touches",
					      "checksum" };
	const char *img = test_path("img"), *snap = test_path("img.snap");
	free(make_image(img));
	create_snap(img, snap);
	char sum[3][32] = { { 0 } };
	for (int m = 0; m < 4; m++) {
		/* Lazy without the background pass: under load a background pass
		 * could populate this small image before the first touch. */
		int st = test_run(out, sizeof(out),
				  "%s bench %s --mode %s --touch random:50%% --json %s %s %s",
				  test_build_bin("thaw"), snap, modes[m],
				  m == 0 ? "--no-background" : "", m < 3 ? "--source" : "",
				  m < 3 ? img : "");
		CHECK_MSG(st == 0, "bench --mode %s exited %d:\n%s", modes[m], st, out);
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			CHECK_MSG(json_has(fields[f]), "bench --mode %s: no \"%s\":\n%s", modes[m],
				  fields[f], out);
		char want[64];
		snprintf(want, sizeof(want), "\"mode\": \"%s\"", modes[m]);
		CHECK(strstr(out, want));
		CHECK_EQ(json_num("touches"), IMG_LEN / 4096 / 2);
		CHECK_GE(json_num("total_ms"), json_num("touch_ms"));
		CHECK_GT(json_num("faults"), 0);
		CHECK_GE(json_num("fault_p99_us"), json_num("fault_p50_us"));
		if (m < 3) {
			/* Checked against the image file, which thaw only ever read. */
			CHECK_MSG(strstr(out, "\"source_match\": true"),
				  "bench --mode %s: bytes differ from the image:\n%s", modes[m],
				  out);
			const char *c = strstr(out, "\"checksum\": \"");
			CHECK(c);
			snprintf(sum[m], sizeof(sum[m]), "%.16s", c + 13);
		}
	}
	/* The same pages were read in lazy, eager and mmap: same bytes, same sum. */
	CHECK_MSG(!strcmp(sum[0], sum[1]) && !strcmp(sum[0], sum[2]),
		  "checksums differ: lazy %s eager %s mmap %s", sum[0], sum[1], sum[2]);

	/* Lazy with background: resident time and a fully fetched snapshot. */
	int st = test_run(out, sizeof(out), "%s bench %s --mode lazy --json",
			  test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	CHECK_GE(json_num("resident_ms"), 0);
	/* Every data page was installed; zero chunks nobody touched may stay
	 * holes that read as zero once the ranges are unregistered. */
	double installed = json_num("pages_fault") + json_num("pages_background");
	CHECK_GE(installed, IMG_LEN / 4096 * 3 / 4);
	CHECK_LE(installed, IMG_LEN / 4096);
	/* Without it, only what was touched: no resident time. */
	st = test_run(out, sizeof(out),
		      "%s bench %s --mode lazy --no-background --threads 2 --json",
		      test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	CHECK_EQ(json_num("resident_ms"), -1);
	CHECK_EQ(json_num("pages_background"), 0);
	/* The human table names its figures. */
	st = test_run(out, sizeof(out), "%s bench %s --mode eager --touch clustered:10%%",
		      test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	CHECK_MSG(strstr(out, "restore start") && strstr(out, "fault latency"), "%s", out);
	return 0;
}

/* The checksum a bench run printed, or "" (out holds the run's JSON). */
static void bench_checksum(char sum[32])
{
	const char *c = strstr(out, "\"checksum\": \"");
	snprintf(sum, 32, "%.16s", c ? c + 13 : "");
}

/* --whole-page: the touches sum whole pages, the same in every mode and in the image. */
static int cli_bench_whole_page(void)
{
	static const char *const modes[] = { "lazy --no-background", "eager", "mmap" };
	const char *img = test_path("img"), *snap = test_path("img.snap");
	free(make_image(img));
	create_snap(img, snap);
	char sum[3][32], word[32];
	for (int m = 0; m < 3; m++) {
		int st = test_run(
			out, sizeof(out),
			"%s bench %s --mode %s --touch random:20%% --whole-page --source %s "
			"--json",
			test_build_bin("thaw"), snap, modes[m], img);
		CHECK_MSG(st == 0, "bench --mode %s --whole-page exited %d:\n%s", modes[m], st,
			  out);
		CHECK_MSG(strstr(out, "\"source_match\": true") &&
				  strstr(out, "\"whole_page\": true"),
			  "bench --mode %s --whole-page:\n%s", modes[m], out);
		bench_checksum(sum[m]);
	}
	CHECK_MSG(!strcmp(sum[0], sum[1]) && !strcmp(sum[0], sum[2]),
		  "checksums differ: lazy %s eager %s mmap %s", sum[0], sum[1], sum[2]);
	/* One word a page reads other bytes: another sum. */
	int st = test_run(out, sizeof(out), "%s bench %s --mode eager --touch random:20%% --json",
			  test_build_bin("thaw"), snap);
	CHECK_EQ(st, 0);
	bench_checksum(word);
	CHECK_MSG(strcmp(word, sum[1]), "one word and whole pages both sum to %s", word);
	return 0;
}

/* The README's form, background on by default: it records and returns. */
static int cli_bench_record(void)
{
	const char *img = test_path("img"), *snap = test_path("s.thaw");
	free(make_image(img));
	create_snap(img, snap);
	int st = test_run(out, sizeof(out), "timeout 30 %s bench %s --record %s",
			  test_build_bin("thaw"), snap, test_path("run.trace"));
	CHECK_MSG(st == 0, "bench --record exited %d:\n%s", st, out);
	size_t len;
	char *trace = read_file(test_path("run.trace"), &len);
	CHECK_MSG(!strncmp(trace, "thaw-trace 1", 12) && strstr(trace, " page 0x"), "%.200s",
		  trace);
	free(trace);
	return 0;
}

/* The options the other cases leave alone, each shown to have its effect. */
static int cli_options(void)
{
	const char *thaw = test_build_bin("thaw"), *img = test_path("img");
	uint8_t *image = make_image(img);
	/* --name, --level, --threads: compression threads change nothing in the file. */
	const char *s1 = test_path("t1.snap"), *s2 = test_path("t2.snap"),
		   *s19 = test_path("l.snap");
	int st =
		test_run(out, sizeof(out),
			 "%s create --raw %s --base 0x%llx --name guest-mem-0 --threads 1 -o %s && "
			 "%s create --raw %s --base 0x%llx --name guest-mem-0 --threads 3 -o %s && "
			 "cmp %s %s",
			 thaw, img, BASE, s1, thaw, img, BASE, s2, s1, s2);
	CHECK_MSG(st == 0, "create --threads 1 and 3 differ:\n%s", out);
	st = test_run(out, sizeof(out), "%s info --json %s", thaw, s1);
	CHECK_MSG(st == 0 && strstr(out, "\"name\": \"guest-mem-0\""), "--name:\n%s", out);
	/* --level: every zstd chunk is exactly what zstd makes of it at that level. */
	for (int level = 1; level <= 19; level += 18) {
		st = test_run(out, sizeof(out), "%s create --raw %s --base 0x%llx --level %d -o %s",
			      thaw, img, BASE, level, s19);
		CHECK_EQ(st, 0);
		st = test_run(out, sizeof(out), "%s info %s --chunks", thaw, s19);
		CHECK_EQ(st, 0);
		size_t nzstd = 0;
		for (const char *l = out; (l = strchr(l, '\n')); l++) {
			unsigned long id, reg, clen, soff, slen;
			unsigned long long addr;
			char kind[16];
			if (sscanf(l + 1, "%lu %lu %llx %lu %15s %lu %lu", &id, &reg, &addr, &clen,
				   kind, &soff, &slen) != 7 ||
			    strcmp(kind, "zstd"))
				continue;
			static char z[1 << 17];
			size_t want = ZSTD_compress(z, sizeof(z), image + id * 65536, 65536, level);
			CHECK_MSG(slen == want, "level %d chunk %lu: %lu stored, zstd makes %zu",
				  level, id, slen, want);
			nzstd++;
		}
		CHECK_EQ(nzstd, 32);
	}
	/* info --chunks: one line per chunk, the kinds where make_image put them. */
	st = test_run(out, sizeof(out), "%s info %s --chunks", thaw, s1);
	CHECK_EQ(st, 0);
	size_t kinds[3] = { 0 }, lines = 0;
	for (const char *l = out; (l = strchr(l, '\n')); l++) {
		unsigned long id, reg;
		unsigned long long addr;
		unsigned long clen;
		char kind[16];
		if (sscanf(l + 1, "%lu %lu %llx %lu %15s", &id, &reg, &addr, &clen, kind) != 5)
			continue;
		CHECK_EQ(addr, BASE + id * 65536ull);
		kinds[0] += !strcmp(kind, "zero") && id < 16;
		kinds[1] += !strcmp(kind, "raw") && id >= 16 && id < 32;
		kinds[2] += !strcmp(kind, "zstd") && id >= 32;
		lines++;
	}
	CHECK_EQ(lines, 64);
	CHECK_MSG(kinds[0] == 16 && kinds[1] == 16 && kinds[2] == 32, "kinds %zu %zu %zu:\n%s",
		  kinds[0], kinds[1], kinds[2], out);

	/* verify --threads: the same verdict with 1 and 4 threads, also on a bad chunk. */
	for (int t = 1; t <= 4; t += 3) {
		st = test_run(out, sizeof(out), "%s verify %s --threads %d --json", thaw, s1, t);
		CHECK_MSG(st == 0 && json_num("chunks") == 64, "verify --threads %d:\n%s", t, out);
	}
	size_t len;
	uint8_t *b = read_file(s1, &len);
	b[len - 100] ^= 0x20; /* inside the last stored chunk */
	write_file(s2, b, len);
	free(b);
	for (int t = 1; t <= 4; t += 3) {
		st = test_run(out, sizeof(out), "%s verify %s --threads %d", thaw, s2, t);
		CHECK_MSG(st == 1, "verify --threads %d of a bad snapshot: %d\n%s", t, st, out);
	}

	/* extract -o -: the bytes on stdout. */
	st = test_run(out, sizeof(out), "%s extract %s -o - | cmp - %s", thaw, s1, img);
	CHECK_MSG(st == 0, "extract -o - differs from the image:\n%s", out);

	/* bench --only: zero pages need no chunk read, data pages all do. */
	st = test_run(out, sizeof(out), "%s bench %s --only zero --no-background --json", thaw, s1);
	CHECK_EQ(st, 0);
	CHECK_EQ(json_num("touches"), 16 * 16);
	CHECK_EQ(json_num("pages_zero"), 16 * 16);
	CHECK_EQ(json_num("bytes_read"), 0);
	st = test_run(out, sizeof(out), "%s bench %s --only data --no-background --json", thaw, s1);
	CHECK_EQ(st, 0);
	CHECK_EQ(json_num("touches"), 48 * 16);
	CHECK_EQ(json_num("faults"), 48);
	CHECK_EQ(json_num("pages_zero"), 0);
	/* --seed: the same seed picks the same pages (same sum), another seed others. */
	char sum[3][24];
	for (int i = 0; i < 3; i++) {
		st = test_run(out, sizeof(out),
			      "%s bench %s --mode eager --touch random:5%% --seed %d --json", thaw,
			      s1, i < 2 ? 7 : 8);
		CHECK_EQ(st, 0);
		const char *c = strstr(out, "\"checksum\": \"");
		CHECK(c);
		snprintf(sum[i], sizeof(sum[i]), "%.16s", c + 13);
	}
	CHECK_MSG(!strcmp(sum[0], sum[1]) && strcmp(sum[0], sum[2]), "seed 7: %s %s, seed 8: %s",
		  sum[0], sum[1], sum[2]);
	/* --tmpdir: the mmap image goes there; a missing directory is named. */
	st = test_run(out, sizeof(out), "%s bench %s --mode mmap --tmpdir %s", thaw, s1,
		      test_tmpdir());
	CHECK_EQ(st, 0);
	st = test_run(out, sizeof(out), "%s bench %s --mode mmap --tmpdir %s/nope", thaw, s1,
		      test_tmpdir());
	CHECK_MSG(st == 1 && strstr(out, "/nope"), "--tmpdir missing: %d\n%s", st, out);
	free(image);
	return 0;
}

static const struct test_case cases[] = {
	{ "usage_errors", cli_usage_errors, 30 },
	{ "help", cli_help, 10 },
	{ "create_info", cli_create_info, 30 },
	{ "verify_corrupt", cli_verify_corrupt, 30 },
	{ "extract_roundtrip", cli_extract_roundtrip, 30 },
	{ "create_pid", cli_create_pid, 60 },
	{ "bench_json", cli_bench_json, 90 },
	{ "bench_record", cli_bench_record, 60 },
	{ "bench_whole_page", cli_bench_whole_page, 60 },
	{ "options", cli_options, 90 },
};

TEST_MAIN(cases)
