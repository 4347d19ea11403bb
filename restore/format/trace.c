/* SPDX-License-Identifier: MIT */
/*
 * First-touch trace files: a line-oriented text format so a person can read
 * one, a script can write one, and several can be concatenated by hand.
 */
#include "trace.h"

#include "common/errors.h"
#include "format.h"
#include "common/abi.h"
#include "uffd/base.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TRACE_MAGIC "thaw-trace 1"

int thaw_trace_new(struct thaw_trace **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void thaw_trace_free(struct thaw_trace *t)
{
	if (!t)
		return;
	free(t->rec);
	free(t);
}

size_t thaw_trace_count(const struct thaw_trace *t)
{
	return t->n;
}

static bool is_digest(const char *s)
{
	size_t i;

	for (i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[32] == 0;
}

int thaw_trace_set_snapshot(struct thaw_trace *t, const char *digest)
{
	if (!digest || !is_digest(digest))
		return -EINVAL;
	memcpy(t->snapshot, digest, sizeof(t->snapshot));
	return 0;
}

const char *thaw_trace_snapshot(const struct thaw_trace *t)
{
	return t->snapshot[0] ? t->snapshot : NULL;
}

static int trace_add(struct thaw_trace *t, struct thaw__trace_rec rec)
{
	if (THAW__GROW(t->rec, t->cap, t->n + 1, 1024))
		return -ENOMEM;
	t->rec[t->n++] = rec;
	return 0;
}

int thaw_trace_add_chunk(struct thaw_trace *t, uint64_t t_us, uint64_t chunk)
{
	return trace_add(t, (struct thaw__trace_rec){
				    .t_us = t_us, .value = chunk, .kind = THAW__TRACE_CHUNK });
}

int thaw_trace_add_page(struct thaw_trace *t, uint64_t t_us, uint64_t addr, uint32_t tid)
{
	return trace_add(
		t, (struct thaw__trace_rec){
			   .t_us = t_us, .value = addr, .tid = tid, .kind = THAW__TRACE_PAGE });
}

int thaw_trace_save(const struct thaw_trace *t, const char *path)
{
	char tmp[4096];
	size_t i;
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		int err = -errno;

		close(fd);
		unlink(tmp);
		return err;
	}
	fprintf(f, "%s\n", TRACE_MAGIC);
	if (t->snapshot[0])
		fprintf(f, "snapshot %s\n", t->snapshot);
	for (i = 0; i < t->n; i++) {
		const struct thaw__trace_rec *r = &t->rec[i];

		if (r->kind == THAW__TRACE_CHUNK)
			fprintf(f, "%" PRIu64 " chunk %" PRIu64 "\n", r->t_us, r->value);
		else
			fprintf(f, "%" PRIu64 " page 0x%" PRIx64 " %" PRIu32 "\n", r->t_us,
				r->value, r->tid);
	}
	if (fflush(f) || ferror(f) || fsync(fileno(f))) {
		int err = errno ? -errno : -EIO;

		fclose(f);
		unlink(tmp);
		return err;
	}
	if (fclose(f) || rename(tmp, path)) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

static int bad_line(char *err, size_t err_len, const char *path, unsigned line, const char *fmt,
		    ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return thaw__fail(NULL, err, err_len, -EINVAL, "%s:%u: %s", path, line, what);
}

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * An unsigned number in base 10 or 16 (then with its 0x) at *s after blanks,
 * at most max: no sign, no wrap-around (sscanf's %llu takes "-1" as 2^64-1).
 * Advances *s past it; false if there is none.
 */
static bool take_num(const char **s, unsigned base, uint64_t max, uint64_t *v)
{
	const char *p = skip_blanks(*s);
	if (base == 16) {
		if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
			return false;
		p += 2;
	}
	uint64_t x = 0;
	const char *start = p;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f'))
			d = (unsigned)((*p | 0x20) - 'a' + 10);
		else
			break;
		if (x > (max - d) / base)
			return false;
		x = x * base + d;
	}
	if (p == start)
		return false;
	*s = p;
	*v = x;
	return true;
}

/* The word at *s after blanks, if it is w followed by a blank or the end. */
static bool take_word(const char **s, const char *w)
{
	const char *p = skip_blanks(*s);
	size_t n = strlen(w);
	if (strncmp(p, w, n) || (p[n] && p[n] != ' ' && p[n] != '\t'))
		return false;
	*s = p + n;
	return true;
}

/* Parse one record line into rec; returns a static reason on failure. */
static const char *parse_record(const char *s, struct thaw__trace_rec *rec)
{
	uint64_t t_us, value, tid = 0;

	if (!take_num(&s, 10, UINT64_MAX, &t_us))
		return "expected \"<t_us> chunk <id>\" or \"<t_us> page 0x<addr> <tid>\"";
	rec->t_us = t_us;
	if (take_word(&s, "chunk")) {
		if (!take_num(&s, 10, UINT64_MAX, &value) || *skip_blanks(s))
			return "a chunk record is \"<t_us> chunk <id>\"";
		rec->kind = THAW__TRACE_CHUNK;
	} else if (take_word(&s, "page")) {
		if (!take_num(&s, 16, UINT64_MAX, &value) ||
		    (*skip_blanks(s) && !take_num(&s, 10, UINT32_MAX, &tid)) || *skip_blanks(s))
			return "a page record is \"<t_us> page 0x<addr> <tid>\"";
		rec->kind = THAW__TRACE_PAGE;
	} else {
		return "unknown record kind (expected chunk or page)";
	}
	rec->value = value;
	rec->tid = (uint32_t)tid;
	return NULL;
}

static int trace_parse(FILE *f, const char *path, struct thaw_trace *t, char *err, size_t err_len)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned no = 0, chunk_line = 0;
	int r = 0;

	while (getline(&line, &cap, f) > 0) {
		struct thaw__trace_rec rec;
		const char *why;

		no++;
		line[strcspn(line, "\r\n")] = 0;
		if (no == 1) {
			if (strcmp(line, TRACE_MAGIC)) {
				r = bad_line(err, err_len, path, no,
					     "not a thaw trace (first line must be \"%s\")",
					     TRACE_MAGIC);
				break;
			}
			continue;
		}
		if (!line[0] || line[0] == '#')
			continue;
		if (!strncmp(line, "snapshot ", 9)) {
			if (thaw_trace_set_snapshot(t, line + 9)) {
				r = bad_line(err, err_len, path, no,
					     "snapshot must be a 32-hex-digit digest");
				break;
			}
			continue;
		}
		why = parse_record(line, &rec);
		if (why) {
			r = bad_line(err, err_len, path, no, "%s", why);
			break;
		}
		if (rec.kind == THAW__TRACE_CHUNK && !chunk_line)
			chunk_line = no;
		r = trace_add(t, rec);
		if (r)
			break;
	}
	if (!r && ferror(f))
		r = -EIO;
	if (!r && no == 0)
		r = bad_line(err, err_len, path, 1, "empty file, not a thaw trace");
	if (!r && chunk_line && !t->snapshot[0])
		r = bad_line(
			err, err_len, path, chunk_line,
			"chunk record without a \"snapshot <digest>\" line naming its snapshot");
	free(line);
	return r;
}

int thaw_trace_load(const char *path, const struct thaw_trace_opts *opts, struct thaw_trace **out)
{
	struct thaw_trace_opts o;
	struct thaw_trace *t;
	FILE *f;
	int r = THAW__OPTS_READ(&o, opts);
	if (r || !path || !out)
		return -EINVAL;
	char *err = o.err_buf;
	size_t err_len = o.err_buf_size;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", path, strerror(-r));
		return r;
	}
	r = thaw_trace_new(&t);
	if (!r)
		r = trace_parse(f, path, t, err, err_len);
	fclose(f);
	if (r) {
		thaw_trace_free(t);
		return r;
	}
	*out = t;
	return 0;
}

/* When a chunk was first touched across all traces: compared as (t_us, trace, record). */
struct first_touch {
	uint64_t t_us;
	uint64_t trace;
	uint64_t rec;
	uint64_t id;
};

static bool touch_before(const struct first_touch *a, const struct first_touch *b)
{
	if (a->t_us != b->t_us)
		return a->t_us < b->t_us;
	return a->trace != b->trace ? a->trace < b->trace : a->rec < b->rec;
}

static int cmp_touch(const void *x, const void *y)
{
	const struct first_touch *a = x, *b = y;
	return touch_before(a, b) ? -1 : touch_before(b, a);
}

/* The chunk holding source address addr, or -1 outside every region. */
static int64_t chunk_of_addr(const struct thaw__layout *l, uint64_t addr)
{
	size_t lo = 0, hi = l->hdr.region_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct thaw__fmt_region *rg = &l->regions[mid];

		if (addr < rg->addr)
			hi = mid;
		else if (addr - rg->addr >= rg->len)
			lo = mid + 1;
		else
			return (int64_t)(rg->first_chunk + (addr - rg->addr) / l->hdr.chunk_size);
	}
	return -1;
}

static int trace_refused(char *err, size_t err_len, const char *const *names, size_t i,
			 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int trace_refused(char *err, size_t err_len, const char *const *names, size_t i,
			 const char *fmt, ...)
{
	char what[256], name[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(name, sizeof(name), "trace %zu", i + 1);
	return thaw__fail(NULL, err, err_len, -EINVAL, "%s: %s",
			  names && names[i] ? names[i] : name, what);
}

/* Earliest touches so far: per chunk, and per global page (page records only). */
struct touches {
	struct first_touch *chunk;
	struct first_touch *page;
};

static void touch(struct first_touch *slot, struct first_touch ft, uint64_t key)
{
	ft.id = key;
	if (touch_before(&ft, slot))
		*slot = ft;
}

/* Fold trace i's records into the earliest touches. */
static int trace_fold(const struct thaw_trace *t, size_t i, const char *const *names,
		      const struct thaw__layout *l, const char *digest, struct touches *first,
		      uint64_t *ignored, char *err, size_t err_len)
{
	uint64_t pages = 0, mapped = 0;

	if (t->snapshot[0] && strcasecmp(t->snapshot, digest))
		return trace_refused(err, err_len, names, i,
				     "recorded from snapshot %s, not this one (%s)", t->snapshot,
				     digest);
	for (size_t k = 0; k < t->n; k++) {
		const struct thaw__trace_rec *rec = &t->rec[k];
		struct first_touch ft = { .t_us = rec->t_us, .trace = i, .rec = k };
		int64_t id;

		if (rec->kind == THAW__TRACE_CHUNK) {
			if (rec->value >= l->hdr.chunk_count)
				return trace_refused(err, err_len, names, i,
						     "chunk %" PRIu64
						     " does not exist (the snapshot has %" PRIu64
						     " chunks)",
						     rec->value, l->hdr.chunk_count);
			id = (int64_t)rec->value;
		} else {
			pages++;
			id = chunk_of_addr(l, rec->value);
			if (id < 0) {
				(*ignored)++;
				continue;
			}
			mapped++;
			uint64_t in = (rec->value - thaw__layout_chunk_addr(l, (uint64_t)id)) /
				      l->hdr.page_size;
			touch(&first->page[(uint64_t)id * l->pages_per_chunk + in], ft,
			      (uint64_t)id * l->pages_per_chunk + in);
		}
		touch(&first->chunk[id], ft, (uint64_t)id);
	}
	if (pages && !mapped)
		return trace_refused(err, err_len, names, i,
				     "none of its %" PRIu64
				     " page addresses lies in a region of the snapshot",
				     pages);
	return 0;
}

/* A page worth a frame: touched, and stored. */
static bool touched_data(const struct thaw__layout *l, const struct first_touch *ft)
{
	return ft->trace != SIZE_MAX && !thaw__layout_page_zero(l, ft->id);
}

/* A touched zero page: nothing to store, but worth putting in ahead of its touch. */
static bool touched_zero(const struct thaw__layout *l, const struct first_touch *ft)
{
	return ft->trace != SIZE_MAX && thaw__layout_page_zero(l, ft->id);
}

static bool touched(const struct thaw__layout *l, const struct first_touch *ft)
{
	(void)l;
	return ft->trace != SIZE_MAX;
}

/* The keys of first[0..n) that keep() accepts, by first touch, into *out (malloc'ed). */
static int sorted_keys(struct first_touch *first, uint64_t n, const struct thaw__layout *l,
		       bool (*keep)(const struct thaw__layout *, const struct first_touch *),
		       uint64_t **out, uint64_t *count)
{
	uint64_t k = 0;
	for (uint64_t i = 0; i < n; i++)
		if (keep(l, &first[i]))
			first[k++] = first[i];
	qsort(first, k, sizeof(*first), cmp_touch);
	*out = malloc((k ? k : 1) * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (uint64_t j = 0; j < k; j++)
		(*out)[j] = first[j].id;
	*count = k;
	return 0;
}

static struct first_touch *untouched(uint64_t n)
{
	struct first_touch *f = malloc((n ? n : 1) * sizeof(*f));
	for (uint64_t i = 0; f && i < n; i++)
		f[i] = (struct first_touch){ .t_us = UINT64_MAX, .trace = SIZE_MAX, .id = i };
	return f;
}

int thaw__trace_order(const struct thaw_trace *const *traces, const char *const *names, size_t n,
		      const struct thaw__layout *l, const char *digest, struct thaw__trace_order *o,
		      char *err, size_t err_len)
{
	uint64_t nchunks = l->hdr.chunk_count, npages = nchunks * l->pages_per_chunk;
	struct touches first = { untouched(nchunks), untouched(npages) };
	int r = first.chunk && first.page ? 0 : -ENOMEM;

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < n && !r; i++)
		r = trace_fold(traces[i], i, names, l, digest, &first, &o->ignored, err, err_len);
	if (!r)
		r = sorted_keys(first.chunk, nchunks, l, touched, &o->chunks, &o->nchunks);
	/* The zero pages first: sorting compacts the array it is given. */
	struct first_touch *zeros = NULL;
	if (!r) {
		zeros = malloc((npages ? npages : 1) * sizeof(*zeros));
		r = zeros ? 0 : -ENOMEM;
	}
	if (!r) {
		memcpy(zeros, first.page, npages * sizeof(*zeros));
		r = sorted_keys(zeros, npages, l, touched_zero, &o->zeros, &o->nzeros);
	}
	if (!r)
		r = sorted_keys(first.page, npages, l, touched_data, &o->pages, &o->npages);
	free(zeros);
	free(first.chunk);
	free(first.page);
	if (r)
		thaw__trace_order_free(o);
	return r;
}

void thaw__trace_order_free(struct thaw__trace_order *o)
{
	free(o->chunks);
	free(o->pages);
	free(o->zeros);
	memset(o, 0, sizeof(*o));
}
