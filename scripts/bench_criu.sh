# shellcheck shell=bash
# The criu section of make bench (sourced by scripts/bench.sh): one two-task
# CRIU dump (examples/criu/workload, 2 x BENCH_CRIU_MIB of mixed memory)
# restored with `criu restore --lazy-pages`, served by CRIU's own
# `criu lazy-pages` from its images and by `thaw criu lazy-pages` from a
# file and from nginx, each BENCH_REPS times through examples/criu/run.sh
# (the median by time to resident is kept). Needs root and CRIU 4.x ($CRIU,
# else criu on PATH).

# criu_run NAME ARGS...: BENCH_REPS runs of run.sh; prints the median RESULT line's path.
criu_run() {
	local name=$1 i
	shift
	for i in $(seq "$reps"); do
		CRIU=$criu_bin THAW_BUILD=$build examples/criu/run.sh --size "${BENCH_CRIU_MIB:-256}" \
			--keep "$work/criu-run" "$@" >"$res/$name-$i.log" 2>&1 ||
			{ echo "  $name run $i failed:"; tail -n 5 "$res/$name-$i.log"; return 1; }
		grep '^RESULT ' "$res/$name-$i.log" | sed 's/^RESULT //; s/\([a-z0-9_]*\)=\([^ ]*\)/"\1": "\2",/g; s/^/{/; s/,$/}/' \
			>"$res/$name-$i.json"
	done
	python3 - "$res/$name" "$reps" <<'PY'
import json, sys
runs = [json.load(open("%s-%d.json" % (sys.argv[1], i + 1))) for i in range(int(sys.argv[2]))]
runs.sort(key=lambda r: int(r["resident_ms"]))
json.dump(runs[(len(runs) - 1) // 2], open(sys.argv[1] + ".json", "w"))
PY
}

section_criu() {
	echo
	echo "== criu: criu restore --lazy-pages, 2 tasks x ${BENCH_CRIU_MIB:-256} MiB mixed, served by each daemon"
	criu_bin=${CRIU:-$(command -v criu || true)}
	if [ "$(id -u)" != 0 ] || [ -z "$criu_bin" ]; then
		echo "  skipped: needs root and CRIU 4.x (\$CRIU or criu on PATH)"
		return 0
	fi
	criu_run criu-criu --criu-daemon || return 0
	criu_run criu-thaw-file || return 0
	criu_run criu-thaw-http --http || return 0
	printf '  %-22s %10s %12s %10s %12s %12s %12s\n' daemon "restore ms" "resident ms" "check ms" \
		"touch p50 us" "touch p99 us" "stored MiB"
	local d
	for d in criu thaw-file thaw-http; do
		read -r r t v p50 p99 st <<<"$(jget "$res/criu-$d.json" restore_ms resident_ms verify_us \
			touch_p50_us touch_p99_us stored_bytes)"
		printf '  %-22s %10s %12s %10s %12s %12s %12s\n' "$d" "$r" "$t" "$((v / 1000))" "$p50" "$p99" \
			"$(calc "round($st / 1048576, 1)")"
	done
	local cr tf th st pb
	read -r cr pb <<<"$(jget "$res/criu-criu.json" resident_ms pages_bytes)"
	read -r tf st <<<"$(jget "$res/criu-thaw-file.json" resident_ms stored_bytes)"
	th=$(jget "$res/criu-thaw-http.json" resident_ms)
	target_row "criu: every page in, criu lazy-pages / thaw (file)" \
		"$(calc "round($cr / $tf, 2)")x ($cr / $tf ms)" ">= 1 (3)" "$(calc "$cr >= $tf")"
	target_row "criu: every page in, thaw HTTP / thaw file" \
		"$(calc "round($th / $tf, 2)")x ($th / $tf ms)" "<= 1.5" "$(calc "$th <= 1.5 * $tf")"
	target_row "criu: stored / pages images" "$(calc "round(100.0 * $st / $pb, 1)")%" "<= 40%" \
		"$(calc "$st <= 0.4 * $pb")"
}
