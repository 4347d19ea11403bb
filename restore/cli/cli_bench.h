/* SPDX-License-Identifier: MIT */
/*
 * thaw bench's private header: the run's state and the calls between its
 * files. cli_bench.c parses the arguments and runs the flow; it calls
 * cli_bench_touch.c (the touch list and the touching threads),
 * cli_bench_modes.c (the four ways of restoring) and cli_bench_report.c (the
 * results). The modes call the touching; nothing calls back up.
 */
#ifndef THAW_CLI_BENCH_H
#define THAW_CLI_BENCH_H

#include "cli_util.h"
#include "cli_http.h"
#include "cli_population.h"

#include <pthread.h>

enum bench_mode { MODE_LAZY, MODE_EAGER, MODE_MMAP, MODE_FLOOR };
enum only_kind { ONLY_ALL, ONLY_ZERO, ONLY_DATA };
/* Indexed by the enums above; the results print them, the arguments parse them. */
extern const char *const cli_bench_mode_names[];
extern const char *const cli_bench_only_names[];

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
	const char *record; /* trace file to write, or NULL */
	const char *source; /* raw image to check the bytes read against, or NULL */
	bool population;
	bool whole_page;      /* each touch reads its whole page, not one word */
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

/* --whole-page: the sum of a page's 8-byte words. */
static inline uint64_t touch_page_sum(const uint64_t *p, size_t page)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < page / sizeof(*p); i++)
		sum += p[i];
	return sum;
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

struct lat_summary {
	double touch_p50_us, touch_p99_us, touch_max_us;
	double fault_p50_us, fault_p99_us;
	uint64_t hist[64]; /* touches in [2^i, 2^(i+1)) ns */
};

/* cli_bench_touch.c */

/* The touch list for b's arguments into b->touch, b->lat_ns (b owns them). 0 or -errno. */
int cli_bench_build_touches(struct bench *b);
/* Split the touches among b->a.threads threads, started now and held at a
 * barrier until cli_bench_team_run. 0 (a thread that cannot start ends the command). */
int cli_bench_team_prepare(struct touch_team *tm, struct bench *b);
/* Run the touches (bases must be set); fills first/end times and checksum. */
void cli_bench_team_run(struct touch_team *tm, struct bench *b);

/* cli_bench_modes.c: restore b's memory one way, then run the touches on tm
 * (the floor has no team). Each prints its own error. 0 or -errno. */
int cli_bench_run_lazy(struct bench *b, struct touch_team *tm);
int cli_bench_run_eager(struct bench *b, struct touch_team *tm);
int cli_bench_run_mmap(struct bench *b, struct touch_team *tm);
int cli_bench_run_floor(struct bench *b);

/* cli_bench_report.c */

/* Latency figures of b's touches into s. 0 or -ENOMEM. */
int cli_bench_summarize(const struct bench *b, struct lat_summary *s);
/* The results on stdout, as one JSON object or as a table. */
void cli_bench_print_json(const struct bench *b, const struct lat_summary *s);
void cli_bench_print_text(const struct bench *b, const struct lat_summary *s);

#endif
