/* SPDX-License-Identifier: MIT */
/*
 * Real HTTP servers for the tests, all on loopback and all stopped when
 * the case ends (they live in the case's process group):
 *   - Debian's nginx with its own prefix, config and document root;
 *   - tests/faulty_http.py, a small server that misbehaves on request;
 *   - s3rver (from the npm registry, installed by scripts/deps.sh), an
 *     S3-compatible store that checks SigV4 signatures.
 * A missing server makes the case skip, naming what is missing.
 */
#ifndef THAW_TESTS_HTTPD_H
#define THAW_TESTS_HTTPD_H

#include <stddef.h>
#include <sys/types.h>

struct httpd {
	pid_t pid; /* nginx master, or -1 when stopped */
	int port;
	char prefix[512]; /* nginx's own prefix: config, logs, temp dirs */
	char root[512];	  /* document root: tests write snapshots here */
	char base[64];	  /* "http://127.0.0.1:PORT" */
};

/*
 * Start nginx on a free loopback port serving dir/www from prefix dir/nginx
 * (both created). Returns 0 once it answers; skips the case if nginx is not
 * installed; fails it if nginx does not come up.
 */
int httpd_start(struct httpd *h, const char *dir);
/* Stop it (fast shutdown) and wait for it to exit. */
void httpd_stop(struct httpd *h);
/* Start it again on the same port (after httpd_stop). */
int httpd_restart(struct httpd *h);
/* "http://127.0.0.1:PORT/path" in a static buffer, reused 24 of these calls later
 * (httpd_url, httpd_file and faulty_url share them). */
const char *httpd_url(const struct httpd *h, const char *path);
/* dir/www/name, where a test puts a file for nginx to serve (static, as httpd_url). */
const char *httpd_file(const struct httpd *h, const char *name);

/* tests/faulty_http.py serving root on a free loopback port. */
struct faulty {
	pid_t pid;
	int port;
	char base[64];
};

/* Start it with extra command-line arguments (may be ""); 0 once it answers. */
int faulty_start(struct faulty *f, const char *root, const char *args);
void faulty_stop(struct faulty *f);
/*
 * Send a control command (query string of /_ctl, e.g. "fault=503&count=3"),
 * returns 0 or -1; its reply body (JSON) goes to out when out_len > 0.
 */
int faulty_ctl(const struct faulty *f, const char *query, char *out, size_t out_len);
/* A counter from /_ctl?stats (e.g. "requests", "faults"), or -1. */
long faulty_stat(const struct faulty *f, const char *name);
const char *faulty_url(const struct faulty *f, const char *path);

/* An S3-compatible server (s3rver) that checks SigV4 signatures. */
struct s3server {
	pid_t pid;
	int port;
	char base[64];
};
#define S3_ACCESS_KEY "S3RVER"
#define S3_SECRET_KEY "S3RVER"

/* Start s3rver with an empty bucket named `bucket`; skips the case if it is not installed. */
int s3_start(struct s3server *s, const char *dir, const char *bucket);
void s3_stop(struct s3server *s);
/* Upload file at path as bucket/key, signed with the server's credentials. 0 or -1. */
int s3_put(const struct s3server *s, const char *bucket, const char *key, const char *path);

/* A loopback TCP port nobody listens on right now. */
int httpd_free_port(void);
/* Where the source tree is (for tests/faulty_http.py). */
const char *httpd_srcdir(void);

#endif
