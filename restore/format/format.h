/* SPDX-License-Identifier: MIT */
/*
 * restore/format/: what a snapshot file is, with no I/O of its own: the v1
 * layout and its validating parser (format.c), the chunk codec (codec.c),
 * first-touch trace files (trace.c). Uses only common/ and uffd/base.h;
 * the stores, the snapshot and the writers build on it.
 *
 * thaw snapshot format v1: on-disk layout and its validating parser.
 *
 * Layout (all integers little-endian, every section 8-byte aligned):
 *
 *   offset 0          struct thaw__fmt_header (THAW__FMT_HEADER_SIZE bytes)
 *   region_off        region_count × struct thaw__fmt_region
 *   names_off         names_len bytes: region names, not NUL-terminated
 *   chunk_off         chunk_count × struct thaw__fmt_chunk
 *   zmask_off         chunk_count × zmask_words u64: bit p set = page p of the chunk is zero
 *   prefetch_off      (flag PREFETCH) prefetch_len bytes, the prefetch section:
 *                       struct thaw__fmt_prefetch (the four counts below)
 *                       chunk_count u64 chunk ids: the order a recorded run first
 *                         touched them; each id once (ZERO chunks too: a restore
 *                         installs them ahead of their touch as it does the others)
 *                       page_count u64 working-set pages, in first-touch order, as
 *                         global page numbers (chunk id * pages_per_chunk + page);
 *                         each once, none in a ZERO chunk or zero-mask page
 *                       zero_count u64 zero pages the run touched (global page
 *                         numbers, first-touch order, each once): installed as
 *                         zero pages up front, nothing to read
 *                       frame_count struct thaw__fmt_frame: the pages grouped in list
 *                         order, each frame one zstd frame of its pages' raw
 *                         bytes concatenated, stored in the data section
 *   tables_len        = end of the last table = data_off
 *   data_off          data_len bytes of chunk data
 *   file_size         = data_off + data_len
 *
 * The digest is xxh3-128 over the header (with its digest field zeroed)
 * followed by bytes [header_size, tables_len). A reader reads tables_len
 * bytes once and needs nothing else to serve faults.
 *
 * Chunks: region r covers chunks [first_chunk, first_chunk + ceil(len /
 * chunk_size)), in address order; regions are stored in ascending address
 * order and their chunk ranges follow each other. A ZERO chunk stores
 * nothing (offset 0, length 0). A DUP chunk's `ref` names an earlier
 * non-ZERO, non-DUP chunk whose stored bytes it shares; its offset and
 * length repeat the target's. The hash is xxh3-64 of the raw bytes.
 *
 * Flags: bit 0 (PREFETCH) says the prefetch section is present; without it
 * prefetch_off and prefetch_len are 0. `thaw optimize` writes the frames
 * first in the data section, then the stored bytes of the listed chunks in
 * that order, so the working set is one sequential range; a reader does
 * not rely on that layout. A frame repeats bytes its chunks hold: the
 * chunks stay the truth, a frame is only a faster way to the same pages.
 */
#ifndef THAW_RESTORE_FORMAT_H
#define THAW_RESTORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thaw.h"

#define THAW__FMT_MAGIC	      "THAWSNAP"
#define THAW__FMT_VERSION     1
#define THAW__FMT_HEADER_SIZE 160
#define THAW__FMT_CODEC_ZSTD  1
#define THAW__CHUNK_MIN	      4096u
#define THAW__CHUNK_MAX	      (2u << 20)
#define THAW__CHUNK_DEFAULT   (64u << 10)
#define THAW__NAME_MAX	      4096
#define THAW__FRAME_PAGES_MAX 64 /* pages in one working-set frame */

/* Header flags. */
#define THAW__FMT_F_PREFETCH (1u << 0) /* a prefetch-order table follows the zero masks */
/* Chunk hashes are not recorded (all zero): a live export computes its view
 * from memory and cannot afford to hash it all before serving. Readers skip
 * the hash check; the transport and the paused source are trusted instead. */
#define THAW__FMT_F_NO_HASH (1u << 1)
#define THAW__FMT_F_KNOWN   (THAW__FMT_F_PREFETCH | THAW__FMT_F_NO_HASH)

struct thaw__fmt_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint32_t page_size;
	uint32_t chunk_size;
	uint32_t codec;
	uint32_t flags; /* THAW__FMT_F_*; unknown bits are refused */
	uint64_t region_count;
	uint64_t region_off;
	uint64_t names_off;
	uint64_t names_len;
	uint64_t chunk_count;
	uint64_t chunk_off;
	uint64_t zmask_off;
	uint64_t tables_len;
	uint64_t data_off;
	uint64_t data_len;
	uint64_t file_size;
	uint64_t raw_bytes; /* sum of region lengths */
	/* The prefetch section: 0 and 0 without THAW__FMT_F_PREFETCH. */
	uint64_t prefetch_off;
	uint64_t prefetch_len; /* bytes */
	uint8_t digest[16];
};

struct thaw__fmt_region {
	uint64_t addr;
	uint64_t len;
	uint32_t prot;
	uint32_t flags;
	uint64_t first_chunk;
	uint32_t name_off; /* into the names table */
	uint32_t name_len;
};

struct thaw__fmt_chunk {
	uint64_t offset; /* absolute file offset of the stored bytes */
	uint32_t stored_len;
	uint8_t kind; /* enum thaw_chunk_kind */
	uint8_t pad[3];
	uint64_t hash; /* xxh3-64 of the raw bytes */
	uint32_t ref;  /* DUP: target chunk id; otherwise 0 */
	uint32_t pad2;
};

/* Start of the prefetch section: the counts of the arrays that follow it. */
struct thaw__fmt_prefetch {
	uint64_t chunk_count; /* 1..header.chunk_count */
	uint64_t page_count;  /* working-set pages; 0 = a chunk order only */
	uint64_t zero_count;  /* touched zero pages */
	uint64_t frame_count; /* 0 exactly when page_count is 0 */
};

struct thaw__fmt_frame {
	uint64_t offset; /* absolute file offset of the zstd frame */
	uint32_t stored_len;
	uint32_t page_count; /* 1..THAW__FRAME_PAGES_MAX: the next pages of the page list */
	uint64_t hash;	     /* xxh3-64 of the raw bytes (page_count pages) */
};

_Static_assert(sizeof(struct thaw__fmt_header) == THAW__FMT_HEADER_SIZE, "header size");
_Static_assert(sizeof(struct thaw__fmt_region) == 40, "region entry size");
_Static_assert(sizeof(struct thaw__fmt_chunk) == 32, "chunk entry size");
_Static_assert(sizeof(struct thaw__fmt_prefetch) == 32, "prefetch section header size");
_Static_assert(sizeof(struct thaw__fmt_frame) == 24, "frame entry size");

/* A validated snapshot layout, parsed from the first tables_len bytes. */
struct thaw__layout {
	struct thaw__fmt_header hdr;
	void *tables; /* owned: the tables_len bytes read from offset 0 */
	const struct thaw__fmt_region *regions;
	const char *names;
	const struct thaw__fmt_chunk *chunks;
	const uint64_t *zmask;
	/* The prefetch section, all NULL / 0 without the flag. */
	const uint64_t *prefetch; /* prefetch_count chunk ids */
	uint64_t prefetch_count;
	const uint64_t *ws_pages; /* ws_page_count global page numbers */
	uint64_t ws_page_count;
	const uint64_t *zero_pages; /* zero_page_count global page numbers */
	uint64_t zero_page_count;
	const struct thaw__fmt_frame *frames;
	uint64_t frame_count;
	uint64_t *frame_first;	  /* owned: index in ws_pages of each frame's first page */
	uint32_t zmask_words;	  /* u64 words of zero mask per chunk */
	uint32_t pages_per_chunk; /* chunk_size / page_size */
	char **region_names;	  /* owned, NUL-terminated copies */
	uint64_t *chunk_region;	  /* owned: region index of each chunk */
};

/*
 * Validate the fixed header in buf (at least THAW__FMT_HEADER_SIZE bytes)
 * against a file of file_size bytes; on success *tables_len tells how many
 * bytes from offset 0 the full parse needs. Errors: -THAW_E_BAD_SNAPSHOT or
 * -THAW_E_VERSION with a message naming the field written to err.
 */
int thaw__layout_check_header(const void *buf, uint64_t file_size, uint64_t *tables_len, char *err,
			      size_t err_len);

/*
 * Parse and validate everything in tables (tables_len bytes from offset 0,
 * ownership passes to *out on success, stays with the caller on failure).
 */
int thaw__layout_parse(void *tables, uint64_t tables_len, uint64_t file_size,
		       struct thaw__layout *out, char *err, size_t err_len);
void thaw__layout_free(struct thaw__layout *l);

/*
 * The header digest: xxh3-128 (canonical byte order) of hdr with its digest
 * field taken as zero, followed by tables[header_size, tables_len). tables
 * holds the whole tables_len bytes from offset 0 (its header copy is ignored).
 */
void thaw__layout_digest(const struct thaw__fmt_header *hdr, const void *tables,
			 uint64_t tables_len, uint8_t digest[16]);

/* Raw length of chunk id (short for the last chunk of a region). */
uint32_t thaw__layout_chunk_len(const struct thaw__layout *l, uint64_t id);
/* Source address of chunk id's first byte. */
uint64_t thaw__layout_chunk_addr(const struct thaw__layout *l, uint64_t id);
/* The hash chunk c's bytes must have, or NULL when the snapshot records none. */
static inline const uint64_t *thaw__layout_hash(const struct thaw__layout *l,
						const struct thaw__fmt_chunk *c)
{
	return l->hdr.flags & THAW__FMT_F_NO_HASH ? NULL : &c->hash;
}
/* The chunk whose stored bytes back id: id itself, or its DUP target. */
const struct thaw__fmt_chunk *thaw__layout_stored(const struct thaw__layout *l, uint64_t id);
/* Is global page g (chunk id * pages_per_chunk + page) a zero page? g must be in range. */
static inline bool thaw__layout_page_zero(const struct thaw__layout *l, uint64_t g)
{
	uint64_t id = g / l->pages_per_chunk;
	uint32_t p = (uint32_t)(g % l->pages_per_chunk);
	return l->chunks[id].kind == THAW_CHUNK_ZERO ||
	       (l->zmask[id * l->zmask_words + p / 64] >> (p % 64) & 1);
}

#endif
