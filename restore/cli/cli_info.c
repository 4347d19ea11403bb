/* SPDX-License-Identifier: MIT */
/* thaw info: what a snapshot holds. */
#include "cli_util.h"
#include "cli_http.h"

#include <getopt.h>
#include <string.h>

static const char info_help[] =
	"Usage: thaw info SNAP [--json] [--chunks]\n"
	"\n"
	"Show a snapshot's format version, page and chunk size, digest, regions\n"
	"(index, address range, size, protection, name), chunks by kind, raw and\n"
	"stored size and their ratio. SNAP is a path or an http(s):// URL.\n"
	"\n"
	"  --json      the same fields as one JSON object\n"
	"  --chunks    also list every chunk: region, address, length, kind,\n"
	"              stored offset and length, hash\n"
	"  -h, --help  this text\n";

static const struct option info_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "chunks", no_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

static double ratio_pct(const struct thaw_snapshot_info *in)
{
	return in->raw_bytes ? 100.0 * (double)in->stored_bytes / (double)in->raw_bytes : 0.0;
}

static int info_json(struct thaw_snapshot *s, const char *uri, const struct thaw_snapshot_info *in,
		     bool chunks)
{
	struct cli_json j;
	char prot[4];
	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_str(&j, "snapshot", uri);
	cli_json_u64(&j, "version", in->version);
	cli_json_u64(&j, "page_size", in->page_size);
	cli_json_u64(&j, "chunk_size", in->chunk_size);
	cli_json_str(&j, "digest", in->digest);
	cli_json_u64(&j, "file_size", in->file_size);
	cli_json_u64(&j, "tables_len", in->tables_len);
	cli_json_u64(&j, "prefetch_count", in->prefetch_count);
	cli_json_u64(&j, "ws_pages", in->ws_pages);
	cli_json_u64(&j, "ws_frames", in->ws_frames);
	cli_json_u64(&j, "ws_zero_pages", in->ws_zero_pages);
	cli_json_bool(&j, "hashes", in->hashes);
	cli_json_u64(&j, "raw_bytes", in->raw_bytes);
	cli_json_u64(&j, "stored_bytes", in->stored_bytes);
	cli_json_f64(&j, "stored_pct", ratio_pct(in), 2);
	cli_json_f64(&j, "ratio",
		     in->stored_bytes ? (double)in->raw_bytes / (double)in->stored_bytes : 0.0, 3);
	cli_json_u64(&j, "region_count", in->region_count);
	cli_json_u64(&j, "chunk_count", in->chunk_count);
	cli_json_obj_begin(&j, "chunks_by_kind");
	for (int k = 0; k < THAW_CHUNK_KINDS; k++)
		cli_json_u64(&j, cli_chunk_kind_name(k), in->chunks_by_kind[k]);
	cli_json_obj_end(&j);
	cli_json_arr_begin(&j, "regions");
	for (size_t i = 0; i < in->region_count; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		if (thaw_snapshot_region(s, i, &ri) < 0)
			return -1;
		cli_json_obj_begin(&j, NULL);
		cli_json_u64(&j, "index", i);
		cli_json_u64(&j, "addr", ri.addr);
		cli_json_u64(&j, "end", ri.addr + ri.len);
		cli_json_u64(&j, "len", ri.len);
		cli_json_str(&j, "prot", cli_fmt_prot(ri.prot, prot));
		cli_json_u64(&j, "flags", ri.flags);
		cli_json_str(&j, "name", ri.name ? ri.name : "");
		cli_json_u64(&j, "first_chunk", ri.first_chunk);
		cli_json_u64(&j, "chunk_count", ri.chunk_count);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	if (chunks) {
		cli_json_arr_begin(&j, "chunk_list");
		for (uint64_t i = 0; i < in->chunk_count; i++) {
			struct thaw_chunk_info ci = { .sz = sizeof(ci) };
			if (thaw_snapshot_chunk(s, i, &ci) < 0)
				return -1;
			char hash[24];
			snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)ci.hash);
			cli_json_obj_begin(&j, NULL);
			cli_json_u64(&j, "index", i);
			cli_json_u64(&j, "region", ci.region);
			cli_json_u64(&j, "addr", ci.addr);
			cli_json_u64(&j, "len", ci.len);
			cli_json_str(&j, "kind", cli_chunk_kind_name(ci.kind));
			cli_json_u64(&j, "stored_off", ci.stored_off);
			cli_json_u64(&j, "stored_len", ci.stored_len);
			cli_json_str(&j, "hash", hash);
			cli_json_obj_end(&j);
		}
		cli_json_arr_end(&j);
	}
	cli_json_obj_end(&j);
	return 0;
}

static int info_text(struct thaw_snapshot *s, const char *uri, const struct thaw_snapshot_info *in,
		     bool chunks)
{
	char a[32], b[32], c[32], prot[4];
	printf("snapshot  %s\n", uri);
	printf("format    thaw v%u, page %u B, chunk %s\n", in->version, in->page_size,
	       cli_fmt_bytes(in->chunk_size, a, sizeof(a)));
	printf("digest    %s\n", in->digest);
	if (!in->hashes)
		printf("hashes    none recorded (a live export): chunks are not hash-checked\n");
	printf("size      raw %s, stored %s (%.1f%% of raw, %.2fx), file %s\n",
	       cli_fmt_bytes(in->raw_bytes, a, sizeof(a)),
	       cli_fmt_bytes(in->stored_bytes, b, sizeof(b)), ratio_pct(in),
	       in->stored_bytes ? (double)in->raw_bytes / (double)in->stored_bytes : 0.0,
	       cli_fmt_bytes(in->file_size, c, sizeof(c)));
	printf("chunks    %llu:", (unsigned long long)in->chunk_count);
	for (int k = 0; k < THAW_CHUNK_KINDS; k++)
		printf("%s %llu %s", k ? "," : "", (unsigned long long)in->chunks_by_kind[k],
		       cli_chunk_kind_name(k));
	if (in->prefetch_count)
		printf("\nprefetch  %llu chunks in recorded first-touch order",
		       (unsigned long long)in->prefetch_count);
	if (in->ws_pages)
		printf("\nworking set %llu pages in %llu frames, streamed first; %llu zero pages",
		       (unsigned long long)in->ws_pages, (unsigned long long)in->ws_frames,
		       (unsigned long long)in->ws_zero_pages);
	printf("\nregions   %llu\n", (unsigned long long)in->region_count);
	printf("  %5s  %-18s  %-18s  %10s  %4s  %s\n", "index", "start", "end", "size", "prot",
	       "name");
	for (size_t i = 0; i < in->region_count; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		if (thaw_snapshot_region(s, i, &ri) < 0)
			return -1;
		printf("  %5zu  0x%016llx  0x%016llx  %10s  %4s  %s\n", i,
		       (unsigned long long)ri.addr, (unsigned long long)(ri.addr + ri.len),
		       cli_fmt_bytes(ri.len, a, sizeof(a)), cli_fmt_prot(ri.prot, prot),
		       ri.name ? ri.name : "");
	}
	if (!chunks)
		return 0;
	printf("\n  %8s  %6s  %-18s  %8s  %-4s  %12s  %8s  %s\n", "chunk", "region", "address",
	       "len", "kind", "stored_off", "stored", "hash");
	for (uint64_t i = 0; i < in->chunk_count; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		if (thaw_snapshot_chunk(s, i, &ci) < 0)
			return -1;
		printf("  %8llu  %6llu  0x%016llx  %8u  %-4s  %12llu  %8u  %016llx\n",
		       (unsigned long long)i, (unsigned long long)ci.region,
		       (unsigned long long)ci.addr, ci.len, cli_chunk_kind_name(ci.kind),
		       (unsigned long long)ci.stored_off, ci.stored_len,
		       (unsigned long long)ci.hash);
	}
	return 0;
}

int cli_info(int argc, char **argv)
{
	const char *cmd = "info";
	bool json = false, chunks = false;
	struct cli_http http = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", info_opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'c':
			chunks = true;
			break;
		case 'h':
			fputs(info_help, stdout);
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
	if (cli_snap_operand(cmd, argc, argv, "the snapshot to describe", &uri))
		return CLI_USAGE;

	struct cli_log log;
	struct thaw_snapshot *s = NULL;
	if (cli_open_snapshot(cmd, uri, &log, &http, &s) < 0)
		return CLI_FAIL;
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	int r = thaw_snapshot_get_info(s, &in);
	if (r == 0)
		r = json ? info_json(s, uri, &in, chunks) : info_text(s, uri, &in, chunks);
	thaw_snapshot_close(s);
	if (r < 0) {
		cli_err(cmd, "cannot read the tables of %s", uri);
		return CLI_FAIL;
	}
	return CLI_OK;
}
