#!/bin/sh
# boots.sh: the arm64 Linux boots of the e2e-arm64 stage, run INSIDE the
# arm64 test host (busybox sh: no bash, no python there) in one session.
# test_arm64_linux.py prepares the payload, starts this script through
# tests/host/testhost.sh --arch arm64 and judges what it left behind.
#
# Usage (in the payload directory): sh boots.sh [NAME...]  (default: all)
# The payload: bin/vibevmm (cross-built), Image (Debian's arm64 kernel),
# initrd.cpio.gz (make-initramfs.sh arm64), vda.img (ext4 with hello.txt),
# vdb.img (ext4, attached read-only).
#
# Per boot NAME: out/NAME.console (the guest's console: vibevmm's stdout),
# out/NAME.err (vibevmm's stderr), and one line on stdout:
#   ARM64-BOOT NAME rc=RC seconds=S
# (RC: vibevmm's exit status; S: wall seconds in the test host). The disk
# images are used from a copy in /tmp (tmpfs in the test host: no file
# locks over 9p); vda.img and vdb-after.img are copied back afterwards for
# the x86 side to read with debugfs and compare.
#
# The boots:
#   main     1 vCPU; vda read-write, vdb read-only, a TAP, virtio-rng;
#            guest tests smp cmdline initrd devices blkrw rng net; /init
#            powers off
#   smp2     2 vCPUs (secondary started by PSCI CPU_ON); smp cmdline
#            initrd, then the guest test reboot (reboot -f)
#   hvc      --console virtio, console=hvc0; devices and console (a line
#            on vibevmm's stdin), then the guest test poweroff
#   panic    the guest test panic (sysrq c) with panic=-1
#   sigterm  /init runs a sleep; SIGTERM to vibevmm once it started
#   snapshot 2 vCPUs counting on the console (COUNT n boot_id uptime, each
#            second); SIGUSR1 saves it (--snapshot-on-signal), then it is
#            killed (SIGKILL) and restored (--restore) in a new process,
#            which is stopped by SIGTERM after three whole counts. The saving
#            process's output goes to out/snapshot-a.*, the restored one's
#            to out/snapshot.*; "ARM64-SNAP-BEFORE n" names the last count
#            seen before the signal
cd "$(dirname "$0")" || exit 1
mkdir -p out

# quiet: each byte of the kernel's log on the 16550 is an MMIO exit, and
# Debian's kernel logs ~40 KB: without it a boot takes 2-3 times as long
BASE="quiet panic=-1 vibevmm.verbose=0"
MARK="vibevmm.e2e=arm64-marker-5521"
TAP_HOST=10.0.2.1 TAP_GUEST=10.0.2.15/24
# "echo VIBEVMM-SLEEPING; sleep 600" (vibevmm.cmd= takes base64)
SLEEP_CMD=ZWNobyBWSUJFVk1NLVNMRUVQSU5HOyBzbGVlcCA2MDAK
# id=$(cat /proc/sys/kernel/random/boot_id); i=0; while :; do i=$((i+1));
# read -r up _ < /proc/uptime; echo "COUNT $i $id $up"; sleep 1; done
COUNT_CMD=aWQ9JChjYXQgL3Byb2Mvc3lzL2tlcm5lbC9yYW5kb20vYm9vdF9pZCk7IGk9MDsgd2hpbGUgOjsgZG8gaT0kKChpKzEpKTsgcmVhZCAtciB1cCBfIDwgL3Byb2MvdXB0aW1lOyBlY2hvICJDT1VOVCAkaSAkaWQgJHVwIjsgc2xlZXAgMTsgZG9uZQ==

now() { cut -d' ' -f1 /proc/uptime; }

# boot NAME STDIN-TEXT VIBEVMM-ARGS...: one VM to its end; STDIN-TEXT
# (may be empty) is what vibevmm reads on its stdin. A boot that hangs is
# ended by SIGTERM after BOOT_TIMEOUT s (status 143), so the others still run.
BOOT_TIMEOUT=240
boot() {
    name=$1 text=$2
    shift 2
    t0=$(now)
    printf '%s' "$text" | timeout "$BOOT_TIMEOUT" \
        vibevmm --kernel Image --initrd initrd.cpio.gz --log 3 "$@" \
        > "out/$name.console" 2> "out/$name.err"
    rc=$?
    echo "ARM64-BOOT $name rc=$rc seconds=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
}

# a TAP with the host's address: busybox tunctl in the test host (its ip
# has no tuntap), iproute2 elsewhere
tap_up() {
    { tunctl -t "$1" > /dev/null 2>&1 || ip tuntap add "$1" mode tap; } &&
        ip addr add "$TAP_HOST/24" dev "$1" && ip link set "$1" up
}
tap_down() { tunctl -d "$1" > /dev/null 2>&1 || ip tuntap del "$1" mode tap; }

boot_main() {
    tmp=$(mktemp -d) && cp vda.img vdb.img "$tmp/" || return 1
    tap_up tap0 || echo "ARM64-NOTE cannot set up tap0"
    boot main "" --cpus 1 --mem 256M \
        --disk path="$tmp/vda.img" --disk path="$tmp/vdb.img",ro=on \
        --net tap=tap0,mac=52:54:00:12:34:56 \
        --cmdline "console=ttyS0 $BASE $MARK vibevmm.ip=$TAP_GUEST vibevmm.peer=$TAP_HOST \
vibevmm.test=smp,cmdline,initrd,devices,blkrw,rng,net"
    cp "$tmp/vda.img" vda.img
    cp "$tmp/vdb.img" vdb-after.img
    rm -rf "$tmp"
    tap_down tap0
}

boot_smp2() {
    boot smp2 "" --cpus 2 --mem 256M \
        --cmdline "console=ttyS0 $BASE $MARK vibevmm.test=smp,cmdline,initrd,reboot"
}

boot_hvc() {
    boot hvc "typed-on-the-arm64-host
" --cpus 1 --mem 256M --console virtio \
        --cmdline "console=hvc0 $BASE vibevmm.test=devices,console,poweroff"
}

boot_panic() {
    boot panic "" --cpus 1 --mem 256M \
        --cmdline "console=ttyS0 $BASE vibevmm.test=panic"
}

# vibevmm in the background until the guest's command runs, then SIGTERM
boot_sigterm() {
    t0=$(now)
    vibevmm --kernel Image --initrd initrd.cpio.gz --log 3 --cpus 1 --mem 256M \
        --cmdline "console=ttyS0 $BASE vibevmm.cmd=$SLEEP_CMD" \
        < /dev/null > out/sigterm.console 2> out/sigterm.err &
    pid=$!
    i=0
    while ! grep -q VIBEVMM-SLEEPING out/sigterm.console && [ $i -lt 300 ] &&
        kill -0 "$pid" 2> /dev/null; do
        sleep 0.5
        i=$((i + 1))
    done
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    echo "ARM64-BOOT sigterm rc=$rc seconds=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
}

# wait_for PID TEST...: until the test holds, PID ends or 150 s pass
wait_for() {
    pid=$1
    shift
    i=0
    while ! "$@" && [ $i -lt 300 ] && kill -0 "$pid" 2> /dev/null; do
        sleep 0.5
        i=$((i + 1))
    done
}
counts_in() { [ "$(grep -c '^COUNT ' "$2")" -ge "$1" ]; }

boot_snapshot() {
    t0=$(now)
    snap=$(mktemp -d)
    vibevmm --kernel Image --initrd initrd.cpio.gz --log 3 --cpus 2 --mem 256M \
        --cmdline "console=ttyS0 $BASE vibevmm.cmd=$COUNT_CMD" --snapshot-on-signal "$snap" \
        < /dev/null > out/snapshot-a.console 2> out/snapshot-a.err &
    pid=$!
    wait_for "$pid" counts_in 3 out/snapshot-a.console
    echo "ARM64-SNAP-BEFORE $(grep '^COUNT ' out/snapshot-a.console | tail -1 | cut -d' ' -f2)"
    kill -USR1 "$pid"
    wait_for "$pid" grep -q "snapshot saved to" out/snapshot-a.err
    kill -KILL "$pid"
    wait "$pid"
    vibevmm --restore "$snap" --log 3 < /dev/null > out/snapshot.console 2> out/snapshot.err &
    pid=$!
    # four lines begun: three whole ones (SIGTERM may cut the last)
    wait_for "$pid" counts_in 4 out/snapshot.console
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    rm -rf "$snap"
    echo "ARM64-BOOT snapshot rc=$rc seconds=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
}

[ $# -gt 0 ] || set -- main smp2 hvc panic sigterm snapshot
for b in "$@"; do
    echo "ARM64-BOOT-START $b"
    "boot_$b"
done
echo "ARM64-BOOTS-DONE"
