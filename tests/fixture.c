/* SPDX-License-Identifier: MIT */
#include "fixture.h"

#include <string.h>
#include <sys/mman.h>

#define PAGE 4096u

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static const char *const words[] = {
	"the",	  "memory", "page",   "snapshot", "restore", "fault", "thread",	 "kernel",
	"buffer", "return", "struct", "const",	  "int",     "void",  "error",	 "value",
	"size",	  "index",  "python", "object",	  "string",  "list",  "dict",	 "module",
	"import", "class",  "self",   "none",	  "true",    "false", "lambda",	 "yield",
	"async",  "await",  "http",   "json",	  "user",    "data",  "request", "response",
	"cache",  "queue",  "lock",   "map",	  "node",    "tree",  "hash",	 "key",
	"name",	  "time",   "count",  "next",	  "prev",    "head",  "tail",	 "file",
	"path",	  "open",   "close",  "read",	  "write",   "send",  "recv",
};

static void fill_text(uint8_t *p, uint64_t *x)
{
	size_t n = 0;
	while (n < PAGE) {
		const char *w = words[next(x) % (sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);
		if (l > PAGE - n)
			l = PAGE - n;
		memcpy(p + n, w, l);
		n += l;
		if (n < PAGE)
			p[n++] = (next(x) & 7) ? ' ' : '\n';
	}
}

/* Heap-like: pointers into one arena, small integers, lengths, some zeros. */
static void fill_struct(uint8_t *p, uint64_t *x)
{
	uint64_t base = 0x7f3a00000000ull + (next(x) & 0xffff000);
	uint64_t *q = (uint64_t *)p;
	for (size_t i = 0; i < PAGE / 8; i += 4) {
		uint64_t r = next(x);
		q[i] = base + (r & 0xfff0);
		q[i + 1] = (r >> 16) & 0xff;
		q[i + 2] = (r >> 24) & 3 ? (r >> 32) & 0xfff : 0;
		q[i + 3] = i * 8;
	}
}

void fixture_fill_mixed(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
	for (int i = 0; i < 8; i++)
		next(&x);
	/* A handful of pages that recur throughout the image. */
	uint8_t templ[4][PAGE];
	for (int t = 0; t < 4; t++)
		for (size_t i = 0; i < PAGE; i += 8) {
			uint64_t v = next(&x);
			memcpy(&templ[t][i], &v, 8);
		}
	size_t pages = len / PAGE, pg = 0;
	while (pg < pages) {
		/* Memory comes in runs of like pages. */
		uint64_t r = next(&x);
		unsigned kind = (unsigned)(r % 100);
		size_t run = 1 + (size_t)((r >> 8) % 24);
		if (run > pages - pg)
			run = pages - pg;
		for (size_t k = 0; k < run; k++, pg++) {
			uint8_t *d = p + pg * PAGE;
			if (kind < 35) {
				memset(d, 0, PAGE);
			} else if (kind < 56) {
				fill_text(d, &x);
			} else if (kind < 72) {
				fill_struct(d, &x);
			} else if (kind < 88) {
				for (size_t i = 0; i < PAGE; i += 8) {
					uint64_t v = next(&x);
					memcpy(d + i, &v, 8);
				}
			} else {
				memcpy(d, templ[next(&x) % 4], PAGE);
			}
		}
	}
}

int fixture_write_snapshot(const char *path, const struct thaw_region_desc *regions, size_t n,
			   uint32_t chunk_size)
{
	char err[512] = "";
	struct thaw_writer_opts o = {
		.sz = sizeof(o),
		.chunk_size = chunk_size,
		.err_buf = err,
		.err_buf_size = sizeof(err),
	};
	struct thaw_writer *w;
	int r = thaw_writer_open(path, &o, &w);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct thaw_region_desc d = regions[i];
		d.sz = sizeof(d);
		r = thaw_writer_add_region(w, &d);
		if (r) {
			thaw_writer_abort(w);
			return r;
		}
	}
	return thaw_writer_close(w);
}

int fixture_restore_region(const char *path, const void *src, size_t len, uint64_t addr,
			   unsigned flags, struct thaw_snapshot **snap, struct thaw_restore **r)
{
	struct thaw_region_desc d = { .sz = sizeof(d),
				      .addr = addr,
				      .len = len,
				      .prot = PROT_READ | PROT_WRITE,
				      .name = "fixture",
				      .mem = src,
				      .fd = -1 };
	struct thaw_restore_opts o = { .sz = sizeof(o), .flags = flags };
	int err = fixture_write_snapshot(path, &d, 1, 0);
	if (!err)
		err = thaw_snapshot_open(path, NULL, snap);
	if (!err && (err = thaw_restore_start(*snap, &o, r)))
		thaw_snapshot_close(*snap);
	return err;
}
