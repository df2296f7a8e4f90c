#!/usr/bin/env bash
# `make run`: boot Debian's cloud kernel with a busybox initramfs to an
# interactive shell. First use installs the packages it needs
# (scripts/deps.sh run), fetches the kernel (apt-get download) and builds the
# initramfs; both are cached in ${VIBEVMM_CACHE:-~/.cache/vibevmm}.
# On a host whose /dev/kvm is hardware KVM the guest runs directly; on a
# PVM (software nested KVM) host it runs inside the emulated AMD-V test host.
# Extra arguments go to vibevmm (e.g. --cpus 4 --mem 1G).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
say() { echo "make run: $*" >&2; }

where=$(tests/host/run-direct-or-host.sh --where 2>/dev/null || true)
# the packages (scripts/deps.sh); the test host's qemu only when it is needed
case "$where" in direct*) purposes=(run) ;; *) purposes=(run testhost) ;; esac
scripts/deps.sh "${purposes[@]}"

say "building vibevmm"
make -s all
say "fetching Debian's kernels (cached after the first time)"
tests/fixtures/fetch-kernels.sh >/dev/null
mkdir -p build/run
cache=${VIBEVMM_CACHE:-$HOME/.cache/vibevmm}
cmp -s "$cache/kernels/cloud/vmlinuz" build/run/vmlinuz 2>/dev/null || cp "$cache/kernels/cloud/vmlinuz" build/run/vmlinuz
say "building the busybox initramfs"
tests/fixtures/make-initramfs.sh cloud build/run/initrd.cpio.gz >/dev/null

cmd=(bin/vibevmm --kernel build/run/vmlinuz --initrd build/run/initrd.cpio.gz
     --cmdline "console=ttyS0 quiet pci=off vibevmm.shell=1 vibevmm.verbose=0"
     --mem 512M --cpus 2 "$@")
say "kernel $(cat "$cache/kernels/cloud/version" 2>/dev/null); Ctrl-A x quits, 'poweroff' in the guest ends it"
case "$where" in
	direct*)
		say "booting on this host's KVM"
		exec "${cmd[@]}" ;;
	*)
		say "this host's KVM is PVM (software nested KVM), which cannot boot Linux:"
		say "booting inside the emulated AMD-V test host (slower; see tests/README.md)"
		# two test-host CPUs for the guest's two vCPUs (one CPU can freeze
		# under a multi-vCPU Debian kernel: tests/README.md)
		exec tests/host/testhost.sh --smp 2 --timeout 86400 --payload "$top" --interactive -- "${cmd[@]}" ;;
esac
