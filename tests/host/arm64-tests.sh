#!/bin/bash
# arm64-tests.sh: the arm64 C tests and CLI checks (make check's arm64 stage).
#
# Usage: tests/host/arm64-tests.sh [testhost.sh OPTIONS, e.g. --smp 2]
#
# 1. Cross-builds the library, CLI and tests (make ARCH=arm64
#    CROSS_COMPILE=aarch64-linux-gnu- tests: build/arm64/...).
# 2. Runs the arm64 unit tests here under qemu-aarch64 -L
#    /usr/aarch64-linux-gnu, but for those in IN_HOST_UNITS (test_virtio:
#    its I/O thread hangs under qemu-user 7.2, test_virtio_pci's and
#    test_vfio_pci's too (a masked vector's interrupt); test_core: its pause test's
#    vCPU threads and kicks hang there too; test_snapshot_dev: its quiesce
#    tests wait on the I/O thread), which go to step 3.
# 3. Boots the arm64 test host once (testhost.sh --arch arm64) with those,
#    the guest test programs (tests/guests/arm64) and their images, and the
#    cross-built vibevmm as the payload; runs each program there, then the
#    CLI: `vibevmm --binary hello.bin` (status 42 from the exit register,
#    the debug console's and the 16550's lines on stdout, the reason line),
#    at another --entry, and with bad --entry values (one-line error);
#    `--binary snapcount.bin --snapshot-on-signal DIR` saved by SIGUSR1,
#    then `--restore DIR` running until a timeout stops it.
# Everything is judged here from the output: cmocka's summary lines and
# exit statuses, the CLI's statuses, stdout and stderr. Appends "passed
# failed skipped" per test program (and one line for the CLI checks) to
# $RESULTS when set. Exit status 0 pass, 1 fail, 77 skip (no cross
# compiler or qemu-aarch64; the test host's own 77: no qemu-system-aarch64
# or arm64 kernel).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

case "${1:-}" in -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
CROSS=aarch64-linux-gnu-
IN_HOST_UNITS=(test_virtio test_virtio_pci test_vfio_pci test_core test_snapshot_dev)
record() { # passed failed skipped
    [ -z "${RESULTS:-}" ] || echo "$1 $2 $3" >> "$RESULTS"
}
for tool in "${CROSS}gcc" qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 ||
        { record 0 0 1; skip "no $tool (scripts/deps.sh cross-arm64)"; }
done

OUT=build/arm64
TESTBIN=$VIBEVMM_SRC/$OUT/build/tests
make -s -C "$VIBEVMM_SRC" ARCH=arm64 CROSS_COMPILE=$CROSS OUT=$OUT tests >&2 ||
    die "the arm64 cross build failed"

status=0

# judge NAME RC OUTPUT: cmocka's summary; a program that died before it
# counts as one failure.
judge() {
    local name=$1 rc=$2 out=$3 p f s
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<< "$out" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<< "$out" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' <<< "$out" | tail -1)
    if [ "$rc" != 0 ] && [ -z "$f" ]; then f=1; fi
    # Stopped by its time limit before its summary: name the test it was in.
    if [[ $rc =~ ^(124|137|143)$ ]] && ! grep -q '^\[==========\] .* run\.' <<< "$out"; then
        out+=$'\n'"[  ERROR   ] timed out (exit status $rc) in $(sed -n 's/^\[ RUN      \] //p' <<< "$out" | tail -1)"
    fi
    if [ -z "$p$f$s" ]; then f=1; fi # no summary at all: it never ran
    record "${p:-0}" "${f:-0}" "${s:-0}"
    if [ "${f:-0}" != 0 ] || [ "$rc" != 0 ]; then
        log "FAIL: $name (exit status $rc)"
        if [ -n "${CHECK_FAILURES:-}" ]; then
            # CI shows only the tail: the failed tests and their lines go with the name.
            { echo "arm64: $name (exit status $rc)"
              grep -E '^\[ +(ERROR|LINE) +\]|^\[  FAILED  \] test_' <<< "$out" | awk '!seen[$0]++' | head -12 |
                  sed 's/^/    /' || true; } >> "$CHECK_FAILURES"
        fi
        status=1
    fi
}

in_host() {
    local u
    for u in "${IN_HOST_UNITS[@]}"; do [ "$1" = "$u" ] && return 0; done
    return 1
}

# ---- 2. unit tests under qemu-user ----
for t in "$TESTBIN"/unit/test_*; do
    name=$(basename "$t")
    in_host "$name" && continue
    echo "== $OUT/build/tests/unit/$name (qemu-aarch64)"
    rc=0
    out=$(timeout -k 10 600 qemu-aarch64 -L /usr/aarch64-linux-gnu "$t" 2>&1) || rc=$?
    printf '%s\n' "$out"
    judge "$name" "$rc" "$out"
done

# ---- 3. the test host ----
PAYLOAD=$(mktemp -d "${TMPDIR:-/tmp}/vibevmm-arm64-tests.XXXXXX")
trap 'rm -rf "$PAYLOAD"' EXIT
mkdir -p "$PAYLOAD/guests" "$PAYLOAD/unit" "$PAYLOAD/res"
cp "$TESTBIN"/guests/test_* "$TESTBIN"/guests/*.bin "$PAYLOAD/guests/"
rm -f "$PAYLOAD"/guests/*.o
for u in "${IN_HOST_UNITS[@]}"; do cp "$TESTBIN/unit/$u" "$PAYLOAD/unit/"; done
cp "$VIBEVMM_SRC/$OUT/bin/vibevmm" "$PAYLOAD/"
# Each program's own limit in the test host (they take seconds there).
PROGRAM_SECONDS=${ARM64_PROGRAM_SECONDS:-150}

# Inside: each program's output and status into res/, then the CLI runs.
cat > "$PAYLOAD/run.sh" <<'EOF'
export GUEST_DIR=/payload/guests
for t in unit/test_* guests/test_*; do
    n=$(echo "$t" | tr / -)
    echo "== $t (arm64 test host)"
    # Bounded: a program that hangs in the emulated host must not take the
    # others' time (timeout's status: 124, or 143 for the SIGTERM). One
    # that timed out runs once more, its first output kept (see
    # tests/README.md: the host's own fault can leave a fresh guest
    # spinning in its exception vector).
    timeout PROGRAM_SECONDS ./"$t" > "res/$n.out" 2>&1
    rc=$?
    if [ $rc = 124 ] || [ $rc = 143 ]; then
        cat "res/$n.out"
        mv "res/$n.out" "res/$n.timedout"
        echo "== $t timed out (status $rc): its second run"
        timeout PROGRAM_SECONDS ./"$t" > "res/$n.out" 2>&1
        rc=$?
    fi
    echo $rc > "res/$n.rc"
    cat "res/$n.out"
done
cli() { # NAME ARGS...: vibevmm's stdout, stderr and status into res/cli-NAME.*
    n=$1; shift
    timeout 60 ./vibevmm "$@" > "res/cli-$n.out" 2> "res/cli-$n.err"
    echo $? > "res/cli-$n.rc"
}
cli hello --binary guests/hello.bin --log 3
cli entry --binary guests/hello.bin --entry 0x3000000 --mem 64M
cli unaligned --binary guests/hello.bin --entry 0x10002
cli outside --binary guests/hello.bin --entry 0x8000000 --mem 64M
# A snapshot through the CLI, in its sandbox: snapcount.bin counts (in x19
# and at RAM 0x200000; its stores to the test device's address are
# unclaimed here, logged once), SIGUSR1 saves it, then --restore runs it on
# until timeout stops it.
mkdir -p snap
./vibevmm --binary guests/snapcount.bin --log 3 --snapshot-on-signal snap \
    > res/cli-snapsave.out 2> res/cli-snapsave.err &
p=$!
sleep 2; kill -USR1 $p; sleep 3; kill $p; wait $p
echo $? > res/cli-snapsave.rc
timeout 5 ./vibevmm --restore snap --log 3 > res/cli-snaprestore.out 2> res/cli-snaprestore.err
echo $? > res/cli-snaprestore.rc
echo "== CLI done"
EOF
sed -i "s/PROGRAM_SECONDS/$PROGRAM_SECONDS/" "$PAYLOAD/run.sh"

rc=0
"$VIBEVMM_SRC/tests/host/testhost.sh" --arch arm64 --timeout $((8 * PROGRAM_SECONDS + 300)) --idle-timeout $((PROGRAM_SECONDS + 60)) "$@" \
    --payload "$PAYLOAD" -- sh run.sh || rc=$?
if [ "$rc" = 77 ]; then
    log "skip: the arm64 test host cannot start (see above)"
    record 0 0 1
    exit $(( status ? 1 : 77 ))
fi
[ "$rc" = 0 ] || { log "FAIL: the test host ended with status $rc"; status=1; }

for t in "$PAYLOAD"/unit/test_* "$PAYLOAD"/guests/test_*; do
    n=$(basename "$(dirname "$t")")-$(basename "$t")
    if [ -f "$PAYLOAD/res/$n.timedout" ]; then
        log "warning: $n timed out once in the test host, in $(sed -n 's/^\[ RUN      \] //p' "$PAYLOAD/res/$n.timedout" | tail -1); the verdict is its second run's"
    fi
    if [ -f "$PAYLOAD/res/$n.rc" ]; then
        judge "$n" "$(cat "$PAYLOAD/res/$n.rc")" "$(cat "$PAYLOAD/res/$n.out")"
    else
        judge "$n" 125 ""
    fi
done

# ---- the CLI, judged here ----
cli_fail=()
cli_file() { cat "$PAYLOAD/res/cli-$1.$2" 2>/dev/null || true; }
expect_run() { # NAME STATUS STDOUT STDERR-NEEDLE
    local rc
    rc=$(cli_file "$1" rc)
    [ "$rc" = "$2" ] || cli_fail+=("$1: exit status '$rc', want $2")
    [ "$(cli_file "$1" out)" = "$3" ] || cli_fail+=("$1: stdout '$(cli_file "$1" out)'")
    [ -z "$4" ] || grep -qF -- "$4" "$PAYLOAD/res/cli-$1.err" 2>/dev/null ||
        cli_fail+=("$1: stderr lacks '$4'")
}
expect_error() { # NAME STDERR-NEEDLE: a non-zero status and one line
    local rc err
    rc=$(cli_file "$1" rc) err=$(cli_file "$1" err)
    [ -n "$rc" ] && [ "$rc" != 0 ] || cli_fail+=("$1: exit status '$rc', want non-zero")
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || cli_fail+=("$1: not one line: '$err'")
    [[ $err == "vibevmm: "*"$2"* ]] || cli_fail+=("$1: error '$err' lacks '$2'")
}
hello=$'hello from debugcon\nhello from serial'
expect_run hello 42 "$hello" "guest exited with status 42"
expect_run entry 42 "$hello" ""
expect_error unaligned "--entry 0x10002: not 4-byte aligned"
expect_error outside "--entry 0x8000000: outside guest RAM"
grep -qF "snapshot saved to snap" "$PAYLOAD/res/cli-snapsave.err" 2>/dev/null ||
    cli_fail+=("snapsave: no 'snapshot saved to snap': $(cli_file snapsave err | tail -3)")
# Ran until the timeout (124; 143 where timeout passes on the SIGTERM
# vibevmm ends on), the restored guest storing its count on.
case "$(cli_file snaprestore rc)" in 124|143) ;; *)
    cli_fail+=("snaprestore: exit status '$(cli_file snaprestore rc)', want 124 or 143 (ran until the timeout): $(cli_file snaprestore err | tail -3)") ;;
esac
grep -qF "unclaimed MMIO write at 0xc0000008" "$PAYLOAD/res/cli-snaprestore.err" 2>/dev/null ||
    cli_fail+=("snaprestore: the restored guest did not store on: $(cli_file snaprestore err | tail -3)")
echo "== CLI (judged here): ${#cli_fail[@]} failure(s)"
if [ ${#cli_fail[@]} -gt 0 ]; then
    for f in "${cli_fail[@]}"; do
        log "FAIL: CLI: $f"
        [ -z "${CHECK_FAILURES:-}" ] || echo "arm64: CLI: $f" >> "$CHECK_FAILURES"
    done
    record 0 1 0
    status=1
else
    record 1 0 0
fi
exit $status
