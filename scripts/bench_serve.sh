# shellcheck shell=bash
# The serve section of make bench (sourced by scripts/bench.sh): thaw serve
# against the in-process restore, same snapshot, same touches, same run.
#   - per-fault latency as the toucher sees it (examples/vmm_client --measure:
#     the same data pages in the same order, timing each touch that faults),
#     through the daemon (no cache, a fresh daemon per run) and in-process;
#     target: serve within 1.2x of in-process.
#   - store bytes for four concurrent clients of one snapshot against one
#     client alone (the shared decoded-chunk cache); target: <= 1.3x.
# BENCH_SERVE_SIZE (default 256M) sets the mixed image's size.

serve_pid=

serve_start() {
	local sock=$1 json=$2
	shift 2
	rm -f "$json"
	"$thaw" serve --socket "$sock" --json-stats "$json" "$@" 2>>"$work/serve.log" &
	serve_pid=$!
	local i
	for ((i = 0; i < 500; i++)); do
		[ -S "$sock" ] && return 0
		sleep 0.01
	done
	echo "bench: thaw serve did not start (see $work/serve.log)" >&2
	return 1
}

serve_stop() {
	kill -TERM "$serve_pid"
	wait "$serve_pid"
	serve_pid=
}

section_serve() {
	local size=${BENCH_SERVE_SIZE:-256M}
	local name=serve$size
	mixed_snapshot "$name" "$size" 5
	local snap=$work/$name.snap vmm=$build/examples/vmm_client sock=$work/serve.sock
	local json=$work/serve-stats.json pct=2
	[ -x "$vmm" ] || { echo "bench: no $vmm; run make first" >&2; return 1; }
	: >"$work/serve.log"
	echo
	echo "== thaw serve: $name, per-fault latency ($pct% of data pages, random order; median of $reps)"
	local ip=() sv=() i
	for ((i = 1; i <= reps; i++)); do
		"$vmm" --snapshot "$snap" --in-process --measure "$pct" >"$res/serve-inproc.$i.json"
		ip+=("$res/serve-inproc.$i.json")
		serve_start "$sock" "$json" --cache-mb 0 "$snap"
		"$vmm" --socket "$sock" --snapshot "$snap" --measure "$pct" >"$res/serve-served.$i.json"
		serve_stop
		sv+=("$res/serve-served.$i.json")
	done
	cp "$(lib median fault_p50_us "${ip[@]}")" "$res/serve-inproc.json"
	cp "$(lib median fault_p50_us "${sv[@]}")" "$res/serve-served.json"
	local p_ip p_sv
	read -r p_ip q_ip n_ip <<<"$(jget "$res/serve-inproc.json" fault_p50_us fault_p99_us faults)"
	read -r p_sv q_sv n_sv <<<"$(jget "$res/serve-served.json" fault_p50_us fault_p99_us faults)"
	printf '  %-24s %8s faults, p50 %8s us, p99 %8s us\n' in-process "$n_ip" "$p_ip" "$q_ip"
	printf '  %-24s %8s faults, p50 %8s us, p99 %8s us\n' "through thaw serve" "$n_sv" "$p_sv" "$q_sv"
	target_row "serve: fault p50 through serve / in-process" \
		"$(calc "round($p_sv, 1)") / $(calc "round($p_ip, 1)") us = $(calc "round($p_sv/$p_ip, 2)")x" \
		"<= 1.2x" "$(calc "$p_sv/$p_ip <= 1.2")"

	echo "== thaw serve: $name, store bytes for 4 concurrent clients vs 1 (shared cache)"
	serve_start "$sock" "$json" --cache-mb 1024 "$snap"
	"$vmm" --socket "$sock" --snapshot "$snap" >/dev/null
	serve_stop
	local one four
	one=$(jget "$json" store_bytes_ended_clients)
	serve_start "$sock" "$json" --cache-mb 1024 "$snap"
	local pids=()
	for i in 1 2 3 4; do
		"$vmm" --socket "$sock" --snapshot "$snap" >/dev/null &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	serve_stop
	four=$(jget "$json" store_bytes_ended_clients)
	echo "  one client: $one bytes from the store; four at once: $four bytes"
	target_row "serve: store bytes, 4 clients / 1 client" \
		"$(calc "round($four/1048576, 1)") / $(calc "round($one/1048576, 1)") MiB = $(calc "round($four/$one, 2)")x" \
		"<= 1.3x" "$(calc "$four/$one <= 1.3")"
}
