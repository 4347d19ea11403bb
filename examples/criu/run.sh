#!/usr/bin/env bash
# CRIU end to end: a two-process workload (workload.c) is checkpointed with
# criu dump, its lazy pages imported into a thaw snapshot (the image dir
# stripped of them), and restored with criu restore --lazy-pages served by
# `thaw criu lazy-pages`; the processes then check every page.
#
#   run.sh [--size MiB] [--http] [--criu-daemon] [--keep DIR]
#
#   --size MiB       memory per process (default 64)
#   --http           serve the snapshot from nginx on loopback, not the file
#   --criu-daemon    the baseline: CRIU's own `criu lazy-pages` on the unstripped images
#   --keep DIR       work in DIR and keep it (default: a temporary dir, removed)
#
# Needs root and CRIU 4.x ($CRIU, else criu on PATH); thaw from $THAW_BUILD
# (default build/). The last line is "RESULT key=value ...": criu restore's
# time, time until the daemon had every page in, the parent's check (first
# read of each page, p50/p99) and the sizes. Exit 0 when every page was right.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
build=$(realpath "${THAW_BUILD:-build}")
criu=${CRIU:-$(command -v criu || true)}
[ -n "$criu" ] || { echo "run.sh: no CRIU (set CRIU or put criu 4.x on PATH)" >&2; exit 1; }
criu=$(realpath "$criu")
size=64 http= baseline= keep=
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift ;;
	--http) http=1 ;;
	--criu-daemon) baseline=1 ;;
	--keep) keep=$2; shift ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if [ -n "$keep" ]; then
	rm -rf "$keep" && mkdir -p "$keep" && work=$(realpath "$keep")
else
	work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
fi
ms() { echo $(( $(date +%s%N) / 1000000 )); }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup; [ -n "$keep" ] || rm -rf "$work"' EXIT

# The workload: its own session, nothing of ours open, so criu needs no --shell-job.
mkdir "$work/run"
setsid "$build/examples/criu/workload" "$work/run" "$size" </dev/null >/dev/null 2>&1 &
root=$!
for _ in $(seq 3000); do [ -f "$work/run/ready-1" ] && [ -f "$work/run/ready-2" ] && break; sleep 0.01; done
PID=$(cat "$work/run/ready-1") child=$(cat "$work/run/ready-2")
cd "$work"
mkdir img && "$criu" dump -t "$PID" -D img -o dump.log
# criu restore needs the pids back: reap ours, wait until init has the other.
wait "$root" 2>/dev/null || true
for _ in $(seq 1000); do [ -d "/proc/$child" ] || break; sleep 0.01; done

pages_bytes=$(cat img/pages-*.img | wc -c)
if [ -n "$baseline" ]; then
	imgs=img snap_bytes=$pages_bytes
	"$criu" lazy-pages -D img -o lazy-pages.log &
	daemon=$!
	what=criu-lazy-pages
else
	"$build/thaw" criu import img -o app.thaw --strip small
	imgs=small snap_bytes=$(wc -c <app.thaw)
	src=app.thaw what=thaw-file
	if [ -n "$http" ]; then
		mkdir -p nginx/www nginx/logs nginx/tmp && mv app.thaw nginx/www/
		chmod a+rx "$work" nginx nginx/www && chmod a+r nginx/www/app.thaw
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		cat >nginx/nginx.conf <<EOF
worker_processes 1;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 256; }
http {
	access_log off;
	sendfile on;
	tcp_nopush off;
	client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
	fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
	server { listen 127.0.0.1:$port; root $work/nginx/www; }
}
EOF
		/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
		pids+=($!)
		for _ in $(seq 500); do curl -sfI "http://127.0.0.1:$port/app.thaw" >/dev/null && break; sleep 0.01; done
		src=http://127.0.0.1:$port/app.thaw what=thaw-http
	fi
	"$build/thaw" criu lazy-pages --images-dir small --json-stats stats.json "$src" &
	daemon=$!
fi
pids+=($daemon)
for _ in $(seq 500); do [ -S "$imgs/lazy-pages.socket" ] && break; sleep 0.01; done

t0=$(ms)
"$criu" restore -D "$imgs" --lazy-pages -d -o restore.log
t1=$(ms)
touch run/go
wait "$daemon"
t2=$(ms)
for _ in $(seq 3000); do
	[ -f run/result-1 ] && [ -f run/result-2 ] && [ -f run/result-10 ] && [ -f run/result-20 ] && break
	sleep 0.01
done
head run/result-1 run/result-2 run/result-10 run/result-20
ok=1
for t in 1 2 10 20; do grep -q '^ok' "run/result-$t" 2>/dev/null || ok=0; done
check=$(sed -n 's/^ok //p' run/result-1)
echo "RESULT daemon=$what ok=$ok size_mib=$size restore_ms=$((t1 - t0)) resident_ms=$((t2 - t0)) $check" \
	"pages_bytes=$pages_bytes stored_bytes=$snap_bytes"
[ "$ok" = 1 ]
