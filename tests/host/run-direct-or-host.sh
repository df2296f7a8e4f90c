#!/bin/bash
# run-direct-or-host.sh: run a command that needs a real (VT-x/AMD-V) KVM:
# directly when this machine has one, otherwise inside the test host.
#
# Usage: tests/host/run-direct-or-host.sh [--where] [testhost.sh OPTIONS] --payload DIR -- COMMAND [ARG...]
#   --where   only print "direct" or "testhost" (and why) and exit 0
#   --arch A  the architecture COMMAND needs: x86_64 (default) or arm64;
#             direct only on a machine of that architecture, otherwise the
#             test host of that architecture (testhost.sh --arch A)
#
# Direct: /dev/kvm is usable and kvm_intel, kvm_amd (x86) or arm64's
# built-in KVM is there (and not
# kvm_pvm, this project's software KVM that cannot run stock kernels): the
# command runs here with cwd DIR and DIR/bin first in PATH, like inside.
# Otherwise: tests/host/testhost.sh with the same options. Either way the
# exit status is the command's (77 when neither is possible: skip).
# VIBEVMM_FORCE_TESTHOST=1 always uses the test host.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

# kvm_kind: prints "real intel|amd", "pvm" or "none" (with a reason).
kvm_kind() {
    if [ -d /sys/module/kvm_pvm ] || grep -qs '^kvm_pvm ' /proc/modules; then
        echo "pvm (kvm_pvm: software KVM, stock kernels do not boot on it)"
    elif [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo "none (no usable /dev/kvm)"
    elif [ -d /sys/module/kvm_intel ]; then
        echo "real intel (kvm_intel)"
    elif [ -d /sys/module/kvm_amd ]; then
        echo "real amd (kvm_amd)"
    elif [ "$(uname -m)" = aarch64 ]; then
        echo "real arm64 (KVM)"
    else
        echo "none (/dev/kvm without kvm_intel or kvm_amd)"
    fi
}

WHERE_ONLY=0 ARCH=x86_64
OPTS=()
PAYLOAD=''
while [ $# -gt 0 ]; do
    case "$1" in
        --where) WHERE_ONLY=1; shift ;;
        --arch) ARCH=${2:?}; OPTS+=("$1" "$2"); shift 2 ;;
        --payload) PAYLOAD=${2:?}; OPTS+=("$1" "$2"); shift 2 ;;
        --timeout|--idle-timeout|--mem|--smp|--qemu-arg|--append|--iommu-nvme|--iommu-sata) OPTS+=("$1" "${2:?}"); shift 2 ;;
        --no-host-usr|--console|--no-npt) OPTS+=("$1"); shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

case "$ARCH" in
    x86_64|amd64) machine=x86_64 ;;
    arm64|aarch64) machine=aarch64 ;;
    *) die "--arch takes x86_64 or arm64, not '$ARCH'" ;;
esac
kind=$(kvm_kind)
[ "$(uname -m)" = "$machine" ] || kind="none for $ARCH (this machine is $(uname -m))"
if [ "${kind%% *}" = real ] && [ "${VIBEVMM_FORCE_TESTHOST:-0}" != 1 ]; then
    where=direct
else
    where=testhost
fi
log "KVM here: $kind -> running $where"
if [ "$WHERE_ONLY" = 1 ]; then
    echo "$where"
    exit 0
fi
[ -n "$PAYLOAD" ] || { usage >&2; die "--payload DIR is required"; }
[ $# -gt 0 ] || { usage >&2; die "no COMMAND after --"; }

if [ "$where" = testhost ]; then
    exec "$VIBEVMM_SRC/tests/host/testhost.sh" "${OPTS[@]}" -- "$@"
fi

# direct: same conventions as inside the test host
timeout=600
for ((i = 0; i < ${#OPTS[@]}; i++)); do
    if [ "${OPTS[i]}" = --timeout ]; then timeout=${OPTS[i + 1]}; fi
done
PAYLOAD=$(cd "$PAYLOAD" && pwd)
cd "$PAYLOAD"
export PATH="$PAYLOAD/bin:$PATH" VIBEVMM_DIRECT=1
rc=0
start=$SECONDS
timeout -k 5 "$timeout" "$@" < /dev/null || rc=$?
case "$rc" in
    124|137|143) [ $((SECONDS - start)) -lt "$timeout" ] || rc=124 ;;
esac
exit "$rc"
