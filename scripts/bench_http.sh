# shellcheck shell=bash
# The HTTP section of make bench (sourced by scripts/bench.sh): the same
# mixed 2 GiB snapshot restored from nginx on loopback beside the local
# file, in the same run, reported as ratios (DESIGN.md section 6: within
# 2x of local on demand, within 1.2x with background population).
#
# nginx runs with its own prefix under $work/nginx (config, logs, pid) and
# serves $work; it is stopped when the section ends.

http_nginx_pid=
http_port=

# http_nginx_start [FILE]: ready once FILE under $work (default mixed2g.snap) is served.
http_nginx_start() {
	local prefix
	prefix=$(realpath "$work")/nginx
	mkdir -p "$prefix/tmp"
	http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	local user=""
	[ "$(id -u)" -eq 0 ] && user="user root;"
	cat >"$prefix/nginx.conf" <<EOF
$user
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$http_port;
    root $(realpath "$work");
  }
}
EOF
	/usr/sbin/nginx -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' 2>>"$prefix/stderr.log" &
	http_nginx_pid=$!
	local i
	for ((i = 0; i < 100; i++)); do
		if curl -s -o /dev/null -r 0-0 "http://127.0.0.1:$http_port/${1:-mixed2g.snap}"; then
			return 0
		fi
		sleep 0.05
	done
	say "nginx did not start: $(tail -n 3 "$prefix/stderr.log" "$prefix/error.log" 2>/dev/null)"
	return 1
}

http_nginx_stop() {
	[ -n "$http_nginx_pid" ] || return 0
	kill "$http_nginx_pid" 2>/dev/null || true
	wait "$http_nginx_pid" 2>/dev/null || true
	http_nginx_pid=
}

section_http() {
	mixed_snapshot mixed2g 2G 1
	local snap=$work/mixed2g.snap
	in_page_cache "$snap"
	if [ ! -x /usr/sbin/nginx ]; then
		echo "== http: not measured (nginx is not installed)"
		local row
		for row in "on demand, http / local total|<= 2x" "with background, http / local|(<= 2x)" \
			"full background population, http / local|<= 1.2x"; do
			not_measured "http: ${row%|*}" "${row#*|}" "nginx is not installed"
		done
		return 0
	fi
	http_nginx_start || return 1
	trap http_nginx_stop EXIT
	local url=http://127.0.0.1:$http_port/mixed2g.snap
	echo
	echo "== http: mixed2g from nginx on loopback ($url) beside the local file"
	lib header
	# Interleaved, so both see the same page-cache and CPU conditions.
	bench_median http-local-r10 total_ms "local lazy  random:10%" "$snap" --mode lazy --touch random:10%
	bench_median http-url-r10 total_ms "http  lazy  random:10%" "$url" --mode lazy --touch random:10%
	bench_median http-local-nobg total_ms "local no-bg random:10%" "$snap" --mode lazy --touch random:10% --no-background
	bench_median http-url-nobg total_ms "http  no-bg random:10%" "$url" --mode lazy --touch random:10% --no-background
	bench_median http-local-bg resident_ms "local bg only (resident)" "$snap" --mode lazy --touch random:0%
	bench_median http-url-bg resident_ms "http  bg only (resident)" "$url" --mode lazy --touch random:0%
	http_nginx_stop
	trap - EXIT

	local lo ho lb hb ln hn
	lo=$(jget "$res/http-local-r10.json" total_ms)
	ho=$(jget "$res/http-url-r10.json" total_ms)
	ln=$(jget "$res/http-local-nobg.json" total_ms)
	hn=$(jget "$res/http-url-nobg.json" total_ms)
	lb=$(jget "$res/http-local-bg.json" resident_ms)
	hb=$(jget "$res/http-url-bg.json" resident_ms)
	local n
	for n in url-nobg url-r10 url-bg; do
		jget "$res/http-$n.json" http_requests http_bytes http_retries http_fault_p50_us http_bg_p50_us |
			awk -v n="$n" 'NF == 5 {printf "  %-9s %s GETs, %.0f MB, %s retries, request p50: fault lane %s us, background %s us\n", n, $1, $2 / 1e6, $3, $4, $5}'
	done
	target_row "http: 10% random on demand, http / local total" \
		"$(calc "round($hn)") / $(calc "round($ln)") ms = $(calc "round($hn/$ln, 2)")x" "<= 2x" "$(calc "$hn/$ln <= 2")"
	target_row "http: 10% random with background, http / local" \
		"$(calc "round($ho)") / $(calc "round($lo)") ms = $(calc "round($ho/$lo, 2)")x" "(<= 2x)" "$(calc "$ho/$lo <= 2")"
	target_row "http: full background population, http / local" \
		"$(calc "round($hb)") / $(calc "round($lb)") ms = $(calc "round($hb/$lb, 2)")x" "<= 1.2x" "$(calc "$hb/$lb <= 1.2")"
}
