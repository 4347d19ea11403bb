/* SPDX-License-Identifier: MIT */
/*
 * thaw — lazy restore of memory snapshots with userfaultfd.
 *
 * Conventions: every function that can fail returns 0 (or a count) on
 * success and a negative error code on failure: -errno, or one of the
 * -THAW_E_* codes below. thaw_strerror() turns any of them into text.
 * Options and output structs begin with `size_t sz`: set it to sizeof
 * the struct (`struct thaw_stats st = { .sz = sizeof(st) };`), so that a
 * program and a library built from different releases still agree. For
 * options, a NULL pointer or a zero field means the default, and bytes
 * past what this library knows must be zero (an option it does not know
 * is refused with -EINVAL, not ignored). For outputs, the library writes
 * only the caller's sz bytes and zeroes fields it does not know. A sz
 * left at 0 is refused with -EINVAL.
 * Errors that need words: calls that take an options struct write a
 * one-line message naming what was wrong into its err_buf (and the log).
 * Objects are opaque; every *_free / *_close / *_stop accepts NULL.
 */
#ifndef THAW_H
#define THAW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define THAW_VERSION_MAJOR  2
#define THAW_VERSION_MINOR  0
#define THAW_VERSION_PATCH  0
#define THAW_VERSION_STRING "2.0.0"

#ifndef THAW_API
#define THAW_API __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

struct thaw_snapshot; /* an open snapshot (file or URL) */
struct thaw_restore;  /* a lazy restore in progress */
struct thaw_writer;   /* a snapshot being written */
struct thaw_trace;    /* a first-touch trace: what a run touched, in order */
struct thaw_export;   /* live memory served over HTTP as a snapshot */

/* The project's own error codes, returned negated like errno values. */
enum thaw_error {
	THAW_E_BASE = 4096,
	THAW_E_BAD_SNAPSHOT = THAW_E_BASE, /* malformed snapshot; the message names the field */
	THAW_E_VERSION,			   /* snapshot format version not supported */
	THAW_E_HASH,			   /* a chunk's bytes do not match its recorded hash */
	THAW_E_CODEC,			   /* a chunk failed to decompress */
	THAW_E_HTTP,			   /* HTTP error status (message carries the status) */
	THAW_E_CHANGED,			   /* the object changed on the server (412) */
	THAW_E_NET,			   /* network failure after every retry and mirror */
	THAW_E_UFFD_FEATURE,		   /* kernel lacks a userfaultfd feature we need */
	THAW_E_POISONED,		   /* some chunks could not be had and were poisoned */
	THAW_E_TARGET_GONE,		   /* the restored address space went away */
	THAW_E_UNINSTALLED, /* some chunks could be neither installed nor poisoned (see
			     * thaw_stats.chunks_failed): their pages never read zeros */
	THAW_E_END
};

enum thaw_log_level {
	THAW_LOG_ERROR = 0,
	THAW_LOG_WARN = 1,
	THAW_LOG_INFO = 2,
	THAW_LOG_DEBUG = 3,
};

/*
 * Log sink. Called from any thread the library runs (including the
 * restore's manager thread); `msg` is one line without a newline and is
 * valid only during the call. With no sink set, the library stays silent
 * unless the environment variable THAW_LOG names a level
 * (error|warn|info|debug), in which case lines at or above it go to stderr.
 */
typedef void (*thaw_log_fn)(enum thaw_log_level level, const char *msg, void *ctx);

/*
 * Progress of long work (writing, verifying). `done` and `total` are in
 * bytes of raw memory. Called from the calling thread.
 */
typedef void (*thaw_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/* Chunk kinds as stored in the snapshot. */
enum thaw_chunk_kind {
	THAW_CHUNK_ZERO = 0, /* every byte zero, nothing stored */
	THAW_CHUNK_RAW = 1,  /* stored uncompressed */
	THAW_CHUNK_ZSTD = 2, /* one zstd frame */
	THAW_CHUNK_DUP = 3,  /* same bytes as an earlier chunk, stored once */
	THAW_CHUNK_KINDS
};

struct thaw_open_opts {
	size_t sz;
	thaw_log_fn log_fn; /* log sink for this snapshot and its restores */
	void *log_ctx;
	/* On failure a one-line message naming what was wrong is written here. */
	char *err_buf;
	size_t err_buf_size;

	/* HTTP stores (ignored for local files). */
	const char *const *mirrors; /* NULL-terminated URLs of the same object, tried in turn */
	const char *const *headers; /* NULL-terminated "Name: value" request headers */
	const char *cacert;	    /* CA bundle path for https; NULL = system default */
	int insecure;		    /* nonzero: do not verify TLS peers (explicit opt-out) */
	const char *aws_sigv4;	    /* "provider:region:service"; keys from AWS_* env vars */
	int connect_timeout_ms;	    /* 0 = 5000 */
	int low_speed_timeout_ms;   /* abort a transfer stalled this long; 0 = 10000 */
	int max_retries;	    /* per request and URL; 0 = 6, negative = none */
};

struct thaw_snapshot_info {
	size_t sz;
	uint32_t version;
	uint32_t page_size;
	uint32_t chunk_size;
	uint64_t region_count;
	uint64_t chunk_count;
	uint64_t chunks_by_kind[THAW_CHUNK_KINDS];
	uint64_t raw_bytes;    /* sum of region lengths */
	uint64_t stored_bytes; /* chunk data section length */
	uint64_t file_size;
	uint64_t tables_len; /* bytes from offset 0 a reader needs before serving faults */
	char digest[33];     /* hex xxh3-128 of header and tables: pins the snapshot */
	/* Chunks in the prefetch order (see thaw_optimize); 0 = none. */
	uint64_t prefetch_count;
	/* 1: chunk hashes are recorded and checked on every read; 0: a live
	 * export's view (thaw_export_start), whose chunks are not hash-checked. */
	int hashes;
	/* Working-set pages stored compactly in frames (see thaw_optimize); 0 = none. */
	uint64_t ws_pages;
	uint64_t ws_frames;
	uint64_t ws_zero_pages; /* touched zero pages, installed up front */
};

struct thaw_region_info {
	size_t sz;
	uint64_t addr; /* address in the source */
	uint64_t len;  /* bytes, a multiple of the page size */
	int prot;      /* PROT_* */
	uint32_t flags;
	const char *name; /* owned by the snapshot, valid until it is closed */
	uint64_t first_chunk;
	uint64_t chunk_count;
};

struct thaw_chunk_info {
	size_t sz;
	uint64_t region;
	uint64_t addr; /* source address of the chunk's first byte */
	uint32_t len;  /* raw bytes (the last chunk of a region may be short) */
	enum thaw_chunk_kind kind;
	uint64_t stored_off;
	uint32_t stored_len;
	uint64_t hash; /* xxh3-64 of the raw bytes */
};

/* Restore placement and behaviour flags. */
/* Map at the recorded addresses (MAP_FIXED_NOREPLACE). */
#define THAW_RESTORE_FIXED_ADDR	   (1u << 0)
#define THAW_RESTORE_NO_BACKGROUND (1u << 1) /* fetch only what is touched (see below) */
/*
 * With THAW_RESTORE_NO_BACKGROUND a snapshot's prefetch order (its recorded
 * working set) is still streamed from the start; only the pass over the rest
 * is left out.
 */

struct thaw_restore_opts {
	size_t sz;
	unsigned flags;		/* THAW_RESTORE_* */
	int background_threads; /* decompression threads for the background pass; 0 = online CPUs */
	/*
	 * When set, the restore names its snapshot in this trace and appends a
	 * page record (the page's source address, i.e. its recorded address,
	 * whatever address it is restored at) each time a fault first touches
	 * a page (first-touch order, t_us from the restore's start), on the
	 * manager thread. A recording run is on demand and page-granular: each
	 * fault installs only its own page (its chunk decoded, or the last one
	 * decoded reused), nothing is prefetched and there is no
	 * background pass, so every first touch is seen. It is slower; it is
	 * done once. A trace that already names another snapshot is refused
	 * (-EINVAL). Owned by the caller; do not touch it until
	 * thaw_restore_free has returned.
	 */
	struct thaw_trace *record;
	char *err_buf; /* as in thaw_open_opts */
	size_t err_buf_size;
};

/*
 * A piece of a target's memory for thaw_restore_attach: [addr, addr+len)
 * in the target's address space holds the snapshot bytes at [offset,
 * offset+len) of its regions laid out back to back (a Firecracker guest
 * memory file's layout). All three page aligned.
 */
struct thaw_mapping {
	uint64_t addr;
	uint64_t len;
	uint64_t offset;
};

/* A snapshot's shared decoded-chunk cache (thaw_snapshot_set_cache). */
struct thaw_cache_stats {
	size_t sz;
	uint64_t limit;	    /* bytes allowed */
	uint64_t bytes;	    /* bytes held now */
	uint64_t hits;	    /* chunks installed from the cache instead of the store */
	uint64_t inserts;   /* chunks decoded and kept */
	uint64_t evictions; /* chunks dropped to stay under the limit */
};

#define THAW_LAT_BUCKETS 32

struct thaw_stats {
	size_t sz;
	uint64_t faults;	   /* page-fault events received */
	uint64_t pages_fault;	   /* pages installed to serve a fault */
	uint64_t pages_background; /* pages installed by the background pass */
	uint64_t pages_zero;	   /* of all these, installed as zero pages */
	uint64_t chunks_fetched;   /* chunks read from the store */
	uint64_t chunks_poisoned;  /* chunks that could not be had */
	uint64_t bytes_read;	   /* stored bytes read from the store */
	/* Fault service latency: bucket i counts services of [2^i, 2^(i+1)) µs
	 * (bucket 0 also holds anything under 1 µs). */
	uint64_t fault_lat_hist[THAW_LAT_BUCKETS];
	uint64_t fault_p50_us;
	uint64_t fault_p99_us;
	/* Sum of fault service times: how long faulting threads were blocked
	 * (QEMU's postcopy blocktime; a chunk two threads wait on counts once). */
	uint64_t fault_wait_us;
	uint64_t start_us;    /* time thaw_restore_start took */
	uint64_t resident_us; /* start to fully resident; 0 while not yet */
	int resident;	      /* 1 once every page is resident and ranges unregistered */
	/* HTTP stores */
	uint64_t http_requests;
	uint64_t http_bytes;
	uint64_t http_retries;
	uint64_t http_failures;
	uint64_t http_fault_p50_us, http_fault_p99_us; /* fault lane request latency */
	uint64_t http_bg_p50_us, http_bg_p99_us;       /* background lane */
	/* Working-set prefetch (snapshots with a prefetch order, see thaw_optimize). */
	uint64_t prefetch_chunks;  /* chunks in the snapshot's prefetch order */
	uint64_t pages_prefetch;   /* pages the prefetch installed before any touch of them */
	uint64_t prefetch_late;	   /* faults on prefetch-order chunks not yet installed */
	uint64_t faults_unlisted;  /* faults on chunks outside the prefetch order */
	uint64_t prefetch_done_us; /* start until every prefetch-order chunk was in; 0 = not yet */
	/* The working-set frames (thaw_optimize from page records): pages_prefetch
	 * counts the pages they installed too; a fault on a listed page not in yet
	 * counts in prefetch_late, any other fault in faults_unlisted. */
	uint64_t ws_pages;	 /* working-set pages the snapshot lists */
	uint64_t pages_ws;	 /* of them, installed by the frame stream before a touch */
	uint64_t frames_dropped; /* frames unreadable or failing their hash: chunks served */
	/* Chunks that could be neither installed nor poisoned (both ioctls failed after
	 * retries). Their pages are never left to the kernel's zero fill: while the
	 * restore lives they stay registered (a touch waits); thaw_restore_free makes
	 * them PROT_NONE in this process (a touch raises SIGSEGV) or, for an attached
	 * target, keeps its uffd open. thaw_restore_wait returns -THAW_E_UNINSTALLED. */
	uint64_t chunks_failed;
};

struct thaw_writer_opts {
	size_t sz;
	uint32_t chunk_size; /* 4 KiB … 2 MiB, a power of two; 0 = 64 KiB */
	int level;	     /* zstd level; 0 = 3 */
	int threads;	     /* compression threads; 0 = online CPUs */
	thaw_progress_fn progress;
	void *progress_ctx;
	thaw_log_fn log_fn;
	void *log_ctx;
	char *err_buf; /* as in thaw_open_opts */
	size_t err_buf_size;
};

/* One region to write. Exactly one source: mem, else fd, else pid. */
struct thaw_region_desc {
	size_t sz;
	uint64_t addr; /* recorded address, page aligned */
	uint64_t len;  /* page multiple */
	int prot;
	uint32_t flags;
	const char *name; /* copied */
	const void *mem;  /* bytes in this process; must stay valid until thaw_writer_close */
	int fd; /* when mem is NULL and fd >= 0: read with pread at fd_offset (fd not owned) */
	uint64_t fd_offset;
	pid_t pid; /* when mem is NULL and fd < 0: read from this process at addr */
};

/* Flags for thaw_writer_add_process. */
#define THAW_PROCESS_SKIP_FILE_MAPPINGS (1u << 0) /* only anonymous memory */

/* One range of this process's memory to export. */
struct thaw_export_region {
	uint64_t addr;	  /* page aligned; readable for as long as the export runs */
	uint64_t len;	  /* page multiple */
	int prot;	  /* PROT_* recorded for the destination */
	const char *name; /* copied; NULL = "" */
	/* >= 0: the memory is this memfd (or shmem file) at memfd_offset, mapped
	 * shared at addr; a reply that is one piece of it goes out from the fd
	 * (sendfile), others by writev from the mapping. < 0: private anonymous
	 * memory (checked against /proc/self/maps), sent by writev from memory.
	 * The fd is not owned and must stay open while the export runs. */
	int memfd;
	uint64_t memfd_offset;
};

struct thaw_export_opts {
	size_t sz;
	const char *bind_addr; /* IPv4 address to listen on; NULL = "127.0.0.1" */
	uint16_t port;	       /* 0 = any free port (see thaw_export_url) */
	uint32_t chunk_size;   /* as in thaw_writer_opts; 0 = 64 KiB */
	thaw_log_fn log_fn;
	void *log_ctx;
	char *err_buf; /* as in thaw_open_opts */
	size_t err_buf_size;
};

struct thaw_export_stats {
	size_t sz;
	uint64_t build_us;	    /* time thaw_export_start spent computing the view */
	uint64_t object_size;	    /* bytes of the snapshot object served */
	uint64_t tables_len;	    /* its header and tables */
	uint64_t chunks;	    /* chunks in the view */
	uint64_t chunks_data;	    /* of those, not all-zero: what a destination must fetch */
	uint64_t chunks_sent;	    /* data chunks sent in full at least once */
	uint64_t requests;	    /* HTTP requests answered */
	uint64_t requests_sendfile; /* of those, answered from a memfd with sendfile */
	uint64_t requests_aborted;  /* replies the client did not take in full */
	uint64_t bytes_sent;	    /* body bytes of replies sent in full */
	uint64_t first_request_us;  /* start to the first request; 0 while none */
	uint64_t complete_us;	    /* start to every data chunk sent; 0 while not yet */
};

/* ------------------------------------------------------------------ */
/* Functions                                                           */
/* ------------------------------------------------------------------ */

/* Text for any code this library returns (negative or positive). Static storage. */
THAW_API const char *thaw_strerror(int err);

/* Library version as "MAJOR.MINOR.PATCH". Static storage. */
THAW_API const char *thaw_version(void);

/*
 * Open a snapshot: a path, file://PATH, or an http(s):// URL. Reads and
 * validates the header and tables; a bad field fails with
 * -THAW_E_BAD_SNAPSHOT and a message naming it (opts->err_buf and the log).
 * On success *out is owned by the caller: close it with
 * thaw_snapshot_close, after every restore made from it has been freed.
 */
THAW_API int thaw_snapshot_open(const char *uri, const struct thaw_open_opts *opts,
				struct thaw_snapshot **out);
THAW_API void thaw_snapshot_close(struct thaw_snapshot *snap);

THAW_API int thaw_snapshot_get_info(const struct thaw_snapshot *snap,
				    struct thaw_snapshot_info *info);
THAW_API size_t thaw_snapshot_region_count(const struct thaw_snapshot *snap);
/* Fill *info for region i; -EINVAL if i is out of range. */
THAW_API int thaw_snapshot_region(const struct thaw_snapshot *snap, size_t i,
				  struct thaw_region_info *info);
/* Fill *info for chunk i (index over the whole snapshot); -EINVAL if out of range. */
THAW_API int thaw_snapshot_chunk(const struct thaw_snapshot *snap, uint64_t i,
				 struct thaw_chunk_info *info);
/*
 * Read, decode and hash-check chunk i into buf (at least the chunk's len
 * bytes, caller owned). Returns the chunk's length, or -THAW_E_HASH,
 * -THAW_E_CODEC, an I/O or network error. Thread-safe.
 */
THAW_API ssize_t thaw_snapshot_read_chunk(struct thaw_snapshot *snap, uint64_t i, void *buf,
					  size_t buf_len);

/*
 * Start a lazy restore: map every region (anonymous, private), register
 * it with userfaultfd and return; pages arrive on first touch and, unless
 * THAW_RESTORE_NO_BACKGROUND, in the background. *out is owned by the
 * caller (thaw_restore_free). The snapshot must outlive the restore.
 *
 * The memory behaves like the anonymous memory it replaces: after
 * MADV_DONTNEED (or MADV_FREE) a range reads zeros and never receives
 * snapshot data; munmap drops a range; mremap moves it with its snapshot
 * bytes, and a region grown in place reads zeros past its old end. A
 * forked child reads the snapshot's bytes too: this process serves its
 * missing pages from a restore of its own (its faults need CAP_SYS_PTRACE
 * for the kernel's FORK events; without it a warning is logged and the
 * child reads zeros where pages were missing). The child must not call
 * thaw_* on its copy of the handle. vfork and posix_spawn are unaffected.
 */
THAW_API int thaw_restore_start(struct thaw_snapshot *snap, const struct thaw_restore_opts *opts,
				struct thaw_restore **out);
/*
 * Serve memory that another process owns: uffd is a userfaultfd it
 * created, negotiated (UFFDIO_API) and registered in MISSING mode over the
 * n mappings (e.g. received with SCM_RIGHTS). The restore takes ownership
 * of uffd in every case (closed on failure). If the creator enabled them,
 * REMOVE (pages read as zeros from then on, never snapshot data), UNMAP,
 * REMAP (followed) and FORK (the child is served from the same snapshot
 * with its own state) events are handled. Mappings must be page aligned,
 * inside the snapshot and overlap neither in addresses nor in offsets; a
 * bad one fails with -EINVAL and a logged reason naming it. When every
 * page is in, the ranges are unregistered. thaw_restore_wait, _stats and
 * _free work as for thaw_restore_start; thaw_restore_region_addr gives NULL.
 */
THAW_API int thaw_restore_attach(struct thaw_snapshot *snap, int uffd,
				 const struct thaw_mapping *maps, size_t n,
				 const struct thaw_restore_opts *opts, struct thaw_restore **out);
/*
 * Keep up to `bytes` of decoded chunks in memory, shared by every restore
 * of snap: a chunk one restore fetched and decoded is installed into the
 * others without reading the store again. Set it before the first restore
 * starts (restores read the setting without a lock); 0 (the default)
 * keeps none. Returns 0, -EBUSY if a cache is set already, or -ENOMEM.
 */
THAW_API int thaw_snapshot_set_cache(struct thaw_snapshot *snap, uint64_t bytes);
/* Counters of snap's cache (all zero without one). */
THAW_API int thaw_snapshot_cache_stats(const struct thaw_snapshot *snap,
				       struct thaw_cache_stats *st);
/* Address where region i lives in this process, or NULL if out of range. */
THAW_API void *thaw_restore_region_addr(const struct thaw_restore *r, size_t i);
/*
 * Wait until every page is resident. Returns 0 when resident,
 * -ETIMEDOUT if timeout_ms passed first (negative timeout: wait forever),
 * -THAW_E_POISONED once complete if some chunks were poisoned,
 * -THAW_E_UNINSTALLED if some could be neither installed nor poisoned, or
 * the error that stopped the restore. An attached restore also waits for its
 * target's forked children, even when the target itself failed or went
 * away (-ETIMEDOUT while one is still being served); an in-process one
 * only for this process's memory (thaw_restore_free finishes the
 * children's).
 */
THAW_API int thaw_restore_wait(struct thaw_restore *r, int timeout_ms);
/* Snapshot of the counters; safe to call while the restore runs. */
THAW_API int thaw_restore_stats(const struct thaw_restore *r, struct thaw_stats *st);
/*
 * Start the background pass now, even for a restore started with
 * THAW_RESTORE_NO_BACKGROUND, and for the children of an attached restore
 * (forked targets, present and later ones); returns at once. For a target
 * that registers its ranges after handing over its uffd (CRIU): attach
 * with THAW_RESTORE_NO_BACKGROUND to serve faults at once, call this when
 * every range is registered. 0, or -EINVAL for NULL.
 */
THAW_API int thaw_restore_populate(struct thaw_restore *r);
/*
 * Finish population (fetching whatever is still missing, for forked
 * children too), stop the manager thread and free the handle. The memory
 * stays mapped, fully populated, and belongs to the caller (munmap it when
 * done).
 */
THAW_API void thaw_restore_free(struct thaw_restore *r);
/*
 * End the restore now, without fetching what is missing: every chunk not
 * yet installed is poisoned (touching it raises SIGBUS), resident pages
 * stay, and the ranges are unregistered (the memory costs nothing more).
 * Returns 0 once the manager and decode threads have ended (-EINVAL for
 * NULL); forked children are stopped the same way. A restore already
 * resident is left as it is. thaw_restore_wait then returns -ECANCELED
 * (0 if it was resident); the handle stays the caller's, for
 * thaw_restore_stats and thaw_restore_free (which returns at once). Not
 * concurrently with thaw_restore_free on the same handle.
 */
THAW_API int thaw_restore_stop(struct thaw_restore *r);

/*
 * Create a snapshot file at path. Regions are added, then thaw_writer_close
 * reads, chunks, compresses (on opts->threads threads) and writes them.
 * *out is owned by the caller until thaw_writer_close or thaw_writer_abort.
 */
THAW_API int thaw_writer_open(const char *path, const struct thaw_writer_opts *opts,
			      struct thaw_writer **out);
THAW_API int thaw_writer_add_region(struct thaw_writer *w, const struct thaw_region_desc *desc);
/*
 * Add every readable mapping of process pid (read from /proc/PID/maps;
 * pages /proc/PID/pagemap shows were never populated are recorded as zero
 * without being read). The caller keeps the process stopped until
 * thaw_writer_close returns. Returns the number of regions added.
 */
THAW_API int thaw_writer_add_process(struct thaw_writer *w, pid_t pid, unsigned flags);
/* Write the snapshot and free the writer (also on failure, leaving no file). */
THAW_API int thaw_writer_close(struct thaw_writer *w);
/* Discard the writer and any partial file. */
THAW_API void thaw_writer_abort(struct thaw_writer *w);

/*
 * First-touch traces. A trace lists what a run touched first, in order:
 * page addresses (recorded by a restore, as source addresses, or from the
 * kernel's side by `thaw trace`) or chunk ids of one snapshot. The file
 * format is a text file, one record a line (README, "Working-set prefetch"):
 *
 *   thaw-trace 1
 *   snapshot <32 hex digits>      whose chunk ids (or recorded pages) these are;
 *                                 required with chunk records
 *   <t_us> chunk <id>
 *   <t_us> page 0x<addr> <tid>
 *
 * t_us counts from the start of the run. Lines starting with '#' are
 * comments. A trace is not thread-safe: one writer at a time.
 */
/* An empty trace into *out (free with thaw_trace_free). 0 or -ENOMEM. */
THAW_API int thaw_trace_new(struct thaw_trace **out);
struct thaw_trace_opts {
	size_t sz;
	char *err_buf; /* as in thaw_open_opts */
	size_t err_buf_size;
};
/*
 * Read a trace file into *out (free with thaw_trace_free). A malformed file
 * fails with -EINVAL and a message naming the line and what was wrong in
 * opts->err_buf. opts may be NULL.
 */
THAW_API int thaw_trace_load(const char *path, const struct thaw_trace_opts *opts,
			     struct thaw_trace **out);
/* Write t to path (through a temporary file and rename). 0 or -errno. */
THAW_API int thaw_trace_save(const struct thaw_trace *t, const char *path);
/*
 * Name the snapshot (thaw_snapshot_info.digest) whose chunk ids or pages the
 * trace holds. 0, or -EINVAL when digest is not 32 hex digits.
 */
THAW_API int thaw_trace_set_snapshot(struct thaw_trace *t, const char *digest);
/* The snapshot digest, or NULL when the trace names none. Owned by t. */
THAW_API const char *thaw_trace_snapshot(const struct thaw_trace *t);
/* Append a record (checked against a snapshot only by thaw_optimize). 0 or -ENOMEM. */
THAW_API int thaw_trace_add_chunk(struct thaw_trace *t, uint64_t t_us, uint64_t chunk);
THAW_API int thaw_trace_add_page(struct thaw_trace *t, uint64_t t_us, uint64_t addr, uint32_t tid);
/* Number of records. */
THAW_API size_t thaw_trace_count(const struct thaw_trace *t);
THAW_API void thaw_trace_free(struct thaw_trace *t);

struct thaw_optimize_opts {
	size_t sz;
	/* Names of the traces for messages (e.g. their files), one per trace; may be NULL. */
	const char *const *trace_names;
	char *err_buf; /* as in thaw_open_opts */
	size_t err_buf_size;
	/* Called on the calling thread as the data is written: done and total
	 * count stored bytes (frames and chunks), not raw memory. */
	thaw_progress_fn progress;
	void *progress_ctx;
};

struct thaw_optimize_result {
	size_t sz;
	uint64_t chunks_ordered; /* entries of the prefetch order written */
	uint64_t stored_bytes;	 /* length of the working set's range at the front of the data */
	uint64_t pages_ignored;	 /* page records outside every region */
	char digest[33];	 /* the new snapshot's digest */
	uint64_t ws_pages;	 /* stored pages the page records name, packed in frames */
	uint64_t ws_frames;
	uint64_t frame_bytes;	/* the frames' stored bytes (part of stored_bytes) */
	uint64_t ws_zero_pages; /* zero pages the page records name: listed, nothing stored */
};

/*
 * Write a copy of snap to out_path (a local file, replaced atomically)
 * whose chunk data starts with the chunks the traces touched, in
 * first-touch order (several traces merge by earliest touch, ties by trace
 * order), followed by the rest in address order, and which carries that
 * order as its prefetch order. Page records also name the working set page
 * by page: those pages (zero pages aside) are stored once more, in
 * first-touch order, packed into zstd frames of up to 64 pages at the very
 * front of the data, which a restore streams and installs before anything
 * else; the zero pages they name are listed, and a restore puts them in as
 * zero pages from its start. Memory content, addresses and chunk ids are
 * unchanged; chunks' stored bytes are copied, not recompressed; the digest
 * changes.
 * Chunk records must come from snap (its digest, ids in range); page records
 * are mapped through the recorded region addresses. A trace that does not
 * fit is refused with -EINVAL and a message naming it. res may be NULL.
 */
THAW_API int thaw_optimize(struct thaw_snapshot *snap, const struct thaw_trace *const *traces,
			   size_t ntraces, const char *out_path,
			   const struct thaw_optimize_opts *opts, struct thaw_optimize_result *res);

/*
 * Serve the given ranges of this process's memory over HTTP as a live
 * thaw v1 snapshot (chunks RAW or ZERO, no chunk hashes recorded), so that
 * thaw_snapshot_open on thaw_export_url() restores it like any other: a
 * post-copy migration source. Zero pages are found from the page tables
 * (/proc/self/pagemap) or the memfd's holes without reading them. The
 * export freezes nothing: the caller keeps the memory unchanged while it
 * runs. Regions must ascend without overlap. *out is owned by the caller
 * (thaw_export_stop). Errors: -EINVAL with a message naming the region and
 * what is wrong (opts->err_buf and the log), -errno from listening.
 */
THAW_API int thaw_export_start(const struct thaw_export_region *regions, size_t n,
			       const struct thaw_export_opts *opts, struct thaw_export **out);
/* "http://ADDR:PORT/thaw.snap"; owned by the export. */
THAW_API const char *thaw_export_url(const struct thaw_export *exp);
/*
 * Wait until every data chunk has been sent in full at least once (a
 * destination then holds or has received every page). 0, or -ETIMEDOUT
 * after timeout_ms (negative: wait forever).
 */
THAW_API int thaw_export_wait(struct thaw_export *exp, int timeout_ms);
/* A consistent copy of the export's counters into *st. 0, or -EINVAL for NULL. */
THAW_API int thaw_export_stats(const struct thaw_export *exp, struct thaw_export_stats *st);
/*
 * Stop serving and free the export. Returns -EBUSY (and keeps serving)
 * while some data chunk was never sent in full, since a destination may
 * still need it, unless force is nonzero. NULL is a no-op.
 */
THAW_API int thaw_export_stop(struct thaw_export *exp, int force);

/*
 * CRIU. thaw_criu_import turns a CRIU 4.x image dir (criu dump -D DIR) into
 * a snapshot of its tasks' lazy memory: in every private anonymous VMA that
 * `criu restore --lazy-pages` registers with a task's userfaultfd, the span
 * from the first to the last page flagged lazy in the pagemap becomes a
 * region named "pid PID [heap]", "pid PID [stack]" or
 * "pid PID anon 0xSTART-0xEND" (the VMA), zeros in its holes; the rest of
 * the VMA was never dumped and is served as zero pages
 * (as every restore answers a fault outside its mappings). Tasks share addresses, so a region's recorded
 * address is the VMA's start with the task's index in pstree.img in bits
 * 48-63 (the low 48 bits are the address in the task).
 */
struct thaw_criu_import_opts {
	size_t sz;
	/*
	 * When set: write a copy of the image dir here (created if missing) that
	 * `criu restore --lazy-pages` accepts, whose pages images hold only the
	 * non-lazy pages and whose pagemaps mark the lazy entries not present
	 * (and in a parent dump there is none of, so that a restore without
	 * --lazy-pages fails rather than read other pages in their place). It
	 * restores only with a lazy-pages daemon serving the snapshot.
	 */
	const char *strip_dir;
	uint32_t chunk_size; /* as in thaw_writer_opts */
	int level;
	int threads;
	thaw_progress_fn progress;
	void *progress_ctx;
	thaw_log_fn log_fn;
	void *log_ctx;
	char *err_buf; /* as in thaw_open_opts: names the file and field refused */
	size_t err_buf_size;
};

struct thaw_criu_import_result {
	size_t sz;
	uint64_t tasks;
	uint64_t regions;
	uint64_t raw_bytes;	    /* the regions' length, holes included */
	uint64_t lazy_pages;	    /* pages moved into the snapshot */
	uint64_t pages_kept;	    /* non-lazy pages criu restore reads itself */
	uint64_t pages_image_bytes; /* the tasks' pages images read */
	uint64_t stripped_bytes;    /* the pages images written to strip_dir */
};

/*
 * Read img_dir (inventory, pstree, mm-PID, pagemap-PID, pages-N) and write
 * the snapshot at snap_path (replaced; as thaw_writer_close writes it:
 * zero pages, identical chunks stored once, compression on every core).
 * Anything not understood is refused with -EINVAL and a message naming the
 * file and field; pagemap entries in a parent dump (incremental) with
 * -ENOTSUP naming the entry. res may be NULL.
 */
THAW_API int thaw_criu_import(const char *img_dir, const char *snap_path,
			      const struct thaw_criu_import_opts *opts,
			      struct thaw_criu_import_result *res);
/*
 * The mappings (as for thaw_restore_attach) of task pid in a snapshot
 * thaw_criu_import wrote: up to n into maps. Returns how many the task has
 * (0 if none), or -EINVAL.
 */
THAW_API int thaw_criu_task_mappings(const struct thaw_snapshot *snap, pid_t pid,
				     struct thaw_mapping *maps, size_t n);
struct thaw_criu_check_opts {
	size_t sz;
	char *err_buf; /* as in thaw_open_opts */
	size_t err_buf_size;
};
/*
 * Check that snap (written by thaw_criu_import) fits the dump in img_dir
 * (the dir criu restore reads, stripped or not): every region belongs to a
 * task of pstree.img and lies in one of its lazy VMAs (mm-PID.img); a
 * snapshot of another dump would serve its bytes. 0, or -EINVAL with the
 * first difference in opts->err_buf, or the error reading the images.
 * opts may be NULL.
 */
THAW_API int thaw_criu_check(const struct thaw_snapshot *snap, const char *img_dir,
			     const struct thaw_criu_check_opts *opts);
/*
 * Serve one task of `criu restore --lazy-pages`: uffd is the userfaultfd
 * criu restore sent for pid (lazy-pages.socket: the pid as an int, then
 * the fd by SCM_RIGHTS), registered by the task over its lazy VMAs.
 * The task registers its ranges after sending the uffd and may fault
 * before criu restore sends "restore finished" (0x52535446): attach when
 * the uffd arrives with THAW_RESTORE_NO_BACKGROUND, so faults are served
 * at once, and call thaw_restore_populate at "restore finished". Events as
 * in thaw_restore_attach. Takes
 * ownership of uffd in every case. -ENOENT when the snapshot holds no
 * memory of pid (it had no lazy pages; its uffd is closed).
 */
THAW_API int thaw_criu_attach(struct thaw_snapshot *snap, pid_t pid, int uffd,
			      const struct thaw_restore_opts *opts, struct thaw_restore **out);

#ifdef __cplusplus
}
#endif
#endif /* THAW_H */
