/* SPDX-License-Identifier: MIT */
#include "httpd.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

#define NGINX "/usr/sbin/nginx"

int httpd_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int port = -1;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_answers(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Wait up to ms for port to accept connections while pid lives. */
static int wait_port(pid_t pid, int port, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		if (port_answers(port))
			return 0;
		int st;
		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

static void stop_pid(pid_t *pid, int sig)
{
	if (*pid <= 0)
		return;
	kill(*pid, sig);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = -1;
			return;
		}
		usleep(10000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = -1;
}

static pid_t spawn(char *const argv[], const char *log_path)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	int nul = open("/dev/null", O_RDONLY);
	if (nul >= 0)
		dup2(nul, 0);
	execvp(argv[0], argv);
	_exit(127);
}

const char *httpd_srcdir(void)
{
	static char dir[512];
	if (dir[0])
		return dir;
	const char *env = getenv("THAW_SRCDIR");
	if (env && *env) {
		snprintf(dir, sizeof(dir), "%s", env);
		return dir;
	}
	/* The test binary lives in BUILD/tests/; the tree is above BUILD. */
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		for (char *slash; (slash = strrchr(exe, '/'));) {
			*slash = 0;
			char probe[600];
			snprintf(probe, sizeof(probe), "%s/tests/faulty_http.py", exe);
			if (!access(probe, R_OK)) {
				snprintf(dir, sizeof(dir), "%s", exe);
				return dir;
			}
		}
	}
	snprintf(dir, sizeof(dir), ".");
	return dir;
}

/* ------------------------------------------------------------------ */
/* nginx                                                               */
/* ------------------------------------------------------------------ */

static int write_nginx_conf(const struct httpd *h)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/nginx.conf", h->prefix);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	/* As root, workers would drop to nobody, who cannot read the 0700 test dirs. */
	if (geteuid() == 0)
		fprintf(f, "user root;\n");
	fprintf(f,
		"worker_processes 1;\n"
		"pid %1$s/nginx.pid;\n"
		"error_log %1$s/error.log warn;\n"
		"events { worker_connections 512; }\n"
		"http {\n"
		/* the connection number first: tests count connections reused */
		"  log_format thaw '$connection $status $bytes_sent \"$http_range\" "
		"\"$http_priority\"';\n"
		"  access_log %1$s/access.log thaw;\n"
		"  client_body_temp_path %1$s/tmp/body;\n"
		"  proxy_temp_path %1$s/tmp/proxy;\n"
		"  fastcgi_temp_path %1$s/tmp/fastcgi;\n"
		"  uwsgi_temp_path %1$s/tmp/uwsgi;\n"
		"  scgi_temp_path %1$s/tmp/scgi;\n"
		"  default_type application/octet-stream;\n"
		"  sendfile on;\n"
		/* with tcp_nopush on, range replies stall for 40 ms on loopback */
		"  tcp_nopush off;\n"
		"  tcp_nodelay on;\n"
		"  keepalive_timeout 60s;\n"
		"  keepalive_requests 1000000;\n"
		"  server {\n"
		"    listen 127.0.0.1:%2$d;\n"
		"    root %3$s;\n"
		"    location /forbidden/ { return 403; }\n"
		/* a slow link after each reply's first 256 KiB (fault-lane test) */
		"    location /slow/ { limit_rate_after 256k; limit_rate 1m; }\n"
		"  }\n"
		"}\n",
		h->prefix, h->port, h->root);
	return fclose(f) ? -1 : 0;
}

static int nginx_spawn(struct httpd *h)
{
	char conf[600], log[600];
	snprintf(conf, sizeof(conf), "%s/nginx.conf", h->prefix);
	snprintf(log, sizeof(log), "%s/stderr.log", h->prefix);
	char *argv[] = { NGINX, "-p", h->prefix, "-c", conf, "-g", "daemon off;", NULL };
	h->pid = spawn(argv, log);
	if (h->pid < 0)
		return -1;
	return wait_port(h->pid, h->port, 5000);
}

int httpd_start(struct httpd *h, const char *dir)
{
	if (access(NGINX, X_OK))
		test_skip("nginx is not installed (%s; scripts/deps.sh installs nginx-light)",
			  NGINX);
	memset(h, 0, sizeof(*h));
	h->pid = -1;
	snprintf(h->prefix, sizeof(h->prefix), "%s/nginx", dir);
	snprintf(h->root, sizeof(h->root), "%s/www", dir);
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s/tmp", h->prefix);
	mkdir(h->prefix, 0755);
	mkdir(h->root, 0755);
	mkdir(tmp, 0755);
	/* A port found free may be taken before nginx binds it: try a few. */
	for (int attempt = 0; attempt < 5; attempt++) {
		h->port = httpd_free_port();
		snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%d", h->port);
		if (h->port > 0 && !write_nginx_conf(h) && !nginx_spawn(h))
			return 0;
		stop_pid(&h->pid, SIGKILL);
	}
	char out[2048];
	test_run(out, sizeof(out), "tail -n 5 '%s/stderr.log' '%s/error.log'", h->prefix,
		 h->prefix);
	test_fail(__FILE__, __LINE__, "nginx did not start: %s", out);
}

void httpd_stop(struct httpd *h)
{
	stop_pid(&h->pid, SIGTERM);
}

int httpd_restart(struct httpd *h)
{
	httpd_stop(h);
	/* The old listening socket may linger briefly; retry the bind for a while. */
	for (int attempt = 0; attempt < 50; attempt++) {
		if (!nginx_spawn(h))
			return 0;
		stop_pid(&h->pid, SIGKILL);
		usleep(100000);
	}
	return -1;
}

/* "dir/name" in a static buffer, rotated among 24: callers keep a few at once. */
static const char *joined(const char *dir, const char *name)
{
	static char bufs[24][700];
	static unsigned next;
	char *b = bufs[next++ % 24];
	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

const char *httpd_url(const struct httpd *h, const char *path)
{
	return joined(h->base, path[0] == '/' ? path + 1 : path);
}

const char *httpd_file(const struct httpd *h, const char *name)
{
	return joined(h->root, name);
}

/* ------------------------------------------------------------------ */
/* The fault-injecting server                                          */
/* ------------------------------------------------------------------ */

int faulty_start(struct faulty *f, const char *root, const char *args)
{
	if (access("/usr/bin/python3", X_OK))
		test_skip("python3 is not installed");
	memset(f, 0, sizeof(*f));
	char script[600], portfile[600], log[600], cmd[2048];
	snprintf(script, sizeof(script), "%s/tests/faulty_http.py", httpd_srcdir());
	snprintf(portfile, sizeof(portfile), "%s/faulty-%d.port", test_tmpdir(), (int)getpid());
	snprintf(log, sizeof(log), "%s/faulty.log", test_tmpdir());
	unlink(portfile);
	snprintf(cmd, sizeof(cmd), "exec python3 '%s' --root '%s' --port-file '%s' %s", script,
		 root, portfile, args ? args : "");
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	f->pid = spawn(argv, log);
	for (int waited = 0; waited < 10000; waited += 10) {
		FILE *pf = fopen(portfile, "r");
		if (pf) {
			int port = 0;
			int ok = fscanf(pf, "%d", &port) == 1;
			fclose(pf);
			if (ok && port > 0) {
				f->port = port;
				snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", port);
				return wait_port(f->pid, port, 5000);
			}
		}
		if (waitpid(f->pid, NULL, WNOHANG) == f->pid)
			break;
		usleep(10000);
	}
	char out[2048];
	test_run(out, sizeof(out), "tail -n 20 '%s'", log);
	test_fail(__FILE__, __LINE__, "faulty_http.py did not start: %s", out);
}

void faulty_stop(struct faulty *f)
{
	stop_pid(&f->pid, SIGTERM);
}

const char *faulty_url(const struct faulty *f, const char *path)
{
	return joined(f->base, path[0] == '/' ? path + 1 : path);
}

struct membuf {
	char *p;
	size_t len, cap;
};

static size_t mem_write(char *data, size_t size, size_t n, void *ud)
{
	struct membuf *m = ud;
	size_t len = size * n;
	if (m->cap && m->len < m->cap - 1) {
		size_t take = len < m->cap - 1 - m->len ? len : m->cap - 1 - m->len;
		memcpy(m->p + m->len, data, take);
		m->len += take;
		m->p[m->len] = 0;
	}
	return len;
}

int faulty_ctl(const struct faulty *f, const char *query, char *out, size_t out_len)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	char url[1024];
	snprintf(url, sizeof(url), "%s/_ctl?%s", f->base, query);
	struct membuf m = { .p = out, .cap = out_len };
	if (out && out_len)
		out[0] = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return rc == CURLE_OK && status == 200 ? 0 : -1;
}

long faulty_stat(const struct faulty *f, const char *name)
{
	char out[4096], key[128];
	if (faulty_ctl(f, "stats=1", out, sizeof(out)))
		return -1;
	snprintf(key, sizeof(key), "\"%s\": ", name);
	const char *p = strstr(out, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* ------------------------------------------------------------------ */
/* s3rver                                                              */
/* ------------------------------------------------------------------ */

static const char *s3rver_js(void)
{
	static char path[600];
	const char *dir = getenv("THAW_S3RVER_DIR");
	char def[512];
	if (!dir || !*dir) {
		const char *cache = getenv("XDG_CACHE_HOME");
		const char *home = getenv("HOME");
		if (cache && *cache)
			snprintf(def, sizeof(def), "%s/thaw/s3rver", cache);
		else
			snprintf(def, sizeof(def), "%s/.cache/thaw/s3rver", home ? home : "/root");
		dir = def;
	}
	snprintf(path, sizeof(path), "%s/node_modules/s3rver/bin/s3rver.js", dir);
	return path;
}

int s3_start(struct s3server *s, const char *dir, const char *bucket)
{
	const char *js = s3rver_js();
	if (access(js, R_OK))
		test_skip("s3rver is not installed (%s; scripts/deps.sh installs it from npm)", js);
	char out[256];
	if (test_run(out, sizeof(out), "command -v node") != 0)
		test_skip("node is not installed (scripts/deps.sh installs nodejs)");
	memset(s, 0, sizeof(*s));
	char data[600], log[600], port[16];
	snprintf(data, sizeof(data), "%s/s3data", dir);
	snprintf(log, sizeof(log), "%s/s3rver.log", dir);
	mkdir(data, 0755);
	for (int attempt = 0; attempt < 5; attempt++) {
		s->port = httpd_free_port();
		snprintf(port, sizeof(port), "%d", s->port);
		snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
		char *argv[] = { "node",     (char *)js,	   "-d",	   data,
				 "-a",	     "127.0.0.1",	   "-p",	   port,
				 "--silent", "--configure-bucket", (char *)bucket, NULL };
		s->pid = spawn(argv, log);
		if (!wait_port(s->pid, s->port, 15000))
			return 0;
		stop_pid(&s->pid, SIGKILL);
	}
	char tail[2048];
	test_run(tail, sizeof(tail), "tail -n 20 '%s'", log);
	test_fail(__FILE__, __LINE__, "s3rver did not start: %s", tail);
}

void s3_stop(struct s3server *s)
{
	stop_pid(&s->pid, SIGTERM);
}

int s3_put(const struct s3server *s, const char *bucket, const char *key, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	struct stat sb;
	fstat(fileno(f), &sb);
	CURL *c = curl_easy_init();
	char url[1024];
	snprintf(url, sizeof(url), "%s/%s/%s", s->base, bucket, key);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READDATA, f);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
	curl_easy_setopt(c, CURLOPT_USERPWD, S3_ACCESS_KEY ":" S3_SECRET_KEY);
	struct curl_slist *hdrs = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	char body[1024];
	struct membuf m = { .p = body, .cap = sizeof(body) };
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	fclose(f);
	if (rc != CURLE_OK || status != 200) {
		fprintf(stderr, "s3 PUT %s: %s, HTTP %ld: %s\n", url, curl_easy_strerror(rc),
			status, body);
		return -1;
	}
	return 0;
}
