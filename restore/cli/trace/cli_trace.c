/* SPDX-License-Identifier: MIT */
/*
 * thaw trace: a process's page faults and fault stalls as the kernel sees
 * them, through the BPF program in restore/bpf/fault_trace.bpf.c (embedded
 * as a bpftool skeleton). It does not care who serves the faults — thaw,
 * another userfaultfd handler, the kernel's file paging — so handlers can be
 * compared from the same side. The first touch of each page goes to a trace
 * file in first-touch order, the input `thaw optimize` takes.
 */
#include "cli_trace_stats.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/types.h>

#include "fault_trace.h"
#include "fault_trace.skel.h"

static const char trace_help[] =
	"Usage: thaw trace --pid PID [-o FILE] [--duration S] [--json]\n"
	"       thaw trace [-o FILE] [--duration S] [--json] -- CMD [ARGS...]\n"
	"\n"
	"Watch one process's user page faults from the kernel's side (BPF on the\n"
	"exceptions:page_fault_user and sched_switch tracepoints), whatever serves them.\n"
	"A stall is an interval in which a thread handling a page fault blocked: from\n"
	"its switch-out to when it ran again. At the end, print the faults, first-touch\n"
	"pages, the stall-time histogram (log2 microsecond buckets, in total and per\n"
	"thread) and the total blocked time.\n"
	"\n"
	"  --pid PID           trace this running process\n"
	"  -- CMD [ARGS...]    start CMD, held until tracing is attached, and trace it\n"
	"  -o, --output FILE   write the first touch of each page, in order, as a trace\n"
	"                      file (see README \"Trace files\"; 'thaw optimize' reads it)\n"
	"  --duration S        stop after S seconds (default: when the process exits,\n"
	"                      or on Ctrl-C / SIGTERM)\n"
	"  --json              one JSON object instead of the text summary\n"
	"  -h, --help          this text\n"
	"\n"
	"Once attached it prints \"thaw trace: tracing PID\" on stderr. Needs root (or\n"
	"CAP_BPF and CAP_PERFMON) and a kernel with BTF (/sys/kernel/btf/vmlinux).\n";

enum { OPT_PID = 256, OPT_DURATION, OPT_JSON };

static const struct option trace_opts[] = {
	{ "pid", required_argument, NULL, OPT_PID },
	{ "output", required_argument, NULL, 'o' },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* The ring buffer callback's ctx. */
struct trace_run {
	struct cli_trace_stats stats;
	int err; /* the first failure in the callback */
};

/* ring_buffer__poll callback: one event. A negative return stops the poll. */
static int handle_event(void *ctx, void *data, size_t size)
{
	struct trace_run *run = ctx;
	const struct fault_trace_event *e = data;
	int r = 0;
	if (size < sizeof(*e))
		return 0;
	if (e->kind == FAULT_TRACE_FAULT)
		r = cli_trace_stats_fault(&run->stats, e->ts_ns, e->addr, e->tid);
	else if (e->kind == FAULT_TRACE_STALL)
		r = cli_trace_stats_stall(&run->stats, e->stall_ns, e->tid);
	if (r < 0 && !run->err)
		run->err = r;
	return r;
}

/*
 * libbpf's own messages: its warnings explain a failed load in detail, so
 * they are shown when THAW_LOG asks for info or debug; otherwise the
 * command's one-line reason stands alone.
 */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	struct cli_log log;
	cli_log_init(&log); /* THAW_LOG, read as every subcommand reads it */
	if (log.max_level < (level == LIBBPF_DEBUG ? THAW_LOG_DEBUG : THAW_LOG_INFO))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static const char *const tracepoints[] = { "page_fault_user", "sched_switch", "sys_enter" };

/*
 * Open, load and attach the BPF program for pid. On failure print why in
 * terms of what the machine lacks and return a negative errno.
 */
static int bpf_start(const char *cmd, pid_t pid, struct fault_trace **out)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		cli_err(cmd,
			"BPF cannot load: the kernel has no BTF (/sys/kernel/btf/vmlinux: %s); "
			"thaw trace needs CONFIG_DEBUG_INFO_BTF",
			strerror(errno));
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(tracepoints) / sizeof(tracepoints[0]); i++) {
		if (libbpf_find_vmlinux_btf_id(tracepoints[i], BPF_TRACE_RAW_TP) < 0) {
			cli_err(cmd, "BPF cannot load: this kernel has no %s tracepoint for tp_btf",
				tracepoints[i]);
			return -ENOENT;
		}
	}
	libbpf_set_print(libbpf_print);
	struct fault_trace *skel = fault_trace__open();
	if (!skel) {
		int e = -errno;
		cli_err(cmd, "BPF cannot load: opening the embedded program: %s", strerror(-e));
		return e;
	}
	skel->rodata->target_tgid = (__u32)pid;
	int e = fault_trace__load(skel);
	if (e < 0) {
		if (e == -EPERM || e == -EACCES)
			cli_err(cmd,
				"BPF cannot load: not permitted (needs root, or CAP_BPF and "
				"CAP_PERFMON; this process has uid %u without them)",
				(unsigned)geteuid());
		else
			cli_err(cmd, "BPF cannot load: %s (THAW_LOG=info shows libbpf's reason)",
				strerror(-e));
		fault_trace__destroy(skel);
		return e;
	}
	e = fault_trace__attach(skel);
	if (e < 0) {
		cli_err(cmd, "BPF cannot attach to the tracepoints: %s", strerror(-e));
		fault_trace__destroy(skel);
		return e;
	}
	*out = skel;
	return 0;
}

/* A command forked but held before exec until tracing is attached. */
struct held_child {
	pid_t pid;
	int go_fd;  /* a byte here lets it exec; closing it makes it exit 126 */
	int err_fd; /* the child's errno if exec failed; EOF once it exec'd */
};

static void close_pipe(const int p[2])
{
	close(p[0]);
	close(p[1]);
}

static int spawn_held(const char *cmd, char **argv, const sigset_t *mask, struct held_child *h)
{
	int go[2], err[2];
	if (pipe2(go, O_CLOEXEC) < 0) {
		cli_err(cmd, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(err, O_CLOEXEC) < 0) {
		cli_err(cmd, "pipe: %s", strerror(errno));
		close_pipe(go);
		return -1;
	}
	h->pid = fork();
	if (h->pid < 0) {
		cli_err(cmd, "fork: %s", strerror(errno));
		close_pipe(go);
		close_pipe(err);
		return -1;
	}
	if (h->pid == 0) {
		close(go[1]);
		close(err[0]);
		sigprocmask(SIG_SETMASK, mask, NULL);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(126);
		execvp(argv[0], argv);
		int e = errno;
		ssize_t w = write(err[1], &e, sizeof(e));
		(void)w; /* the parent then sees EOF and the exit status */
		_exit(127);
	}
	close(go[0]);
	close(err[1]);
	h->go_fd = go[1];
	h->err_fd = err[0];
	return 0;
}

/* Let the held command exec; 0 once it has, or the exec's -errno. */
static int held_child_go(struct held_child *h)
{
	int r = write(h->go_fd, "g", 1) == 1 ? 0 : -errno;
	close(h->go_fd);
	h->go_fd = -1;
	int e;
	if (!r && read(h->err_fd, &e, sizeof(e)) == sizeof(e))
		r = -e;
	close(h->err_fd);
	h->err_fd = -1;
	return r;
}

/* A command not let go exits unrun; reap it. Accepts one that went. */
static void held_child_cancel(struct held_child *h)
{
	if (h->go_fd < 0)
		return;
	close(h->go_fd);
	close(h->err_fd);
	waitpid(h->pid, NULL, 0);
}

struct trace_args {
	pid_t pid;
	char **cmd_argv; /* after "--", or NULL */
	const char *out;
	double duration_s; /* 0 = until the process exits or a signal */
	bool json;
};

static int parse_args(const char *cmd, int argc, char **argv, struct trace_args *a)
{
	int c;
	long v;
	char *end;
	optind = 1;
	opterr = 0;
	/* "+": stop at the first operand, so CMD's own options stay CMD's. */
	while ((c = getopt_long(argc, argv, "+:o:h", trace_opts, NULL)) != -1) {
		switch (c) {
		case OPT_PID:
			if (cli_parse_int(optarg, 1, INT32_MAX, &v))
				return cli_usage_err(cmd, "bad --pid '%s': want a process id",
						     optarg);
			a->pid = (pid_t)v;
			break;
		case 'o':
			a->out = optarg;
			break;
		case OPT_DURATION:
			errno = 0;
			a->duration_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(a->duration_s > 0) ||
			    a->duration_s > 1e7)
				return cli_usage_err(cmd, "bad --duration '%s': want seconds > 0",
						     optarg);
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case 'h':
			fputs(trace_help, stdout);
			return -1;
		default:
			return cli_bad_option(cmd, c, argv);
		}
	}
	bool dashdash = optind > 1 && !strcmp(argv[optind - 1], "--");
	if (optind < argc && !dashdash)
		return cli_usage_err(cmd, "unexpected operand '%s' (a command goes after --)",
				     argv[optind]);
	if (dashdash && optind < argc)
		a->cmd_argv = argv + optind;
	if (!a->pid == !a->cmd_argv)
		return cli_usage_err(cmd, a->pid ? "give --pid or -- CMD, not both"
						 : "missing --pid PID or -- CMD (what to trace)");
	return 0;
}

/*
 * Poll the ring buffer until the process exits (pidfd readable), a signal
 * arrives (sigfd) or the deadline passes, then drain what is left. 0 or a
 * negative errno from the ring buffer or the event handler.
 */
static int trace_loop(struct ring_buffer *rb, int pidfd, int sigfd, uint64_t deadline_ns)
{
	struct pollfd fds[3] = {
		{ .fd = ring_buffer__epoll_fd(rb), .events = POLLIN },
		{ .fd = pidfd, .events = POLLIN },
		{ .fd = sigfd, .events = POLLIN },
	};
	for (;;) {
		int timeout = -1;
		if (deadline_ns) {
			uint64_t now = cli_now_ns();
			if (now >= deadline_ns)
				break;
			uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
			timeout = left_ms > 1000 ? 1000 : (int)left_ms;
		}
		if (poll(fds, 3, timeout) < 0 && errno != EINTR)
			return -errno;
		int n = ring_buffer__consume(rb);
		if (n < 0)
			return n;
		if (fds[2].revents) {
			/*
			 * Take the signal off the queue: left pending, it would kill
			 * thaw when the old mask comes back, after the summary was
			 * printed but before a redirected stdout was flushed.
			 */
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) < 0 && errno != EAGAIN)
				return -errno;
			break;
		}
		if (fds[1].revents)
			break;
	}
	int n = ring_buffer__consume(rb);
	return n < 0 ? n : 0;
}

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int exit_status_of(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* A pidfd for pid, whose end ends the trace; -1 after saying why not. */
static int watch_pid(const char *cmd, pid_t pid)
{
	int fd = pidfd_open(pid);
	if (fd >= 0)
		return fd;
	if (errno == ESRCH)
		cli_err(cmd, "no process %d", (int)pid);
	else if (errno == EINVAL)
		cli_err(cmd, "%d is not a process id (a thread of another process?)", (int)pid);
	else
		cli_err(cmd, "cannot watch process %d: %s", (int)pid, strerror(errno));
	return -1;
}

/* The trace has ended: save it (-o), note CMD's exit status, print the summary. 0 or -1. */
static int report(const char *cmd, const struct trace_args *a, struct cli_trace_stats *t,
		  struct cli_trace_end *end, const struct held_child *child)
{
	cli_trace_stats_finish(t);
	if (a->out) {
		int e = thaw_trace_save(t->trace, a->out);
		if (e < 0) {
			cli_err(cmd, "cannot write %s: %s", a->out, thaw_strerror(e));
			return -1;
		}
	}
	if (a->cmd_argv) {
		/*
		 * CMD has exited when its pidfd ended the trace; --duration or a
		 * SIGTERM sent to thaw alone may end it first, and CMD keeps
		 * running, unwatched: never wait for it.
		 */
		int ws;
		if (waitpid(child->pid, &ws, WNOHANG) == child->pid)
			end->exit_status = exit_status_of(ws);
	}
	if (a->json)
		cli_trace_stats_print_json(t, end, a->out);
	else
		cli_trace_stats_print_text(t, end);
	return 0;
}

int cli_trace(int argc, char **argv)
{
	const char *cmd = "trace";
	struct trace_args a = { 0 };
	int st = parse_args(cmd, argc, argv, &a);
	if (st)
		return st < 0 ? CLI_OK : st;

	struct trace_run run = { 0 };
	struct cli_trace_stats *t = &run.stats;
	struct cli_trace_end end = { .exit_status = -1 };
	struct fault_trace *skel = NULL;
	struct ring_buffer *rb = NULL;
	int ret = CLI_FAIL, pidfd = -1, sigfd = -1, e;
	struct held_child child = { .pid = -1, .go_fd = -1, .err_fd = -1 };

	if (cli_trace_stats_init(t, a.out != NULL) < 0) {
		cli_err(cmd, "out of memory");
		cli_trace_stats_free(t);
		return CLI_FAIL;
	}
	/* SIGINT/SIGTERM end the trace through a signalfd, not a handler. */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, &old);
	sigfd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (sigfd < 0) {
		cli_err(cmd, "signalfd: %s", strerror(errno));
		goto out;
	}
	if (a.cmd_argv) {
		if (spawn_held(cmd, a.cmd_argv, &old, &child) < 0)
			goto out;
		a.pid = child.pid;
	}
	t->pid = a.pid;
	pidfd = watch_pid(cmd, a.pid);
	if (pidfd < 0)
		goto out;
	if (bpf_start(cmd, a.pid, &skel) < 0)
		goto out;
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle_event, &run, NULL);
	if (!rb) {
		cli_err(cmd, "cannot set up the BPF ring buffer: %s", strerror(errno));
		goto out;
	}
	t->t0_ns = cli_now_ns();
	fprintf(stderr, "thaw trace: tracing %d\n", (int)a.pid);
	if (a.cmd_argv && (e = held_child_go(&child)) < 0) {
		cli_err(cmd, "cannot run %s: %s", a.cmd_argv[0], strerror(-e));
		waitpid(child.pid, NULL, 0);
		goto out;
	}
	uint64_t deadline = a.duration_s ? t->t0_ns + (uint64_t)(a.duration_s * 1e9) : 0;
	e = trace_loop(rb, pidfd, sigfd, deadline);
	end.elapsed_ns = cli_now_ns() - t->t0_ns;
	end.lost = skel->bss->lost_events;
	if (e < 0 || run.err) {
		cli_err(cmd, "reading events: %s", strerror(-(run.err ? run.err : e)));
		goto out;
	}
	if (report(cmd, &a, t, &end, &child) == 0)
		ret = CLI_OK;
out:
	if (a.cmd_argv)
		held_child_cancel(&child);
	ring_buffer__free(rb);
	fault_trace__destroy(skel);
	if (pidfd >= 0)
		close(pidfd);
	if (sigfd >= 0)
		close(sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	cli_trace_stats_free(t);
	return ret;
}
