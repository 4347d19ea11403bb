/* SPDX-License-Identifier: MIT */
/* thaw criu: CRIU images into a snapshot (import), and CRIU's lazy-pages daemon (lazy-pages). */
#include "cli_criu.h"
#include "cli_http.h"
#include "cli_progress.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char criu_help[] =
	"Usage: thaw criu import IMGDIR -o SNAP [--strip OUTDIR] [OPTIONS]\n"
	"       thaw criu lazy-pages --images-dir DIR [--work-dir DIR] [OPTIONS] SNAP\n"
	"\n"
	"Restore processes checkpointed by CRIU 4.x lazily from a thaw snapshot:\n"
	"  criu dump -t PID -D img\n"
	"  thaw criu import img -o app.thaw --strip small\n"
	"  thaw criu lazy-pages --images-dir small app.thaw &     # or an http(s):// URL\n"
	"  criu restore -D small --lazy-pages -d\n"
	"\n"
	"  import       write the image dir's lazy pages into SNAP; --strip writes a copy of\n"
	"               the dir without them\n"
	"  lazy-pages   take `criu lazy-pages`' place: serve the restored tasks' page faults\n"
	"               from SNAP\n"
	"\n"
	"See 'thaw criu import --help' and 'thaw criu lazy-pages --help'.\n";

int cli_criu(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_err("criu", "say what to do: import or lazy-pages");
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		fputs(criu_help, stdout);
		return CLI_OK;
	}
	if (!strcmp(sub, "import"))
		return cli_criu_import(argc - 1, argv + 1);
	if (!strcmp(sub, "lazy-pages"))
		return cli_criu_lazy(argc - 1, argv + 1);
	return cli_usage_err("criu", "unknown criu command '%s' (import or lazy-pages)", sub);
}

static const char import_help[] =
	"Usage: thaw criu import IMGDIR -o SNAP [--strip OUTDIR] [OPTIONS]\n"
	"\n"
	"Read a CRIU 4.x image dir (criu dump -D IMGDIR: inventory, pstree, mm-PID,\n"
	"pagemap-PID, pages-N) and write every task's lazy pages (the pagemap entries\n"
	"criu restore --lazy-pages leaves to a daemon) into one snapshot. Each private\n"
	"anonymous mapping CRIU restores lazily is a region named after its task and\n"
	"mapping (\"pid 1234 [heap]\"; see thaw info); pages never dumped are zero.\n"
	"Identical chunks are stored once; compression runs on every core.\n"
	"Incremental dumps (pages in a parent dump) are refused, naming the entry;\n"
	"anything not understood is refused naming the file and field.\n"
	"\n"
	"Options:\n"
	"  -o, --output SNAP   the snapshot to write (replaced if it exists)\n"
	"  --strip OUTDIR      also write a copy of IMGDIR (created if missing) whose pages\n"
	"                      images hold only the pages criu restore reads itself, and\n"
	"                      whose pagemaps are rewritten to match: restore it with\n"
	"                      --lazy-pages and `thaw criu lazy-pages SNAP` only (without\n"
	"                      --lazy-pages criu restore fails: \"No parent for snapshot\n"
	"                      pagemap\")\n"
	"  --chunk-size N      bytes per chunk, a power of two from 4K to 2M (default 64K)\n"
	"  --level L           zstd level 1-19 (default 3)\n"
	"  --threads N         compression threads (default: online CPUs)\n"
	"  -q, --quiet         no progress bar (one is drawn when stderr is a terminal)\n"
	"  -h, --help          this text\n"
	"\n"
	"Prints one summary line: tasks, regions, lazy pages, sizes, time.\n";

enum { OPT_STRIP = 256, OPT_CHUNK, OPT_LEVEL, OPT_THREADS };

static const struct option import_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "strip", required_argument, NULL, OPT_STRIP },
	{ "chunk-size", required_argument, NULL, OPT_CHUNK },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

int cli_criu_import(int argc, char **argv)
{
	const char *cmd = "criu import";
	struct thaw_criu_import_opts o = { .sz = sizeof(o) };
	const char *out = NULL;
	bool quiet = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:qh", import_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_STRIP:
			o.strip_dir = optarg;
			break;
		case OPT_CHUNK:
			if (cli_parse_chunk_size(cmd, optarg, &o.chunk_size))
				return CLI_USAGE;
			break;
		case OPT_LEVEL:
			if (cli_parse_level(cmd, optarg, &o.level))
				return CLI_USAGE;
			break;
		case OPT_THREADS:
			if (cli_parse_threads(cmd, optarg, &o.threads))
				return CLI_USAGE;
			break;
		case 'h':
			fputs(import_help, stdout);
			return CLI_OK;
		default:
			return cli_bad_option(cmd, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_err(cmd, "missing IMGDIR (a criu dump -D directory)");
	if (optind + 1 < argc)
		return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind + 1]);
	if (!out)
		return cli_usage_err(cmd, "missing -o SNAP (the snapshot to write)");
	const char *dir = argv[optind];

	struct cli_log log;
	cli_log_init(&log);
	atomic_store(&log.mute_errors, 1);
	char err[1024] = "";
	struct cli_progress pr;
	cli_progress_init(&pr, "import", quiet);
	o.log_fn = cli_log_fn;
	o.log_ctx = &log;
	o.err_buf = err;
	o.err_buf_size = sizeof(err);
	o.progress = cli_progress_fn;
	o.progress_ctx = &pr;
	struct thaw_criu_import_result res = { .sz = sizeof(res) };
	uint64_t t0 = cli_now_ns();
	int rc = thaw_criu_import(dir, out, &o, &res);
	cli_progress_done(&pr);
	if (rc) {
		cli_err(cmd, "%s: %s", dir, err[0] ? err : thaw_strerror(rc));
		return CLI_FAIL;
	}
	struct thaw_snapshot *snap;
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	if (!cli_open_snapshot(cmd, out, &log, NULL, &snap)) {
		thaw_snapshot_get_info(snap, &info);
		thaw_snapshot_close(snap);
	}
	char b1[32], b2[32], b3[32], b4[32], t[32];
	long page = sysconf(_SC_PAGESIZE);
	printf("%s: %llu tasks, %llu regions (%s), %llu lazy pages (%s) -> %s stored "
	       "(%.1f%% of the pages images' %s); %llu pages left to criu restore",
	       out, (unsigned long long)res.tasks, (unsigned long long)res.regions,
	       cli_fmt_bytes(res.raw_bytes, b1, sizeof(b1)), (unsigned long long)res.lazy_pages,
	       cli_fmt_bytes(res.lazy_pages * page, b2, sizeof(b2)),
	       cli_fmt_bytes(info.file_size, b3, sizeof(b3)),
	       res.pages_image_bytes ? 100.0 * info.file_size / res.pages_image_bytes : 0.0,
	       cli_fmt_bytes(res.pages_image_bytes, b4, sizeof(b4)),
	       (unsigned long long)res.pages_kept);
	if (o.strip_dir)
		printf(" (%s in %s)", cli_fmt_bytes(res.stripped_bytes, b1, sizeof(b1)),
		       o.strip_dir);
	printf("; %s\n", cli_fmt_ns(cli_now_ns() - t0, t, sizeof(t)));
	return CLI_OK;
}
