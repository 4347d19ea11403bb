#!/usr/bin/env bash
# make bench: thaw's figures, each as a ratio against a baseline measured in
# the same run (DESIGN.md section 6). Datasets are generated into
# $THAW_BUILD/bench/ and reused on later runs; delete that directory to
# regenerate them. Raw JSON of every run lands in $THAW_BUILD/bench/results/.
#
# Structure: `sections` lists what runs, in order; each section_NAME function
# runs its benchmarks (bench_run saves the JSON and prints a row) and adds
# lines to the closing table with target_row. To add a section (say HTTP
# runs against nginx), write section_http and append "http" to `sections`
# (or run just some: BENCH_SECTIONS="flatness mixed2g" make bench).
#
# Environment: THAW_BUILD (default build), BENCH_REPS (repeats of the key
# comparisons, default 3; the median run is kept), BENCH_SECTIONS, BENCH_RUNS
# (default 1: whole runs of every section; with more, a last table gives
# each figure's run-to-run min / median / max).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${THAW_BUILD:-build}
thaw=$build/thaw
work=$build/bench
res=$work/results
reps=${BENCH_REPS:-3}
cores=$(nproc)
sections=(${BENCH_SECTIONS:-baselines flatness mixed2g python http prefetch migrate trace serve criu plots})

[ -x "$thaw" ] || { echo "bench: no $thaw; run make first" >&2; exit 1; }
mkdir -p "$work" "$res"
runs=${BENCH_RUNS:-1}
rm -f "$res"/*.json "$work"/targets*.txt "$work"/targets*.tsv

say() { printf "%s\n" "$*"; }

# ---- helpers ---------------------------------------------------------------

# Build a scripts/*.c helper into $work when the source is newer; more
# arguments are compiler flags (libraries to link).
helper() {
	local name=$1
	shift
	if [ ! -x "$work/$name" ] || [ "scripts/$name.c" -nt "$work/$name" ]; then
		cc -O2 -Wall -o "$work/$name" "scripts/$name.c" -lm "$@"
	fi
	echo "$work/$name"
}

# Small JSON and arithmetic helpers in one python3 file.
cat >"$work/benchlib.py" <<'PY'
import json, statistics, sys

def load(path):
    with open(path) as f:
        return json.load(f)

def field(d, key):
    # "a.b" reaches into nested objects
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d

def cmd_get(path, *keys):
    d = load(path)
    print(" ".join("" if field(d, k) is None else str(field(d, k)) for k in keys))

def cmd_median(key, *paths):
    # the run whose `key` is the median (lower median for an even count)
    runs = sorted(paths, key=lambda p: load(p)[key])
    print(runs[(len(runs) - 1) // 2])

def fmt(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f%s" % (v, unit)
    if abs(v) >= 10:
        return "%.1f%s" % (v, unit)
    return "%.2f%s" % (v, unit)

def cmd_row(label, path):
    d = load(path)
    ms = lambda us: None if us is None else us / 1000.0
    print("  %-40s %9s %9s %10s %10s %8d %9s %9s" % (
        label, fmt(ms(d["restore_start_us"])), fmt(ms(d["first_access_us"])),
        fmt(d["total_ms"]), fmt(d.get("resident_ms")), d["faults"],
        fmt(d["fault_p50_us"]), fmt(d["fault_p99_us"])))

def cmd_header():
    print("  %-40s %9s %9s %10s %10s %8s %9s %9s" % (
        "run", "start ms", "first ms", "total ms", "resid. ms", "faults", "p50 us", "p99 us"))

def cmd_spread(key, *paths):
    # min, median and max of `key` over the runs (lower median for an even count)
    v = sorted(load(p)[key] for p in paths)
    print(v[0], v[(len(v) - 1) // 2], v[-1])

def key_figure(measured):
    # the figure a row is judged by: what follows its last "= ", else its last
    # ratio (x or %), else its last number
    import re
    if "= " in measured:
        measured = measured.rsplit("= ", 1)[1].split(" ")[0]
    nums = re.findall(r"(-?[0-9]+(?:\.[0-9]+)?)\s*(x|%|×)?", measured)
    ratios = [float(n) for n, unit in nums if unit]
    if ratios:
        return ratios[-1]
    return float(nums[-1][0]) if nums else None

def cmd_runs(*paths):
    # one line per figure over whole runs: the median run's text, the key's spread
    rows, order = {}, []
    for p in paths:
        with open(p) as f:
            for line in f:
                label, measured, target, verdict = line.rstrip("\n").split("\t")
                if label not in rows:
                    rows[label] = []
                    order.append(label)
                rows[label].append((key_figure(measured), measured, target, verdict))
    for label in order:
        runs = rows[label]
        keyed = sorted((r for r in runs if r[0] is not None), key=lambda r: r[0])
        mid = keyed[(len(keyed) - 1) // 2] if keyed else runs[-1]
        spread = ("%s / %s / %s" % (fmt(keyed[0][0]), fmt(mid[0]), fmt(keyed[-1][0]))
                  if len(keyed) > 1 else "-")
        met = sum(r[3] == "met" for r in runs)
        verdict = "%d of %d met" % (met, len(runs)) if mid[3] in ("met", "missed") else mid[3]
        print("  %-56s %-44s %-22s %-10s %s" % (label, mid[1], spread, mid[2], verdict))

def cmd_calc(expr):
    print(eval(expr, {"__builtins__": {}}, {"min": min, "max": max, "round": round}))

cmds = {"get": cmd_get, "median": cmd_median, "row": cmd_row, "header": cmd_header,
        "calc": cmd_calc, "spread": cmd_spread, "runs": cmd_runs}
cmds[sys.argv[1]](*sys.argv[2:])
PY
lib() { python3 "$work/benchlib.py" "$@"; }
calc() { lib calc "$1"; }
jget() { lib get "$@"; }

# bench_run NAME LABEL SNAP ARGS...: one `thaw bench` run, JSON kept as NAME.
bench_run() {
	local name=$1 label=$2 snap=$3
	shift 3
	"$thaw" bench "$snap" "$@" --json >"$res/$name.json"
	lib row "$label" "$res/$name.json"
}

# bench_median NAME KEY LABEL SNAP ARGS...: BENCH_REPS runs, keeps the median by KEY;
# KEY's min, median and max over the runs go to NAME.spread (see spread_of).
bench_median() {
	local name=$1 key=$2 label=$3 snap=$4
	shift 4
	local files=() i
	for ((i = 1; i <= reps; i++)); do
		"$thaw" bench "$snap" "$@" --json >"$res/$name.$i.json"
		files+=("$res/$name.$i.json")
	done
	cp "$(lib median "$key" "${files[@]}")" "$res/$name.json"
	lib spread "$key" "${files[@]}" >"$res/$name.spread"
	lib row "$label (median of $reps)" "$res/$name.json"
}

# spread_of NAME [SCALE]: "min / median / max" of a bench_median run's key, rounded.
spread_of() {
	local lo med hi
	read -r lo med hi <"$res/$1.spread"
	echo "$(calc "round($lo*${2:-1}, 1)") / $(calc "round($med*${2:-1}, 1)") / $(calc "round($hi*${2:-1}, 1)")"
}

# target_row LABEL MEASURED TARGET MET: a line of the closing table. MET is the
# computed comparison (1/True met, 0/False missed), or "-" for a figure that is
# reported beside the targets and judged against none.
target_row() {
	local verdict=missed
	[ "$4" = 1 ] || [ "$4" = True ] && verdict=met
	[ "$4" = - ] && verdict="(reported)"
	printf '  %-56s %-36s %-10s %s\n' "$1" "$2" "$3" "$verdict" >>"$work/targets.txt"
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$verdict" >>"$work/targets.tsv"
}

# not_measured LABEL TARGET REASON: a row whose run did not happen, and why.
not_measured() {
	printf '  %-56s %-36s %-10s %s\n' "$1" "not measured: $3" "$2" "-" >>"$work/targets.txt"
	printf '%s\t%s\t%s\t%s\n' "$1" "not measured: $3" "$2" "-" >>"$work/targets.tsv"
}

# source_agrees ROW RUN=FILE...: runs made with --source IMG compared the bytes
# they read with the image the snapshot was made from (never thaw's output).
source_agrees() {
	local row=$1 bad="" run
	shift
	for run in "$@"; do
		[ "$(jget "${run#*=}" source_match)" = True ] || bad+=" ${run%%=*}"
	done
	if [ -z "$bad" ]; then
		echo "  bytes read equal the source image ($*)" | sed 's/=[^ )]*//g'
		target_row "$row" "equal" "equal" 1
	else
		echo "  BYTES DIFFER FROM THE SOURCE IMAGE:$bad"
		target_row "$row" "differ:$bad" "equal" 0
	fi
}

# checksums_agree WHAT ROW RUN=FILE...: runs that read the same pages must
# report the same checksum; a mismatch is printed and fails target row ROW.
checksums_agree() {
	local what=$1 row=$2 first="" seen="" same=1 run sum
	shift 2
	for run in "$@"; do
		sum=$(jget "${run#*=}" checksum)
		seen+=" ${run%%=*} $sum"
		[ -n "$first" ] || first=$sum
		[ "$sum" = "$first" ] || same=0
	done
	if [ $same = 1 ]; then
		echo "  checksums agree across $what ($first)"
	else
		echo "  CHECKSUMS DIFFER:$seen"
		target_row "$row" "differ" "equal" 0
	fi
}

# ---- datasets ----------------------------------------------------------------

# mixed_snapshot NAME SIZE SEED: a synthetic mixed image (scripts/mkimage.c).
mixed_snapshot() {
	local name=$1 size=$2 seed=$3 snap=$work/$1.snap
	# The image stays beside the snapshot: bytes read are checked against it (--source).
	[ -s "$snap" ] && [ -s "$work/$name.img" ] && return 0
	local mk
	mk=$(helper mkimage)
	say "generating $name ($size mixed image)"
	"$mk" "$work/$name.img" "$size" "$seed"
	"$thaw" create --raw "$work/$name.img" --base 0x7f0000000000 -o "$snap" | tee "$work/$name.create.txt"
}

# A 4 GiB image that is mostly zero: 256 MiB of mixed data at its start, a
# sparse hole after. Quick to make, and big enough to show restore start
# does not grow with snapshot size.
zero4g_snapshot() {
	local snap=$work/zero4g.snap
	[ -s "$snap" ] && [ -s "$work/zero4g.img" ] && return 0
	local mk
	mk=$(helper mkimage)
	say "generating zero4g (4 GiB, 256 MiB of data, the rest zero)"
	"$mk" "$work/zero4g.img" 256M 3
	truncate -s 4G "$work/zero4g.img"
	"$thaw" create --raw "$work/zero4g.img" --base 0x7e0000000000 -o "$snap" | tee "$work/zero4g.create.txt"
}

# in_page_cache FILE...: read the files, so that a run does not pay for reading
# what the machine's proactive reclaim (DAMON pageout on this VM kind) dropped
# while other sections ran. Every mode gets its files warm alike.
in_page_cache() {
	cat "$@" >/dev/null
}

# source_opt NAME: --source for a dataset whose raw image is kept (not python's).
source_opt() {
	[ -s "$work/$1.img" ] && echo "--source $work/$1.img"
	return 0
}

# The memory of a python3 process that built a large dict, via create --pid.
python_snapshot() {
	local snap=$work/python.snap
	[ -s "$snap" ] && return 0
	local ready=$work/python.ready
	rm -f "$ready"
	say "generating python (a python3 process holding a large dict)"
	python3 - "$ready" <<'PY' &
import os, signal, sys
d = {}
for i in range(1_200_000):
    d["user:%08d" % i] = ("name-%d" % (i * 7919 % 100003), i, i * 0.5, ["tag%d" % (i % 97), "x"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.pause()
PY
	local pypid=$!
	local i
	for ((i = 0; i < 600; i++)); do
		[ -s "$ready" ] && break
		kill -0 "$pypid" 2>/dev/null || { say "python3 workload died"; return 1; }
		sleep 0.2
	done
	[ -s "$ready" ] || { kill "$pypid"; say "python3 workload never got ready"; return 1; }
	local rss
	rss=$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$pypid/status")
	say "python3 pid $pypid holds $rss resident"
	"$thaw" create --pid "$pypid" -o "$snap" | tee "$work/python.create.txt" || { kill "$pypid"; return 1; }
	kill "$pypid"
	wait "$pypid" 2>/dev/null || true
	rm -f "$ready"
}

# ---- sections ----------------------------------------------------------------

section_baselines() {
	echo "== baselines on this machine ($cores CPUs)"
	local ucr
	ucr=$(helper uffd_copy_rate)
	"$ucr" 512 >"$res/copy_rate.json"
	echo "  UFFDIO_COPY bulk install (best of 3): $(jget "$res/copy_rate.json" copy_4k_gbs copy_64k_gbs copy_2m_gbs | awk '{printf "4 KiB %s GB/s, 64 KiB %s GB/s, 2 MiB %s GB/s", $1, $2, $3}')"
}

# First byte by snapshot size, like with like: the first touched page holds
# data (--only data, a chunk to decode) in one column, is in an all-zero
# chunk (--only zero, a zero-page install) in the other, at every size.
section_flatness() {
	mixed_snapshot mixed256 256M 2
	mixed_snapshot mixed2g 2G 1
	zero4g_snapshot
	python_snapshot
	echo
	echo "== restore start and first byte, by snapshot size (lazy, background on; median of 5)"
	printf '  %-10s %10s %12s %16s %16s\n' snapshot raw "start ms" "first data ms" "first zero ms"
	local name kind
	for name in mixed256 mixed2g zero4g python; do
		local snap=$work/$name.snap i zeros first_zero=- start first raw
		"$thaw" info "$snap" --json >"$res/start-$name-info.json"
		zeros=$(jget "$res/start-$name-info.json" chunks_by_kind.zero)
		for kind in data zero; do
			[ $kind = zero ] && [ "$zeros" = 0 ] && continue
			local files=()
			for ((i = 1; i <= 5; i++)); do
				"$thaw" bench "$snap" --mode lazy --only $kind --touch random:0.01% --seed "$i" \
					--json >"$res/start-$name-$kind.$i.json"
				files+=("$res/start-$name-$kind.$i.json")
			done
			cp "$(lib median first_access_us "${files[@]}")" "$res/start-$name-$kind.json"
		done
		read -r start first raw <<<"$(jget "$res/start-$name-data.json" restore_start_us first_access_us raw_bytes)"
		[ -s "$res/start-$name-zero.json" ] &&
			first_zero=$(calc "round($(jget "$res/start-$name-zero.json" first_access_us)/1000, 3)")
		printf '  %-10s %7.0f MiB %12.3f %16.3f %16s\n' "$name" "$(calc "$raw/1048576")" \
			"$(calc "$start/1000")" "$(calc "$first/1000")" "$first_zero"
	done
	local f256 f4g f2g
	f256=$(jget "$res/start-mixed256-data.json" first_access_us)
	f2g=$(jget "$res/start-mixed2g-data.json" first_access_us)
	f4g=$(jget "$res/start-zero4g-data.json" first_access_us)
	target_row "restore start to first data byte, 2 GiB" "$(calc "round($f2g/1000, 3)") ms" "< 1 ms" \
		"$(calc "$f2g < 1000")"
	target_row "flatness: first data byte 4 GiB / 256 MiB" \
		"$(calc "round($f4g/$f256, 2)")x" "< 2x" "$(calc "$f4g/$f256 < 2")"
	if [ -s "$res/start-mixed256-zero.json" ] && [ -s "$res/start-zero4g-zero.json" ]; then
		f256=$(jget "$res/start-mixed256-zero.json" first_access_us)
		f4g=$(jget "$res/start-zero4g-zero.json" first_access_us)
		target_row "flatness: first zero byte 4 GiB / 256 MiB" \
			"$(calc "round($f4g/$f256, 2)")x" "< 2x" "$(calc "$f4g/$f256 < 2")"
	else
		not_measured "flatness: first zero byte 4 GiB / 256 MiB" "< 2x" "mixed256 has no zero chunk"
	fi
}

# The standard comparison on one snapshot: every mode, then the targets.
compare_modes() {
	local name=$1 snap=$work/$1.snap
	read -r raw stored pct chunk <<<"$(
		"$thaw" info "$snap" --json >"$res/$name-info.json"
		jget "$res/$name-info.json" raw_bytes stored_bytes stored_pct chunk_size
	)"
	echo
	echo "== $name: raw $(calc "round($raw/2**30, 2)") GiB, stored $(calc "round($stored/2**30, 2)") GiB ($pct% of raw), chunks of $((chunk / 1024)) KiB"

	# Decompression rate: verify decodes and hash-checks every chunk.
	"$thaw" verify "$snap" --threads 1 --json >"$res/$name-verify1.json"
	"$thaw" verify "$snap" --threads "$cores" --json >"$res/$name-verifyN.json"
	local dec1 decN
	dec1=$(jget "$res/$name-verify1.json" mb_s)
	decN=$(jget "$res/$name-verifyN.json" mb_s)
	echo "  decode + hash check (thaw verify): 1 thread $dec1 MB/s, $cores threads $decN MB/s (over raw bytes)"

	# With the raw image kept, lazy, eager and mmap check what they read against it,
	# and mmap maps it rather than an image written through thaw.
	local src
	src=$(source_opt "$name")
	in_page_cache "$snap" ${src:+"$work/$name.img"}
	lib header
	bench_run "$name-floor" "floor       random:10%" "$snap" --mode floor --touch random:10%
	bench_run "$name-mmap-seq" "mmap        seq" "$snap" --mode mmap $src
	bench_run "$name-mmap-r10" "mmap        random:10%" "$snap" --mode mmap --touch random:10% $src
	bench_run "$name-eager-seq" "eager       seq" "$snap" --mode eager $src
	bench_median "$name-eager-r10" total_ms "eager       random:10%" "$snap" --mode eager --touch random:10% $src
	bench_run "$name-lazy-seq" "lazy        seq" "$snap" --mode lazy $src
	bench_median "$name-lazy-r10" total_ms "lazy        random:10%" "$snap" --mode lazy --touch random:10% $src
	bench_run "$name-lazy-c10" "lazy        clustered:10%" "$snap" --mode lazy --touch clustered:10%
	bench_run "$name-eager-c10" "eager       clustered:10%" "$snap" --mode eager --touch clustered:10%
	population_pairs "$name" "$snap"
	local zero_chunks
	zero_chunks=$(jget "$res/$name-info.json" chunks_by_kind.zero)
	# Fault latency against the floor: the same number of runs on both sides, the
	# same statistic (median of BENCH_REPS runs' p50), the spread beside it.
	if [ "$zero_chunks" -gt 20 ]; then
		bench_median "$name-floor-zero" fault_p50_us "floor       zero-chunk pages 5%" "$snap" --mode floor --only zero --touch random:5%
		bench_median "$name-lazy-zero" fault_p50_us "lazy no-bg  zero-chunk pages 5%" "$snap" --mode lazy --only zero --touch random:5% --no-background
	fi
	bench_median "$name-floor-data" fault_p50_us "floor       data-chunk pages 2%" "$snap" --mode floor --only data --touch random:2%
	bench_median "$name-lazy-data" fault_p50_us "lazy no-bg  data-chunk pages 2%" "$snap" --mode lazy --only data --touch random:2% --no-background
	echo "  fault p50 over $reps runs, min / median / max us: floor data $(spread_of "$name-floor-data"), lazy data $(spread_of "$name-lazy-data")"
	[ -s "$res/$name-lazy-zero.json" ] &&
		echo "  fault p50 over $reps runs, min / median / max us: floor zero $(spread_of "$name-floor-zero"), lazy zero $(spread_of "$name-lazy-zero")"

	# Every mode read the same pages of the 10% run: the bytes must agree, and
	# equal the source image's where it is kept.
	checksums_agree "lazy, eager and mmap (the 10% touches)" \
		"$name: lazy bytes equal eager and mmap bytes" lazy="$res/$name-lazy-r10.json" \
		eager="$res/$name-eager-r10.json" mmap="$res/$name-mmap-r10.json"
	if [ -n "$src" ]; then
		source_agrees "$name: bytes read equal the source image" lazy="$res/$name-lazy-r10.json" \
			eager="$res/$name-eager-r10.json" lazy-seq="$res/$name-lazy-seq.json" \
			eager-seq="$res/$name-eager-seq.json"
	else
		not_measured "$name: bytes read equal the source image" "equal" "no raw image (a process)"
	fi

	local fz fzf fd fdf
	fd=$(jget "$res/$name-lazy-data.json" fault_p50_us)
	fdf=$(jget "$res/$name-floor-data.json" fault_p50_us)
	# One chunk's decode time at the one-thread rate (MB/s = bytes/us).
	local dec_us
	dec_us=$(calc "$chunk/$dec1")
	if [ -s "$res/$name-lazy-zero.json" ]; then
		fz=$(jget "$res/$name-lazy-zero.json" fault_p50_us)
		fzf=$(jget "$res/$name-floor-zero.json" fault_p50_us)
		target_row "$name: zero-chunk fault p50 / floor p50" \
			"$(calc "round($fz, 1)") / $(calc "round($fzf, 1)") us = $(calc "round($fz/$fzf, 2)")x" "<= 2x" "$(calc "$fz/$fzf <= 2")"
	else
		not_measured "$name: zero-chunk fault p50 / floor p50" "<= 2x" "$zero_chunks zero chunks"
	fi
	target_row "$name: data fault p50 / (floor + 1 chunk decode)" \
		"$(calc "round($fd, 1)") / ($(calc "round($fdf, 1)") + $(calc "round($dec_us, 1)")) us = $(calc "round($fd/($fdf+$dec_us), 2)")x" "<= 1x" \
		"$(calc "$fd/($fdf+$dec_us) <= 1")"

	local bg_ms bg_rate copy ceiling pipe_rate lo med hi
	bg_ms=$(jget "$res/$name-lazy-bg.json" resident_ms)
	bg_rate=$(calc "$raw/($bg_ms*1000)")
	copy=$(calc "$(jget "$res/copy_rate.json" copy_64k_gbs)*1000")
	ceiling=$(calc "min($dec1*$cores, $copy)")
	target_row "$name: background population / min(decode x $cores, COPY)" \
		"$(calc "round($bg_rate)") / $(calc "round($ceiling)") MB/s = $(calc "round(100*$bg_rate/$ceiling)")%" \
		">= 85%" "$(calc "$bg_rate >= 0.85*$ceiling")"
	pipe_rate=$(jget "$res/$name-ceiling.json" mb_s)
	read -r lo med hi <"$res/$name-population.spread"
	target_row "$name: background population / same work with no engine" \
		"$(calc "round($bg_rate)") / $(calc "round($pipe_rate)") MB/s = $(calc "round(100*$med)")% (pairs $(calc "round(100*$lo)") / $(calc "round(100*$med)") / $(calc "round(100*$hi)")%)" \
		">= 85%" "$(calc "$med >= 0.85")"

	local le lr ce10 lc
	le=$(jget "$res/$name-eager-r10.json" total_ms)
	lr=$(jget "$res/$name-lazy-r10.json" total_ms)
	target_row "$name: 10% random pages, eager / lazy total" \
		"$(calc "round($le)") / $(calc "round($lr)") ms = $(calc "round($le/$lr, 2)")x" ">= 5x" "$(calc "$le/$lr >= 5")"
	ce10=$(jget "$res/$name-eager-c10.json" total_ms)
	lc=$(jget "$res/$name-lazy-c10.json" total_ms)
	target_row "$name: 10% clustered pages, eager / lazy total" \
		"$(calc "round($ce10)") / $(calc "round($lc)") ms = $(calc "round($ce10/$lc, 2)")x" "(>= 5x)" "$(calc "$ce10/$lc >= 5")"
	target_row "$name: stored / raw" "$pct%" "<= 40%" "$(calc "$pct <= 40")"
}

# population_pairs NAME SNAP: full background population against its
# ceiling, the same chunks read, decoded, hash-checked and installed by one
# thread per CPU with no restore engine (scripts/population_ceiling.c).
# Five interleaved pairs, so both sides meet the same machine: the pair
# with the median ratio is kept (NAME-lazy-bg.json, NAME-ceiling.json), and
# the ratios' min / median / max go to NAME-population.spread.
population_pairs() {
	local name=$1 snap=$2 pc i pairs=()
	pc=$(helper population_ceiling -Iinclude "-L$build" -lthaw "-Wl,-rpath,$(realpath "$build")" \
		-lzstd -lxxhash -lpthread)
	in_page_cache "$snap"
	for ((i = 1; i <= 5; i++)); do
		"$pc" "$snap" >"$res/$name-ceiling.$i.json"
		"$thaw" bench "$snap" --mode lazy --touch random:0% --json >"$res/$name-lazy-bg.$i.json"
		pairs+=("$(calc "$(jget "$res/$name-ceiling.$i.json" ms)/$(jget "$res/$name-lazy-bg.$i.json" resident_ms)") $i")
	done
	local sorted med
	sorted=$(printf '%s\n' "${pairs[@]}" | sort -g)
	med=$(sed -n 3p <<<"$sorted" | cut -d' ' -f2)
	cp "$res/$name-lazy-bg.$med.json" "$res/$name-lazy-bg.json"
	cp "$res/$name-ceiling.$med.json" "$res/$name-ceiling.json"
	cut -d' ' -f1 <<<"$sorted" | sed -n '1p;3p;5p' | paste -sd' ' >"$res/$name-population.spread"
	lib row "lazy        no touches (bg only, median pair)" "$res/$name-lazy-bg.json"
	echo "  5 interleaved pairs, min / median / max: thaw $(lib spread resident_ms "$res/$name-lazy-bg".?.json) ms," \
		"no engine $(lib spread ms "$res/$name-ceiling".?.json) ms," \
		"thaw / no engine $(awk '{printf "%.0f%% / %.0f%% / %.0f%%", 100*$1, 100*$2, 100*$3}' "$res/$name-population.spread")"
}

# Not in the default list: the same comparison on 256 MiB, for a quick look
# (BENCH_SECTIONS="baselines mixed256").
section_mixed256() {
	mixed_snapshot mixed256 256M 2
	compare_modes mixed256
}

section_mixed2g() {
	mixed_snapshot mixed2g 2G 1
	compare_modes mixed2g
}

section_python() {
	python_snapshot
	compare_modes python
}

# Fault stalls as the kernel sees them (`thaw trace`, BPF) next to thaw's own
# latency figures for the same run: 10% random pages without the background
# pass, so every touched chunk is a fault, restored by thaw (lazy) and served
# by a bare userfaultfd handler (floor): two handlers seen from one side.
# Untraced lazy runs show what tracing costs; each figure is the median of
# BENCH_REPS runs. BENCH_TRACE_SIZE (default 2G, the mixed2g dataset) picks a
# smaller image for a quick look.
section_trace() {
	local size=${BENCH_TRACE_SIZE:-2G}
	local name=mixed${size,,}
	local snap=$work/$name.snap
	mixed_snapshot "$name" "$size" 1
	echo "== trace: $name, 10% random pages, no background pass, watched by thaw trace"
	lib header
	bench_median "trace-$name-plain" total_ms "lazy, untraced" "$snap" --touch random:10% --no-background
	local mode opts i
	for mode in lazy floor; do
		opts="--mode $mode --touch random:10%"
		[ $mode = lazy ] && opts="$opts --no-background"
		local benches=()
		for ((i = 1; i <= reps; i++)); do
			local tj=$res/trace-$name-$mode.$i.json bj=$res/trace-$name-$mode-bench.$i.json
			if ! "$thaw" trace --json -o "$res/trace-$name-$mode.$i.trace" -- /bin/sh -c \
				"exec '$thaw' bench '$snap' $opts --json >'$bj'" >"$tj" 2>"$work/trace.err" ||
				[ "$(jget "$tj" exit_status)" != 0 ]; then
				local why
				why=$(grep -v 'tracing' "$work/trace.err" | head -n 1)
				echo "  not measured: $why"
				not_measured "$name: thaw trace stalls / thaw faults (same run)" "(~1)" "${why:-thaw trace failed}"
				return 0
			fi
			benches+=("$bj")
		done
		# The median run by total time, with the tracer's view of that same run.
		local med
		med=$(lib median total_ms "${benches[@]}")
		i=${med%.json}
		i=${i##*.}
		cp "$med" "$res/trace-$name-$mode-bench.json"
		cp "$res/trace-$name-$mode.$i.json" "$res/trace-$name-$mode.json"
		lib row "$mode, traced (median of $reps)" "$res/trace-$name-$mode-bench.json"
	done
	local fmt='  %-53s %8s %10s %9s %9s\n'
	# trace_line LABEL MODE: the tracer's stalls of one traced run.
	trace_line() {
		local stalls blocked p50 p99
		read -r stalls blocked p50 p99 <<<"$(jget "$res/trace-$name-$2.json" stalls blocked_us \
			stall_p50_us stall_p99_us)"
		printf "$fmt" "$1" "$stalls" "$(calc "round($blocked/1000, 1)")" "$(calc "round($p50)")" \
			"$(calc "round($p99)")"
	}
	local faults lp50 lp99 lwait tp50 tp99 ffaults fp50 fp99 stalls traced plain
	read -r faults lp50 lp99 lwait tp50 tp99 traced <<<"$(jget "$res/trace-$name-lazy-bench.json" \
		faults lib_fault_p50_us lib_fault_p99_us lib_fault_wait_us fault_p50_us fault_p99_us total_ms)"
	read -r ffaults fp50 fp99 <<<"$(jget "$res/trace-$name-floor-bench.json" faults fault_p50_us \
		fault_p99_us)"
	plain=$(jget "$res/trace-$name-plain.json" total_ms)
	printf "$fmt" "same runs, seen by" count "total ms" "p50 us" "p99 us"
	trace_line "thaw trace, lazy: off-CPU stalls of faulting threads" lazy
	printf "$fmt" "thaw bench, lazy: slowest touches (one per fault)" "$faults" - \
		"$(calc "round($tp50)")" "$(calc "round($tp99)")"
	printf "$fmt" "library, lazy: fault service (thaw_stats)" "$faults" \
		"$(calc "round($lwait/1000, 1)")" "$lp50" "$lp99"
	trace_line "thaw trace, floor: off-CPU stalls" floor
	printf "$fmt" "thaw bench, floor: slowest touches" "$ffaults" - "$(calc "round($fp50)")" \
		"$(calc "round($fp99)")"
	echo "  tracing overhead, lazy (medians): total $(calc "round($traced)") ms traced vs $(calc "round($plain)") ms untraced"
	stalls=$(jget "$res/trace-$name-lazy.json" stalls)
	target_row "$name: thaw trace stalls / thaw faults (same run)" "$stalls / $faults" \
		"(~1)" "$(calc "$stalls >= 0.95 * $faults - 2 and $stalls <= 1.05 * $faults + 2")"
}

# The HTTP section (nginx on loopback beside the local store).
# shellcheck source=scripts/bench_http.sh
. scripts/bench_http.sh
# shellcheck source=scripts/bench_prefetch.sh
. scripts/bench_prefetch.sh
# The migrate section (two network namespaces; needs root).
# shellcheck source=scripts/bench_migrate.sh
. scripts/bench_migrate.sh
# shellcheck source=scripts/bench_serve.sh
. scripts/bench_serve.sh
# The criu section (a real CRIU dump; needs root and CRIU 4.x).
# shellcheck source=scripts/bench_criu.sh
. scripts/bench_criu.sh

# PNGs from the run's JSON (gnuplot), last so that every section's JSON is there.
# shellcheck source=scripts/bench_plots.sh
. scripts/bench_plots.sh

# ---- run ---------------------------------------------------------------------

# Every figure here is a wall-clock time on a shared machine: say how busy it was.
load_note() { echo "(load average $(cut -d' ' -f1-3 /proc/loadavg) on $cores CPUs$1)"; }
load_note "; other work running now makes every figure noisier"
t0=$(date +%s)
for ((run = 1; run <= runs; run++)); do
	[ "$runs" = 1 ] || echo "==== run $run of $runs"
	: >"$work/targets.txt"
	: >"$work/targets.tsv"
	for s in "${sections[@]}"; do
		"section_$s"
	done
	echo
	echo "== DESIGN.md section 6 targets, measured in this run"
	printf '  %-56s %-36s %-10s %s\n' figure measured target verdict
	cat "$work/targets.txt"
	cp "$work/targets.tsv" "$work/targets.$run.tsv"
	echo
done
if [ "$runs" -gt 1 ]; then
	echo "== the same figures over $runs whole runs: the median run's figures, the spread of each row's"
	echo "   last ratio (or last number) as min / median / max, and how many runs met the target"
	printf '  %-56s %-44s %-22s %-10s %s\n' figure "measured (median run)" "min / median / max" target verdict
	lib runs "$work"/targets.[0-9]*.tsv
	echo
fi
echo "(JSON of the last run: $res; total $(($(date +%s) - t0)) s)"
load_note " at the end"
