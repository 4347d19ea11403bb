#!/usr/bin/env bash
# Post-copy live migration between two "hosts": two network namespaces
# joined by a veth pair. The source runs the workload, pauses on SIGUSR1
# and exports its memory; the destination restores it lazily from the
# source's URL and resumes at once while the rest streams in.
#
#   migrate.sh [--size MiB] [--memfd] [--stop-and-copy] [--run-ms N]
#              [--steps N] [--workload uniform|hot] [--cut-link SECS]
#              [--rate RATE] [--expect SUM]
#
#   --memfd          guest memory in a memfd (sent with sendfile) instead of anonymous
#   --workload W     uniform (default): every step writes a random data page;
#                    hot: 90% of steps in a slowly moving hot tenth, with work a step
#   --stop-and-copy  the baseline: copy all memory over the link, then resume
#   --cut-link SECS  take the source's link down for SECS seconds mid-migration
#   --rate RATE      shape the source's link (tc tbf), e.g. 1gbit; default unshaped
#   --expect SUM     the reference checksum, when known (skips the reference run)
#
# Needs root (ip netns). Prints both programs' reports; the destination's
# last line is "RESULT key=value ...". Exit status 0 when the destination
# ended with the reference run's checksum and no poisoned page.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${THAW_BUILD:-build}
bin=$build/examples/migrate
size=1024 run_ms=1000 steps= workload=uniform cut= rate= ref=
src_args=() dst_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift ;;
	--memfd) src_args+=(--memfd) ;;
	--stop-and-copy) dst_args+=(--stop-and-copy) ;;
	--run-ms) run_ms=$2; shift ;;
	--steps) steps=$2; shift ;;
	--workload) workload=$2; shift ;;
	--cut-link) cut=$2; shift ;;
	--rate) rate=$2; shift ;;
	--expect) ref=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "migrate.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
# About as long a run for either: a hot step does more work than a uniform one.
[ -n "$steps" ] || { [ "$workload" = hot ] && steps=3000000 || steps=20000000; }
for b in source destination; do
	[ -x "$bin/$b" ] || { echo "migrate.sh: no $bin/$b; run make first" >&2; exit 1; }
done

id=$$
ns_s=thaw-src-$id ns_d=thaw-dst-$id if_s=tms$id if_d=tmd$id
addr_s=10.98.0.1 addr_d=10.98.0.2
work=$(mktemp -d /tmp/thaw-migrate.XXXXXX)
src= dst=
cleanup() {
	[ -n "$src" ] && kill -9 "$src" 2>/dev/null
	[ -n "$dst" ] && kill -9 "$dst" 2>/dev/null
	ip netns del "$ns_s" 2>/dev/null
	ip netns del "$ns_d" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_s"
ip netns add "$ns_d"
ip link add "$if_s" netns "$ns_s" type veth peer name "$if_d" netns "$ns_d"
ip -n "$ns_s" addr add "$addr_s/24" dev "$if_s"
ip -n "$ns_d" addr add "$addr_d/24" dev "$if_d"
for ns in "$ns_s" "$ns_d"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "$if_s" up
ip -n "$ns_d" link set "$if_d" up
[ -z "$rate" ] || tc -n "$ns_s" qdisc add dev "$if_s" root tbf rate "$rate" burst 256kb latency 2000ms
echo "hosts: $ns_s ($addr_s) <-> $ns_d ($addr_d) over veth${rate:+, shaped to $rate}"

if [ -z "$ref" ]; then
	ref=$("$bin/source" --reference --size "$size" --steps "$steps" --workload "$workload" |
		sed -n 's/^checksum=//p')
	echo "reference run (never moved) ends with checksum $ref"
fi

mkfifo "$work/handoff" "$work/done"
ip netns exec "$ns_s" "$bin/source" --bind "$addr_s" --handoff "$work/handoff" \
	--done "$work/done" --size "$size" --steps "$steps" --workload "$workload" "${src_args[@]}" \
	>"$work/source.out" 2>&1 &
src=$!
ip netns exec "$ns_d" "$bin/destination" --handoff "$work/handoff" --done "$work/done" \
	--expect "$ref" "${dst_args[@]}" >"$work/destination.out" 2>&1 &
dst=$!
for ((i = 0; i < 600; i++)); do
	grep -q "workload running" "$work/source.out" 2>/dev/null && break
	sleep 0.1
done
sleep "$(awk -v ms="$run_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
kill -USR1 "$src"
if [ -n "$cut" ]; then
	sleep 0.2
	ip -n "$ns_s" link set "$if_s" down
	echo "link cut for $cut s"
	sleep "$cut"
	ip -n "$ns_s" link set "$if_s" up
fi
st=0
wait "$dst" || st=$?
dst=
# A destination that failed before saying done must not leave the source waiting.
[ "$st" = 0 ] || { timeout 2 sh -c ": > '$work/done'" 2>/dev/null || true; }
wait "$src" || true
src=
cat "$work/source.out" "$work/destination.out"
exit "$st"
