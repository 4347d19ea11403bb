/* SPDX-License-Identifier: MIT */
/*
 * mkimage: write a synthetic memory image for benchmarks and the demo.
 *
 *   cc -O2 -o mkimage scripts/mkimage.c
 *   mkimage OUT SIZE [SEED]        SIZE in bytes or with K/M/G
 *
 * The image mimics a process's memory: runs of pages of one kind, a run
 * being 1 to 64 pages long, so some 64 KiB chunks are all zero or all one
 * kind and others mix kinds, as heaps do. Kinds by share of pages:
 *   zero        30%  untouched or cleared memory
 *   text        30%  words from a skewed vocabulary (logs, strings, JSON)
 *   random      15%  compressed or encrypted data, incompressible
 *   repeated    15%  copies of a few template pages (pools, fresh objects)
 *   structured  10%  arrays of small integers and pointer-like values
 * At 64 KiB zstd chunks it stores at roughly a third of its raw size. The
 * output is a function of SIZE and SEED only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE	    4096
#define N_WORDS	    4096
#define N_TEMPLATES 32

struct gen {
	uint64_t s;
	char words[N_WORDS][12];
	uint8_t wlen[N_WORDS];
	uint8_t templates[N_TEMPLATES][PAGE];
};

static uint64_t rnd(struct gen *g)
{
	uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void fill_random(struct gen *g, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd(g);
		memcpy(p + i, &v, 8);
	}
}

/* Word index with a skewed (roughly Zipf-like) distribution. */
static unsigned pick_word(struct gen *g)
{
	uint64_t r = rnd(g);
	unsigned bits = 1 + (unsigned)(r % 12); /* 1..12 bits: small indexes are common */
	return (unsigned)((r >> 8) & ((1u << bits) - 1)) % N_WORDS;
}

static void fill_text(struct gen *g, uint8_t *p)
{
	size_t i = 0;
	while (i < PAGE) {
		unsigned w = pick_word(g);
		size_t n = g->wlen[w];
		if (i + n + 1 > PAGE)
			n = PAGE - i - 1;
		memcpy(p + i, g->words[w], n);
		i += n;
		uint64_t r = rnd(g);
		p[i++] = (r & 15) == 0 ? '\n' : (r & 15) == 1 ? ',' : ' ';
	}
}

static void fill_structured(struct gen *g, uint8_t *p)
{
	uint64_t base = 0x00007f0000000000ull + (rnd(g) & 0xffffff000ull);
	uint32_t counter = (uint32_t)rnd(g) & 0xffff;
	for (size_t i = 0; i < PAGE; i += 16) {
		uint64_t ptr = base + (rnd(g) & 0xfff) * 16;
		uint32_t small = counter++;
		uint32_t flags = (uint32_t)(rnd(g) & 0x3);
		memcpy(p + i, &ptr, 8);
		memcpy(p + i + 8, &small, 4);
		memcpy(p + i + 12, &flags, 4);
	}
}

static void gen_init(struct gen *g, uint64_t seed)
{
	static const char letters[] = "etaoinshrdlucmfwypvbgkqjxz";
	g->s = seed * 0x2545F4914F6CDD1Dull + 7;
	for (unsigned w = 0; w < N_WORDS; w++) {
		unsigned n = 2 + (unsigned)(rnd(g) % 9);
		for (unsigned k = 0; k < n; k++) {
			uint64_t r = rnd(g);
			/* favour the front of the letter list, as text does */
			g->words[w][k] = letters[(r % 26) * (r % 26) / 26];
		}
		g->wlen[w] = (uint8_t)n;
	}
	for (unsigned t = 0; t < N_TEMPLATES; t++) {
		if (t % 2)
			fill_text(g, g->templates[t]);
		else
			fill_structured(g, g->templates[t]);
	}
}

enum kind { ZERO, TEXT, RANDOM, REPEATED, STRUCTURED };

static enum kind pick_kind(struct gen *g)
{
	unsigned r = (unsigned)(rnd(g) % 100);
	if (r < 30)
		return ZERO;
	if (r < 60)
		return TEXT;
	if (r < 75)
		return RANDOM;
	if (r < 90)
		return REPEATED;
	return STRUCTURED;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'K':
	case 'k':
		v <<= 10, end++;
		break;
	case 'M':
	case 'm':
		v <<= 20, end++;
		break;
	case 'G':
	case 'g':
		v <<= 30, end++;
		break;
	}
	if (*end || v == 0 || v % PAGE)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t size, seed = 1;
	if (argc < 3 || argc > 4 || parse_size(argv[2], &size) < 0 ||
	    (argc == 4 && (seed = strtoull(argv[3], NULL, 10)) == 0)) {
		fprintf(stderr, "usage: mkimage OUT SIZE [SEED]  (SIZE a page multiple, e.g. 2G; "
				"SEED > 0)\n");
		return 2;
	}
	struct gen *g = malloc(sizeof(*g));
	enum { BUF = 1 << 20 };
	uint8_t *buf = malloc(BUF);
	if (!g || !buf)
		return 1;
	gen_init(g, seed);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "mkimage: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	enum kind kind = ZERO;
	unsigned run = 0, tmpl = 0;
	for (uint64_t done = 0; done < size;) {
		size_t n = size - done < BUF ? (size_t)(size - done) : BUF;
		for (size_t off = 0; off < n; off += PAGE) {
			if (run == 0) {
				kind = pick_kind(g);
				/* lengths 1..64 pages, short runs more common */
				run = 1 + (unsigned)(rnd(g) % 64) * (unsigned)(rnd(g) % 64) / 64;
				tmpl = (unsigned)(rnd(g) % N_TEMPLATES);
			}
			run--;
			uint8_t *p = buf + off;
			switch (kind) {
			case ZERO:
				memset(p, 0, PAGE);
				break;
			case TEXT:
				fill_text(g, p);
				break;
			case RANDOM:
				fill_random(g, p, PAGE);
				break;
			case REPEATED:
				memcpy(p, g->templates[tmpl], PAGE);
				break;
			case STRUCTURED:
				fill_structured(g, p);
				break;
			}
		}
		for (size_t w = 0; w < n;) {
			ssize_t r = write(fd, buf + w, n - w);
			if (r < 0) {
				fprintf(stderr, "mkimage: writing %s: %s\n", argv[1],
					strerror(errno));
				return 1;
			}
			w += (size_t)r;
		}
		done += n;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "mkimage: closing %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	free(buf);
	free(g);
	return 0;
}
