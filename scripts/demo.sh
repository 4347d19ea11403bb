#!/usr/bin/env bash
# make demo: what thaw does, in a minute. Snapshots a live python3 process
# that holds a large dict, then restores that memory two ways, eager and
# lazy, and compares when the memory became usable; then a post-copy live
# migration between two network namespaces (needs root; DEMO_MIGRATE_MIB
# sets its size, default 1024). Work files go to $THAW_BUILD/demo/
# (removed at the end unless DEMO_KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${THAW_BUILD:-build}
thaw=$build/thaw
work=$build/demo
[ -x "$thaw" ] || { echo "demo: no $thaw; run make first" >&2; exit 1; }
mkdir -p "$work"
pypid=
cleanup() {
	[ -n "$pypid" ] && kill "$pypid" 2>/dev/null
	[ "${DEMO_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ]; then
	step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
else
	step() { printf '\n%s\n' "$*"; }
fi
# JSON field(s) of a file, via python3 (installed by make deps).
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(d[k]) for k in sys.argv[2:]))' "$@"; }

step "1. A live process: python3 builds a dict of 1.2 million records"
ready=$work/python.ready
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
pypid=$!
for ((i = 0; i < 600; i++)); do
	[ -s "$ready" ] && break
	sleep 0.2
done
[ -s "$ready" ] || { echo "demo: the python3 workload did not start" >&2; exit 1; }
echo "python3 (pid $pypid) now holds $(awk '/VmRSS/ {printf "%d MiB", $2/1024}' /proc/$pypid/status) of memory."

step "2. Snapshot it: thaw create --pid (the process is paused while it is read)"
snap=$work/python.snap
echo "\$ thaw create --pid $pypid -o $snap"
"$thaw" create --pid "$pypid" -o "$snap"
kill "$pypid"
wait "$pypid" 2>/dev/null || true
pypid=
"$thaw" info "$snap" | sed -n '3,6p'
"$thaw" verify "$snap" | head -n 1

step "3. Restore that memory into a new process, eager and lazy"
echo "The workload reads 10% of the memory, a chunk's worth of pages at a time."
"$thaw" bench "$snap" --mode eager --touch clustered:10% --json >"$work/eager.json"
"$thaw" bench "$snap" --mode lazy --touch clustered:10% --json >"$work/lazy.json"
python3 - "$work/eager.json" "$work/lazy.json" <<'PY'
import json, sys
e, l = (json.load(open(p)) for p in sys.argv[1:3])
def ms(v):
    return "-" if v is None else ("%.1f ms" % v if v < 100 else "%.0f ms" % v)
rows = [
    ("memory usable after", e["restore_start_us"] / 1e3, l["restore_start_us"] / 1e3),
    ("first byte read after", e["first_access_us"] / 1e3, l["first_access_us"] / 1e3),
    ("workload (10% read) done after", e["total_ms"], l["total_ms"]),
    ("every page resident after", e["resident_ms"], l["resident_ms"]),
]
print()
print("  %-32s %22s %22s" % ("", "eager", "lazy (thaw)"))
print("  %-32s %22s %22s" % ("", "decode all, then run", "run now, pages follow"))
for name, a, b in rows:
    print("  %-32s %22s %22s" % (name, ms(a), ms(b)))
print()
print("  Lazy: the memory was usable %.0fx sooner and the workload finished %.1fx sooner."
      % (e["restore_start_us"] / max(l["restore_start_us"], 1), e["total_ms"] / l["total_ms"]))
print("  Its %d faults were served in %.0f us at the median (%.0f us at p99); %d pages came"
      % (l["faults"], l["fault_p50_us"], l["fault_p99_us"], l["pages_fault"]))
print("  on demand and %d from the background pass, which then made the rest resident."
      % l["pages_background"])
ok = e["checksum"] == l["checksum"]
print("  Both restores read the same bytes: %s." % ("yes" if ok else "NO, THEY DIFFER"))
sys.exit(0 if ok else 1)
PY

step "4. Live migration, post-copy style, between two hosts (examples/migrate/)"
mib=${DEMO_MIGRATE_MIB:-1024}
echo "Two network namespaces joined by a veth pair stand for two hosts. The source"
echo "runs a workload on $mib MiB of guest memory (a memfd); on a signal it pauses and"
echo "exports that memory over HTTP. The destination restores it lazily from the"
echo "source's URL at the same addresses and resumes the workload at once, while the"
echo "rest streams in; both end with the checksum of a run that never moved."
if [ "$(id -u)" -ne 0 ]; then
	# ip netns needs root; without it the demo still ends cleanly.
	echo "(skipped: the network namespaces need root)"
else
	echo "\$ examples/migrate/migrate.sh --size $mib --memfd"
	examples/migrate/migrate.sh --size "$mib" --memfd | grep -v '^RESULT'
fi

step "Done."
echo "Next: 'thaw --help', examples/lazy_restore.c, and 'make bench' for the full comparison."
