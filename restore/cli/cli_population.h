/* SPDX-License-Identifier: MIT */
/*
 * `thaw bench --population`: how many bytes are in place over time, sampled
 * on a thread of its own every millisecond (the interval doubles when the
 * buffer fills, so a long run keeps its whole shape), for the population
 * curves `make bench` plots.
 */
#ifndef THAW_CLI_POPULATION_H
#define THAW_CLI_POPULATION_H

#include "cli_util.h"

#include <pthread.h>

#define CLI_POP_MAX 2048

struct cli_pop {
	pthread_t tid;
	bool running;
	atomic_bool stop;
	uint64_t t0_ns, period_ns;
	/* Bytes in place now; called on the sampler thread. */
	uint64_t (*bytes)(void *ctx);
	void *ctx;
	uint32_t n;
	uint64_t t_ns[CLI_POP_MAX], b[CLI_POP_MAX];
};

/* Start sampling; times count from t0_ns. 0 or -errno (p is then inert). */
int cli_pop_start(struct cli_pop *p, uint64_t t0_ns, uint64_t (*bytes)(void *), void *ctx);
/* Take a last sample and stop. Accepts a pop that never started. */
void cli_pop_stop(struct cli_pop *p);
/* The samples as "population": [{"t_ms": .., "bytes": ..}, ...]. */
void cli_pop_json(const struct cli_pop *p, struct cli_json *j);

#endif
