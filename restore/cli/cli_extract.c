/* SPDX-License-Identifier: MIT */
/*
 * thaw extract: a snapshot's memory to a file. It goes through a real lazy
 * restore and write(2)s straight from the restored mapping, so the kernel,
 * not this process, takes the first fault on each page: the path a
 * read(2)/write(2) into restored memory takes in any user of the library.
 */
#include "cli_util.h"
#include "cli_http.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char extract_help[] =
	"Usage: thaw extract SNAP -o FILE [--region N] [--quiet]\n"
	"\n"
	"Write the raw bytes of one region of SNAP (default: every region, back to back\n"
	"in index order) to FILE ('-' for stdout). The bytes are read through a lazy\n"
	"restore: the regions are mapped, and write(2) is called straight on the\n"
	"restored memory, so each page is fetched when the kernel first touches it.\n"
	"\n"
	"  -o, --output FILE   where to write\n"
	"  --region N          only region N (see 'thaw info')\n"
	"  -q, --quiet         no progress bar (one is drawn when stderr is a terminal)\n"
	"  -h, --help          this text\n";

static const struct option extract_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "region", required_argument, NULL, 'r' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

/* write(2) every byte of [p, p+len) to fd; the source is restored memory. */
static int write_all(int fd, const char *p, uint64_t len, struct cli_progress *prog, uint64_t *done,
		     uint64_t total)
{
	while (len) {
		size_t n = len > (8u << 20) ? (8u << 20) : (size_t)len;
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (uint64_t)w;
		*done += (uint64_t)w;
		cli_progress_update(prog, *done, total);
	}
	return 0;
}

/* Region `region` (every one when negative) of the restore r to fd; -1 after printing why. */
static int write_regions(const char *cmd, const struct thaw_snapshot *s, struct thaw_restore *r,
			 long region, int fd, const char *out, bool quiet)
{
	size_t nreg = thaw_snapshot_region_count(s);
	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < nreg; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		if ((region < 0 || (size_t)region == i) && thaw_snapshot_region(s, i, &ri) == 0)
			total += ri.len;
	}
	struct cli_progress prog;
	cli_progress_init(&prog, "extracting", quiet);
	for (size_t i = 0; i < nreg; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		if (region >= 0 && (size_t)region != i)
			continue;
		if (thaw_snapshot_region(s, i, &ri) < 0)
			return -1;
		const char *p = thaw_restore_region_addr(r, i);
		int e = p ? write_all(fd, p, ri.len, &prog, &done, total) : -EINVAL;
		if (e < 0) {
			cli_progress_done(&prog);
			/* EFAULT here means a page could not be had (poisoned) or the
			 * kernel could not fault it in through the userfaultfd. */
			cli_err(cmd, "writing region %zu (%s) to %s: %s", i, ri.name ? ri.name : "",
				out, strerror(-e));
			return -1;
		}
	}
	cli_progress_done(&prog);
	return 0;
}

int cli_extract(int argc, char **argv)
{
	const char *cmd = "extract";
	const char *out = NULL;
	long region = -1;
	bool quiet = false;
	struct cli_http http = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:hq", extract_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'r':
			if (cli_parse_int(optarg, 0, INT32_MAX, &region))
				return cli_usage_err(cmd, "bad --region '%s': want a region index",
						     optarg);
			break;
		case 'h':
			fputs(extract_help, stdout);
			fputs("\n" CLI_HTTP_HELP, stdout);
			return CLI_OK;
		default: {
			int st = cli_other_option(&http, cmd, c, argv);
			if (st)
				return st;
			break;
		}
		}
	}
	const char *uri;
	if (cli_snap_operand(cmd, argc, argv, "the snapshot to extract", &uri))
		return CLI_USAGE;
	if (!out)
		return cli_usage_err(cmd, "missing -o FILE (where to write)");

	struct cli_log log;
	struct thaw_snapshot *s = NULL;
	if (cli_open_snapshot(cmd, uri, &log, &http, &s) < 0)
		return CLI_FAIL;
	size_t nreg = thaw_snapshot_region_count(s);
	if (region >= 0 && (size_t)region >= nreg) {
		cli_err(cmd, "no region %ld: %s has %zu regions", region, uri, nreg);
		thaw_snapshot_close(s);
		return CLI_FAIL;
	}

	int ret = CLI_FAIL;
	int fd = -1;
	bool created = false; /* only a file this run truncated is removed on failure */
	struct thaw_restore *r = NULL;
	struct thaw_restore_opts ro = { .sz = sizeof(ro) };
	int e = thaw_restore_start(s, &ro, &r);
	if (e < 0) {
		cli_err(cmd, "cannot start a restore of %s: %s", uri, thaw_strerror(e));
		goto out;
	}
	fd = strcmp(out, "-") ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
			      : STDOUT_FILENO;
	if (fd < 0) {
		cli_err(cmd, "cannot create %s: %s", out, strerror(errno));
		goto out;
	}
	created = fd != STDOUT_FILENO;
	if (write_regions(cmd, s, r, region, fd, out, quiet) < 0)
		goto out;
	if (fd != STDOUT_FILENO && close(fd) < 0) {
		fd = -1;
		cli_err(cmd, "closing %s: %s", out, strerror(errno));
		goto out;
	}
	fd = -1;
	/* Every byte was written; a poisoned chunk would have failed the write. */
	ret = CLI_OK;
out:
	if (fd >= 0 && fd != STDOUT_FILENO)
		close(fd);
	if (r)
		cli_restore_release(r, s);
	thaw_snapshot_close(s);
	if (ret != CLI_OK && created)
		unlink(out);
	return ret;
}
