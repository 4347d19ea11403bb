/* SPDX-License-Identifier: MIT */
/*
 * thaw serve: an out-of-process page-fault server. Clients (VMMs, sandbox
 * managers) connect to a Unix socket and send the Firecracker UFFD
 * handshake; each gets its own restore attached to its userfaultfd, all of
 * them sharing one open snapshot, one store and one decoded-chunk cache.
 * One thread runs this loop; each restore runs its own manager thread, so
 * a slow or dead client never holds up another.
 */
#include "cli_handshake.h"
#include "cli_http.h"
#include "cli_metrics.h"
#include "cli_systemd.h"
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char serve_help[] =
	"Usage: thaw serve --socket PATH [OPTIONS] SNAP|URL\n"
	"\n"
	"Serve page faults for other processes' memory from SNAP. A client connects to\n"
	"the Unix stream socket PATH and sends one message: a JSON array of\n"
	"  {\"base_host_virt_addr\": A, \"size\": N, \"offset\": O, \"page_size\": P}\n"
	"(\"page_size_kib\" is accepted for \"page_size\"; it holds bytes too) with its\n"
	"userfaultfd attached (SCM_RIGHTS): Firecracker's UFFD handshake. Mapping i\n"
	"says that the client's memory [A, A+N) holds SNAP's bytes [O, O+N), its regions\n"
	"laid out back to back ('thaw create --raw guest.mem --base 0' makes such a\n"
	"snapshot of a Firecracker memory file). The client registers its memory in\n"
	"MISSING mode; REMOVE, UNMAP, REMAP and FORK events are handled if it enabled\n"
	"them: removed pages read as zeros afterwards, moved memory is followed, a\n"
	"forked child is served from the same snapshot. Pages arrive when touched and\n"
	"in the background; once every page is in, the client's ranges are\n"
	"unregistered, its uffd closed and the connection ended.\n"
	"\n"
	"A bad handshake (malformed JSON, no fd, a mapping outside the snapshot or not\n"
	"page aligned, another page size) or a peer with another uid is refused and\n"
	"logged; other clients are not disturbed.\n"
	"\n"
	"  --socket PATH       where to listen (an old socket file there is replaced; one\n"
	"                      a live daemon listens on is refused); not needed under\n"
	"                      systemd socket activation (LISTEN_FDS)\n"
	"  --cache-mb N        decoded chunks kept for all clients, in MiB (default 256;\n"
	"                      0 = none): a chunk one client fetched is installed into the\n"
	"                      others without reading the store again\n"
	"  --allow-uid UID     also accept clients running as UID (repeatable; default:\n"
	"                      only this process's uid)\n"
	"  --pidfile FILE      write the daemon's pid here, removed at exit\n"
	"  --json-stats FILE   write counters as JSON here on SIGUSR1, when a client\n"
	"                      ends, and at exit\n"
	"  --metrics ADDR      answer GET /metrics (Prometheus text format: the same\n"
	"                      figures, per client and daemon-wide, with latency\n"
	"                      histograms) on ADDR, a Unix socket path or IPV4:PORT\n"
	"  --threads N         decode threads per client (default: online CPUs)\n"
	"  --max-clients N     clients served at once (default 64); one more is refused\n"
	"                      with a logged reason. Each costs a manager thread, --threads\n"
	"                      decode threads (started with its background pass), a\n"
	"                      userfaultfd, an eventfd, an io_uring ring and the socket,\n"
	"                      and about 40 bytes per chunk of state (640 KiB for 1 GiB\n"
	"                      of 64 KiB chunks) besides the shared cache; each of its\n"
	"                      forked children costs as much\n"
	"  --drain-timeout S   on SIGTERM, finish populating connected clients for at most\n"
	"                      S seconds (default 30; 0 = none), then end the rest early:\n"
	"                      their missing pages are poisoned (SIGBUS when touched)\n"
	"  -h, --help          this text\n"
	"\n"
	"Signals: SIGUSR1 logs a stats line (and writes --json-stats). SIGTERM or SIGINT\n"
	"stop accepting, finish populating every connected client (a client left with\n"
	"missing pages would hang) until the drain deadline, then exit 0.\n"
	"Logs go to stderr; THAW_LOG=info|debug shows more of the library's lines.\n"
	"Under systemd: the socket of a .socket unit is used when LISTEN_PID/LISTEN_FDS\n"
	"pass one (the socket file then outlives restarts), and READY=1 and STATUS=\n"
	"lines go to NOTIFY_SOCKET (Type=notify).\n";

enum {
	OPT_SOCKET = 0x5300,
	OPT_CACHE_MB,
	OPT_ALLOW_UID,
	OPT_PIDFILE,
	OPT_JSON,
	OPT_THREADS,
	OPT_DRAIN,
	OPT_MAX_CLIENTS,
	OPT_METRICS
};

static const struct option serve_opts[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "cache-mb", required_argument, NULL, OPT_CACHE_MB },
	{ "allow-uid", required_argument, NULL, OPT_ALLOW_UID },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "json-stats", required_argument, NULL, OPT_JSON },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "help", no_argument, NULL, 'h' },
	CLI_HTTP_LONGOPTS,
	{ 0 },
};

#define MAX_ALLOWED_UIDS 32
/* A client that connects and says nothing is dropped after this long. */
#define HANDSHAKE_TIMEOUT_NS (5ull * 1000000000ull)
#define POLL_MS		     50

struct client {
	int fd; /* the connection */
	unsigned id;
	pid_t pid;
	uid_t uid;
	struct thaw_restore *r; /* NULL while the handshake is awaited */
	uint64_t since_ns;
};

struct server {
	const char *cmd;
	const char *uri;
	const char *socket_path;
	const char *pidfile;
	const char *json_path;
	const char *metrics_addr;
	struct cli_metrics *metrics; /* NULL without --metrics */
	bool activated;		     /* lfd came from systemd, which owns the socket file */
	struct cli_sd_notify notify;
	char status[128]; /* the last STATUS= sent */
	struct thaw_snapshot *snap;
	struct thaw_restore_opts ro;
	uint64_t page_size;
	uint64_t cache_mb;
	long drain_s; /* SIGTERM: how long connected clients may take to finish */
	long max_clients;
	int lfd, sfd;
	uid_t allowed[MAX_ALLOWED_UIDS];
	size_t nallowed;
	struct client *clients;
	size_t nclients, cap;
	unsigned next_id;
	uint64_t accepted, refused, served, ended_early;
	uint64_t store_bytes; /* read from the store by clients that have ended */
	uint64_t start_ns;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "thaw serve: %s\n", line);
}

static void write_json_stats(const struct server *s)
{
	if (!s->json_path)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->json_path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		say("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	struct cli_json j;
	cli_json_init(&j, f);
	cli_json_obj_begin(&j, NULL);
	cli_json_u64(&j, "uptime_ms", (cli_now_ns() - s->start_ns) / 1000000);
	cli_json_u64(&j, "accepted", s->accepted);
	cli_json_u64(&j, "refused", s->refused);
	cli_json_u64(&j, "served", s->served);
	cli_json_u64(&j, "ended_early", s->ended_early);
	cli_json_u64(&j, "store_bytes_ended_clients", s->store_bytes);
	struct thaw_cache_stats cs = { .sz = sizeof(cs) };
	thaw_snapshot_cache_stats(s->snap, &cs);
	cli_json_obj_begin(&j, "cache");
	cli_json_u64(&j, "limit", cs.limit);
	cli_json_u64(&j, "bytes", cs.bytes);
	cli_json_u64(&j, "hits", cs.hits);
	cli_json_u64(&j, "inserts", cs.inserts);
	cli_json_u64(&j, "evictions", cs.evictions);
	cli_json_obj_end(&j);
	cli_json_arr_begin(&j, "clients");
	for (size_t i = 0; i < s->nclients; i++) {
		const struct client *c = &s->clients[i];
		struct thaw_stats st = { .sz = sizeof(st) };
		if (!c->r || thaw_restore_stats(c->r, &st))
			continue;
		cli_json_obj_begin(&j, NULL);
		cli_json_u64(&j, "id", c->id);
		cli_json_i64(&j, "pid", c->pid);
		cli_json_u64(&j, "faults", st.faults);
		cli_json_u64(&j, "pages_fault", st.pages_fault);
		cli_json_u64(&j, "pages_background", st.pages_background);
		cli_json_u64(&j, "bytes_read", st.bytes_read);
		cli_json_u64(&j, "fault_p50_us", st.fault_p50_us);
		cli_json_u64(&j, "fault_p99_us", st.fault_p99_us);
		cli_json_obj_end(&j);
	}
	cli_json_arr_end(&j);
	cli_json_obj_end(&j);
	fputc('\n', f);
	if (fclose(f) || rename(tmp, s->json_path))
		say("cannot write %s: %s", s->json_path, strerror(errno));
}

static void stats_line(const struct server *s)
{
	struct thaw_cache_stats cs = { .sz = sizeof(cs) };
	thaw_snapshot_cache_stats(s->snap, &cs);
	size_t active = 0;
	for (size_t i = 0; i < s->nclients; i++)
		active += s->clients[i].r != NULL;
	char b1[32], b2[32];
	say("stats: %zu clients active, %llu accepted, %llu served, %llu ended early, %llu "
	    "refused; cache %s of %s, %llu hits, %llu inserts, %llu evictions",
	    active, (unsigned long long)s->accepted, (unsigned long long)s->served,
	    (unsigned long long)s->ended_early, (unsigned long long)s->refused,
	    cli_fmt_bytes(cs.bytes, b1, sizeof(b1)), cli_fmt_bytes(cs.limit, b2, sizeof(b2)),
	    (unsigned long long)cs.hits, (unsigned long long)cs.inserts,
	    (unsigned long long)cs.evictions);
	write_json_stats(s);
}

static void drop_client(struct server *s, size_t i)
{
	close(s->clients[i].fd);
	s->clients[i] = s->clients[--s->nclients];
}

static void refuse(struct server *s, size_t i, const char *why)
{
	struct client *c = &s->clients[i];
	say("client %u (pid %d, uid %u) refused: %s", c->id, (int)c->pid, (unsigned)c->uid, why);
	s->refused++;
	drop_client(s, i);
}

static bool uid_allowed(const struct server *s, uid_t uid)
{
	if (uid == getuid())
		return true;
	for (size_t i = 0; i < s->nallowed; i++)
		if (s->allowed[i] == uid)
			return true;
	return false;
}

static void accept_client(struct server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			say("accept: %s", strerror(errno));
		return;
	}
	if (s->nclients == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct client *p = realloc(s->clients, cap * sizeof(*p));
		if (!p) {
			say("no memory for another client");
			close(fd);
			return;
		}
		s->clients = p;
		s->cap = cap;
	}
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
	socklen_t len = sizeof(cred);
	int cred_err = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ? errno : 0;
	s->clients[s->nclients++] = (struct client){ .fd = fd,
						     .id = ++s->next_id,
						     .pid = cred.pid,
						     .uid = cred.uid,
						     .since_ns = cli_now_ns() };
	s->accepted++;
	char why[128];
	if (s->nclients > (size_t)s->max_clients) {
		snprintf(why, sizeof(why), "%ld clients are being served already (--max-clients)",
			 s->max_clients);
		refuse(s, s->nclients - 1, why);
	} else if (cred_err) {
		snprintf(why, sizeof(why), "SO_PEERCRED: %s", strerror(cred_err));
		refuse(s, s->nclients - 1, why);
	} else if (!uid_allowed(s, cred.uid)) {
		snprintf(why, sizeof(why), "uid %u is not %u (see --allow-uid)", (unsigned)cred.uid,
			 (unsigned)getuid());
		refuse(s, s->nclients - 1, why);
	}
}

static void handshake(struct server *s, size_t i)
{
	struct client *c = &s->clients[i];
	struct cli_handshake *h = malloc(sizeof(*h));
	char why[512];
	if (!h) {
		refuse(s, i, "no memory for its handshake");
		return;
	}
	int err = cli_handshake_recv(c->fd, s->page_size, h, why, sizeof(why));
	if (err == -EAGAIN) {
		free(h);
		return; /* a spurious wake-up: nothing yet */
	}
	if (!err) {
		err = thaw_restore_attach(s->snap, h->uffd, h->maps, h->n, &s->ro, &c->r);
		if (err)
			snprintf(why, sizeof(why), "cannot serve its mappings: %s",
				 thaw_strerror(err));
	}
	if (err) {
		free(h);
		refuse(s, i, why);
		return;
	}
	uint64_t total = 0;
	for (size_t k = 0; k < h->n; k++)
		total += h->maps[k].len;
	char b[32];
	say("client %u (pid %d): serving %zu mapping%s, %s", c->id, (int)c->pid, h->n,
	    h->n == 1 ? "" : "s", cli_fmt_bytes(total, b, sizeof(b)));
	free(h);
}

/* The client's restore is over (resident, or its process went away): report and free it. */
static void finish_client(struct server *s, size_t i, int result)
{
	struct client *c = &s->clients[i];
	struct thaw_stats st = { .sz = sizeof(st) };
	thaw_restore_stats(c->r, &st);
	thaw_restore_free(c->r);
	c->r = NULL;
	s->store_bytes += st.bytes_read;
	if (s->metrics)
		cli_metrics_client_ended(s->metrics, c->id, &st);
	char b[32];
	if (result == 0 || result == -THAW_E_POISONED) {
		s->served++;
		say("client %u (pid %d): resident in %llu ms; %llu faults (p50 %llu us, p99 %llu "
		    "us), %s read from the store%s",
		    c->id, (int)c->pid, (unsigned long long)(st.resident_us / 1000),
		    (unsigned long long)st.faults, (unsigned long long)st.fault_p50_us,
		    (unsigned long long)st.fault_p99_us, cli_fmt_bytes(st.bytes_read, b, sizeof(b)),
		    result ? "; some chunks could not be had and were poisoned" : "");
	} else {
		s->ended_early++;
		say("client %u (pid %d): ended before every page was in: %s", c->id, (int)c->pid,
		    thaw_strerror(result));
	}
	drop_client(s, i);
	write_json_stats(s);
}

/* systemd's status line, sent when it changes. */
static void notify_status(struct server *s, size_t active)
{
	char st[sizeof(s->status)];
	snprintf(st, sizeof(st), "%zu clients active, %llu served, %llu refused", active,
		 (unsigned long long)s->served, (unsigned long long)s->refused);
	if (strcmp(st, s->status)) {
		memcpy(s->status, st, sizeof(st));
		cli_sd_notify(&s->notify, "STATUS=%s", st);
	}
}

/* After each turn of the loop: the status line, and the figures --metrics answers from. */
static void report(struct server *s)
{
	size_t active = 0;
	for (size_t i = 0; i < s->nclients; i++)
		active += s->clients[i].r != NULL;
	notify_status(s, active);
	if (!s->metrics)
		return;
	struct cli_metrics_daemon d = { .uptime_ms = (cli_now_ns() - s->start_ns) / 1000000,
					.accepted = s->accepted,
					.refused = s->refused,
					.served = s->served,
					.ended_early = s->ended_early,
					.cache = { .sz = sizeof(d.cache) } };
	thaw_snapshot_cache_stats(s->snap, &d.cache);
	struct cli_metrics_client *c = calloc(s->nclients + 1, sizeof(*c));
	size_t n = 0;
	for (size_t i = 0; c && i < s->nclients; i++) {
		const struct client *cl = &s->clients[i];
		c[n].st.sz = sizeof(c[n].st);
		if (cl->r && !thaw_restore_stats(cl->r, &c[n].st)) {
			c[n].id = cl->id;
			c[n++].pid = cl->pid;
		}
	}
	d.active = n;
	cli_metrics_publish(s->metrics, &d, c, n);
	free(c);
}

/* Returns true when asked to stop. */
static bool on_signal(struct server *s)
{
	struct signalfd_siginfo si;
	bool stop = false;
	while (read(s->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			stats_line(s);
		else
			stop = true;
	}
	return stop;
}

static void serve_loop(struct server *s)
{
	struct pollfd *pfd = NULL;
	size_t pcap = 0;
	for (;;) {
		if (pcap < s->nclients + 2) {
			pcap = (s->nclients + 2) * 2;
			struct pollfd *p = realloc(pfd, pcap * sizeof(*p));
			if (!p) {
				say("no memory: stopping");
				break;
			}
			pfd = p;
		}
		pfd[0] = (struct pollfd){ .fd = s->sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (size_t i = 0; i < s->nclients; i++)
			pfd[2 + i] = (struct pollfd){ .fd = s->clients[i].r ? -1 : s->clients[i].fd,
						      .events = POLLIN };
		size_t n = s->nclients;
		if (poll(pfd, n + 2, POLL_MS) < 0 && errno != EINTR) {
			say("poll: %s; stopping", strerror(errno));
			break;
		}
		if ((pfd[0].revents & POLLIN) && on_signal(s))
			break;
		/* Backwards: dropping a client moves the last one into its slot. */
		for (size_t i = n; i-- > 0;) {
			struct client *c = &s->clients[i];
			if (!c->r && pfd[2 + i].revents)
				handshake(s, i);
			else if (!c->r && cli_now_ns() - c->since_ns > HANDSHAKE_TIMEOUT_NS)
				refuse(s, i, "no handshake within 5 s");
		}
		for (size_t i = s->nclients; i-- > 0;) {
			if (!s->clients[i].r)
				continue;
			int res = thaw_restore_wait(s->clients[i].r, 0);
			if (res != -ETIMEDOUT)
				finish_client(s, i, res);
		}
		if (pfd[1].revents & POLLIN)
			accept_client(s);
		report(s);
	}
	free(pfd);
}

/* SIGTERM: no new clients; every connected one is populated completely first, until the
 * drain deadline; one still missing pages then is ended early (they are poisoned). */
static void shut_down(struct server *s)
{
	uint64_t deadline = cli_now_ns() + (uint64_t)s->drain_s * 1000000000ull;
	close(s->lfd);
	s->lfd = -1;
	if (!s->activated)
		unlink(s->socket_path);
	cli_sd_notify(&s->notify, "STOPPING=1");
	size_t busy = 0;
	for (size_t i = 0; i < s->nclients; i++)
		busy += s->clients[i].r != NULL;
	say("stopping: finishing %zu connected client%s first", busy, busy == 1 ? "" : "s");
	for (size_t i = s->nclients; i-- > 0;) {
		struct client *c = &s->clients[i];
		if (!c->r) {
			refuse(s, i, "the server is stopping");
			continue;
		}
		uint64_t now = cli_now_ns();
		int res = thaw_restore_wait(c->r,
					    now < deadline ? (int)((deadline - now) / 1000000) : 0);
		if (res == -ETIMEDOUT) {
			say("client %u (pid %d): not resident by the drain deadline (%ld s): "
			    "ending it; "
			    "its missing pages are poisoned",
			    c->id, (int)c->pid, s->drain_s);
			thaw_restore_stop(c->r);
			res = thaw_restore_wait(c->r, 0);
		}
		finish_client(s, i, res);
	}
	stats_line(s);
}

/*
 * Create the socket's missing parent directories (0755), as systemd's
 * RuntimeDirectory would: /run/thaw does not exist on a fresh machine.
 * Returns 0, or -errno with the directory that failed in dir.
 */
static int make_parents(const char *path, char *dir, size_t dir_len)
{
	if (strlen(path) >= dir_len)
		return 0; /* listen_on says it is too long */
	strcpy(dir, path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			return 0;
	}
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* A previous run's socket is replaced, a live daemon's never: its clients
		 * would connect to us and it would serve nobody new. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			close(fd);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) ? -errno : 0;
}

static int parse_args(struct server *s, struct cli_http *http, int argc, char **argv, bool *help)
{
	long v;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", serve_opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			s->socket_path = optarg;
			break;
		case OPT_CACHE_MB:
			if (cli_parse_u64(optarg, &s->cache_mb) || s->cache_mb > (1ull << 30))
				return cli_usage_err(s->cmd, "bad --cache-mb '%s': want MiB",
						     optarg);
			break;
		case OPT_ALLOW_UID:
			if (cli_parse_int(optarg, 0, UINT32_MAX - 1, &v))
				return cli_usage_err(s->cmd, "bad --allow-uid '%s': want a uid",
						     optarg);
			if (s->nallowed == MAX_ALLOWED_UIDS)
				return cli_usage_err(s->cmd, "at most %d --allow-uid",
						     MAX_ALLOWED_UIDS);
			s->allowed[s->nallowed++] = (uid_t)v;
			break;
		case OPT_PIDFILE:
			s->pidfile = optarg;
			break;
		case OPT_JSON:
			s->json_path = optarg;
			break;
		case OPT_DRAIN:
			if (cli_parse_int(optarg, 0, 86400, &s->drain_s))
				return cli_usage_err(s->cmd,
						     "bad --drain-timeout '%s': want 0 to 86400 s",
						     optarg);
			break;
		case OPT_MAX_CLIENTS:
			if (cli_parse_int(optarg, 1, 4096, &s->max_clients))
				return cli_usage_err(
					s->cmd, "bad --max-clients '%s': want 1 to 4096", optarg);
			break;
		case OPT_METRICS:
			s->metrics_addr = optarg;
			break;
		case OPT_THREADS:
			if (cli_parse_int(optarg, 1, 256, &v))
				return cli_usage_err(s->cmd, "bad --threads '%s': want 1 to 256",
						     optarg);
			s->ro.background_threads = (int)v;
			break;
		case 'h':
			*help = true;
			return CLI_OK;
		default: {
			int st = cli_other_option(http, s->cmd, c, argv);
			if (st)
				return st;
		}
		}
	}
	if (cli_snap_operand(s->cmd, argc, argv, "the snapshot to serve", &s->uri))
		return CLI_USAGE;
	if (!s->socket_path && !cli_sd_activated())
		return cli_usage_err(s->cmd, "missing --socket PATH (where clients connect)");
	s->ro.sz = sizeof(s->ro);
	return CLI_OK;
}

/* Before any thread exists, so every thread inherits the mask. */
static void block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The socket systemd passed, or a new one at --socket. 0, or -1 once reported. */
static int open_listener(struct server *s)
{
	if (s->activated) {
		s->lfd = cli_sd_listen_fd(s->cmd);
		s->socket_path = "the socket systemd passed";
		return s->lfd < 0 ? -1 : 0;
	}
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int err = make_parents(s->socket_path, dir, sizeof(dir));
	if (err) {
		cli_err(s->cmd, "cannot create %s for the socket: %s", dir, strerror(-err));
		return -1;
	}
	s->lfd = listen_on(s->socket_path);
	if (s->lfd < 0) {
		cli_err(s->cmd, "cannot listen on %s: %s", s->socket_path,
			s->lfd == -EADDRINUSE ? "another thaw serve is listening there"
					      : strerror(-s->lfd));
		return -1;
	}
	return 0;
}

/*
 * Everything between the opened snapshot and the first client: the cache,
 * the signalfd, the listening socket, metrics and the pidfile. 0, or -1 once
 * reported; what was opened is s's to close either way.
 */
static int serve_start(struct server *s, const sigset_t *sigs)
{
	int err = thaw_snapshot_set_cache(s->snap, s->cache_mb << 20);
	if (err) {
		cli_err(s->cmd, "cache of %llu MiB: %s", (unsigned long long)s->cache_mb,
			thaw_strerror(err));
		return -1;
	}
	s->sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sfd < 0) {
		cli_err(s->cmd, "signalfd: %s", strerror(errno));
		return -1;
	}
	s->activated = cli_sd_activated();
	if (open_listener(s) < 0)
		return -1;
	if (s->metrics_addr && cli_metrics_start(s->metrics_addr, &s->metrics) < 0)
		return -1;
	if (s->pidfile && (err = write_pidfile(s->pidfile)) < 0) {
		cli_err(s->cmd, "cannot write %s: %s", s->pidfile, strerror(-err));
		return -1;
	}
	return 0;
}

int cli_serve(int argc, char **argv)
{
	struct server s = { .cmd = "serve",
			    .lfd = -1,
			    .sfd = -1,
			    .cache_mb = 256,
			    .drain_s = 30,
			    .max_clients = 64,
			    .start_ns = cli_now_ns(),
			    .notify = { .fd = -1 } };
	struct cli_http http = { 0 };
	bool help = false;
	int st = parse_args(&s, &http, argc, argv, &help);
	if (help) {
		fputs(serve_help, stdout);
		fputs("\n" CLI_HTTP_HELP, stdout);
		return CLI_OK;
	}
	if (st)
		return st;
	cli_sd_notify_init(&s.notify);
	sigset_t sigs;
	block_signals(&sigs);

	struct cli_log log;
	if (cli_open_snapshot(s.cmd, s.uri, &log, &http, &s.snap) < 0)
		return CLI_FAIL;
	struct thaw_snapshot_info info = { .sz = sizeof(info) };
	thaw_snapshot_get_info(s.snap, &info);
	s.page_size = info.page_size;
	int ret = CLI_FAIL;
	if (serve_start(&s, &sigs) < 0)
		goto out;
	report(&s);
	char b[32];
	say("serving %s (%s in %llu regions) on %s, cache %llu MiB", s.uri,
	    cli_fmt_bytes(info.raw_bytes, b, sizeof(b)), (unsigned long long)info.region_count,
	    s.socket_path, (unsigned long long)s.cache_mb);
	if (s.metrics)
		say("metrics on %s (GET /metrics)", cli_metrics_addr(s.metrics));
	cli_sd_notify(&s.notify, "READY=1\nMAINPID=%d", (int)getpid());
	serve_loop(&s);
	shut_down(&s);
	ret = CLI_OK;
out:
	if (s.lfd >= 0) {
		close(s.lfd);
		if (!s.activated)
			unlink(s.socket_path);
	}
	cli_sd_notify_close(&s.notify);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.pidfile && ret == CLI_OK)
		unlink(s.pidfile);
	cli_metrics_stop(s.metrics);
	free(s.clients);
	thaw_snapshot_close(s.snap);
	return ret;
}
