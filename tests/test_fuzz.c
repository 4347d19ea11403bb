/* SPDX-License-Identifier: MIT */
/*
 * A smoke run of every libFuzzer target (tests/fuzz/, built by `make test`
 * when clang is there): a few seconds each from the seeds, in a corpus of
 * the case's own. `make fuzz` runs them for longer.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define SMOKE_SECONDS 2

static char out[16384];

static int smoke(const char *target)
{
	char bin[256];
	snprintf(bin, sizeof(bin), "fuzz/%s", target);
	if (access(test_build_bin(bin), X_OK))
		test_skip("%s not built (needs clang: make fuzz-build)", test_build_bin(bin));
	int st = test_run(out, sizeof(out), "FUZZ_CORPUS=%s ./scripts/fuzz.sh %d %s", test_tmpdir(),
			  SMOKE_SECONDS, target);
	CHECK_MSG(st == 0, "%s found a failure:\n%s", target, out);
	CHECK_MSG(strstr(out, "Done "), "%s did not run to the end:\n%s", target, out);
	return 0;
}

static int fuzz_layout(void)
{
	return smoke("fuzz_layout");
}

static int fuzz_chunk(void)
{
	return smoke("fuzz_chunk");
}

static int fuzz_http(void)
{
	return smoke("fuzz_http");
}

static int fuzz_trace(void)
{
	return smoke("fuzz_trace");
}

static int fuzz_handshake(void)
{
	return smoke("fuzz_handshake");
}

static const struct test_case cases[] = {
	{ "layout", fuzz_layout, 30 },	     { "chunk", fuzz_chunk, 30 },
	{ "http", fuzz_http, 30 },	     { "trace", fuzz_trace, 30 },
	{ "handshake", fuzz_handshake, 30 },
};

TEST_MAIN(cases)
