#!/usr/bin/env bash
# arm64 Linux end to end (make check stage e2e-arm64): Debian's arm64
# kernel under the arm64 vibevmm, in one session of the arm64 test host
# (directly on an arm64 host with KVM). Builds the CLI (cross with
# aarch64-linux-gnu- on x86, native on arm64), fetches the kernel, runs
# test_arm64_linux.py (pytest here; the boots themselves run inside through
# boots.sh). Appends "passed failed skipped" to $RESULTS when set; extra
# arguments go to pytest. Exit status: pytest's (0 when it skipped all).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
record() { [ -n "${RESULTS:-}" ] && echo "$1 $2 $3" >> "$RESULTS"; return 0; }
fail() { echo "e2e-arm64: $*"; record 0 1 0; exit 1; }

if [ "$(uname -m)" = aarch64 ]; then
	make -s all || fail "the build failed"
elif command -v aarch64-linux-gnu-gcc > /dev/null; then
	make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- all || fail "the arm64 cross build failed"
else
	echo "e2e-arm64: SKIPPED: no aarch64-linux-gnu-gcc (scripts/deps.sh cross-arm64)"
	record 0 0 1
	exit 0
fi
tests/fixtures/fetch-kernels.sh --arch arm64 > /dev/null || fail "cannot fetch Debian's arm64 kernel"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
/usr/bin/python3 -m pytest -p no:cacheprovider -v -rs tests/e2e-arm64 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
count() { grep -cE "^tests/e2e-arm64/[^ ]+::[^ ]+ $1" "$log"; }
p=$(count PASSED) f=$(( $(count FAILED) + $(count ERROR) )) s=$(count SKIPPED)
[ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$f" -eq 0 ] && f=1
echo "e2e-arm64: $p passed, $f failed, $s skipped in $((SECONDS - start)) s"
record "$p" "$f" "$s"
[ -z "${CHECK_FAILURES:-}" ] || [ "$f" -eq 0 ] ||
	sed -nE 's/^(tests\/e2e-arm64\/[^ ]+::[^ ]+) (FAILED|ERROR).*/e2e-arm64: \1/p' "$log" >> "$CHECK_FAILURES"
[ "$rc" -eq 5 ] && exit 0
exit "$rc"
