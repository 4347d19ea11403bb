/* SPDX-License-Identifier: MIT */
/*
 * thaw_optimize: rewrite a snapshot so a recorded working set is one
 * sequential range at the front of the data, and name it in a prefetch
 * section. With page records, the touched pages themselves come first,
 * packed into frames (ws_frames.c), so a replay decodes only those pages;
 * then the touched chunks. Chunks' stored bytes are copied as they are
 * (never recompressed), so content, hashes and addresses stay what they
 * were; only offsets, the prefetch section and therefore the digest change.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot.h"
#include "format/trace.h"
#include "ws_frames.h"
#include "common/abi.h"

/* Largest single copy: runs of stored bytes that stay adjacent are moved in one go. */
#define COPY_MAX (8u << 20)

#define UNPLACED UINT64_MAX

/* Where each chunk's stored bytes go: the ordered set first, then the rest by address. */
struct placement {
	uint64_t *new_off; /* per chunk id; UNPLACED until its bytes (or its DUP target's) land */
	uint64_t *seq;	   /* ids whose bytes are stored, in their new file order */
	uint64_t nseq;
	uint64_t cursor;      /* next free file offset */
	uint64_t ordered_end; /* where the ordered set's bytes end */
};

static void place(struct placement *p, const struct thaw__layout *l, uint64_t id)
{
	const struct thaw__fmt_chunk *st = thaw__layout_stored(l, id);
	uint64_t sid = (uint64_t)(st - l->chunks);
	if (l->chunks[id].kind == THAW_CHUNK_ZERO || p->new_off[sid] != UNPLACED)
		return;
	p->new_off[sid] = p->cursor;
	p->cursor += st->stored_len;
	p->seq[p->nseq++] = sid;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Move the stored bytes in placement order, one read per run adjacent in the old file.
 * Progress counts data bytes written, the frames (done) included, out of total.
 */
static int copy_data(struct thaw_snapshot *snap, const struct placement *p, int fd,
		     const struct thaw_optimize_opts *o, uint64_t done, uint64_t total)
{
	const struct thaw__layout *l = &snap->layout;
	uint8_t *buf = malloc(COPY_MAX > l->hdr.chunk_size * 2 ? COPY_MAX : l->hdr.chunk_size * 2);
	int r = buf ? 0 : -ENOMEM;
	for (uint64_t i = 0; !r && i < p->nseq;) {
		const struct thaw__fmt_chunk *a = &l->chunks[p->seq[i]];
		uint64_t len = a->stored_len, j = i + 1;
		while (j < p->nseq) {
			const struct thaw__fmt_chunk *c = &l->chunks[p->seq[j]];
			if (c->offset != a->offset + len || len + c->stored_len > COPY_MAX)
				break;
			len += c->stored_len;
			j++;
		}
		r = snap->store->ops->pread(snap->store, buf, len, a->offset);
		if (!r)
			r = write_all(fd, buf, len, p->new_off[p->seq[i]]);
		done += len;
		if (!r && o->progress)
			o->progress(done, total, o->progress_ctx);
		i = j;
	}
	free(buf);
	return r;
}

/* Write header+tables then data to a temporary file beside path, and rename it into place. */
static int write_snapshot(struct thaw_snapshot *snap, const void *tables, uint64_t tables_len,
			  const struct thaw__ws_frames *fr, const struct placement *p,
			  const char *path, const struct thaw_optimize_opts *o)
{
	char *err = o->err_buf;
	size_t err_len = o->err_buf_size;
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return thaw__fail(&snap->log, err, err_len, -ENAMETOOLONG, "%s: name too long",
				  path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return thaw__fail(&snap->log, err, err_len, -errno, "%s: %s", tmp, strerror(errno));
	int r = write_all(fd, tables, tables_len, 0);
	if (!r)
		r = write_all(fd, fr->data, fr->len, tables_len);
	uint64_t total = fr->len;
	for (uint64_t i = 0; i < p->nseq; i++)
		total += snap->layout.chunks[p->seq[i]].stored_len;
	if (!r && o->progress)
		o->progress(fr->len, total, o->progress_ctx);
	if (!r)
		r = copy_data(snap, p, fd, o, fr->len, total);
	if (!r && (fchmod(fd, 0644) || fsync(fd)))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r) {
		unlink(tmp);
		return thaw__fail(&snap->log, err, err_len, r, "writing %s: %s", path,
				  thaw_strerror(r));
	}
	return 0;
}

/* The new tables: the old ones up to the zero masks, the prefetch section, new offsets. */
static int build_tables(const struct thaw__layout *l, const struct thaw__trace_order *o,
			struct thaw__ws_frames *fr, struct placement *p, uint8_t **out,
			struct thaw__fmt_header *h)
{
	uint64_t zm_end =
		l->hdr.zmask_off + l->hdr.chunk_count * (uint64_t)l->zmask_words * sizeof(uint64_t);
	struct thaw__fmt_prefetch sec = { o->nchunks, o->npages, o->nzeros, fr->count };
	uint64_t sec_len = sizeof(sec) + (o->nchunks + o->npages + o->nzeros) * sizeof(uint64_t) +
			   fr->count * sizeof(struct thaw__fmt_frame);
	uint64_t len = zm_end + sec_len;
	uint8_t *t = malloc(len);
	if (!t)
		return -ENOMEM;
	memcpy(t, l->tables, zm_end);
	uint8_t *q = t + zm_end;
	memcpy(q, &sec, sizeof(sec));
	q += sizeof(sec);
	memcpy(q, o->chunks, o->nchunks * sizeof(uint64_t));
	q += o->nchunks * sizeof(uint64_t);
	memcpy(q, o->pages, o->npages * sizeof(uint64_t));
	q += o->npages * sizeof(uint64_t);
	memcpy(q, o->zeros, o->nzeros * sizeof(uint64_t));
	q += o->nzeros * sizeof(uint64_t);
	/* The frames go first in the data, right after the tables. */
	for (uint64_t k = 0; k < fr->count; k++)
		fr->frames[k].offset += len;
	memcpy(q, fr->frames, fr->count * sizeof(struct thaw__fmt_frame));
	p->cursor = len + fr->len;
	for (uint64_t i = 0; i < o->nchunks; i++)
		place(p, l, o->chunks[i]);
	p->ordered_end = p->cursor;
	for (uint64_t id = 0; id < l->hdr.chunk_count; id++)
		place(p, l, id);
	struct thaw__fmt_chunk *c = (struct thaw__fmt_chunk *)(t + l->hdr.chunk_off);
	for (uint64_t id = 0; id < l->hdr.chunk_count; id++)
		if (c[id].kind != THAW_CHUNK_ZERO)
			c[id].offset = p->new_off[thaw__layout_stored(l, id) - l->chunks];
	*h = l->hdr;
	h->flags |= THAW__FMT_F_PREFETCH;
	h->prefetch_off = zm_end;
	h->prefetch_len = sec_len;
	h->tables_len = h->data_off = len;
	h->data_len = p->cursor - len;
	h->file_size = p->cursor;
	memcpy(t, h, sizeof(*h));
	thaw__layout_digest(h, t, len, h->digest);
	memcpy(t, h, sizeof(*h));
	*out = t;
	return 0;
}

int thaw_optimize(struct thaw_snapshot *snap, const struct thaw_trace *const *traces,
		  size_t ntraces, const char *out_path, const struct thaw_optimize_opts *opts,
		  struct thaw_optimize_result *res)
{
	struct thaw_optimize_opts o;
	struct thaw_optimize_result full = { 0 };
	/* The result's sz is checked before any work is done. */
	if (THAW__OPTS_READ(&o, opts) || (res && THAW__OUT_WRITE(res, &full)))
		return -EINVAL;
	if (!snap || !out_path || (ntraces && !traces))
		return -EINVAL;
	const struct thaw__layout *l = &snap->layout;
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	thaw_snapshot_get_info(snap, &info);
	char why[512] = "";
	struct thaw__trace_order ord;
	int r = thaw__trace_order(traces, o.trace_names, ntraces, l, info.digest, &ord, why,
				  sizeof(why));
	if (r)
		return thaw__fail(&snap->log, o.err_buf, o.err_buf_size, r, "%s",
				  why[0] ? why : thaw_strerror(r));
	if (!ord.nchunks) {
		thaw__trace_order_free(&ord);
		return thaw__fail(&snap->log, o.err_buf, o.err_buf_size, -EINVAL,
				  "the traces touch no chunk of the snapshot: nothing to order");
	}
	struct thaw__ws_frames fr = { 0 };
	r = thaw__ws_frames_build(snap, ord.pages, ord.npages, &fr);
	if (r) {
		thaw__trace_order_free(&ord);
		return thaw__fail(&snap->log, o.err_buf, o.err_buf_size, r,
				  "packing the working-set pages: %s", thaw_strerror(r));
	}
	struct placement p = { .new_off = malloc(l->hdr.chunk_count * sizeof(uint64_t)),
			       .seq = malloc(l->hdr.chunk_count * sizeof(uint64_t)) };
	uint8_t *tables = NULL;
	struct thaw__fmt_header h;
	r = p.new_off && p.seq ? 0 : -ENOMEM;
	for (uint64_t id = 0; !r && id < l->hdr.chunk_count; id++)
		p.new_off[id] = UNPLACED;
	if (!r)
		r = build_tables(l, &ord, &fr, &p, &tables, &h);
	if (!r)
		r = write_snapshot(snap, tables, h.tables_len, &fr, &p, out_path, &o);
	else
		thaw__fail(&snap->log, o.err_buf, o.err_buf_size, r, "%s", thaw_strerror(r));
	if (!r && res) {
		full.chunks_ordered = ord.nchunks;
		full.pages_ignored = ord.ignored;
		full.stored_bytes = p.ordered_end - h.data_off;
		full.ws_pages = ord.npages;
		full.ws_frames = fr.count;
		full.ws_zero_pages = ord.nzeros;
		full.frame_bytes = fr.len;
		for (int i = 0; i < 16; i++)
			snprintf(full.digest + 2 * i, 3, "%02x", h.digest[i]);
		THAW__OUT_WRITE(res, &full);
	}
	free(tables);
	thaw__ws_frames_free(&fr);
	thaw__trace_order_free(&ord);
	free(p.new_off);
	free(p.seq);
	return r;
}
