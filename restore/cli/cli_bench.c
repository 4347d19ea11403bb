/* SPDX-License-Identifier: MIT */
/*
 * thaw bench: one workload (a touch pattern over a snapshot's pages) run on
 * memory restored four ways, so each figure has its baseline from the same
 * machine: lazy (thaw), eager (decode everything first), mmap (the
 * kernel's own lazy paging of a file in page cache) and floor (a bare
 * userfaultfd round trip per page).
 */
#include "cli_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char bench_help[] =
	"Usage: thaw bench SNAP [OPTIONS]\n"
	"\n"
	"Restore SNAP's memory and run a touch pattern over its pages (one 8-byte read\n"
	"per touched page, or the whole page with --whole-page), timing the restore,\n"
	"every touch and the whole run.\n"
	"\n"
	"  --mode M          lazy (default): thaw_restore_start, then the touches, with the\n"
	"                      background pass on; afterwards wait until fully resident\n"
	"                    eager: decode every non-zero chunk into fresh anonymous memory\n"
	"                      on all CPUs, then the touches\n"
	"                    mmap: write the raw image to a temporary file first (not timed,\n"
	"                      left in page cache), map it MAP_PRIVATE, then the touches\n"
	"                    floor: a bare userfaultfd round trip per\n"
	"                      touched page in the same order (--threads is ignored)\n"
	"  --touch T         seq (default): every page in address order\n"
	"                    random:P%: P percent of the pages, chosen at random, each once\n"
	"                    clustered:P%: P percent of the pages as whole chunks chosen at\n"
	"                      random, each chunk's pages in order (the locality objects\n"
	"                      spanning pages give)\n"
	"  --only K          touch only pages whose chunk is K: zero (all-zero chunks) or\n"
	"                    data (every other kind); default: all pages\n"
	"  --threads N       split the touch list among N threads (default 1)\n"
	"  --no-background   lazy: fetch only what is touched (no resident time then)\n"
	"  --seed S          seed for random:P% (default 1)\n"
	"  --passes N        run the touch list N times in the same order (default 1); the\n"
	"                      later passes meet resident memory (not with --mode floor)\n"
	"  --whole-page      each touch reads its whole page (sums its 8-byte words), as a\n"
	"                      program using its memory would, instead of one word: a\n"
	"                      run of one-word touches on resident memory is mostly TLB\n"
	"                      misses (not with --mode floor)\n"
	"  --record FILE     lazy: save the pages faults first touched, in order, as a\n"
	"                      trace for `thaw optimize` (a recording run installs page by\n"
	"                      page, without prefetch or background pass: slower)\n"
	"  --tmpdir DIR      mmap: where the temporary image goes (default: the snapshot's\n"
	"                    directory, else $TMPDIR or /tmp)\n"
	"  --source IMG      the raw memory SNAP was made from (regions back to back): the\n"
	"                      bytes read are checked against it, read with pread, and\n"
	"                      mmap maps it instead of writing an image; a mismatch fails\n"
	"  --population      lazy, eager: sample the bytes in place every millisecond\n"
	"                      into the JSON's \"population\" (lazy: pages installed,\n"
	"                      all once resident; eager: bytes decoded), the curves\n"
	"                      make bench plots\n"
	"  --json            one JSON object instead of the table\n"
	"  -h, --help        this text\n"
	"\n"
	"Figures: restore start (time until memory is usable: thaw_restore_start, the\n"
	"eager decode, the mmap calls), first access, faults and per-touch latency\n"
	"(fault p50/p99 are over the slowest touches, as many as there were faults),\n"
	"touch time, total (restore start to last touch), and for lazy with the\n"
	"background pass the time until every page was resident.\n";

enum {
	OPT_MODE = 256,
	OPT_TOUCH,
	OPT_ONLY,
	OPT_THREADS,
	OPT_NOBG,
	OPT_SEED,
	OPT_TMPDIR,
	OPT_JSON,
	OPT_PASSES,
	OPT_RECORD,
	OPT_SOURCE,
	OPT_POPULATION,
	OPT_WHOLE_PAGE,
};

static const struct option bench_opts[] = {
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "touch", required_argument, NULL, OPT_TOUCH },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "no-background", no_argument, NULL, OPT_NOBG },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "tmpdir", required_argument, NULL, OPT_TMPDIR },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "passes", required_argument, NULL, OPT_PASSES },
	{ "record", required_argument, NULL, OPT_RECORD },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "population", no_argument, NULL, OPT_POPULATION },
	{ "whole-page", no_argument, NULL, OPT_WHOLE_PAGE },
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

static int parse_mode(const char *cmd, const char *arg, struct bench_args *a)
{
	int m = -1;
	for (int i = 0; i < 4; i++)
		if (!strcmp(arg, cli_bench_mode_names[i]))
			m = i;
	if (m < 0)
		return cli_usage_err(cmd, "bad --mode '%s': want lazy, eager, mmap or floor", arg);
	a->mode = (enum bench_mode)m;
	return 0;
}

static int parse_touch(const char *cmd, const char *arg, struct bench_args *a)
{
	if (!strcmp(arg, "seq")) {
		a->pct = -1;
	} else if (!strncmp(arg, "random:", 7) || !strncmp(arg, "clustered:", 10)) {
		a->clustered = arg[0] == 'c';
		const char *num = strchr(arg, ':') + 1;
		char *end;
		errno = 0;
		double p = strtod(num, &end);
		if (*end == '%')
			end++;
		if (errno || end == num || *end || !(p >= 0 && p <= 100))
			return cli_usage_err(cmd,
					     "bad --touch '%s': want %.*s:P%% with P from 0 to 100",
					     arg, (int)(num - arg - 1), arg);
		a->pct = p;
	} else {
		return cli_usage_err(cmd, "bad --touch '%s': want seq, random:P%% or clustered:P%%",
				     arg);
	}
	a->touch_text = arg;
	return 0;
}

static int parse_only(const char *cmd, const char *arg, struct bench_args *a)
{
	if (!strcmp(arg, "zero"))
		a->only = ONLY_ZERO;
	else if (!strcmp(arg, "data"))
		a->only = ONLY_DATA;
	else if (!strcmp(arg, "all"))
		a->only = ONLY_ALL;
	else
		return cli_usage_err(cmd, "bad --only '%s': want zero, data or all", arg);
	return 0;
}

/* One option from getopt_long: 0, -1 after --help, or the command's exit code. */
static int bench_option(const char *cmd, int c, char **argv, struct bench_args *a)
{
	long v;
	switch (c) {
	case OPT_MODE:
		return parse_mode(cmd, optarg, a);
	case OPT_TOUCH:
		return parse_touch(cmd, optarg, a);
	case OPT_ONLY:
		return parse_only(cmd, optarg, a);
	case OPT_THREADS:
		if (cli_parse_int(optarg, 1, 256, &v))
			return cli_usage_err(cmd, "bad --threads '%s': want 1 to 256", optarg);
		a->threads = (int)v;
		break;
	case OPT_NOBG:
		a->no_bg = true;
		break;
	case OPT_SEED:
		if (cli_parse_u64(optarg, &a->seed))
			return cli_usage_err(cmd, "bad --seed '%s': want a number", optarg);
		break;
	case OPT_TMPDIR:
		a->tmpdir = optarg;
		break;
	case OPT_JSON:
		a->json = true;
		break;
	case OPT_PASSES:
		if (cli_parse_int(optarg, 1, 100, &v))
			return cli_usage_err(cmd, "bad --passes '%s': want 1 to 100", optarg);
		a->passes = (int)v;
		break;
	case OPT_RECORD:
		a->record = optarg;
		break;
	case OPT_SOURCE:
		a->source = optarg;
		break;
	case OPT_POPULATION:
		a->population = true;
		break;
	case OPT_WHOLE_PAGE:
		a->whole_page = true;
		break;
	case 'h':
		fputs(bench_help, stdout);
		fputs("\n" CLI_HTTP_HELP, stdout);
		return -1;
	default:
		return cli_other_option(&a->http, cmd, c, argv);
	}
	return 0;
}

/* Options that apply to some modes only. 0 or CLI_USAGE. */
static int check_bench_args(const char *cmd, const struct bench_args *a)
{
	if (a->no_bg && a->mode != MODE_LAZY)
		return cli_usage_err(cmd, "--no-background applies to --mode lazy only");
	if (a->record && a->mode != MODE_LAZY)
		return cli_usage_err(cmd, "--record applies to --mode lazy only");
	if (a->population && a->mode != MODE_LAZY && a->mode != MODE_EAGER)
		return cli_usage_err(cmd, "--population applies to --mode lazy and eager");
	/* The floor touches fresh pages every time: a later pass would fault again. */
	if (a->passes > 1 && a->mode == MODE_FLOOR)
		return cli_usage_err(cmd, "--passes does not apply to --mode floor");
	if (a->whole_page && a->mode == MODE_FLOOR)
		return cli_usage_err(cmd, "--whole-page does not apply to --mode floor");
	return 0;
}

static int parse_bench_args(int argc, char **argv, struct bench_args *a)
{
	const char *cmd = "bench";
	int c;
	memset(a, 0, sizeof(*a));
	a->pct = -1;
	a->touch_text = "seq";
	a->threads = 1;
	a->seed = 1;
	a->passes = 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", bench_opts, NULL)) != -1) {
		int st = bench_option(cmd, c, argv, a);
		if (st)
			return st;
	}
	if (cli_snap_operand(cmd, argc, argv, "the snapshot to benchmark", &a->uri))
		return CLI_USAGE;
	return check_bench_args(cmd, a);
}

/*
 * The checksum the touches should have produced, from --source read with
 * pread: bytes thaw never touched. The image holds the regions back to back.
 */
static int check_source(struct bench *b)
{
	int fd = open(b->a.source, O_RDONLY);
	if (fd < 0) {
		int e = -errno;
		cli_err("bench", "%s: %s", b->a.source, strerror(-e));
		return e;
	}
	uint64_t *reg_off = calloc(b->nreg ? b->nreg : 1, sizeof(*reg_off)), sum = 0, at = 0;
	if (!reg_off) {
		close(fd);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->nreg; i++, at += b->reg[i - 1].len)
		reg_off[i] = at;
	struct stat st;
	int e = fstat(fd, &st) < 0 ? -errno : (uint64_t)st.st_size != at ? -EINVAL : 0;
	if (e == -EINVAL)
		cli_err("bench", "%s holds %llu bytes, the snapshot's regions %llu", b->a.source,
			(unsigned long long)st.st_size, (unsigned long long)at);
	uint64_t *page = malloc(b->page);
	if (!page)
		e = -ENOMEM;
	for (size_t i = 0; i < b->ntouch && !e; i++) {
		uint64_t g;
		size_t off = touch_off(b, &b->touch[i], &g), len = sizeof(*page);
		if (b->a.whole_page) {
			off -= off % b->page;
			len = b->page;
		}
		if (pread(fd, page, len, (off_t)(reg_off[b->touch[i].region] + off)) !=
		    (ssize_t)len)
			e = -EIO;
		sum += (b->a.whole_page ? touch_page_sum(page, b->page) : page[0]) ^ g;
	}
	free(page);
	free(reg_off);
	close(fd);
	if (e)
		return e;
	b->source_checksum = sum;
	b->source_ok = sum == b->checksum;
	return 0;
}

static int bench_setup(struct bench *b)
{
	b->info.sz = sizeof(b->info);
	int r = thaw_snapshot_get_info(b->snap, &b->info);
	if (r < 0)
		return r;
	b->page = b->info.page_size;
	b->nreg = thaw_snapshot_region_count(b->snap);
	b->reg = calloc(b->nreg ? b->nreg : 1, sizeof(*b->reg));
	b->reg_first_page = calloc(b->nreg ? b->nreg : 1, sizeof(*b->reg_first_page));
	b->base = calloc(b->nreg ? b->nreg : 1, sizeof(*b->base));
	if (!b->reg || !b->reg_first_page || !b->base)
		return -ENOMEM;
	for (size_t i = 0; i < b->nreg; i++) {
		b->reg[i].sz = sizeof(b->reg[i]);
		r = thaw_snapshot_region(b->snap, i, &b->reg[i]);
		if (r < 0)
			return r;
		b->reg_first_page[i] = b->pages_total;
		b->pages_total += b->reg[i].len / b->page;
	}
	if (b->pages_total > UINT32_MAX)
		return -EOVERFLOW;
	return cli_bench_build_touches(b);
}

int cli_bench(int argc, char **argv)
{
	const char *cmd = "bench";
	struct bench b;
	memset(&b, 0, sizeof(b));
	int r = parse_bench_args(argc, argv, &b.a);
	if (r)
		return r < 0 ? CLI_OK : r;
	struct cli_log log;
	if (cli_open_snapshot(cmd, b.a.uri, &log, &b.a.http, &b.snap) < 0)
		return CLI_FAIL;
	int ret = CLI_FAIL;
	struct touch_team *team = NULL;
	r = bench_setup(&b);
	if (r < 0) {
		cli_err(cmd, "cannot prepare the touch list for %s: %s", b.a.uri, thaw_strerror(r));
		goto out;
	}
	team = calloc(1, sizeof(*team)); /* 256 thread slots: too big for the stack */
	if (b.a.population)
		b.pop = calloc(1, sizeof(*b.pop));
	if (!team || (b.a.population && !b.pop)) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	if (b.a.mode != MODE_FLOOR)
		cli_bench_team_prepare(team, &b);
	switch (b.a.mode) {
	case MODE_LAZY:
		r = cli_bench_run_lazy(&b, team);
		break;
	case MODE_EAGER:
		r = cli_bench_run_eager(&b, team);
		break;
	case MODE_MMAP:
		r = cli_bench_run_mmap(&b, team);
		break;
	case MODE_FLOOR:
		r = cli_bench_run_floor(&b);
		break;
	}
	if (r < 0)
		goto out;
	b.source_ok = -1;
	if (b.a.source && b.a.mode != MODE_FLOOR) {
		r = check_source(&b);
		if (r < 0) {
			cli_err(cmd, "cannot check against %s: %s", b.a.source, thaw_strerror(r));
			goto out;
		}
	}
	struct lat_summary s;
	if (cli_bench_summarize(&b, &s) < 0) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	if (b.a.json)
		cli_bench_print_json(&b, &s);
	else
		cli_bench_print_text(&b, &s);
	ret = CLI_OK;
	if (!b.source_ok) {
		cli_err(cmd, "the bytes read differ from %s (checksum %016llx, want %016llx)",
			b.a.source, (unsigned long long)b.checksum,
			(unsigned long long)b.source_checksum);
		ret = CLI_FAIL;
	}
out:
	free(team);
	free(b.pop);
	free(b.touch);
	free(b.lat_ns);
	free(b.reg);
	free(b.reg_first_page);
	free(b.base);
	thaw_snapshot_close(b.snap);
	return ret;
}
