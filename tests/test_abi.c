/* SPDX-License-Identifier: MIT */
/*
 * The sized structs of the public ABI: a program built against an older or
 * newer thaw.h than the library still gets what it asked for and no more.
 */
#include "thaw.h"
#include "fixture.h"
#include "testlib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

static struct thaw_snapshot *small_snapshot(void)
{
	size_t len = 16 * PAGE;
	void *mem = malloc(len);
	CHECK(mem != NULL);
	fixture_fill_mixed(mem, len, 7);
	struct thaw_region_desc d = { .addr = 0x100000, .len = len, .mem = mem, .name = "r" };
	CHECK_OK(fixture_write_snapshot(test_path("s.thaw"), &d, 1, 0));
	free(mem);
	struct thaw_snapshot *s = NULL;
	CHECK_OK(thaw_snapshot_open(test_path("s.thaw"), NULL, &s));
	return s;
}

/* An output struct whose sz was left at 0 is refused, not overrun. */
static int case_output_sz_unset(void)
{
	struct thaw_snapshot *s = small_snapshot();
	struct thaw_snapshot_info info;
	memset(&info, 0xa5, sizeof(info));
	info.sz = 0;
	CHECK_EQ(thaw_snapshot_get_info(s, &info), -EINVAL);
	CHECK_EQ(info.version, 0xa5a5a5a5u); /* untouched */
	struct thaw_region_info ri = { 0 };
	CHECK_EQ(thaw_snapshot_region(s, 0, &ri), -EINVAL);
	thaw_snapshot_close(s);
	return 0;
}

/* A caller built when the struct was shorter gets exactly its own bytes. */
static int case_output_older_caller(void)
{
	struct thaw_snapshot *s = small_snapshot();
	struct thaw_snapshot_info full = { .sz = sizeof(full) };
	CHECK_OK(thaw_snapshot_get_info(s, &full));
	size_t old = offsetof(struct thaw_snapshot_info, chunk_size);
	struct thaw_snapshot_info part;
	memset(&part, 0xa5, sizeof(part));
	part.sz = old;
	CHECK_OK(thaw_snapshot_get_info(s, &part));
	CHECK_EQ(part.sz, old);
	CHECK_EQ(part.version, full.version);
	CHECK_EQ(part.page_size, PAGE);
	CHECK_EQ(part.chunk_size, 0xa5a5a5a5u); /* past its sz: not written */
	thaw_snapshot_close(s);
	return 0;
}

/* A caller built against a longer struct gets zeros in the fields this library lacks. */
static int case_output_newer_caller(void)
{
	struct thaw_snapshot *s = small_snapshot();
	struct {
		struct thaw_cache_stats st;
		uint64_t later_field;
	} bigger;
	memset(&bigger, 0xa5, sizeof(bigger));
	bigger.st.sz = sizeof(bigger);
	CHECK_OK(thaw_snapshot_cache_stats(s, &bigger.st));
	CHECK_EQ(bigger.st.sz, sizeof(bigger));
	CHECK_EQ(bigger.st.hits, 0);
	CHECK_EQ(bigger.later_field, 0);
	thaw_snapshot_close(s);
	return 0;
}

/* Options this library does not know (non-zero bytes past its struct) are refused. */
static int case_unknown_option_refused(void)
{
	struct thaw_snapshot *s = small_snapshot();
	struct {
		struct thaw_restore_opts o;
		uint64_t later_option;
	} newer = { .o = { .sz = sizeof(newer), .flags = THAW_RESTORE_NO_BACKGROUND } };
	struct thaw_restore *r = NULL;
	newer.later_option = 1;
	CHECK_EQ(thaw_restore_start(s, &newer.o, &r), -EINVAL);
	CHECK(r == NULL);
	/* Zero there means "not used": accepted. */
	newer.later_option = 0;
	CHECK_OK(thaw_restore_start(s, &newer.o, &r));
	thaw_restore_free(r);
	struct thaw_open_opts unset = { 0 };
	struct thaw_snapshot *s2 = NULL;
	CHECK_EQ(thaw_snapshot_open(test_path("s.thaw"), &unset, &s2), -EINVAL);
	thaw_snapshot_close(s);
	return 0;
}

/* A restore that cannot start says why in err_buf, the one error channel. */
static int case_restore_err_buf(void)
{
	struct thaw_snapshot *s = small_snapshot();
	char err[256] = "";
	struct thaw_restore_opts o = { .sz = sizeof(o),
				       .flags = THAW_RESTORE_FIXED_ADDR,
				       .err_buf = err,
				       .err_buf_size = sizeof(err) };
	struct thaw_restore *a = NULL, *b = NULL;
	CHECK_OK(thaw_restore_start(s, &o, &a));
	/* The recorded addresses are taken now: a second fixed restore cannot map there. */
	CHECK(thaw_restore_start(s, &o, &b) < 0);
	CHECK(b == NULL);
	CHECK_MSG(strstr(err, "starting the restore"), "err_buf says \"%s\"", err);
	thaw_restore_free(a);
	thaw_snapshot_close(s);
	return 0;
}

static const struct test_case cases[] = {
	{ "output_sz_unset", case_output_sz_unset },
	{ "output_older_caller", case_output_older_caller },
	{ "output_newer_caller", case_output_newer_caller },
	{ "unknown_option_refused", case_unknown_option_refused },
	{ "restore_err_buf", case_restore_err_buf },
};

TEST_MAIN(cases)
