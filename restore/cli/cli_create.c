/* SPDX-License-Identifier: MIT */
/* thaw create: write a snapshot of a raw memory file or of a live process. */
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char create_help[] =
	"Usage: thaw create -o SNAP --raw FILE --base ADDR [OPTIONS]\n"
	"       thaw create -o SNAP --pid PID [--leave-stopped] [OPTIONS]\n"
	"\n"
	"Write a snapshot file.\n"
	"  --raw FILE        one region holding FILE's bytes (a raw memory image such as a\n"
	"                    Firecracker memory file); its size must be a page multiple\n"
	"  --base ADDR       the region's recorded address (decimal or 0x hex, page aligned)\n"
	"  --name NAME       the region's name (default: the file name)\n"
	"  --pid PID         every readable mapping of a live process. The process is stopped\n"
	"                    with SIGSTOP while it is read and continued afterwards (also on\n"
	"                    failure), unless it was stopped already or --leave-stopped is given\n"
	"  --anon-only       with --pid: skip file-backed mappings\n"
	"  --leave-stopped   with --pid: do not send SIGCONT after a successful snapshot\n"
	"\n"
	"Options:\n"
	"  -o, --output SNAP     the snapshot to write (replaced if it exists)\n"
	"  --chunk-size N        bytes per chunk, a power of two from 4K to 2M (default 64K)\n"
	"  --level L             zstd level 1-19 (default 3)\n"
	"  --threads N           compression threads (default: online CPUs)\n"
	"  -q, --quiet           no progress bar\n"
	"  -h, --help            this text\n"
	"\n"
	"Prints one summary line: regions, raw and stored size, ratio, time and speed.\n"
	"A progress bar is drawn when stderr is a terminal (never into a pipe or a file).\n";

enum {
	OPT_RAW = 256,
	OPT_BASE,
	OPT_NAME,
	OPT_PID,
	OPT_ANON_ONLY,
	OPT_LEAVE_STOPPED,
	OPT_CHUNK,
	OPT_LEVEL,
	OPT_THREADS,
};

static const struct option create_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "base", required_argument, NULL, OPT_BASE },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "anon-only", no_argument, NULL, OPT_ANON_ONLY },
	{ "leave-stopped", no_argument, NULL, OPT_LEAVE_STOPPED },
	{ "chunk-size", required_argument, NULL, OPT_CHUNK },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

struct create_args {
	const char *out;
	const char *raw;
	const char *name;
	uint64_t base;
	bool have_base;
	pid_t pid;
	bool anon_only;
	bool leave_stopped;
	uint32_t chunk_size;
	int level;
	int threads;
	bool quiet;
};

/* The state letter of /proc/PID/stat (after the parenthesised name), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The name may contain spaces and parentheses; the last ')' ends it. */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* SIGSTOP pid and wait until the kernel reports it stopped. */
static int stop_process(pid_t pid, const char *cmd)
{
	if (kill(pid, SIGSTOP) < 0) {
		int e = -errno; /* before cli_err's stdio may change errno */
		cli_err(cmd, "cannot stop process %d: %s", (int)pid, strerror(-e));
		return e;
	}
	for (int i = 0; i < 5000; i++) {
		char s = proc_state(pid);
		if (s == 'T' || s == 't')
			return 0;
		if (s == 0 || s == 'Z' || s == 'X') {
			cli_err(cmd, "process %d exited while being stopped", (int)pid);
			return -ESRCH;
		}
		usleep(1000);
	}
	cli_err(cmd, "process %d did not stop within 5 s (state in /proc/%d/stat never became T)",
		(int)pid, (int)pid);
	return -ETIMEDOUT;
}

static int parse_create_args(int argc, char **argv, struct create_args *a)
{
	const char *cmd = "create";
	long v;
	int c;
	memset(a, 0, sizeof(*a));
	a->pid = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:hq", create_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			a->out = optarg;
			break;
		case 'q':
			a->quiet = true;
			break;
		case OPT_RAW:
			a->raw = optarg;
			break;
		case OPT_BASE:
			if (cli_parse_u64(optarg, &a->base))
				return cli_usage_err(
					cmd,
					"bad --base '%s': want an address, e.g. 0x7f0000000000",
					optarg);
			a->have_base = true;
			break;
		case OPT_NAME:
			a->name = optarg;
			break;
		case OPT_PID:
			if (cli_parse_int(optarg, 1, INT32_MAX, &v))
				return cli_usage_err(cmd, "bad --pid '%s': want a process id",
						     optarg);
			a->pid = (pid_t)v;
			break;
		case OPT_ANON_ONLY:
			a->anon_only = true;
			break;
		case OPT_LEAVE_STOPPED:
			a->leave_stopped = true;
			break;
		case OPT_CHUNK:
			if (cli_parse_chunk_size(cmd, optarg, &a->chunk_size))
				return CLI_USAGE;
			break;
		case OPT_LEVEL:
			if (cli_parse_level(cmd, optarg, &a->level))
				return CLI_USAGE;
			break;
		case OPT_THREADS:
			if (cli_parse_threads(cmd, optarg, &a->threads))
				return CLI_USAGE;
			break;
		case 'h':
			fputs(create_help, stdout);
			return -1;
		default:
			return cli_bad_option(cmd, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
	if (!a->out)
		return cli_usage_err(cmd, "missing -o SNAP (the snapshot to write)");
	if (!a->raw && a->pid < 0)
		return cli_usage_err(cmd,
				     "say what to snapshot: --raw FILE --base ADDR, or --pid PID");
	if (a->raw && a->pid >= 0)
		return cli_usage_err(cmd, "--raw and --pid cannot be combined");
	if (a->raw && !a->have_base)
		return cli_usage_err(cmd, "--raw needs --base ADDR (the region's address)");
	if (!a->raw && (a->have_base || a->name))
		return cli_usage_err(cmd, "--base and --name go with --raw");
	if (a->pid < 0 && (a->leave_stopped || a->anon_only))
		return cli_usage_err(cmd, "--leave-stopped and --anon-only go with --pid");
	long page = sysconf(_SC_PAGESIZE);
	if (a->raw && (a->base % (uint64_t)page))
		return cli_usage_err(cmd, "--base 0x%llx is not aligned to the page size (%ld)",
				     (unsigned long long)a->base, page);
	return 0;
}

static int add_raw(struct thaw_writer *w, const struct create_args *a, int *fd_out, char *err,
		   size_t err_len)
{
	int fd = open(a->raw, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open %s: %s", a->raw, strerror(errno));
		return -errno;
	}
	*fd_out = fd;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "cannot stat %s: %s", a->raw, strerror(errno));
		return -errno;
	}
	long page = sysconf(_SC_PAGESIZE);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, err_len, "%s is not a regular file", a->raw);
		return -EINVAL;
	}
	if (st.st_size == 0 || st.st_size % page) {
		snprintf(err, err_len,
			 "%s is %lld bytes, not a positive multiple of the page size (%ld)", a->raw,
			 (long long)st.st_size, page);
		return -EINVAL;
	}
	const char *name = a->name;
	if (!name) {
		name = strrchr(a->raw, '/');
		name = name ? name + 1 : a->raw;
	}
	struct thaw_region_desc d = {
		.sz = sizeof(d),
		.addr = a->base,
		.len = (uint64_t)st.st_size,
		.prot = PROT_READ | PROT_WRITE,
		.name = name,
		.fd = fd,
		.fd_offset = 0,
		.pid = -1,
	};
	return thaw_writer_add_region(w, &d);
}

/* After writing, report what landed on disk from the snapshot itself. */
static void print_summary(const char *path, struct cli_log *log, uint64_t ns)
{
	struct thaw_open_opts oo = { .sz = sizeof(oo), .log_fn = cli_log_fn, .log_ctx = log };
	struct thaw_snapshot *s = NULL;
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	if (thaw_snapshot_open(path, &oo, &s) < 0 || thaw_snapshot_get_info(s, &info) < 0) {
		printf("wrote %s\n", path);
		thaw_snapshot_close(s);
		return;
	}
	char raw[32], stored[32];
	double secs = (double)ns / 1e9;
	printf("wrote %s: %llu regions, raw %s, stored %s (%.1f%% of raw, %.2fx), %.2f s, %.0f "
	       "MB/s\n",
	       path, (unsigned long long)info.region_count,
	       cli_fmt_bytes(info.raw_bytes, raw, sizeof(raw)),
	       cli_fmt_bytes(info.stored_bytes, stored, sizeof(stored)),
	       info.raw_bytes ? 100.0 * (double)info.stored_bytes / (double)info.raw_bytes : 0.0,
	       info.stored_bytes ? (double)info.raw_bytes / (double)info.stored_bytes : 0.0, secs,
	       secs > 0 ? (double)info.raw_bytes / secs / 1e6 : 0.0);
	thaw_snapshot_close(s);
}

int cli_create(int argc, char **argv)
{
	const char *cmd = "create";
	struct create_args a;
	int r = parse_create_args(argc, argv, &a);
	if (r)
		return r < 0 ? CLI_OK : r;

	struct cli_log log;
	cli_log_init(&log);
	struct cli_progress prog;
	cli_progress_init(&prog, "writing", a.quiet);
	char err[512] = "";
	struct thaw_writer_opts wo = {
		.sz = sizeof(wo),
		.chunk_size = a.chunk_size,
		.level = a.level,
		.threads = a.threads,
		.progress = cli_progress_fn,
		.progress_ctx = &prog,
		.log_fn = cli_log_fn,
		.log_ctx = &log,
		.err_buf = err,
		.err_buf_size = sizeof(err),
	};
	uint64_t t0 = cli_now_ns();
	bool stopped_by_us = false;
	int fd = -1;

	if (a.pid >= 0) {
		char s = proc_state(a.pid);
		if (!s) {
			cli_err(cmd, "no process %d", (int)a.pid);
			return CLI_FAIL;
		}
		/* A process someone else stopped stays stopped: we only undo our own stop. */
		bool was_stopped = s == 'T' || s == 't';
		if (!was_stopped) {
			if (stop_process(a.pid, cmd) < 0) {
				kill(a.pid, SIGCONT);
				return CLI_FAIL;
			}
			stopped_by_us = true;
		}
	}

	struct thaw_writer *w = NULL;
	atomic_store(&log.mute_errors, 1);
	r = thaw_writer_open(a.out, &wo, &w);
	if (r == 0) {
		if (a.raw)
			r = add_raw(w, &a, &fd, err, sizeof(err));
		else
			r = thaw_writer_add_process(
				w, a.pid, a.anon_only ? THAW_PROCESS_SKIP_FILE_MAPPINGS : 0);
		if (r < 0) {
			thaw_writer_abort(w);
		} else {
			r = thaw_writer_close(w);
		}
	}
	atomic_store(&log.mute_errors, 0);
	cli_progress_done(&prog);
	/* A failed snapshot is no reason to leave the process frozen. */
	if (stopped_by_us && (r < 0 || !a.leave_stopped))
		kill(a.pid, SIGCONT);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		cli_err(cmd, "cannot write %s: %s", a.out, err[0] ? err : thaw_strerror(r));
		return CLI_FAIL;
	}
	print_summary(a.out, &log, cli_now_ns() - t0);
	return CLI_OK;
}
