/* SPDX-License-Identifier: MIT */
#include "cli_util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

void cli_err(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "thaw%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", msg);
}

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "thaw%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", msg);
	fprintf(stderr, "Try 'thaw%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
	return CLI_USAGE;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -EINVAL;
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			shift = 10;
			break;
		case 'M':
			shift = 20;
			break;
		case 'G':
			shift = 30;
			break;
		case 'T':
			shift = 40;
			break;
		case 'B':
			break;
		default:
			return -EINVAL;
		}
		if (shift) {
			end++;
			if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0)
				end += strlen(end);
		} else {
			end++; /* a bare "B" */
		}
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_chunk_size(const char *cmd, const char *arg, uint32_t *out)
{
	uint64_t u;
	if (cli_parse_size(arg, &u) || u < 4096 || u > (2u << 20) || (u & (u - 1)))
		return cli_usage_err(
			cmd, "bad --chunk-size '%s': want a power of two from 4K to 2M", arg);
	*out = (uint32_t)u;
	return 0;
}

int cli_parse_level(const char *cmd, const char *arg, int *out)
{
	long v;
	if (cli_parse_int(arg, 1, 19, &v))
		return cli_usage_err(cmd, "bad --level '%s': want 1 to 19", arg);
	*out = (int)v;
	return 0;
}

int cli_parse_threads(const char *cmd, const char *arg, int *out)
{
	long v;
	if (cli_parse_int(arg, 1, 1024, &v))
		return cli_usage_err(cmd, "bad --threads '%s': want 1 to 1024", arg);
	*out = (int)v;
	return 0;
}

const char *cli_fmt_ns(uint64_t ns, char *buf, size_t len)
{
	static const char *const unit[] = { "ns", "us", "ms", "s" };
	double v = (double)ns;
	int u = 0;
	while (v >= 1000 && u < 3) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, "%.*f %s", u == 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2, v, unit[u]);
	return buf;
}

const char *cli_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
	return buf;
}

const char *cli_fmt_prot(int prot, char buf[4])
{
	buf[0] = (prot & PROT_READ) ? 'r' : '-';
	buf[1] = (prot & PROT_WRITE) ? 'w' : '-';
	buf[2] = (prot & PROT_EXEC) ? 'x' : '-';
	buf[3] = 0;
	return buf;
}

const char *cli_chunk_kind_name(enum thaw_chunk_kind k)
{
	switch (k) {
	case THAW_CHUNK_ZERO:
		return "zero";
	case THAW_CHUNK_RAW:
		return "raw";
	case THAW_CHUNK_ZSTD:
		return "zstd";
	case THAW_CHUNK_DUP:
		return "dup";
	default:
		return "unknown";
	}
}

uint64_t cli_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cli_grow(void **p, size_t *cap, size_t n, size_t sz)
{
	if (n <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	while (c < n)
		c *= 2;
	void *q = realloc(*p, c * sz);
	if (!q)
		return -ENOMEM;
	memset((char *)q + *cap * sz, 0, (c - *cap) * sz);
	*p = q;
	*cap = c;
	return 0;
}

int cli_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- log sink ---- */

void cli_log_init(struct cli_log *l)
{
	atomic_init(&l->mute_errors, 0);
	l->max_level = THAW_LOG_WARN;
	const char *env = getenv("THAW_LOG");
	if (!env)
		return;
	if (!strcasecmp(env, "error"))
		l->max_level = THAW_LOG_ERROR;
	else if (!strcasecmp(env, "info"))
		l->max_level = THAW_LOG_INFO;
	else if (!strcasecmp(env, "debug"))
		l->max_level = THAW_LOG_DEBUG;
}

void cli_log_fn(enum thaw_log_level level, const char *msg, void *ctx)
{
	struct cli_log *l = ctx;
	if ((int)level > l->max_level)
		return;
	if (level == THAW_LOG_ERROR && atomic_load(&l->mute_errors))
		return;
	static const char *const tag[] = { "", "warning: ", "info: ", "debug: " };
	/* One fprintf per line so lines from the manager thread stay whole. */
	fprintf(stderr, "thaw: %s%s\n", tag[level <= THAW_LOG_DEBUG ? level : 0], msg);
}

void cli_restore_release(struct thaw_restore *r, const struct thaw_snapshot *s)
{
	if (!r)
		return;
	size_t n = thaw_snapshot_region_count(s);
	void **addr = calloc(n ? n : 1, sizeof(*addr));
	uint64_t *len = calloc(n ? n : 1, sizeof(*len));
	for (size_t i = 0; addr && len && i < n; i++) {
		struct thaw_region_info ri = { .sz = sizeof(ri) };
		addr[i] = thaw_restore_region_addr(r, i);
		len[i] = thaw_snapshot_region(s, i, &ri) == 0 ? ri.len : 0;
	}
	thaw_restore_free(r);
	for (size_t i = 0; addr && len && i < n; i++)
		if (addr[i] && len[i])
			munmap(addr[i], len[i]);
	free(addr);
	free(len);
}

/* ---- JSON ---- */

void cli_json_init(struct cli_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

int cli_json_file_begin(struct cli_json *j, const char *cmd, const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		int err = -errno;
		cli_err(cmd, "cannot write %s: %s", tmp, strerror(-err));
		return err;
	}
	cli_json_init(j, f);
	cli_json_obj_begin(j, NULL);
	return 0;
}

int cli_json_file_end(struct cli_json *j, const char *cmd, const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	cli_json_obj_end(j);
	fputc('\n', j->f);
	int err = fclose(j->f) || rename(tmp, path) ? -errno : 0;
	if (err)
		cli_err(cmd, "cannot write %s: %s", path, strerror(-err));
	return err;
}

static void json_indent(struct cli_json *j)
{
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

static void json_write_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Separator, newline and indentation before a value, then its key. */
static void json_item(struct cli_json *j, const char *key)
{
	if (j->depth > 0) {
		if (j->has_items[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		j->has_items[j->depth] = true;
		json_indent(j);
	}
	if (key) {
		json_write_str(j->f, key);
		fputs(": ", j->f);
	}
}

static void json_open(struct cli_json *j, const char *key, char c)
{
	json_item(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < CLI_JSON_DEPTH)
		j->depth++;
	j->has_items[j->depth] = false;
}

static void json_close(struct cli_json *j, char c)
{
	bool had = j->has_items[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (had) {
		fputc('\n', j->f);
		json_indent(j);
	}
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void cli_json_obj_begin(struct cli_json *j, const char *key)
{
	json_open(j, key, '{');
}

void cli_json_obj_end(struct cli_json *j)
{
	json_close(j, '}');
}

void cli_json_arr_begin(struct cli_json *j, const char *key)
{
	json_open(j, key, '[');
}

void cli_json_arr_end(struct cli_json *j)
{
	json_close(j, ']');
}

void cli_json_str(struct cli_json *j, const char *key, const char *val)
{
	json_item(j, key);
	if (val)
		json_write_str(j->f, val);
	else
		fputs("null", j->f);
}

void cli_json_u64(struct cli_json *j, const char *key, uint64_t val)
{
	json_item(j, key);
	fprintf(j->f, "%llu", (unsigned long long)val);
}

void cli_json_i64(struct cli_json *j, const char *key, int64_t val)
{
	json_item(j, key);
	fprintf(j->f, "%lld", (long long)val);
}

void cli_json_f64(struct cli_json *j, const char *key, double val, int decimals)
{
	json_item(j, key);
	if (isnan(val) || isinf(val))
		fputs("null", j->f);
	else
		fprintf(j->f, "%.*f", decimals, val);
}

void cli_json_bool(struct cli_json *j, const char *key, bool val)
{
	json_item(j, key);
	fputs(val ? "true" : "false", j->f);
}

void cli_json_null(struct cli_json *j, const char *key)
{
	json_item(j, key);
	fputs("null", j->f);
}

int cli_bad_option(const char *cmd, int opt, char **argv)
{
	if (opt == ':')
		return cli_usage_err(cmd, "option '%s' needs a value", argv[optind - 1]);
	return cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
}

int cli_snap_operand(const char *cmd, int argc, char **argv, const char *what, const char **uri)
{
	if (optind >= argc)
		return cli_usage_err(cmd, "missing SNAP (%s)", what);
	if (optind + 1 < argc)
		return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind + 1]);
	*uri = argv[optind];
	return 0;
}
