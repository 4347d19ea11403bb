/* SPDX-License-Identifier: MIT */
/* Opening a snapshot (file or URL), its getters, and synchronous chunk reads. */
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chunk_cache.h"
#include "common/abi.h"
#include "format/codec.h"

struct thaw__snap_decoder {
	struct thaw__decoder *dec;
	void *staging; /* stored bytes of a compressed chunk */
	size_t staging_len;
};

static void snap_decoder_free(struct thaw__snap_decoder *sd)
{
	if (!sd)
		return;
	thaw__decoder_free(sd->dec);
	free(sd->staging);
	free(sd);
}

static struct thaw__snap_decoder *pool_get(struct thaw_snapshot *s)
{
	struct thaw__snap_decoder *sd = NULL;
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_n)
		sd = s->pool[--s->pool_n];
	pthread_mutex_unlock(&s->pool_lock);
	if (sd)
		return sd;
	sd = calloc(1, sizeof(*sd));
	if (sd && thaw__decoder_new(&sd->dec)) {
		free(sd);
		sd = NULL;
	}
	return sd;
}

static void pool_put(struct thaw_snapshot *s, struct thaw__snap_decoder *sd)
{
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_n < THAW__DECODER_POOL) {
		s->pool[s->pool_n++] = sd;
		sd = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	snap_decoder_free(sd); /* more callers at once than the pool keeps */
}

static bool has_prefix(const char *s, const char *prefix)
{
	return !strncasecmp(s, prefix, strlen(prefix));
}

static int open_store(struct thaw_snapshot *s, const struct thaw_open_opts *opts, char *err,
		      size_t err_len)
{
	const char *uri = s->uri;
	if (has_prefix(uri, "http://") || has_prefix(uri, "https://"))
		return thaw__store_http_open(uri, opts, &s->log, &s->store, err, err_len);
	if (has_prefix(uri, "file://"))
		uri += strlen("file://");
	else if (strstr(uri, "://")) {
		snprintf(err, err_len,
			 "%s: unsupported URL scheme (use a path, file://, http:// or https://)",
			 uri);
		return -EPROTONOSUPPORT;
	}
	return thaw__store_file_open(uri, &s->log, &s->store, err, err_len);
}

static int load_layout(struct thaw_snapshot *s, char *err, size_t err_len)
{
	uint8_t hdr[THAW__FMT_HEADER_SIZE];
	uint64_t size = s->store->size;
	uint64_t tables_len;
	int r;
	if (size < sizeof(hdr))
		return thaw__layout_check_header(hdr, size, &tables_len, err, err_len);
	r = s->store->ops->pread(s->store, hdr, sizeof(hdr), 0);
	if (r) {
		snprintf(err, err_len, "reading the header: %s", thaw_strerror(r));
		return r;
	}
	r = thaw__layout_check_header(hdr, size, &tables_len, err, err_len);
	if (r)
		return r;
	void *tables = malloc(tables_len);
	if (!tables)
		return -ENOMEM;
	memcpy(tables, hdr, sizeof(hdr));
	if (tables_len > sizeof(hdr)) {
		r = s->store->ops->pread(s->store, (uint8_t *)tables + sizeof(hdr),
					 tables_len - sizeof(hdr), sizeof(hdr));
		if (r) {
			free(tables);
			snprintf(err, err_len, "reading %" PRIu64 " bytes of tables: %s",
				 tables_len, thaw_strerror(r));
			return r;
		}
	}
	r = thaw__layout_parse(tables, tables_len, size, &s->layout, err, err_len);
	if (r)
		free(tables);
	return r;
}

int thaw_snapshot_open(const char *uri, const struct thaw_open_opts *opts,
		       struct thaw_snapshot **out)
{
	struct thaw_open_opts o;
	if (THAW__OPTS_READ(&o, opts))
		return -EINVAL;
	struct thaw__logger log;
	thaw__logger_init(&log, o.log_fn, o.log_ctx);
	if (!uri || !out)
		return thaw__fail(&log, o.err_buf, o.err_buf_size, -EINVAL,
				  "thaw_snapshot_open: no URI");

	struct thaw_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->log = log;
	pthread_mutex_init(&s->pool_lock, NULL);
	s->uri = strdup(uri);
	char err[768] = "";
	int r = -ENOMEM;
	if (!s->uri)
		goto fail;
	r = open_store(s, &o, err, sizeof(err));
	if (r)
		goto fail;
	r = load_layout(s, err, sizeof(err));
	if (r)
		goto fail;
	for (uint64_t i = 0; i < s->layout.hdr.chunk_count; i++)
		s->chunks_by_kind[s->layout.chunks[i].kind]++;
	thaw__debug(&s->log,
		    "%s: %" PRIu64 " regions, %" PRIu64 " chunks of %u, %" PRIu64 " tables bytes",
		    uri, s->layout.hdr.region_count, s->layout.hdr.chunk_count,
		    s->layout.hdr.chunk_size, s->layout.hdr.tables_len);
	*out = s;
	return 0;
fail:
	if (!err[0])
		snprintf(err, sizeof(err), "%s", thaw_strerror(r));
	thaw__fail(&log, o.err_buf, o.err_buf_size, r, "%s: %s", uri, err);
	thaw_snapshot_close(s);
	return r;
}

void thaw_snapshot_close(struct thaw_snapshot *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->pool_n; i++)
		snap_decoder_free(s->pool[i]);
	pthread_mutex_destroy(&s->pool_lock);
	thaw__chunk_cache_free(s->cache);
	thaw__layout_free(&s->layout);
	thaw__store_close(s->store);
	free(s->uri);
	free(s);
}

int thaw_snapshot_get_info(const struct thaw_snapshot *s, struct thaw_snapshot_info *out)
{
	if (!s || !out)
		return -EINVAL;
	const struct thaw__fmt_header *h = &s->layout.hdr;
	struct thaw_snapshot_info full = { 0 }, *info = &full;
	info->version = h->version;
	info->page_size = h->page_size;
	info->chunk_size = h->chunk_size;
	info->region_count = h->region_count;
	info->chunk_count = h->chunk_count;
	memcpy(info->chunks_by_kind, s->chunks_by_kind, sizeof(info->chunks_by_kind));
	info->raw_bytes = h->raw_bytes;
	info->stored_bytes = h->data_len;
	info->file_size = h->file_size;
	info->tables_len = h->tables_len;
	info->prefetch_count = s->layout.prefetch_count;
	info->ws_pages = s->layout.ws_page_count;
	info->ws_frames = s->layout.frame_count;
	info->ws_zero_pages = s->layout.zero_page_count;
	info->hashes = !(h->flags & THAW__FMT_F_NO_HASH);
	for (int i = 0; i < 16; i++)
		snprintf(info->digest + 2 * i, 3, "%02x", h->digest[i]);
	return THAW__OUT_WRITE(out, info);
}

size_t thaw_snapshot_region_count(const struct thaw_snapshot *s)
{
	return s ? (size_t)s->layout.hdr.region_count : 0;
}

int thaw_snapshot_region(const struct thaw_snapshot *s, size_t i, struct thaw_region_info *out)
{
	if (!s || !out || i >= s->layout.hdr.region_count)
		return -EINVAL;
	const struct thaw__fmt_region *rg = &s->layout.regions[i];
	struct thaw_region_info full = { 0 }, *info = &full;
	info->addr = rg->addr;
	info->len = rg->len;
	info->prot = (int)rg->prot;
	info->flags = rg->flags;
	info->name = s->layout.region_names[i];
	info->first_chunk = rg->first_chunk;
	info->chunk_count = (rg->len - 1) / s->layout.hdr.chunk_size + 1;
	return THAW__OUT_WRITE(out, info);
}

int thaw_snapshot_chunk(const struct thaw_snapshot *s, uint64_t i, struct thaw_chunk_info *out)
{
	if (!s || !out || i >= s->layout.hdr.chunk_count)
		return -EINVAL;
	const struct thaw__fmt_chunk *c = &s->layout.chunks[i];
	struct thaw_chunk_info full = { 0 }, *info = &full;
	info->region = s->layout.chunk_region[i];
	info->addr = thaw__layout_chunk_addr(&s->layout, i);
	info->len = thaw__layout_chunk_len(&s->layout, i);
	info->kind = (enum thaw_chunk_kind)c->kind;
	info->stored_off = c->offset;
	info->stored_len = c->stored_len;
	info->hash = c->hash;
	return THAW__OUT_WRITE(out, info);
}

static bool page_zero(const uint8_t *p, size_t len)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v; /* the caller's buffer need not be aligned */
		memcpy(&v, p + i, 8);
		acc |= v;
	}
	return !acc;
}

/*
 * Bit p of chunk id's zero mask is set exactly when page p of buf is zero.
 * Without hashes (a live export) the mask comes from page tables, not
 * content: a set bit must still be a zero page, but a written page may
 * hold zeros too.
 */
static bool zmask_agrees(const struct thaw__layout *l, uint64_t id, const uint8_t *buf,
			 uint32_t len)
{
	const uint64_t *mask = l->zmask + id * l->zmask_words;
	uint32_t ps = l->hdr.page_size;
	bool exact = !(l->hdr.flags & THAW__FMT_F_NO_HASH);
	for (uint32_t p = 0; p < len / ps; p++) {
		bool masked = mask[p / 64] >> (p % 64) & 1;
		if ((masked || exact) && masked != page_zero(buf + (size_t)p * ps, ps))
			return false;
	}
	return true;
}

/* One read and decode of chunk i (len bytes) into buf: 0 or -errno. */
static int read_decode(struct thaw_snapshot *s, uint64_t i, void *buf, uint32_t len)
{
	const struct thaw__fmt_chunk *c = thaw__layout_stored(&s->layout, i);
	const uint64_t *hash = thaw__layout_hash(&s->layout, c);
	int r;
	switch (c->kind) {
	case THAW_CHUNK_ZERO:
		r = thaw__decode_chunk(NULL, THAW_CHUNK_ZERO, NULL, 0, buf, len, hash);
		break;
	case THAW_CHUNK_RAW:
		/* Stored bytes are the chunk: read them in place, then hash. */
		r = s->store->ops->pread(s->store, buf, c->stored_len, c->offset);
		if (!r)
			r = thaw__decode_chunk(NULL, THAW_CHUNK_RAW, buf, c->stored_len, buf, len,
					       hash);
		break;
	default: {
		struct thaw__snap_decoder *sd = pool_get(s);
		if (!sd)
			return -ENOMEM;
		if (sd->staging_len < c->stored_len) {
			void *p = realloc(sd->staging, c->stored_len);
			if (!p) {
				pool_put(s, sd);
				return -ENOMEM;
			}
			sd->staging = p;
			sd->staging_len = c->stored_len;
		}
		r = s->store->ops->pread(s->store, sd->staging, c->stored_len, c->offset);
		if (!r)
			r = thaw__decode_chunk(sd->dec, c->kind, sd->staging, c->stored_len, buf,
					       len, hash);
		pool_put(s, sd);
		break;
	}
	}
	return r;
}

ssize_t thaw_snapshot_read_chunk(struct thaw_snapshot *s, uint64_t i, void *buf, size_t buf_len)
{
	if (!s || !buf || i >= s->layout.hdr.chunk_count)
		return -EINVAL;
	uint32_t len = thaw__layout_chunk_len(&s->layout, i);
	if (buf_len < len)
		return -EINVAL;
	/* Bytes that fail their check may have been damaged on the way (an HTTP
	 * store): read again within the same budget a restore's fetches get. */
	uint32_t refetch = s->store->max_refetch ? s->store->max_refetch : 2;
	int r;
	for (uint32_t attempt = 0;; attempt++) {
		r = read_decode(s, i, buf, len);
		if ((r != -THAW_E_HASH && r != -THAW_E_CODEC) || attempt >= refetch)
			break;
		thaw__warn(&s->log, "%s: chunk %" PRIu64 ": %s, reading it again", s->uri, i,
			   thaw_strerror(r));
	}
	if (!r && !zmask_agrees(&s->layout, i, buf, len)) {
		/* The hash covers the bytes, not the mask: a restore that trusts
		 * the mask for zero pages would diverge from them. */
		thaw__err(&s->log, "%s: chunk %" PRIu64 ": its zero mask disagrees with its bytes",
			  s->uri, i);
		return -THAW_E_BAD_SNAPSHOT;
	}
	if (r == -THAW_E_HASH || r == -THAW_E_CODEC)
		thaw__err(&s->log, "%s: chunk %" PRIu64 " (at 0x%" PRIx64 "): %s", s->uri, i,
			  thaw__layout_chunk_addr(&s->layout, i), thaw_strerror(r));
	return r ? r : (ssize_t)len;
}

int thaw_snapshot_set_cache(struct thaw_snapshot *snap, uint64_t bytes)
{
	if (!snap)
		return -EINVAL;
	if (snap->cache)
		return -EBUSY;
	if (!bytes)
		return 0;
	return thaw__chunk_cache_new(bytes, snap->layout.hdr.chunk_count, &snap->cache);
}

int thaw_snapshot_cache_stats(const struct thaw_snapshot *snap, struct thaw_cache_stats *out)
{
	if (!snap || !out)
		return -EINVAL;
	struct thaw_cache_stats st = { 0 };
	if (snap->cache)
		thaw__chunk_cache_stats(snap->cache, &st);
	return THAW__OUT_WRITE(out, &st);
}
