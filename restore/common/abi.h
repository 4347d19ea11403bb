/* SPDX-License-Identifier: MIT */
/*
 * The sized structs of the public ABI. Every options and output struct in
 * thaw.h starts with `size_t sz`, the size of the struct the caller was
 * built with, so either side may be newer:
 *  - options: fields past the caller's sz read as zero (the default); a
 *    newer caller's bytes past this library's struct must be zero (an
 *    option this library does not know is refused, not ignored);
 *  - outputs: the library writes only the caller's sz bytes, and zeroes
 *    what a newer caller has past this library's struct.
 * A sz smaller than the size field itself is refused: the caller forgot it.
 */
#ifndef THAW_RESTORE_ABI_H
#define THAW_RESTORE_ABI_H

#include <stddef.h>

/*
 * Copy the caller's options (may be NULL: all defaults) into dst, a
 * struct of this library's size dst_size, zero-filled past what the
 * caller passed. 0, or -EINVAL as above.
 */
int thaw__opts_read(void *dst, size_t dst_size, const void *opts);
#define THAW__OPTS_READ(dst, opts) thaw__opts_read((dst), sizeof(*(dst)), (opts))

/*
 * Give the caller's output struct dst (its sz set by the caller) the
 * fields of full, a filled struct of this library's size full_size; dst's
 * sz is left as the caller set it. 0, or -EINVAL as above.
 */
int thaw__out_write(void *dst, const void *full, size_t full_size);
#define THAW__OUT_WRITE(dst, full) thaw__out_write((dst), (full), sizeof(*(full)))

#endif
