/* SPDX-License-Identifier: MIT */
#include "abi.h"

#include <errno.h>
#include <string.h>

static size_t caller_size(const void *s)
{
	size_t sz;
	memcpy(&sz, s, sizeof(sz));
	return sz;
}

int thaw__opts_read(void *dst, size_t dst_size, const void *opts)
{
	memset(dst, 0, dst_size);
	if (!opts)
		return 0;
	size_t sz = caller_size(opts);
	if (sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = dst_size; i < sz; i++)
		if (((const unsigned char *)opts)[i])
			return -EINVAL;
	memcpy(dst, opts, sz < dst_size ? sz : dst_size);
	return 0;
}

int thaw__out_write(void *dst, const void *full, size_t full_size)
{
	size_t sz = caller_size(dst);
	if (sz < sizeof(size_t))
		return -EINVAL;
	size_t n = sz < full_size ? sz : full_size;
	memcpy((char *)dst + sizeof(size_t), (const char *)full + sizeof(size_t),
	       n - sizeof(size_t));
	if (sz > full_size)
		memset((char *)dst + full_size, 0, sz - full_size);
	return 0;
}
