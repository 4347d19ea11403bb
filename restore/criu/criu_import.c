/* SPDX-License-Identifier: MIT */
/*
 * thaw_criu_import: a CRIU image dir's lazy pages into one snapshot, and
 * optionally a copy of the dir without them (--strip).
 *
 * What is lazy is what criu restore --lazy-pages leaves to the daemon:
 * pagemap entries flagged PE_LAZY. In each VMA the restorer registers
 * (every private anonymous VMA CRIU calls lazy-able, criu/include/vma.h)
 * the span from its first to its last lazy page becomes one region, holes
 * recorded as zero; faults elsewhere in the VMA are on memory never dumped
 * and get zero pages (any restore's answer outside its mappings). Whole VMAs would not do:
 * reservations of terabytes (sanitizer shadows, language runtimes) would
 * make tables of gigabytes and be filled with zero pages in the background.
 * Tasks share addresses, and a snapshot's regions may not overlap, so
 * region addresses carry the task's pstree index in bits 48-63.
 */
#include "criu/criu_priv.h"
#include "common/abi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

struct pm_entry {
	uint64_t vaddr, nr_pages;
	uint32_t flags;
	uint64_t pages_off; /* byte offset in the pages image (present entries) */
	PagemapEntry *pe;
};

struct task {
	uint32_t pid;
	MmEntry *mm;
	struct thaw__criu_img pm_img;
	uint32_t pages_id;
	const uint8_t *head_bytes; /* the pagemap head entry as stored */
	size_t head_len;
	struct pm_entry *pm;
	size_t npm;
	int pages_fd;
	uint64_t pages_size;
};

struct import {
	int dirfd;
	const struct thaw__criu_err *e;
	uint64_t page;
	struct task *tasks;
	size_t ntasks;
	struct thaw_criu_import_result res;
};

bool thaw__criu_vma_lazy(uint32_t flags, uint32_t status)
{
	/* What CRIU's vma_entry_can_be_lazy() says, so that our regions cover exactly
	 * what the restorer registers. */
	return (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) && !(flags & MAP_LOCKED) &&
	       !(flags & MAP_HUGETLB) &&
	       !(status & (CRIU_VMA_AREA_VDSO | CRIU_VMA_AREA_VVAR | CRIU_VMA_AREA_VSYSCALL));
}

static int read_inventory(struct import *im)
{
	struct thaw__criu_img img;
	int err =
		thaw__criu_img_load(im->dirfd, "inventory.img", CRIU_INVENTORY_MAGIC, &img, im->e);
	if (err)
		return err;
	const uint8_t *p;
	size_t n;
	err = thaw__criu_img_next(&img, &p, &n, im->e);
	if (err <= 0) {
		thaw__criu_img_free(&img);
		return err ? err : thaw__criu_fail(im->e, -EINVAL, "inventory.img: no entry");
	}
	InventoryEntry *inv = inventory_entry__unpack(NULL, n, p);
	thaw__criu_img_free(&img);
	if (!inv)
		return thaw__criu_fail(im->e, -EINVAL,
				       "inventory.img: entry 0 is not an inventory_entry");
	/* CRIU 4.x writes version 2 (CRTOOLS_IMAGES_V1_1); 1 is the older layout it still reads. */
	uint32_t v = inv->img_version;
	inventory_entry__free_unpacked(inv, NULL);
	if (v != 1 && v != 2)
		return thaw__criu_fail(im->e, -EINVAL,
				       "inventory.img: img_version %u is not one thaw knows (1, 2)",
				       v);
	return 0;
}

static int read_pstree(struct import *im)
{
	struct thaw__criu_img img;
	int err = thaw__criu_img_load(im->dirfd, "pstree.img", CRIU_PSTREE_MAGIC, &img, im->e);
	if (err)
		return err;
	const uint8_t *p;
	size_t n;
	while ((err = thaw__criu_img_next(&img, &p, &n, im->e)) > 0) {
		PstreeEntry *pe = pstree_entry__unpack(NULL, n, p);
		if (!pe) {
			err = thaw__criu_fail(im->e, -EINVAL,
					      "pstree.img: entry %u is not a pstree_entry",
					      img.entry - 1);
			break;
		}
		struct task *t = realloc(im->tasks, (im->ntasks + 1) * sizeof(*t));
		if (!t) {
			pstree_entry__free_unpacked(pe, NULL);
			err = -ENOMEM;
			break;
		}
		im->tasks = t;
		t = &im->tasks[im->ntasks++];
		memset(t, 0, sizeof(*t));
		t->pages_fd = -1;
		t->pid = pe->pid;
		pstree_entry__free_unpacked(pe, NULL);
		if (!t->pid) {
			err = thaw__criu_fail(im->e, -EINVAL, "pstree.img: entry %zu: pid 0",
					      im->ntasks - 1);
			break;
		}
	}
	thaw__criu_img_free(&img);
	if (!err && !im->ntasks)
		err = thaw__criu_fail(im->e, -EINVAL, "pstree.img: no tasks");
	if (!err && im->ntasks > 0xffff)
		err = thaw__criu_fail(im->e, -E2BIG, "pstree.img: %zu tasks, at most 65535",
				      im->ntasks);
	return err < 0 ? err : 0;
}

static int read_mm(struct import *im, struct task *t)
{
	char name[64];
	snprintf(name, sizeof(name), "mm-%u.img", t->pid);
	struct thaw__criu_img img;
	int err = thaw__criu_img_load(im->dirfd, name, CRIU_MM_MAGIC, &img, im->e);
	if (err)
		return err;
	const uint8_t *p;
	size_t n;
	err = thaw__criu_img_next(&img, &p, &n, im->e);
	if (err > 0) {
		t->mm = mm_entry__unpack(NULL, n, p);
		err = t->mm ? 0
			    : thaw__criu_fail(im->e, -EINVAL, "%s: entry 0 is not an mm_entry",
					      name);
	} else if (!err) {
		err = thaw__criu_fail(im->e, -EINVAL, "%s: no entry", name);
	}
	thaw__criu_img_free(&img);
	if (err)
		return err;
	uint64_t prev_end = 0;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		if (v->start >= v->end || (v->start | v->end) % im->page)
			return thaw__criu_fail(im->e, -EINVAL,
					       "%s: vmas[%zu]: start 0x%" PRIx64 " end 0x%" PRIx64
					       " is not a page-aligned range",
					       name, i, v->start, v->end);
		if (v->start < prev_end)
			return thaw__criu_fail(im->e, -EINVAL,
					       "%s: vmas[%zu]: start 0x%" PRIx64
					       " is below the previous vma's end",
					       name, i, v->start);
		prev_end = v->end;
		if (thaw__criu_vma_lazy(v->flags, v->status) && v->end > THAW__CRIU_ADDR_MASK + 1)
			return thaw__criu_fail(im->e, -EINVAL,
					       "%s: vmas[%zu]: end 0x%" PRIx64
					       " above 48 bits is not supported",
					       name, i, v->end);
	}
	return 0;
}

/* Entry idx of name (p, n) unpacked and appended to t->pm, which owns it from then on. */
static int pm_append(struct import *im, struct task *t, const char *name, unsigned idx,
		     const uint8_t *p, size_t n, struct pm_entry **out)
{
	PagemapEntry *pe = pagemap_entry__unpack(NULL, n, p);
	if (!pe)
		return thaw__criu_fail(im->e, -EINVAL, "%s: entry %u is not a pagemap_entry", name,
				       idx);
	struct pm_entry *a = realloc(t->pm, (t->npm + 1) * sizeof(*a));
	if (!a) {
		pagemap_entry__free_unpacked(pe, NULL);
		return -ENOMEM;
	}
	t->pm = a;
	struct pm_entry *m = &t->pm[t->npm++];
	m->pe = pe;
	m->vaddr = pe->vaddr;
	m->nr_pages = pe->has_nr_pages ? pe->nr_pages : pe->compat_nr_pages;
	/* Images older than the flags field: in_parent, or else present. */
	m->flags = pe->has_flags ? pe->flags
				 : (pe->has_in_parent && pe->in_parent ? CRIU_PE_PARENT
								       : CRIU_PE_PRESENT);
	if (pe->has_in_parent && pe->in_parent)
		m->flags |= CRIU_PE_PARENT;
	*out = m;
	return 0;
}

/* An entry thaw can import: known flags, no parent, a page range after prev_end. */
static int pm_check(struct import *im, const char *name, unsigned idx, const struct pm_entry *m,
		    uint64_t prev_end)
{
	if (m->flags & ~CRIU_PE_KNOWN)
		return thaw__criu_fail(im->e, -EINVAL,
				       "%s: entry %u: field flags 0x%x has bits thaw does not "
				       "know (0x%x)",
				       name, idx, m->flags, m->flags & ~CRIU_PE_KNOWN);
	if ((m->flags & (CRIU_PE_PARENT | CRIU_PE_LAZY | CRIU_PE_PRESENT)) ==
	    (CRIU_PE_PARENT | CRIU_PE_LAZY))
		return thaw__criu_fail(im->e, -EINVAL,
				       "%s: entry %u (vaddr 0x%" PRIx64
				       "): lazy pages stripped by thaw criu import --strip; "
				       "import the original dump",
				       name, idx, m->vaddr);
	if (m->flags & CRIU_PE_PARENT)
		return thaw__criu_fail(im->e, -ENOTSUP,
				       "%s: entry %u (vaddr 0x%" PRIx64
				       "): pages in a parent dump (incremental, "
				       "--prev-images-dir): not supported, dump without a "
				       "parent",
				       name, idx, m->vaddr);
	if (m->vaddr % im->page || !m->nr_pages || m->nr_pages > (UINT64_MAX - m->vaddr) / im->page)
		return thaw__criu_fail(im->e, -EINVAL,
				       "%s: entry %u: vaddr 0x%" PRIx64 " nr_pages %" PRIu64
				       " is not a page range",
				       name, idx, m->vaddr, m->nr_pages);
	if (m->vaddr < prev_end)
		return thaw__criu_fail(im->e, -EINVAL,
				       "%s: entry %u: vaddr 0x%" PRIx64
				       " overlaps or precedes the entry before it",
				       name, idx, m->vaddr);
	if ((m->flags & CRIU_PE_LAZY) && !(m->flags & CRIU_PE_PRESENT))
		return thaw__criu_fail(im->e, -EINVAL,
				       "%s: entry %u (vaddr 0x%" PRIx64
				       "): field flags 0x%x: lazy pages not in the pages "
				       "image (dumped with --lazy-pages, or stripped already)",
				       name, idx, m->vaddr, m->flags);
	return 0;
}

/* The pages image name's head points to, which must hold exactly bytes. */
static int open_pages(struct import *im, struct task *t, const char *name, uint64_t bytes)
{
	char pname[64];
	snprintf(pname, sizeof(pname), "pages-%u.img", t->pages_id);
	t->pages_fd = openat(im->dirfd, pname, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (t->pages_fd < 0 || fstat(t->pages_fd, &st) < 0) {
		int err = -errno;
		return thaw__criu_fail(im->e, err, "%s (named by %s's pages_id): %s", pname, name,
				       strerror(-err));
	}
	t->pages_size = st.st_size;
	if ((uint64_t)st.st_size != bytes)
		return thaw__criu_fail(im->e, -EINVAL,
				       "%s: %" PRIu64 " bytes, but %s lists %" PRIu64
				       " bytes of present pages",
				       pname, (uint64_t)st.st_size, name, bytes);
	im->res.pages_image_bytes += bytes;
	return 0;
}

static int read_pagemap(struct import *im, struct task *t)
{
	char name[64];
	snprintf(name, sizeof(name), "pagemap-%u.img", t->pid);
	int err = thaw__criu_img_load(im->dirfd, name, CRIU_PAGEMAP_MAGIC, &t->pm_img, im->e);
	if (err)
		return err;
	const uint8_t *p;
	size_t n;
	err = thaw__criu_img_next(&t->pm_img, &p, &n, im->e);
	if (err <= 0)
		return err ? err : thaw__criu_fail(im->e, -EINVAL, "%s: no pagemap_head", name);
	PagemapHead *h = pagemap_head__unpack(NULL, n, p);
	if (!h)
		return thaw__criu_fail(im->e, -EINVAL, "%s: entry 0 is not a pagemap_head", name);
	t->pages_id = h->pages_id;
	t->head_bytes = p;
	t->head_len = n;
	pagemap_head__free_unpacked(h, NULL);

	uint64_t off = 0, prev_end = 0;
	while ((err = thaw__criu_img_next(&t->pm_img, &p, &n, im->e)) > 0) {
		unsigned idx = t->pm_img.entry - 1;
		struct pm_entry *m = NULL;
		err = pm_append(im, t, name, idx, p, n, &m);
		if (!err)
			err = pm_check(im, name, idx, m, prev_end);
		if (err)
			return err;
		prev_end = m->vaddr + m->nr_pages * im->page;
		m->pages_off = off;
		if (m->flags & CRIU_PE_PRESENT)
			off += m->nr_pages * im->page;
	}
	if (err < 0)
		return err;
	return open_pages(im, t, name, off);
}

/* The region name: task and mapping, as `thaw info` shows it. */
static void region_name(char *buf, size_t len, uint32_t pid, const VmaEntry *v, const MmEntry *mm)
{
	if (v->status & CRIU_VMA_AREA_HEAP ||
	    (v->start <= mm->mm_start_brk && mm->mm_start_brk < v->end))
		snprintf(buf, len, "pid %u [heap]", pid);
	else if (v->status & CRIU_VMA_AREA_STACK ||
		 (v->start <= mm->mm_start_stack && mm->mm_start_stack < v->end))
		snprintf(buf, len, "pid %u [stack]", pid);
	else
		snprintf(buf, len, "pid %u anon 0x%" PRIx64 "-0x%" PRIx64, pid, v->start, v->end);
}

/* Read the lazy pages of t inside [start, end) into buf (the VMA's copy); count them. */
static int fill_vma(struct import *im, struct task *t, uint64_t start, uint64_t end, char *buf,
		    uint64_t *pages)
{
	for (size_t i = 0; i < t->npm; i++) {
		const struct pm_entry *m = &t->pm[i];
		uint64_t ms = m->vaddr, me = m->vaddr + m->nr_pages * im->page;
		if (!(m->flags & CRIU_PE_LAZY) || me <= start || ms >= end)
			continue;
		uint64_t s = ms > start ? ms : start, en = me < end ? me : end;
		uint64_t from = m->pages_off + (s - ms);
		for (uint64_t done = 0; done < en - s;) {
			ssize_t n = pread(t->pages_fd, buf + (s - start) + done, en - s - done,
					  from + done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int err = n < 0 ? -errno : -EIO;
				return thaw__criu_fail(im->e, err,
						       "pages-%u.img: read at %" PRIu64 ": %s",
						       t->pages_id, from + done, strerror(-err));
			}
			done += n;
		}
		*pages += (en - s) / im->page;
	}
	return 0;
}

/* The span [lo, hi) of t's lazy pages inside [start, end); false when there are none. */
static bool lazy_span(const struct import *im, const struct task *t, uint64_t start, uint64_t end,
		      uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t i = 0; i < t->npm; i++) {
		const struct pm_entry *m = &t->pm[i];
		uint64_t ms = m->vaddr, me = m->vaddr + m->nr_pages * im->page;
		if (!(m->flags & CRIU_PE_LAZY) || me <= start || ms >= end)
			continue;
		uint64_t s = ms > start ? ms : start, e = me < end ? me : end;
		*lo = s < *lo ? s : *lo;
		*hi = e > *hi ? e : *hi;
	}
	return *hi > *lo;
}

struct mapped {
	void *p;
	size_t len;
};

static int write_snapshot(struct import *im, const char *snap_path,
			  const struct thaw_criu_import_opts *o)
{
	struct thaw_writer_opts wo = { .sz = sizeof(wo),
				       .chunk_size = o->chunk_size,
				       .level = o->level,
				       .threads = o->threads,
				       .progress = o->progress,
				       .progress_ctx = o->progress_ctx,
				       .log_fn = o->log_fn,
				       .log_ctx = o->log_ctx,
				       .err_buf = im->e->buf,
				       .err_buf_size = im->e->len };
	struct thaw_writer *w;
	int err = thaw_writer_open(snap_path, &wo, &w);
	if (err)
		return err;
	struct mapped *maps = NULL;
	size_t nmaps = 0;
	for (size_t ti = 0; !err && ti < im->ntasks; ti++) {
		struct task *t = &im->tasks[ti];
		uint64_t lazy_total = 0, lazy_in = 0;
		for (size_t i = 0; i < t->npm; i++)
			if (t->pm[i].flags & CRIU_PE_LAZY)
				lazy_total += t->pm[i].nr_pages;
			else if (t->pm[i].flags & CRIU_PE_PRESENT)
				im->res.pages_kept += t->pm[i].nr_pages;
		for (size_t vi = 0; !err && vi < t->mm->n_vmas; vi++) {
			const VmaEntry *v = t->mm->vmas[vi];
			if (!thaw__criu_vma_lazy(v->flags, v->status))
				continue;
			uint64_t lo, hi;
			if (!lazy_span(im, t, v->start, v->end, &lo, &hi))
				continue;
			struct mapped *nm = realloc(maps, (nmaps + 1) * sizeof(*nm));
			if (!nm) {
				err = -ENOMEM;
				break;
			}
			maps = nm;
			size_t len = hi - lo;
			/* Untouched, it costs nothing and reads as zeros: the holes. */
			void *buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (buf == MAP_FAILED) {
				err = -errno;
				break;
			}
			maps[nmaps++] = (struct mapped){ buf, len };
			err = fill_vma(im, t, lo, hi, buf, &lazy_in);
			if (err)
				break;
			char name[96];
			region_name(name, sizeof(name), t->pid, v, t->mm);
			int prot = v->prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
			struct thaw_region_desc d = { .sz = sizeof(d),
						      .addr = lo | (uint64_t)ti
									   << THAW__CRIU_TASK_SHIFT,
						      .len = len,
						      .prot = prot,
						      .name = name,
						      .mem = buf,
						      .fd = -1 };
			err = thaw_writer_add_region(w, &d);
			if (!err) {
				im->res.regions++;
				im->res.raw_bytes += len;
			}
		}
		if (!err && lazy_in != lazy_total)
			err = thaw__criu_fail(im->e, -EINVAL,
					      "pagemap-%u.img: %" PRIu64 " of %" PRIu64
					      " lazy pages lie outside every lazy-able vma of "
					      "mm-%u.img",
					      t->pid, lazy_total - lazy_in, lazy_total, t->pid);
		im->res.lazy_pages += lazy_in;
	}
	if (err)
		thaw_writer_abort(w);
	else
		err = thaw_writer_close(w);
	for (size_t i = 0; i < nmaps; i++)
		munmap(maps[i].p, maps[i].len);
	free(maps);
	return err;
}

static int write_all(int fd, const void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += n;
	}
	return 0;
}

/* Copy file name from one dir to the other (regular files only). */
static int copy_file(int from, int to, const char *name, const struct thaw__criu_err *e)
{
	int in = openat(from, name, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return thaw__criu_fail(e, -errno, "%s: %s", name, strerror(errno));
	int out = openat(to, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int err = out < 0 ? -errno : 0;
	char buf[65536];
	while (!err) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		err = write_all(out, buf, n);
	}
	close(in);
	if (out >= 0 && close(out) && !err)
		err = -errno;
	return err ? thaw__criu_fail(e, err, "copying %s: %s", name, strerror(-err)) : 0;
}

static int put_entry(int fd, const void *p, size_t n)
{
	uint8_t len[4] = { n, n >> 8, n >> 16, n >> 24 };
	int err = write_all(fd, len, 4);
	return err ? err : write_all(fd, p, n);
}

/*
 * The task's pagemap with its lazy entries no longer present, and its pages
 * image with only what criu restore reads itself. criu restore
 * --lazy-pages skips lazy entries, advancing in the pages image only past
 * present ones, so the offsets of the rest stay right. The lazy entries
 * also say their pages are in a parent dump, which there is none of: a
 * restore without --lazy-pages would read them from the pages image at the
 * wrong offsets; this way it fails ("No parent for snapshot pagemap").
 */
static int strip_task(struct import *im, int out, struct task *t)
{
	char name[64], pname[64];
	snprintf(name, sizeof(name), "pagemap-%u.img", t->pid);
	snprintf(pname, sizeof(pname), "pages-%u.img", t->pages_id);
	int pm = openat(out, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int pg = openat(out, pname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int err = pm < 0 || pg < 0 ? -errno : 0;
	if (!err)
		err = write_all(pm, t->pm_img.buf, thaw__criu_img_header_len(CRIU_PAGEMAP_MAGIC));
	if (!err)
		err = put_entry(pm, t->head_bytes, t->head_len);
	char *buf = NULL;
	for (size_t i = 0; !err && i < t->npm; i++) {
		struct pm_entry *m = &t->pm[i];
		PagemapEntry pe = *m->pe;
		if (m->flags & CRIU_PE_LAZY) {
			pe.has_flags = 1;
			pe.flags = (m->flags & ~CRIU_PE_PRESENT) | CRIU_PE_PARENT;
		}
		size_t n = pagemap_entry__get_packed_size(&pe);
		char *nb = realloc(buf, n ? n : 1);
		if (!nb) {
			err = -ENOMEM;
			break;
		}
		buf = nb;
		pagemap_entry__pack(&pe, (uint8_t *)buf);
		err = put_entry(pm, buf, n);
		if (err || (m->flags & CRIU_PE_LAZY) || !(m->flags & CRIU_PE_PRESENT))
			continue;
		uint64_t len = m->nr_pages * im->page;
		loff_t off_in = m->pages_off;
		while (!err && len) {
			ssize_t c = copy_file_range(t->pages_fd, &off_in, pg, NULL, len, 0);
			if (c < 0 && errno == EINTR)
				continue;
			if (c <= 0)
				err = c < 0 ? -errno : -EIO;
			else
				len -= c;
		}
		if (!err)
			im->res.stripped_bytes += m->nr_pages * im->page;
	}
	free(buf);
	if (pm >= 0 && close(pm) && !err)
		err = -errno;
	if (pg >= 0 && close(pg) && !err)
		err = -errno;
	return err ? thaw__criu_fail(im->e, err, "writing %s and %s: %s", name, pname,
				     strerror(-err))
		   : 0;
}

static bool rewritten(const struct import *im, const char *name)
{
	char buf[64];
	for (size_t i = 0; i < im->ntasks; i++) {
		snprintf(buf, sizeof(buf), "pagemap-%u.img", im->tasks[i].pid);
		if (!strcmp(buf, name))
			return true;
		snprintf(buf, sizeof(buf), "pages-%u.img", im->tasks[i].pages_id);
		if (!strcmp(buf, name))
			return true;
	}
	return false;
}

static int strip(struct import *im, const char *out_dir)
{
	if (mkdir(out_dir, 0700) && errno != EEXIST)
		return thaw__criu_fail(im->e, -errno, "%s: %s", out_dir, strerror(errno));
	int out = open(out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (out < 0)
		return thaw__criu_fail(im->e, -errno, "%s: %s", out_dir, strerror(errno));
	int dfd = dup(im->dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	int err = d ? 0 : -errno;
	if (!d && dfd >= 0)
		close(dfd);
	struct dirent *de;
	while (!err && (de = readdir(d))) {
		struct stat st;
		/* Sockets (lazy-pages.socket), links (parent) and dirs are not images. */
		if (fstatat(im->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!rewritten(im, de->d_name))
			err = copy_file(im->dirfd, out, de->d_name, im->e);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; !err && i < im->ntasks; i++)
		err = strip_task(im, out, &im->tasks[i]);
	close(out);
	return err;
}

int thaw_criu_import(const char *img_dir, const char *snap_path,
		     const struct thaw_criu_import_opts *opts, struct thaw_criu_import_result *res)
{
	struct thaw_criu_import_opts o;
	struct thaw_criu_import_result none = { 0 };
	/* The result's sz is checked before any work is done. */
	if (THAW__OPTS_READ(&o, opts) || (res && THAW__OUT_WRITE(res, &none)))
		return -EINVAL;
	struct thaw__logger log;
	thaw__logger_init(&log, o.log_fn, o.log_ctx);
	struct thaw__criu_err e = { &log, o.err_buf, o.err_buf_size };
	if (!img_dir || !snap_path)
		return thaw__criu_fail(&e, -EINVAL, "no image dir or snapshot path");
	struct import im = { .e = &e, .page = (uint64_t)sysconf(_SC_PAGESIZE) };
	im.dirfd = open(img_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im.dirfd < 0) {
		int err = -errno;
		return thaw__criu_fail(&e, err, "%s: %s", img_dir, strerror(-err));
	}
	struct stat a, b;
	if (o.strip_dir && !stat(o.strip_dir, &b) && !fstat(im.dirfd, &a) && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		close(im.dirfd);
		return thaw__criu_fail(&e, -EINVAL,
				       "--strip %s is the image dir itself: its pages would be "
				       "overwritten while read",
				       o.strip_dir);
	}
	int err = read_inventory(&im);
	if (!err)
		err = read_pstree(&im);
	for (size_t i = 0; !err && i < im.ntasks; i++) {
		err = read_mm(&im, &im.tasks[i]);
		if (!err)
			err = read_pagemap(&im, &im.tasks[i]);
	}
	im.res.tasks = im.ntasks;
	if (!err)
		err = write_snapshot(&im, snap_path, &o);
	if (!err && o.strip_dir)
		err = strip(&im, o.strip_dir);
	if (!err && res)
		THAW__OUT_WRITE(res, &im.res);
	for (size_t i = 0; i < im.ntasks; i++) {
		struct task *t = &im.tasks[i];
		if (t->mm)
			mm_entry__free_unpacked(t->mm, NULL);
		for (size_t j = 0; j < t->npm; j++)
			pagemap_entry__free_unpacked(t->pm[j].pe, NULL);
		free(t->pm);
		thaw__criu_img_free(&t->pm_img);
		if (t->pages_fd >= 0)
			close(t->pages_fd);
	}
	free(im.tasks);
	close(im.dirfd);
	return err;
}

/* The snapshot's regions for task t must lie in its lazy-able VMAs; 0 or -EINVAL naming the
 * first that does not. *matched counts them. */
static int check_task(struct import *im, const struct thaw_snapshot *snap, struct task *t,
		      size_t *matched)
{
	int n = thaw_criu_task_mappings(snap, t->pid, NULL, 0);
	if (n < 0)
		return n;
	struct thaw_mapping *maps = calloc(n ? n : 1, sizeof(*maps));
	if (!maps)
		return -ENOMEM;
	thaw_criu_task_mappings(snap, t->pid, maps, n);
	int err = 0;
	for (int k = 0; !err && k < n; k++) {
		bool inside = false;
		for (size_t vi = 0; !inside && vi < t->mm->n_vmas; vi++) {
			const VmaEntry *v = t->mm->vmas[vi];
			inside = thaw__criu_vma_lazy(v->flags, v->status) &&
				 v->start <= maps[k].addr && maps[k].addr + maps[k].len <= v->end;
		}
		if (!inside)
			err = thaw__criu_fail(im->e, -EINVAL,
					      "the snapshot is not this dump's memory: its region "
					      "0x%" PRIx64 "-0x%" PRIx64
					      " for pid %u is in no lazy vma of mm-%u.img",
					      maps[k].addr, maps[k].addr + maps[k].len, t->pid,
					      t->pid);
	}
	free(maps);
	*matched += n;
	return err;
}

int thaw_criu_check(const struct thaw_snapshot *snap, const char *img_dir,
		    const struct thaw_criu_check_opts *opts)
{
	struct thaw_criu_check_opts o;
	if (THAW__OPTS_READ(&o, opts))
		return -EINVAL;
	struct thaw__logger log;
	thaw__logger_init(&log, NULL, NULL);
	struct thaw__criu_err e = { &log, o.err_buf, o.err_buf_size };
	if (!snap || !img_dir)
		return -EINVAL;
	struct import im = { .e = &e, .page = (uint64_t)sysconf(_SC_PAGESIZE) };
	im.dirfd = open(img_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im.dirfd < 0) {
		int err = -errno;
		return thaw__criu_fail(&e, err, "%s: %s", img_dir, strerror(-err));
	}
	size_t matched = 0;
	int err = read_pstree(&im);
	for (size_t i = 0; !err && i < im.ntasks; i++) {
		err = read_mm(&im, &im.tasks[i]);
		if (!err)
			err = check_task(&im, snap, &im.tasks[i], &matched);
	}
	if (!err && matched != thaw_snapshot_region_count(snap))
		err = thaw__criu_fail(&e, -EINVAL,
				      "the snapshot is not this dump's memory: %zu of its regions "
				      "belong to no task of pstree.img",
				      thaw_snapshot_region_count(snap) - matched);
	for (size_t i = 0; i < im.ntasks; i++)
		if (im.tasks[i].mm)
			mm_entry__free_unpacked(im.tasks[i].mm, NULL);
	free(im.tasks);
	close(im.dirfd);
	return err;
}
