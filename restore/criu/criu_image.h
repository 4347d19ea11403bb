/* SPDX-License-Identifier: MIT */
/*
 * CRIU image files, as CRIU 4.x writes them: a 4-byte magic (the inventory),
 * or IMG_COMMON_MAGIC then the image's own magic (every other image), then
 * entries, each a little-endian u32 length and that many bytes of protobuf.
 * Pages images are raw. The entries are decoded with the protobuf-c code
 * generated from restore/criu/proto/ (CRIU's MIT-licensed descriptions).
 */
#ifndef THAW_RESTORE_CRIU_IMAGE_H
#define THAW_RESTORE_CRIU_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "uffd/log.h"

#define CRIU_IMG_COMMON_MAGIC 0x54564319u
#define CRIU_INVENTORY_MAGIC  0x58313116u
#define CRIU_PSTREE_MAGIC     0x50273030u
#define CRIU_PAGEMAP_MAGIC    0x56084025u
#define CRIU_MM_MAGIC	      0x57492820u

/* pagemap_entry.flags */
#define CRIU_PE_PARENT	(1u << 0) /* the pages are in the parent (incremental) dump */
#define CRIU_PE_LAZY	(1u << 1) /* criu restore --lazy-pages leaves them to the daemon */
#define CRIU_PE_PRESENT (1u << 2) /* the pages are in this dump's pages image */
#define CRIU_PE_KNOWN	(CRIU_PE_PARENT | CRIU_PE_LAZY | CRIU_PE_PRESENT)

/* vma_entry.status bits thaw looks at (criu/include/image.h) */
#define CRIU_VMA_AREA_STACK    (1u << 1)
#define CRIU_VMA_AREA_VSYSCALL (1u << 2)
#define CRIU_VMA_AREA_VDSO     (1u << 3)
#define CRIU_VMA_AREA_HEAP     (1u << 5)
#define CRIU_VMA_AREA_VVAR     (1u << 12)

/* Where a message goes: the log and the caller's buffer. */
struct thaw__criu_err {
	const struct thaw__logger *log;
	char *buf;
	size_t len;
};

/* A whole image file in memory, read entry by entry. */
struct thaw__criu_img {
	char name[64]; /* its file name, for messages */
	unsigned char *buf;
	size_t len;
	size_t pos;
	unsigned entry; /* entries returned so far */
};

/*
 * Read image `name` from dirfd and check its magic. 0; -ENOENT (with a
 * message) when missing; -EINVAL naming the file for a wrong magic.
 */
int thaw__criu_img_load(int dirfd, const char *name, uint32_t magic, struct thaw__criu_img *img,
			const struct thaw__criu_err *e);
/*
 * The next entry's bytes: 1 with *p and *n set, 0 at a clean end, -EINVAL
 * naming the file and entry when the length runs past the end.
 */
int thaw__criu_img_next(struct thaw__criu_img *img, const uint8_t **p, size_t *n,
			const struct thaw__criu_err *e);
void thaw__criu_img_free(struct thaw__criu_img *img);

/* The header bytes an image starts with (for writing a rewritten copy). */
size_t thaw__criu_img_header_len(uint32_t magic);

/* Message into e, returns code. */
int thaw__criu_fail(const struct thaw__criu_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
