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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "writer.h"

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

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
	struct iovec l = {buf, page_size}, r = {(void *)(uintptr_t)addr, page_size};
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

/* Bitmap of pages neither present nor swapped, or NULL if pagemap cannot tell. */
static uint64_t *never_populated(int pm_fd, uint64_t start, uint64_t pages, uint32_t page_size)
{
	if (pm_fd < 0)
		return NULL;
	uint64_t *bits = calloc((pages + 63) / 64, 8);
	uint64_t *ent = malloc(8192 * 8);
	if (!bits || !ent)
		goto fail;
	for (uint64_t done = 0; done < pages;) {
		uint64_t n = pages - done < 8192 ? pages - done : 8192;
		ssize_t got = pread(pm_fd, ent, n * 8, (off_t)((start / page_size + done) * 8));
		if (got <= 0 || got % 8)
			goto fail;
		n = (uint64_t)got / 8;
		for (uint64_t i = 0; i < n; i++)
			if (!(ent[i] & (PM_PRESENT | PM_SWAPPED)))
				bits[(done + i) / 64] |= 1ull << ((done + i) % 64);
		done += n;
	}
	free(ent);
	return bits;
fail:
	free(bits);
	free(ent);
	return NULL;
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
		uint64_t len = anon ? m.end - m.start : readable_len(pid, &m, page_size);
		if (!len)
			continue;
		uint64_t *known_zero = NULL;
		if (anon && m.perms[3] == 'p')
			known_zero = never_populated(pm_fd, m.start, len / page_size, page_size);
		bool first_known = known_zero && (known_zero[0] & 1);
		if (!first_known && !can_read(pid, mem_fd, m.start, page_size)) {
			thaw__warn(log,
				   "pid %d: skipping unreadable mapping 0x%" PRIx64 "-0x%" PRIx64
				   " %s",
				   (int)pid, m.start, m.end, m.path);
			free(known_zero);
			continue;
		}
		struct thaw_region_desc d = {
		    .sz = sizeof(d),
		    .addr = m.start,
		    .len = len,
		    .prot = (m.perms[0] == 'r' ? PROT_READ : 0) |
			    (m.perms[1] == 'w' ? PROT_WRITE : 0) |
			    (m.perms[2] == 'x' ? PROT_EXEC : 0),
		    .name = m.path,
		    .fd = -1,
		    .pid = pid,
		};
		r = thaw__writer_add_region_known_zero(w, &d, known_zero);
		free(known_zero);
		if (r)
			break;
		added++;
	}
	if (pm_fd >= 0)
		close(pm_fd);
	if (mem_fd >= 0)
		close(mem_fd);
	free(maps);
	return r ? r : added;
}
