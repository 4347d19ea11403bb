#!/usr/bin/env bash
# Run libFuzzer targets (build/fuzz/fuzz_*, from tests/fuzz/) for SECONDS each,
# seeded with inputs like the ones the tests write: snapshots with and
# without a working set, traces, HTTP replies and serve handshakes.
#   scripts/fuzz.sh [SECONDS [TARGET...]]     default 60 s, every target
# $FUZZ_CORPUS is where each target's corpus grows (default build/fuzz/corpus);
# a crash leaves its input in build/fuzz/artifacts/ and the script exits 1.
set -eu
cd "$(dirname "$0")/.."
build=${THAW_BUILD:-build}
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}
corpus=${FUZZ_CORPUS:-$build/fuzz/corpus}
seeds=$build/fuzz/seeds
thaw=$build/thaw

make_seeds() {
	mkdir -p "$seeds"/{snap,trace,http,handshake}
	# A small snapshot of 4 KiB chunks, and the same with a working set (frames, prefetch).
	head -c 12288 /dev/urandom >"$seeds/img.raw" && head -c 20480 /dev/zero >>"$seeds/img.raw"
	"$thaw" create -o "$seeds/snap/small.thaw" --raw "$seeds/img.raw" --base 0x10000 \
		--chunk-size 4K >/dev/null
	printf 'thaw-trace 1\n1 page 0x17000 1\n2 page 0x10000 1\n3 page 0x12000 7\n' \
		>"$seeds/trace/pages.trace"
	"$thaw" optimize "$seeds/snap/small.thaw" --trace "$seeds/trace/pages.trace" \
		-o "$seeds/snap/small-ws.thaw" >/dev/null
	# Text-like pages: zstd chunks of 64 KiB.
	python3 -c 'import sys; sys.stdout.buffer.write(b"".join(b"line %010d\n" % i for i in range(0, 131072, 16)))' \
		>"$seeds/text.raw"
	"$thaw" create -o "$seeds/snap/text.thaw" --raw "$seeds/text.raw" --base 0 >/dev/null
	local digest
	digest=$("$thaw" info --json "$seeds/snap/small.thaw" | sed -n 's/.*"digest": "\([0-9a-f]*\)".*/\1/p')
	printf 'thaw-trace 1\nsnapshot %s\n# chunks\n5 chunk 1\n9 chunk 0\n' "$digest" \
		>"$seeds/trace/chunks.trace"
	python3 - "$seeds" <<'PY'
import struct, sys
d = sys.argv[1]
def req(off, ln, flags, rc, total):
    return struct.pack('<IHBBI', off, ln - 1, flags, rc, total)
body = bytes(range(256))
seeds = {
    'ok': req(4096, 256, 0x12, 0, 65536) + b'HTTP/1.1 206 Partial Content\r\n'
          b'Content-Range: bytes 4096-4351/65536\r\nETag: "v1"\r\n\r\n' + body,
    'scatter': req(0, 256, 0x08, 0, 0) + b'HTTP/1.1 206 Partial Content\r\n'
               b'Content-Range: bytes 0-255/1000\r\n\r\n' + body,
    'retry': req(0, 256, 0x04, 0, 0) + b'HTTP/1.1 503 Slow Down\r\nRetry-After: 2\r\n'
             b'Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\nbusy',
    'open': req(0, 1, 0x01, 0, 0) + b'HTTP/1.1 206 Partial Content\r\n'
            b'Content-Range: bytes 0-4095/8192\r\n\r\n' + body * 16,
    'redirect': req(0, 256, 0x00, 0, 0) + b'HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n',
}
for k, v in seeds.items():
    open(f'{d}/http/{k}', 'wb').write(v)
hs = {
    'one': b'\x01[{"base_host_virt_addr": 4096, "size": 8192, "offset": 0, "page_size": 4096}]',
    'two': b'\x01[{"base_host_virt_addr": 4096, "size": 4096, "offset": 0, "page_size_kib": 4096},'
           b' {"base_host_virt_addr": 65536, "size": 4096, "offset": 4096, "page_size": 4096}]',
    'nofd': b'\x00[{"base_host_virt_addr": 0, "size": 1, "offset": 0, "page_size": 4096}]',
    'bad': b'\x02{"size": -1}',
}
for k, v in hs.items():
    open(f'{d}/handshake/{k}', 'wb').write(v)
PY
}

seed_dir() {
	case $1 in
	fuzz_layout | fuzz_chunk) echo snap ;;
	fuzz_trace) echo trace ;;
	fuzz_http) echo http ;;
	fuzz_handshake) echo handshake ;;
	*) echo none ;;
	esac
}

make_seeds
mkdir -p "$build/fuzz/artifacts"
status=0
for t in $targets; do
	mkdir -p "$corpus/$t"
	[ -d "$seeds/$(seed_dir "$t")" ] && cp -n "$seeds/$(seed_dir "$t")"/* "$corpus/$t/"
	echo "fuzz: $t for ${secs}s"
	if ! "$build/fuzz/$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
		-artifact_prefix="$build/fuzz/artifacts/$t-" "$corpus/$t" >"$build/fuzz/$t.log" 2>&1; then
		tail -n 40 "$build/fuzz/$t.log"
		echo "fuzz: $t FAILED (log: $build/fuzz/$t.log)"
		status=1
	else
		grep -E '^Done|^#[0-9]+.*DONE' "$build/fuzz/$t.log" | tail -n 1 || true
	fi
done
exit $status
