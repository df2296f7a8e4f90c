#!/bin/bash
# testhost-arm64-smoke.sh: smoke test of the arm64 test host (make check).
#
# Usage: tests/host/testhost-arm64-smoke.sh [testhost.sh OPTIONS, e.g. --smp 2]
#
# Cross-builds tests/host/arm64-kvm-probe.c twice (aarch64-linux-gnu-gcc
# -lz: static, and dynamic against the cross libraries the test host
# mounts), boots the arm64 test host (testhost.sh --arch arm64) and runs
# inside: testhost-check (/dev/kvm, KVM at EL2 with a vGICv3), both probes
# with a random token (each runs a tiny KVM guest: MMIO exits, then PSCI
# SYSTEM_OFF) and dmesg's "Run /init" line. Judged here, from the output:
# "KVM ready", for each probe the token's CRC-32 (recomputed here with
# gzip), arch=aarch64, every MMIO exit with the CRC as its value and the
# SYSTEM_OFF shutdown event. Prints one line with the result and the
# timings (test host uptime at /init and when ready, wall time, MMIO exit
# cost). Exit status 0 pass, 1 fail, 77 skip (no aarch64-linux-gnu-gcc, no
# qemu-system-aarch64, no arm64 kernel).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

case "${1:-}" in -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
EXITS=1000
command -v "$CC" >/dev/null 2>&1 || skip "no $CC (scripts/deps.sh cross-arm64)"
need gzip od

PAYLOAD=$(mktemp -d "${TMPDIR:-/tmp}/vibevmm-arm64-smoke.XXXXXX")
trap 'rm -rf "$PAYLOAD"' EXIT
SRC=$VIBEVMM_SRC/tests/host/arm64-kvm-probe.c
CFLAGS=(-std=gnu11 -O2 -Wall -Wextra -Werror)
"$CC" "${CFLAGS[@]}" -static -o "$PAYLOAD/probe-static" "$SRC" -lz ||
    die "cannot build the static probe"
"$CC" "${CFLAGS[@]}" -o "$PAYLOAD/probe-dynamic" "$SRC" -lz ||
    die "cannot build the dynamic probe"
[ "$(elf_machine "$PAYLOAD/probe-static")" = aarch64 ] || die "$CC did not build an arm64 program"

TOKEN=smoke-$$-$RANDOM$RANDOM
CRC=$(printf '%s' "$TOKEN" | gzip -c | tail -c 8 | od -An -tx4 -N4 | tr -d ' ')
cat > "$PAYLOAD/smoke.sh" <<EOF
testhost-check
echo "CHECK rc=\$?"
for p in static dynamic; do
    ./probe-\$p '$TOKEN' $EXITS > /tmp/probe.out
    rc=\$?
    sed "s/^/\$p /" /tmp/probe.out
    echo "\$p rc=\$rc"
done
dmesg | grep -m1 'Run /init as init process'
# dmesg stamps count from the emulated machine's start, /proc/uptime from
# the kernel's clock set-up: a marker with both relates them
echo smoke-clock-marker > /dev/kmsg
echo "UPTIME \$(cut -d' ' -f1 /proc/uptime)"
dmesg | grep -m1 smoke-clock-marker
EOF

start=$(date +%s.%N)
rc=0
"$VIBEVMM_SRC/tests/host/testhost.sh" --arch arm64 --timeout 300 "$@" \
    --payload "$PAYLOAD" -- sh smoke.sh > "$PAYLOAD/out" 2> "$PAYLOAD/err" || rc=$?
wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" != 77 ] || { cat "$PAYLOAD/err" >&2; exit 77; }
sed 's/^/  | /' "$PAYLOAD/out"

failures=()
expect() { grep -qE -- "$1" "$PAYLOAD/out" || failures+=("$2"); }
expect '^testhost: KVM ready \(arm64, EL2, vGICv3\)$' "no 'KVM ready' from testhost-check"
for p in static dynamic; do
    expect "^$p PROBE token=$TOKEN crc32=$CRC arch=aarch64\$" "$p probe: no PROBE line with the token's CRC-32 $CRC"
    expect "^$p KVM api=12 ipa_max=[0-9]+ mmio_exits=$EXITS mmio_value=$CRC system_event=shutdown ns_per_exit=[0-9]+\$" \
        "$p probe: its guest's $EXITS MMIO exits with $CRC and PSCI SYSTEM_OFF were not all seen"
    expect "^$p rc=0\$" "$p probe: non-zero exit status"
done
if [ "$rc" != 0 ] || [ ${#failures[@]} -gt 0 ]; then
    sed 's/^/  ! /' "$PAYLOAD/err" >&2
    [ "$rc" = 0 ] || failures+=("testhost.sh exit status $rc")
    for f in "${failures[@]}"; do printf '%s: FAIL: %s\n' "$PROG" "$f" >&2; done
    exit 1
fi
# /init in dmesg time and in uptime (dmesg time - (marker's - uptime then))
init=$(sed -n 's/^\[ *\([0-9.]*\)\] Run \/init.*/\1/p' "$PAYLOAD/out")
marker=$(sed -n 's/^\[ *\([0-9.]*\)\] smoke-clock-marker.*/\1/p' "$PAYLOAD/out")
uptime=$(sed -n 's/^UPTIME \([0-9.]*\)$/\1/p' "$PAYLOAD/out")
init_up=$(awk -v i="$init" -v m="$marker" -v u="$uptime" 'BEGIN { printf "%.2f", i - (m - u) }')
ready=$(sed -n 's/.*test host ready at \([0-9.]*\)s.*/\1/p' "$PAYLOAD/err")
ns=$(sed -n 's/^static KVM .*ns_per_exit=\([0-9]*\)$/\1/p' "$PAYLOAD/out")
echo "$PROG: PASS: test host at /init ${init:-?} s after the emulated machine started" \
     "(${init_up} s of its uptime), ready (modules, 9p) at ${ready:-?} s of its uptime;" \
     "${wall} s wall; MMIO exit ${ns} ns (static probe)"
