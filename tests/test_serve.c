/* SPDX-License-Identifier: MIT */
/*
 * thaw serve with real clients: the daemon runs as `build/thaw serve`, the
 * clients are build/examples/vmm_client processes (Firecracker-style:
 * their own uffd, the JSON handshake, every byte read checked against the
 * snapshot), plus hand-made bad handshakes.
 */
#include "httpd.h"
#include "serve_harness.h"
#include "testlib.h"
#include "thaw.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SNAP_BYTES SERVE_SNAP_BYTES
#define OUT_LEN	   (64 * 1024)

static char out[OUT_LEN];

/* THAW_LOG=info: the library's lines about forks and events land in the log too. */
#define DAEMON_INIT ((struct serve_daemon){ .listen_fd = -1, .log_level = "info" })

/* The case's files; the snapshot, with its raw memory beside it, is made on first use. */
static void daemon_paths(struct serve_daemon *d)
{
	serve_paths(d, SNAP_BYTES, 51, true);
}

static void daemon_start(struct serve_daemon *d, const char *extra)
{
	if (!d->snap[0])
		daemon_paths(d);
	serve_start(d, extra);
}

static int count(const char *text, const char *what)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* serve_stop, and the daemon removed the socket it made. */
static void daemon_stop(struct serve_daemon *d)
{
	serve_stop(d);
	CHECK_MSG(access(d->sock, F_OK) != 0, "the socket was left behind");
}

#define CHECK_CLIENT(d, opts)                                                                      \
	do {                                                                                       \
		int st_ = serve_client(d, out, sizeof(out), opts);                                 \
		CHECK_MSG(st_ == 0, "vmm_client %s: status %d:\n%s\ndaemon log:\n%s", opts, st_,   \
			  out, serve_read_log(d));                                                 \
	} while (0)

static int t_one_client(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, NULL);
	CHECK_CLIENT(&d, "");
	CHECK_CLIENT(&d, "--page-size-kib");
	daemon_stop(&d);
	const char *log = serve_read_log(&d);
	CHECK_EQ(count(log, "resident in"), 2);
	CHECK_EQ(count(log, "refused: "), 0);
	return 0;
}

/* Clients 2 to 4 of one snapshot install from the cache: no store reads at all. */
static int t_four_clients_one_snapshot(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, "--cache-mb 64");
	CHECK_CLIENT(&d, "");
	const char *vmm = test_build_bin("examples/vmm_client");
	int st = test_run(
		out, sizeof(out),
		"pids=; for i in 1 2 3; do %s --socket %s --snapshot %s & pids=\"$pids $!\"; "
		"done; fail=0; for p in $pids; do wait $p || fail=1; done; exit $fail",
		vmm, d.sock, d.snap);
	CHECK_MSG(st == 0, "concurrent clients: status %d:\n%s\n%s", st, out, serve_read_log(&d));
	CHECK_EQ(count(out, "vmm_client: ok"), 3);
	daemon_stop(&d);
	const char *log = serve_read_log(&d);
	CHECK_EQ(count(log, "resident in"), 4);
	/* The first client read the store; the other three read nothing from it. */
	CHECK_EQ(count(log, ", 0 B read from the store"), 3);
	char js[OUT_LEN];
	CHECK_EQ(test_run(js, sizeof(js), "cat %s", d.json), 0);
	const char *hits = strstr(js, "\"hits\": ");
	CHECK(hits);
	CHECK_GT(strtoull(hits + 8, NULL, 10), 0);
	return 0;
}

static int t_two_regions_apart(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, NULL);
	CHECK_CLIENT(&d, "--regions 2");
	CHECK_CLIENT(&d, "--regions 3");
	daemon_stop(&d);
	CHECK(strstr(serve_read_log(&d), "serving 3 mappings"));
	return 0;
}

/*
 * A balloon: a thread keeps reading a range while it is MADV_DONTNEED'd, so
 * faults race the REMOVE (a fault is often read ahead of the REMOVE that
 * explains it); afterwards the range must read as zeros, never snapshot data.
 */
static int t_remove_gives_zeros(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, "--cache-mb 0");
	for (int i = 0; i < 4; i++)
		CHECK_CLIENT(&d, "--balloon");
	CHECK_CLIENT(&d, "--balloon --regions 2 --events all");
	daemon_stop(&d);
	return 0;
}

static int t_unmap_remap(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, NULL);
	CHECK_CLIENT(&d, "--unmap");
	CHECK_CLIENT(&d, "--remap");
	CHECK_CLIENT(&d, "--unmap --remap --balloon --regions 2");
	daemon_stop(&d);
	return 0;
}

/* Connect as uid 65534 and send a well-formed handshake: the uid must be refused. */
static int wrong_uid_client(const struct serve_daemon *d)
{
	pid_t pid = fork();
	CHECK_GE(pid, 0);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->sock);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)))
			_exit(3);
		int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
		char msg[] = "[{\"base_host_virt_addr\": 4096, \"size\": 4096, \"offset\": 0, "
			     "\"page_size\": 4096}]";
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct iovec iov = { .iov_base = msg, .iov_len = strlen(msg) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (fd >= 0) {
			m.msg_control = &ctl;
			m.msg_controllen = sizeof(ctl);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
			*cm = (struct cmsghdr){ .cmsg_level = SOL_SOCKET,
						.cmsg_type = SCM_RIGHTS,
						.cmsg_len = CMSG_LEN(sizeof(int)) };
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		/* The daemon may have hung up already: that is the refusal, not an error. */
		sendmsg(s, &m, MSG_NOSIGNAL);
		char b;
		struct timeval tv = { .tv_sec = 10 };
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = recv(s, &b, 1, 0);
		_exit(n == 0 || (n < 0 && errno == ECONNRESET) ? 0 : 4);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int t_bad_handshakes(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, NULL);
	/* Others may connect: the refusal must come from the uid check, not the file mode. */
	CHECK_EQ(chmod(test_tmpdir(), 0755), 0);
	CHECK_EQ(chmod(d.sock, 0777), 0);
	struct serve_bg good;
	serve_bg_start(&good, &d, "--pause-after 16");
	serve_bg_wait_line(&good, "paused");
	static const char *const bad[] = {
		"--json '[{\"base_host_virt_addr\": 1,' --expect-refused",
		"--json '{\"not\": \"an array\"}' --expect-refused",
		"--json '[{\"base_host_virt_addr\": 4096, \"size\": 4096, \"offset\": 0, "
		"\"page_size\": 65536}]' --expect-refused",
		"--json '[{\"size\": 4096, \"offset\": 0, \"page_size\": 4096}]' --expect-refused",
		"--no-fd --expect-refused",
		"--offset-add 4096 --expect-refused",
		"--offset-add 0x100000000 --expect-refused",
		"--size-add 100 --expect-refused",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_CLIENT(&d, bad[i]);
	CHECK_EQ(wrong_uid_client(&d), 0);
	CHECK_EQ(serve_bg_finish(&good, true), 0);
	CHECK_CLIENT(&d, "");
	daemon_stop(&d);
	const char *log = serve_read_log(&d);
	CHECK_EQ(count(log, "refused: "), 9);
	CHECK(strstr(log, "not valid JSON"));
	CHECK(strstr(log, "page size 65536 not supported"));
	CHECK(strstr(log, "\"base_host_virt_addr\" is missing"));
	CHECK(strstr(log, "no file descriptor"));
	CHECK(strstr(log, "runs past the end"));
	CHECK(strstr(log, "not page aligned"));
	CHECK(strstr(log, "uid 65534 is not"));
	CHECK_EQ(count(log, "resident in"), 2);
	return 0;
}

/* Entries of /proc/PID/<what>: "fd" counts open fds, "task" threads. */
static int count_proc_dir(pid_t pid, const char *what)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	DIR *d = opendir(path);
	CHECK(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/*
 * A daemon serving the snapshot over HTTP from a server that stalls the
 * reads of its second half for a second (count times), so that its clients
 * are still missing pages a while after they start.
 */
static void stalling_daemon(struct serve_daemon *d, struct faulty *f, int count)
{
	daemon_paths(d);
	struct stat st;
	CHECK_EQ(stat(d->snap, &st), 0);
	CHECK_OK(faulty_start(f, test_tmpdir(), ""));
	char q[128];
	snprintf(q, sizeof(q), "fault=stall&stall=1&count=%d&min_off=%lld", count,
		 (long long)st.st_size / 2);
	CHECK_EQ(faulty_ctl(f, q, NULL, 0), 0);
	d->uri = faulty_url(f, "guest.thaw");
	daemon_start(d, "--cache-mb 0");
}

/* Wait until the daemon has ended n clients (served or not), as its log says. */
static void wait_ended(const struct serve_daemon *d, int n)
{
	for (int i = 0; i < 1000; i++) {
		const char *log = serve_read_log(d);
		if (count(log, "resident in") + count(log, "ended before every page was in") >= n)
			return;
		usleep(10000);
	}
	test_fail(__FILE__, __LINE__, "the daemon did not end %d clients:\n%s", n,
		  serve_read_log(d));
}

/* The client forks while pages are still missing (stalled reads): the child's are served too. */
static int t_fork_child_reads(void)
{
	struct serve_daemon d = DAEMON_INIT;
	struct faulty f;
	stalling_daemon(&d, &f, 2);
	CHECK_CLIENT(&d, "--fork");
	CHECK_CLIENT(&d, "--fork --balloon --regions 2");
	daemon_stop(&d);
	faulty_stop(&f);
	const char *log = serve_read_log(&d);
	CHECK_MSG(count(log, "serving a forked child") >= 1, "%s", log);
	CHECK_EQ(count(log, "resident in"), 2);
	return 0;
}

/* Clients killed mid-restore: freed once their uffd says the process is gone; others go on. */
static int t_client_dies(void)
{
	struct serve_daemon d = DAEMON_INIT;
	struct faulty f;
	stalling_daemon(&d, &f, 4);
	CHECK_CLIENT(&d, ""); /* warm up: lazily created state is not a leak */
	wait_ended(&d, 1);
	int fds = count_proc_dir(d.pid, "fd"), threads = count_proc_dir(d.pid, "task");
	CHECK_EQ(faulty_ctl(&f, "fault=stall&stall=1&count=4&min_off=0", NULL, 0), 0);
	struct serve_bg good;
	serve_bg_start(&good, &d, "--pause-after 16");
	serve_bg_wait_line(&good, "paused");
	/* Two die after 40 touches, one as soon as its handshake is sent: that one is gone
	 * before its first page can be in, whatever the machine's speed (under ASan the
	 * others can be populated completely before their death is noticed). */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(serve_client(&d, out, sizeof(out), i ? "--die-after 40" : "--die-after 0"),
			 128 + SIGKILL);
	CHECK_EQ(serve_bg_finish(&good, true), 0);
	wait_ended(&d, 5);
	CHECK_EQ(count_proc_dir(d.pid, "fd"), fds);
	CHECK_EQ(count_proc_dir(d.pid, "task"), threads);
	daemon_stop(&d);
	faulty_stop(&f);
	/* A killed client may still have been populated completely before its death was
	 * noticed; the one killed at once was not. */
	const char *log = serve_read_log(&d);
	int early = count(log, "ended before every page was in");
	CHECK_MSG(early >= 1, "%s", log);
	CHECK_EQ(early + count(log, "resident in"), 5);
	return 0;
}

/* SIGTERM with a client half populated (its reads stalled): the daemon finishes it first. */
static int t_sigterm_finishes_clients(void)
{
	struct serve_daemon d = DAEMON_INIT;
	struct faulty f;
	stalling_daemon(&d, &f, 3);
	struct serve_bg c;
	serve_bg_start(&c, &d, "--pause-after 4");
	serve_bg_wait_line(&c, "paused");
	CHECK_EQ(kill(d.pid, SIGTERM), 0);
	int ws;
	CHECK_EQ(waitpid(d.pid, &ws, 0), d.pid);
	CHECK_MSG(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "thaw serve ended with 0x%x", ws);
	/* The daemon and its uffd are gone: a page it had not installed would now read as
	 * zeros, and the client checks every byte. */
	CHECK_EQ(serve_bg_finish(&c, true), 0);
	const char *log = serve_read_log(&d);
	CHECK_MSG(strstr(log, "finishing 1 connected client first"), "%s", log);
	CHECK_EQ(count(log, "resident in"), 1);
	CHECK_GT(faulty_stat(&f, "faults"), 0);
	faulty_stop(&f);
	return 0;
}

/*
 * A store that never answers: SIGTERM ends the client at the drain deadline.
 * Its missing pages are poisoned (it dies of SIGBUS, having read no wrong
 * byte); the daemon exits at once after.
 */
static int t_sigterm_drain_deadline(void)
{
	struct serve_daemon d = DAEMON_INIT;
	struct faulty f;
	daemon_paths(&d);
	CHECK_OK(faulty_start(&f, test_tmpdir(), ""));
	d.uri = faulty_url(&f, "guest.thaw");
	/* The tables are read at start; from then on no data comes. */
	daemon_start(&d, "--cache-mb 0 --drain-timeout 1");
	CHECK_EQ(faulty_ctl(&f, "fault=stall&stall=60&count=-1&min_off=0", NULL, 0), 0);
	struct serve_bg c;
	/* Under a sanitizer the client must die of the SIGBUS, not report it. */
	static const char *const san[] = { "ASAN_OPTIONS", "TSAN_OPTIONS" };
	for (int i = 0; i < 2; i++) {
		char opts[512];
		snprintf(opts, sizeof(opts), "%s:handle_sigbus=0",
			 getenv(san[i]) ? getenv(san[i]) : "");
		setenv(san[i], opts, 1);
	}
	serve_bg_start(&c, &d, "--pause-after 0");
	serve_bg_wait_line(&c, "paused");
	for (int i = 0; i < 500 && !strstr(serve_read_log(&d), "serving 1 mapping"); i++)
		usleep(10000);
	uint64_t t0 = test_now_ns();
	CHECK_EQ(kill(d.pid, SIGTERM), 0);
	int ws;
	CHECK_EQ(waitpid(d.pid, &ws, 0), d.pid);
	CHECK_LT(test_now_ns() - t0, 10000000000ull);
	CHECK_MSG(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "thaw serve ended with 0x%x", ws);
	const char *log = serve_read_log(&d);
	CHECK_MSG(strstr(log, "not resident by the drain deadline"), "%s", log);
	CHECK_EQ(serve_bg_finish(&c, true), 128 + SIGBUS);
	faulty_stop(&f);
	return 0;
}

/* Run vmm_client as uid with the capability a VMM needs for its userfaultfd. */
static int client_as(const struct serve_daemon *d, unsigned uid, const char *opts)
{
	char cmd[2048];
	return test_run(out, sizeof(out),
			"setpriv --reuid=%u --regid=%u --clear-groups --inh-caps=+sys_ptrace "
			"--ambient-caps=+sys_ptrace %s",
			uid, uid, serve_client_cmd(cmd, sizeof(cmd), d, opts));
}

/*
 * The README's operations: a socket in a directory that does not exist yet
 * (thaw serve --socket /run/thaw/vm.sock on a fresh machine), --pidfile,
 * --allow-uid, --threads, --cache-mb and SIGUSR1.
 */
static int t_operations(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_paths(&d);
	snprintf(d.sock, sizeof(d.sock), "%s", test_path("run/thaw/vm.sock"));
	char pidfile[512], extra[1024], buf[64];
	snprintf(pidfile, sizeof(pidfile), "%s", test_path("thaw.pid"));
	snprintf(extra, sizeof(extra), "--pidfile %s --allow-uid 65534 --threads 1 --cache-mb 512",
		 pidfile);
	daemon_start(&d, extra);
	CHECK_EQ(test_run(buf, sizeof(buf), "cat %s", pidfile), 0);
	CHECK_EQ(atoi(buf), d.pid);
	CHECK_CLIENT(&d, "");

	/* Another uid: accepted when allowed, refused with the reason otherwise. */
	if (test_run(buf, sizeof(buf), "command -v setpriv") == 0) {
		CHECK_EQ(chmod(test_tmpdir(), 0755), 0);
		CHECK_EQ(chmod(d.snap, 0644), 0);
		CHECK_EQ(chmod(d.sock, 0666), 0);
		int st = client_as(&d, 65534, "");
		CHECK_MSG(st == 0, "uid 65534: %d\n%s\n%s", st, out, serve_read_log(&d));
		st = client_as(&d, 65533, "--expect-refused");
		CHECK_MSG(st == 0, "uid 65533: %d\n%s\n%s", st, out, serve_read_log(&d));
		CHECK_MSG(strstr(serve_read_log(&d), "uid 65533 is not"), "%s", serve_read_log(&d));
	}

	/* SIGUSR1: a stats line and the JSON file, now and not only when a client ends. */
	int lines = count(serve_read_log(&d), "stats:");
	CHECK_EQ(unlink(d.json), 0);
	CHECK_EQ(kill(d.pid, SIGUSR1), 0);
	for (int i = 0; i < 500 && access(d.json, R_OK); i++)
		usleep(10000);
	static char js[4096];
	CHECK_EQ(test_run(js, sizeof(js), "cat %s", d.json), 0);
	CHECK_GE(test_json_num(js, "accepted"), 2);
	CHECK_EQ(test_json_num(js, "limit"), 512u << 20);
	CHECK_EQ(count(serve_read_log(&d), "stats:"), lines + 1);
	daemon_stop(&d);
	CHECK_MSG(access(pidfile, F_OK), "the pidfile was left behind");

	/* A socket directory that cannot be made: a clear message, status 1. */
	CHECK_EQ(test_run(out, sizeof(out), "touch %s", test_path("file")), 0);
	int st = test_run(out, sizeof(out), "%s serve --socket %s/x.sock %s",
			  test_build_bin("thaw"), test_path("file/sub"), d.snap);
	CHECK_MSG(st == 1 && strstr(out, "cannot create") && strstr(out, "file/sub"),
		  "status %d:\n%s", st, out);
	return 0;
}

/* --max-clients: one client more is refused with the reason; a place that frees serves the next. */
static int t_max_clients(void)
{
	struct serve_daemon d = DAEMON_INIT;
	struct faulty f;
	daemon_paths(&d);
	CHECK_OK(faulty_start(&f, test_tmpdir(), ""));
	d.uri = faulty_url(&f, "guest.thaw");
	daemon_start(&d, "--max-clients 1");
	/* From now on (the tables are read) the first read stalls 2 s: the first client
	 * cannot be over before the second asks (a client that is over is let go, which
	 * --expect-refused could not tell from a refusal). */
	CHECK_EQ(faulty_ctl(&f, "fault=stall&stall=2&count=1&min_off=0", NULL, 0), 0);
	struct serve_bg c;
	serve_bg_start(&c, &d, "--pause-after 0");
	serve_bg_wait_line(&c, "paused");
	CHECK_CLIENT(&d, "--expect-refused");
	const char *log = serve_read_log(&d);
	CHECK_MSG(strstr(log, "refused: 1 clients are being served already (--max-clients)"), "%s",
		  log);
	CHECK_EQ(serve_bg_finish(&c, true), 0);
	/* The first one ended: its place is free again. */
	wait_ended(&d, 1);
	CHECK_CLIENT(&d, "");
	daemon_stop(&d);
	faulty_stop(&f);
	return 0;
}

/* The library call checks what it is given before touching the uffd. */
static int t_attach_checks_mappings(void)
{
	const char *path = test_path("a.thaw");
	serve_make_snapshot(path, SNAP_BYTES, 51, true);
	struct thaw_snapshot *s;
	CHECK_OK(thaw_snapshot_open(path, NULL, &s));
	static const struct thaw_mapping bad[][2] = {
		{ { 0x10000, 0x2000, 0 }, { 0x11000, 0x2000, 0x4000 } }, /* addresses overlap */
		{ { 0x10000, 0x2000, 0 }, { 0x20000, 0x2000, 0x1000 } }, /* offsets overlap */
		{ { 0x10000, 0x2000, SNAP_BYTES - 0x1000 }, { 0x20000, 0x1000, 0 } },
		{ { 0x10800, 0x1000, 0 }, { 0x20000, 0x1000, 0x1000 } },
		{ { 0x10000, 0, 0 }, { 0x20000, 0x1000, 0x1000 } },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		CHECK_GE(fd, 0);
		struct thaw_restore *r = (void *)1;
		CHECK_EQ(thaw_restore_attach(s, fd, bad[i], 2, NULL, &r), -EINVAL);
		CHECK(r == NULL);
		/* Ownership passed: the fd is closed. */
		CHECK_EQ(fcntl(fd, F_GETFD), -1);
	}
	thaw_snapshot_close(s);
	return 0;
}

/* A second daemon on a live socket is refused and leaves it alone; a stale socket is replaced. */
static int t_two_daemons_one_socket(void)
{
	struct serve_daemon d = DAEMON_INIT;
	daemon_start(&d, NULL);
	int st = test_run(out, sizeof(out), "timeout 10 %s serve --socket %s %s",
			  test_build_bin("thaw"), d.sock, d.snap);
	CHECK_MSG(st == 1 && strstr(out, "another thaw serve is listening"), "status %d:\n%s", st,
		  out);
	CHECK_CLIENT(&d, "");
	CHECK_EQ(kill(d.pid, SIGKILL), 0);
	CHECK_EQ(waitpid(d.pid, &st, 0), d.pid);
	CHECK_EQ(access(d.sock, F_OK), 0); /* left behind by the killed daemon */
	daemon_start(&d, NULL);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.sock);
	bool up = false;
	for (int i = 0; i < 500 && !up; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (!up)
			usleep(10000);
	}
	CHECK_MSG(up, "the new daemon did not replace the stale socket:\n%s", serve_read_log(&d));
	CHECK_CLIENT(&d, "");
	daemon_stop(&d);
	return 0;
}

static const struct test_case cases[] = {
	{ "one_client", t_one_client, 30 },
	{ "four_clients_one_snapshot", t_four_clients_one_snapshot, 60 },
	{ "two_regions_apart", t_two_regions_apart, 30 },
	{ "remove_gives_zeros", t_remove_gives_zeros, 60 },
	{ "unmap_remap", t_unmap_remap, 30 },
	{ "fork_child_reads", t_fork_child_reads, 30 },
	{ "bad_handshakes", t_bad_handshakes, 60 },
	{ "client_dies", t_client_dies, 60 },
	{ "sigterm_finishes_clients", t_sigterm_finishes_clients, 30 },
	{ "operations", t_operations, 30 },
	{ "attach_checks_mappings", t_attach_checks_mappings, 10 },
	{ "two_daemons_one_socket", t_two_daemons_one_socket, 60 },
	{ "max_clients", t_max_clients, 60 },
	{ "sigterm_drain_deadline", t_sigterm_drain_deadline, 60 },
};

TEST_MAIN(cases)
