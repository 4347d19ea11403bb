/* SPDX-License-Identifier: MIT */
/*
 * thaw bench: one workload (a touch pattern over a snapshot's pages) run on
 * memory restored four ways, so each figure has its baseline from the same
 * machine: lazy (thaw), eager (decode everything first), mmap (the
 * kernel's own lazy paging of a file in page cache) and floor (a bare
 * userfaultfd round trip per page).
 */
#include "cli_util.h"
#include "cli_http.h"
/* The one internal header the command uses: the floor is kept out of the library. */
#include "uffd/floor.h"
#include "cli_population.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char bench_help[] =
	"Usage: thaw bench SNAP [OPTIONS]\n"
	"\n"
	"Restore SNAP's memory and run a touch pattern over its pages (one 8-byte read\n"
	"per touched page), timing the restore, every touch and the whole run.\n"
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

enum bench_mode { MODE_LAZY, MODE_EAGER, MODE_MMAP, MODE_FLOOR };
static const char *const mode_names[] = { "lazy", "eager", "mmap", "floor" };
enum only_kind { ONLY_ALL, ONLY_ZERO, ONLY_DATA };
static const char *const only_names[] = { "all", "zero", "data" };

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
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

struct bench_args {
	const char *uri;
	enum bench_mode mode;
	double pct;	/* < 0: seq */
	bool clustered; /* pct of the pages as whole chunks, not single pages */
	const char *touch_text;
	enum only_kind only;
	int threads;
	bool no_bg;
	uint64_t seed;
	const char *tmpdir;
	bool json;
	int passes;
	const char *record;   /* trace file to write, or NULL */
	const char *source;   /* raw image to check the bytes read against, or NULL */
	bool population;
	struct cli_http http; /* for http(s):// snapshots */
};

/* One touched page: which region, which page in it. */
struct touch {
	uint32_t region;
	uint32_t page;
};

struct bench {
	struct bench_args a;
	struct thaw_snapshot *snap;
	struct thaw_snapshot_info info;
	size_t nreg;
	struct thaw_region_info *reg;
	uint64_t *reg_first_page; /* global index of each region's first page */
	uint64_t pages_total;
	uint32_t page;

	struct touch *touch;
	size_t ntouch;
	uint64_t *lat_ns; /* per touch */
	char **base;	  /* where each region lives for the touches */

	/* results */
	uint64_t t0_ns, ready_ns, first_ns, end_ns, resident_ns;
	bool have_resident;
	/* Every mode's figures; lazy takes them from lib. */
	uint64_t faults, pages_fault, bytes_read;
	struct thaw_stats lib; /* lazy: the restore's counters, HTTP ones included; else zero */
	/* Distinct chunks the touch list reaches. */
	uint64_t touched_chunks;
	bool have_lib;
	uint64_t checksum;
	int source_ok; /* --source: 1 the bytes read agree with it, 0 not, -1 unchecked */
	uint64_t source_checksum;
	struct cli_pop *pop; /* --population, else NULL */
};

/*
 * --population, lazy: pages installed so far, by faults, the background or
 * prefetch; everything once resident (the background pass installs no
 * all-zero chunk: unregistered, they read as the kernel's zero pages).
 */
struct lazy_pop {
	struct thaw_restore *r;
	uint32_t page;
	uint64_t raw;
};

static uint64_t lazy_pop_bytes(void *ctx)
{
	struct lazy_pop *lp = ctx;
	struct thaw_stats st = { .sz = sizeof(st) };
	if (thaw_restore_stats(lp->r, &st))
		return 0;
	if (st.resident)
		return lp->raw;
	return (st.pages_fault + st.pages_background + st.pages_prefetch) * lp->page;
}

/* splitmix64: a small, well-mixed seeded sequence for choosing pages. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int parse_bench_args(int argc, char **argv, struct bench_args *a)
{
	const char *cmd = "bench";
	long v;
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
		switch (c) {
		case OPT_MODE: {
			int m = -1;
			for (int i = 0; i < 4; i++)
				if (!strcmp(optarg, mode_names[i]))
					m = i;
			if (m < 0)
				return cli_usage_err(
					cmd, "bad --mode '%s': want lazy, eager, mmap or floor",
					optarg);
			a->mode = (enum bench_mode)m;
			break;
		}
		case OPT_TOUCH:
			if (!strcmp(optarg, "seq")) {
				a->pct = -1;
			} else if (!strncmp(optarg, "random:", 7) ||
				   !strncmp(optarg, "clustered:", 10)) {
				a->clustered = optarg[0] == 'c';
				const char *num = strchr(optarg, ':') + 1;
				char *end;
				errno = 0;
				double p = strtod(num, &end);
				if (*end == '%')
					end++;
				if (errno || end == num || *end || !(p >= 0 && p <= 100))
					return cli_usage_err(cmd,
							     "bad --touch '%s': want %.*s:P%% "
							     "with P from 0 to 100",
							     optarg, (int)(num - optarg - 1),
							     optarg);
				a->pct = p;
			} else {
				return cli_usage_err(
					cmd,
					"bad --touch '%s': want seq, random:P%% or clustered:P%%",
					optarg);
			}
			a->touch_text = optarg;
			break;
		case OPT_ONLY:
			if (!strcmp(optarg, "zero"))
				a->only = ONLY_ZERO;
			else if (!strcmp(optarg, "data"))
				a->only = ONLY_DATA;
			else if (!strcmp(optarg, "all"))
				a->only = ONLY_ALL;
			else
				return cli_usage_err(cmd, "bad --only '%s': want zero, data or all",
						     optarg);
			break;
		case OPT_THREADS:
			if (cli_parse_int(optarg, 1, 256, &v))
				return cli_usage_err(cmd, "bad --threads '%s': want 1 to 256",
						     optarg);
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
				return cli_usage_err(cmd, "bad --passes '%s': want 1 to 100",
						     optarg);
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
		case 'h':
			fputs(bench_help, stdout);
			fputs("\n" CLI_HTTP_HELP, stdout);
			return -1;
		default: {
			int st = cli_other_option(&a->http, cmd, c, argv);
			if (st)
				return st;
			break;
		}
		}
	}
	if (cli_snap_operand(cmd, argc, argv, "the snapshot to benchmark", &a->uri))
		return CLI_USAGE;
	if (a->no_bg && a->mode != MODE_LAZY)
		return cli_usage_err(cmd, "--no-background applies to --mode lazy only");
	if (a->record && a->mode != MODE_LAZY)
		return cli_usage_err(cmd, "--record applies to --mode lazy only");
	if (a->population && a->mode != MODE_LAZY && a->mode != MODE_EAGER)
		return cli_usage_err(cmd, "--population applies to --mode lazy and eager");
	/* The floor touches fresh pages every time: a later pass would fault again. */
	if (a->passes > 1 && a->mode == MODE_FLOOR)
		return cli_usage_err(cmd, "--passes does not apply to --mode floor");
	return 0;
}

/* ---- the touch list ---- */

/* Which pages may be touched under --only, as a bitmap over global pages. */
static int eligible_pages(struct bench *b, uint8_t **out)
{
	uint8_t *ok = malloc(b->pages_total ? b->pages_total : 1);
	if (!ok)
		return -ENOMEM;
	memset(ok, b->a.only == ONLY_ALL, b->pages_total);
	if (b->a.only == ONLY_ALL) {
		*out = ok;
		return 0;
	}
	bool want_zero = b->a.only == ONLY_ZERO;
	for (uint64_t i = 0; i < b->info.chunk_count; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		int r = thaw_snapshot_chunk(b->snap, i, &ci);
		if (r < 0) {
			free(ok);
			return r;
		}
		if ((ci.kind == THAW_CHUNK_ZERO) != want_zero || ci.region >= b->nreg)
			continue;
		uint64_t first =
			b->reg_first_page[ci.region] + (ci.addr - b->reg[ci.region].addr) / b->page;
		uint64_t n = (ci.len + b->page - 1) / b->page;
		if (first + n <= b->pages_total)
			memset(ok + first, 1, n);
	}
	*out = ok;
	return 0;
}

static uint32_t region_of(const struct bench *b, uint64_t g)
{
	size_t lo = 0, hi = b->nreg;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (b->reg_first_page[mid] <= g)
			lo = mid;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

/*
 * clustered:P%: whole chunks' worth of pages chosen at random until P% of
 * the pages are picked, each chunk's pages touched in order, as a program
 * walking objects that span pages would. Rewrites cand in place; how many
 * of its entries to touch goes to *k. 0 or -ENOMEM.
 */
static int pick_clustered(struct bench *b, uint64_t *cand, uint64_t n, uint64_t *k)
{
	uint64_t want = (uint64_t)llround((double)n * b->a.pct / 100.0);
	uint64_t per_chunk = b->info.chunk_size / b->page;
	/* Group the candidates by chunk: consecutive entries in one chunk. */
	uint64_t *start = malloc((n + 1) * sizeof(*start));
	uint64_t *out = malloc((want ? want : 1) * sizeof(*out));
	uint64_t *order = NULL;
	int e = -ENOMEM;
	if (!start || !out)
		goto out;
	uint64_t groups = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t r = region_of(b, cand[i]);
		uint64_t c = (cand[i] - b->reg_first_page[r]) / per_chunk;
		if (i == 0 || region_of(b, cand[i - 1]) != r ||
		    (cand[i - 1] - b->reg_first_page[r]) / per_chunk != c)
			start[groups++] = i;
	}
	start[groups] = n;
	order = malloc((groups ? groups : 1) * sizeof(*order));
	if (!order)
		goto out;
	uint64_t m = 0, s = b->a.seed;
	for (uint64_t g = 0; g < groups; g++)
		order[g] = g;
	for (uint64_t g = 0; g < groups && m < want; g++) {
		uint64_t j = g + next_rand(&s) % (groups - g);
		uint64_t t = order[g];
		order[g] = order[j];
		order[j] = t;
		for (uint64_t i = start[t]; i < start[t + 1] && m < want; i++)
			out[m++] = cand[i];
	}
	memcpy(cand, out, m * sizeof(*cand));
	*k = m;
	e = 0;
out:
	free(order);
	free(start);
	free(out);
	return e;
}

/* Distinct chunks the touch list reaches (for prefetch hits). */
static void count_touched_chunks(struct bench *b, const uint64_t *pages, uint64_t k)
{
	uint64_t per_chunk = b->info.chunk_size / b->page;
	uint64_t *ids = malloc((k ? k : 1) * sizeof(*ids));
	if (!ids)
		return;
	for (uint64_t i = 0; i < k; i++) {
		uint32_t reg = region_of(b, pages[i]);
		ids[i] = b->reg[reg].first_chunk + (pages[i] - b->reg_first_page[reg]) / per_chunk;
	}
	qsort(ids, k, sizeof(*ids), cli_cmp_u64);
	for (uint64_t i = 0; i < k; i++)
		b->touched_chunks += !i || ids[i] != ids[i - 1];
	free(ids);
}

static int build_touches(struct bench *b)
{
	uint8_t *ok;
	int r = eligible_pages(b, &ok);
	if (r < 0)
		return r;
	uint64_t n = 0;
	for (uint64_t g = 0; g < b->pages_total; g++)
		n += ok[g];
	uint64_t *cand = malloc((n ? n : 1) * sizeof(*cand));
	if (!cand) {
		free(ok);
		return -ENOMEM;
	}
	n = 0;
	for (uint64_t g = 0; g < b->pages_total; g++)
		if (ok[g])
			cand[n++] = g;
	free(ok);

	uint64_t k = n;
	if (b->a.pct >= 0 && b->a.clustered) {
		r = pick_clustered(b, cand, n, &k);
		if (r < 0) {
			free(cand);
			return r;
		}
	} else if (b->a.pct >= 0) {
		k = (uint64_t)llround((double)n * b->a.pct / 100.0);
		/* Partial Fisher-Yates: the first k entries become a random
		 * selection in random order, each page at most once. */
		uint64_t s = b->a.seed;
		for (uint64_t i = 0; i < k; i++) {
			uint64_t j = i + next_rand(&s) % (n - i);
			uint64_t t = cand[i];
			cand[i] = cand[j];
			cand[j] = t;
		}
	}
	uint64_t total = k * (uint64_t)b->a.passes;
	b->touch = malloc((total ? total : 1) * sizeof(*b->touch));
	b->lat_ns = calloc(total ? total : 1, sizeof(*b->lat_ns));
	if (!b->touch || !b->lat_ns) {
		free(cand);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < total; i++) {
		uint32_t reg = region_of(b, cand[i % k]);
		b->touch[i] =
			(struct touch){ reg, (uint32_t)(cand[i % k] - b->reg_first_page[reg]) };
	}
	b->ntouch = total;
	count_touched_chunks(b, cand, k);
	free(cand);
	return 0;
}

/* ---- touching ---- */

struct toucher {
	struct bench *b;
	size_t from, to;
	pthread_barrier_t *go;
	uint64_t sum;
	uint64_t end_ns;
	uint64_t first_ns;
};

/* One 8-byte read per touch at a page offset that varies with the page,
 * so a checksum over all reads depends on the bytes, not only page 0's.
 * Returns the offset in the region; *g is the global page. */
static inline size_t touch_off(const struct bench *b, const struct touch *e, uint64_t *g)
{
	*g = b->reg_first_page[e->region] + e->page;
	return (size_t)e->page * b->page + ((*g * 2654435761u) >> 5) % (b->page / 8) * 8;
}

static void touch_range(struct toucher *t)
{
	struct bench *b = t->b;
	uint64_t sum = 0;
	for (size_t i = t->from; i < t->to; i++) {
		const struct touch *e = &b->touch[i];
		uint64_t g;
		size_t off = touch_off(b, e, &g);
		const volatile uint64_t *p = (const volatile uint64_t *)(b->base[e->region] + off);
		uint64_t s = cli_now_ns();
		uint64_t v = *p;
		uint64_t f = cli_now_ns();
		b->lat_ns[i] = f - s;
		if (i == t->from)
			t->first_ns = f;
		sum += v ^ g;
	}
	t->sum = sum;
	t->end_ns = cli_now_ns();
}

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	pthread_barrier_wait(t->go);
	touch_range(t);
	return NULL;
}

/*
 * Threads are created before the restore starts and released by a
 * barrier after it, so thread creation is not part of the timed run.
 */
struct touch_team {
	int n;
	pthread_t tid[256];
	struct toucher t[256];
	pthread_barrier_t go;
};

static int team_prepare(struct touch_team *tm, struct bench *b)
{
	tm->n = b->a.threads;
	size_t per = b->ntouch / (size_t)tm->n, extra = b->ntouch % (size_t)tm->n, at = 0;
	for (int i = 0; i < tm->n; i++) {
		size_t len = per + ((size_t)i < extra);
		tm->t[i] = (struct toucher){ .b = b, .from = at, .to = at + len, .go = &tm->go };
		at += len;
	}
	if (tm->n == 1)
		return 0;
	pthread_barrier_init(&tm->go, NULL, (unsigned)tm->n + 1);
	for (int i = 0; i < tm->n; i++) {
		int r = pthread_create(&tm->tid[i], NULL, toucher_main, &tm->t[i]);
		if (r) {
			/* Cannot release a barrier sized for threads that never came. */
			fprintf(stderr, "thaw bench: cannot start touch thread: %s\n", strerror(r));
			exit(CLI_FAIL);
		}
	}
	return 0;
}

/* Run the touches (bases must be set); fills first/end times and checksum. */
static void team_run(struct touch_team *tm, struct bench *b)
{
	if (tm->n == 1) {
		touch_range(&tm->t[0]);
	} else {
		pthread_barrier_wait(&tm->go);
		for (int i = 0; i < tm->n; i++)
			pthread_join(tm->tid[i], NULL);
		pthread_barrier_destroy(&tm->go);
	}
	b->end_ns = 0;
	b->first_ns = UINT64_MAX;
	b->checksum = 0;
	for (int i = 0; i < tm->n; i++) {
		if (tm->t[i].end_ns > b->end_ns)
			b->end_ns = tm->t[i].end_ns;
		if (tm->t[i].to > tm->t[i].from && tm->t[i].first_ns < b->first_ns)
			b->first_ns = tm->t[i].first_ns;
		b->checksum += tm->t[i].sum;
	}
	if (b->first_ns == UINT64_MAX)
		b->first_ns = b->ready_ns;
}

static uint64_t minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_minflt;
}

/* ---- the four modes ---- */

static int run_lazy(struct bench *b, struct touch_team *tm)
{
	struct thaw_restore_opts ro = { .sz = sizeof(ro),
					.flags = b->a.no_bg ? THAW_RESTORE_NO_BACKGROUND : 0 };
	struct thaw_restore *r = NULL;
	struct thaw_trace *rec = NULL;
	if (b->a.record && thaw_trace_new(&rec) < 0) {
		cli_err("bench", "out of memory");
		return -ENOMEM;
	}
	ro.record = rec;
	b->t0_ns = cli_now_ns();
	int e = thaw_restore_start(b->snap, &ro, &r);
	b->ready_ns = cli_now_ns();
	if (e < 0) {
		cli_err("bench", "cannot start a restore of %s: %s", b->a.uri, thaw_strerror(e));
		thaw_trace_free(rec);
		return e;
	}
	for (size_t i = 0; i < b->nreg; i++)
		b->base[i] = thaw_restore_region_addr(r, i);
	struct lazy_pop lp = { .r = r, .page = b->page, .raw = b->info.raw_bytes };
	if (b->pop)
		cli_pop_start(b->pop, b->t0_ns, lazy_pop_bytes, &lp);
	team_run(tm, b);
	/* A recording run has no background pass: it would never be resident. */
	if (!b->a.no_bg && !b->a.record) {
		e = thaw_restore_wait(r, -1);
		b->resident_ns = cli_now_ns();
		b->have_resident = e == 0;
		if (e < 0)
			cli_err("bench", "restore did not complete: %s", thaw_strerror(e));
	}
	cli_pop_stop(b->pop);
	struct thaw_stats st = { .sz = sizeof(st) };
	if (thaw_restore_stats(r, &st) == 0) {
		b->faults = st.faults;
		b->pages_fault = st.pages_fault;
		b->bytes_read = st.bytes_read;
		b->lib = st;
		b->have_lib = true;
	}
	cli_restore_release(r, b->snap);
	if (rec) {
		int se = thaw_trace_save(rec, b->a.record);
		if (se < 0) {
			cli_err("bench", "cannot write the trace %s: %s", b->a.record,
				thaw_strerror(se));
			e = e < 0 ? e : se;
		}
		thaw_trace_free(rec);
	}
	return e < 0 ? e : 0;
}

struct decoder {
	struct bench *b;
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t bytes_read;
	atomic_uint_fast64_t raw_done; /* raw bytes in place, zero chunks included */
	atomic_int err;
	atomic_uint_fast64_t bad_chunk;
};

static void *decoder_main(void *arg)
{
	struct decoder *d = arg;
	struct bench *b = d->b;
	for (;;) {
		uint64_t i = atomic_fetch_add(&d->next, 1);
		if (i >= b->info.chunk_count || atomic_load(&d->err))
			break;
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		int r = thaw_snapshot_chunk(b->snap, i, &ci);
		if (r == 0 && ci.kind == THAW_CHUNK_ZERO) {
			atomic_fetch_add(&d->raw_done, ci.len);
			continue; /* fresh anonymous memory is zero already */
		}
		if (r == 0) {
			char *dst = b->base[ci.region] + (ci.addr - b->reg[ci.region].addr);
			ssize_t n = thaw_snapshot_read_chunk(b->snap, i, dst, ci.len);
			r = n < 0 ? (int)n : 0;
			atomic_fetch_add(&d->bytes_read, ci.stored_len);
			atomic_fetch_add(&d->raw_done, ci.len);
		}
		if (r < 0) {
			atomic_store(&d->bad_chunk, i);
			atomic_store(&d->err, r);
		}
	}
	return NULL;
}

static uint64_t eager_pop_bytes(void *ctx)
{
	return atomic_load(&((struct decoder *)ctx)->raw_done);
}

static int map_anon_regions(struct bench *b)
{
	for (size_t i = 0; i < b->nreg; i++) {
		void *p = mmap(NULL, b->reg[i].len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		b->base[i] = p;
	}
	return 0;
}

static void unmap_regions(struct bench *b)
{
	for (size_t i = 0; i < b->nreg; i++)
		if (b->base[i])
			munmap(b->base[i], b->reg[i].len);
}

static int run_eager(struct bench *b, struct touch_team *tm)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > 256)
		ncpu = 256;
	struct decoder d = { .b = b };
	pthread_t tid[256];
	b->t0_ns = cli_now_ns();
	int e = map_anon_regions(b);
	if (e < 0) {
		cli_err("bench", "cannot map %s of memory: %s", "the regions", strerror(-e));
		unmap_regions(b);
		return e;
	}
	int started = 0;
	if (b->pop)
		cli_pop_start(b->pop, b->t0_ns, eager_pop_bytes, &d);
	for (; started < ncpu - 1; started++)
		if (pthread_create(&tid[started], NULL, decoder_main, &d))
			break;
	decoder_main(&d);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	b->ready_ns = cli_now_ns();
	cli_pop_stop(b->pop);
	e = atomic_load(&d.err);
	if (e < 0) {
		cli_err("bench", "chunk %llu: %s", (unsigned long long)atomic_load(&d.bad_chunk),
			thaw_strerror(e));
		unmap_regions(b);
		return e;
	}
	b->resident_ns = b->ready_ns;
	b->have_resident = true;
	b->bytes_read = atomic_load(&d.bytes_read);
	uint64_t f0 = minor_faults();
	team_run(tm, b);
	b->faults = minor_faults() - f0;
	b->pages_fault = b->faults;
	unmap_regions(b);
	return 0;
}

/* The raw image, regions back to back, written to a file (not timed). */
static int write_image(struct bench *b, int fd)
{
	char *buf = malloc(b->info.chunk_size);
	if (!buf)
		return -ENOMEM;
	uint64_t off = 0;
	int r = 0;
	for (size_t i = 0; i < b->nreg && r == 0; i++) {
		for (uint64_t c = 0; c < b->reg[i].chunk_count && r == 0; c++) {
			uint64_t id = b->reg[i].first_chunk + c;
			struct thaw_chunk_info ci = { .sz = sizeof(ci) };
			r = thaw_snapshot_chunk(b->snap, id, &ci);
			if (r < 0)
				break;
			uint64_t at = off + (ci.addr - b->reg[i].addr);
			if (ci.kind == THAW_CHUNK_ZERO)
				continue; /* a hole reads as zero */
			ssize_t n = thaw_snapshot_read_chunk(b->snap, id, buf, b->info.chunk_size);
			if (n < 0) {
				r = (int)n;
				cli_err("bench", "chunk %llu: %s", (unsigned long long)id,
					thaw_strerror(r));
				break;
			}
			ssize_t w = pwrite(fd, buf, (size_t)n, (off_t)at);
			if (w != n)
				r = w < 0 ? -errno : -ENOSPC;
		}
		off += b->reg[i].len;
	}
	if (r == 0 && ftruncate(fd, (off_t)off) < 0)
		r = -errno;
	free(buf);
	return r;
}

static int map_image(struct bench *b, struct touch_team *tm, int fd);

/* --source: the image as it was before thaw ever saw it (pre-read into page cache). */
static int map_source(struct bench *b, struct touch_team *tm)
{
	int fd = open(b->a.source, O_RDONLY);
	if (fd < 0) {
		int e = -errno;
		cli_err("bench", "%s: %s", b->a.source, strerror(-e));
		return e;
	}
	char buf[1 << 16];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return map_image(b, tm, fd);
}

static int run_mmap(struct bench *b, struct touch_team *tm)
{
	char path[4096];
	const char *dir = b->a.tmpdir;
	char snapdir[4096];
	if (!dir && !strstr(b->a.uri, "://")) {
		snprintf(snapdir, sizeof(snapdir), "%s", b->a.uri);
		char *slash = strrchr(snapdir, '/');
		if (slash)
			*slash = 0;
		dir = slash ? (snapdir[0] ? snapdir : "/") : ".";
	}
	if (!dir)
		dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (b->a.source)
		return map_source(b, tm);
	if ((size_t)snprintf(path, sizeof(path), "%s/.thaw-bench-image-XXXXXX", dir) >=
	    sizeof(path)) {
		cli_err("bench", "--tmpdir path too long");
		return -ENAMETOOLONG;
	}
	int fd = mkstemp(path);
	if (fd < 0) {
		int e = -errno; /* before cli_err's stdio may change errno */
		cli_err("bench", "cannot create a temporary image in %s: %s", dir, strerror(-e));
		return e;
	}
	unlink(path); /* the mapping keeps it alive; nothing is left behind */
	int e = write_image(b, fd);
	if (e < 0) {
		cli_err("bench", "cannot write the temporary image in %s: %s", dir,
			thaw_strerror(e));
		close(fd);
		return e;
	}
	return map_image(b, tm, fd);
}

/* Map the image in fd (regions back to back), time the touches; closes fd. */
static int map_image(struct bench *b, struct touch_team *tm, int fd)
{
	int e;
	b->t0_ns = cli_now_ns();
	uint64_t off = 0;
	for (size_t i = 0; i < b->nreg; i++) {
		void *p = mmap(NULL, b->reg[i].len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
			       (off_t)off);
		if (p == MAP_FAILED) {
			e = -errno;
			cli_err("bench", "cannot map the temporary image: %s", strerror(-e));
			unmap_regions(b);
			close(fd);
			return e;
		}
		b->base[i] = p;
		off += b->reg[i].len;
	}
	b->ready_ns = cli_now_ns();
	uint64_t f0 = minor_faults();
	team_run(tm, b);
	b->faults = minor_faults() - f0;
	b->pages_fault = b->faults;
	unmap_regions(b);
	close(fd);
	return 0;
}

struct page_pos {
	uint64_t page;
	uint64_t pos;
};

static int cmp_page_pos(const void *x, const void *y)
{
	const struct page_pos *a = x, *b = y;
	return a->page < b->page ? -1 : a->page > b->page;
}

static int run_floor(struct bench *b)
{
	/* The floor touches fresh pages of its own, as many as the touch list
	 * has; each touch gets its page's rank among the touched pages so the
	 * access pattern (sequential or scattered) is the same. */
	uint32_t *order = NULL;
	if (b->a.pct >= 0) {
		size_t n = b->ntouch;
		struct page_pos *pp = malloc((n ? n : 1) * sizeof(*pp));
		order = malloc((n ? n : 1) * sizeof(*order));
		if (!pp || !order) {
			free(pp);
			free(order);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			pp[i] = (struct page_pos){
				b->reg_first_page[b->touch[i].region] + b->touch[i].page, i
			};
		qsort(pp, n, sizeof(*pp), cmp_page_pos);
		for (size_t r = 0; r < n; r++)
			order[pp[r].pos] = (uint32_t)r;
		free(pp);
	}
	b->t0_ns = cli_now_ns();
	int e = b->ntouch ? thaw__bench_floor(b->ntouch, order, b->lat_ns) : 0;
	b->end_ns = cli_now_ns();
	free(order);
	if (e < 0) {
		cli_err("bench", "floor: %s", thaw_strerror(e));
		return e;
	}
	b->ready_ns = b->t0_ns;
	b->first_ns = b->t0_ns + (b->ntouch ? b->lat_ns[0] : 0);
	b->faults = b->pages_fault = b->ntouch;
	return 0;
}

/* ---- results ---- */

struct lat_summary {
	double touch_p50_us, touch_p99_us, touch_max_us;
	double fault_p50_us, fault_p99_us;
	uint64_t hist[64]; /* touches in [2^i, 2^(i+1)) ns */
};

static double pick_us(const uint64_t *sorted, size_t from, size_t n, double q)
{
	if (!n)
		return NAN;
	return (double)sorted[from + (size_t)((double)(n - 1) * q + 0.5)] / 1e3;
}

/*
 * Touches that took a fault are the slowest ones: with K faults counted
 * (by the library, or the kernel's minor-fault counter), the fault
 * latencies are the top K touch latencies. That avoids guessing a
 * threshold between a resident read and a fault.
 */
static int summarize(const struct bench *b, struct lat_summary *s)
{
	memset(s, 0, sizeof(*s));
	size_t n = b->ntouch;
	uint64_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, b->lat_ns, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cli_cmp_u64);
	for (size_t i = 0; i < n; i++) {
		unsigned bkt = sorted[i] ? 63 - (unsigned)__builtin_clzll(sorted[i]) : 0;
		s->hist[bkt]++;
	}
	s->touch_p50_us = pick_us(sorted, 0, n, 0.5);
	s->touch_p99_us = pick_us(sorted, 0, n, 0.99);
	s->touch_max_us = n ? (double)sorted[n - 1] / 1e3 : NAN;
	size_t k = b->faults < n ? (size_t)b->faults : n;
	s->fault_p50_us = pick_us(sorted, n - k, k, 0.5);
	s->fault_p99_us = pick_us(sorted, n - k, k, 0.99);
	free(sorted);
	return 0;
}

static double ms_between(uint64_t a, uint64_t b)
{
	return b >= a ? (double)(b - a) / 1e6 : 0.0;
}

/*
 * Touched chunks the prefetch had installed before their first touch: the
 * distinct chunks the touch list reaches, less one per fault. Exact with one
 * touching thread (a chunk faults at most once, as a whole); a lower bound
 * with several.
 */
static uint64_t prefetch_hits(const struct bench *b)
{
	return b->touched_chunks > b->lib.faults ? b->touched_chunks - b->lib.faults : 0;
}

static void print_json(const struct bench *b, const struct lat_summary *s)
{
	struct cli_json j;
	char hex[24];
	cli_json_init(&j, stdout);
	cli_json_obj_begin(&j, NULL);
	cli_json_str(&j, "snapshot", b->a.uri);
	cli_json_str(&j, "mode", mode_names[b->a.mode]);
	cli_json_str(&j, "touch", b->a.touch_text);
	cli_json_str(&j, "only", only_names[b->a.only]);
	cli_json_u64(&j, "threads", b->a.mode == MODE_FLOOR ? 1 : (uint64_t)b->a.threads);
	cli_json_u64(&j, "seed", b->a.seed);
	cli_json_bool(&j, "background", b->a.mode == MODE_LAZY && !b->a.no_bg);
	cli_json_u64(&j, "raw_bytes", b->info.raw_bytes);
	cli_json_u64(&j, "stored_bytes", b->info.stored_bytes);
	cli_json_u64(&j, "chunk_size", b->info.chunk_size);
	cli_json_u64(&j, "pages_total", b->pages_total);
	cli_json_u64(&j, "touches", b->ntouch);
	cli_json_f64(&j, "restore_start_us", (double)(b->ready_ns - b->t0_ns) / 1e3, 1);
	cli_json_f64(&j, "first_access_us", (double)(b->first_ns - b->t0_ns) / 1e3, 1);
	cli_json_u64(&j, "faults", b->faults);
	cli_json_u64(&j, "pages_fault", b->pages_fault);
	cli_json_u64(&j, "pages_background", b->lib.pages_background);
	cli_json_u64(&j, "pages_zero", b->lib.pages_zero);
	cli_json_u64(&j, "chunks_fetched", b->lib.chunks_fetched);
	cli_json_u64(&j, "chunks_poisoned", b->lib.chunks_poisoned);
	cli_json_u64(&j, "bytes_read", b->bytes_read);
	cli_json_f64(&j, "fault_p50_us", s->fault_p50_us, 2);
	cli_json_f64(&j, "fault_p99_us", s->fault_p99_us, 2);
	cli_json_f64(&j, "touch_p50_us", s->touch_p50_us, 3);
	cli_json_f64(&j, "touch_p99_us", s->touch_p99_us, 3);
	cli_json_f64(&j, "touch_max_us", s->touch_max_us, 1);
	if (b->have_lib) {
		cli_json_u64(&j, "lib_fault_p50_us", b->lib.fault_p50_us);
		cli_json_u64(&j, "lib_fault_p99_us", b->lib.fault_p99_us);
		cli_json_u64(&j, "lib_fault_wait_us", b->lib.fault_wait_us);
	}
	cli_json_u64(&j, "passes", (uint64_t)b->a.passes);
	cli_json_u64(&j, "touched_chunks", b->touched_chunks);
	if (b->have_lib && b->lib.prefetch_chunks) {
		cli_json_u64(&j, "prefetch_chunks", b->lib.prefetch_chunks);
		cli_json_u64(&j, "pages_prefetch", b->lib.pages_prefetch);
		cli_json_u64(&j, "prefetch_late", b->lib.prefetch_late);
		cli_json_u64(&j, "faults_unlisted", b->lib.faults_unlisted);
		cli_json_u64(&j, "prefetch_hits", prefetch_hits(b));
		cli_json_u64(&j, "ws_pages", b->lib.ws_pages);
		cli_json_u64(&j, "pages_ws", b->lib.pages_ws);
		cli_json_u64(&j, "frames_dropped", b->lib.frames_dropped);
		if (b->lib.prefetch_done_us)
			cli_json_f64(&j, "prefetch_done_ms", (double)b->lib.prefetch_done_us / 1e3,
				     3);
	}
	if (b->have_lib && b->lib.http_requests) {
		cli_json_u64(&j, "http_requests", b->lib.http_requests);
		cli_json_u64(&j, "http_bytes", b->lib.http_bytes);
		cli_json_u64(&j, "http_retries", b->lib.http_retries);
		cli_json_u64(&j, "http_failures", b->lib.http_failures);
		cli_json_u64(&j, "http_fault_p50_us", b->lib.http_fault_p50_us);
		cli_json_u64(&j, "http_fault_p99_us", b->lib.http_fault_p99_us);
		cli_json_u64(&j, "http_bg_p50_us", b->lib.http_bg_p50_us);
		cli_json_u64(&j, "http_bg_p99_us", b->lib.http_bg_p99_us);
	}
	cli_json_f64(&j, "touch_ms", ms_between(b->ready_ns, b->end_ns), 3);
	cli_json_f64(&j, "total_ms", ms_between(b->t0_ns, b->end_ns), 3);
	if (b->have_resident)
		cli_json_f64(&j, "resident_ms", ms_between(b->t0_ns, b->resident_ns), 3);
	else
		cli_json_null(&j, "resident_ms");
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)b->checksum);
	cli_json_str(&j, "checksum", b->a.mode == MODE_FLOOR ? NULL : hex);
	if (b->source_ok >= 0)
		cli_json_bool(&j, "source_match", b->source_ok);
	if (b->pop)
		cli_pop_json(b->pop, &j);
	cli_json_arr_begin(&j, "touch_hist");
	for (int i = 0; i < 64; i++) {
		if (!s->hist[i])
			continue;
		cli_json_obj_begin(&j, NULL);
		cli_json_u64(&j, "ge_ns", i ? 1ull << i : 0);
		cli_json_u64(&j, "count", s->hist[i]);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_obj_end(&j);
}

static void print_text(const struct bench *b, const struct lat_summary *s)
{
	char a[32], c[32];
	printf("thaw bench %s\n", b->a.uri);
	printf("  mode              %s%s\n", mode_names[b->a.mode],
	       b->a.mode == MODE_LAZY
		       ? (b->a.no_bg ? " (no background pass)" : " (background pass on)")
		       : "");
	printf("  touch             %s%s%s: %zu of %llu pages, %d thread%s\n", b->a.touch_text,
	       b->a.only != ONLY_ALL ? ", only " : "",
	       b->a.only != ONLY_ALL ? only_names[b->a.only] : "", b->ntouch,
	       (unsigned long long)b->pages_total, b->a.mode == MODE_FLOOR ? 1 : b->a.threads,
	       b->a.mode == MODE_FLOOR || b->a.threads == 1 ? "" : "s");
	printf("  snapshot          raw %s, stored %s\n",
	       cli_fmt_bytes(b->info.raw_bytes, a, sizeof(a)),
	       cli_fmt_bytes(b->info.stored_bytes, c, sizeof(c)));
	printf("  restore start     %10.3f ms   (until the memory is usable)\n",
	       ms_between(b->t0_ns, b->ready_ns));
	printf("  first access      %10.3f ms   (from restore start)\n",
	       ms_between(b->t0_ns, b->first_ns));
	printf("  touches           %10.3f ms\n", ms_between(b->ready_ns, b->end_ns));
	printf("  total             %10.3f ms   (restore start to last touch)\n",
	       ms_between(b->t0_ns, b->end_ns));
	if (b->have_resident)
		printf("  fully resident    %10.3f ms\n", ms_between(b->t0_ns, b->resident_ns));
	printf("  faults            %10llu\n", (unsigned long long)b->faults);
	printf("  fault latency     p50 %.2f us, p99 %.2f us\n", s->fault_p50_us, s->fault_p99_us);
	printf("  touch latency     p50 %.3f us, p99 %.3f us, max %.1f us\n", s->touch_p50_us,
	       s->touch_p99_us, s->touch_max_us);
	if (b->have_lib) {
		printf("  library           %llu pages by fault, %llu in background, %llu zero; "
		       "%llu chunks read, %s\n",
		       (unsigned long long)b->pages_fault,
		       (unsigned long long)b->lib.pages_background,
		       (unsigned long long)b->lib.pages_zero,
		       (unsigned long long)b->lib.chunks_fetched,
		       cli_fmt_bytes(b->bytes_read, a, sizeof(a)));
		printf("                    fault service p50 %llu us, p99 %llu us; %llu chunks "
		       "poisoned\n",
		       (unsigned long long)b->lib.fault_p50_us,
		       (unsigned long long)b->lib.fault_p99_us,
		       (unsigned long long)b->lib.chunks_poisoned);
		if (b->lib.prefetch_chunks)
			printf("  prefetch          %llu chunks listed, %llu pages installed\n"
			       "                    ahead; %llu of %llu touched chunks hit, "
			       "%llu late faults, %llu faults elsewhere; set in after %.3f ms\n",
			       (unsigned long long)b->lib.prefetch_chunks,
			       (unsigned long long)b->lib.pages_prefetch,
			       (unsigned long long)prefetch_hits(b),
			       (unsigned long long)b->touched_chunks,
			       (unsigned long long)b->lib.prefetch_late,
			       (unsigned long long)b->lib.faults_unlisted,
			       (double)b->lib.prefetch_done_us / 1e3);
		if (b->lib.ws_pages)
			printf("  working set       %llu of %llu listed pages installed by the "
			       "frames; %llu frames dropped\n",
			       (unsigned long long)b->lib.pages_ws,
			       (unsigned long long)b->lib.ws_pages,
			       (unsigned long long)b->lib.frames_dropped);
	} else if (b->bytes_read) {
		printf("  bytes read        %s\n", cli_fmt_bytes(b->bytes_read, a, sizeof(a)));
	}
	if (b->source_ok >= 0)
		printf("  source check      bytes read %s %s\n",
		       b->source_ok ? "agree with" : "DIFFER from", b->a.source);
	uint64_t max = 0;
	for (int i = 0; i < 64; i++)
		if (s->hist[i] > max)
			max = s->hist[i];
	if (!max)
		return;
	printf("  per-touch latency histogram\n");
	for (int i = 0; i < 64; i++) {
		if (!s->hist[i])
			continue;
		char lo[24], hi[24], bar[41];
		cli_fmt_ns(i ? 1ull << i : 0, lo, sizeof(lo));
		cli_fmt_ns(1ull << (i + 1), hi, sizeof(hi));
		int w = (int)((s->hist[i] * 40 + max - 1) / max);
		memset(bar, '#', (size_t)w);
		bar[w] = 0;
		printf("    %8s - %-8s %10llu  %s\n", lo, hi, (unsigned long long)s->hist[i], bar);
	}
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
	for (size_t i = 0; i < b->ntouch && !e; i++) {
		uint64_t g, v = 0;
		size_t off = touch_off(b, &b->touch[i], &g);
		if (pread(fd, &v, sizeof(v), (off_t)(reg_off[b->touch[i].region] + off)) !=
		    (ssize_t)sizeof(v))
			e = -EIO;
		sum += v ^ g;
	}
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
	return build_touches(b);
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
		team_prepare(team, &b);
	switch (b.a.mode) {
	case MODE_LAZY:
		r = run_lazy(&b, team);
		break;
	case MODE_EAGER:
		r = run_eager(&b, team);
		break;
	case MODE_MMAP:
		r = run_mmap(&b, team);
		break;
	case MODE_FLOOR:
		r = run_floor(&b);
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
	if (summarize(&b, &s) < 0) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	if (b.a.json)
		print_json(&b, &s);
	else
		print_text(&b, &s);
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
