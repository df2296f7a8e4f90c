#!/bin/sh
# arm64-inside.sh: the arm64 benchmarks, run INSIDE the arm64 test host
# (busybox sh, no Python) by bench/run.sh --only arm64 with a payload it
# staged (bench/bench.py arm64-stage lays it out):
#   bin/vibevmm bin/exitbench-arm64 bin/bootclock   (cross-built)
#   qemu/bin/qemu-system-aarch64 qemu/lib/          (fetch-qemu-arm64.sh)
#   Image initrd.cpio.gz                            (the guest)
#
# Usage: sh arm64-inside.sh --reps N --cpus LIST --exits N [--timeout S]
#   --cpus LIST  vCPU counts to boot with, comma-separated ("" = no boots)
#   --exits N    MMIO exits per exitbench run (0 = no exit benchmark)
#
# Everything is copied to tmpfs first (the payload and the arm64 libraries
# are 9p mounts; a program loading its libraries over 9p at each start would
# measure 9p). Each boot: bootclock runs the VMM, vibevmm and QEMU taking
# turns (order swapped every run), 256 MiB, the same kernel, initramfs and
# command line but for the console (vibevmm's 16550 is ttyS0, QEMU virt's
# PL011 ttyAMA0). Output, one line each, for bench.py arm64-parse:
#   A64 version vibevmm=... qemu=...
#   A64 host kernel=... nproc=N mem_mb=M load_start=A,B,C  (load_end at the end)
#   A64 boot vmm=V cpus=N run=I BOOT rc=... wall_ms=... (bootclock's line)
#   A64 exits run=I exitbench mode=M kind=mmio ... ns_per_exit=X
#   A64 fail WHAT: REASON           (and the console's tail on stderr)
# Exit status 0, 1 when something failed.
REPS=3 CPUS=1 EXITS=10000 TIMEOUT=300
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --exits) EXITS=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        *) echo "arm64-inside: unknown argument $1" >&2; exit 2 ;;
    esac
done
P=$(pwd)
T=/tmp/a64bench
LDSO=/lib/ld-linux-aarch64.so.1
CMDLINE_TAIL="panic=-1 vibevmm.verbose=0 quiet"
rc=0
fail() { echo "A64 fail $*"; rc=1; }

mkdir -p "$T/bin" "$T/lib" "$T/log"
cp "$P/bin/vibevmm" "$P/bin/exitbench-arm64" "$P/bin/bootclock" \
   "$P/qemu/bin/qemu-system-aarch64" "$T/bin/" || { echo "A64 fail staging: cp"; exit 1; }
if ! cp "$P/qemu/lib/"* "$T/lib/" || ! cp "$P/Image" "$P/initrd.cpio.gz" "$T/"; then
    echo "A64 fail staging: cp"; exit 1
fi
# The libraries each dynamic program loads, from wherever ld.so finds them
# (the 9p-mounted /usr/lib/aarch64-linux-gnu for most), onto the tmpfs.
for b in vibevmm exitbench-arm64 qemu-system-aarch64; do
    LD_LIBRARY_PATH=$T/lib "$LDSO" --list "$T/bin/$b" > "$T/log/ldd-$b" 2>&1 ||
        { fail "staging: ld.so --list $b: $(grep -m1 'not found' "$T/log/ldd-$b")"; exit 1; }
    sed -n 's/.* => \(\/[^ ]*\) (0x.*/\1/p' "$T/log/ldd-$b" | while read -r lib; do
        [ -e "$T/lib/${lib##*/}" ] || cp "$lib" "$T/lib/"
    done
done
export LD_LIBRARY_PATH="$T/lib"
cd "$T" || exit 1

VIB=$("$T/bin/vibevmm" --version 2>&1 | head -n1)
QV=$("$T/bin/qemu-system-aarch64" --version 2>&1 | head -n1)
echo "A64 version vibevmm=$VIB qemu=$QV"
host_line() {
    echo "A64 host kernel=$(uname -r) nproc=$(grep -c ^processor /proc/cpuinfo)" \
         "mem_mb=$(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024))" \
         "$1=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
}
host_line load_start

# boot VMM CPUS RUN: one timed boot
boot() {
    vmm=$1 n=$2 run=$3 log=$T/log/$1-$2-$3.console
    if [ "$vmm" = vibevmm ]; then
        set -- "$T/bin/vibevmm" --kernel Image --initrd initrd.cpio.gz \
            --cmdline "console=ttyS0 $CMDLINE_TAIL" --cpus "$n" --mem 256M
    else
        set -- "$T/bin/qemu-system-aarch64" -M virt,gic-version=3 -accel kvm -cpu host \
            -nodefaults -no-user-config -display none -no-reboot -m 256M -smp "$n" \
            -serial stdio -kernel Image -initrd initrd.cpio.gz \
            -append "console=ttyAMA0 $CMDLINE_TAIL"
    fi
    if out=$("$T/bin/bootclock" "$TIMEOUT" "$log" -- "$@" 2> "$log.err"); then
        echo "A64 boot vmm=$vmm cpus=$n run=$run $out"
        return 0
    fi
    echo "A64 note boot $vmm cpus=$n run $run failed: $out"
    { echo "--- $vmm cpus=$n run $run: stderr"; tail -n 20 "$log.err"
      echo "--- console tail"; tail -n 30 "$log"; } >&2
    return 1
}

for n in $(echo "$CPUS" | tr ',' ' '); do
    i=1
    while [ "$i" -le "$REPS" ]; do
        if [ $((i % 2)) = 1 ]; then order="vibevmm qemu"; else order="qemu vibevmm"; fi
        for vmm in $order; do
            # one retry: nested guests under TCG flake now and then
            boot "$vmm" "$n" "$i" || boot "$vmm" "$n" "$i" ||
                fail "boot $vmm cpus=$n run $i: failed twice"
        done
        i=$((i + 1))
    done
done

if [ "$EXITS" -gt 0 ]; then
    i=1
    while [ "$i" -le "$REPS" ]; do
        if [ $((i % 2)) = 1 ]; then order="lib bare"; else order="bare lib"; fi
        for m in $order; do
            if out=$("$T/bin/exitbench-arm64" "$m" "$EXITS" 2> "$T/log/exitbench.err"); then
                echo "A64 exits run=$i $out"
            else
                fail "exitbench-arm64 $m: $(tail -n 3 "$T/log/exitbench.err" | tr '\n' ' ')"
            fi
        done
        i=$((i + 1))
    done
fi
host_line load_end
exit "$rc"
