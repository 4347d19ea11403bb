/* SPDX-License-Identifier: MIT */
/* The open snapshot handle, shared by the restore and the tools. */
#ifndef THAW_RESTORE_SNAPSHOT_H
#define THAW_RESTORE_SNAPSHOT_H

#include "format.h"
#include "store.h"

struct thaw_snapshot {
	struct thaw__layout layout;
	struct thaw__store *store; /* owned */
	struct thaw__logger log;
	char *uri; /* owned */
};

/* Write "fmt..." into err (if any) and log it at error level. Returns code. */
int thaw__fail(const struct thaw__logger *log, char *err, size_t err_len, int code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
