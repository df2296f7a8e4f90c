#!/usr/bin/env bash
# Linux end-to-end tests (pytest, tests/e2e): directly on a host with hardware
# KVM, else inside the emulated AMD-V test host (tests/host/testhost.sh).
# Appends "passed failed skipped" to $RESULTS when set. Extra args go to pytest.
#
# The TCG-emulated test host itself occasionally dies (its own kernel panics
# or locks up inside nested SVM: a few percent of long sessions). A lock-up
# panics it (softlockup_panic); a silent freeze ends after 300 s without a
# line from pytest. When it dies (testhost.sh status 124/125), the tests that
# had not finished run again in a fresh test host, at most E2E_ATTEMPTS times
# in all (default 3), and that is said. A failed test is never re-run.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
record() { [ -n "${RESULTS:-}" ] && echo "$1 $2 $3" >> "$RESULTS"; return 0; }

if ! tests/e2e/prepare-assets.sh; then
	echo "e2e: cannot prepare the guest kernels/initramfs (see above)"
	record 0 1 0
	exit 1
fi

# count OUTCOME FILE: how many "path::test OUTCOME" lines pytest -v printed
count() { grep -cE "^tests/e2e/[^ ]+::[^ ]+ $1" "$2"; }

all=$(mktemp)
log=$(mktemp)
trap 'rm -f "$all" "$log"' EXIT
deselect=()
attempts=${E2E_ATTEMPTS:-3}
rc=0
for ((attempt = 1; attempt <= attempts; attempt++)); do
	# Inside the test host the repository is /payload; pytest runs from there.
	tests/host/run-direct-or-host.sh --timeout "${E2E_TIMEOUT:-2400}" --idle-timeout 300 --payload "$top" -- \
		/usr/bin/python3 -m pytest -p no:cacheprovider -v -rs tests/e2e "${deselect[@]}" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	cat "$log" >> "$all"
	[ "$rc" -eq 124 ] || [ "$rc" -eq 125 ] || break
	# The test host died: keep what finished, run the rest again.
	mapfile -t done_ids < <(grep -oE "^tests/e2e/[^ ]+::[^ ]+ (PASSED|FAILED|SKIPPED|ERROR)" "$log" | cut -d' ' -f1)
	for id in "${done_ids[@]}"; do deselect+=(--deselect "$id"); done
	[ "$attempt" -lt "$attempts" ] &&
		echo "e2e: the test host died (status $rc, log above); attempt $((attempt + 1)) of $attempts runs the tests that had not finished"
done

if [ "$rc" -eq 77 ]; then
	echo "e2e: SKIPPED: no test host available here (no qemu or kernels)"
	record 0 0 1
	exit 0
fi
p=$(count PASSED "$all")
f=$(( $(count FAILED "$all") + $(count ERROR "$all") ))
s=$(count SKIPPED "$all")
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
[ "$attempt" -gt 1 ] && echo "e2e: $p passed, $f failed, $s skipped over $((attempt > attempts ? attempts : attempt)) test-host sessions"
record "$p" "$f" "$s"
exit "$rc"
