/* SPDX-License-Identifier: MIT */
/*
 * Snapshotting a live (stopped) process: its readable mappings become
 * regions read through process_vm_readv. /proc/PID/pagemap tells which
 * pages of anonymous private mappings were never populated; those are
 * recorded as zero without being read, so a mostly untouched heap costs
 * neither time nor the source process any memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/pagemap.h"
#include "writer.h"

/*
 * Anonymous mappings larger than this are recorded as their populated
 * extents only (sanitizer shadows reserve terabytes of readable address
 * space; a region covers every page with a chunk entry, so recording such
 * a mapping whole would cost gigabytes of tables for nothing).
 */
#define SPARSE_LIMIT (64ull << 30)
/* Extents of a sparse mapping closer than this are recorded as one region. */
#define EXTENT_GAP (64ull << 20)

struct mapping {
	uint64_t start, end, offset, inode;
	char perms[5];
	const char *path; /* points into the maps text; "" when none */
};

static int read_text(const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int r = 0;
	while (buf) {
		if (len + 1 >= cap) {
			char *p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf)
		return -ENOMEM;
	if (r) {
		free(buf);
		return r;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

/* One line of /proc/PID/maps; modifies line (terminates the path). */
static bool parse_line(char *line, struct mapping *m)
{
	unsigned long long start, end, offset, inode;
	unsigned dmaj, dmin;
	int pos = 0;
	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, m->perms, &offset, &dmaj,
		   &dmin, &inode, &pos) < 7)
		return false;
	m->start = start;
	m->end = end;
	m->offset = offset;
	m->inode = inode;
	char *p = line + pos;
	while (*p == ' ')
		p++;
	m->path = p;
	return true;
}

static bool skipped_special(const char *path)
{
	/* Kernel-provided pages that a restore cannot or must not recreate. */
	return !strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]") ||
	       !strcmp(path, "[vsyscall]");
}

static bool can_read(pid_t pid, int mem_fd, uint64_t addr, uint32_t page_size)
{
	char *buf = malloc(page_size);
	if (!buf)
		return false;
	struct iovec l = { buf, page_size }, r = { (void *)(uintptr_t)addr, page_size };
	bool ok = process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)page_size;
	if (!ok && mem_fd >= 0)
		ok = pread(mem_fd, buf, page_size, (off_t)addr) == (ssize_t)page_size;
	free(buf);
	return ok;
}

/*
 * Pages of a file mapping past the end of its file cannot be read (the
 * process itself would get SIGBUS there); trim them. Returns the readable
 * length, 0 when none is.
 */
static uint64_t readable_len(pid_t pid, const struct mapping *m, uint32_t page_size)
{
	char p[96];
	struct stat sb;
	snprintf(p, sizeof(p), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start,
		 m->end);
	uint64_t len = m->end - m->start;
	if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
		return len;
	uint64_t file_end = ((uint64_t)sb.st_size + page_size - 1) / page_size * page_size;
	if (m->offset >= file_end)
		return 0;
	return file_end - m->offset < len ? file_end - m->offset : len;
}

/*
 * Add [start, end) of mapping m as one region; pages outside every range
 * in pop (ranges that may hold data) are recorded as zero without being
 * read. pop == NULL: nothing is known, read everything.
 */
static int add_extent(struct thaw_writer *w, pid_t pid, int mem_fd, const struct mapping *m,
		      uint64_t start, uint64_t end, const struct thaw__ranges *pop)
{
	uint32_t ps = thaw__writer_page_size(w);
	uint64_t pages = (end - start) / ps;
	uint64_t *zero = NULL;
	if (pop) {
		zero = malloc((pages + 63) / 64 * 8);
		if (!zero)
			return -ENOMEM;
		memset(zero, 0xff, (pages + 63) / 64 * 8);
		for (size_t i = 0; i < pop->n; i++) {
			uint64_t a = pop->v[i].start > start ? pop->v[i].start : start;
			uint64_t b = pop->v[i].end < end ? pop->v[i].end : end;
			if (a >= b)
				continue;
			for (uint64_t p = (a - start) / ps; p < (b - start) / ps; p++)
				zero[p / 64] &= ~(1ull << (p % 64));
		}
	}
	bool first_known = zero && (zero[0] & 1);
	if (!first_known && !can_read(pid, mem_fd, start, ps)) {
		thaw__warn(thaw__writer_log(w),
			   "pid %d: skipping unreadable mapping 0x%" PRIx64 "-0x%" PRIx64 " %s",
			   (int)pid, m->start, m->end, m->path);
		free(zero);
		return 0;
	}
	struct thaw_region_desc d = {
		.sz = sizeof(d),
		.addr = start,
		.len = end - start,
		.prot = (m->perms[0] == 'r' ? PROT_READ : 0) |
			(m->perms[1] == 'w' ? PROT_WRITE : 0) |
			(m->perms[2] == 'x' ? PROT_EXEC : 0),
		.name = m->path,
		.fd = -1,
		.pid = pid,
	};
	int r = thaw__writer_add_region_known_zero(w, &d, zero);
	free(zero);
	return r ? r : 1;
}

/* An anonymous private mapping: whole with its never-populated pages known, or its extents if huge. */
static int add_anonymous(struct thaw_writer *w, pid_t pid, int pm_fd, int mem_fd,
			 const struct mapping *m)
{
	const struct thaw__logger *log = thaw__writer_log(w);
	uint64_t len = m->end - m->start;
	struct thaw__ranges pop = { 0 };
	int r = pm_fd < 0 ? -EBADF : thaw__pagemap_scan(pm_fd, m->start, m->end, &pop);
	if (r == -ENOTTY || r == -EINVAL || r == -EOPNOTSUPP) {
		pop.n = 0;
		if (len > SPARSE_LIMIT) {
			thaw__warn(log,
				   "pid %d: skipping the %" PRIu64 " GiB mapping at 0x%" PRIx64
				   ": too large to read without PAGEMAP_SCAN (Linux 6.7)",
				   (int)pid, len >> 30, m->start);
			free(pop.v); /* what the failed scan may have found */
			return 0;
		}
		r = thaw__pagemap_read(pm_fd, m->start, m->end, thaw__writer_page_size(w), &pop);
	}
	if (r == -ENOMEM) {
		free(pop.v);
		return r;
	}
	if (r) {
		/* Without pagemap, everything is read (populating what was not). */
		thaw__debug(log, "pid %d: pagemap of 0x%" PRIx64 ": %s", (int)pid, m->start,
			    strerror(-r));
		free(pop.v);
		return add_extent(w, pid, mem_fd, m, m->start, m->end, NULL);
	}
	int added = 0;
	if (len <= SPARSE_LIMIT) {
		added = add_extent(w, pid, mem_fd, m, m->start, m->end, &pop);
	} else {
		uint64_t kept = 0;
		for (size_t i = 0; i < pop.n && added >= 0;) {
			size_t j = i;
			while (j + 1 < pop.n && pop.v[j + 1].start - pop.v[j].end < EXTENT_GAP)
				j++;
			int n = add_extent(w, pid, mem_fd, m, pop.v[i].start, pop.v[j].end, &pop);
			kept += pop.v[j].end - pop.v[i].start;
			added = n < 0 ? n : added + n;
			i = j + 1;
		}
		if (added >= 0)
			thaw__info(log,
				   "pid %d: %" PRIu64 " GiB mapping at 0x%" PRIx64
				   " %s: recorded its %" PRIu64
				   " MiB of populated extents in %d regions",
				   (int)pid, len >> 30, m->start,
				   m->path[0] ? m->path : "(anonymous)", kept >> 20, added);
	}
	free(pop.v);
	return added;
}

int thaw_writer_add_process(struct thaw_writer *w, pid_t pid, unsigned flags)
{
	if (!w || pid <= 0 || (flags & ~THAW_PROCESS_SKIP_FILE_MAPPINGS))
		return -EINVAL;
	const struct thaw__logger *log = thaw__writer_log(w);
	uint32_t page_size = thaw__writer_page_size(w);
	char path[64];
	char *maps = NULL;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	int r = read_text(path, &maps);
	if (r)
		return thaw__writer_fail(w, r, "%s: %s", path, strerror(-r));
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0)
		thaw__warn(log, "%s: %s; unpopulated pages will be read like any other", path,
			   strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int mem_fd = open(path, O_RDONLY | O_CLOEXEC);

	int added = 0;
	char *save = NULL;
	for (char *line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mapping m;
		if (!parse_line(line, &m)) {
			r = thaw__writer_fail(w, -EINVAL, "/proc/%d/maps: cannot parse \"%s\"",
					      (int)pid, line);
			break;
		}
		bool anon = m.inode == 0;
		if (m.perms[0] != 'r' || skipped_special(m.path) ||
		    ((flags & THAW_PROCESS_SKIP_FILE_MAPPINGS) && !anon))
			continue;
		int n;
		if (anon && m.perms[3] == 'p') {
			n = add_anonymous(w, pid, pm_fd, mem_fd, &m);
		} else {
			uint64_t len = anon ? m.end - m.start : readable_len(pid, &m, page_size);
			n = len ? add_extent(w, pid, mem_fd, &m, m.start, m.start + len, NULL) : 0;
		}
		if (n < 0) {
			r = n;
			break;
		}
		added += n;
	}
	if (pm_fd >= 0)
		close(pm_fd);
	if (mem_fd >= 0)
		close(mem_fd);
	free(maps);
	return r ? r : added;
}
