#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to build and test thaw.
# As root this runs apt-get; otherwise it prints the command to run.
set -euo pipefail

# clang, bpftool and libbpf-dev build `thaw trace`'s BPF program and skeleton;
# util-linux's setpriv drops capabilities in its tests.
# man-db and groff-base render the manual pages in a test; gnuplot-nox draws
# the bench plots; systemd brings systemd-analyze, which checks the example units.
# protobuf-c decodes CRIU's images (`thaw criu`); the libraries after it are
# what the CRIU 4.2 binary the CRIU tests run (../shared/criu/criu) needs at run time.
pkgs=(build-essential pkg-config man-db groff-base gnuplot-nox liburing-dev libzstd-dev libxxhash-dev libcurl4-openssl-dev libmicrohttpd-dev
      libjson-c-dev nginx-light python3 zstd curl openssl iproute2 clang llvm bpftool libbpf-dev util-linux
      systemd libprotobuf-c-dev protobuf-c-compiler
      libprotobuf-c1 libnl-3-200 libnet1 libbsd0 libgnutls30 libuuid1 libbpf1)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm run s3rver for the SigV4 tests. Checked by command, not package:
# a node from another source (which bundles npm) must not be replaced.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "thaw needs: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The package starts a distribution nginx on port 80 that nothing here
	# needs (the tests start their own); stop it only if we just installed it.
	case " ${missing[*]} " in
	*" nginx-light "*) service nginx stop >/dev/null 2>&1 || true ;;
	esac
fi

# s3rver, an S3-compatible server for the HTTP store's SigV4 tests, from the
# npm registry into a cache directory (tests/httpd.c looks there, or in
# $THAW_S3RVER_DIR). Without it those tests skip, so a failure only warns.
s3dir=${THAW_S3RVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/thaw/s3rver}
if [ ! -f "$s3dir/node_modules/s3rver/bin/s3rver.js" ] && command -v npm >/dev/null; then
	echo "installing s3rver into $s3dir"
	mkdir -p "$s3dir"
	if ! (cd "$s3dir" && timeout 600 npm install --no-audit --no-fund --loglevel=error s3rver@3.7.1 >/dev/null); then
		echo "warning: npm could not install s3rver; the SigV4 tests will skip" >&2
	fi
fi
