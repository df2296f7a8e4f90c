#!/usr/bin/env bash
# Run the C test programs (cmocka) and the CLI tests (pytest) of one build
# configuration. Usage: tests/run-c-tests.sh TESTBIN BINDIR
# Appends "passed failed skipped" per runner to $RESULTS (if set), and the
# failing programs' names to $CHECK_FAILURES (if set).
set -u
testbin=$1 bindir=$2
top=$(cd "$(dirname "$0")/.." && pwd)
status=0

record() { # passed failed skipped
	[ -n "${RESULTS:-}" ] && echo "$1 $2 $3" >> "$RESULTS"
	return 0
}
failure() { # what failed: for the summary at the end of make check
	status=1
	[ -z "${CHECK_FAILURES:-}" ] || echo "$1" >> "$CHECK_FAILURES"
}

run_cmocka() {
	local prog=$1 out rc
	out=$(GUEST_DIR="$testbin/guests" "$prog" 2>&1); rc=$?
	printf '%s\n' "$out"
	local p f s
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
	# A program that died before its summary counts as one failure.
	if [ $rc -ne 0 ] && [ -z "$f" ]; then f=1; fi
	record "${p:-0}" "${f:-0}" "${s:-0}"
	[ $rc -eq 0 ] || failure "$prog (exit status $rc)"
}

for t in "$testbin"/unit/test_* "$testbin"/guests/test_*; do
	[ -x "$t" ] && [ -f "$t" ] || continue
	case "$t" in *.o|*.bin) continue ;; esac
	echo "== $t"
	run_cmocka "$t"
done

echo "== pytest tests/cli ($bindir)"
out=$(cd "$top" && VIBEVMM_BINDIR="$bindir" GUEST_DIR="$testbin/guests" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cli 2>&1); rc=$?
printf '%s\n' "$out"
sum=$(printf '%s\n' "$out" | tail -1)
p=$(printf '%s' "$sum" | grep -o '[0-9]* passed' | cut -d' ' -f1)
f=$(printf '%s' "$sum" | grep -o '[0-9]* failed' | cut -d' ' -f1)
e=$(printf '%s' "$sum" | grep -o '[0-9]* error' | cut -d' ' -f1)
s=$(printf '%s' "$sum" | grep -o '[0-9]* skipped' | cut -d' ' -f1)
f=$(( ${f:-0} + ${e:-0} ))
if [ $rc -ne 0 ] && [ $f -eq 0 ]; then f=1; fi
record "${p:-0}" "$f" "${s:-0}"
[ $rc -eq 0 ] || failure "pytest tests/cli with $bindir: $(printf '%s\n' "$out" | grep -E '^(FAILED|ERROR) ' | cut -d' ' -f2 | tr '\n' ' ')"
exit $status
