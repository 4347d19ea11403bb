/* SPDX-License-Identifier: MIT */
/* thaw optimize: lay a snapshot out in the order recorded runs first touched it. */
#include "cli_http.h"
#include "cli_util.h"

#include <getopt.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char optimize_help[] =
	"Usage: thaw optimize SNAP --trace FILE [--trace FILE...] -o OUT [--json] [--quiet]\n"
	"\n"
	"Write a copy of SNAP to OUT whose chunk data starts with the chunks the traces\n"
	"touched, in first-touch order, and which carries that order as its prefetch\n"
	"order: a restore of OUT streams the working set in a few large sequential reads\n"
	"from the moment it starts. Traces come from `thaw bench --record` (chunk ids of\n"
	"SNAP) or `thaw trace` (page addresses of a process restored from SNAP); several\n"
	"merge by earliest touch. Memory content and addresses are unchanged (`thaw\n"
	"verify` and `thaw extract` give the same bytes); the digest changes.\n"
	"\n"
	"  --trace FILE   a trace file (repeatable)\n"
	"  -o, --output OUT  the optimized snapshot (written atomically)\n"
	"  --json         a JSON summary\n"
	"  -q, --quiet    no progress bar (one is drawn when stderr is a terminal)\n"
	"  -h, --help     this text\n";

static const struct option optimize_opts[] = {
	{ "trace", required_argument, NULL, 't' }, { "output", required_argument, NULL, 'o' },
	{ "json", no_argument, NULL, 'j' },	   { "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },	   { 0 },
};

struct optimize_args {
	const char *uri, *out;
	const char **trace_paths;
	size_t ntraces;
	bool json;
	bool quiet;
};

static int parse_optimize_args(int argc, char **argv, struct optimize_args *a)
{
	const char *cmd = "optimize";
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:q", optimize_opts, NULL)) != -1) {
		switch (c) {
		case 't':
			a->trace_paths[a->ntraces++] = optarg;
			break;
		case 'o':
			a->out = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'q':
			a->quiet = true;
			break;
		case 'h':
			fputs(optimize_help, stdout);
			return -1;
		default:
			return cli_bad_option(cmd, c, argv);
		}
	}
	if (cli_snap_operand(cmd, argc, argv, "the snapshot to optimize", &a->uri))
		return CLI_USAGE;
	if (!a->ntraces)
		return cli_usage_err(cmd, "no --trace given: which run's working set?");
	if (!a->out)
		return cli_usage_err(cmd, "no -o OUT given: where the optimized snapshot goes");
	return 0;
}

static void print_result(const struct optimize_args *a, const struct thaw_optimize_result *res)
{
	char b[32];
	if (!a->json) {
		printf("%s: %llu chunks in first-touch order (%s at the front), digest %s\n",
		       a->out, (unsigned long long)res->chunks_ordered,
		       cli_fmt_bytes(res->stored_bytes, b, sizeof(b)), res->digest);
		if (res->ws_pages)
			printf("  %llu working-set pages packed in %llu frames (%s), streamed "
			       "first\n",
			       (unsigned long long)res->ws_pages,
			       (unsigned long long)res->ws_frames,
			       cli_fmt_bytes(res->frame_bytes, b, sizeof(b)));
		if (res->pages_ignored)
			printf("  %llu page records outside every region were ignored\n",
			       (unsigned long long)res->pages_ignored);
		return;
	}
	struct cli_json j;
	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_str(&j, "snapshot", a->uri);
	cli_json_str(&j, "output", a->out);
	cli_json_u64(&j, "traces", a->ntraces);
	cli_json_u64(&j, "chunks_ordered", res->chunks_ordered);
	cli_json_u64(&j, "stored_bytes", res->stored_bytes);
	cli_json_u64(&j, "pages_ignored", res->pages_ignored);
	cli_json_u64(&j, "ws_pages", res->ws_pages);
	cli_json_u64(&j, "ws_frames", res->ws_frames);
	cli_json_u64(&j, "frame_bytes", res->frame_bytes);
	cli_json_u64(&j, "ws_zero_pages", res->ws_zero_pages);
	cli_json_str(&j, "digest", res->digest);
	cli_json_obj_end(&j);
}

int cli_optimize(int argc, char **argv)
{
	const char *cmd = "optimize";
	struct optimize_args a = { .trace_paths = calloc((size_t)argc, sizeof(char *)) };
	struct thaw_trace **traces = calloc((size_t)argc, sizeof(*traces));
	struct thaw_snapshot *snap = NULL;
	int ret = CLI_FAIL;
	if (!a.trace_paths || !traces) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	int r = parse_optimize_args(argc, argv, &a);
	if (r) {
		ret = r < 0 ? CLI_OK : r;
		goto out;
	}
	for (size_t i = 0; i < a.ntraces; i++) {
		char err[512];
		struct thaw_trace_opts to = { .sz = sizeof(to),
					      .err_buf = err,
					      .err_buf_size = sizeof(err) };
		if (thaw_trace_load(a.trace_paths[i], &to, &traces[i])) {
			cli_err(cmd, "%s", err);
			goto out;
		}
	}
	struct cli_log log;
	if (cli_open_snapshot(cmd, a.uri, &log, NULL, &snap) < 0)
		goto out;
	char err[768] = "";
	struct cli_progress prog;
	cli_progress_init(&prog, "optimizing", a.quiet);
	struct thaw_optimize_opts o = { .sz = sizeof(o),
					.trace_names = a.trace_paths,
					.err_buf = err,
					.err_buf_size = sizeof(err),
					.progress = cli_progress_fn,
					.progress_ctx = &prog };
	struct thaw_optimize_result res = { .sz = sizeof(res) };
	atomic_store(&log.mute_errors, 1);
	r = thaw_optimize(snap, (const struct thaw_trace *const *)traces, a.ntraces, a.out, &o,
			  &res);
	atomic_store(&log.mute_errors, 0);
	cli_progress_done(&prog);
	if (r < 0) {
		cli_err(cmd, "%s", err[0] ? err : thaw_strerror(r));
		goto out;
	}
	print_result(&a, &res);
	ret = CLI_OK;
out:
	for (size_t i = 0; traces && i < a.ntraces; i++)
		thaw_trace_free(traces[i]);
	free(traces);
	free(a.trace_paths);
	thaw_snapshot_close(snap);
	return ret;
}
