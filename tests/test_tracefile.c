/* SPDX-License-Identifier: MIT */
/* First-touch trace files: what is written reads back; what is malformed is refused by line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"
#include "thaw.h"

#define DIGEST "00112233445566778899aabbccddeeff"

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f);
	CHECK_EQ(fputs(text, f) >= 0, 1);
	CHECK_EQ(fclose(f), 0);
}

static int case_round_trip(void)
{
	const char *path = test_path("t.trace");
	struct thaw_trace *t, *back;
	char err[256] = "", text[512];
	struct thaw_trace_opts to = { .sz = sizeof(to),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };

	CHECK_OK(thaw_trace_new(&t));
	CHECK_EQ(thaw_trace_snapshot(t) == NULL, 1);
	CHECK_OK(thaw_trace_set_snapshot(t, DIGEST));
	CHECK_OK(thaw_trace_add_chunk(t, 5, 17));
	CHECK_OK(thaw_trace_add_page(t, 9, 0x7f0000001000ull, 4242));
	CHECK_OK(thaw_trace_save(t, path));
	thaw_trace_free(t);

	CHECK_OK(thaw_trace_load(path, &to, &back));
	CHECK_EQ(thaw_trace_count(back), 2);
	CHECK_EQ(strcmp(thaw_trace_snapshot(back), DIGEST), 0);
	/* Saving what was read gives the same text: nothing is lost either way. */
	CHECK_OK(thaw_trace_save(back, test_path("again.trace")));
	thaw_trace_free(back);
	CHECK_EQ(test_run(text, sizeof(text), "cmp %s %s", path, test_path("again.trace")), 0);
	CHECK_EQ(test_run(text, sizeof(text), "cat %s", path), 0);
	CHECK_MSG(strstr(text, "5 chunk 17\n") && strstr(text, "9 page 0x7f0000001000 4242\n"),
		  "unexpected text: %s", text);
	return 0;
}

/* Each malformed file must be refused with the line and the reason. */
static int case_refusals(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "not a trace\n", ":1: not a thaw trace" },
		{ "", ":1: empty file" },
		{ "thaw-trace 1\n1 chunk 3\n", ":2: chunk record without a \"snapshot" },
		{ "thaw-trace 1\nsnapshot xyz\n", ":2: snapshot must be" },
		{ "thaw-trace 1\n# c\n\n7 page zz 1\n", ":4: a page record" },
		{ "thaw-trace 1\n7 block 1\n", ":2: unknown record kind" },
		{ "thaw-trace 1\nsnapshot " DIGEST "\n7 chunk 3 4\n", ":3: a chunk record" },
		/* Numbers that sscanf's %llu would have wrapped or cut. */
		{ "thaw-trace 1\nsnapshot " DIGEST "\n-1 chunk 3\n", ":3: expected" },
		{ "thaw-trace 1\nsnapshot " DIGEST "\n1 chunk -3\n", ":3: a chunk record" },
		{ "thaw-trace 1\nsnapshot " DIGEST "\n18446744073709551616 chunk 1\n",
		  ":3: expected" },
		{ "thaw-trace 1\nsnapshot " DIGEST "\n1 chunk 0x10\n", ":3: a chunk record" },
		{ "thaw-trace 1\n1 page 0x-1000 1\n", ":2: a page record" },
		{ "thaw-trace 1\n1 page 0x10000000000000000 1\n", ":2: a page record" },
		{ "thaw-trace 1\n1 page 0x1000 -1\n", ":2: a page record" },
		{ "thaw-trace 1\n1 page 0x1000 4294967296\n", ":2: a page record" },
		{ "thaw-trace 1\n1 pages 0x1000 1\n", ":2: unknown record kind" },
		{ "thaw-trace 1\n+1 page 0x1000 1\n", ":2: expected" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = test_path("bad.trace");
		struct thaw_trace *t = NULL;
		char err[256] = "";
		struct thaw_trace_opts to = { .sz = sizeof(to),
					      .err_buf = err,
					      .err_buf_size = sizeof(err) };

		write_text(path, bad[i].text);
		CHECK_EQ(thaw_trace_load(path, &to, &t), -EINVAL);
		CHECK_MSG(strstr(err, bad[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err,
			  bad[i].want);
		CHECK(t == NULL);
	}
	return 0;
}

static const struct test_case cases[] = {
	{ "round_trip", case_round_trip },
	{ "refusals", case_refusals },
};

TEST_MAIN(cases)
