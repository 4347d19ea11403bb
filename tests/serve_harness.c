/* SPDX-License-Identifier: MIT */
/* The thaw serve tests' daemon and clients (see serve_harness.h). */
#include "serve_harness.h"

#include "fixture.h"
#include "testlib.h"
#include "thaw.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Room for the longest log a case reads back. */
#define SERVE_LOG_LEN (512 * 1024)

void serve_make_snapshot(const char *path, size_t len, uint64_t seed, bool raw)
{
	void *mem = malloc(len);
	CHECK(mem);
	fixture_fill_mixed(mem, len, seed);
	struct thaw_region_desc r = { .addr = 0,
				      .len = len,
				      .prot = PROT_READ | PROT_WRITE,
				      .name = "guest-mem",
				      .mem = mem };
	if (raw) {
		/* Written before thaw sees the memory: clients check against bytes it never
		 * touched. */
		char rpath[512];
		snprintf(rpath, sizeof(rpath), "%s.raw", path);
		int fd = open(rpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK_GE(fd, 0);
		CHECK_EQ(write(fd, mem, len), (ssize_t)len);
		close(fd);
	}
	CHECK_OK(fixture_write_snapshot(path, &r, 1, 0));
	free(mem);
}

void serve_paths(struct serve_daemon *d, size_t len, uint64_t seed, bool raw)
{
	snprintf(d->snap, sizeof(d->snap), "%s", test_path("guest.thaw"));
	snprintf(d->sock, sizeof(d->sock), "%s", test_path("serve.sock"));
	snprintf(d->log, sizeof(d->log), "%s", test_path("serve.log"));
	snprintf(d->json, sizeof(d->json), "%s", test_path("stats.json"));
	if (access(d->snap, R_OK))
		serve_make_snapshot(d->snap, len, seed, raw);
}

/* In the daemon's child, before exec: the socket as systemd passes it, named for this pid. */
static void pass_listen_fd(int listen_fd)
{
	if (listen_fd == 3) /* dup2 would keep its close-on-exec */
		fcntl(3, F_SETFD, 0);
	else
		dup2(listen_fd, 3);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
}

void serve_start(struct serve_daemon *d, const char *extra)
{
	char cmd[2048];
	char sock_opt[160] = "";
	if (d->listen_fd < 0)
		snprintf(sock_opt, sizeof(sock_opt), "--socket %s", d->sock);
	snprintf(cmd, sizeof(cmd), "exec %s serve %s --json-stats %s %s %s", test_build_bin("thaw"),
		 sock_opt, d->json, extra ? extra : "", d->uri ? d->uri : d->snap);
	d->pid = fork();
	CHECK_GE(d->pid, 0);
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | (d->log_append ? O_APPEND : O_TRUNC),
			      0644);
		dup2(fd, 2);
		if (d->listen_fd >= 0)
			pass_listen_fd(d->listen_fd);
		if (d->notify)
			setenv("NOTIFY_SOCKET", d->notify, 1);
		if (d->log_level)
			setenv("THAW_LOG", d->log_level, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (d->listen_fd >= 0)
		return; /* the socket exists already */
	for (int i = 0; i < 500 && access(d->sock, F_OK); i++)
		usleep(10000);
	CHECK_MSG(!access(d->sock, F_OK), "thaw serve did not listen on %s:\n%s", d->sock,
		  serve_read_log(d));
}

const char *serve_read_log(const struct serve_daemon *d)
{
	static char buf[SERVE_LOG_LEN];
	int fd = open(d->log, O_RDONLY);
	CHECK_GE(fd, 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

void serve_stop(struct serve_daemon *d)
{
	CHECK_EQ(kill(d->pid, SIGTERM), 0);
	int st;
	CHECK_EQ(waitpid(d->pid, &st, 0), d->pid);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "thaw serve ended with 0x%x:\n%s", st,
		  serve_read_log(d));
}

const char *serve_client_cmd(char *buf, size_t len, const struct serve_daemon *d, const char *opts)
{
	char raw[512];
	snprintf(raw, sizeof(raw), "%s.raw", d->snap);
	bool image = access(raw, R_OK) == 0;
	int n = snprintf(buf, len, "%s --socket %s --snapshot %s %s%s %s",
			 test_build_bin("examples/vmm_client"), d->sock, d->snap,
			 image ? "--image " : "", image ? raw : "", opts);
	CHECK_MSG(n >= 0 && (size_t)n < len, "vmm_client command too long for %zu bytes", len);
	return buf;
}

int serve_client(const struct serve_daemon *d, char *out, size_t out_len, const char *opts)
{
	char cmd[2048];
	return test_run(out, out_len, "%s", serve_client_cmd(cmd, sizeof(cmd), d, opts));
}

void serve_bg_start(struct serve_bg *c, const struct serve_daemon *d, const char *opts)
{
	int in[2], o[2];
	CHECK_EQ(pipe(in), 0);
	CHECK_EQ(pipe(o), 0);
	char cmd[2048];
	char line[2100];
	snprintf(line, sizeof(line), "exec %s", serve_client_cmd(cmd, sizeof(cmd), d, opts));
	c->pid = fork();
	CHECK_GE(c->pid, 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		close(in[1]);
		close(o[0]);
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	c->to = in[1];
	c->from = fdopen(o[0], "r");
	CHECK(c->from);
}

void serve_bg_wait_line(struct serve_bg *c, const char *want)
{
	char line[256];
	CHECK_MSG(fgets(line, sizeof(line), c->from) != NULL, "client ended before '%s'", want);
	CHECK_MSG(strstr(line, want), "client said '%s', not '%s'", line, want);
}

int serve_bg_finish(struct serve_bg *c, bool check_go)
{
	ssize_t n = write(c->to, "go\n", 3);
	if (check_go)
		CHECK_EQ(n, 3);
	close(c->to);
	int st;
	CHECK_EQ(waitpid(c->pid, &st, 0), c->pid);
	fclose(c->from);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
