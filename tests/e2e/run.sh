#!/usr/bin/env bash
# Linux end-to-end tests (pytest, tests/e2e): directly on a host with hardware
# KVM, else inside the emulated AMD-V test host (tests/host/testhost.sh).
# Appends "passed failed skipped" to $RESULTS when set. Extra args go to pytest.
#
# The TCG-emulated test host has two bugs of its own (tests/README.md): with
# two CPUs, Debian kernels booting inside crash it every few boots; with one,
# a guest with 2+ vCPUs can freeze it. So the tests run in two sessions:
# those marked two_cpu_host (guests with several vCPUs) on two CPUs, all
# others on one. A test host that still dies (a panic; a lock-up,
# which it turns into a panic; a silent freeze, ended after 300 s without a
# line from pytest) costs a fresh session for the tests that had not
# finished, at most E2E_ATTEMPTS sessions per group (default 3), and that is
# said. A failed test is never re-run.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
record() { [ -n "${RESULTS:-}" ] && echo "$1 $2 $3" >> "$RESULTS"; return 0; }

if ! tests/e2e/prepare-assets.sh; then
	echo "e2e: cannot prepare the guest kernels/initramfs (see above)"
	record 0 1 0
	exit 1
fi

all=$(mktemp)
log=$(mktemp)
trap 'rm -f "$all" "$log"' EXIT
attempts=${E2E_ATTEMPTS:-3}
sessions=0

# outcomes REGEX FILE: the node ids of the tests pytest -v reported with an
# outcome matching REGEX ("path::name[params] PASSED  [ 40%]"; params may
# hold spaces)
outcomes() {
	sed -nE "s/^(tests\/e2e\/[^ ]+::.*) ($1)( +\[ *[0-9]+%\])?\r?\$/\1/p" "$2"
}

# run_group SMP MARKEXPR [PYTEST ARGS]: one group's sessions; returns the
# status of its last session
run_group() {
	local smp=$1 mark=$2 rc=0 attempt id
	local deselect=()
	shift 2
	for ((attempt = 1; attempt <= attempts; attempt++)); do
		sessions=$((sessions + 1))
		# Inside the test host the repository is /payload; pytest runs there.
		tests/host/run-direct-or-host.sh --smp "$smp" --timeout "${E2E_TIMEOUT:-2400}" \
			--idle-timeout 300 --payload "$top" -- \
			/usr/bin/python3 -m pytest -p no:cacheprovider -v -rs -m "$mark" \
			tests/e2e "${deselect[@]}" "$@" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		cat "$log" >> "$all"
		# 5: pytest collected nothing (all deselected by the caller's -k)
		[ "$rc" -ne 5 ] || return 0
		[ "$rc" -eq 124 ] || [ "$rc" -eq 125 ] || return "$rc"
		# The test host died: keep what finished, run the rest again.
		while read -r id; do
			deselect+=(--deselect "$id")
		done < <(outcomes 'PASSED|FAILED|SKIPPED|ERROR' "$log")
		[ "$attempt" -lt "$attempts" ] &&
			echo "e2e: the test host died (status $rc, log above); session $((attempt + 1)) of $attempts runs the tests that had not finished"
	done
	return "$rc"
}

# count OUTCOME: how many "path::test OUTCOME" lines pytest -v printed
count() { outcomes "$1" "$all" | wc -l; }

run_group 1 "not two_cpu_host" "$@"
rc1=$?
if [ "$rc1" -eq 77 ]; then
	echo "e2e: SKIPPED: no test host available here (no qemu or kernels)"
	record 0 0 1
	exit 0
fi
run_group 2 "two_cpu_host" "$@"
rc2=$?
p=$(count PASSED)
f=$(( $(count FAILED) + $(count ERROR) ))
s=$(count SKIPPED)
rc=$rc1
[ "$rc" -ne 0 ] || rc=$rc2
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "e2e: $p passed, $f failed, $s skipped in $sessions test-host sessions"
record "$p" "$f" "$s"
exit "$rc"
