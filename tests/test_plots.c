/* SPDX-License-Identifier: MIT */
/*
 * make bench's pictures: `thaw bench --population` curves, and
 * scripts/bench_plots.py turning a results directory of bench JSON into PNGs
 * (the same file names the bench sections write, on a small snapshot).
 */
#include "testlib.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_LEN (1024 * 1024)

static char out[OUT_LEN];

static const char *thaw(void)
{
	static char path[4096];
	CHECK(realpath(test_build_bin("thaw"), path));
	return path;
}

/* A 6 MiB image: random, zero and text-like thirds, so every mode has work. */
static void snapshot(void)
{
	CHECK_EQ(test_run(out, sizeof(out),
			  "cd %s && head -c 2097152 /dev/urandom > img && "
			  "head -c 2097152 /dev/zero >> img && "
			  "yes 'thaw restores memory lazily' | head -c 2097152 >> img && "
			  "%s create -q -o s.thaw --raw img --base 0x10000",
			  test_tmpdir(), thaw()),
		 0);
}

/* `thaw bench ARGS --json` on the case's snapshot, into results/NAME.json. */
static void bench(const char *name, const char *args)
{
	int st = test_run(out, sizeof(out),
			  "mkdir -p %1$s/results && %2$s bench %1$s/s.thaw %3$s --json > "
			  "%1$s/results/%4$s.json",
			  test_tmpdir(), thaw(), args, name);
	CHECK_MSG(st == 0, "thaw bench %s: status %d: %s", args, st, out);
}

static int test_population_curves(void)
{
	snapshot();
	const char *modes[] = { "lazy", "eager" };
	for (int m = 0; m < 2; m++) {
		char args[128], name[32];
		snprintf(args, sizeof(args), "--mode %s --touch random:0%% --population", modes[m]);
		snprintf(name, sizeof(name), "pop-%s", modes[m]);
		bench(name, args);
		/* Times and bytes never go back; the last sample has every byte in place. */
		int st = test_run(
			out, sizeof(out),
			"python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
			"p=d[\"population\"]; "
			"assert len(p) >= 2, p; "
			"assert all(a[\"t_ms\"] <= b[\"t_ms\"] and a[\"bytes\"] <= b[\"bytes\"] "
			"for a, b in zip(p, p[1:])), p; "
			"assert p[-1][\"bytes\"] == d[\"raw_bytes\"], (p[-1], d[\"raw_bytes\"]); "
			"assert p[0][\"bytes\"] < d[\"raw_bytes\"], p[0]' %s/results/%s.json",
			test_tmpdir(), name);
		CHECK_MSG(st == 0, "%s population: %s", modes[m], out);
	}
	/* Other modes have no curve to give. */
	CHECK_EQ(test_run(out, sizeof(out), "%s bench %s/s.thaw --mode mmap --population", thaw(),
			  test_tmpdir()),
		 2);
	CHECK_MSG(strstr(out, "--population applies to --mode lazy and eager"), "%s", out);
	return 0;
}

static bool is_png(const char *path)
{
	unsigned char magic[8] = { 0 };
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	bool ok = read(fd, magic, 8) == 8 && !memcmp(magic, "\x89PNG\r\n\x1a\n", 8);
	struct stat st;
	ok = ok && fstat(fd, &st) == 0 && st.st_size > 10000;
	close(fd);
	return ok;
}

static int test_pngs_from_bench_json(void)
{
	if (access("/usr/bin/gnuplot", X_OK))
		test_skip("gnuplot is not installed (scripts/deps.sh installs gnuplot-nox)");
	snapshot();
	const char *modes[] = { "floor", "lazy", "eager", "mmap" };
	for (int m = 0; m < 4; m++) {
		char args[64], name[32];
		snprintf(args, sizeof(args), "--mode %s --touch random:10%%", modes[m]);
		/* bench.sh's names: the floor run has no -r10 */
		snprintf(name, sizeof(name), "small-%s%s", modes[m], m ? "-r10" : "");
		bench(name, args);
	}
	bench("pop-lazy", "--mode lazy --touch random:0% --population");
	bench("pop-eager", "--mode eager --touch random:0% --population");
	/* The line scripts/bench_migrate.sh keeps from each migration (examples/migrate). */
	CHECK_EQ(test_run(out, sizeof(out),
			  "cd %s/results && echo 'RESULT mode=post-copy downtime_ms=2.5 "
			  "total_ms=310.2 faults=700 blocktime_ms=30.0 bytes=268435456 "
			  "checksum=0 status=0' > migrate-postcopy-256M.txt && "
			  "echo 'RESULT mode=stop-and-copy downtime_ms=290.0 total_ms=290.0 "
			  "faults=0 blocktime_ms=0 bytes=268435456 checksum=0 status=0' > "
			  "migrate-stopcopy-256M.txt",
			  test_tmpdir()),
		 0);
	int st = test_run(out, sizeof(out), "python3 scripts/bench_plots.py %s/results",
			  test_tmpdir());
	CHECK_MSG(st == 0, "bench_plots.py: status %d: %s", st, out);
	const char *pngs[] = { "latency-small.png", "population.png", "migration.png" };
	for (int i = 0; i < 3; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/results/%s", test_tmpdir(), pngs[i]);
		CHECK_MSG(is_png(path), "%s is not a PNG of some size (%s)", path, out);
	}
	/* One curve per mode, each climbing to every touch. */
	CHECK_EQ(test_run(out, sizeof(out), "ls %s/results/plots/latency-small-*.dat | wc -l",
			  test_tmpdir()),
		 0);
	CHECK_MSG(atoi(out) == 4, "%s CDF curves, not 4", out);
	st = test_run(out, sizeof(out), "tail -qn 1 %s/results/plots/latency-small-*.dat",
		      test_tmpdir());
	CHECK_EQ(st, 0);
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
		CHECK_MSG(atof(strchr(l, ' ') + 1) == 1.0, "a CDF ends below 1: %s", l);
	return 0;
}

static const struct test_case cases[] = {
	{ "population_curves", test_population_curves },
	{ "pngs_from_bench_json", test_pngs_from_bench_json, 120 },
};

TEST_MAIN(cases)
