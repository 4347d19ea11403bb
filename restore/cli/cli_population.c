/* SPDX-License-Identifier: MIT */
/* Population curves for `thaw bench --population`. */
#include "cli_population.h"

#include <errno.h>
#include <time.h>

static void sample(struct cli_pop *p)
{
	if (p->n == CLI_POP_MAX) {
		/* Full: keep every other sample and sample half as often from now on. */
		for (uint32_t i = 0; i < CLI_POP_MAX / 2; i++) {
			p->t_ns[i] = p->t_ns[2 * i];
			p->b[i] = p->b[2 * i];
		}
		p->n = CLI_POP_MAX / 2;
		p->period_ns *= 2;
	}
	p->t_ns[p->n] = cli_now_ns() - p->t0_ns;
	p->b[p->n++] = p->bytes(p->ctx);
}

static void *sampler_main(void *arg)
{
	struct cli_pop *p = arg;
	while (!atomic_load(&p->stop)) {
		sample(p);
		struct timespec ts = { 0, (long)p->period_ns };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int cli_pop_start(struct cli_pop *p, uint64_t t0_ns, uint64_t (*bytes)(void *), void *ctx)
{
	p->t0_ns = t0_ns;
	p->period_ns = 1000000;
	p->bytes = bytes;
	p->ctx = ctx;
	p->n = 0;
	/* The state as the work starts, here and not on the sampler thread: a small
	 * restore or decode can be over before that thread runs for the first time. */
	sample(p);
	atomic_init(&p->stop, false);
	int err = pthread_create(&p->tid, NULL, sampler_main, p);
	p->running = err == 0;
	return -err;
}

void cli_pop_stop(struct cli_pop *p)
{
	if (!p || !p->running)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->tid, NULL);
	p->running = false;
	sample(p); /* the state at the end, whatever the period */
}

void cli_pop_json(const struct cli_pop *p, struct cli_json *j)
{
	cli_json_arr_begin(j, "population");
	for (uint32_t i = 0; i < p->n; i++) {
		cli_json_obj_begin(j, NULL);
		cli_json_f64(j, "t_ms", (double)p->t_ns[i] / 1e6, 3);
		cli_json_u64(j, "bytes", p->b[i]);
		cli_json_obj_end(j);
	}
	cli_json_arr_end(j);
}
