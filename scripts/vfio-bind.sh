#!/bin/sh
# vfio-bind.sh: give PCI devices to vfio-pci, for `vibevmm --vfio`.
#
# Usage:
#   scripts/vfio-bind.sh ADDR...          bind each device (0000:01:00.0 or 01:00.0)
#   scripts/vfio-bind.sh --vfs N ADDR     make N SR-IOV virtual functions of the
#                                         physical function ADDR, bind each VF
#   scripts/vfio-bind.sh --unbind ADDR... give devices back to their own driver
#
# Binding: load vfio-pci, write vfio-pci to the device's driver_override,
# unbind it from its driver, ask the kernel to probe it again; it prints
# the device and its /dev/vfio/GROUP. VFs: the physical function keeps its
# own driver (it manages the VFs); sriov_drivers_autoprobe is switched off
# first, so no host driver takes the VFs before vfio-pci does. Every device
# in an IOMMU group must be bound to vfio-pci (or have no driver) before
# the group can be used. POSIX sh: runs under busybox too. Needs root.
set -eu
SYS=${VFIO_BIND_SYSFS:-/sys}

die() { echo "vfio-bind.sh: $*" >&2; exit 1; }

# full ADDR: the address with its PCI domain (0000: when left out)
full() {
    case "$1" in
        ????:??:??.?) echo "$1" ;;
        ??:??.?) echo "0000:$1" ;;
        *) die "$1: not a PCI address (DDDD:BB:SS.F or BB:SS.F)" ;;
    esac
}

bind() {
    a=$(full "$1") || exit 1
    d=$SYS/bus/pci/devices/$a
    [ -d "$d" ] || die "$a: no such PCI device"
    [ -e "$d/iommu_group" ] ||
        die "$a: no IOMMU group (is the IOMMU on? intel_iommu=on or amd_iommu=on on the kernel command line)"
    [ -d "$SYS/bus/pci/drivers/vfio-pci" ] || modprobe vfio-pci 2>/dev/null ||
        die "cannot load vfio-pci (modprobe vfio-pci)"
    modprobe vfio_iommu_type1 2>/dev/null || true
    echo vfio-pci > "$d/driver_override"
    if [ -e "$d/driver" ]; then
        case "$(readlink "$d/driver")" in */vfio-pci) ;;
            *) echo "$a" > "$d/driver/unbind" ;;
        esac
    fi
    [ -e "$d/driver" ] || echo "$a" > "$SYS/bus/pci/drivers_probe"
    case "$(readlink "$d/driver" 2>/dev/null)" in */vfio-pci) ;;
        *) die "$a: vfio-pci did not take it (dmesg says why)" ;;
    esac
    echo "$a: vfio-pci, /dev/vfio/$(basename "$(readlink "$d/iommu_group")")"
}

unbind() {
    a=$(full "$1") || exit 1
    d=$SYS/bus/pci/devices/$a
    [ -d "$d" ] || die "$a: no such PCI device"
    echo > "$d/driver_override"
    [ ! -e "$d/driver" ] || echo "$a" > "$d/driver/unbind"
    echo "$a" > "$SYS/bus/pci/drivers_probe"
    drv=$(readlink "$d/driver" 2>/dev/null || true)
    [ -n "$drv" ] || drv="no driver"
    echo "$a: ${drv##*/}"
}

make_vfs() {
    n=$1
    a=$(full "$2") || exit 1
    d=$SYS/bus/pci/devices/$a
    [ -e "$d/sriov_totalvfs" ] || die "$a: not an SR-IOV physical function (no sriov_totalvfs)"
    [ "$n" -le "$(cat "$d/sriov_totalvfs")" ] || die "$a: offers at most $(cat "$d/sriov_totalvfs") VFs"
    echo 0 > "$d/sriov_drivers_autoprobe"
    [ "$(cat "$d/sriov_numvfs")" = 0 ] || echo 0 > "$d/sriov_numvfs"
    echo "$n" > "$d/sriov_numvfs"
    for vf in "$d"/virtfn*; do
        [ -e "$vf" ] || continue
        bind "$(basename "$(readlink "$vf")")"
    done
}

case "${1:-}" in
    ""|-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --vfs) [ $# -eq 3 ] || die "--vfs takes N and the physical function's ADDR"
        make_vfs "$2" "$3" ;;
    --unbind) shift; for a in "$@"; do unbind "$a"; done ;;
    *) for a in "$@"; do bind "$a"; done ;;
esac
