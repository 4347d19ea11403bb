# shellcheck shell=bash
# The prefetch section of make bench (sourced by scripts/bench.sh): a fixed
# random 10% working set (the same pages every run, touched twice) of the
# mixed 2 GiB and python-heap snapshots, restored
#   on demand        (lazy, no background pass),
#   with prefetch    (recorded on demand, page by page -> thaw optimize,
#                     which packs the recorded pages into frames at the
#                     front -> the optimized snapshot restored lazily, no
#                     background pass: only the recorded set is streamed,
#                     its frames first),
#   resident         (the same touches on memory decoded beforehand: eager
#                     mode's touch time),
# each touch reading one word of its page, and again for prefetch and
# resident with each touch summing its whole page (--whole-page): a program
# works on its pages, and one word a page on resident memory is mostly TLB
# misses, which makes any restore look many times slower than it is; the
# prefetch / resident target is judged on whole pages,
# local and over HTTP (nginx on loopback), as ratios (issue 4 targets:
# prefetch >= 3x faster than on demand and within 1.3x of resident locally;
# >= 3x faster than HTTP on demand over HTTP; DESIGN.md section 6: HTTP
# prefetch within 1.2x of local prefetch).
#
# PREFETCH_DATASETS (default "mixed2g python") picks the snapshots; a smoke
# run can use "mixed256".

prefetch_touch=(--touch random:10% --seed 7 --passes 2)
prefetch_other=(--touch random:10% --seed 8 --passes 2)

prefetch_dataset() {
	case $1 in
	mixed2g) mixed_snapshot mixed2g 2G 1 ;;
	mixed256) mixed_snapshot mixed256 256M 2 ;;
	python) python_snapshot ;;
	*) say "prefetch: unknown dataset $1" && return 1 ;;
	esac
}

# One dataset: record, optimize, then the three restores (and HTTP when nginx runs).
prefetch_compare() {
	local name=$1 url_base=$2
	local snap=$work/$name.snap opt=$work/$name.opt.snap trace=$work/$name.trace
	echo
	echo "== prefetch: $name, random 10% of pages (seed 7) touched twice"
	"$thaw" bench "$snap" --mode lazy --no-background "${prefetch_touch[@]}" --record "$trace" --json >"$res/pf-$name-record.json"
	"$thaw" optimize "$snap" --trace "$trace" -o "$opt" --json >"$res/pf-$name-optimize.json"
	in_page_cache "$snap" "$opt"
	read -r nord ordb wsp wsf wsb <<<"$(jget "$res/pf-$name-optimize.json" chunks_ordered stored_bytes ws_pages ws_frames frame_bytes)"
	echo "  recorded $(jget "$res/pf-$name-record.json" faults) faults; optimized: $wsp pages in $wsf frames ($(calc "round($wsb/2**20, 1)") MiB), then $nord chunks; $(calc "round($ordb/2**20, 1)") MiB stored at the front"
	lib header
	bench_median "pf-$name-demand" total_ms "local on demand" "$snap" --mode lazy --no-background "${prefetch_touch[@]}"
	bench_median "pf-$name-prefetch" total_ms "local prefetch" "$opt" --mode lazy --no-background "${prefetch_touch[@]}"
	bench_median "pf-$name-resident" touch_ms "resident (eager, touches)" "$snap" --mode eager "${prefetch_touch[@]}"
	bench_median "pf-$name-prefetch-wp" total_ms "local prefetch, whole pages" "$opt" --mode lazy --no-background "${prefetch_touch[@]}" --whole-page
	bench_median "pf-$name-resident-wp" touch_ms "resident, whole pages" "$snap" --mode eager "${prefetch_touch[@]}" --whole-page
	# A repeat run rarely touches the very pages recorded: the same distribution
	# with another seed, on demand and through the same optimized snapshot.
	bench_median "pf-$name-other-demand" total_ms "local on demand, other pages" "$snap" --mode lazy --no-background "${prefetch_other[@]}"
	bench_median "pf-$name-other-prefetch" total_ms "local prefetch, other pages" "$opt" --mode lazy --no-background "${prefetch_other[@]}"
	if [ -n "$url_base" ]; then
		bench_median "pf-$name-http-demand" total_ms "http  on demand" "$url_base/$name.snap" --mode lazy --no-background "${prefetch_touch[@]}"
		bench_median "pf-$name-http-prefetch" total_ms "http  prefetch" "$url_base/$name.opt.snap" --mode lazy --no-background "${prefetch_touch[@]}"
	fi
	local run
	for run in prefetch http-prefetch; do
		[ -s "$res/pf-$name-$run.json" ] || continue
		# prefetch_done_ms is empty when the last listed chunk came in with the last touch
		jget "$res/pf-$name-$run.json" pages_ws ws_pages prefetch_late faults_unlisted lib_fault_p50_us frames_dropped prefetch_done_ms |
			awk -v n="$run" 'NF >= 6 {printf "  %-13s %s of %s working-set pages in by the frames (%s frames dropped), %s late faults, %s elsewhere; fault service p50 %s us; %s\n", n, $1, $2, $6, $3, $4, $5, (NF > 6 ? "listed chunks all in after " $7 " ms" : "listed chunks not all in by the last touch")}'
	done

	checksums_agree "on demand, prefetch and resident" \
		"prefetch $name: same bytes on demand, prefetch, resident" \
		demand="$res/pf-$name-demand.json" prefetch="$res/pf-$name-prefetch.json" \
		resident="$res/pf-$name-resident.json"
	checksums_agree "prefetch and resident, whole pages" \
		"prefetch $name: same bytes prefetch, resident (whole pages)" \
		prefetch="$res/pf-$name-prefetch-wp.json" resident="$res/pf-$name-resident-wp.json"
	local d p r
	d=$(jget "$res/pf-$name-demand.json" total_ms)
	p=$(jget "$res/pf-$name-prefetch.json" total_ms)
	r=$(jget "$res/pf-$name-resident.json" touch_ms)
	target_row "prefetch $name: on demand / prefetch total" \
		"$(calc "round($d)") / $(calc "round($p)") ms = $(calc "round($d/$p, 2)")x" ">= 3x" "$(calc "$d/$p >= 3")"
	local pw rw
	pw=$(jget "$res/pf-$name-prefetch-wp.json" total_ms)
	rw=$(jget "$res/pf-$name-resident-wp.json" touch_ms)
	target_row "prefetch $name: prefetch / resident, whole pages" \
		"$(calc "round($pw, 1)") / $(calc "round($rw, 1)") ms = $(calc "round($pw/$rw, 2)")x" "<= 1.3x" "$(calc "$pw/$rw <= 1.3")"
	# The first access to a page the kernel installed, against one to a page the
	# program wrote (scripts/first_touch.c): each page the restore brought in
	# pays it once, whatever thaw does, and resident memory never does.
	local nft ftc= ftr=
	nft=$(jget "$res/pf-$name-record.json" faults)
	[ -s "$res/first_touch.json" ] &&
		read -r ftc ftr <<<"$(jget "$res/first_touch.json" copy_touch_us resident_touch_us)"
	if [ -n "$ftc" ]; then
		local floor
		floor=$(calc "$rw + $nft * ($ftc - $ftr) / 1000")
		target_row "prefetch $name: resident + first touches / resident" \
			"$(calc "round($floor, 1)") / $(calc "round($rw, 1)") ms = $(calc "round($floor/$rw, 2)")x" "(floor)" -
		target_row "prefetch $name: prefetch / (resident + first touches)" \
			"$(calc "round($pw, 1)") / $(calc "round($floor, 1)") ms = $(calc "round($pw/$floor, 2)")x" "(floor)" -
	fi
	target_row "prefetch $name: prefetch / resident, one word a page" \
		"$(calc "round($p, 1)") / $(calc "round($r, 1)") ms = $(calc "round($p/$r, 2)")x" "(TLB)" -
	local od op
	od=$(jget "$res/pf-$name-other-demand.json" total_ms)
	op=$(jget "$res/pf-$name-other-prefetch.json" total_ms)
	target_row "prefetch $name, other pages: on demand / prefetch" \
		"$(calc "round($od)") / $(calc "round($op)") ms = $(calc "round($od/$op, 2)")x" "(seed 8)" -
	if [ -z "$url_base" ]; then
		not_measured "prefetch $name: http on demand / http prefetch" ">= 3x" "no nginx"
		not_measured "prefetch $name: http prefetch / local prefetch" "<= 1.2x" "no nginx"
	else
		local hd hp
		hd=$(jget "$res/pf-$name-http-demand.json" total_ms)
		hp=$(jget "$res/pf-$name-http-prefetch.json" total_ms)
		target_row "prefetch $name: http on demand / http prefetch" \
			"$(calc "round($hd)") / $(calc "round($hp)") ms = $(calc "round($hd/$hp, 2)")x" ">= 3x" "$(calc "$hd/$hp >= 3")"
		target_row "prefetch $name: http prefetch / local prefetch" \
			"$(calc "round($hp)") / $(calc "round($p)") ms = $(calc "round($hp/$p, 2)")x" "<= 1.2x" "$(calc "$hp/$p <= 1.2")"
	fi
}

section_prefetch() {
	local sets=(${PREFETCH_DATASETS:-mixed2g python}) name url_base=
	local ft
	ft=$(helper first_touch -pthread)
	"$ft" 2048 10 >"$res/first_touch.json" || rm -f "$res/first_touch.json"
	echo "== prefetch: the first touch of a page by how it came in (random 10% of 2 GiB, median of 3)"
	[ -s "$res/first_touch.json" ] && jget "$res/first_touch.json" resident_touch_us copy_us copy_touch_us copy_touch2_us copy_read_us copy_read_touch_us |
		awk 'NF == 6 {printf "  written by the program: %s us a touch; installed by UFFDIO_COPY (%s us): first touch %s us, second %s us;\n  read by the installing thread after its copy: %s us there, then %s us a touch\n", $1, $2, $3, $4, $5, $6}'
	for name in "${sets[@]}"; do
		prefetch_dataset "$name" || return 1
	done
	if [ -x /usr/sbin/nginx ] && http_nginx_start "${sets[0]}.snap"; then
		trap http_nginx_stop EXIT
		url_base=http://127.0.0.1:$http_port
	else
		echo "== prefetch: HTTP runs not measured (nginx is not installed or did not start)"
	fi
	for name in "${sets[@]}"; do
		prefetch_compare "$name" "$url_base"
	done
	http_nginx_stop
	trap - EXIT
}
