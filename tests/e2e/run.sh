#!/usr/bin/env bash
# Linux end-to-end tests (pytest, tests/e2e): directly on a host with hardware
# KVM, else inside the emulated AMD-V test host (tests/host/testhost.sh).
# Appends "passed failed skipped" to $RESULTS when set. Extra args go to pytest.
#
# The TCG-emulated test host has two bugs of its own (tests/README.md): with
# two CPUs, Debian kernels booting inside crash it every few boots; with one,
# a guest with 2+ vCPUs can freeze it. So the tests run in separate sessions:
# those marked two_cpu_host (guests with several vCPUs) on two CPUs, with
# shadow paging in its KVM (--no-npt) unless also marked overcommit, all
# others on one. A test host that still dies (a panic; a lock-up,
# which it turns into a panic; a silent freeze, ended after 480 s without a
# line from pytest, longer than any test's own time limit of 400 s, so a
# test that hangs fails by its own limit first) costs a fresh session for the
# tests that had not finished, at most E2E_ATTEMPTS sessions per group
# (default 4: one make check here saw the two-CPU group's host die three
# times, each time after other tests had passed), and that is said, naming the test that was running. Tests
# that failed in a session whose test host then died run again in the fresh
# one (the dying host may have caused the failure), and that is said too; a test's last outcome counts. A failure in a session that ended
# normally is never re-run. Failed tests, and tests that never finished
# because the test host died while they ran, are named in $CHECK_FAILURES
# when set (make check prints them last).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
record() { [ -n "${RESULTS:-}" ] && echo "$1 $2 $3" >> "$RESULTS"; return 0; }

if ! tests/e2e/prepare-assets.sh; then
	echo "e2e: cannot prepare the guest kernels/initramfs (see above)"
	record 0 1 0
	exit 1
fi

all=$(mktemp)
log=$(mktemp)
died_in=$(mktemp)
trap 'rm -f "$all" "$log" "$died_in"' EXIT
attempts=${E2E_ATTEMPTS:-4}
sessions=0

# outcomes REGEX FILE: the node ids of the tests pytest -v reported with an
# outcome matching REGEX ("path::name[params] PASSED  [ 40%]", or
# "SKIPPED (reason) [ 6%]"; params may hold spaces)
outcomes() {
	sed -nE "s/^(tests\/e2e\/[^ ]+::.*) ($1)( \([^)]*\))?( +\[ *[0-9]+%\])?\r?\$/\1/p" "$2"
}

# unfinished FILE: the tests pytest -v started in FILE ("path::name[params] "
# is printed when a test starts) but gave no outcome: the test host died
# while they ran
started() { sed -nE 's/^(tests\/e2e\/[^ ]+::[^ []+(\[[^]]*\])?).*/\1/p' "$1" | sort -u; }
unfinished() { comm -23 <(started "$1") <(outcomes '[A-Z]+' "$1" | sort -u); }

# run_group SMP MARKEXPR [PYTEST ARGS]: one group's sessions; returns the
# status of its last session. HOST_OPTS: more test-host options; PYTEST_ENV:
# NAME=VALUE for pytest.
HOST_OPTS=() PYTEST_ENV=()
run_group() {
	local smp=$1 mark=$2 rc=0 attempt id
	local deselect=()
	shift 2
	for ((attempt = 1; attempt <= attempts; attempt++)); do
		sessions=$((sessions + 1))
		# Inside the test host the repository is /payload; pytest runs there.
		tests/host/run-direct-or-host.sh --smp "$smp" --timeout "${E2E_TIMEOUT:-2400}" \
			--idle-timeout 480 "${HOST_OPTS[@]}" --payload "$top" -- \
			env "${PYTEST_ENV[@]}" /usr/bin/python3 -m pytest -p no:cacheprovider -v -rs -m "$mark" \
			tests/e2e "${deselect[@]}" "$@" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		cat "$log" >> "$all"
		# 5: pytest collected nothing (all deselected by the caller's -k)
		[ "$rc" -ne 5 ] || return 0
		[ "$rc" -eq 124 ] || [ "$rc" -eq 125 ] || return "$rc"
		# The test host died: keep what passed or skipped, run the rest again.
		while read -r id; do
			deselect+=(--deselect "$id")
		done < <(outcomes 'PASSED|SKIPPED' "$log")
		while read -r id; do
			echo "e2e: $id failed in the session whose test host died; it runs again in a fresh one"
		done < <(outcomes 'FAILED|ERROR' "$log")
		while read -r id; do
			echo "e2e: $id was running when the test host died"
			echo "$id" >> "$died_in"
		done < <(unfinished "$log")
		[ "$attempt" -lt "$attempts" ] &&
			echo "e2e: the test host died (status $rc, log above); session $((attempt + 1)) of $attempts runs the tests that had not finished"
	done
	return "$rc"
}

# final: "OUTCOME id" per test, its last outcome over all sessions
final() {
	sed -nE 's/^(tests\/e2e\/[^ ]+::.*) (PASSED|FAILED|SKIPPED|ERROR)( \([^)]*\))?( +\[ *[0-9]+%\])?\r?$/\2 \1/p' "$all" |
		awk '{o = $1; $1 = ""; if (!(substr($0, 2) in last)) order[n++] = substr($0, 2); last[substr($0, 2)] = o}
			END {for (i = 0; i < n; i++) print last[order[i]], order[i]}'
}
# count REGEX: how many tests' last outcome matches REGEX
count() { final | grep -cE "^($1) "; }

run_group 1 "not two_cpu_host and not vfio" "$@"
rc1=$?
if [ "$rc1" -eq 77 ]; then
	echo "e2e: SKIPPED: no test host available here (no qemu or kernels)"
	record 0 0 1
	exit 0
fi
# --no-npt: on two CPUs the emulated nested paging corrupts memory now and
# then (tests/README.md); shadow paging in the test host's KVM does not. But
# a guest with more vCPUs than the test host has CPUs froze it with shadow
# paging: those (marked overcommit) keep nested paging, in a session of
# their own.
HOST_OPTS=(--no-npt)
run_group 2 "two_cpu_host and not overcommit and not vfio" "$@"
rc2=$?
HOST_OPTS=()
run_group 2 "two_cpu_host and overcommit and not vfio" "$@"
rc4=$?
# VFIO: the test host with an emulated IOMMU and an NVMe controller at
# 01:00.0 whose namespace is a file here (testhost.sh --iommu-nvme). Only
# in the test host: on a machine with its own KVM, 01:00.0 is somebody's
# real device (there, run pytest -m vfio with VIBEVMM_VFIO_NVME set). The
# AHCI (MSI) test is not run here: it passed in 3 sessions of its own but
# hung the test host in 2 of 2 sessions of a clean-clone make check, not
# yet understood (tests/README.md says how to run it).
rc3=0
if [ "$(tests/host/run-direct-or-host.sh --where 2>/dev/null)" = testhost ]; then
	nvme_img=$(mktemp "${TMPDIR:-/tmp}/vibevmm-nvme.XXXXXX")
	truncate -s 64M "$nvme_img"
	HOST_OPTS=(--iommu-nvme "$nvme_img") PYTEST_ENV=(VIBEVMM_VFIO_NVME=0000:01:00.0)
	run_group 1 "vfio" "$@"
	rc3=$?
	rm -f "$nvme_img"
fi
p=$(count PASSED)
named=$(count 'FAILED|ERROR')
f=$named
s=$(count SKIPPED)
rc=$rc1
[ "$rc" -ne 0 ] || rc=$rc2
[ "$rc" -ne 0 ] || rc=$rc3
[ "$rc" -ne 0 ] || rc=$rc4
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
# A failure from a session that died, not run again, still fails the stage.
[ "$f" -ne 0 ] && [ "$rc" -eq 0 ] && rc=1
if [ -n "${CHECK_FAILURES:-}" ]; then
	final | sed -nE 's/^(FAILED|ERROR) /e2e: /p' >> "$CHECK_FAILURES"
	# tests that were running when a test host died and never ended later
	never=$(comm -23 <(sort -u "$died_in") <(final | cut -d' ' -f2- | sort -u))
	[ -z "$never" ] || echo "$never" | sed 's/^/e2e: never finished (the test host died while it ran): /' >> "$CHECK_FAILURES"
	[ "$rc" -ne 0 ] && [ "$named" -eq 0 ] &&
		echo "e2e: the test host (status $rc, see the log)" >> "$CHECK_FAILURES"
	# every death, so CI's tail shows whether one test keeps killing it
	[ "$rc" -eq 0 ] || [ ! -s "$died_in" ] ||
		echo "e2e: the test host died $(wc -l < "$died_in") time(s), while running: $(paste -sd' ' "$died_in")" >> "$CHECK_FAILURES"
fi
echo "e2e: $p passed, $f failed, $s skipped in $sessions test-host sessions"
record "$p" "$f" "$s"
exit "$rc"
