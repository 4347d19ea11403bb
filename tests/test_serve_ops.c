/* SPDX-License-Identifier: MIT */
/*
 * thaw serve as operators run it: --metrics scraped with curl while clients
 * restore, socket activation and sd_notify as systemd speaks them (the test
 * plays systemd: it passes the listening socket as fd 3 and reads the
 * notification datagrams), and the example units through systemd-analyze.
 */
#include "httpd.h"
#include "serve_harness.h"
#include "testlib.h"
#include "thaw.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SNAP_BYTES SERVE_SNAP_BYTES
#define OUT_LEN	   (512 * 1024)

static char out[OUT_LEN];

/* A restarted daemon's log follows its predecessor's. */
#define DAEMON_INIT ((struct serve_daemon){ .listen_fd = -1, .log_append = true })

/* The case's files; the snapshot (of len bytes) is made on first use. */
static void paths_len(struct serve_daemon *d, size_t len)
{
	serve_paths(d, len, 77, false);
}

static void paths(struct serve_daemon *d)
{
	paths_len(d, SNAP_BYTES);
}

/* ---- metrics ---- */

static char scraped[OUT_LEN];

/* GET /metrics with curl (addr: a Unix socket path or HOST:PORT); fails the case on error. */
static const char *scrape(const char *addr)
{
	int st = addr[0] == '/' ? test_run(scraped, sizeof(scraped),
					   "curl -sS --fail --max-time 5 --unix-socket %s "
					   "http://localhost/metrics",
					   addr)
				: test_run(scraped, sizeof(scraped),
					   "curl -sS --fail --max-time 5 http://%s/metrics", addr);
	CHECK_MSG(st == 0, "curl %s: status %d: %s", addr, st, scraped);
	return scraped;
}

/* The value of the sample "name" or "name{labels}" (exactly), or NAN when absent. */
static double sample(const char *text, const char *series)
{
	size_t len = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, series, len) && p[len] == ' ')
			return strtod(p + len + 1, NULL);
	return NAN;
}

/*
 * The exposition format as Prometheus reads it: every sample belongs to a
 * family announced by # TYPE before it (histograms through their _bucket,
 * _sum and _count series), parses as a number, and buckets never decrease.
 */
static void check_format(const char *text)
{
	char fam[128] = "", type[32] = "";
	double last_bucket = -1;
	int samples = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		CHECK_MSG(nl, "the text does not end with a newline");
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		p = nl + 1;
		if (!strncmp(line, "# TYPE ", 7)) {
			CHECK_EQ(sscanf(line + 7, "%127s %31s", fam, type), 2);
			last_bucket = -1;
			continue;
		}
		if (line[0] == '#')
			continue;
		size_t nlen = strcspn(line, "{ ");
		bool ok = nlen == strlen(fam) && !strncmp(line, fam, nlen);
		if (!ok && !strcmp(type, "histogram"))
			ok = !strncmp(line, fam, strlen(fam)) &&
			     (!strncmp(line + strlen(fam), "_bucket", 7) ||
			      !strncmp(line + strlen(fam), "_sum", 4) ||
			      !strncmp(line + strlen(fam), "_count", 6));
		CHECK_MSG(ok, "sample outside its family %s: %s", fam, line);
		const char *v = strrchr(line, ' ');
		char *end;
		double x = strtod(v + 1, &end);
		CHECK_MSG(*end == '\0' && x >= 0, "bad value: %s", line);
		if (strstr(line, "_bucket{")) {
			if (strstr(line, "le=\"2e-06\""))
				last_bucket = -1; /* a new series starts */
			CHECK_MSG(x >= last_bucket, "bucket decreases: %s", line);
			last_bucket = x;
		}
		samples++;
	}
	CHECK_GE(samples, 20);
}

/* Scrape until cond holds for the text (the daemon publishes after each turn). */
#define SCRAPE_UNTIL(addr, cond)                                                                   \
	do {                                                                                       \
		const char *text_;                                                                 \
		for (int i_ = 0;; i_++) {                                                          \
			text_ = scrape(addr);                                                      \
			if (cond)                                                                  \
				break;                                                             \
			CHECK_MSG(i_ < 200, "never true: %s; last scrape:\n%s", #cond, text_);     \
			usleep(20000);                                                             \
		}                                                                                  \
	} while (0)

static int t_metrics_move_during_a_restore(void)
{
	struct serve_daemon d = DAEMON_INIT;
	paths(&d);
	char maddr[128];
	snprintf(maddr, sizeof(maddr), "%s", test_path("metrics.sock"));
	char extra[256];
	snprintf(extra, sizeof(extra), "--metrics %s", maddr);
	serve_start(&d, extra);
	const char *t = scrape(maddr);
	check_format(t);
	CHECK_EQ(sample(t, "thaw_serve_clients_accepted_total"), 0);
	CHECK_EQ(sample(t, "thaw_serve_faults_total"), 0);

	/* A client that has touched 16 pages and waits: its restore is under way. */
	struct serve_bg c;
	serve_bg_start(&c, &d, "--pause-after 16");
	serve_bg_wait_line(&c, "paused");
	SCRAPE_UNTIL(maddr, sample(text_, "thaw_serve_clients_accepted_total") == 1 &&
				    sample(text_, "thaw_serve_faults_total") >= 1 &&
				    sample(text_, "thaw_serve_bytes_read_total") > 0);
	double faults_mid = sample(scraped, "thaw_serve_faults_total");
	check_format(scraped);
	CHECK_EQ(serve_bg_finish(&c, false), 0);
	SCRAPE_UNTIL(maddr, sample(text_, "thaw_serve_clients_served_total") == 1);
	t = scraped;
	check_format(t);
	CHECK_GE(sample(t, "thaw_serve_faults_total"), faults_mid);
	CHECK_EQ(sample(t, "thaw_serve_clients_active"), 0);
	CHECK_GT(sample(t, "thaw_serve_bytes_read_total"), 0);
	double pages = sample(t, "thaw_serve_pages_total{how=\"fault\"}") +
		       sample(t, "thaw_serve_pages_total{how=\"background\"}") +
		       sample(t, "thaw_serve_pages_total{how=\"prefetch\"}");
	/* Not every zero page is counted as installed (thaw_stats counts background
	 * zero chunks nowhere: they are left to the kernel), so: at most all. */
	CHECK_GT(pages, 0);
	CHECK_LE(pages, SNAP_BYTES / 4096);
	/* A service is timed once: a fault event whose chunk was in already, or
	 * that waits on a chunk another fault fetches, adds no latency sample. */
	CHECK_GE(sample(t, "thaw_serve_fault_latency_seconds_count"), 1);
	CHECK_LE(sample(t, "thaw_serve_fault_latency_seconds_count"),
		 sample(t, "thaw_serve_faults_total"));
	CHECK_EQ(sample(t, "thaw_serve_fault_latency_seconds_bucket{le=\"+Inf\"}"),
		 sample(t, "thaw_serve_fault_latency_seconds_count"));

	/* A second client of the same snapshot installs from the cache. */
	CHECK_MSG(serve_client(&d, out, sizeof(out), "") == 0, "%s", out);
	SCRAPE_UNTIL(maddr, sample(text_, "thaw_serve_clients_served_total") == 2);
	CHECK_GT(sample(scraped, "thaw_serve_cache_hits_total"), 0);

	/* The same figures as --json-stats. */
	CHECK_EQ(kill(d.pid, SIGUSR1), 0);
	for (int i = 0; i < 200; i++) {
		CHECK(test_run(out, sizeof(out), "cat %s 2>/dev/null", d.json) >= 0);
		if (strstr(out, "\"served\": 2"))
			break;
		usleep(10000);
	}
	t = scrape(maddr);
	CHECK_EQ(test_json_num(out, "accepted"), sample(t, "thaw_serve_clients_accepted_total"));
	CHECK_EQ(test_json_num(out, "served"), sample(t, "thaw_serve_clients_served_total"));
	CHECK_EQ(test_json_num(out, "refused"), sample(t, "thaw_serve_clients_refused_total"));
	CHECK_EQ(test_json_num(out, "hits"), sample(t, "thaw_serve_cache_hits_total"));
	CHECK_EQ(test_json_num(out, "inserts"), sample(t, "thaw_serve_cache_inserts_total"));
	CHECK_EQ(test_json_num(out, "store_bytes_ended_clients"),
		 sample(t, "thaw_serve_bytes_read_total"));

	/* Anything but GET /metrics is refused; the endpoint goes on. */
	CHECK_EQ(test_run(out, sizeof(out),
			  "curl -s -o /dev/null -w '%%{http_code}' --unix-socket %s "
			  "http://localhost/other",
			  maddr),
		 0);
	CHECK_MSG(!strcmp(out, "404"), "GET /other: %s", out);
	CHECK_EQ(test_run(out, sizeof(out),
			  "curl -s -o /dev/null -w '%%{http_code}' -X POST --unix-socket %s "
			  "http://localhost/metrics",
			  maddr),
		 0);
	CHECK_MSG(!strcmp(out, "405"), "POST /metrics: %s", out);
	scrape(maddr);
	serve_stop(&d);
	CHECK_MSG(access(maddr, F_OK) != 0, "the metrics socket was left behind");
	return 0;
}

/* The file offset of the last stored byte of the last chunk that has any. */
static uint64_t last_stored_byte(const char *path)
{
	struct thaw_snapshot *snap;
	CHECK_OK(thaw_snapshot_open(path, NULL, &snap));
	struct thaw_snapshot_info in = { .sz = sizeof(in) };
	CHECK_OK(thaw_snapshot_get_info(snap, &in));
	uint64_t last = 0;
	for (uint64_t i = 0; i < in.chunk_count; i++) {
		struct thaw_chunk_info ci = { .sz = sizeof(ci) };
		CHECK_OK(thaw_snapshot_chunk(snap, i, &ci));
		if (ci.stored_len && ci.stored_off + ci.stored_len - 1 > last)
			last = ci.stored_off + ci.stored_len - 1;
	}
	thaw_snapshot_close(snap);
	CHECK_GT(last, 0);
	return last;
}

/* Per-client series over loopback TCP, while a stalled store keeps the client missing pages. */
static int t_metrics_per_client_tcp(void)
{
	struct serve_daemon d = DAEMON_INIT;
	/* Big enough that the paused client is still missing pages when it is scraped. */
	paths_len(&d, 8 * SNAP_BYTES);
	struct stat st;
	CHECK_EQ(stat(d.snap, &st), 0);
	struct faulty f;
	CHECK_OK(faulty_start(&f, test_tmpdir(), ""));
	char q[128];
	/* Whatever request reads the last stored chunk stalls: the restore cannot end before. */
	snprintf(q, sizeof(q), "fault=stall&stall=2&count=2&match=%llu",
		 (unsigned long long)last_stored_byte(d.snap));
	CHECK_EQ(faulty_ctl(&f, q, NULL, 0), 0);
	d.uri = faulty_url(&f, "guest.thaw");
	serve_start(&d, "--cache-mb 0 --metrics 127.0.0.1:0");
	const char *m = NULL;
	for (int i = 0; i < 200 && !(m = strstr(serve_read_log(&d), "metrics on ")); i++)
		usleep(10000);
	CHECK_MSG(m, "no 'metrics on' line:\n%s", serve_read_log(&d));
	char addr[64];
	CHECK_EQ(sscanf(m, "metrics on %63s", addr), 1);
	CHECK(!strncmp(addr, "127.0.0.1:", 10));

	struct serve_bg c;
	serve_bg_start(&c, &d, "--pause-after 16");
	serve_bg_wait_line(&c, "paused");
	char series[128];
	snprintf(series, sizeof(series), "thaw_client_faults_total{client=\"1\",pid=\"%d\"}",
		 (int)c.pid);
	SCRAPE_UNTIL(addr, sample(text_, series) >= 1);
	check_format(scraped);
	double faults = sample(scraped, series);
	/* A fault still being served is counted, its latency not yet. */
	snprintf(series, sizeof(series),
		 "thaw_client_fault_latency_seconds_count{client=\"1\",pid=\"%d\"}", (int)c.pid);
	CHECK_MSG(!isnan(sample(scraped, series)), "no %s", series);
	CHECK_LE(sample(scraped, series), faults);
	snprintf(series, sizeof(series), "thaw_client_resident{client=\"1\",pid=\"%d\"}",
		 (int)c.pid);
	CHECK_EQ(sample(scraped, series), 0);
	CHECK_EQ(sample(scraped, "thaw_serve_clients_active"), 1);
	CHECK_EQ(serve_bg_finish(&c, false), 0);
	SCRAPE_UNTIL(addr, sample(text_, "thaw_serve_clients_served_total") == 1);
	CHECK_MSG(!strstr(scraped, "thaw_client_faults_total{"), "an ended client's series stay");
	serve_stop(&d);
	faulty_stop(&f);
	return 0;
}

static int t_metrics_bad_address(void)
{
	struct serve_daemon d = DAEMON_INIT;
	paths(&d);
	int st = test_run(out, sizeof(out), "%s serve --socket %s --metrics nonsense %s",
			  test_build_bin("thaw"), d.sock, d.snap);
	CHECK_EQ(st, 1);
	CHECK_MSG(strstr(out, "bad --metrics 'nonsense'"), "%s", out);
	CHECK_MSG(access(d.sock, F_OK) != 0, "the socket was left behind");
	return 0;
}

/* ---- systemd ---- */

/*
 * A Unix socket bound at path, as systemd makes them: SOCK_STREAM and
 * listening (a .socket unit's ListenStream=), or SOCK_DGRAM (NOTIFY_SOCKET).
 */
static int bound_socket(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	CHECK_LT(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	CHECK_GE(fd, 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (type == SOCK_STREAM)
		CHECK_EQ(listen(fd, 16), 0);
	return fd;
}

/* Read notification datagrams until one contains want; returns it. */
static const char *wait_notify(int fd, const char *want)
{
	static char msg[1024];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		CHECK_MSG(poll(&p, 1, 10000) == 1, "no notification with '%s' within 10 s", want);
		ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
		CHECK_GT(n, 0);
		msg[n] = '\0';
		if (strstr(msg, want))
			return msg;
	}
}

/*
 * The socket systemd passes: the daemon serves it without --socket, never
 * removes the file, and a client that connects while no daemon runs (a
 * restart) is served by the next one.
 */
static int t_socket_activation(void)
{
	struct serve_daemon d = DAEMON_INIT;
	paths(&d);
	d.listen_fd = bound_socket(d.sock, SOCK_STREAM);
	char npath[128];
	snprintf(npath, sizeof(npath), "%s", test_path("notify.sock"));
	int nfd = bound_socket(npath, SOCK_DGRAM);
	d.notify = npath;
	serve_start(&d, NULL);
	const char *msg = wait_notify(nfd, "READY=1");
	char mainpid[32];
	snprintf(mainpid, sizeof(mainpid), "MAINPID=%d", (int)d.pid);
	CHECK_MSG(strstr(msg, mainpid), "READY message: %s", msg);
	CHECK_MSG(serve_client(&d, out, sizeof(out), "") == 0, "%s\n%s", out, serve_read_log(&d));
	wait_notify(nfd, "STATUS=0 clients active, 1 served, 0 refused");
	serve_stop(&d);
	wait_notify(nfd, "STOPPING=1");
	CHECK_MSG(access(d.sock, F_OK) == 0, "the daemon removed systemd's socket file");
	CHECK_MSG(strstr(serve_read_log(&d), "on the socket systemd passed"), "%s",
		  serve_read_log(&d));

	/* Between two daemons: the client's connection waits in the socket's queue. */
	struct serve_bg c;
	serve_bg_start(&c, &d, "");
	usleep(200000);
	serve_start(&d, NULL);
	wait_notify(nfd, "READY=1");
	CHECK_EQ(serve_bg_finish(&c, false), 0);
	serve_stop(&d);
	close(d.listen_fd);
	close(nfd);
	return 0;
}

static int t_socket_activation_misuse(void)
{
	struct serve_daemon d = DAEMON_INIT;
	paths(&d);
	const char *thaw = test_build_bin("thaw");
	/* Two sockets: refused, naming what it wants. */
	int st = test_run(out, sizeof(out),
			  "exec 3</dev/null 4</dev/null; LISTEN_FDS=2 exec sh -c "
			  "'LISTEN_PID=$$ exec %s serve %s'",
			  thaw, d.snap);
	CHECK_EQ(st, 1);
	CHECK_MSG(strstr(out, "one Unix stream socket"), "%s", out);
	/* fd 3 is a file, not a listening socket. */
	st = test_run(out, sizeof(out),
		      "exec 3<%s; LISTEN_FDS=1 exec sh -c 'LISTEN_PID=$$ exec %s serve %s'", d.snap,
		      thaw, d.snap);
	CHECK_EQ(st, 1);
	CHECK_MSG(strstr(out, "not a listening Unix stream socket"), "%s", out);
	/* Variables meant for another process: --socket is required as usual. */
	st = test_run(out, sizeof(out), "LISTEN_PID=1 LISTEN_FDS=1 %s serve %s", thaw, d.snap);
	CHECK_EQ(st, 2);
	CHECK_MSG(strstr(out, "missing --socket"), "%s", out);
	return 0;
}

/* The example units as systemd reads them, and hardened. */
static int t_units_verify(void)
{
	if (access("/usr/bin/systemd-analyze", X_OK))
		test_skip("systemd-analyze (package systemd) is not installed");
	const char *dir = test_tmpdir();
	char thaw[4096];
	CHECK(realpath(test_build_bin("thaw"), thaw));
	/* ExecStart must name an executable: the built one stands in for the installed one. */
	CHECK_EQ(test_run(out, sizeof(out),
			  "sed 's|/usr/local/bin/thaw|%s|' 'examples/thaw-serve@.service' > "
			  "'%s/thaw-serve@.service' && cp 'examples/thaw-serve@.socket' '%s/'",
			  thaw, dir, dir),
		 0);
	int st = test_run(out, sizeof(out),
			  "cd %s && systemd-analyze verify --man=no ./thaw-serve@vm1.socket "
			  "./thaw-serve@vm1.service 2>&1",
			  dir);
	CHECK_MSG(st == 0 && out[0] == '\0', "systemd-analyze verify: status %d:\n%s", st, out);
	const char *unit = "examples/thaw-serve@.service";
	static const char *const want[] = { "Type=notify\n",	      "NoNewPrivileges=yes\n",
					    "ProtectSystem=strict\n", "CapabilityBoundingSet=\n",
					    "AmbientCapabilities=\n", "PrivateDevices=yes\n" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_EQ(test_run(out, sizeof(out), "grep -c '^%.*s$' %s", (int)strlen(want[i]) - 1,
				  want[i], unit),
			 0);
	}
	/* The daemon is started by its socket: no --socket of its own. */
	CHECK_NE(test_run(out, sizeof(out), "grep -q -- '--socket' %s", unit), 0);
	st = test_run(out, sizeof(out),
		      "cd %s && systemd-analyze security --offline=yes ./thaw-serve@vm1.service "
		      "2>&1 | grep 'Overall exposure'",
		      dir);
	CHECK_MSG(st == 0, "systemd-analyze security: %s", out);
	double level = strtod(strstr(out, "service: ") + 9, NULL);
	CHECK_MSG(level <= 4.0, "exposure %.1f: %s", level, out);
	return 0;
}

static const struct test_case cases[] = {
	{ "metrics_move_during_a_restore", t_metrics_move_during_a_restore, 90 },
	{ "metrics_per_client_tcp", t_metrics_per_client_tcp, 90 },
	{ "metrics_bad_address", t_metrics_bad_address },
	{ "socket_activation", t_socket_activation, 90 },
	{ "socket_activation_misuse", t_socket_activation_misuse },
	{ "units_verify", t_units_verify },
};

TEST_MAIN(cases)
