/* SPDX-License-Identifier: MIT */
/*
 * The HTTP options every subcommand that takes SNAP accepts (SNAP may be an
 * http(s):// URL): --mirror, --header, --cacert, --insecure, --aws-sigv4.
 * A subcommand adds CLI_HTTP_LONGOPTS to its getopt_long table, hands each
 * option it does not know to cli_http_option, prints CLI_HTTP_HELP in its
 * --help, and passes the result to thaw_snapshot_open through
 * cli_http_apply. Headers can also come from THAW_HTTP_HEADERS (one
 * "Name: value" per line), which the library reads itself, so secrets need
 * not appear on a command line.
 */
#ifndef THAW_CLI_HTTP_H
#define THAW_CLI_HTTP_H

#include <getopt.h>
#include <stddef.h>

#include "thaw.h"

#include "cli_util.h"

#define CLI_HTTP_MAX 32 /* mirrors, and headers, each */

/* getopt_long values of the options, clear of any short option letter. */
enum {
	CLI_OPT_MIRROR = 0x4800,
	CLI_OPT_HEADER,
	CLI_OPT_CACERT,
	CLI_OPT_INSECURE,
	CLI_OPT_AWS_SIGV4,
};

/* clang-format off */
#define CLI_HTTP_LONGOPTS                                                 \
	{"mirror", required_argument, NULL, CLI_OPT_MIRROR},              \
	{"header", required_argument, NULL, CLI_OPT_HEADER},              \
	{"cacert", required_argument, NULL, CLI_OPT_CACERT},              \
	{"insecure", no_argument, NULL, CLI_OPT_INSECURE},                \
	{"aws-sigv4", required_argument, NULL, CLI_OPT_AWS_SIGV4}
/* clang-format on */

#define CLI_HTTP_HELP                                                                              \
	"HTTP(S) snapshots:\n"                                                                     \
	"  --mirror URL        another URL of the same snapshot, tried in turn when the\n"         \
	"                      first fails (repeatable)\n"                                         \
	"  --header 'N: V'     send this request header (repeatable); THAW_HTTP_HEADERS\n"         \
	"                      (one per line) keeps secrets out of the process list\n"             \
	"  --cacert FILE       CA bundle to verify https servers with\n"                           \
	"  --insecure          do not verify the https server's certificate\n"                     \
	"  --aws-sigv4 P:R:S   sign requests with AWS SigV4 (e.g. aws:us-east-1:s3); keys\n"       \
	"                      from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN\n"

struct cli_http {
	const char *mirrors[CLI_HTTP_MAX + 1]; /* NULL-terminated; strings borrowed from argv */
	size_t nmirrors;
	const char *headers[CLI_HTTP_MAX + 1];
	size_t nheaders;
	const char *cacert;
	int insecure;
	const char *aws_sigv4;
};

/*
 * Take getopt_long's opt (and optarg) if it is one of the HTTP options.
 * Returns 1 when it was (and is recorded in h), 0 when it is not an HTTP
 * option, -1 after printing a usage error for cmd (exit with CLI_USAGE).
 */
int cli_http_option(struct cli_http *h, const char *cmd, int opt, const char *arg);
/*
 * The tail every SNAP-taking subcommand's option switch shares: an option
 * missing its value, the HTTP options, an unknown option. Returns 0 to go
 * on, or CLI_USAGE after printing the usage error.
 */
int cli_other_option(struct cli_http *h, const char *cmd, int opt, char **argv);
/* Point the open options at h's settings; h must outlive the open call. */
void cli_http_apply(const struct cli_http *h, struct thaw_open_opts *oo);

/*
 * Open a snapshot with the log sink installed and, for URLs, the HTTP
 * settings from the command line (http may be NULL); on failure print
 * "thaw CMD: cannot open URI: why" and return the error. *log is set up
 * here (cli_log_init) and must outlive the snapshot.
 */
int cli_open_snapshot(const char *cmd, const char *uri, struct cli_log *log,
		      const struct cli_http *http, struct thaw_snapshot **out);

#endif
