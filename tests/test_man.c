/* SPDX-License-Identifier: MIT */
/*
 * The manual as `make install` lays it out: every public function and every
 * subcommand has a page, every option a subcommand's --help names is in its
 * page, each page renders without a groff warning, and uninstall removes them.
 */
#include "testlib.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_LEN (256 * 1024)

static char out[OUT_LEN];

/* Install the pages into the case's directory; returns the man root. */
static const char *install_pages(void)
{
	static char root[512];
	int st = test_run(out, sizeof(out), "make -s --no-print-directory install-man DESTDIR=%s",
			  test_tmpdir());
	CHECK_MSG(st == 0, "make install-man: status %d: %s", st, out);
	snprintf(root, sizeof(root), "%s/usr/local/share/man", test_tmpdir());
	return root;
}

static bool exists(const char *root, const char *sub)
{
	char p[1024];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, sub);
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK_MSG(f, "cannot open %s", path);
	static char buf[OUT_LEN];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Names declared after THAW_API in the public header, one per call. */
static int api_functions(char names[][64], int max)
{
	char *h = strdup(slurp("include/thaw.h"));
	int n = 0;
	for (char *p = h; (p = strstr(p, "THAW_API ")) && n < max; p++) {
		char *paren = strchr(p, '(');
		CHECK(paren);
		char *e = paren;
		while (e > p && !isalnum((unsigned char)e[-1]) && e[-1] != '_')
			e--;
		char *b = e;
		while (b > p && (isalnum((unsigned char)b[-1]) || b[-1] == '_'))
			b--;
		if (strncmp(b, "thaw_", 5))
			continue; /* the #define of THAW_API itself */
		snprintf(names[n++], 64, "%.*s", (int)(e - b), b);
	}
	free(h);
	return n;
}

/* Subcommand names from the "Commands:" list of `thaw --help`. */
static int subcommands(char names[][32], int max)
{
	CHECK_EQ(test_run(out, sizeof(out), "%s --help", test_build_bin("thaw")), 0);
	char *p = strstr(out, "Commands:\n");
	CHECK_MSG(p, "no Commands: in thaw --help: %s", out);
	p += strlen("Commands:\n");
	int n = 0;
	while (n < max && p[0] == ' ' && p[1] == ' ' && isalpha((unsigned char)p[2])) {
		sscanf(p, " %31s", names[n++]);
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return n;
}

static int test_functions_have_pages(void)
{
	const char *root = install_pages();
	static char fn[128][64];
	int n = api_functions(fn, 128);
	CHECK_GE(n, 30);
	CHECK(exists(root, "man3/libthaw.3"));
	for (int i = 0; i < n; i++) {
		char sub[128], path[1024];
		snprintf(sub, sizeof(sub), "man3/%.63s.3", fn[i]);
		CHECK_MSG(exists(root, sub), "no page for %s", fn[i]);
		/* A link names its family page, whose NAME and SYNOPSIS name the function. */
		snprintf(path, sizeof(path), "%s/%s", root, sub);
		char *txt = slurp(path);
		if (!strncmp(txt, ".so ", 4)) {
			char target[128];
			sscanf(txt + 4, "%127s", target);
			snprintf(path, sizeof(path), "%s/%s", root, target);
			txt = slurp(path);
		}
		char bold[128];
		snprintf(bold, sizeof(bold), "%.63s(", fn[i]);
		CHECK_MSG(strstr(txt, bold), "%s does not show %s's prototype", path, fn[i]);
	}
	return 0;
}

static int test_subcommands_have_pages(void)
{
	const char *root = install_pages();
	static char cmd[32][32];
	int n = subcommands(cmd, 32);
	CHECK_GE(n, 8);
	CHECK(exists(root, "man1/thaw.1"));
	CHECK(exists(root, "man5/thaw.5"));
	char *top = strdup(slurp("man/thaw.1"));
	for (int i = 0; i < n; i++) {
		char sub[128], ref[128];
		snprintf(sub, sizeof(sub), "man1/thaw-%.31s.1", cmd[i]);
		CHECK_MSG(exists(root, sub), "no page for thaw %s", cmd[i]);
		snprintf(ref, sizeof(ref), ".BR thaw\\-%.31s (1)", cmd[i]);
		CHECK_MSG(strstr(top, ref), "thaw(1) does not point to thaw-%s(1)", cmd[i]);
	}
	free(top);
	return 0;
}

/* Every --option a subcommand's --help names appears in its page. */
static int test_pages_name_every_option(void)
{
	static char cmd[32][32];
	int n = subcommands(cmd, 32);
	for (int i = 0; i < n; i++) {
		char path[128];
		snprintf(path, sizeof(path), "man/thaw-%.31s.1", cmd[i]);
		char *page = strdup(slurp(path));
		/* The HTTP options are described once, in thaw(1). */
		char *top = strdup(slurp("man/thaw.1"));
		CHECK_EQ(test_run(out, sizeof(out), "%s %s --help", test_build_bin("thaw"), cmd[i]),
			 0);
		for (char *p = out; (p = strstr(p, "--"));) {
			p += 2;
			size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
			if (len < 2)
				continue;
			char esc[96] = "\\-\\-";
			size_t o = 4;
			for (size_t k = 0; k < len && o < sizeof(esc) - 3; k++) {
				if (p[k] == '-')
					esc[o++] = '\\';
				esc[o++] = p[k];
			}
			esc[o] = '\0';
			CHECK_MSG(strstr(page, esc) || strstr(top, esc),
				  "thaw %s --help names --%.*s, %s does not", cmd[i], (int)len, p,
				  path);
		}
		free(page);
		free(top);
	}
	return 0;
}

static int test_pages_render_cleanly(void)
{
	if (access("/usr/bin/man", X_OK) != 0)
		test_skip("man (man-db) is not installed");
	const char *root = install_pages();
	int pages = 0;
	const char *secs[] = { "man1", "man3", "man5" };
	for (size_t s = 0; s < 3; s++) {
		char dir[1024];
		snprintf(dir, sizeof(dir), "%s/%s", root, secs[s]);
		DIR *d = opendir(dir);
		CHECK(d);
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			/* From the man root, so that .so links resolve as man(1) resolves them. */
			int st = test_run(
				out, sizeof(out),
				"cd %s && MANWIDTH=80 man --warnings -l %s/%s 2>&1 >/dev/null",
				root, secs[s], e->d_name);
			CHECK_MSG(st == 0 && out[0] == '\0', "%s/%s: status %d: %s", secs[s],
				  e->d_name, st, out);
			st = test_run(out, sizeof(out), "cd %s && MANWIDTH=80 man -l %s/%s | wc -l",
				      root, secs[s], e->d_name);
			CHECK_MSG(st == 0 && atoi(out) >= 10, "%s/%s renders %s lines", secs[s],
				  e->d_name, out);
			pages++;
		}
		closedir(d);
	}
	CHECK_GE(pages, 45);
	return 0;
}

/* The README's example, exactly as written there, against the installed tree. */
static int test_man_finds_a_function(void)
{
	if (access("/usr/bin/man", X_OK) != 0)
		test_skip("man (man-db) is not installed");
	const char *root = install_pages();
	int st = test_run(out, sizeof(out),
			  "MANPATH=%s MANWIDTH=80 man thaw_restore_wait | head -5", root);
	CHECK_MSG(st == 0 && strstr(out, "THAW_RESTORE_START(3)"), "man thaw_restore_wait: %s",
		  out);
	return 0;
}

static int test_uninstall_removes_pages(void)
{
	const char *root = install_pages();
	CHECK_EQ(test_run(out, sizeof(out),
			  "make -s --no-print-directory uninstall DESTDIR=%s && find %s -type f | "
			  "wc -l",
			  test_tmpdir(), root),
		 0);
	CHECK_MSG(atoi(out) == 0, "files left after uninstall: %s", out);
	return 0;
}

static const struct test_case cases[] = {
	{ "functions_have_pages", test_functions_have_pages },
	{ "subcommands_have_pages", test_subcommands_have_pages },
	{ "pages_name_every_option", test_pages_name_every_option },
	{ "pages_render_cleanly", test_pages_render_cleanly, 120 },
	{ "man_finds_a_function", test_man_finds_a_function },
	{ "uninstall_removes_pages", test_uninstall_removes_pages },
};

TEST_MAIN(cases)
