/* SPDX-License-Identifier: MIT */
#include "testlib.h"

#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Per-case state: the child writes its skip or failure reason here. */
static int reason_fd = -1;
static char case_tmpdir[256];

uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void write_reason(const char *kind, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s", kind);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (reason_fd >= 0) {
		ssize_t w = write(reason_fd, buf, strlen(buf));
		(void)w;
	}
}

void test_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_reason("", fmt, ap);
	va_end(ap);
	exit(77);
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	char where[300];
	va_list ap;
	snprintf(where, sizeof(where), "%s:%d: ", file, line);
	va_start(ap, fmt);
	write_reason(where, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *test_tmpdir(void)
{
	return case_tmpdir;
}

const char *test_path(const char *name)
{
	static char bufs[8][512];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", case_tmpdir, name);
	return b;
}

const char *test_build_path(const char *rel)
{
	static char bufs[4][512];
	static unsigned next;
	const char *build = getenv("THAW_BUILD");
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", build && *build ? build : "build", rel);
	return b;
}

const char *test_build_bin(const char *rel)
{
	const char *p = test_build_path(rel);
	if (access(p, X_OK))
		test_fail(__FILE__, __LINE__, "no %s (build it first)", p);
	return p;
}

double test_json_num(const char *json, const char *key)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = json ? strstr(json, pat) : NULL;
	if (!p)
		test_fail(__FILE__, __LINE__, "no \"%s\" in JSON output:\n%.3000s", key,
			  json ? json : "(none)");
	p += strlen(pat);
	if (!strncmp(p, "null", 4))
		return -1;
	char *end;
	double v = strtod(p, &end);
	if (end == p)
		test_fail(__FILE__, __LINE__, "\"%s\" is not a number in:\n%.3000s", key, json);
	return v;
}

void test_fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	unsigned char *p = buf;
	while (len) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t n = len < 8 ? len : 8;
		memcpy(p, &x, n);
		p += n;
		len -= n;
	}
}

int test_run(char *out, size_t out_len, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	size_t len = strlen(cmd);
	snprintf(cmd + len, sizeof(cmd) - len, " 2>&1");
	FILE *f = popen(cmd, "r");
	if (!f)
		return -errno;
	size_t used = 0;
	if (out && out_len)
		out[0] = 0;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (out && used + 1 < out_len) {
			size_t take = n < out_len - 1 - used ? n : out_len - 1 - used;
			memcpy(out + used, tmp, take);
			used += take;
			out[used] = 0;
		}
	}
	int st = pclose(f);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static void remove_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	int r = system(cmd);
	(void)r;
}

enum outcome { PASS, FAIL, SKIP };

static enum outcome run_case(const char *file, const struct test_case *tc, char *reason,
			     size_t reason_len)
{
	int pfd[2];
	if (pipe(pfd) < 0) {
		snprintf(reason, reason_len, "pipe: %s", strerror(errno));
		return FAIL;
	}
	snprintf(case_tmpdir, sizeof(case_tmpdir), "/tmp/thaw-test-XXXXXX");
	if (!mkdtemp(case_tmpdir)) {
		snprintf(reason, reason_len, "mkdtemp: %s", strerror(errno));
		return FAIL;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		reason_fd = pfd[1];
		setpgid(0, 0); /* so a timeout can kill everything the case started */
		exit(tc->fn());
	}
	close(pfd[1]);
	int timeout_s = tc->timeout_s ? tc->timeout_s : 60;
	uint64_t deadline = test_now_ns() + (uint64_t)timeout_s * 1000000000ull;
	int st = 0;
	bool timed_out = false;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (test_now_ns() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			timed_out = true;
			break;
		}
		usleep(2000);
	}
	ssize_t n = read(pfd[0], reason, reason_len - 1);
	reason[n > 0 ? n : 0] = 0;
	close(pfd[0]);
	kill(-pid, SIGKILL); /* leftovers of the case's process group */
	remove_tree(case_tmpdir);
	(void)file;
	if (timed_out) {
		snprintf(reason, reason_len, "timed out after %d s", timeout_s);
		return FAIL;
	}
	if (WIFSIGNALED(st)) {
		size_t l = strlen(reason);
		snprintf(reason + l, reason_len - l, "%skilled by signal %d (%s)", l ? "; " : "",
			 WTERMSIG(st), strsignal(WTERMSIG(st)));
		return FAIL;
	}
	if (WEXITSTATUS(st) == 77)
		return SKIP;
	if (WEXITSTATUS(st) != 0) {
		if (!reason[0])
			snprintf(reason, reason_len, "exit status %d", WEXITSTATUS(st));
		return FAIL;
	}
	return PASS;
}

int test_main(int argc, char **argv, const char *file, const struct test_case *cases, size_t n)
{
	/* THAW_TEST_FILTER (or argv[1]) selects cases by fnmatch pattern. */
	const char *filter = argc > 1 ? argv[1] : getenv("THAW_TEST_FILTER");
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	char suite[128];
	snprintf(suite, sizeof(suite), "%.*s", (int)(strcspn(base, ".")), base);
	unsigned passed = 0, failed = 0, skipped = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		if (filter && *filter && fnmatch(filter, cases[i].name, 0) != 0)
			continue;
		char reason[1024];
		uint64_t t0 = test_now_ns();
		enum outcome o = run_case(file, &cases[i], reason, sizeof(reason));
		unsigned ms = (unsigned)((test_now_ns() - t0) / 1000000);
		switch (o) {
		case PASS:
			printf("ok    %s/%s (%u ms)\n", suite, cases[i].name, ms);
			passed++;
			break;
		case SKIP:
			printf("skip  %s/%s: %s\n", suite, cases[i].name, reason);
			skipped++;
			break;
		case FAIL:
			printf("FAIL  %s/%s: %s\n", suite, cases[i].name, reason);
			failed++;
			break;
		}
	}
	printf("#counts %u %u %u\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

bool test_read_or_sigbus(const volatile void *p, void *out, size_t len)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	sigaction(SIGBUS, &sa, &old);
	bool ok = false;
	if (!sigsetjmp(bus_jmp, 1)) {
		const volatile unsigned char *src = p;
		unsigned char *dst = out;
		for (size_t i = 0; i < len; i++)
			dst[i] = src[i];
		ok = true;
	}
	sigaction(SIGBUS, &old, NULL);
	return ok;
}

int test_child_touch(const volatile void *p)
{
	pid_t pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL); /* sanitizers catch them otherwise */
		signal(SIGSEGV, SIG_DFL);
		unsigned char c = *(const volatile unsigned char *)p;
		_exit(c == 0xEE ? 3 : 0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		test_fail(__FILE__, __LINE__, "waitpid: %s", strerror(errno));
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}
