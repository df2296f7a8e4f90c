#!/usr/bin/env bash
# `make run`: boot a Debian kernel with a busybox initramfs to an interactive
# shell. First use installs the packages it needs (scripts/deps.sh), fetches
# the kernel (apt-get download) and builds the initramfs; both are cached in
# ${VIBEVMM_CACHE:-~/.cache/vibevmm}.
#   x86_64: Debian's cloud kernel (bzImage).
#   arm64:  Debian's arm64 kernel (the raw Image, linux-image-arm64), built
#           natively on an arm64 host, or cross-built (aarch64-linux-gnu-)
#           when asked for on another one.
# The architecture is this machine's, or VIBEVMM_RUN_ARCH (x86_64 or arm64;
# `make run ARCH=arm64` sets it): arm64 on an x86 machine cross-builds and
# boots in the emulated arm64 test host.
# On a host whose /dev/kvm is hardware KVM of that architecture the guest
# runs directly; otherwise (PVM, or another architecture) inside the
# emulated test host of that architecture, which says so.
# Extra arguments go to vibevmm (e.g. --cpus 4 --mem 1G).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { echo "make run: $*" >&2; }

case "${VIBEVMM_RUN_ARCH:-$(uname -m)}" in
	x86_64|amd64) arch=x86_64 ;;
	arm64|aarch64) arch=arm64 ;;
	*) say "error: VIBEVMM_RUN_ARCH must be x86_64 or arm64, not '${VIBEVMM_RUN_ARCH:-$(uname -m)}'"; exit 1 ;;
esac
# the machine builds for itself, or cross-builds for arm64
native=0
case "$(uname -m)" in x86_64) [ "$arch" != x86_64 ] || native=1 ;; aarch64) [ "$arch" != arm64 ] || native=1 ;; esac
if [ "$native" = 0 ] && [ "$arch" != arm64 ]; then
	say "error: cannot build for $arch on $(uname -m) (cross builds: arm64 from x86_64)"
	exit 1
fi

where=$(tests/host/run-direct-or-host.sh --arch "$arch" --where 2>/dev/null || true)
# the packages (scripts/deps.sh); the test host's qemu only when it is needed
purposes=(run)
[ "$native" = 1 ] || purposes+=(cross-arm64)
case "$where" in
	direct*) ;;
	*) if [ "$arch" = arm64 ]; then purposes+=(testhost-arm64); else purposes+=(testhost); fi ;;
esac
scripts/deps.sh "${purposes[@]}"

mkdir -p "build/run/$arch"
cache=${VIBEVMM_CACHE:-$HOME/.cache/vibevmm}
if [ "$arch" = x86_64 ]; then
	kdir=$cache/kernels/cloud kernel=build/run/x86_64/vmlinuz kind=cloud console=ttyS0
	# (pci=off: virtio is on MMIO here; probing PCI only costs time)
	extra="pci=off"
else
	kdir=$cache/kernels/arm64 kernel=build/run/arm64/Image kind=arm64 console=ttyS0 extra=""
fi
if [ "$native" = 1 ]; then
	say "building vibevmm"
	make -s all
	bin=bin/vibevmm
else
	say "building vibevmm for arm64 (cross: make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)"
	make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- all
	bin=build/arm64/bin/vibevmm
fi
say "fetching Debian's $arch kernel (cached after the first time)"
tests/fixtures/fetch-kernels.sh --arch "$arch" >/dev/null
cmp -s "$kdir/vmlinuz" "$kernel" 2>/dev/null || cp "$kdir/vmlinuz" "$kernel"
say "building the busybox initramfs"
initrd=build/run/$arch/initrd.cpio.gz
tests/fixtures/make-initramfs.sh "$kind" "$initrd" >/dev/null

cmd=("$bin" --kernel "$kernel" --initrd "$initrd"
     --cmdline "console=$console quiet $extra vibevmm.shell=1 vibevmm.verbose=0"
     --mem 512M --cpus 2 "$@")
say "kernel $(cat "$kdir/version" 2>/dev/null); Ctrl-A x quits, 'poweroff' in the guest ends it"
case "$where" in
	direct*)
		say "booting on this host's KVM"
		exec "${cmd[@]}" ;;
	*)
		if [ "$arch" = arm64 ]; then
			say "no arm64 KVM here: booting inside the emulated arm64 test host (slower; see tests/README.md)"
			smp=1
		else
			say "this host's KVM is PVM (software nested KVM), which cannot boot Linux:"
			say "booting inside the emulated AMD-V test host (slower; see tests/README.md)"
			# two test-host CPUs for the guest's two vCPUs (one CPU can
			# freeze under a multi-vCPU Debian kernel: tests/README.md)
			smp=2
		fi
		exec tests/host/testhost.sh --arch "$arch" --smp "$smp" --timeout 86400 \
			--payload "$top" --interactive -- "${cmd[@]}" ;;
esac
