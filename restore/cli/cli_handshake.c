/* SPDX-License-Identifier: MIT */
/* Receiving and checking a Firecracker UFFD handshake (see cli_handshake.h). */
#include "cli_handshake.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Firecracker's message for a many-region guest stays far below this. */
#define HANDSHAKE_MAX_BYTES 65536

static int refuse(char *why, size_t why_len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int refuse(char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return err;
}

/* The message and the fd that came with it (the first one; any others are closed). */
static ssize_t recv_message(int fd, char *buf, size_t len, int *uffd)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)
	};
	ssize_t n;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[4];
		memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
		for (size_t i = 0; i < nfd; i++) {
			if (*uffd < 0)
				*uffd = fds[i];
			else
				close(fds[i]);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	return n;
}

/* A member that must be a non-negative integer. */
static int get_u64(struct json_object *o, const char *key, uint64_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	/* json-c keeps values above INT64_MAX as unsigned; below zero as signed. */
	if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) <= INT64_MAX)
		return -EINVAL;
	*out = json_object_get_uint64(v);
	return 0;
}

static int parse_mapping(struct json_object *o, size_t i, uint64_t page_size,
			 struct thaw_mapping *m, char *why, size_t why_len)
{
	static const char *const keys[] = { "base_host_virt_addr", "size", "offset" };
	uint64_t v[3], ps;
	if (!json_object_is_type(o, json_type_object))
		return refuse(why, why_len, -EINVAL, "mapping %zu is not a JSON object", i);
	for (int k = 0; k < 3; k++) {
		int err = get_u64(o, keys[k], &v[k]);
		if (err)
			return refuse(why, why_len, -EINVAL, "mapping %zu: \"%s\" %s", i, keys[k],
				      err == -ENOENT ? "is missing" : "is not an unsigned integer");
	}
	int err = get_u64(o, "page_size", &ps);
	if (err == -ENOENT)
		err = get_u64(o, "page_size_kib", &ps); /* deprecated name, bytes all the same */
	if (err)
		return refuse(why, why_len, -EINVAL, "mapping %zu: \"page_size\" %s", i,
			      err == -ENOENT ? "is missing" : "is not an unsigned integer");
	if (ps != page_size)
		return refuse(why, why_len, -EINVAL,
			      "mapping %zu: page size %llu not supported (the snapshot's is %llu)",
			      i, (unsigned long long)ps, (unsigned long long)page_size);
	*m = (struct thaw_mapping){ .addr = v[0], .len = v[1], .offset = v[2] };
	return 0;
}

static int parse(const char *text, uint64_t page_size, struct cli_handshake *h, char *why,
		 size_t why_len)
{
	enum json_tokener_error jerr;
	struct json_object *root = json_tokener_parse_verbose(text, &jerr);
	if (!root)
		return refuse(why, why_len, -EINVAL, "not valid JSON: %s",
			      json_tokener_error_desc(jerr));
	int err = 0;
	if (!json_object_is_type(root, json_type_array)) {
		err = refuse(why, why_len, -EINVAL, "expected a JSON array of mappings");
		goto out;
	}
	size_t n = json_object_array_length(root);
	if (!n || n > CLI_HANDSHAKE_MAX_MAPPINGS) {
		err = refuse(why, why_len, -EINVAL, "%zu mappings (want 1 to %d)", n,
			     CLI_HANDSHAKE_MAX_MAPPINGS);
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++)
		err = parse_mapping(json_object_array_get_idx(root, i), i, page_size, &h->maps[i],
				    why, why_len);
	h->n = err ? 0 : n;
out:
	json_object_put(root);
	return err;
}

int cli_handshake_recv(int fd, uint64_t page_size, struct cli_handshake *h, char *why,
		       size_t why_len)
{
	char buf[HANDSHAKE_MAX_BYTES + 1];
	h->uffd = -1;
	h->n = 0;
	ssize_t n = recv_message(fd, buf, HANDSHAKE_MAX_BYTES, &h->uffd);
	int err;
	if (n < 0)
		err = refuse(why, why_len, (int)n, "receiving the handshake: %s",
			     strerror((int)-n));
	else if (n == 0)
		err = refuse(why, why_len, -ECONNRESET, "closed before sending a handshake");
	else if (h->uffd < 0)
		err = refuse(why, why_len, -EBADF, "no file descriptor came with the handshake");
	else {
		buf[n] = 0;
		err = parse(buf, page_size, h, why, why_len);
	}
	if (err && h->uffd >= 0) {
		close(h->uffd);
		h->uffd = -1;
	}
	return err;
}
