/* SPDX-License-Identifier: MIT */
/*
 * `thaw serve --metrics ADDR`: a small HTTP endpoint answering GET /metrics
 * in the Prometheus text exposition format (version 0.0.4), on its own
 * thread. The serve loop owns every figure; it publishes a copy after each
 * turn (cli_metrics_publish) and reports each client that ends
 * (cli_metrics_client_ended), so the endpoint never touches a restore and a
 * slow scraper never holds up a client.
 */
#ifndef THAW_CLI_METRICS_H
#define THAW_CLI_METRICS_H

#include "thaw.h"

#include <stddef.h>
#include <stdint.h>

struct cli_metrics;

/* The daemon-wide figures of --json-stats. */
struct cli_metrics_daemon {
	uint64_t uptime_ms;
	uint64_t accepted, refused, served, ended_early;
	uint64_t active; /* clients with a restore running */
	struct thaw_cache_stats cache;
};

/* One connected client with a restore running. */
struct cli_metrics_client {
	unsigned id;
	pid_t pid;
	struct thaw_stats st;
};

/*
 * Listen on addr: a Unix socket path (anything with a '/'; an old socket
 * there is replaced) or IPv4:PORT (port 0 picks a free one), and start the
 * thread. Call with the daemon's signals blocked, so the thread inherits
 * the mask. On failure prints why (as "thaw serve: ...") and returns -errno.
 */
int cli_metrics_start(const char *addr, struct cli_metrics **out);
/* Where it listens: the path, or "127.0.0.1:PORT" with the port chosen. Owned by m. */
const char *cli_metrics_addr(const struct cli_metrics *m);
/* Replace the published view with these figures (copied). */
void cli_metrics_publish(struct cli_metrics *m, const struct cli_metrics_daemon *d,
			 const struct cli_metrics_client *c, size_t n);
/*
 * Client id ended with these final counters: they move into the daemon-wide
 * sums, and its per-client series disappear.
 */
void cli_metrics_client_ended(struct cli_metrics *m, unsigned id, const struct thaw_stats *st);
/* Stop the thread, close the socket (and remove a Unix socket file). NULL is a no-op. */
void cli_metrics_stop(struct cli_metrics *m);

#endif
