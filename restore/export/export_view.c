/* SPDX-License-Identifier: MIT */
/*
 * The thaw v1 view of live memory. Nothing is read or hashed: a chunk is
 * ZERO when none of its pages may hold data (never populated per the page
 * tables, or a hole of the memfd), else RAW with its bytes stored where the
 * memory itself lies in the object. Building costs a page-table walk and
 * the tables, not a pass over the memory, so it stays short at any size.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "format/format.h"
#include "common/pagemap.h"

/*
 * Pages a private anonymous mapping never populated are zero, which is
 * what lets the view skip them unread; in a shared or file mapping they
 * are not. So [addr, addr + len) must lie wholly in private anonymous
 * mappings of this process. 0, or -EINVAL with the offending mapping named.
 */
static int check_anonymous(size_t i, uint64_t addr, uint64_t len, char *err, size_t err_len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return thaw__fail(NULL, err, err_len, -errno, "export: /proc/self/maps: %s",
				  strerror(errno));
	char line[512];
	uint64_t covered = addr, end = addr + len;
	int e = 0;
	while (!e && covered < end && fgets(line, sizeof(line), f)) {
		unsigned long long a, b, inode;
		char perms[5];
		if (sscanf(line, "%llx-%llx %4s %*x %*x:%*x %llu", &a, &b, perms, &inode) != 4 ||
		    b <= covered || a >= end)
			continue;
		if (a > covered)
			break; /* a hole in the range */
		if (perms[0] != 'r' || perms[3] != 'p' || inode)
			e = thaw__fail(
				NULL, err, err_len, -EINVAL,
				"export region %zu: 0x%llx-0x%llx is %s%s, not private anonymous "
				"readable memory (give its memfd)",
				i, a, b, perms, inode ? " backed by a file" : "");
		covered = b;
	}
	fclose(f);
	if (!e && covered < end)
		e = thaw__fail(NULL, err, err_len, -EINVAL,
			       "export region %zu: 0x%" PRIx64 " is not mapped", i, covered);
	return e;
}

static int check_regions(const struct thaw_export_region *rg, size_t n, uint32_t ps, char *err,
			 size_t err_len)
{
	if (!n)
		return thaw__fail(NULL, err, err_len, -EINVAL, "export: no regions");
	for (size_t i = 0; i < n; i++) {
		const struct thaw_export_region *r = &rg[i];
		if (r->addr % ps || !r->len || r->len % ps || r->len > UINT64_MAX - r->addr)
			return thaw__fail(NULL, err, err_len, -EINVAL,
					  "export region %zu: 0x%" PRIx64 " + %" PRIu64
					  " is not a non-empty page-aligned range",
					  i, r->addr, r->len);
		if (i && r->addr < rg[i - 1].addr + rg[i - 1].len)
			return thaw__fail(NULL, err, err_len, -EINVAL,
					  "export region %zu: 0x%" PRIx64
					  " overlaps or precedes region %zu (regions must ascend)",
					  i, r->addr, i - 1);
		if (r->name && strlen(r->name) > THAW__NAME_MAX)
			return thaw__fail(NULL, err, err_len, -EINVAL,
					  "export region %zu: name too long", i);
		if (r->memfd < 0) {
			int e = check_anonymous(i, r->addr, r->len, err, err_len);
			if (e)
				return e;
		} else {
			struct stat st;
			if (fstat(r->memfd, &st) < 0)
				return thaw__fail(NULL, err, err_len, -errno,
						  "export region %zu: memfd %d: %s", i, r->memfd,
						  strerror(errno));
			if (r->memfd_offset % ps || r->memfd_offset > (uint64_t)st.st_size ||
			    r->len > (uint64_t)st.st_size - r->memfd_offset)
				return thaw__fail(
					NULL, err, err_len, -EINVAL,
					"export region %zu: memfd offset %" PRIu64 " + %" PRIu64
					" is not page aligned within its %lld bytes",
					i, r->memfd_offset, r->len, (long long)st.st_size);
		}
	}
	return 0;
}

/*
 * Data ranges of the memfd between file offsets [from, to), as addresses:
 * everything but its holes. SEEK_HOLE walks every page of data it passes,
 * so this is called only where the page tables do not already show data.
 */
static int memfd_seek(const struct thaw_export_region *r, uint64_t from, uint64_t to, uint32_t ps,
		      struct thaw__ranges *out)
{
	for (uint64_t pos = from; pos < to;) {
		off_t d = lseek(r->memfd, (off_t)pos, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : -errno;
		if ((uint64_t)d >= to)
			return 0;
		off_t h = lseek(r->memfd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		uint64_t a = (uint64_t)d / ps * ps;
		uint64_t b = ((uint64_t)h + ps - 1) / ps * ps;
		if (b > to)
			b = to;
		int e = thaw__ranges_add(out, r->addr + (a - r->memfd_offset),
					 r->addr + (b - r->memfd_offset));
		if (e)
			return e;
		pos = b;
	}
	return 0;
}

/*
 * Data ranges of a memfd region. Pages mapped in our page tables hold data
 * (PAGEMAP_SCAN finds them fast); only the gaps between them are asked of
 * the file, and a gap that is a hole costs one SEEK_DATA. Without
 * PAGEMAP_SCAN the whole range is walked with SEEK_DATA/SEEK_HOLE.
 */
static int memfd_data(const struct thaw_export_region *r, int pm_fd, uint32_t ps,
		      struct thaw__ranges *out)
{
	struct thaw__ranges mapped = { 0 };
	int e = pm_fd < 0 ? -EBADF : thaw__pagemap_scan(pm_fd, r->addr, r->addr + r->len, &mapped);
	if (e) {
		free(mapped.v);
		return e == -ENOMEM
			       ? e
			       : memfd_seek(r, r->memfd_offset, r->memfd_offset + r->len, ps, out);
	}
	uint64_t at = r->addr, end = r->addr + r->len;
	for (size_t i = 0; i <= mapped.n && !e; i++) {
		uint64_t gap_end = i < mapped.n ? mapped.v[i].start : end;
		if (gap_end > at)
			e = memfd_seek(r, r->memfd_offset + (at - r->addr),
				       r->memfd_offset + (gap_end - r->addr), ps, out);
		if (!e && i < mapped.n) {
			e = thaw__ranges_add(out, mapped.v[i].start, mapped.v[i].end);
			at = mapped.v[i].end;
		}
	}
	free(mapped.v);
	return e;
}

/*
 * Data ranges of region r. When they cannot be known every page counts as
 * data: slower to send, never wrong.
 */
static int region_data(const struct thaw_export_region *r, int pm_fd, uint32_t ps,
		       struct thaw__ranges *out)
{
	int e;
	if (r->memfd >= 0)
		e = memfd_data(r, pm_fd, ps, out);
	else {
		e = pm_fd < 0 ? -EBADF : thaw__pagemap_scan(pm_fd, r->addr, r->addr + r->len, out);
		if (e == -ENOTTY || e == -EINVAL || e == -EOPNOTSUPP) {
			out->n = 0;
			e = thaw__pagemap_read(pm_fd, r->addr, r->addr + r->len, ps, out);
		}
	}
	if (e == -ENOMEM)
		return e;
	if (e) {
		out->n = 0;
		return thaw__ranges_add(out, r->addr, r->addr + r->len);
	}
	return 0;
}

/* Fill the chunk entries and zero masks of span s from its data ranges. */
static void fill_chunks(struct thaw__export_view *v, const struct thaw__export_span *s,
			const struct thaw__ranges *data, uint32_t ps, uint8_t *tables,
			struct thaw__fmt_header *h, uint64_t *has_data)
{
	uint64_t pages = s->len / ps;
	memset(has_data, 0, (pages + 63) / 64 * 8);
	for (size_t i = 0; i < data->n; i++) {
		uint64_t a = data->v[i].start > s->addr ? data->v[i].start : s->addr;
		uint64_t b = data->v[i].end < s->addr + s->len ? data->v[i].end : s->addr + s->len;
		if (a >= b)
			continue;
		for (uint64_t p = (a - s->addr) / ps; p < (b - s->addr) / ps; p++)
			has_data[p / 64] |= 1ull << (p % 64);
	}
	uint32_t ppc = v->chunk_size / ps;
	uint32_t words = (ppc + 63) / 64;
	struct thaw__fmt_chunk *chunks = (struct thaw__fmt_chunk *)(tables + h->chunk_off);
	uint64_t *zmask = (uint64_t *)(tables + h->zmask_off);
	uint64_t n = (s->len - 1) / v->chunk_size + 1;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t id = s->first_chunk + k;
		uint64_t first = k * ppc;
		uint64_t len = s->len - k * v->chunk_size < v->chunk_size
				       ? s->len - k * v->chunk_size
				       : v->chunk_size;
		uint64_t *mask = zmask + id * words;
		bool any = false;
		for (uint64_t p = 0; p < len / ps; p++) {
			uint64_t q = first + p;
			if (has_data[q / 64] >> (q % 64) & 1)
				any = true;
			else
				mask[p / 64] |= 1ull << (p % 64);
		}
		struct thaw__fmt_chunk *c = &chunks[id];
		memset(c, 0, sizeof(*c));
		if (any) {
			c->kind = THAW_CHUNK_RAW;
			c->offset = h->data_off + h->data_len;
			c->stored_len = (uint32_t)len;
			h->data_len += len;
			v->data_ids[v->chunks_data++] = id;
		} else {
			c->kind = THAW_CHUNK_ZERO;
		}
	}
}

static int build_tables(const struct thaw_export_region *rg, size_t n, uint32_t ps,
			struct thaw__export_view *v)
{
	uint32_t words = (v->chunk_size / ps + 63) / 64;
	uint64_t names_len = 0, raw = 0;
	for (size_t i = 0; i < n; i++) {
		names_len += rg[i].name ? strlen(rg[i].name) : 0;
		raw += rg[i].len;
	}
	struct thaw__fmt_header h = { .version = THAW__FMT_VERSION,
				      .header_size = THAW__FMT_HEADER_SIZE,
				      .page_size = ps,
				      .chunk_size = v->chunk_size,
				      .codec = THAW__FMT_CODEC_ZSTD,
				      .flags = THAW__FMT_F_NO_HASH,
				      .region_count = n,
				      .raw_bytes = raw };
	memcpy(h.magic, THAW__FMT_MAGIC, sizeof(h.magic));
	h.region_off = THAW__FMT_HEADER_SIZE;
	h.names_off = h.region_off + n * sizeof(struct thaw__fmt_region);
	h.names_len = names_len;
	h.chunk_off = (h.names_off + names_len + 7) / 8 * 8;
	h.chunk_count = v->chunk_count;
	h.zmask_off = h.chunk_off + v->chunk_count * sizeof(struct thaw__fmt_chunk);
	h.tables_len = h.zmask_off + v->chunk_count * words * 8;
	h.data_off = h.tables_len;

	uint8_t *t = calloc(1, h.tables_len);
	v->data_ids = calloc(v->chunk_count ? v->chunk_count : 1, sizeof(*v->data_ids));
	uint64_t max_pages = 0;
	for (size_t i = 0; i < n; i++)
		if (rg[i].len / ps > max_pages)
			max_pages = rg[i].len / ps;
	uint64_t *has_data = malloc((max_pages + 63) / 64 * 8);
	if (!t || !v->data_ids || !has_data) {
		free(t);
		free(has_data);
		return -ENOMEM;
	}
	v->tables = t;
	int pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct thaw__ranges data = { 0 };
	uint32_t name_off = 0;
	int e = 0;
	for (size_t i = 0; i < n && !e; i++) {
		struct thaw__fmt_region *fr = (struct thaw__fmt_region *)(t + h.region_off) + i;
		size_t nl = rg[i].name ? strlen(rg[i].name) : 0;
		*fr = (struct thaw__fmt_region){ .addr = rg[i].addr,
						 .len = rg[i].len,
						 .prot = (uint32_t)rg[i].prot,
						 .first_chunk = v->spans[i].first_chunk,
						 .name_off = name_off,
						 .name_len = (uint32_t)nl };
		memcpy(t + h.names_off + name_off, rg[i].name ? rg[i].name : "", nl);
		name_off += (uint32_t)nl;
		data.n = 0;
		e = region_data(&rg[i], pm_fd, ps, &data);
		if (!e)
			fill_chunks(v, &v->spans[i], &data, ps, t, &h, has_data);
	}
	if (pm_fd >= 0)
		close(pm_fd);
	free(data.v);
	free(has_data);
	if (e)
		return e;
	h.file_size = h.data_off + h.data_len;
	v->chunks = (const struct thaw__fmt_chunk *)(t + h.chunk_off);
	thaw__layout_digest(&h, t, h.tables_len, h.digest);
	memcpy(t, &h, sizeof(h));
	v->tables_len = h.tables_len;
	v->size = h.file_size;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Strong and unique to this export: a destination pins it with If-Match. */
	snprintf(v->etag, sizeof(v->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x-%x-%llx\"",
		 h.digest[0], h.digest[1], h.digest[2], h.digest[3], h.digest[4], h.digest[5],
		 h.digest[6], h.digest[7], (unsigned)getpid(),
		 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
	return 0;
}

int thaw__export_view_build(const struct thaw_export_region *rg, size_t n, uint32_t chunk_size,
			    struct thaw__export_view *v, char *err, size_t err_len)
{
	memset(v, 0, sizeof(*v));
	uint32_t ps = (uint32_t)sysconf(_SC_PAGESIZE);
	uint32_t cs = chunk_size ? chunk_size : THAW__CHUNK_DEFAULT;
	if (cs < THAW__CHUNK_MIN || cs > THAW__CHUNK_MAX || (cs & (cs - 1)) || cs < ps)
		return thaw__fail(NULL, err, err_len, -EINVAL,
				  "export: chunk size %u is not a power of two in %u..%u", cs,
				  THAW__CHUNK_MIN, THAW__CHUNK_MAX);
	int e = check_regions(rg, n, ps, err, err_len);
	if (e)
		return e;
	v->chunk_size = cs;
	v->spans = calloc(n, sizeof(*v->spans));
	if (!v->spans)
		return -ENOMEM;
	v->nspans = n;
	for (size_t i = 0; i < n; i++) {
		v->spans[i] = (struct thaw__export_span){ .addr = rg[i].addr,
							  .len = rg[i].len,
							  .first_chunk = v->chunk_count,
							  .memfd = rg[i].memfd,
							  .memfd_offset = rg[i].memfd_offset };
		v->chunk_count += (rg[i].len - 1) / cs + 1;
	}
	e = build_tables(rg, n, ps, v);
	if (e) {
		thaw__export_view_free(v);
		return thaw__fail(NULL, err, err_len, e, "export: building the view: %s",
				  strerror(-e));
	}
	return 0;
}

void thaw__export_view_free(struct thaw__export_view *v)
{
	free(v->tables);
	free(v->spans);
	free(v->data_ids);
	memset(v, 0, sizeof(*v));
}

uint64_t thaw__export_data_from(const struct thaw__export_view *v, uint64_t off)
{
	uint64_t lo = 0, hi = v->chunks_data;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (v->chunks[v->data_ids[mid]].offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The span holding chunk id. */
static const struct thaw__export_span *span_of(const struct thaw__export_view *v, uint64_t id)
{
	size_t lo = 0, hi = v->nspans;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->spans[mid].first_chunk <= id)
			lo = mid;
		else
			hi = mid;
	}
	return &v->spans[lo];
}

void thaw__export_piece_at(const struct thaw__export_view *v, uint64_t off, uint64_t max,
			   struct thaw__export_piece *p)
{
	if (off < v->tables_len) {
		uint64_t n = v->tables_len - off;
		*p = (struct thaw__export_piece){ .mem = (const char *)v->tables + off,
						  .len = n < max ? n : max,
						  .memfd = -1 };
		return;
	}
	/* The data chunk holding off: the last one stored at or before it. */
	uint64_t j = thaw__export_data_from(v, off + 1) - 1;
	uint64_t id = v->data_ids[j];
	const struct thaw__export_span *s = span_of(v, id);
	uint64_t in_span = (id - s->first_chunk) * v->chunk_size + (off - v->chunks[id].offset);
	uint64_t len = v->chunks[id].offset + v->chunks[id].stored_len - off;
	/* Following data chunks of the same span are the next bytes of memory too. */
	for (uint64_t k = j + 1;
	     len < max && k < v->chunks_data && v->data_ids[k] == id + (k - j) &&
	     v->data_ids[k] < s->first_chunk + (s->len - 1) / v->chunk_size + 1;
	     k++)
		len += v->chunks[v->data_ids[k]].stored_len;
	*p = (struct thaw__export_piece){ .mem = (const void *)(uintptr_t)(s->addr + in_span),
					  .len = len < max ? len : max,
					  .memfd = s->memfd,
					  .memfd_off = s->memfd_offset + in_span };
}
