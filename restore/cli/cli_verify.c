/* SPDX-License-Identifier: MIT */
/* thaw verify: decode and hash-check every chunk. */
#include "cli_util.h"
#include "cli_http.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char verify_help[] =
	"Usage: thaw verify SNAP [--json] [--threads N] [--quiet]\n"
	"\n"
	"Read, decode and hash-check every chunk of SNAP (a path or an http(s):// URL).\n"
	"Exits 1 if any chunk is bad, printing one line per bad chunk with its index,\n"
	"its address in the source and the error.\n"
	"\n"
	"  --json         a JSON summary (chunks, bytes, time, rate, bad chunks)\n"
	"  --threads N    decoding threads (default 2)\n"
	"  -q, --quiet    no progress bar (one is drawn when stderr is a terminal)\n"
	"  -h, --help     this text\n";

static const struct option verify_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "threads", required_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

struct bad_chunk {
	uint64_t index;
	uint64_t addr;
	uint64_t region;
	int err;
};

struct verify_job {
	struct thaw_snapshot *snap;
	uint64_t chunk_count;
	uint32_t chunk_size;
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t done_bytes;
	atomic_uint_fast64_t done_chunks;
	atomic_int running;   /* workers still going */
	pthread_mutex_t lock; /* guards bad, n_bad, cap_bad */
	struct bad_chunk *bad;
	size_t n_bad, cap_bad;
	int fatal; /* an allocation failure, reported as a failed verify */
};

static void record_bad(struct verify_job *v, uint64_t i, const struct thaw_chunk_info *ci, int err)
{
	pthread_mutex_lock(&v->lock);
	if (cli_grow((void **)&v->bad, &v->cap_bad, v->n_bad + 1, sizeof(*v->bad))) {
		v->fatal = -ENOMEM;
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->bad[v->n_bad++] = (struct bad_chunk){ i, ci->addr, ci->region, err };
	pthread_mutex_unlock(&v->lock);
}

static void *verify_worker(void *arg)
{
	struct verify_job *v = arg;
	void *buf = malloc(v->chunk_size);
	if (!buf) {
		pthread_mutex_lock(&v->lock);
		v->fatal = -ENOMEM;
		pthread_mutex_unlock(&v->lock);
		atomic_fetch_sub(&v->running, 1);
		return NULL;
	}
	for (;;) {
		uint64_t i = atomic_fetch_add(&v->next, 1);
		if (i >= v->chunk_count)
			break;
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		int r = thaw_snapshot_chunk(v->snap, i, &ci);
		if (r == 0) {
			ssize_t n = thaw_snapshot_read_chunk(v->snap, i, buf, v->chunk_size);
			if (n >= 0 && (uint64_t)n != ci.len)
				n = -THAW_E_BAD_SNAPSHOT;
			r = n < 0 ? (int)n : 0;
		} else {
			memset(&ci, 0, sizeof(ci));
		}
		if (r < 0)
			record_bad(v, i, &ci, r);
		atomic_fetch_add(&v->done_bytes, ci.len);
		atomic_fetch_add(&v->done_chunks, 1);
	}
	free(buf);
	atomic_fetch_sub(&v->running, 1);
	return NULL;
}

static int cmp_bad(const void *a, const void *b)
{
	const struct bad_chunk *x = a, *y = b;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void print_json(const char *uri, const struct thaw_snapshot_info *in, struct verify_job *v,
		       uint64_t ns, int threads)
{
	struct cli_json j;
	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_str(&j, "snapshot", uri);
	cli_json_bool(&j, "ok", v->n_bad == 0 && !v->fatal);
	cli_json_u64(&j, "chunks", in->chunk_count);
	cli_json_u64(&j, "chunks_checked", atomic_load(&v->done_chunks));
	cli_json_bool(&j, "hashes", in->hashes);
	cli_json_u64(&j, "bad_chunks", v->n_bad);
	cli_json_u64(&j, "raw_bytes", in->raw_bytes);
	cli_json_u64(&j, "stored_bytes", in->stored_bytes);
	cli_json_u64(&j, "threads", (uint64_t)threads);
	cli_json_f64(&j, "ms", (double)ns / 1e6, 3);
	cli_json_f64(&j, "mb_s", ns ? (double)in->raw_bytes / ((double)ns / 1e9) / 1e6 : 0.0, 1);
	cli_json_arr_begin(&j, "errors");
	for (size_t i = 0; i < v->n_bad; i++) {
		cli_json_obj_begin(&j, NULL);
		cli_json_u64(&j, "chunk", v->bad[i].index);
		cli_json_u64(&j, "addr", v->bad[i].addr);
		cli_json_u64(&j, "region", v->bad[i].region);
		cli_json_str(&j, "error", thaw_strerror(v->bad[i].err));
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_obj_end(&j);
}

/* Verify on `threads` threads (on this one if none starts), drawing progress; the time taken in ns. */
static uint64_t run_workers(struct verify_job *v, long threads, uint64_t raw_bytes, bool quiet)
{
	pthread_t tid[256];
	int started = 0;
	struct cli_progress prog;
	cli_progress_init(&prog, "verifying", quiet);
	uint64_t t0 = cli_now_ns();
	atomic_store(&v->running, (int)threads);
	for (; started < threads; started++)
		if (pthread_create(&tid[started], NULL, verify_worker, v))
			break;
	atomic_fetch_sub(&v->running, (int)threads - started);
	if (started == 0) {
		atomic_store(&v->running, 1);
		verify_worker(v);
	}
	/* The workers finish when the counter runs out; draw progress meanwhile. */
	while (atomic_load(&v->running) > 0) {
		cli_progress_update(&prog, atomic_load(&v->done_bytes), raw_bytes);
		usleep(50000);
	}
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	uint64_t ns = cli_now_ns() - t0;
	/* The last figure a person sees is the whole, not the last 50 ms sample. */
	cli_progress_update(&prog, atomic_load(&v->done_bytes), raw_bytes);
	cli_progress_done(&prog);
	return ns;
}

static void print_text(const char *uri, const struct thaw_snapshot_info *in,
		       const struct verify_job *v, uint64_t ns)
{
	char a[32];
	double secs = (double)ns / 1e9;
	printf("%s: %llu chunks, %s raw, %zu bad, %.2f s, %.0f MB/s\n", uri,
	       (unsigned long long)in->chunk_count, cli_fmt_bytes(in->raw_bytes, a, sizeof(a)),
	       v->n_bad, secs, secs > 0 ? (double)in->raw_bytes / secs / 1e6 : 0.0);
	if (!in->hashes)
		printf("no chunk hashes recorded (a live export): chunks were read and "
		       "their "
		       "zero masks checked, but their bytes could not be hash-checked\n");
	printf("%s\n", v->n_bad || v->fatal ? "FAILED" : "OK");
}

int cli_verify(int argc, char **argv)
{
	const char *cmd = "verify";
	bool json = false, quiet = false;
	long threads = 2;
	struct cli_http http = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hq", verify_opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':
			if (cli_parse_int(optarg, 1, 256, &threads))
				return cli_usage_err(cmd, "bad --threads '%s': want 1 to 256",
						     optarg);
			break;
		case 'h':
			fputs(verify_help, stdout);
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
	if (cli_snap_operand(cmd, argc, argv, "the snapshot to verify", &uri))
		return CLI_USAGE;

	struct cli_log log;
	struct thaw_snapshot *s = NULL;
	if (cli_open_snapshot(cmd, uri, &log, &http, &s) < 0)
		return CLI_FAIL;
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	int r = thaw_snapshot_get_info(s, &in);
	if (r < 0) {
		cli_err(cmd, "cannot read %s: %s", uri, thaw_strerror(r));
		thaw_snapshot_close(s);
		return CLI_FAIL;
	}

	struct verify_job v = { .snap = s,
				.chunk_count = in.chunk_count,
				.chunk_size = in.chunk_size };
	pthread_mutex_init(&v.lock, NULL);
	uint64_t ns = run_workers(&v, threads, in.raw_bytes, quiet);
	qsort(v.bad, v.n_bad, sizeof(*v.bad), cmp_bad);

	for (size_t i = 0; i < v.n_bad; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		thaw_snapshot_region(s, v.bad[i].region, &ri);
		fprintf(stderr, "thaw verify: bad chunk %llu at 0x%llx (region %llu %s): %s\n",
			(unsigned long long)v.bad[i].index, (unsigned long long)v.bad[i].addr,
			(unsigned long long)v.bad[i].region, ri.name ? ri.name : "",
			thaw_strerror(v.bad[i].err));
	}
	if (v.fatal)
		cli_err(cmd, "%s", thaw_strerror(v.fatal));
	if (json) {
		print_json(uri, &in, &v, ns, (int)threads);
	} else {
		print_text(uri, &in, &v, ns);
	}
	bool ok = v.n_bad == 0 && !v.fatal;
	free(v.bad);
	pthread_mutex_destroy(&v.lock);
	thaw_snapshot_close(s);
	return ok ? CLI_OK : CLI_FAIL;
}
