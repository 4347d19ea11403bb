/* SPDX-License-Identifier: MIT */
/*
 * thaw as CRIU's lazy-pages daemon, with a real CRIU (4.0 or newer: $CRIU,
 * else criu on PATH): a two-process tree (examples/criu/workload) is
 * dumped, imported and stripped, restored with `criu restore --lazy-pages`
 * served by `thaw criu lazy-pages` from a file and from nginx, and every
 * page is checked by the processes themselves (including a child forked
 * while pages are lazy, and after MADV_DONTNEED, munmap and mremap). Bad
 * images are refused naming file and field.
 *
 * The case process is a child subreaper: the dumped tree's orphans and
 * the restored tree (once criu restore -d exits) become its children, so
 * it reaps them and reads the restored root's exit status.
 */
#include "testlib.h"
#include "httpd.h"
#include "thaw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKLOAD_MIB 24

static char criu_bin[PATH_MAX];
static char bin_dir[PATH_MAX]; /* thaw and criu, for PATH */

static const char *abs_build_bin(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int k;
	char *out = buf[k++ % 4];
	if (!realpath(test_build_bin(rel), out))
		test_fail(__FILE__, __LINE__, "realpath %s: %s", rel, strerror(errno));
	return out;
}

/* CRIU 4.0 or newer, as root, with a PATH dir holding `criu` and `thaw`; else skip. */
static void need_criu(void)
{
	if (geteuid() != 0)
		test_skip("criu dump and restore need root");
	const char *env = getenv("CRIU");
	char out[512];
	if (env && *env) {
		if (!realpath(env, criu_bin))
			test_skip("$CRIU (%s) is not there", env);
	} else if (test_run(out, sizeof(out), "command -v criu") == 0) {
		out[strcspn(out, "\n")] = 0;
		snprintf(criu_bin, sizeof(criu_bin), "%s", out);
	} else {
		test_skip("no CRIU: set $CRIU or put criu 4.x on PATH");
	}
	int major = 0;
	if (test_run(out, sizeof(out), "'%s' --version", criu_bin) ||
	    sscanf(strstr(out, "Version: ") ? strstr(out, "Version: ") : "", "Version: %d",
		   &major) != 1 ||
	    major < 4)
		test_skip("CRIU at %s is not 4.0 or newer (%.80s)", criu_bin, out);
	snprintf(bin_dir, sizeof(bin_dir), "%s/bin", test_tmpdir());
	CHECK_OK(mkdir(bin_dir, 0755) ? -errno : 0);
	char link[PATH_MAX + 16];
	snprintf(link, sizeof(link), "%s/criu", bin_dir);
	CHECK_OK(symlink(criu_bin, link) ? -errno : 0);
	snprintf(link, sizeof(link), "%s/thaw", bin_dir);
	CHECK_OK(symlink(abs_build_bin("thaw"), link) ? -errno : 0);
	CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) ? -errno : 0);
}

static bool file_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static pid_t read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = -1;
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

/* Wait (polling, up to ms) until pid is ours and exits; its wait status, or -1 on timeout. */
static int reap(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno == ECHILD) {
			/* Not (yet) ours; gone for good once /proc/PID is. */
			char p[64];
			snprintf(p, sizeof(p), "/proc/%d", (int)pid);
			if (!file_exists(p))
				return 0;
		}
		usleep(10000);
	}
	return -1;
}

struct tree {
	pid_t root, child;
	char run[PATH_MAX]; /* the workload's DIR */
};

/* Start the workload tree and wait until both have filled their memory. */
static void start_tree(struct tree *t, int mib)
{
	snprintf(t->run, sizeof(t->run), "%s/run", test_tmpdir());
	CHECK_OK(mkdir(t->run, 0755) ? -errno : 0);
	const char *wl = abs_build_bin("examples/criu/workload");
	char mibs[16];
	snprintf(mibs, sizeof(mibs), "%d", mib);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		/* Its own session, nothing of ours open: what criu dumps without --shell-job. */
		setsid();
		int fd = open("/dev/null", O_RDWR);
		dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
		close_range(3, ~0u, 0);
		execl(wl, "workload", t->run, mibs, (char *)NULL);
		_exit(127);
	}
	t->root = p;
	char r1[PATH_MAX + 16], r2[PATH_MAX + 16];
	snprintf(r1, sizeof(r1), "%s/ready-1", t->run);
	snprintf(r2, sizeof(r2), "%s/ready-2", t->run);
	for (int i = 0; i < 1000 && !(file_exists(r1) && file_exists(r2)); i++)
		usleep(10000);
	CHECK_MSG(file_exists(r1) && file_exists(r2), "the workload did not get ready");
	t->child = read_pid(r2);
	CHECK_GT(t->child, 0);
}

/* criu dump the tree into dir; both pids reaped, so the restore can have them again. */
static void dump_tree(struct tree *t, const char *dir)
{
	char out[8192];
	CHECK_OK(mkdir(dir, 0755) ? -errno : 0);
	int rc = test_run(out, sizeof(out),
			  "'%s' dump -t %d -D '%s' -o dump.log || tail -20 '%s/dump.log'", criu_bin,
			  (int)t->root, dir, dir);
	CHECK_MSG(rc == 0 && !strstr(out, "Error"), "criu dump: %s", out);
	CHECK_NE(reap(t->root, 10000), -1);
	CHECK_NE(reap(t->child, 10000), -1);
}

/* Touch DIR/go, then wait for the restored root's exit status and every result file. */
static void check_restored(struct tree *t)
{
	char go[PATH_MAX + 8];
	snprintf(go, sizeof(go), "%s/go", t->run);
	FILE *f = fopen(go, "w");
	CHECK(f);
	fclose(f);
	int st = reap(t->root, 30000);
	CHECK_MSG(st != -1, "the restored tree did not finish within 30 s");
	char results[4096] = "", line[256];
	static const int tags[] = { 1, 2, 10, 20 };
	for (size_t i = 0; i < 4; i++) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/result-%d", t->run, tags[i]);
		FILE *r = fopen(p, "r");
		snprintf(line, sizeof(line), "task %d: %s", tags[i], "no result\n");
		if (r) {
			char buf[200] = "";
			if (!fgets(buf, sizeof(buf), r))
				buf[0] = 0;
			fclose(r);
			snprintf(line, sizeof(line), "task %d: %s", tags[i], buf);
		}
		strncat(results, line, sizeof(results) - strlen(results) - 1);
	}
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "restored root: status 0x%x\n%s", st,
		  results);
	CHECK_MSG(!strstr(results, "bad") && !strstr(results, "no result"), "%s", results);
	reap(t->child, 5000);
}

static uint64_t file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

/* The fenced block after "## CRIU" in README.md, the four commands, one per line. */
static void readme_block(char *out, size_t len)
{
	FILE *f = fopen("README.md", "r");
	CHECK_MSG(f, "README.md: %s (run from the repository root)", strerror(errno));
	char line[1024];
	int state = 0; /* 0 before the section, 1 in it, 2 in its first block */
	out[0] = 0;
	while (fgets(line, sizeof(line), f) && state < 3) {
		if (state == 0 && !strncmp(line, "## CRIU", 7))
			state = 1;
		else if (state == 1 && !strncmp(line, "```sh", 5))
			state = 2;
		else if (state == 2 && !strncmp(line, "```", 3))
			state = 3;
		else if (state == 2)
			strncat(out, line, len - strlen(out) - 1);
	}
	fclose(f);
	CHECK_MSG(state == 3, "README.md has no ```sh block under a \"## CRIU\" heading");
}

/* Reap the dumped tree the moment criu dump kills it, as a shell would: criu
 * restore, right behind, needs the pids free. */
static void *reap_dumped(void *arg)
{
	struct tree *t = arg;
	int st;
	while (waitpid(t->root, &st, 0) < 0 && errno == EINTR)
		;
	reap(t->child, 10000); /* ours once its parent is gone */
	return NULL;
}

/* The README's four commands, exactly as written, then every page checked. */
static int readme_commands(void)
{
	need_criu();
	struct tree t;
	start_tree(&t, WORKLOAD_MIB);
	char block[4096], out[16384];
	readme_block(block, sizeof(block));
	CHECK_MSG(strstr(block, "criu dump") && strstr(block, "thaw criu import") &&
			  strstr(block, "thaw criu lazy-pages") && strstr(block, "criu restore"),
		  "README block:\n%s", block);
	char script[PATH_MAX + 8];
	snprintf(script, sizeof(script), "%s/readme.sh", test_tmpdir());
	FILE *f = fopen(script, "w");
	CHECK(f);
	/* The daemon (the block's -d line) keeps the output pipe until every page is
	 * in, so the run below returns once it exited. */
	fprintf(f, "set -e\n%s\n", block);
	fclose(f);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, reap_dumped, &t), 0);
	int rc = test_run(out, sizeof(out), "cd '%s' && PATH='%s':$PATH PID=%d sh readme.sh",
			  test_tmpdir(), bin_dir, (int)t.root);
	pthread_join(th, NULL);
	/* The dump killed the tree; restored, it is ours again (the same pids). */
	CHECK_MSG(rc == 0, "README commands: status %d\n%s", rc, out);
	CHECK_MSG(strstr(out, "thaw criu lazy-pages: done: 2 tasks"), "%s", out);
	check_restored(&t);
	return 0;
}

/* thaw criu lazy-pages for images dir small (work dir work, or NULL), stderr to err; returns
 * once it listens. */
static pid_t spawn_daemon(const char *small, const char *work, const char *snap, const char *json,
			  bool no_bg, const char *err)
{
	const char *thaw = abs_build_bin("thaw");
	pid_t d = fork();
	CHECK(d >= 0);
	if (d == 0) {
		int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		const char *argv[12] = { "thaw", "criu", "lazy-pages", "--images-dir", small };
		int n = 5;
		if (json)
			argv[n++] = "--json-stats", argv[n++] = json;
		if (work)
			argv[n++] = "--work-dir", argv[n++] = work;
		if (no_bg)
			argv[n++] = "--no-background";
		argv[n++] = snap;
		execv(thaw, (char **)argv);
		_exit(127);
	}
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/lazy-pages.socket", work ? work : small);
	for (int i = 0; i < 500 && !file_exists(p); i++)
		usleep(10000);
	CHECK_MSG(file_exists(p), "the daemon did not listen");
	return d;
}

static void read_text(const char *path, char *buf, size_t len)
{
	buf[0] = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		buf[fread(buf, 1, len - 1, f)] = 0;
		fclose(f);
	}
}

/* Import and strip, then the daemon from nginx with --json-stats. */
static int http_restore(void)
{
	need_criu();
	struct httpd h;
	httpd_start(&h, test_tmpdir());
	struct tree t;
	start_tree(&t, WORKLOAD_MIB);
	char img[PATH_MAX], small[PATH_MAX], snap[PATH_MAX], out[16384];
	snprintf(img, sizeof(img), "%s/img", test_tmpdir());
	snprintf(small, sizeof(small), "%s/small", test_tmpdir());
	snprintf(snap, sizeof(snap), "%s", httpd_file(&h, "app.thaw"));
	dump_tree(&t, img);
	const char *thaw = abs_build_bin("thaw");
	int rc = test_run(out, sizeof(out), "'%s' criu import '%s' -o '%s' --strip '%s'", thaw, img,
			  snap, small);
	CHECK_MSG(rc == 0 && strstr(out, "2 tasks"), "import: %s", out);

	/* What travels in the images now is a sliver; the snapshot is compressed. */
	char p[PATH_MAX + 32];
	uint64_t pages_in = 0, pages_out = 0;
	for (int id = 1; id <= 2; id++) {
		snprintf(p, sizeof(p), "%s/pages-%d.img", img, id);
		pages_in += file_size(p);
		snprintf(p, sizeof(p), "%s/pages-%d.img", small, id);
		pages_out += file_size(p);
	}
	CHECK_GT(pages_in, (uint64_t)WORKLOAD_MIB << 20);
	CHECK_LT(pages_out * 50, pages_in);
	CHECK_LT(file_size(snap) * 100, pages_in * 40);

	char json[PATH_MAX + 16], err[PATH_MAX + 16];
	snprintf(json, sizeof(json), "%s/stats.json", test_tmpdir());
	snprintf(err, sizeof(err), "%s/lazy.err", test_tmpdir());
	pid_t d = spawn_daemon(small, NULL, httpd_url(&h, "/app.thaw"), json, false, err);
	rc = test_run(out, sizeof(out), "'%s' restore -D '%s' --lazy-pages -d -o restore.log",
		      criu_bin, small);
	CHECK_MSG(rc == 0, "criu restore: %s", out);
	check_restored(&t);
	int st = reap(d, 20000);
	char log[8192], js[8192];
	read_text(err, log, sizeof(log));
	CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon status 0x%x:\n%s", st,
		  log);
	CHECK_MSG(strstr(log, "done: 2 tasks"), "%s", log);
	read_text(json, js, sizeof(js));
	CHECK_EQ(test_json_num(js, "tasks"), 2);
	CHECK_GT(test_json_num(js, "faults"), 0);
	CHECK_GT(test_json_num(js, "http_requests"), 0);
	CHECK_EQ(test_json_num(js, "chunks_poisoned"), 0);
	httpd_stop(&h);
	return 0;
}

/*
 * A daemon told to stop mid-restore (SIGTERM), fetching only on demand,
 * puts every remaining page in before it exits: the tasks never read zeros.
 */
static int sigterm_finishes(void)
{
	need_criu();
	struct tree t;
	start_tree(&t, 8);
	char img[PATH_MAX], small[PATH_MAX + 8], snap[PATH_MAX + 16], err[PATH_MAX + 16];
	char out[8192], log[8192];
	snprintf(img, sizeof(img), "%s/img", test_tmpdir());
	snprintf(small, sizeof(small), "%s/small", test_tmpdir());
	snprintf(snap, sizeof(snap), "%s/app.thaw", test_tmpdir());
	snprintf(err, sizeof(err), "%s/lazy.err", test_tmpdir());
	dump_tree(&t, img);
	CHECK_EQ(test_run(out, sizeof(out), "'%s' criu import '%s' -o '%s' --strip '%s'",
			  abs_build_bin("thaw"), img, snap, small),
		 0);
	/* A work dir of its own, as criu restore -W has it. */
	char work[PATH_MAX + 8];
	snprintf(work, sizeof(work), "%s/work", test_tmpdir());
	CHECK_OK(mkdir(work, 0755) ? -errno : 0);
	pid_t d = spawn_daemon(small, work, snap, NULL, true, err);
	int rc = test_run(out, sizeof(out),
			  "'%s' restore -D '%s' -W '%s' --lazy-pages -d -o restore.log", criu_bin,
			  small, work);
	CHECK_MSG(rc == 0, "criu restore: %s", out);
	/* Nothing but faults so far; the tasks have not even started their checks. */
	CHECK_OK(kill(d, SIGTERM) ? -errno : 0);
	int st = reap(d, 20000);
	read_text(err, log, sizeof(log));
	CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon status 0x%x:\n%s", st,
		  log);
	CHECK_MSG(strstr(log, "putting every remaining page in"), "%s", log);
	check_restored(&t);
	return 0;
}

/* Copy src to dst with byte off overwritten by len bytes of val (or cut at off when len < 0). */
static void mutate(const char *src, const char *dst, long off, const void *val, long len)
{
	FILE *in = fopen(src, "rb");
	CHECK_MSG(in, "%s: %s", src, strerror(errno));
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), in);
	fclose(in);
	if (len < 0)
		n = (size_t)off < n ? (size_t)off : n;
	else if ((size_t)(off + len) <= n)
		memcpy(buf + off, val, len);
	FILE *out = fopen(dst, "wb");
	CHECK(out);
	CHECK_EQ(fwrite(buf, 1, n, out), n);
	fclose(out);
}

static uint64_t varint(const unsigned char *b, size_t *i, size_t end)
{
	uint64_t v = 0;
	for (int sh = 0; *i < end && sh < 64; sh += 7) {
		unsigned char c = b[(*i)++];
		v |= (uint64_t)(c & 0x7f) << sh;
		if (!(c & 0x80))
			break;
	}
	return v;
}

/*
 * In pagemap image path, the first pagemap_entry's flags (field 4, one
 * byte): set to bits (or or'ed with them when or_in), in place.
 */
static void edit_first_flags(const char *path, unsigned bits, bool or_in)
{
	static unsigned char b[1 << 20];
	FILE *f = fopen(path, "r+b");
	CHECK(f);
	size_t n = fread(b, 1, sizeof(b), f);
	size_t pos = 8; /* two magics */
	CHECK_GT(n, pos + 4);
	pos += 4 + (b[pos] | b[pos + 1] << 8); /* the pagemap_head */
	size_t len = b[pos] | b[pos + 1] << 8, i = pos + 4, end = pos + 4 + len;
	CHECK_LE(end, n);
	bool done = false;
	while (i < end && !done) {
		uint64_t key = varint(b, &i, end);
		CHECK_EQ(key & 7, 0); /* every field of pagemap_entry is a varint */
		if (key == 0x20) {
			CHECK_EQ(b[i] & 0x80, 0);
			b[i] = or_in ? (b[i] | bits) : bits;
			done = true;
		} else {
			varint(b, &i, end);
		}
	}
	CHECK_MSG(done, "%s: first entry has no flags", path);
	CHECK_EQ(fseek(f, 0, SEEK_SET), 0);
	CHECK_EQ(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* Import dir and expect a refusal whose message has want. */
static void expect_refused(const char *thaw, const char *dir, const char *want)
{
	char out[4096];
	int rc = test_run(out, sizeof(out), "'%s' criu import '%s' -o '%s/x.thaw'", thaw, dir,
			  test_tmpdir());
	CHECK_MSG(rc == 1 && strstr(out, want), "import of %s: status %d, wanted \"%s\":\n%s", dir,
		  rc, want, out);
}

static int bad_images(void)
{
	need_criu();
	struct tree t;
	start_tree(&t, 4);
	char img[PATH_MAX], bad[PATH_MAX], out[8192], p[PATH_MAX + 64], q[PATH_MAX + 64];
	snprintf(img, sizeof(img), "%s/img", test_tmpdir());
	snprintf(bad, sizeof(bad), "%s/bad", test_tmpdir());
	dump_tree(&t, img);
	const char *thaw = abs_build_bin("thaw");
	int pid = (int)t.root;

	/* A fresh copy of the images for each damage. */
#define FRESH()                                                                                    \
	CHECK_EQ(test_run(out, sizeof(out), "rm -rf '%s' && cp -a '%s' '%s'", bad, img, bad), 0)
	FRESH();
	snprintf(p, sizeof(p), "%s/pagemap-%d.img", img, pid);
	snprintf(q, sizeof(q), "%s/pagemap-%d.img", bad, pid);
	mutate(p, q, 0, "\0\0\0\0", 4);
	expect_refused(thaw, bad, "magic");

	FRESH();
	mutate(p, q, (long)file_size(p) - 3, NULL, -1);
	char want[64];
	snprintf(want, sizeof(want), "pagemap-%d.img: entry", pid);
	expect_refused(thaw, bad, want);

	/* The first pagemap_entry's flags: a bit nobody knows, then the parent bit. */
	FRESH();
	edit_first_flags(q, 0x8, 0);
	expect_refused(thaw, bad, "field flags");

	FRESH();
	edit_first_flags(q, 0x1, 1);
	expect_refused(thaw, bad, "parent dump");

	FRESH();
	snprintf(p, sizeof(p), "%s/pages-1.img", img);
	snprintf(q, sizeof(q), "%s/pages-1.img", bad);
	mutate(p, q, (long)file_size(p) - 4096, NULL, -1);
	expect_refused(thaw, bad, "pages-1.img");

	FRESH();
	snprintf(q, sizeof(q), "%s/mm-%d.img", bad, pid);
	CHECK_OK(unlink(q) ? -errno : 0);
	snprintf(want, sizeof(want), "mm-%d.img", pid);
	expect_refused(thaw, bad, want);

	FRESH();
	snprintf(p, sizeof(p), "%s/inventory.img", img);
	snprintf(q, sizeof(q), "%s/inventory.img", bad);
	mutate(p, q, 2, "\x77", 1);
	expect_refused(thaw, bad, "inventory.img");
#undef FRESH

	/* A stripped dir: not imported again, and not restored without the daemon. */
	char small[PATH_MAX + 16];
	snprintf(small, sizeof(small), "%s/small", test_tmpdir());
	CHECK_EQ(test_run(out, sizeof(out), "'%s' criu import '%s' -o '%s/s.thaw' --strip '%s'",
			  thaw, img, test_tmpdir(), small),
		 0);
	expect_refused(thaw, small, "stripped by thaw criu import --strip");
	CHECK_NE(test_run(out, sizeof(out),
			  "'%s' restore -D '%s' -d -o restore.log; grep -h 'No parent' "
			  "'%s/restore.log'",
			  criu_bin, small, small),
		 1);
	CHECK_MSG(strstr(out, "No parent for snapshot pagemap"),
		  "criu restore without --lazy-pages: %s", out);

	/* Another snapshot than this dump's: refused before listening; with --daemon
	 * the command the user ran says so and fails. */
	char other[PATH_MAX + 16], raw[PATH_MAX + 16];
	snprintf(other, sizeof(other), "%s/other.thaw", test_tmpdir());
	snprintf(raw, sizeof(raw), "%s/raw", test_tmpdir());
	CHECK_EQ(test_run(out, sizeof(out),
			  "head -c 65536 /dev/urandom > '%s' && '%s' create -o '%s' --raw '%s' "
			  "--base 0",
			  raw, thaw, other, raw),
		 0);
	int rc = test_run(out, sizeof(out), "'%s' criu lazy-pages -d --images-dir '%s' '%s'", thaw,
			  img, other);
	CHECK_MSG(rc == 1 && strstr(out, "does not fit") && strstr(out, "belong to no task"),
		  "status %d: %s", rc, out);

	/* A good import, then a truncated snapshot: the daemon refuses it before listening. */
	char snap[PATH_MAX + 16];
	snprintf(snap, sizeof(snap), "%s/app.thaw", test_tmpdir());
	CHECK_EQ(test_run(out, sizeof(out), "'%s' criu import '%s' -o '%s'", thaw, img, snap), 0);
	mutate(snap, snap, 100, NULL, -1);
	rc = test_run(out, sizeof(out), "'%s' criu lazy-pages --images-dir '%s' '%s'", thaw, img,
		      snap);
	CHECK_MSG(rc == 1 && strstr(out, "cannot open"), "status %d: %s", rc, out);
	snprintf(p, sizeof(p), "%s/lazy-pages.socket", img);
	CHECK(!file_exists(p));
	return 0;
}

/* examples/criu/run.sh, the end-to-end script, as a user runs it. */
static int example_script(void)
{
	need_criu();
	/* The script waits for init to reap the dumped tree, as it would for a user. */
	CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) ? -errno : 0);
	char out[16384];
	int rc = test_run(out, sizeof(out),
			  "CRIU='%s' THAW_BUILD='%s' examples/criu/run.sh --size 8", criu_bin,
			  test_build_path(""));
	CHECK_MSG(rc == 0 && strstr(out, "RESULT daemon=thaw-file ok=1"), "status %d:\n%s", rc,
		  out);
	return 0;
}

static int help_and_usage(void)
{
	const char *thaw = test_build_bin("thaw");
	char out[8192];
	CHECK_EQ(test_run(out, sizeof(out), "%s criu lazy-pages --help", thaw), 0);
	CHECK(strstr(out, "lazy-pages.socket") && strstr(out, "--images-dir") &&
	      strstr(out, "--json-stats") && strstr(out, "--mirror"));
	CHECK_EQ(test_run(out, sizeof(out), "%s criu import --help", thaw), 0);
	CHECK(strstr(out, "--strip"));
	CHECK_EQ(test_run(out, sizeof(out), "%s criu lazy-pages x.thaw", thaw), 2);
	CHECK(strstr(out, "--images-dir"));
	CHECK_EQ(test_run(out, sizeof(out), "%s criu import /nonexistent -o x.thaw", thaw), 1);
	CHECK(strstr(out, "/nonexistent"));
	return 0;
}

static const struct test_case cases[] = {
	{ "help_and_usage", help_and_usage, 10 },     { "bad_images", bad_images, 40 },
	{ "readme_commands", readme_commands, 60 },   { "http_restore", http_restore, 60 },
	{ "sigterm_finishes", sigterm_finishes, 40 }, { "example_script", example_script, 60 },
};

TEST_MAIN(cases)
