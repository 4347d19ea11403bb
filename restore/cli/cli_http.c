/* SPDX-License-Identifier: MIT */
/* The HTTP options shared by the subcommands that open a snapshot, and the open itself. */
#include "cli_http.h"

#include <string.h>

#include "cli_util.h"

static int add(const char **list, size_t *n, const char *cmd, const char *what, const char *arg)
{
	if (*n >= CLI_HTTP_MAX) {
		cli_usage_err(cmd, "at most %d %s options", CLI_HTTP_MAX, what);
		return -1;
	}
	list[(*n)++] = arg;
	list[*n] = NULL;
	return 1;
}

int cli_http_option(struct cli_http *h, const char *cmd, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_MIRROR:
		if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8)) {
			cli_usage_err(cmd, "--mirror '%s': want an http:// or https:// URL", arg);
			return -1;
		}
		return add(h->mirrors, &h->nmirrors, cmd, "--mirror", arg);
	case CLI_OPT_HEADER: {
		const char *colon = strchr(arg, ':');
		if (!colon || colon == arg) {
			/* The value is not echoed: it may be a secret. */
			cli_usage_err(cmd, "--header: want 'Name: value'");
			return -1;
		}
		return add(h->headers, &h->nheaders, cmd, "--header", arg);
	}
	case CLI_OPT_CACERT:
		h->cacert = arg;
		return 1;
	case CLI_OPT_INSECURE:
		h->insecure = 1;
		return 1;
	case CLI_OPT_AWS_SIGV4:
		h->aws_sigv4 = arg;
		return 1;
	default:
		return 0;
	}
}

void cli_http_apply(const struct cli_http *h, struct thaw_open_opts *oo)
{
	oo->mirrors = h->nmirrors ? h->mirrors : NULL;
	oo->headers = h->nheaders ? h->headers : NULL;
	oo->cacert = h->cacert;
	oo->insecure = h->insecure;
	oo->aws_sigv4 = h->aws_sigv4;
}

int cli_other_option(struct cli_http *h, const char *cmd, int opt, char **argv)
{
	int taken = opt == ':' ? 0 : cli_http_option(h, cmd, opt, optarg);
	if (taken < 0)
		return CLI_USAGE;
	return taken ? 0 : cli_bad_option(cmd, opt, argv);
}

int cli_open_snapshot(const char *cmd, const char *uri, struct cli_log *log,
		      const struct cli_http *http, struct thaw_snapshot **out)
{
	char err[512] = "";
	struct thaw_open_opts oo = {
		.sz = sizeof(oo),
		.log_fn = cli_log_fn,
		.log_ctx = log,
		.err_buf = err,
		.err_buf_size = sizeof(err),
	};
	if (http)
		cli_http_apply(http, &oo);
	cli_log_init(log);
	atomic_store(&log->mute_errors, 1);
	int r = thaw_snapshot_open(uri, &oo, out);
	atomic_store(&log->mute_errors, 0);
	if (r < 0)
		cli_err(cmd, "cannot open %s: %s", uri, err[0] ? err : thaw_strerror(r));
	return r;
}
