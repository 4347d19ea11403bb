/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for trace files (thaw_trace_load): any text is refused
 * with a message naming its line, or loaded; what is loaded saves and
 * loads again to the same records (nothing wrapped, cut or invented).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "thaw.h"
#include "format/trace.h"

static int memfd_with(const void *data, size_t size, char *path, size_t path_len)
{
	int fd = memfd_create("trace", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char path[64], err[512] = "";
	struct thaw_trace_opts to = { .sz = sizeof(to),
				      .err_buf = err,
				      .err_buf_size = sizeof(err) };
	int fd = memfd_with(data, size, path, sizeof(path));
	struct thaw_trace *t = NULL;
	int r = thaw_trace_load(path, &to, &t);
	close(fd);
	if (r) {
		if (t || !err[0] || !strstr(err, path))
			abort(); /* refused: nothing returned, the file and line named */
		return 0;
	}
	/* Round trip through a file of our own. */
	char tmp[] = "/tmp/thaw-fuzz-trace-XXXXXX";
	int tfd = mkstemp(tmp);
	if (tfd < 0)
		abort();
	close(tfd);
	struct thaw_trace *back = NULL;
	if (thaw_trace_save(t, tmp) || thaw_trace_load(tmp, &to, &back))
		abort();
	unlink(tmp);
	if (back->n != t->n || strcmp(back->snapshot, t->snapshot))
		abort();
	for (size_t i = 0; i < t->n; i++) {
		const struct thaw__trace_rec *a = &t->rec[i], *b = &back->rec[i];
		if (a->t_us != b->t_us || a->value != b->value || a->tid != b->tid ||
		    a->kind != b->kind)
			abort();
	}
	thaw_trace_free(back);
	thaw_trace_free(t);
	return 0;
}
