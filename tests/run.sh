#!/usr/bin/env bash
# `make check`: every test this machine can run, then one summary line.
#   0. fixtures: Debian's kernels (x86_64 and arm64) into the cache (the
#      unit tests parse them too); a fetch failure is a failed stage, not a skipped test later
#   1. gcc build: unit tests, asm-guest tests (local /dev/kvm), CLI tests
#   2. clang + ASan/UBSan build: the same tests again
#   3. fuzz smoke: each libFuzzer target for a bounded time (clang)
#   4. Linux end to end: real Debian kernels on the test host (tests/e2e)
#   5. the arm64 test host: boots, KVM there runs a cross-built probe
#      (tests/host/testhost-arm64-smoke.sh); then the cross-built arm64
#      unit tests (qemu-aarch64), guest tests and CLI checks (in the test
#      host; tests/host/arm64-tests.sh)
#   6. arm64 Linux end to end: Debian's arm64 kernel under the cross-built
#      CLI in the arm64 test host (tests/e2e-arm64)
#   7. a smoke run of the benchmarks (bench/run.sh --smoke)
# Set CHECK_SKIP="san fuzz e2e arm64 e2e-arm64 bench" (any subset) to leave
# stages out.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
RESULTS=$(mktemp)
CHECK_FAILURES=$(mktemp) # the stages name what failed here; printed last
export RESULTS CHECK_FAILURES
failed_stages=()

stage() { echo; echo "######## $*"; }
skipping() { case " ${CHECK_SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }

# (the arm64 kernel too: unit/test_arm64_image parses it, and the arm64
# test host boots it)
stage "fixtures: Debian's kernels and busybox, x86_64 and arm64 (tests/fixtures/fetch-kernels.sh)"
if tests/fixtures/fetch-kernels.sh >/dev/null && tests/fixtures/fetch-kernels.sh --arch arm64 >/dev/null; then
	echo "1 0 0" >> "$RESULTS"
else
	echo "fixtures: fetch-kernels.sh failed (see above): the unit tests cannot check real kernels"
	echo "0 1 0" >> "$RESULTS"; failed_stages+=(fixtures)
fi

stage "gcc build + tests"
if make -s CC=gcc tests; then
	tests/run-c-tests.sh build/tests bin || failed_stages+=(gcc)
	stage "make install + a program built with pkg-config"
	if tests/install/run.sh; then echo "1 0 0" >> "$RESULTS"; else echo "0 1 0" >> "$RESULTS"; failed_stages+=(install); fi
else
	echo "0 1 0" >> "$RESULTS"; failed_stages+=(gcc-build)
fi

if ! skipping san; then
	stage "clang ASan+UBSan build + tests"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	if make -s SAN=1 CC=clang tests; then
		tests/run-c-tests.sh build/san/build/tests build/san/bin || failed_stages+=(san)
	else
		echo "0 1 0" >> "$RESULTS"; failed_stages+=(san-build)
	fi
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if ! skipping fuzz && [ -x tests/fuzz/run.sh ]; then
	stage "fuzz smoke"
	tests/fuzz/run.sh "${FUZZ_SECONDS:-20}" || failed_stages+=(fuzz)
fi

if ! skipping e2e && [ -x tests/e2e/run.sh ]; then
	stage "Linux end-to-end"
	tests/e2e/run.sh || failed_stages+=(e2e)
fi

if ! skipping arm64; then
	stage "arm64 test host smoke (tests/host/testhost-arm64-smoke.sh)"
	rc=0
	tests/host/testhost-arm64-smoke.sh || rc=$?
	case "$rc" in
		0) echo "1 0 0" >> "$RESULTS" ;;
		77) echo "0 0 1" >> "$RESULTS" ;;
		*) echo "0 1 0" >> "$RESULTS"; failed_stages+=(arm64-testhost) ;;
	esac
	stage "arm64 unit, guest and CLI tests (tests/host/arm64-tests.sh)"
	rc=0
	tests/host/arm64-tests.sh || rc=$?
	case "$rc" in
		0|77) ;; # counted by the script itself
		*) failed_stages+=(arm64-tests) ;;
	esac
fi

if ! skipping e2e-arm64; then
	stage "arm64 Linux end to end (tests/e2e-arm64)"
	tests/e2e-arm64/run.sh || failed_stages+=(e2e-arm64)
fi

if ! skipping bench && [ -x bench/run.sh ]; then
	# Not fatal: the TCG test host occasionally wedges or panics on its own
	# (nested SVM under TCG), which says nothing about the scripts; a
	# failure is reported loudly and counted as skipped. The smoke takes
	# ~1 min; its session is bounded at 5 min and retried once.
	stage "bench smoke (one run of each benchmark; no timing is checked)"
	if timeout 720 bench/run.sh --smoke; then echo "1 0 0" >> "$RESULTS"
	else echo "bench smoke: FAILED or timed out (not fatal, see above)"; echo "0 0 1" >> "$RESULTS"; fi
fi

read -r passed failed skipped < <(awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}' "$RESULTS")
rm -f "$RESULTS"
echo
if [ -s "$CHECK_FAILURES" ]; then echo "failed:"; sed 's/^/  /' "$CHECK_FAILURES"; fi
rm -f "$CHECK_FAILURES"
[ ${#failed_stages[@]} -eq 0 ] || echo "failed stages: ${failed_stages[*]}"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ ${#failed_stages[@]} -eq 0 ] && [ "$failed" -eq 0 ]
