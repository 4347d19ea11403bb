/* SPDX-License-Identifier: MIT */
/*
 * Test harness: each test file holds a table of named cases; every case
 * runs in its own forked process with a timeout. A case returns 0 (pass),
 * or fails through CHECK*, or skips with test_skip("reason naming the
 * missing kernel feature").
 *
 * Output: one line per case ("ok", "FAIL", "skip: reason"), then a line
 * "#counts P F S" that tests/run.sh sums into the suite's closing line.
 */
#ifndef THAW_TESTS_TESTLIB_H
#define THAW_TESTS_TESTLIB_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct test_case {
	const char *name;
	int (*fn)(void);
	int timeout_s; /* 0 = 60 */
};

int test_main(int argc, char **argv, const char *file, const struct test_case *cases, size_t n);

#define TEST_MAIN(table)                                                                           \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return test_main(argc, argv, __FILE__, table, sizeof(table) / sizeof(table[0]));   \
	}

/* Report a skip with its reason and end the case (never returns). */
void test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Report a failure with its reason and end the case (never returns). */
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                         \
	} while (0)

#define CHECK_MSG(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			test_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
	} while (0)

/* Integer comparisons that print both values. */
#define CHECK_OP(a, op, b)                                                                         \
	do {                                                                                       \
		long long va_ = (long long)(a), vb_ = (long long)(b);                              \
		if (!(va_ op vb_))                                                                 \
			test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, va_,  \
				  vb_);                                                            \
	} while (0)
#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GT(a, b) CHECK_OP(a, >, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)

/* A call returning 0 / -errno that must succeed; prints thaw_strerror. */
#define CHECK_OK(expr)                                                                             \
	do {                                                                                       \
		long long r_ = (long long)(expr);                                                  \
		if (r_ < 0)                                                                        \
			test_fail(__FILE__, __LINE__, "%s = %lld (%s)", #expr, r_,                 \
				  thaw_strerror((int)r_));                                         \
	} while (0)

/* A fresh private directory for this case, removed when the case ends. */
const char *test_tmpdir(void);
/* path inside test_tmpdir(); returns a static buffer rotated among 8. */
const char *test_path(const char *name);
/* The build directory ($THAW_BUILD, default "build") joined with rel. */
const char *test_build_path(const char *rel);
/* test_build_path(rel) of a program; fails the case when it is not there to run. */
const char *test_build_bin(const char *rel);
/*
 * The number after the first "key": in a JSON text (-1 for null); fails the
 * case, showing the text, when the key is missing or not a number.
 */
double test_json_num(const char *json, const char *key);

/* Copy len bytes from p to out; false when the read raised SIGBUS (a poisoned page). */
bool test_read_or_sigbus(const volatile void *p, void *out, size_t len);
/* Read a byte at p in a forked child; the signal that ended the child, or 0. */
int test_child_touch(const volatile void *p);

/* Deterministic pseudo-random bytes (xorshift) for fixtures. */
void test_fill_random(void *buf, size_t len, uint64_t seed);
uint64_t test_now_ns(void);

/*
 * Run a shell command (sh -c), capture its stdout+stderr into out
 * (NUL-terminated, truncated to out_len) and return its exit status, or
 * 128+signal if it was killed.
 */
int test_run(char *out, size_t out_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
