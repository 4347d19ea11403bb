#!/usr/bin/env bash
# Run every test program under $THAW_BUILD/tests and print one closing line:
# "N passed, N failed" (", N skipped" when any were skipped).
# THAW_TESTS="test_format test_engine" limits the run to those programs.
set -u
build=${THAW_BUILD:-build}
export THAW_BUILD=$build
passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
progs=${THAW_TESTS:-$(cd "$build/tests" && ls test_* 2>/dev/null | grep -v '\.')}
for t in $progs; do
	"$build/tests/$t" >"$log" 2>&1
	status=$?
	grep -v '^#counts ' "$log"
	counts=$(grep '^#counts ' "$log" | tail -n 1)
	if [ -z "$counts" ]; then
		echo "FAIL  $t: the program ended without reporting (status $status)"
		failed=$((failed + 1))
		continue
	fi
	read -r _ p f s <<<"$counts"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
