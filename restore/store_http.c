/* SPDX-License-Identifier: MIT */
/* HTTP(S) store: range GETs with libcurl, driven by the restore engine's ring. */
#include <errno.h>
#include <stdio.h>

#include "store.h"

int thaw__store_http_open(const char *url, const struct thaw_open_opts *opts,
			  const struct thaw__logger *log, struct thaw__store **out, char *err,
			  size_t err_len)
{
	(void)opts;
	(void)log;
	*out = NULL;
	if (err && err_len)
		snprintf(err, err_len, "%s: HTTP store not built yet", url);
	return -EPROTONOSUPPORT;
}
