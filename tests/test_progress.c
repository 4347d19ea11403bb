/* SPDX-License-Identifier: MIT */
/*
 * Progress bars of the long-running commands: drawn on a terminal (a pty
 * from script(1)), never into a pipe, never with --quiet.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_LEN (64 * 1024)

static char out[OUT_LEN];

/* The commands that draw a bar, each with the label it draws, run on one snapshot. */
struct cmd {
	const char *label;
	const char *args; /* %1$s: the thaw binary, %2$s: the case directory */
};

static const struct cmd cmds[] = {
	{ "writing", "%1$s create -o %2$s/s.thaw --raw %2$s/img.raw --base 0x10000" },
	{ "verifying", "%1$s verify %2$s/s.thaw" },
	{ "optimizing", "%1$s optimize %2$s/s.thaw --trace %2$s/run.trace -o %2$s/o.thaw" },
	{ "extracting", "%1$s extract %2$s/o.thaw -o %2$s/out.raw" },
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void fixture(void)
{
	if (access("/usr/bin/script", X_OK) != 0)
		test_skip("script(1) from util-linux is not installed (it provides the pty)");
	CHECK_EQ(test_run(out, sizeof(out),
			  "head -c 6291456 /dev/urandom > %1$s/img.raw && "
			  "printf 'thaw-trace 1\\n1 page 0x17000 1\\n2 page 0x10000 1\\n' "
			  "> %1$s/run.trace",
			  test_tmpdir()),
		 0);
}

/*
 * Run command i; under a pty when tty (stdin from /dev/null, so script(1)
 * ends with the command), else with stderr into a pipe. Returns its status.
 */
static int run(size_t i, bool tty, const char *extra)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), cmds[i].args, test_build_bin("thaw"), test_tmpdir());
	if (tty)
		return test_run(out, sizeof(out), "script -qefc '%s %s' /dev/null </dev/null", cmd,
				extra);
	return test_run(out, sizeof(out), "%s %s 2>&1 >/dev/null | cat", cmd, extra);
}

static bool drew_bar(const char *label)
{
	char bar[64];
	snprintf(bar, sizeof(bar), "\r%s [", label);
	return strstr(out, bar) != NULL;
}

static int test_bar_on_a_terminal(void)
{
	fixture();
	for (size_t i = 0; i < N_CMDS; i++) {
		CHECK_MSG(run(i, true, "") == 0, "%s: %s", cmds[i].label, out);
		CHECK_MSG(drew_bar(cmds[i].label), "%s drew no bar on a pty: %s", cmds[i].label,
			  out);
		CHECK_MSG(strstr(out, "100%"), "%s never reached 100%%: %s", cmds[i].label, out);
		/* The bar is erased, so the summary line starts clean. */
		CHECK_MSG(strstr(out, "\r\033[K"), "%s left its bar: %s", cmds[i].label, out);
	}
	CHECK_EQ(test_run(out, sizeof(out), "cmp %1$s/img.raw %1$s/out.raw", test_tmpdir()), 0);
	return 0;
}

static int test_quiet_on_a_terminal(void)
{
	fixture();
	for (size_t i = 0; i < N_CMDS; i++) {
		const char *q = i % 2 ? "--quiet" : "-q";
		CHECK_MSG(run(i, true, q) == 0, "%s %s: %s", cmds[i].label, q, out);
		CHECK_MSG(!drew_bar(cmds[i].label) && !strstr(out, "\033[K"),
			  "%s %s drew a bar: %s", cmds[i].label, q, out);
	}
	return 0;
}

static int test_nothing_into_a_pipe(void)
{
	fixture();
	for (size_t i = 0; i < N_CMDS; i++) {
		CHECK_MSG(run(i, false, "") == 0, "%s: %s", cmds[i].label, out);
		CHECK_MSG(!strchr(out, '\r') && !strchr(out, '\033'),
			  "%s wrote terminal codes into a pipe: %s", cmds[i].label, out);
	}
	return 0;
}

static const struct test_case cases[] = {
	{ "bar_on_a_terminal", test_bar_on_a_terminal },
	{ "quiet_on_a_terminal", test_quiet_on_a_terminal },
	{ "nothing_into_a_pipe", test_nothing_into_a_pipe },
};

TEST_MAIN(cases)
