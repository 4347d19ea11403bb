/* SPDX-License-Identifier: MIT */
/* The `thaw` command: dispatch to a subcommand. */
#include "cli_util.h"

#include <string.h>

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Adding a subcommand is one line here plus its cli_*.c file. */
static const struct cli_command commands[] = {
	{ "create", cli_create, "write a snapshot of a raw memory file or a live process" },
	{ "info", cli_info, "show a snapshot's header, regions and chunk statistics" },
	{ "verify", cli_verify, "decode and hash-check every chunk of a snapshot" },
	{ "extract", cli_extract, "write a snapshot's memory to a file, through a lazy restore" },
	{ "optimize", cli_optimize, "lay a snapshot out in the order recorded runs touched it" },
	{ "serve", cli_serve,
	  "serve page faults for other processes (Firecracker's UFFD handshake)" },
	{ "criu", cli_criu, "restore CRIU checkpoints lazily: import images, serve lazy pages" },
	{ "bench", cli_bench, "measure a lazy restore against eager, mmap and a bare-uffd floor" },
	{ "trace", cli_trace, "watch a process's page faults and fault stalls through BPF" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: thaw COMMAND [OPTIONS]\n"
		   "       thaw COMMAND --help\n"
		   "       thaw --version\n"
		   "\n"
		   "thaw restores memory snapshots lazily with userfaultfd: pages come from a\n"
		   "zstd-compressed snapshot the first time they are touched.\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n"
		   "Exit status: 0 success, 1 failure, 2 usage error.\n"
		   "Environment: THAW_LOG=error|warn|info|debug sets how much the library logs\n"
		   "(default: warnings and errors).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_err(NULL, "no command given");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("thaw %s (library %s)\n", THAW_VERSION_STRING, thaw_version());
		return CLI_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	if (cmd[0] == '-')
		return cli_usage_err(NULL, "unknown option '%s' (a command comes first)", cmd);
	return cli_usage_err(NULL, "unknown command '%s'", cmd);
}
