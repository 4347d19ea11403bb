/* SPDX-License-Identifier: MIT */
/*
 * The snapshot parser. Everything here reads bytes that may come from a
 * server we do not trust, so every count, offset and length is checked
 * (without overflow) before anything is indexed with it, and each refusal
 * names the field that was wrong.
 */
#include "format.h"

#include "common/errors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>
#include <zstd.h>

static int bad(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A refusal names the field; the caller decides whether to log it. */
static int bad(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = thaw__vfail(NULL, err, err_len, -THAW_E_BAD_SNAPSHOT, fmt, ap);
	va_end(ap);
	return r;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

void thaw__layout_digest(const struct thaw__fmt_header *hdr, const void *tables,
			 uint64_t tables_len, uint8_t digest[16])
{
	struct thaw__fmt_header h = *hdr;
	memset(h.digest, 0, sizeof(h.digest));
	XXH128_hash_t d;
	XXH3_state_t *st = XXH3_createState();
	if (st) {
		XXH3_128bits_reset(st);
		XXH3_128bits_update(st, &h, sizeof(h));
		if (tables_len > sizeof(h))
			XXH3_128bits_update(st, (const uint8_t *)tables + sizeof(h),
					    tables_len - sizeof(h));
		d = XXH3_128bits_digest(st);
		XXH3_freeState(st);
	} else {
		/* Out of memory for 600 bytes of state: hash a copy in one go instead. */
		uint8_t *all = malloc(tables_len > sizeof(h) ? tables_len : sizeof(h));
		if (!all) {
			memset(digest, 0,
			       16); /* cannot match: the open fails, it does not misread */
			return;
		}
		memcpy(all, tables, tables_len);
		memcpy(all, &h, sizeof(h));
		d = XXH3_128bits(all, tables_len > sizeof(h) ? tables_len : sizeof(h));
		free(all);
	}
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, d);
	memcpy(digest, c.digest, 16);
}

/*
 * One table of the tables section: count entries of size bytes at off,
 * which must be 8-aligned, start at or after prev_end, and end (without
 * overflow) at or before limit. *end receives where it ends.
 */
static int check_table(const char *name_off, uint64_t off, const char *name_count, uint64_t count,
		       uint64_t size, uint64_t prev_end, const char *prev_name, uint64_t limit,
		       const char *limit_name, uint64_t *end, char *err, size_t err_len)
{
	if (off & 7)
		return bad(err, err_len, "header.%s: %" PRIu64 " is not 8-byte aligned", name_off,
			   off);
	if (off < prev_end)
		return bad(err, err_len, "header.%s: %" PRIu64 " overlaps %s ending at %" PRIu64,
			   name_off, off, prev_name, prev_end);
	if (off > limit)
		return bad(err, err_len, "header.%s: %" PRIu64 " is past header.%s %" PRIu64,
			   name_off, off, limit_name, limit);
	if (size && count > (limit - off) / size)
		return bad(err, err_len,
			   "header.%s: %" PRIu64 " entries of %" PRIu64
			   " bytes at header.%s %" PRIu64 " run past header.%s %" PRIu64,
			   name_count, count, size, name_off, off, limit_name, limit);
	*end = off + count * size;
	return 0;
}

/* The header's own fields, each alone or against the file size. */
static int check_header_fields(const struct thaw__fmt_header *hp, uint64_t file_size, char *err,
			       size_t err_len)
{
	const struct thaw__fmt_header h = *hp;
	if (memcmp(h.magic, THAW__FMT_MAGIC, sizeof(h.magic)))
		return bad(err, err_len, "header.magic: not a thaw snapshot (expected \"%s\")",
			   THAW__FMT_MAGIC);
	if (h.version != THAW__FMT_VERSION) {
		bad(err, err_len,
		    "header.version: %u is not supported (this build reads version %u)", h.version,
		    THAW__FMT_VERSION);
		return -THAW_E_VERSION;
	}
	if (h.header_size != THAW__FMT_HEADER_SIZE)
		return bad(err, err_len, "header.header_size: %u, expected %u", h.header_size,
			   THAW__FMT_HEADER_SIZE);
	if (!is_pow2(h.page_size) || h.page_size < 4096 || h.page_size > THAW__CHUNK_MAX)
		return bad(err, err_len, "header.page_size: %u is not a power of two in 4096..%u",
			   h.page_size, THAW__CHUNK_MAX);
	if (!is_pow2(h.chunk_size) || h.chunk_size < THAW__CHUNK_MIN ||
	    h.chunk_size > THAW__CHUNK_MAX)
		return bad(err, err_len, "header.chunk_size: %u is not a power of two in %u..%u",
			   h.chunk_size, THAW__CHUNK_MIN, THAW__CHUNK_MAX);
	if (h.chunk_size < h.page_size)
		return bad(err, err_len,
			   "header.chunk_size: %u is smaller than header.page_size %u",
			   h.chunk_size, h.page_size);
	if (h.codec != THAW__FMT_CODEC_ZSTD)
		return bad(err, err_len, "header.codec: %u is not a known codec (1 = zstd)",
			   h.codec);
	if (h.flags & ~THAW__FMT_F_KNOWN)
		return bad(err, err_len,
			   "header.flags: 0x%x has bits this build does not know (0x%x)", h.flags,
			   h.flags & ~THAW__FMT_F_KNOWN);
	bool prefetch = h.flags & THAW__FMT_F_PREFETCH;
	if (!prefetch && h.prefetch_off)
		return bad(err, err_len,
			   "header.prefetch_off: %" PRIu64 " must be 0 without the PREFETCH flag",
			   h.prefetch_off);
	if (!prefetch && h.prefetch_len)
		return bad(err, err_len,
			   "header.prefetch_len: %" PRIu64 " must be 0 without the PREFETCH flag",
			   h.prefetch_len);
	if (prefetch && h.prefetch_len < sizeof(struct thaw__fmt_prefetch))
		return bad(err, err_len,
			   "header.prefetch_len: %" PRIu64
			   " is shorter than the %zu-byte section header",
			   h.prefetch_len, sizeof(struct thaw__fmt_prefetch));
	if (h.file_size != file_size)
		return bad(err, err_len,
			   "header.file_size: %" PRIu64 " but the file is %" PRIu64 " bytes",
			   h.file_size, file_size);
	if (h.tables_len < h.header_size || h.tables_len > file_size)
		return bad(err, err_len,
			   "header.tables_len: %" PRIu64 " is outside %u..%" PRIu64 " (file size)",
			   h.tables_len, h.header_size, file_size);
	if (h.data_off != h.tables_len)
		return bad(err, err_len,
			   "header.data_off: %" PRIu64 " is not header.tables_len %" PRIu64,
			   h.data_off, h.tables_len);
	if (h.data_len != file_size - h.data_off)
		return bad(err, err_len,
			   "header.data_len: header.data_off %" PRIu64 " + data_len %" PRIu64
			   " is not the file size %" PRIu64,
			   h.data_off, h.data_len, file_size);
	return 0;
}

/* The tables follow the header in order, back to back, and end at tables_len. */
static int check_header_tables(const struct thaw__fmt_header *hp, char *err, size_t err_len)
{
	const struct thaw__fmt_header h = *hp;
	bool prefetch = h.flags & THAW__FMT_F_PREFETCH;
	uint64_t zmask_words = (h.chunk_size / h.page_size + 63) / 64;
	uint64_t end;
	int r = check_table("region_off", h.region_off, "region_count", h.region_count,
			    sizeof(struct thaw__fmt_region), h.header_size, "the header",
			    h.names_off, "names_off", &end, err, err_len);
	if (!r)
		r = check_table("names_off", h.names_off, "names_len", h.names_len, 1, end,
				"the region table", h.chunk_off, "chunk_off", &end, err, err_len);
	if (!r)
		r = check_table("chunk_off", h.chunk_off, "chunk_count", h.chunk_count,
				sizeof(struct thaw__fmt_chunk), end, "the names table", h.zmask_off,
				"zmask_off", &end, err, err_len);
	if (!r)
		r = check_table("zmask_off", h.zmask_off, "chunk_count", h.chunk_count,
				zmask_words * 8, end, "the chunk table",
				prefetch ? h.prefetch_off : h.tables_len,
				prefetch ? "prefetch_off" : "tables_len", &end, err, err_len);
	if (!r && prefetch)
		r = check_table("prefetch_off", h.prefetch_off, "prefetch_len", h.prefetch_len, 1,
				end, "the zero masks", h.tables_len, "tables_len", &end, err,
				err_len);
	if (r)
		return r;
	if (end != h.tables_len)
		return bad(err, err_len,
			   "header.tables_len: %" PRIu64 " but the %s of header.%s %" PRIu64
			   " end at %" PRIu64,
			   h.tables_len, prefetch ? "prefetch section" : "zero masks",
			   prefetch ? "prefetch_len" : "chunk_count",
			   prefetch ? h.prefetch_len : h.chunk_count, end);
	if (h.raw_bytes > UINT64_MAX - THAW__CHUNK_MAX ||
	    h.raw_bytes / h.chunk_size > h.chunk_count)
		return bad(err, err_len,
			   "header.raw_bytes: %" PRIu64
			   " bytes do not fit in header.chunk_count %" PRIu64 " chunks of %u",
			   h.raw_bytes, h.chunk_count, h.chunk_size);
	return 0;
}

int thaw__layout_check_header(const void *buf, uint64_t file_size, uint64_t *tables_len, char *err,
			      size_t err_len)
{
	struct thaw__fmt_header h;
	if (file_size < THAW__FMT_HEADER_SIZE)
		return bad(err, err_len,
			   "header: the file is %" PRIu64 " bytes, shorter than the %u-byte header",
			   file_size, THAW__FMT_HEADER_SIZE);
	memcpy(&h, buf, sizeof(h));
	int r = check_header_fields(&h, file_size, err, err_len);
	if (!r)
		r = check_header_tables(&h, err, err_len);
	if (r)
		return r;
	*tables_len = h.tables_len;
	return 0;
}

static int check_regions(struct thaw__layout *l, char *err, size_t err_len)
{
	const struct thaw__fmt_header *h = &l->hdr;
	uint64_t next_chunk = 0, raw = 0, prev_end = 0;
	for (uint64_t i = 0; i < h->region_count; i++) {
		const struct thaw__fmt_region *rg = &l->regions[i];
		if (rg->addr % h->page_size)
			return bad(err, err_len,
				   "region %" PRIu64 ": addr 0x%" PRIx64 " is not page aligned", i,
				   rg->addr);
		if (!rg->len || rg->len % h->page_size)
			return bad(err, err_len,
				   "region %" PRIu64 ": len %" PRIu64
				   " is not a positive multiple of the page size",
				   i, rg->len);
		if (rg->len > UINT64_MAX - rg->addr)
			return bad(err, err_len,
				   "region %" PRIu64 ": addr 0x%" PRIx64 " + len %" PRIu64
				   " overflows",
				   i, rg->addr, rg->len);
		if (i && rg->addr < prev_end)
			return bad(err, err_len,
				   "region %" PRIu64 ": addr 0x%" PRIx64 " overlaps region %" PRIu64
				   " (regions must ascend without overlap)",
				   i, rg->addr, i - 1);
		prev_end = rg->addr + rg->len;
		if ((unsigned)rg->prot & ~(unsigned)(PROT_READ | PROT_WRITE | PROT_EXEC))
			return bad(err, err_len,
				   "region %" PRIu64 ": prot 0x%x has bits other than rwx", i,
				   rg->prot);
		if (rg->name_len > THAW__NAME_MAX)
			return bad(err, err_len,
				   "region %" PRIu64 ": name_len %u is longer than %u", i,
				   rg->name_len, THAW__NAME_MAX);
		if (rg->name_off > h->names_len || rg->name_len > h->names_len - rg->name_off)
			return bad(
				err, err_len,
				"region %" PRIu64
				": name_off %u + name_len %u runs past header.names_len %" PRIu64,
				i, rg->name_off, rg->name_len, h->names_len);
		if (memchr(l->names + rg->name_off, 0, rg->name_len))
			return bad(err, err_len, "region %" PRIu64 ": name contains a NUL byte", i);
		uint64_t n = (rg->len - 1) / h->chunk_size + 1;
		if (rg->first_chunk != next_chunk)
			return bad(err, err_len,
				   "region %" PRIu64 ": first_chunk %" PRIu64 ", expected %" PRIu64
				   " (the chunks of the regions before it)",
				   i, rg->first_chunk, next_chunk);
		if (n > h->chunk_count - next_chunk)
			return bad(err, err_len,
				   "region %" PRIu64 ": its %" PRIu64
				   " chunks run past header.chunk_count %" PRIu64,
				   i, n, h->chunk_count);
		next_chunk += n;
		raw += rg->len; /* cannot overflow: the chunks fit in chunk_count */
	}
	if (next_chunk != h->chunk_count)
		return bad(err, err_len,
			   "header.chunk_count: %" PRIu64 " but the regions cover %" PRIu64
			   " chunks",
			   h->chunk_count, next_chunk);
	if (raw != h->raw_bytes)
		return bad(err, err_len,
			   "header.raw_bytes: %" PRIu64 " but the regions add up to %" PRIu64,
			   h->raw_bytes, raw);
	return 0;
}

/* No bit of chunk id's zero mask may name a page beyond its pages. */
static int check_zmask(const struct thaw__layout *l, uint64_t id, uint32_t pages, char *err,
		       size_t err_len)
{
	const uint64_t *mask = l->zmask + id * l->zmask_words;
	for (uint32_t w = 0; w < l->zmask_words; w++) {
		uint64_t allowed = pages >= (w + 1) * 64 ? ~0ull
				   : pages > w * 64	 ? (1ull << (pages - w * 64)) - 1
							 : 0;
		if (mask[w] & ~allowed)
			return bad(err, err_len,
				   "chunk %" PRIu64 ": zero mask has bits set beyond its %u pages",
				   id, pages);
	}
	return 0;
}

/* A ZERO chunk stores nothing, hashes as zeros (zero_hash: of zeros of len) and masks every page. */
static int check_zero_chunk(const struct thaw__layout *l, uint64_t id, uint32_t len,
			    uint64_t zero_hash, char *err, size_t err_len)
{
	const struct thaw__fmt_chunk *c = &l->chunks[id];
	const uint64_t *mask = l->zmask + id * l->zmask_words;
	uint32_t pages = len / l->hdr.page_size;
	if (c->offset || c->stored_len)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": ZERO chunk with offset %" PRIu64
			   " and stored_len %u (must be 0)",
			   id, c->offset, c->stored_len);
	if (thaw__layout_hash(l, c) && c->hash != zero_hash)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": ZERO chunk whose hash is not that of zeros", id);
	if (!thaw__layout_hash(l, c) && c->hash)
		return bad(err, err_len, "chunk %" PRIu64 ": a hash in a snapshot without hashes",
			   id);
	for (uint32_t p = 0; p < pages; p++)
		if (!(mask[p / 64] >> (p % 64) & 1))
			return bad(err, err_len,
				   "chunk %" PRIu64
				   ": ZERO chunk with page %u not in its zero mask",
				   id, p);
	return 0;
}

/* A RAW or ZSTD chunk's stored bytes lie in the data section and fit its length. */
static int check_stored_chunk(const struct thaw__layout *l, uint64_t id, uint32_t len, char *err,
			      size_t err_len)
{
	const struct thaw__fmt_header *h = &l->hdr;
	const struct thaw__fmt_chunk *c = &l->chunks[id];
	if (c->kind == THAW_CHUNK_RAW && c->stored_len != len)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": RAW chunk with stored_len %u, expected %u", id,
			   c->stored_len, len);
	if (c->kind == THAW_CHUNK_ZSTD &&
	    (!c->stored_len || c->stored_len > ZSTD_compressBound(len)))
		return bad(err, err_len,
			   "chunk %" PRIu64 ": ZSTD chunk with stored_len %u, outside "
			   "1..%zu for %u bytes",
			   id, c->stored_len, ZSTD_compressBound(len), len);
	if (c->offset < h->data_off)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": offset %" PRIu64
			   " is before the data section (%" PRIu64 ")",
			   id, c->offset, h->data_off);
	if (c->offset > h->file_size || c->stored_len > h->file_size - c->offset)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": offset %" PRIu64
			   " + stored_len %u runs past the end of the file (%" PRIu64 ")",
			   id, c->offset, c->stored_len, h->file_size);
	if (c->ref)
		return bad(err, err_len, "chunk %" PRIu64 ": ref %u set on a non-DUP chunk", id,
			   c->ref);
	return 0;
}

/* A DUP chunk names an earlier RAW or ZSTD chunk and repeats its every field. */
static int check_dup_chunk(const struct thaw__layout *l, uint64_t id, uint32_t len, char *err,
			   size_t err_len)
{
	const struct thaw__fmt_chunk *c = &l->chunks[id];
	if (c->ref >= id)
		return bad(err, err_len, "chunk %" PRIu64 ": DUP ref %u is not an earlier chunk",
			   id, c->ref);
	const struct thaw__fmt_chunk *t = &l->chunks[c->ref];
	if (t->kind != THAW_CHUNK_RAW && t->kind != THAW_CHUNK_ZSTD)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": DUP ref %u is a chunk of kind %u, not RAW or ZSTD",
			   id, c->ref, t->kind);
	if (t->offset != c->offset || t->stored_len != c->stored_len || t->hash != c->hash ||
	    thaw__layout_chunk_len(l, c->ref) != len)
		return bad(err, err_len,
			   "chunk %" PRIu64 ": DUP ref %u differs from its target in "
			   "offset, stored_len, length or hash",
			   id, c->ref);
	if (memcmp(l->zmask + id * l->zmask_words, l->zmask + (uint64_t)c->ref * l->zmask_words,
		   l->zmask_words * 8))
		return bad(err, err_len, "chunk %" PRIu64 ": DUP zero mask differs from chunk %u's",
			   id, c->ref);
	return 0;
}

static int check_chunks(struct thaw__layout *l, char *err, size_t err_len)
{
	const struct thaw__fmt_header *h = &l->hdr;
	/* ZERO chunks must carry the hash of zeros of their length; lengths
	 * differ only for a region's last chunk, so cache the common one. */
	void *zeros = calloc(1, h->chunk_size);
	if (!zeros)
		return -ENOMEM;
	uint64_t zero_hash_full = XXH3_64bits(zeros, h->chunk_size);
	int r = 0;
	uint64_t region = 0;
	for (uint64_t id = 0; !r && id < h->chunk_count; id++) {
		while (region + 1 < h->region_count && l->regions[region + 1].first_chunk <= id)
			region++;
		l->chunk_region[id] = region;
		const struct thaw__fmt_chunk *c = &l->chunks[id];
		uint32_t len = thaw__layout_chunk_len(l, id);
		r = check_zmask(l, id, len / h->page_size, err, err_len);
		if (r)
			break;
		switch (c->kind) {
		case THAW_CHUNK_ZERO:
			r = check_zero_chunk(l, id, len,
					     len == h->chunk_size ? zero_hash_full
								  : XXH3_64bits(zeros, len),
					     err, err_len);
			break;
		case THAW_CHUNK_RAW:
		case THAW_CHUNK_ZSTD:
			r = check_stored_chunk(l, id, len, err, err_len);
			break;
		case THAW_CHUNK_DUP:
			r = check_dup_chunk(l, id, len, err, err_len);
			break;
		default:
			r = bad(err, err_len,
				"chunk %" PRIu64 ": kind %u is not a known chunk kind", id,
				c->kind);
			break;
		}
	}
	free(zeros);
	return r;
}

/* Is bit i of the bitmap set? Sets it either way. */
static bool test_and_set(uint64_t *bits, uint64_t i)
{
	bool was = bits[i / 64] >> (i % 64) & 1;
	bits[i / 64] |= 1ull << (i % 64);
	return was;
}

/* The section's counts, and that its arrays fill prefetch_len exactly. */
static int check_prefetch_counts(struct thaw__layout *l, const uint8_t *t, char *err,
				 size_t err_len)
{
	const struct thaw__fmt_header *h = &l->hdr;
	struct thaw__fmt_prefetch s;
	memcpy(&s, t + h->prefetch_off, sizeof(s));
	uint64_t left = h->prefetch_len - sizeof(s);
	if (!s.chunk_count || s.chunk_count > h->chunk_count || s.chunk_count > left / 8)
		return bad(err, err_len,
			   "prefetch.chunk_count: %" PRIu64
			   " is outside 1..header.chunk_count %" PRIu64
			   " or past header.prefetch_len",
			   s.chunk_count, h->chunk_count);
	left -= s.chunk_count * 8;
	const struct {
		const char *name;
		uint64_t count;
	} lists[] = { { "page_count", s.page_count }, { "zero_count", s.zero_count } };
	for (size_t i = 0; i < 2; i++) {
		uint64_t n = lists[i].count;
		if (n / l->pages_per_chunk > h->chunk_count || n > left / 8)
			return bad(err, err_len,
				   "prefetch.%s: %" PRIu64
				   " pages do not fit in header.prefetch_len %" PRIu64
				   " or in the snapshot",
				   lists[i].name, n, h->prefetch_len);
		left -= n * 8;
	}
	if (!s.page_count != !s.frame_count || s.frame_count > s.page_count)
		return bad(err, err_len,
			   "prefetch.frame_count: %" PRIu64 " frames for %" PRIu64 " pages",
			   s.frame_count, s.page_count);
	if (left != s.frame_count * sizeof(struct thaw__fmt_frame))
		return bad(err, err_len,
			   "header.prefetch_len: %" PRIu64
			   " does not match prefetch.chunk_count %" PRIu64 ", page_count %" PRIu64
			   ", zero_count %" PRIu64 " and frame_count %" PRIu64,
			   h->prefetch_len, s.chunk_count, s.page_count, s.zero_count,
			   s.frame_count);
	const uint8_t *p = t + h->prefetch_off + sizeof(s);
	l->prefetch = (const void *)p;
	l->prefetch_count = s.chunk_count;
	l->ws_pages = (const void *)(p + s.chunk_count * 8);
	l->ws_page_count = s.page_count;
	l->zero_pages = (const void *)(p + (s.chunk_count + s.page_count) * 8);
	l->zero_page_count = s.zero_count;
	l->frames = (const void *)(p + (s.chunk_count + s.page_count + s.zero_count) * 8);
	l->frame_count = s.frame_count;
	return 0;
}

/*
 * A list of n global pages named name: real pages of the snapshot, each
 * once across the lists (seen), and data pages (zero = false) or zero
 * pages (zero = true) as the list promises.
 */
static int check_page_list(const struct thaw__layout *l, const uint64_t *pages, uint64_t n,
			   const char *name, bool zero, uint64_t *seen, char *err, size_t err_len)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t g = pages[i], id = g / l->pages_per_chunk;
		if (id >= l->hdr.chunk_count ||
		    g % l->pages_per_chunk >= thaw__layout_chunk_len(l, id) / l->hdr.page_size)
			return bad(err, err_len,
				   "prefetch %s entry %" PRIu64 ": page %" PRIu64
				   " is not a page of the snapshot",
				   name, i, g);
		if (thaw__layout_page_zero(l, g) != zero)
			return bad(err, err_len,
				   "prefetch %s entry %" PRIu64 ": page %" PRIu64 " is %s", name, i,
				   g,
				   zero ? "not a zero page"
					: "a zero page (zero pages are not stored in frames)");
		if (test_and_set(seen, g))
			return bad(err, err_len,
				   "prefetch %s entry %" PRIu64 ": page %" PRIu64
				   " is listed twice",
				   name, i, g);
	}
	return 0;
}

/* Frames: in the data section, plausible lengths, and together exactly the page list. */
static int check_frames(struct thaw__layout *l, char *err, size_t err_len)
{
	const struct thaw__fmt_header *h = &l->hdr;
	uint64_t next = 0;
	for (uint64_t i = 0; i < l->frame_count; i++) {
		const struct thaw__fmt_frame *f = &l->frames[i];
		if (!f->page_count || f->page_count > THAW__FRAME_PAGES_MAX ||
		    f->page_count > l->ws_page_count - next)
			return bad(err, err_len,
				   "frame %" PRIu64
				   ": page_count %u is outside 1..%u or past the %" PRIu64
				   " listed pages",
				   i, f->page_count, THAW__FRAME_PAGES_MAX, l->ws_page_count);
		size_t bound = ZSTD_compressBound((size_t)f->page_count * h->page_size);
		if (!f->stored_len || f->stored_len > bound)
			return bad(err, err_len,
				   "frame %" PRIu64 ": stored_len %u is outside 1..%zu", i,
				   f->stored_len, bound);
		if (f->offset < h->data_off || f->offset > h->file_size ||
		    f->stored_len > h->file_size - f->offset)
			return bad(err, err_len,
				   "frame %" PRIu64 ": offset %" PRIu64
				   " + stored_len %u is outside "
				   "the data section",
				   i, f->offset, f->stored_len);
		l->frame_first[i] = next;
		next += f->page_count;
	}
	if (next != l->ws_page_count)
		return bad(err, err_len,
			   "prefetch.frame_count: its frames hold %" PRIu64
			   " pages, not page_count %" PRIu64,
			   next, l->ws_page_count);
	return 0;
}

/* The prefetch section names real chunks and pages, each once, and frames that hold them. */
static int check_prefetch(struct thaw__layout *l, const uint8_t *t, char *err, size_t err_len)
{
	int r = check_prefetch_counts(l, t, err, err_len);
	if (r)
		return r;
	uint64_t n = l->hdr.chunk_count, npages = n * l->pages_per_chunk;
	uint64_t *seen = calloc((npages + 63) / 64 + 1, sizeof(*seen));
	l->frame_first = malloc((l->frame_count + 1) * sizeof(*l->frame_first));
	if (!seen || !l->frame_first) {
		free(seen);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < l->prefetch_count && !r; i++) {
		uint64_t id = l->prefetch[i];
		if (id >= n)
			r = bad(err, err_len,
				"prefetch order entry %" PRIu64 ": chunk %" PRIu64
				" is not below header.chunk_count %" PRIu64,
				i, id, n);
		else if (test_and_set(seen, id))
			r = bad(err, err_len,
				"prefetch order entry %" PRIu64 ": chunk %" PRIu64
				" is listed twice",
				i, id);
	}
	if (!r) {
		memset(seen, 0, ((npages + 63) / 64 + 1) * sizeof(*seen));
		r = check_page_list(l, l->ws_pages, l->ws_page_count, "page", false, seen, err,
				    err_len);
	}
	if (!r) {
		r = check_page_list(l, l->zero_pages, l->zero_page_count, "zero page", true, seen,
				    err, err_len);
	}
	if (!r)
		r = check_frames(l, err, err_len);
	free(seen);
	return r;
}

int thaw__layout_parse(void *tables, uint64_t tables_len, uint64_t file_size,
		       struct thaw__layout *out, char *err, size_t err_len)
{
	uint64_t want;
	int r = thaw__layout_check_header(tables, file_size, &want, err, err_len);
	if (r)
		return r;
	if (want != tables_len)
		return bad(err, err_len,
			   "header.tables_len: %" PRIu64 " but %" PRIu64 " bytes were read", want,
			   tables_len);

	struct thaw__layout l = { 0 };
	memcpy(&l.hdr, tables, sizeof(l.hdr));
	uint8_t digest[16];
	thaw__layout_digest(&l.hdr, tables, tables_len, digest);
	if (memcmp(digest, l.hdr.digest, sizeof(digest)))
		return bad(err, err_len, "header.digest: does not match header and tables");

	const uint8_t *t = tables;
	l.tables = tables;
	l.regions = (const void *)(t + l.hdr.region_off);
	l.names = (const char *)(t + l.hdr.names_off);
	l.chunks = (const void *)(t + l.hdr.chunk_off);
	l.zmask = (const void *)(t + l.hdr.zmask_off);
	l.pages_per_chunk = l.hdr.chunk_size / l.hdr.page_size;
	l.zmask_words = (l.pages_per_chunk + 63) / 64;
	r = check_regions(&l, err, err_len);
	if (r)
		return r;

	l.region_names = calloc(l.hdr.region_count ? l.hdr.region_count : 1, sizeof(char *));
	l.chunk_region = malloc((l.hdr.chunk_count ? l.hdr.chunk_count : 1) * sizeof(uint64_t));
	if (!l.region_names || !l.chunk_region) {
		r = -ENOMEM;
		goto fail;
	}
	for (uint64_t i = 0; i < l.hdr.region_count; i++) {
		l.region_names[i] = strndup(l.names + l.regions[i].name_off, l.regions[i].name_len);
		if (!l.region_names[i]) {
			r = -ENOMEM;
			goto fail;
		}
	}
	r = check_chunks(&l, err, err_len);
	if (!r && (l.hdr.flags & THAW__FMT_F_PREFETCH))
		r = check_prefetch(&l, t, err, err_len);
	if (r)
		goto fail;
	*out = l;
	return 0;
fail:
	l.tables = NULL; /* stays with the caller */
	thaw__layout_free(&l);
	return r;
}

void thaw__layout_free(struct thaw__layout *l)
{
	if (!l)
		return;
	if (l->region_names)
		for (uint64_t i = 0; i < l->hdr.region_count; i++)
			free(l->region_names[i]);
	free(l->region_names);
	free(l->chunk_region);
	free(l->frame_first);
	free(l->tables);
	memset(l, 0, sizeof(*l));
}

uint32_t thaw__layout_chunk_len(const struct thaw__layout *l, uint64_t id)
{
	const struct thaw__fmt_region *rg = &l->regions[l->chunk_region[id]];
	uint64_t off = (id - rg->first_chunk) * l->hdr.chunk_size;
	uint64_t left = rg->len - off;
	return left < l->hdr.chunk_size ? (uint32_t)left : l->hdr.chunk_size;
}

uint64_t thaw__layout_chunk_addr(const struct thaw__layout *l, uint64_t id)
{
	const struct thaw__fmt_region *rg = &l->regions[l->chunk_region[id]];
	return rg->addr + (id - rg->first_chunk) * l->hdr.chunk_size;
}

const struct thaw__fmt_chunk *thaw__layout_stored(const struct thaw__layout *l, uint64_t id)
{
	const struct thaw__fmt_chunk *c = &l->chunks[id];
	return c->kind == THAW_CHUNK_DUP ? &l->chunks[c->ref] : c;
}
