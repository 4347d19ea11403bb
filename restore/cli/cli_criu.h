/* SPDX-License-Identifier: MIT */
/* thaw criu's two commands (cli_criu.c, cli_criu_lazy.c). */
#ifndef THAW_CLI_CRIU_H
#define THAW_CLI_CRIU_H

#include "cli_util.h"

#include <unistd.h>

int cli_criu_import(int argc, char **argv);
int cli_criu_lazy(int argc, char **argv);

#endif
