/* SPDX-License-Identifier: MIT */
/*
 * population_ceiling: the fastest a full background population of a
 * snapshot can go on this machine, with no restore engine at all. The
 * ceiling `make bench` compares thaw's background population with.
 *
 *   cc -O2 -Iinclude -o population_ceiling scripts/population_ceiling.c \
 *      -Lbuild -lthaw -Wl,-rpath,$PWD/build -lzstd -lxxhash -lpthread
 *   population_ceiling SNAP [THREADS]     default: one per CPU; one JSON object
 *
 * THREADS threads take chunks in index order from one counter; each
 * preads its chunk's stored bytes, decodes them with zstd, checks their
 * xxh3 hash and installs them with one UFFDIO_COPY into a registered
 * anonymous range: the work a restore's decode workers do per chunk, with
 * no restore engine (the library only lists the chunks). All-zero chunks
 * are skipped, as the background pass skips them. Nothing faults, nothing
 * waits on anything but the counter: decode and install share the CPUs,
 * which min(decode x CPUs, COPY) does not account for.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thaw.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "bench_uffd.h"

/* What a chunk needs: where its bytes are stored, how, and where they go. */
struct chunk {
	uint64_t stored_off;
	uint32_t stored_len;
	uint32_t len;
	uint64_t hash;
	uint64_t dst_off;	   /* in the destination range: regions back to back */
	enum thaw_chunk_kind kind; /* a DUP's is its target's */
};

struct ceiling {
	struct chunk *chunks;
	uint64_t nchunks;
	uint8_t *dst;
	uint32_t chunk_size;
	int fd;
	int uffd;
	atomic_uint_fast64_t next;
	atomic_int failed;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read, decode and check chunk c into buf: its length, or -1. */
static ssize_t decode_chunk(struct ceiling *c, ZSTD_DCtx *dctx, const struct chunk *ch,
			    void *staging, void *buf)
{
	void *in = ch->kind == THAW_CHUNK_RAW ? buf : staging;
	if (pread(c->fd, in, ch->stored_len, (off_t)ch->stored_off) != (ssize_t)ch->stored_len)
		return -1;
	if (ch->kind == THAW_CHUNK_ZSTD &&
	    ZSTD_decompressDCtx(dctx, buf, ch->len, staging, ch->stored_len) != ch->len)
		return -1;
	return XXH3_64bits(buf, ch->len) == ch->hash ? (ssize_t)ch->len : -1;
}

static void *install_chunks(void *arg)
{
	struct ceiling *c = arg;
	void *buf = aligned_alloc(4096, c->chunk_size);
	void *staging = malloc(ZSTD_compressBound(c->chunk_size));
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	if (!buf || !staging || !dctx)
		c->failed = ENOMEM;
	while (!c->failed) {
		uint64_t i = atomic_fetch_add(&c->next, 1);
		if (i >= c->nchunks)
			break;
		const struct chunk *ch = &c->chunks[i];
		if (ch->kind == THAW_CHUNK_ZERO)
			continue;
		ssize_t n = decode_chunk(c, dctx, ch, staging, buf);
		struct uffdio_copy cp = { .dst = (uintptr_t)(c->dst + ch->dst_off),
					  .src = (uintptr_t)buf,
					  .len = (uint64_t)n };
		if (n < 0 || ioctl(c->uffd, UFFDIO_COPY, &cp) < 0)
			c->failed = n < 0 ? EBADMSG : errno;
	}
	ZSTD_freeDCtx(dctx);
	free(staging);
	free(buf);
	return NULL;
}

static int cmp_stored(const void *a, const void *b)
{
	const struct chunk *x = *(const struct chunk *const *)a,
			   *y = *(const struct chunk *const *)b;
	return x->stored_off < y->stored_off ? -1 : x->stored_off > y->stored_off;
}

/* The chunk table from the library; a DUP takes the kind of the chunk it shares bytes with. */
static int list_chunks(struct thaw_snapshot *snap, struct ceiling *c)
{
	struct chunk **by_off = calloc(c->nchunks, sizeof(*by_off));
	c->chunks = calloc(c->nchunks, sizeof(*c->chunks));
	if (!by_off || !c->chunks)
		return -1;
	size_t nstored = 0;
	uint64_t off = 0;
	for (uint64_t i = 0; i < c->nchunks; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		if (thaw_snapshot_chunk(snap, i, &ci))
			return -1;
		c->chunks[i] = (struct chunk){ .stored_off = ci.stored_off,
					       .stored_len = ci.stored_len,
					       .len = ci.len,
					       .hash = ci.hash,
					       .dst_off = off,
					       .kind = ci.kind };
		off += ci.len;
		if (ci.kind == THAW_CHUNK_RAW || ci.kind == THAW_CHUNK_ZSTD)
			by_off[nstored++] = &c->chunks[i];
	}
	qsort(by_off, nstored, sizeof(*by_off), cmp_stored);
	for (uint64_t i = 0; i < c->nchunks; i++) {
		struct chunk key = { .stored_off = c->chunks[i].stored_off }, *kp = &key;
		struct chunk **t;
		if (c->chunks[i].kind != THAW_CHUNK_DUP)
			continue;
		t = bsearch(&kp, by_off, nstored, sizeof(*by_off), cmp_stored);
		if (!t)
			return -1;
		c->chunks[i].kind = (*t)->kind;
	}
	free(by_off);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: population_ceiling SNAP [THREADS]\n");
		return 2;
	}
	int nthreads = argc > 2 ? atoi(argv[2]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 1 || nthreads > 64)
		nthreads = 1;
	struct ceiling c = { .uffd = bench_open_uffd(), .fd = open(argv[1], O_RDONLY | O_CLOEXEC) };
	struct thaw_open_opts oo = { .sz = sizeof(oo) };
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	struct thaw_snapshot *snap;
	int err = thaw_snapshot_open(argv[1], &oo, &snap);
	if (err || thaw_snapshot_get_info(snap, &in) || c.uffd < 0 || c.fd < 0) {
		fprintf(stderr, "population_ceiling: %s: %s\n", argv[1],
			err	     ? thaw_strerror(err)
			: c.uffd < 0 ? "no userfaultfd"
				     : strerror(errno));
		return 1;
	}
	c.nchunks = in.chunk_count;
	c.chunk_size = in.chunk_size;
	if (list_chunks(snap, &c)) {
		fprintf(stderr, "population_ceiling: %s: cannot list its chunks\n", argv[1]);
		return 1;
	}
	thaw_snapshot_close(snap);
	c.dst = mmap(NULL, in.raw_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		     0);
	struct uffdio_register reg = { .range = { (uintptr_t)c.dst, in.raw_bytes },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (c.dst == MAP_FAILED || ioctl(c.uffd, UFFDIO_REGISTER, &reg) < 0) {
		fprintf(stderr, "population_ceiling: %s\n", strerror(errno));
		return 1;
	}
	pthread_t tids[64];
	double t0 = now_s();
	for (int t = 0; t < nthreads; t++)
		pthread_create(&tids[t], NULL, install_chunks, &c);
	for (int t = 0; t < nthreads; t++)
		pthread_join(tids[t], NULL);
	double secs = now_s() - t0;
	if (c.failed) {
		fprintf(stderr, "population_ceiling: %s\n",
			c.failed == EBADMSG ? "a chunk failed to read, decode or check"
					    : strerror(c.failed));
		return 1;
	}
	printf("{\"threads\": %d, \"ms\": %.1f, \"mb_s\": %.1f}\n", nthreads, secs * 1e3,
	       (double)in.raw_bytes / secs / 1e6);
	munmap(c.dst, in.raw_bytes);
	free(c.chunks);
	return 0;
}
