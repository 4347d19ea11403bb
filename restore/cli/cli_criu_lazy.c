/* SPDX-License-Identifier: MIT */
/*
 * thaw criu lazy-pages: CRIU's lazy-pages daemon, serving from a snapshot.
 *
 * criu restore --lazy-pages connects once to lazy-pages.socket in its work
 * dir and sends, for each task, its pid (an int; negative for a zombie,
 * which has no memory) and then its userfaultfd by SCM_RIGHTS with one
 * byte of data. When every task is restored it sends the int 0x52535446
 * ("RSTF") and closes the connection. The tasks register their lazy VMAs
 * with the uffd in the restorer, after the fd was sent, and may fault
 * before the finish message: each task is attached as its uffd arrives,
 * serving faults only, and its background pass starts at the finish
 * message, when every range is registered.
 */
#include "cli_criu.h"
#include "cli_http.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CRIU_RESTORE_FINISHED 0x52535446

static const char lazy_help[] =
	"Usage: thaw criu lazy-pages --images-dir DIR [--work-dir DIR] [OPTIONS] SNAP\n"
	"\n"
	"Take `criu lazy-pages`' place for `criu restore --lazy-pages`: listen on\n"
	"lazy-pages.socket in the work dir (default: the images dir), take each restored\n"
	"task's pid and userfaultfd as criu restore sends them, and serve the tasks' page\n"
	"faults from SNAP (a snapshot `thaw criu import` wrote; a file or an http(s)://\n"
	"URL). When criu restore says the restore has finished, the background pass\n"
	"starts, and faults are served ahead of it. Forks of a restored task are served\n"
	"too (the child from the same snapshot), and MADV_DONTNEED (remove), munmap and\n"
	"mremap are followed, as CRIU's own daemon does.\n"
	"Start it before criu restore, with criu restore's --work-dir (or -D) dir;\n"
	"with --daemon it returns once it listens (criu restore, started after it, can\n"
	"connect at once), as `criu lazy-pages --daemon` does.\n"
	"\n"
	"Exits 0 once every task is fully resident (a task that exits first counts as\n"
	"done; so does a task the snapshot holds no memory of, which had no lazy pages),\n"
	"or 1 naming what failed: criu restore hung up before finishing, pages that\n"
	"could not be had (those pages are poisoned: the task gets SIGBUS there, never\n"
	"wrong data).\n"
	"Progress and a final stats line (tasks, faults, p50/p99, bytes read, time to\n"
	"resident) go to stderr. Before listening, SNAP is checked against the images\n"
	"(every task's lazy mappings, and no others), so another dump's memory is refused.\n"
	"Signals: SIGUSR1 logs a stats line (and writes --json-stats). SIGTERM or SIGINT\n"
	"puts every remaining page in (also with --no-background) and then exits: a\n"
	"task left with missing pages would read zeros once the daemon is gone, so a\n"
	"daemon killed with SIGKILL mid-restore corrupts the tasks, as CRIU's would.\n"
	"\n"
	"Options:\n"
	"  --images-dir DIR    the image dir criu restore reads (-D)\n"
	"  --work-dir DIR      where lazy-pages.socket goes (criu restore's --work-dir)\n"
	"  --json-stats FILE   write the counters as JSON here at exit\n"
	"  --cache-mb N        decoded chunks kept for forked tasks (default 64)\n"
	"  --no-background     fetch only what is touched (never resident: no exit)\n"
	"  -d, --daemon        go on in the background; exit 0 once listening, 1 if it\n"
	"                      could not (the reason on stderr, which the daemon keeps)\n"
	"  -h, --help          this text\n"
	"\n" CLI_HTTP_HELP;

enum { OPT_IMAGES = 256, OPT_WORK, OPT_JSON, OPT_CACHE, OPT_NO_BG };

static const struct option lazy_opts[] = {
	{ "images-dir", required_argument, NULL, OPT_IMAGES },
	{ "work-dir", required_argument, NULL, OPT_WORK },
	{ "json-stats", required_argument, NULL, OPT_JSON },
	{ "cache-mb", required_argument, NULL, OPT_CACHE },
	{ "no-background", no_argument, NULL, OPT_NO_BG },
	{ "daemon", no_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

struct task {
	pid_t pid;
	struct thaw_restore *r;
	int result; /* of thaw_restore_wait; 1 while not yet */
	struct thaw_stats st;
};

struct daemon {
	const char *images, *work, *json, *uri;
	uint64_t cache_mb;
	bool no_bg, daemon;
	int ready_fd; /* --daemon: written once listening, for the parent */
	struct cli_http http;
	struct thaw_snapshot *snap;
	struct task *tasks;
	size_t ntasks, zombies;
	uint64_t start_ns, finished_ns, resident_ns;
};

static volatile sig_atomic_t got_term, got_usr1;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

/* Progress and errors alike: "thaw criu lazy-pages: ..." on stderr. */
#define say(...) cli_err("criu lazy-pages", __VA_ARGS__)

static int parse_args(int argc, char **argv, struct daemon *d)
{
	const char *cmd = "criu lazy-pages";
	long v;
	int c, rc;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hd", lazy_opts, NULL)) != -1) {
		switch (c) {
		case OPT_IMAGES:
			d->images = optarg;
			break;
		case OPT_WORK:
			d->work = optarg;
			break;
		case OPT_JSON:
			d->json = optarg;
			break;
		case OPT_CACHE:
			if (cli_parse_int(optarg, 0, 1 << 20, &v))
				return cli_usage_err(cmd, "bad --cache-mb '%s'", optarg);
			d->cache_mb = v;
			break;
		case OPT_NO_BG:
			d->no_bg = true;
			break;
		case 'd':
			d->daemon = true;
			break;
		case 'h':
			fputs(lazy_help, stdout);
			return -1;
		default:
			if ((rc = cli_other_option(&d->http, cmd, c, argv)))
				return rc;
		}
	}
	if (!d->images)
		return cli_usage_err(cmd, "missing --images-dir DIR (criu restore's -D)");
	if (!d->work)
		d->work = d->images;
	return cli_snap_operand(cmd, argc, argv, "to serve pages from", &d->uri);
}

static int listen_socket(const struct daemon *d, char *path, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(path, len, "%s/lazy-pages.socket", d->work);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		say("%s/lazy-pages.socket: path longer than a Unix socket allows (%zu bytes)",
		    d->work, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, n + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
		int err = -errno;
		say("%s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/* Exactly len bytes, and the fd that came with them if fd is non-NULL. 0 at EOF. */
static ssize_t recv_all(int sk, void *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	size_t got = 0;
	while (got < len) {
		struct iovec iov = { .iov_base = (char *)buf + got, .iov_len = len - got };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (fd) {
			msg.msg_control = &ctl;
			msg.msg_controllen = sizeof(ctl);
		}
		ssize_t n = recvmsg(sk, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got ? -EPROTO : 0;
		for (struct cmsghdr *c = fd ? CMSG_FIRSTHDR(&msg) : NULL; c;
		     c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int fds[4];
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
			for (size_t i = 0; i < nfd; i++) {
				if (*fd < 0)
					*fd = fds[i];
				else
					close(fds[i]);
			}
		}
		got += n;
	}
	return got;
}

/* Read tasks until criu restore says it has finished. 0, or -errno after saying why. */
static int take_tasks(struct daemon *d, int sk)
{
	for (;;) {
		int32_t pid;
		ssize_t n = recv_all(sk, &pid, sizeof(pid), NULL);
		if (n == 0) {
			say("criu restore closed lazy-pages.socket before the restore finished "
			    "(%zu tasks received); see its log",
			    d->ntasks);
			return -EPIPE;
		}
		if (n < 0) {
			say("reading lazy-pages.socket: %s", strerror((int)-n));
			return (int)n;
		}
		if ((uint32_t)pid == CRIU_RESTORE_FINISHED)
			return 0;
		if (pid < 0) { /* a zombie: nothing to serve */
			d->zombies++;
			continue;
		}
		int uffd = -1;
		char byte;
		n = recv_all(sk, &byte, 1, &uffd);
		if (n <= 0 || uffd < 0) {
			say("pid %d: no userfaultfd came after the pid%s%s", (int)pid,
			    n < 0 ? ": " : "", n < 0 ? strerror((int)-n) : "");
			if (uffd >= 0)
				close(uffd);
			return n < 0 ? (int)n : -EPROTO;
		}
		struct task *t = realloc(d->tasks, (d->ntasks + 1) * sizeof(*t));
		if (!t) {
			close(uffd);
			return -ENOMEM;
		}
		d->tasks = t;
		t = &d->tasks[d->ntasks++];
		*t = (struct task){ .pid = pid, .result = 1, .st = { .sz = sizeof(t->st) } };
		struct thaw_restore_opts ro = { .sz = sizeof(ro),
						.flags = THAW_RESTORE_NO_BACKGROUND };
		int err = thaw_criu_attach(d->snap, pid, uffd, &ro, &t->r);
		if (err == -ENOENT) {
			/* Nothing of it was dumped lazily (the images were checked): it reads zeros. */
			say("pid %d: no lazy memory, nothing to serve", (int)pid);
			t->result = 0;
			continue;
		}
		if (err) {
			/* The task would wait for ever on its first lazy page: stop here. */
			say("pid %d: cannot serve it: %s", (int)pid, thaw_strerror(err));
			t->result = err;
			return err;
		}
		say("pid %d: serving its userfaultfd", (int)pid);
	}
}

static int accept_restore(int lfd)
{
	int sk;
	/* Stopped before criu restore came: nothing to finish, so stop now. */
	do
		sk = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (sk < 0 && errno == EINTR && !got_term);
	if (sk < 0)
		return -errno;
	/* Only criu restore run by us (or root) may hand us tasks. */
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		say("refusing a connection from uid %u", (unsigned)cred.uid);
		close(sk);
		return -EPERM;
	}
	return sk;
}

/* Fault latency percentile over every task's histogram (bucket upper bound, µs). */
static uint64_t pct_us(const uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0;
	for (int i = 0; i < THAW_LAT_BUCKETS; i++)
		total += hist[i];
	if (!total)
		return 0;
	for (int i = 0; i < THAW_LAT_BUCKETS; i++) {
		seen += hist[i];
		if (seen >= q * total)
			return 1ull << (i + 1);
	}
	return 1ull << THAW_LAT_BUCKETS;
}

struct totals {
	uint64_t faults, pages_fault, pages_bg, pages_zero, bytes_read, http_requests, poisoned;
	uint64_t hist[THAW_LAT_BUCKETS];
	uint64_t p50, p99;
};

static void add_up(const struct daemon *d, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	uint64_t p50 = 0, p99 = 0;
	for (size_t i = 0; i < d->ntasks; i++) {
		const struct thaw_stats *s = &d->tasks[i].st;
		t->faults += s->faults;
		t->pages_fault += s->pages_fault;
		t->pages_bg += s->pages_background;
		t->pages_zero += s->pages_zero;
		t->bytes_read += s->bytes_read;
		t->http_requests += s->http_requests;
		t->poisoned += s->chunks_poisoned;
		for (int b = 0; b < THAW_LAT_BUCKETS; b++)
			t->hist[b] += s->fault_lat_hist[b];
		p50 = s->fault_p50_us > p50 ? s->fault_p50_us : p50;
		p99 = s->fault_p99_us > p99 ? s->fault_p99_us : p99;
	}
	/* One task: its own exact figures; several: from the summed histogram. */
	t->p50 = d->ntasks == 1 ? p50 : pct_us(t->hist, 0.5);
	t->p99 = d->ntasks == 1 ? p99 : pct_us(t->hist, 0.99);
}

static void write_json(const struct daemon *d, const struct totals *t, int rc)
{
	if (!d->json)
		return;
	struct cli_json j;
	if (cli_json_file_begin(&j, "criu lazy-pages", d->json))
		return;
	cli_json_bool(&j, "ok", rc == 0);
	cli_json_u64(&j, "tasks", d->ntasks);
	cli_json_u64(&j, "zombies", d->zombies);
	cli_json_u64(&j, "restore_finished_ms",
		     d->finished_ns ? (d->finished_ns - d->start_ns) / 1000000 : 0);
	cli_json_u64(&j, "resident_ms",
		     d->resident_ns && d->finished_ns ? (d->resident_ns - d->finished_ns) / 1000000
						      : 0);
	cli_json_u64(&j, "faults", t->faults);
	cli_json_u64(&j, "fault_p50_us", t->p50);
	cli_json_u64(&j, "fault_p99_us", t->p99);
	cli_json_u64(&j, "pages_fault", t->pages_fault);
	cli_json_u64(&j, "pages_background", t->pages_bg);
	cli_json_u64(&j, "pages_zero", t->pages_zero);
	cli_json_u64(&j, "bytes_read", t->bytes_read);
	cli_json_u64(&j, "http_requests", t->http_requests);
	cli_json_u64(&j, "chunks_poisoned", t->poisoned);
	cli_json_arr_begin(&j, "per_task");
	for (size_t i = 0; i < d->ntasks; i++) {
		const struct task *k = &d->tasks[i];
		cli_json_obj_begin(&j, NULL);
		cli_json_i64(&j, "pid", k->pid);
		cli_json_str(&j, "result",
			     k->result == 0					       ? "resident"
			     : k->result == -THAW_E_TARGET_GONE || k->result == -ESRCH ? "exited"
			     : k->result == 1					       ? "pending"
					      : thaw_strerror(k->result));
		cli_json_u64(&j, "faults", k->st.faults);
		cli_json_u64(&j, "fault_p50_us", k->st.fault_p50_us);
		cli_json_u64(&j, "fault_p99_us", k->st.fault_p99_us);
		cli_json_u64(&j, "bytes_read", k->st.bytes_read);
		cli_json_u64(&j, "resident_us", k->st.resident_us);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_file_end(&j, "criu lazy-pages", d->json);
}

/* A stats line (what: "stats", "done" or "failed") and --json-stats. */
static void report(struct daemon *d, const char *what, int rc)
{
	for (size_t i = 0; i < d->ntasks; i++)
		if (d->tasks[i].r)
			thaw_restore_stats(d->tasks[i].r, &d->tasks[i].st);
	struct totals t;
	add_up(d, &t);
	char b1[32], when[64] = "";
	if (d->resident_ns && d->finished_ns)
		snprintf(when, sizeof(when), ", resident %.1f ms after the restore finished",
			 (d->resident_ns - d->finished_ns) / 1e6);
	say("%s: %zu tasks (%zu zombies), %llu faults, p50 %llu us, p99 %llu us, %llu pages on "
	    "fault + %llu in background (%llu zero), %s read%s",
	    what, d->ntasks, d->zombies, (unsigned long long)t.faults, (unsigned long long)t.p50,
	    (unsigned long long)t.p99, (unsigned long long)t.pages_fault,
	    (unsigned long long)t.pages_bg, (unsigned long long)t.pages_zero,
	    cli_fmt_bytes(t.bytes_read, b1, sizeof(b1)), when);
	write_json(d, &t, rc);
}

/* Attach every task, then wait for each to be resident (or gone). 0 or CLI_FAIL. */
static int serve(struct daemon *d)
{
	int failed = 0;
	for (size_t i = 0; i < d->ntasks && !d->no_bg; i++)
		thaw_restore_populate(d->tasks[i].r);
	say("restore finished after %.1f ms: serving %zu tasks",
	    (d->finished_ns - d->start_ns) / 1e6, d->ntasks);
	uint64_t last = cli_now_ns();
	for (size_t i = 0; i < d->ntasks; i++) {
		struct task *t = &d->tasks[i];
		while (t->r && t->result == 1) {
			int rc = thaw_restore_wait(t->r, 200);
			if (rc == -ETIMEDOUT) {
				if (got_term && d->no_bg) {
					say("stopping: putting every remaining page in first");
					for (size_t k = 0; k < d->ntasks; k++)
						thaw_restore_populate(d->tasks[k].r);
					d->no_bg = false;
				}
				if (got_usr1) {
					got_usr1 = 0;
					report(d, "stats", 0);
				}
				if (cli_now_ns() - last >= 1000000000ull) {
					thaw_restore_stats(t->r, &t->st);
					say("pid %d: %llu faults, %llu + %llu pages in so far",
					    (int)t->pid, (unsigned long long)t->st.faults,
					    (unsigned long long)t->st.pages_fault,
					    (unsigned long long)t->st.pages_background);
					last = cli_now_ns();
				}
				continue;
			}
			t->result = rc;
		}
		if (t->r)
			thaw_restore_stats(t->r, &t->st);
		if (t->result == -THAW_E_TARGET_GONE || t->result == -ESRCH) {
			say("pid %d exited before it was fully resident", (int)t->pid);
		} else if (t->result && t->result != 1) {
			say("pid %d: %s", (int)t->pid, thaw_strerror(t->result));
			failed = 1;
		}
	}
	d->resident_ns = cli_now_ns();
	return failed ? CLI_FAIL : CLI_OK;
}

/*
 * --daemon: the work goes on in a child, in a session of its own, before
 * any thread exists; the parent waits on a pipe and exits 0 when the child
 * says it listens, 1 when the child ended first (it said why on stderr).
 * Returns in the child only.
 */
static void daemonize(struct daemon *d)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC)) {
		say("--daemon: pipe: %s", strerror(errno));
		exit(CLI_FAIL);
	}
	pid_t pid = fork();
	if (pid < 0) {
		say("--daemon: fork: %s", strerror(errno));
		exit(CLI_FAIL);
	}
	if (pid > 0) {
		close(p[1]);
		char c = 1;
		ssize_t n;
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		exit(n == 1 && c == 0 ? CLI_OK : CLI_FAIL);
	}
	close(p[0]);
	setsid();
	d->ready_fd = p[1];
}

int cli_criu_lazy(int argc, char **argv)
{
	struct daemon d = { .cache_mb = 64, .ready_fd = -1 };
	int rc = parse_args(argc, argv, &d);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	if (d.daemon)
		daemonize(&d);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	d.start_ns = cli_now_ns();
	struct cli_log log;
	if (cli_open_snapshot("criu lazy-pages", d.uri, &log, &d.http, &d.snap))
		return CLI_FAIL;
	char why[1024];
	struct thaw_criu_check_opts co = { .sz = sizeof(co),
					   .err_buf = why,
					   .err_buf_size = sizeof(why) };
	if (thaw_criu_check(d.snap, d.images, &co)) {
		say("%s does not fit %s: %s", d.uri, d.images, why);
		thaw_snapshot_close(d.snap);
		return CLI_FAIL;
	}
	if (d.cache_mb)
		thaw_snapshot_set_cache(d.snap, d.cache_mb << 20);
	char path[4096];
	int lfd = listen_socket(&d, path, sizeof(path));
	if (lfd < 0) {
		thaw_snapshot_close(d.snap);
		return CLI_FAIL;
	}
	say("listening on %s", path);
	if (d.ready_fd >= 0) {
		char ok = 0;
		if (write(d.ready_fd, &ok, 1) != 1)
			say("--daemon: telling the caller it listens: %s", strerror(errno));
		close(d.ready_fd);
	}
	int sk = accept_restore(lfd);
	while (sk == -EPERM)
		sk = accept_restore(lfd);
	close(lfd);
	unlink(path);
	rc = CLI_FAIL;
	if (sk < 0) {
		say("accept: %s", strerror(-sk));
	} else if (!take_tasks(&d, sk)) {
		d.finished_ns = cli_now_ns();
		rc = serve(&d);
	}
	if (sk >= 0)
		close(sk);
	report(&d, rc ? "failed" : "done", rc);
	for (size_t i = 0; i < d.ntasks; i++)
		thaw_restore_free(d.tasks[i].r);
	free(d.tasks);
	thaw_snapshot_close(d.snap);
	return rc;
}
