/* SPDX-License-Identifier: MIT */
/*
 * The harness the thaw serve tests share: the daemon runs as
 * `build/thaw serve` in a child process, its clients are
 * build/examples/vmm_client processes, all files in the case's directory.
 * Every call fails the case (CHECK*) when a step does not work.
 */
#ifndef THAW_TESTS_SERVE_HARNESS_H
#define THAW_TESTS_SERVE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* The guest memory of the usual snapshot. */
#define SERVE_SNAP_BYTES (8u << 20)

/* A daemon's files and how it is started: listen_fd must be set (-1: none), zero is the
 * default for the other fields. */
struct serve_daemon {
	pid_t pid;
	char snap[400], sock[100], log[400], json[400];
	const char *uri;       /* what the daemon serves; NULL = snap */
	int listen_fd;	       /* >= 0: passed as fd 3 with LISTEN_FDS=1, no --socket */
	const char *notify;    /* NOTIFY_SOCKET, or NULL */
	const char *log_level; /* THAW_LOG for the daemon, or NULL to inherit it */
	bool log_append;       /* each start appends to the log rather than truncating it */
};

/*
 * A Firecracker-style memory file snapshot at path: one region of len bytes
 * recorded at address 0, filled by fixture_fill_mixed(seed). With raw, the
 * memory itself is written beside it first, as path.raw, for clients to
 * check against bytes thaw never touched.
 */
void serve_make_snapshot(const char *path, size_t len, uint64_t seed, bool raw);

/* d's files in the case's directory; the snapshot is made (as above) unless it exists. */
void serve_paths(struct serve_daemon *d, size_t len, uint64_t seed, bool raw);

/*
 * Start thaw serve on d (paths set) with --json-stats and the extra options
 * (may be NULL); stderr goes to d->log. With --socket, returns once the
 * socket exists; with listen_fd, at once (the caller waits for READY=1).
 * The caller keeps listen_fd.
 */
void serve_start(struct serve_daemon *d, const char *extra);

/* The daemon's log so far, in a static buffer overwritten by the next call. */
const char *serve_read_log(const struct serve_daemon *d);

/* SIGTERM; the daemon must exit 0 after finishing its clients. */
void serve_stop(struct serve_daemon *d);

/*
 * The shell command that runs vmm_client on d's socket and snapshot with
 * opts, with --image when the snapshot's raw memory is beside it. Written
 * to buf (len bytes), which is returned.
 */
const char *serve_client_cmd(char *buf, size_t len, const struct serve_daemon *d, const char *opts);

/* Run vmm_client to its end; returns its exit status, its output in out. */
int serve_client(const struct serve_daemon *d, char *out, size_t out_len, const char *opts);

/* A vmm_client in the background; with --pause-after it waits for a line on stdin. */
struct serve_bg {
	pid_t pid;
	FILE *from; /* its stdout */
	int to;	    /* its stdin */
};

void serve_bg_start(struct serve_bg *c, const struct serve_daemon *d, const char *opts);
/* Read the client's next line; it must contain want. */
void serve_bg_wait_line(struct serve_bg *c, const char *want);
/*
 * Send the client its "go" line and wait for it; returns its exit status
 * (128 + signal when killed). check_go: the line must be written (the
 * client is waiting for it); otherwise the client may have ended already.
 */
int serve_bg_finish(struct serve_bg *c, bool check_go);

#endif
