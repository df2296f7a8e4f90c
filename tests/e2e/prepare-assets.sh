#!/usr/bin/env bash
# Put the e2e guests into build/e2e (or $VIBEVMM_E2E_ASSETS): Debian's cloud
# and generic kernels, the minimal microvm kernel (built from Debian's
# linux-source on first use, ~5 CPU-minutes), and an initramfs for each.
# Everything is cached in ${VIBEVMM_CACHE:-~/.cache/vibevmm}; this only copies.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
assets=${VIBEVMM_E2E_ASSETS:-$top/build/e2e}
cache=${VIBEVMM_CACHE:-$HOME/.cache/vibevmm}
mkdir -p "$assets"
"$top/tests/fixtures/fetch-kernels.sh" >/dev/null
"$top/tests/fixtures/build-microvm-kernel.sh" >/dev/null
copy() { cmp -s "$1" "$2" 2>/dev/null || cp "$1" "$2"; }
copy "$cache/kernels/cloud/vmlinuz" "$assets/cloud.bzImage"
copy "$cache/kernels/generic/vmlinuz" "$assets/generic.bzImage"
copy "$cache/kernels/generic/vmlinux" "$assets/generic.vmlinux"
copy "$cache/kernels/microvm/vmlinux" "$assets/microvm.vmlinux"
copy "$cache/kernels/microvm/bzImage" "$assets/microvm.bzImage"
for kind in none cloud generic; do
	"$top/tests/fixtures/make-initramfs.sh" "$kind" "$assets/initrd-$kind.cpio.gz" >/dev/null
done
echo "prepare-assets: guests ready in $assets" >&2
