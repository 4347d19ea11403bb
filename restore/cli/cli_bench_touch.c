/* SPDX-License-Identifier: MIT */
/* thaw bench: the touch list, and the threads that run it. */
#include "cli_bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the touch list ---- */

/* splitmix64: a small, well-mixed seeded sequence for choosing pages. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

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

int cli_bench_build_touches(struct bench *b)
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

static void touch_range(struct toucher *t)
{
	struct bench *b = t->b;
	uint64_t sum = 0;
	for (size_t i = t->from; i < t->to; i++) {
		const struct touch *e = &b->touch[i];
		uint64_t g;
		size_t off = touch_off(b, e, &g);
		const volatile uint64_t *p = (const volatile uint64_t *)(b->base[e->region] + off);
		const uint64_t *page =
			(const uint64_t *)(b->base[e->region] + (off - off % b->page));
		uint64_t s = cli_now_ns();
		uint64_t v = b->a.whole_page ? touch_page_sum(page, b->page) : *p;
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

int cli_bench_team_prepare(struct touch_team *tm, struct bench *b)
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
void cli_bench_team_run(struct touch_team *tm, struct bench *b)
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
