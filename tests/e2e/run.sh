#!/usr/bin/env bash
# Linux end-to-end tests (pytest, tests/e2e): directly on a host with hardware
# KVM, else inside the emulated AMD-V test host (tests/host/testhost.sh).
# Appends "passed failed skipped" to $RESULTS when set. Extra args go to pytest.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
record() { [ -n "${RESULTS:-}" ] && echo "$1 $2 $3" >> "$RESULTS"; return 0; }

if ! tests/e2e/prepare-assets.sh; then
	echo "e2e: cannot prepare the guest kernels/initramfs (see above)"
	record 0 1 0
	exit 1
fi
log=$(mktemp)
# Inside the test host the repository is /payload; pytest runs from there.
tests/host/run-direct-or-host.sh --timeout "${E2E_TIMEOUT:-2400}" --payload "$top" -- \
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -rs tests/e2e "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
sum=$(grep -E '^=+ .*(passed|failed|skipped|error).* in [0-9.]+s' "$log" | tail -1)
rm -f "$log"
p=$(printf '%s' "$sum" | grep -o '[0-9]* passed' | cut -d' ' -f1)
f=$(printf '%s' "$sum" | grep -o '[0-9]* failed' | cut -d' ' -f1)
e=$(printf '%s' "$sum" | grep -o '[0-9]* error' | cut -d' ' -f1)
s=$(printf '%s' "$sum" | grep -o '[0-9]* skipped' | cut -d' ' -f1)
if [ "$rc" -eq 77 ]; then
	echo "e2e: SKIPPED: no test host available here (no qemu or kernels)"
	record 0 0 1
	exit 0
fi
f=$(( ${f:-0} + ${e:-0} ))
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
record "${p:-0}" "$f" "${s:-0}"
exit "$rc"
