#!/bin/bash
# testhost.sh: run a command inside the test host, an emulated x86_64 machine
# with AMD-V and nested paging (qemu -accel tcg -cpu EPYC,+svm,+npt) booting
# Debian's generic kernel with kvm-amd loaded: a real KVM for the payload.
# With --arch arm64, an emulated arm64 machine with EL2 and a GICv3
# (qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max)
# booting Debian's arm64 kernel, whose built-in KVM uses them.
#
# Usage:
#   tests/host/testhost.sh [OPTIONS] --payload DIR -- COMMAND [ARG...]
#   tests/host/testhost.sh [OPTIONS] --check
#   tests/host/testhost.sh [OPTIONS] [--payload DIR] --shell
#   tests/host/testhost.sh [OPTIONS] --payload DIR --interactive -- COMMAND [ARG...]
# Options:
#   --arch ARCH     x86_64 (default) or arm64
#   --timeout SEC   kill the test host after SEC seconds (default 600), exit 124
#   --idle-timeout SEC  kill it, exit 124, when the command printed nothing
#                   for SEC seconds (default: off; not with --console)
#   --mem MB        test-host memory (default 2048)
#   --smp N         test-host CPUs (default 1: with 2, nested guests that do
#                   much (Debian's cloud kernel booting) crash the emulated
#                   machine's own kernel every few boots, a QEMU TCG bug in
#                   its nested paging; see --no-npt)
#   --no-npt        (x86_64) kvm-amd loaded with npt=0: the test host's KVM
#                   shadows the nested guests' page tables instead of using
#                   the emulated nested paging. About 15% slower; with --smp 2
#                   it avoids the crashes above, but a guest with more vCPUs
#                   than the test host has CPUs can freeze it (tests/README.md)
#   --no-host-usr   do not mount the outer host's /usr (read-only) on /usr
#                   (arm64: its arm64 libraries; see below)
#   --console       the test host's serial console on this terminal instead
#                   of the log file
#   --qemu-arg ARG  extra qemu argument (repeatable)
#   --append STR    extra test-host kernel command line (e.g. "loglevel=7")
#   --iommu-nvme IMG  (x86_64) a q35 machine with an emulated Intel IOMMU
#                   (intremap on; intel_iommu=on) and an NVMe controller at
#                   01:00.0 (on a PCIe root port) whose namespace 1 is the
#                   raw file IMG, in its own IOMMU group, for VFIO: bind it
#                   inside with scripts/vfio-bind.sh. It offers 2 SR-IOV VFs
#                   (tests/host/nvme-sriov.sh brings them up). no_timer_check:
#                   the kernel's timer check through the remapped IO-APIC
#                   fails now and then under TCG, a panic.
#   --iommu-sata IMG  (with --iommu-nvme) also an ICH9 AHCI controller at
#                   00:05.0 with a SATA disk on the raw file IMG, in its own
#                   IOMMU group: a device with MSI and no MSI-X, for VFIO.
#
# DIR is shared read-write (virtio-9p) at /payload; COMMAND runs there with
# cwd /payload, stdin /dev/null, VIBEVMM_TESTHOST=1 and
# PATH=/payload/bin:/usr/sbin:/usr/bin:/sbin:/bin (the host's /usr, then
# busybox; /payload/bin:/bin:/sbin with --no-host-usr). Its stdout and stderr are streamed to this
# script's stdout and stderr (through DIR/.testhost/RUNID/{stdout,stderr});
# its exit status becomes this script's. The console goes to
# $CACHE/logs/testhost-*.log. With the host's /usr mounted (the default),
# dynamically linked programs of this machine run inside as they are;
# otherwise payload programs must be static or packed with add-binary.sh.
# arm64: this machine's /usr is x86 and stays outside; its arm64 libraries
# (/usr/lib/aarch64-linux-gnu: libc6:arm64 and the other :arm64 packages of
# `scripts/deps.sh cross-arm64`) are mounted there read-only, so programs
# built with aarch64-linux-gnu-gcc run inside, static or dynamic;
# PATH=/payload/bin:/bin:/sbin (busybox-static:arm64).
# --check boots, checks /dev/kvm and kvm_amd's nested paging (arm64: KVM at
# EL2 with a vGICv3), and prints "testhost: KVM ready (AMD-V, nested paging)"
# ("testhost: KVM ready (arm64, EL2, vGICv3)"). --shell gives an interactive
# shell (implies --console). --interactive runs COMMAND with this terminal as
# its console (stdin included, raw, Ctrl-A and Ctrl-C passed through): for
# `make run` on hosts whose own KVM cannot boot Linux.
#
# Exit status: the command's; 124 on timeout; 125 when the test host ended
# without running the command to its end (crash, panic: see the log);
# 77 when the test host cannot start (no qemu, no kernel): callers skip.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

usage() { sed -n '2,61p' "$0" | sed 's/^# \{0,1\}//'; }

TIMEOUT=600 IDLE=0 MEM=2048 SMP=1 PAYLOAD='' MODE=run HOSTUSR=1 CONSOLE=0
EXTRA=() XAPPEND='' ARCH=x86_64 NVME_IMG='' SATA_IMG=''
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --idle-timeout) IDLE=${2:?}; shift 2 ;;
        --mem) MEM=${2:?}; shift 2 ;;
        --smp) SMP=${2:?}; shift 2 ;;
        --payload) PAYLOAD=${2:?}; shift 2 ;;
        --no-host-usr) HOSTUSR=0; shift ;;
        --console) CONSOLE=1; shift ;;
        --qemu-arg) EXTRA+=("${2:?}"); shift 2 ;;
        --append) XAPPEND+=" ${2:?}"; shift 2 ;;
        --no-npt) XAPPEND+=" testhost.npt=0"; shift ;;
        --iommu-nvme) NVME_IMG=${2:?}; shift 2 ;;
        --iommu-sata) SATA_IMG=${2:?}; shift 2 ;;
        --check) MODE=check; shift ;;
        --shell) MODE=shell; CONSOLE=1; shift ;;
        --interactive) MODE=interactive; CONSOLE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$TIMEOUT$IDLE$MEM$SMP" in *[!0-9]*) die "--timeout, --idle-timeout, --mem, --smp take numbers" ;; esac

# What differs between the two test hosts: qemu, its machine, the kernel,
# busybox, the console and the libraries shared from this machine.
case "$ARCH" in
    x86_64|amd64)
        ARCH=x86_64 KDIR=$CACHE/kernels/generic BUSYBOX=$CACHE/busybox
        QEMU=${QEMU:-qemu-system-x86_64} QEMU_PKG=qemu-system-x86
        # shellcheck disable=SC2054  # the commas are qemu's
        MACHINE=(-cpu EPYC,+svm,+npt) CONSOLE_DEV=ttyS0
        ;;
    arm64|aarch64)
        ARCH=arm64 KDIR=$CACHE/kernels/arm64 BUSYBOX=$CACHE/busybox-arm64
        QEMU=${QEMU:-qemu-system-aarch64} QEMU_PKG=qemu-system-arm
        # virtualization=on: EL2 for KVM; pauth-impdef: the cheap pointer
        # authentication (the architected one costs much under TCG).
        # shellcheck disable=SC2054  # the commas are qemu's
        MACHINE=(-M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on)
        CONSOLE_DEV=ttyAMA0
        ;;
    *) die "--arch takes x86_64 or arm64, not '$ARCH'" ;;
esac
if [ -n "$NVME_IMG" ]; then
    [ "$ARCH" = x86_64 ] || die "--iommu-nvme is for the x86_64 test host"
    [ -f "$NVME_IMG" ] || die "--iommu-nvme $NVME_IMG: no such file"
    # shellcheck disable=SC2054  # the commas are qemu's
    # SR-IOV: 4 flexible queues and 2 interrupt vectors for the VFs (each
    # VF needs 2 queues, admin + I/O, and 1 vector); the controller must
    # belong to a subsystem.
    MACHINE+=(-M q35 -device intel-iommu,intremap=on
              -device pcie-root-port,id=rp0,slot=1 -device nvme-subsys,id=nvmesubsys0
              -device nvme,serial=vibevmm-nvme0,subsys=nvmesubsys0,bus=rp0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2,max_ioqpairs=6,msix_qsize=5,sriov_max_vq_per_vf=2,sriov_max_vi_per_vf=1
              -drive "file=$NVME_IMG,if=none,id=nvme0,format=raw,cache=none"
              -device nvme-ns,drive=nvme0,nsid=1)
    XAPPEND+=" intel_iommu=on no_timer_check"
fi
if [ -n "$SATA_IMG" ]; then
    [ -n "$NVME_IMG" ] || die "--iommu-sata needs --iommu-nvme (the IOMMU comes with it)"
    [ -f "$SATA_IMG" ] || die "--iommu-sata $SATA_IMG: no such file"
    # shellcheck disable=SC2054  # the commas are qemu's
    MACHINE+=(-device ich9-ahci,id=sata1,bus=pcie.0,addr=0x5
              -drive "file=$SATA_IMG,if=none,id=sata1d,format=raw,cache=none"
              -device ide-hd,drive=sata1d,bus=sata1.0)
fi
command -v "$QEMU" >/dev/null 2>&1 || skip "no $QEMU (apt-get install $QEMU_PKG)"
command -v timeout >/dev/null 2>&1 || skip "no timeout(1)"

# kernels, busybox and the host initramfs (fetched/built once, then cached)
FIX=$VIBEVMM_SRC/tests/fixtures
if [ ! -s "$KDIR/vmlinuz" ] || [ ! -x "$BUSYBOX" ]; then
    log "fetching the kernels"
    "$FIX/fetch-kernels.sh" --arch "$ARCH" >/dev/null ||
        skip "cannot fetch Debian's kernel (fetch-kernels.sh --arch $ARCH failed)"
fi
INITRD=$("$VIBEVMM_SRC/tests/host/make-host-initramfs.sh" --arch "$ARCH") ||
    skip "cannot build the test-host initramfs"
# x86: the uncompressed vmlinux (PVH entry) saves the ~3 s its xz
# decompressor takes under TCG; the bzImage is the fallback. arm64's vmlinuz
# is the raw Image already.
KERNEL=$KDIR/vmlinux
[ -s "$KERNEL" ] || KERNEL=$KDIR/vmlinuz

CLEANUP_DIR=''
case "$MODE" in
    run|interactive)
        [ -n "$PAYLOAD" ] || { usage >&2; die "--payload DIR is required"; }
        [ $# -gt 0 ] || { usage >&2; die "no COMMAND after --"; }
        ;;
    check)
        [ $# -eq 0 ] || die "--check takes no COMMAND"
        set -- testhost-check
        ;;
    shell)
        [ $# -eq 0 ] || die "--shell takes no COMMAND"
        ;;
esac
if [ -z "$PAYLOAD" ]; then
    PAYLOAD=$(mktemp -d "${TMPDIR:-/tmp}/vibevmm-payload.XXXXXX")
    CLEANUP_DIR=$PAYLOAD
fi
[ -d "$PAYLOAD" ] || die "payload $PAYLOAD is not a directory"
PAYLOAD=$(cd "$PAYLOAD" && pwd)

# sh_quote ARG: ARG as one single-quoted word for busybox sh
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

RUNID=$(date +%Y%m%d-%H%M%S)-$$
RUNDIR=''
mkdir -p "$PAYLOAD/.testhost/$RUNID" "$CACHE/logs"
RUNDIR=$PAYLOAD/.testhost/$RUNID
LOG=$CACHE/logs/testhost-$RUNID.log
# keep a week of logs
find "$CACHE/logs" -name 'testhost-*.log' -mtime +7 -delete 2>/dev/null || true
# softlockup_panic: a test host wedged in nested SVM (a TCG bug, seen a few
# times) panics and ends within ~30 s instead of running into --timeout.
# vibevmm.testhost=tcg tells the tests they run nested under TCG
# (tests/e2e/conftest.py: the one triple fault it retries).
APPEND="console=$CONSOLE_DEV quiet loglevel=4 panic=-1 softlockup_panic=1 mitigations=off vibevmm.testhost=tcg"
if [ "$MODE" != shell ]; then
    {
        printf '# written by testhost.sh\n'
        for a in "$@"; do sh_quote "$a"; printf ' '; done
        printf '\n'
    } > "$RUNDIR/cmd"
    : > "$RUNDIR/stdout"
    : > "$RUNDIR/stderr"
    APPEND+=" testhost.run=$RUNID"
fi
if [ "$HOSTUSR" = 1 ] && [ "$ARCH" = arm64 ] &&
   [ ! -e /usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 ]; then
    log "note: no arm64 libraries here (scripts/deps.sh cross-arm64): static programs only"
    HOSTUSR=0
fi
if [ "$HOSTUSR" = 1 ]; then
    case "$ARCH" in
        x86_64) APPEND+=" testhost.hostusr=1" ;;
        arm64) APPEND+=" testhost.arm64libs=1" ;;
    esac
fi
[ "$MODE" != shell ] || APPEND+=" testhost.shell=1"
# interactive: only the command's own output on the terminal
[ "$MODE" != interactive ] || APPEND+=" testhost.interactive=1 loglevel=1"
APPEND+=$XAPPEND

# shellcheck disable=SC2054  # the commas are qemu's
QARGS=(
    -accel tcg "${MACHINE[@]}" -m "$MEM" -smp "$SMP"
    -no-reboot -nodefaults -no-user-config -display none
    -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
    -virtfs "local,path=$PAYLOAD,mount_tag=payload,security_model=none,id=payload"
)
# virtfs_ro TAG DIR: share DIR read-only under the 9p TAG
virtfs_ro() { QARGS+=(-virtfs "local,path=$2,mount_tag=$1,security_model=none,readonly=on,id=$1"); }
if [ "$HOSTUSR" = 1 ] && [ "$ARCH" = x86_64 ]; then
    virtfs_ro hostusr /usr
elif [ "$HOSTUSR" = 1 ]; then
    virtfs_ro arm64libs /usr/lib/aarch64-linux-gnu
fi
if [ "$MODE" = interactive ]; then
    # No monitor multiplexing and no signals: Ctrl-A and Ctrl-C reach the
    # command inside (vibevmm's Ctrl-A x quits the guest, not qemu).
    # shellcheck disable=SC2054  # the commas are qemu's
    QARGS+=(-chardev stdio,id=con,signal=off -serial chardev:con -monitor none)
elif [ "$CONSOLE" = 1 ]; then
    QARGS+=(-serial mon:stdio)
else
    QARGS+=(-serial "file:$LOG" -monitor none)
fi
QARGS+=("${EXTRA[@]}")

QPID='' TAILS=()
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    local p
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null || true; fi
    for p in "${TAILS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$RUNDIR" ]; then rm -rf "$RUNDIR"; fi
    if [ -n "$CLEANUP_DIR" ]; then rm -rf "$CLEANUP_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# idle_watchdog: kill qemu when the command's output has not grown for $IDLE
# seconds (a test host frozen without a panic), leaving $RUNDIR/idle behind.
# shellcheck disable=SC2317  # run in the background
idle_watchdog() {
    local size last=-1 quiet=0
    while kill -0 "$QPID" 2>/dev/null; do
        sleep 5
        size=$(stat -c %s "$RUNDIR/stdout" "$RUNDIR/stderr" 2>/dev/null)
        if [ "$size" != "$last" ]; then last=$size quiet=0; else quiet=$((quiet + 5)); fi
        if [ "$quiet" -ge "$IDLE" ]; then
            : > "$RUNDIR/idle"
            pkill -KILL -P "$QPID" 2>/dev/null || true
            return 0
        fi
    done
}

log "booting the test host (log: $LOG)"
START=$(date +%s.%N)
if [ "$CONSOLE" = 1 ]; then
    set +e
    # --foreground: qemu must stay in the terminal's foreground process
    # group, or reading the terminal stops it (SIGTTIN).
    if [ "$MODE" = interactive ]; then
        timeout --foreground -k 5 "$TIMEOUT" "$QEMU" "${QARGS[@]}" 2>> "$LOG"
    else
        timeout --foreground -k 5 "$TIMEOUT" "$QEMU" "${QARGS[@]}"
    fi
    QRC=$?
    set -e
    if [ "$MODE" = run ]; then
        cat "$RUNDIR/stdout" 2>/dev/null || true
        cat "$RUNDIR/stderr" >&2 2>/dev/null || true
    fi
else
    timeout -k 5 "$TIMEOUT" "$QEMU" "${QARGS[@]}" < /dev/null > "$LOG.qemu" 2>&1 &
    QPID=$!
    if [ "$MODE" != shell ]; then
        tail -n +1 -s 0.2 -F --pid="$QPID" "$RUNDIR/stdout" 2>/dev/null &
        TAILS+=($!)
        tail -n +1 -s 0.2 -F --pid="$QPID" "$RUNDIR/stderr" >&2 2>/dev/null &
        TAILS+=($!)
        if [ "$IDLE" -gt 0 ]; then
            idle_watchdog &
            TAILS+=($!)
        fi
    fi
    set +e
    wait "$QPID" 2>/dev/null  # (bash would report a killed qemu on stderr)
    QRC=$?
    set -e
    QPID=''
    for p in "${TAILS[@]}"; do wait "$p" 2>/dev/null || true; done
    TAILS=()
    # qemu's own messages, less its note on each EPYC feature TCG lacks
    grep -v "TCG doesn't support requested feature" "$LOG.qemu" >> "$LOG" || true
    rm -f "$LOG.qemu"
fi
END=$(date +%s.%N)
WALL=$(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.1f", b - a }')

if [ -n "$RUNDIR" ] && [ -f "$RUNDIR/idle" ]; then
    log "no output from the command for ${IDLE}s: test host presumed hung, killed (log: $LOG)"
    exit 124
fi
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
    if [ "${WALL%.*}" -ge "$TIMEOUT" ]; then
        log "timeout after ${TIMEOUT}s: test host killed (log: $LOG)"
    else
        log "the test host (qemu) was killed after ${WALL}s (log: $LOG)"
    fi
    exit 124
fi
[ "$MODE" != shell ] || exit 0
READY=$(cat "$RUNDIR/ready" 2>/dev/null || echo '?')
if [ ! -f "$RUNDIR/status" ]; then
    log "the test host ended without a command status (qemu rc=$QRC); end of $LOG:"
    tail -n 30 "$LOG" | sed "s/^/$PROG: | /" >&2
    exit 125
fi
RC=$(cat "$RUNDIR/status")
log "done in ${WALL}s wall (test host ready at ${READY}s of its uptime); command exit status $RC"
cp -f "$RUNDIR/status" "$RUNDIR/stdout" "$RUNDIR/stderr" "$PAYLOAD/.testhost/" 2>/dev/null || true
exit "$RC"
