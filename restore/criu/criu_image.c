/* SPDX-License-Identifier: MIT */
/* Reading CRIU image files: magic check and length-prefixed entries. */
#include "criu/criu_image.h"
#include "common/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int thaw__criu_fail(const struct thaw__criu_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = thaw__vfail(e->log, e->buf, e->len, code, fmt, ap);
	va_end(ap);
	return code;
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t thaw__criu_img_header_len(uint32_t magic)
{
	/* Only the inventory goes without the common magic in front. */
	return magic == CRIU_INVENTORY_MAGIC ? 4 : 8;
}

int thaw__criu_img_load(int dirfd, const char *name, uint32_t magic, struct thaw__criu_img *img,
			const struct thaw__criu_err *e)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name);
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		return thaw__criu_fail(e, err, "%s: %s", name, strerror(-err));
	}
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) < 0) {
		err = -errno;
	} else if (st.st_size > (1 << 30)) {
		close(fd);
		return thaw__criu_fail(e, -EFBIG, "%s: %lld bytes is more than an image can be",
				       name, (long long)st.st_size);
	} else {
		img->len = st.st_size;
		img->buf = malloc(img->len ? img->len : 1);
		if (!img->buf)
			err = -ENOMEM;
		for (size_t got = 0; !err && got < img->len;) {
			ssize_t n = pread(fd, img->buf + got, img->len - got, got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				err = n < 0 ? -errno : -EIO;
			else
				got += n;
		}
	}
	close(fd);
	if (err) {
		thaw__criu_img_free(img);
		return thaw__criu_fail(e, err, "%s: %s", name, strerror(-err));
	}
	size_t hlen = thaw__criu_img_header_len(magic);
	if (img->len < hlen) {
		thaw__criu_img_free(img);
		return thaw__criu_fail(e, -EINVAL, "%s: %zu bytes, shorter than its magic", name,
				       (size_t)st.st_size);
	}
	if (hlen == 8 && get_le32(img->buf) != CRIU_IMG_COMMON_MAGIC) {
		uint32_t got = get_le32(img->buf);
		thaw__criu_img_free(img);
		return thaw__criu_fail(e, -EINVAL,
				       "%s: magic 0x%08x is not CRIU's image magic 0x%08x", name,
				       got, CRIU_IMG_COMMON_MAGIC);
	}
	if (get_le32(img->buf + hlen - 4) != magic) {
		uint32_t got = get_le32(img->buf + hlen - 4);
		thaw__criu_img_free(img);
		return thaw__criu_fail(e, -EINVAL, "%s: image magic 0x%08x, expected 0x%08x", name,
				       got, magic);
	}
	img->pos = hlen;
	return 0;
}

int thaw__criu_img_next(struct thaw__criu_img *img, const uint8_t **p, size_t *n,
			const struct thaw__criu_err *e)
{
	if (img->pos == img->len)
		return 0;
	if (img->len - img->pos < 4)
		return thaw__criu_fail(e, -EINVAL,
				       "%s: entry %u: length field cut short at byte %zu",
				       img->name, img->entry, img->pos);
	uint32_t len = get_le32(img->buf + img->pos);
	if (len > img->len - img->pos - 4)
		return thaw__criu_fail(e, -EINVAL,
				       "%s: entry %u: length %u runs past the end of the file (%zu "
				       "bytes left)",
				       img->name, img->entry, len, img->len - img->pos - 4);
	*p = img->buf + img->pos + 4;
	*n = len;
	img->pos += 4 + (size_t)len;
	img->entry++;
	return 1;
}

void thaw__criu_img_free(struct thaw__criu_img *img)
{
	free(img->buf);
	img->buf = NULL;
	img->len = img->pos = 0;
}
