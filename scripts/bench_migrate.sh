# shellcheck shell=bash
# The migrate section of make bench (sourced by scripts/bench.sh): post-copy
# live migration across two network namespaces (examples/migrate/migrate.sh)
# against a stop-and-copy baseline over the same export and link, in the
# same run. Targets (issue 6): downtime under 50 ms and flat in memory size,
# total migration time no later than stop-and-copy (DESIGN.md 6; issue 14); issue 14 adds the
# workload's blocktime / post-copy time, the fault p50 / p99 and bytes moved / data, for both
# workloads (examples/migrate/workload.h): uniform (every step a random data page, no work;
# reported) and hot (90% of steps in a slowly moving tenth, work a step; held to the target).
#
# BENCH_MIGRATE_MIB (default 1024) sets the size; the flatness run uses a
# quarter of it. Guest memory is a memfd (sent with sendfile), as a VMM's;
# one anonymous-memory run shows what copying out of memory costs.

# migrate_run NAME SIZE ARGS...: one migration; its RESULT line is kept as NAME.txt.
migrate_run() {
	local name=$1 size=$2
	shift 2
	examples/migrate/migrate.sh --size "$size" "$@" >"$res/$name.log" 2>&1 ||
		{ cat "$res/$name.log"; echo "bench: migration $name failed" >&2; return 1; }
	grep '^RESULT' "$res/$name.log" | tail -n 1 >"$res/$name.txt"
	printf '  %-44s %s\n' "$name" "$(cut -d' ' -f3-5 "$res/$name.txt")"
}

# migrate_get NAME KEY: one value of a kept RESULT line.
migrate_get() { tr ' ' '\n' <"$res/$1.txt" | sed -n "s/^$2=//p"; }

# migrate_ref SIZE WORKLOAD: the checksum a migrated run must end with.
migrate_ref() {
	local steps=20000000
	[ "$2" = hot ] && steps=3000000 # as migrate.sh
	"$build/examples/migrate/source" --reference --size "$1" --workload "$2" --steps "$steps" |
		sed -n 's/^checksum=//p'
}

# migrate_reps NAME SIZE ARGS...: BENCH_REPS migrations; NAME.txt is the one with
# the median total, NAME.spread the min / median / max of total and downtime.
migrate_reps() {
	local name=$1 size=$2 i
	shift 2
	local totals=() downs=()
	for ((i = 1; i <= reps; i++)); do
		migrate_run "$name.$i" "$size" "$@" || return 1
		totals+=("$(migrate_get "$name.$i" total_ms) $i")
		downs+=("$(migrate_get "$name.$i" downtime_ms)")
	done
	local med
	med=$(printf '%s\n' "${totals[@]}" | sort -g | sed -n "$(((reps + 1) / 2))p" | cut -d' ' -f2)
	cp "$res/$name.$med.txt" "$res/$name.txt"
	{
		printf '%s\n' "${totals[@]}" | cut -d' ' -f1 | sort -g | sed -n "1p;$(((reps + 1) / 2))p;\$p" | paste -sd' '
		printf '%s\n' "${downs[@]}" | sort -g | sed -n "1p;$(((reps + 1) / 2))p;\$p" | paste -sd' '
	} >"$res/$name.spread"
}

# migrate_spread NAME total|downtime: "min / median / max" ms.
migrate_spread() {
	local line=1
	[ "$2" = downtime ] && line=2
	sed -n "${line}p" "$res/$1.spread" | awk '{printf "%.1f / %.1f / %.1f", $1, $2, $3}'
}

# migrate_median NAME total|downtime: the median ms over the runs.
migrate_median() {
	local line=1
	[ "$2" = downtime ] && line=2
	sed -n "${line}p" "$res/$1.spread" | cut -d' ' -f2
}

# migrate_workload_rows NAME LABEL TARGET: what the workload felt and what crossed the link in
# NAME's median-total run; the blocktime row is held to TARGET (or "(reported)").
migrate_workload_rows() {
	local n=$1 label=$2 target=$3 blk down_b tot_b bytes data p50 p99 ok=-
	blk=$(migrate_get "$n" blocktime_ms)
	down_b=$(migrate_get "$n" downtime_ms)
	tot_b=$(migrate_get "$n" total_ms)
	bytes=$(migrate_get "$n" bytes)
	data=$(migrate_get "$n" data_bytes)
	p50=$(migrate_get "$n" fault_p50_us)
	p99=$(migrate_get "$n" fault_p99_us)
	[ "$target" = "(reported)" ] || ok=$(calc "$blk <= 0.25 * ($tot_b - $down_b)")
	target_row "$label: blocktime / post-copy time" \
		"$(calc "round($blk)") / $(calc "round($tot_b - $down_b)") ms = $(calc "round(100*$blk/($tot_b - $down_b))")%" \
		"$target" "$ok"
	target_row "$label: workload progress lost / post-copy time" \
		"$(migrate_get "$n" progress_lost_pct)% (the workload's own pace once resident)" "(reported)" -
	target_row "$label: workload on a CPU / waiting for one / asleep, share of post-copy" \
		"$(calc "round(100*$(migrate_get "$n" wl_cpu_ms)/($tot_b - $down_b))") / $(calc "round(100*$(migrate_get "$n" wl_wait_ms)/($tot_b - $down_b))") / $(calc "round(100 - 100*($(migrate_get "$n" wl_cpu_ms) + $(migrate_get "$n" wl_wait_ms))/($tot_b - $down_b))")%" \
		"(reported)" -
	target_row "$label: fault service p50 / p99" "${p50:-?} / ${p99:-?} us" "(reported)" -
	target_row "$label: bytes moved / data bytes" \
		"$(calc "round($bytes/1048576, 1)") / $(calc "round($data/1048576, 1)") MiB = $(calc "round($bytes/$data, 3)")x" \
		"(reported)" -
}

section_migrate() {
	local big=${BENCH_MIGRATE_MIB:-1024} small ref_big ref_small ref_hot
	small=$((big / 4))
	say
	say "== migrate: post-copy live migration across two network namespaces ($reps runs each)"
	ref_big=$(migrate_ref "$big" uniform)
	ref_small=$(migrate_ref "$small" uniform)
	ref_hot=$(migrate_ref "$big" hot)
	migrate_reps "migrate-postcopy-${small}M" "$small" --memfd --expect "$ref_small"
	migrate_reps "migrate-postcopy-${big}M" "$big" --memfd --expect "$ref_big"
	migrate_reps "migrate-stopcopy-${big}M" "$big" --memfd --stop-and-copy --expect "$ref_big"
	migrate_reps "migrate-postcopy-hot-${big}M" "$big" --memfd --workload hot --expect "$ref_hot"
	migrate_reps "migrate-postcopy-anon-${big}M" "$big" --expect "$ref_big"
	local n
	for n in "postcopy-${small}M" "postcopy-${big}M" "stopcopy-${big}M" "postcopy-hot-${big}M" \
		"postcopy-anon-${big}M"; do
		printf '  %-30s total ms %s, downtime ms %s (min / median / max)\n' "$n" \
			"$(migrate_spread "migrate-$n" total)" "$(migrate_spread "migrate-$n" downtime)"
	done
	# Each figure is its own median over the runs.
	local d_big d_small t_post t_copy t_hot t_anon
	d_big=$(migrate_median "migrate-postcopy-${big}M" downtime)
	d_small=$(migrate_median "migrate-postcopy-${small}M" downtime)
	t_post=$(migrate_median "migrate-postcopy-${big}M" total)
	t_copy=$(migrate_median "migrate-stopcopy-${big}M" total)
	t_hot=$(migrate_median "migrate-postcopy-hot-${big}M" total)
	t_anon=$(migrate_median "migrate-postcopy-anon-${big}M" total)
	target_row "migrate ${big} MiB: post-copy downtime" "$(calc "round($d_big, 1)") ms" "< 50 ms" \
		"$(calc "$d_big < 50")"
	target_row "migrate: downtime ${big} / ${small} MiB" \
		"$(calc "round($d_big, 1)") / $(calc "round($d_small, 1)") ms" "(flat, <= 2x)" \
		"$(calc "$d_big <= 2 * max($d_small, 1)")"
	target_row "migrate ${big} MiB: total, post-copy / stop-and-copy" \
		"$(calc "round($t_post)") / $(calc "round($t_copy)") ms = $(calc "round($t_post/$t_copy, 2)")x" \
		"<= 1x" "$(calc "$t_post <= $t_copy")"
	target_row "migrate ${big} MiB, hot workload: total / stop-and-copy" \
		"$(calc "round($t_hot)") / $(calc "round($t_copy)") ms = $(calc "round($t_hot/$t_copy, 2)")x" \
		"<= 1x" "$(calc "$t_hot <= $t_copy")"
	migrate_workload_rows "migrate-postcopy-hot-${big}M" "migrate ${big} MiB, hot workload" "<= 25%"
	migrate_workload_rows "migrate-postcopy-${big}M" "migrate ${big} MiB, uniform workload" \
		"(reported)"
	target_row "migrate ${big} MiB: stop-and-copy downtime" "$(calc "round($t_copy)") ms" "(baseline)" -
	target_row "migrate ${big} MiB: anonymous / memfd total" \
		"$(calc "round($t_anon)") / $(calc "round($t_post)") ms" "(copy cost)" -
}
