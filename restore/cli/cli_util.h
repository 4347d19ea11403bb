/* SPDX-License-Identifier: MIT */
/*
 * restore/cli/: the `thaw` command, one cli_NAME.c per subcommand, cli/trace/
 * its BPF fault tracer. The top of the house: it links the library but
 * includes only include/thaw.h and its own headers, so it cannot reach an
 * internal (hence its own clock, comparator and error printing).
 *
 * Helpers shared by the `thaw` command's subcommands: option values,
 * sizes, the log sink and a small JSON writer (the progress bar is cli_progress.h). The command
 * uses only include/thaw.h from the library.
 */
#ifndef THAW_CLI_UTIL_H
#define THAW_CLI_UTIL_H

#include "cli_progress.h"
#include "thaw.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of every subcommand. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* A subcommand: argv[0] is its name. Returns one of the statuses above. */
int cli_create(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_extract(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_optimize(int argc, char **argv);
int cli_trace(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_criu(int argc, char **argv);

/* "thaw CMD: message" on stderr. */
void cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the message and "Try 'thaw CMD --help'."; returns CLI_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Option values. Each returns 0, or -EINVAL when the text is not a whole
 * valid value (trailing junk, overflow, empty).
 */
/* Decimal, or hexadecimal with a 0x prefix. */
int cli_parse_u64(const char *s, uint64_t *out);
/* A byte count with an optional binary suffix: 4096, 64K, 2M, 1G, 64KiB. */
int cli_parse_size(const char *s, uint64_t *out);
/* A decimal int in [lo, hi]. */
int cli_parse_int(const char *s, long lo, long hi, long *out);

/*
 * The options of commands that write snapshots (--chunk-size, --level,
 * --threads), checked as thaw_writer_opts wants them. 0, or CLI_USAGE after
 * printing the usage error for cmd.
 */
int cli_parse_chunk_size(const char *cmd, const char *arg, uint32_t *out);
int cli_parse_level(const char *cmd, const char *arg, int *out);
int cli_parse_threads(const char *cmd, const char *arg, int *out);

/*
 * The default of a subcommand's option switch, for getopt_long with a
 * leading ':' in its optstring: prints "option needs a value" (opt ':') or
 * "unknown option" and returns CLI_USAGE.
 */
int cli_bad_option(const char *cmd, int opt, char **argv);
/*
 * The single SNAP operand after the options (what: what the snapshot is
 * for, for the message). 0, or CLI_USAGE after printing the usage error.
 */
int cli_snap_operand(const char *cmd, int argc, char **argv, const char *what, const char **uri);

/* Human-readable byte count ("1.50 GiB") into buf; returns buf. */
const char *cli_fmt_bytes(uint64_t n, char *buf, size_t len);
/* A duration to three significant digits ("512 ns", "32.8 us", "1.05 s") into buf; returns buf. */
const char *cli_fmt_ns(uint64_t ns, char *buf, size_t len);
/* "rwx" style text of PROT_* bits into a 4-byte buffer; returns buf. */
const char *cli_fmt_prot(int prot, char buf[4]);
const char *cli_chunk_kind_name(enum thaw_chunk_kind k);

/*
 * Grow the heap array *p (elements of size sz, capacity *cap) to hold at
 * least n, doubling from 64; new elements are zeroed. 0 or -ENOMEM (then
 * *p and *cap are unchanged). The library's THAW__GROW is out of reach.
 */
int cli_grow(void **p, size_t *cap, size_t n, size_t sz);
/* qsort comparator for uint64_t, ascending. */
int cli_cmp_u64(const void *a, const void *b);

/* CLOCK_MONOTONIC in ns: also bpf_ktime_get_ns()'s clock, which `thaw trace` relies on. */
uint64_t cli_now_ns(void);

/*
 * The log sink every subcommand installs. Errors and warnings go to stderr
 * as "thaw: ..."; info and debug lines only when THAW_LOG asks for them.
 * While `mute_errors` is set, error lines are dropped because the caller
 * is about to print the same text from an err_buf with more context.
 */
struct cli_log {
	atomic_int mute_errors;
	int max_level;
};
void cli_log_init(struct cli_log *l);
void cli_log_fn(enum thaw_log_level level, const char *msg, void *ctx);

/*
 * Free a restore and unmap its regions (they stay mapped after
 * thaw_restore_free and belong to the caller). Accepts NULL.
 */
void cli_restore_release(struct thaw_restore *r, const struct thaw_snapshot *s);

/*
 * A JSON writer with two-space indentation. Keys are given for members of
 * objects and NULL for array elements and the top-level value.
 */
#define CLI_JSON_DEPTH 16
struct cli_json {
	FILE *f;
	int depth;
	bool has_items[CLI_JSON_DEPTH];
};
void cli_json_init(struct cli_json *j, FILE *f);
void cli_json_obj_begin(struct cli_json *j, const char *key);
void cli_json_obj_end(struct cli_json *j);
void cli_json_arr_begin(struct cli_json *j, const char *key);
void cli_json_arr_end(struct cli_json *j);
void cli_json_str(struct cli_json *j, const char *key, const char *val);
void cli_json_u64(struct cli_json *j, const char *key, uint64_t val);
void cli_json_i64(struct cli_json *j, const char *key, int64_t val);
/* A number with `decimals` digits after the point; NaN/inf become null. */
void cli_json_f64(struct cli_json *j, const char *key, double val, int decimals);
void cli_json_bool(struct cli_json *j, const char *key, bool val);
void cli_json_null(struct cli_json *j, const char *key);
/*
 * A JSON file replaced whole (written to PATH.tmp, renamed at the end):
 * begin opens it and starts the top-level object; end closes both. Each
 * returns 0, or -errno after printing "thaw CMD: cannot write ...".
 */
int cli_json_file_begin(struct cli_json *j, const char *cmd, const char *path);
int cli_json_file_end(struct cli_json *j, const char *cmd, const char *path);

#endif
