#!/bin/sh
# nvme-sriov.sh: inside the test host started with --iommu-nvme, bring up
# N (1 or 2) SR-IOV virtual functions of the emulated NVMe controller and
# bind them to vfio-pci; prints each VF's address and /dev/vfio/GROUP.
#
# Usage: tests/host/nvme-sriov.sh [N]     (default 1; needs nvme-cli)
#
# QEMU's NVMe VFs start offline, without resources: the physical function
# (bound to the nvme driver, /dev/nvme0) gives up its flexible queues and
# vectors, is reset, enables the VFs, then assigns each secondary
# controller 2 queues and 1 vector and puts it online. Namespace 1 is
# attached to every controller of the subsystem already. (QEMU's
# docs/system/devices/nvme.rst; the NVMe 1.4 Virtualization Management
# command.)
set -eu
n=${1:-1}
here=$(cd "$(dirname "$0")" && pwd)
pf=0000:01:00.0
d=/sys/bus/pci/devices/$pf
die() { echo "nvme-sriov.sh: $*" >&2; exit 1; }
command -v nvme >/dev/null || die "no nvme (apt-get install nvme-cli)"
[ -e "$d/sriov_totalvfs" ] || die "$pf offers no SR-IOV (start the test host with --iommu-nvme)"
modprobe nvme 2>/dev/null || true
# (back) to its own driver: the nvme driver, not vfio-pci
case "$(readlink "$d/driver" 2>/dev/null)" in
    */nvme) ;;
    *) "$here/../../scripts/vfio-bind.sh" --unbind "$pf" >/dev/null ;;
esac
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/nvme0 ] && break; sleep 0.5; done
[ -e /dev/nvme0 ] || die "the nvme driver did not take $pf"
quiet() { out=$("$@" 2>&1) || die "$*: $out"; }
quiet nvme virt-mgmt /dev/nvme0 -c 0 -r 1 -a 1 -n 0
quiet nvme virt-mgmt /dev/nvme0 -c 0 -r 0 -a 1 -n 0
quiet nvme reset /dev/nvme0
echo 0 > "$d/sriov_drivers_autoprobe"
echo "$n" > "$d/sriov_numvfs"
c=1
while [ "$c" -le "$n" ]; do
    quiet nvme virt-mgmt /dev/nvme0 -c "$c" -r 1 -a 8 -n 1
    quiet nvme virt-mgmt /dev/nvme0 -c "$c" -r 0 -a 8 -n 2
    quiet nvme virt-mgmt /dev/nvme0 -c "$c" -r 0 -a 9 -n 0
    c=$((c + 1))
done
for vf in "$d"/virtfn*; do
    "$here/../../scripts/vfio-bind.sh" "$(basename "$(readlink "$vf")")"
done
