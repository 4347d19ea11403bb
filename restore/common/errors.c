/* SPDX-License-Identifier: MIT */
#include "errors.h"

#include <stdio.h>
#include <string.h>

int thaw__vfail(const struct thaw__logger *log, char *err, size_t err_len, int code,
		const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err && err_len)
		snprintf(err, err_len, "%s", msg);
	thaw__err(log, "%s", msg); /* a NULL logger drops it */
	return code;
}

int thaw__fail(const struct thaw__logger *log, char *err, size_t err_len, int code, const char *fmt,
	       ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = thaw__vfail(log, err, err_len, code, fmt, ap);
	va_end(ap);
	return ret;
}

static const char *const thaw_messages[THAW_E_END - THAW_E_BASE] = {
	[THAW_E_BAD_SNAPSHOT - THAW_E_BASE] = "malformed snapshot",
	[THAW_E_VERSION - THAW_E_BASE] = "unsupported snapshot format version",
	[THAW_E_HASH - THAW_E_BASE] = "chunk hash mismatch",
	[THAW_E_CODEC - THAW_E_BASE] = "chunk failed to decompress",
	[THAW_E_HTTP - THAW_E_BASE] = "HTTP error status",
	[THAW_E_CHANGED - THAW_E_BASE] = "snapshot changed on the server",
	[THAW_E_NET - THAW_E_BASE] = "network failure after every retry and mirror",
	[THAW_E_UFFD_FEATURE - THAW_E_BASE] = "kernel lacks a required userfaultfd feature",
	[THAW_E_POISONED - THAW_E_BASE] = "some chunks could not be read and were poisoned",
	[THAW_E_TARGET_GONE - THAW_E_BASE] = "the restored address space went away",
	[THAW_E_UNINSTALLED - THAW_E_BASE] =
		"some chunks could be neither installed nor poisoned; their pages stay registered",
};

const char *thaw_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err >= THAW_E_BASE && err < THAW_E_END)
		return thaw_messages[err - THAW_E_BASE];
	/* strerrordesc_np returns static text, unlike strerror's buffer. */
	const char *s = strerrordesc_np(err);
	return s ? s : "unknown error";
}

const char *thaw_version(void)
{
	return THAW_VERSION_STRING;
}
