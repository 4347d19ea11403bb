#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to build and test thaw.
# As root this runs apt-get; otherwise it prints the command to run.
set -euo pipefail

pkgs=(build-essential pkg-config liburing-dev libzstd-dev libxxhash-dev libcurl4-openssl-dev
      nginx-light python3 zstd curl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "thaw needs: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The distribution starts nginx on port 80; the tests run their own.
	if command -v service >/dev/null; then service nginx stop >/dev/null 2>&1 || true; fi
	pkill -x nginx 2>/dev/null || true
fi
