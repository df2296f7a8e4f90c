#!/bin/bash
# make-host-initramfs.sh: build (or reuse) the test host's initramfs.
#
# Usage: tests/host/make-host-initramfs.sh [--force]
#
# Prints the path of the initramfs ($CACHE/testhost/host-initramfs.cpio.gz).
# It is rebuilt when one of its inputs changed: this script, host-init.sh,
# testhost-check.sh, lib.sh, the generic kernel package, busybox-static.
# Contents: static busybox (applets in /bin and /sbin), /init (host-init.sh),
# /bin/testhost-check, the generic kernel's modules for KVM (irqbypass, ccp,
# kvm, kvm-amd), tun, loop, bridge, virtio-pci, virtio-blk + ext4,
# device-mapper with its flakey target (fault injection) and 9p
# (9pnet, 9pnet_virtio, netfs, fscache, 9p), decompressed and listed in
# dependency order in /modules/load-order. /usr is empty and /lib, /lib64 link
# into it, so that the outer host's /usr mounted there (testhost.sh's default)
# makes its dynamically linked programs work.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
esac
need cpio gzip sha256sum flock

# Loaded at boot, in dependency order: KVM, tun and loop (their /dev nodes
# only appear once they are loaded), virtio-pci and 9p for the payload.
BOOT_MODULES=(
    irqbypass ccp kvm kvm-amd
    tun loop
    virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    9pnet 9pnet_virtio netfs fscache 9p
)
# Shipped too, for `modprobe NAME` (busybox modprobe with modules.dep and
# modules.alias of the shipped modules, so the kernel auto-loads them too:
# `mount -t ext4` loads ext4).
EXTRA_MODULES=(
    bridge veth vhost_net
    virtio_blk virtio_net
    crc32c_generic crc16 mbcache jbd2 ext4
    dm-mod dm-flakey
)

HERE=$VIBEVMM_SRC/tests/host
FIX=$VIBEVMM_SRC/tests/fixtures
OUT=$CACHE/testhost/host-initramfs.cpio.gz

if [ ! -s "$CACHE/kernels/generic/version" ] || [ ! -x "$CACHE/busybox" ]; then
    log "fetching kernels first"
    "$FIX/fetch-kernels.sh" >/dev/null
fi

inputs_hash() {
    {
        cat "$0" "$HERE/host-init.sh" "$HERE/testhost-check.sh" "$FIX/lib.sh"
        cat "$CACHE/kernels/generic/package" "$CACHE/kernels/generic/version" "$CACHE/busybox.package"
    } | sha256sum | cut -d' ' -f1
}

build() {
    local hash stage r kver moddir m n applet tmp_out mods
    hash=$(inputs_hash)
    if [ "$FORCE" = 0 ] && [ -s "$OUT" ] && [ "$(cat "$OUT.inputs" 2>/dev/null)" = "$hash" ]; then
        return 0
    fi
    kver=$(cat "$CACHE/kernels/generic/version")
    moddir=$CACHE/kernels/generic/lib/modules/$kver
    log "building the test-host initramfs ($kver)"
    stage=$(mktemp -d "${TMPDIR:-/tmp}/vibevmm-hostinitramfs.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the locals are gone at exit
    trap "rm -rf '$stage'" EXIT
    r=$stage/root
    mkdir -p "$r"/{bin,sbin,usr,etc,proc,sys,dev,tmp,run,root,payload,lib/modules}
    chmod 1777 "$r/tmp"
    # The outer host's /usr goes on /usr: its programs find ld.so and libc
    # through these (Debian is merged-/usr); /lib itself holds the modules.
    ln -s ../usr/lib/x86_64-linux-gnu "$r/lib/x86_64-linux-gnu"
    ln -s usr/lib64 "$r/lib64"

    cp "$CACHE/busybox" "$r/bin/busybox"
    chmod 755 "$r/bin/busybox"
    n=0
    while IFS= read -r applet; do
        applet=${applet#/}
        applet=${applet#usr/}   # keep /usr free for the host's /usr
        case "$applet" in bin/busybox|"") continue ;; esac
        if [ ! -e "$r/$applet" ]; then
            ln -s /bin/busybox "$r/$applet"
            n=$((n + 1))
        fi
    done < <("$r/bin/busybox" --list-full)
    [ "$n" -gt 50 ] || die "busybox --list-full gave only $n applets"

    # /lib/modules/KVER keeps the kernel's layout (modprobe wants it);
    # boot-order lists the modules /init loads.
    local dst=$r/lib/modules/$kver all=()
    mkdir -p "$dst"
    mapfile -t mods < <(resolve_modules "$moddir" "${BOOT_MODULES[@]}")
    for m in "${mods[@]}"; do printf '%s\n' "${m%.*}.ko"; done > "$dst/boot-order"
    mapfile -t all < <(resolve_modules "$moddir" "${BOOT_MODULES[@]}" "${EXTRA_MODULES[@]}" 2>/dev/null)
    for m in "${all[@]}"; do
        mkdir -p "$dst/$(dirname "$m")"
        copy_module "$moddir/$m" "$dst/${m%.ko*}.ko"
    done
    # modules.dep and modules.alias restricted to the shipped modules
    # (.ko.xz names become .ko: the files were decompressed).
    printf '%s\n' "${all[@]}" | sed 's/\.ko\..*$/.ko/' | awk '
        NR == FNR { have[$1] = 1; split($1, p, "/"); n = p[length(p)]; sub(/\.ko$/, "", n); gsub(/-/, "_", n); names[n] = 1; next }
        FILENAME ~ /modules\.dep$/ { gsub(/\.ko\.(xz|gz|zst)/, ".ko"); k = $1; sub(/:$/, "", k); if (k in have) print > DEP; next }
        { n = $NF; gsub(/-/, "_", n); if (n in names) print > ALIAS }
    ' DEP="$dst/modules.dep" ALIAS="$dst/modules.alias" - "$moddir/modules.dep" "$moddir/modules.alias"
    log "boot: $(sed 's|.*/||; s/\.ko$//' "$dst/boot-order" | tr '\n' ' ')"
    log "on demand (modprobe): $(printf '%s\n' "${all[@]}" | sed 's|.*/||; s/\.ko.*$//' | grep -vxF -f <(sed 's|.*/||; s/\.ko$//' "$dst/boot-order") | tr '\n' ' ')"

    install -m 755 "$HERE/host-init.sh" "$r/init"
    install -m 755 "$HERE/testhost-check.sh" "$r/bin/testhost-check"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
    printf 'root:x:0:\n' > "$r/etc/group"
    printf '127.0.0.1 localhost testhost\n' > "$r/etc/hosts"
    mknod -m 600 "$r/dev/console" c 5 1 2>/dev/null || true

    find "$r" -exec touch -h -d @0 {} +
    mkdir -p "$(dirname "$OUT")"
    tmp_out=$(mktemp "$OUT.XXXXXX")
    (cd "$r" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet | gzip -6n) > "$tmp_out"
    chmod 644 "$tmp_out"
    mv -f "$tmp_out" "$OUT"
    printf '%s\n' "$hash" > "$OUT.inputs.tmp.$$"
    mv -f "$OUT.inputs.tmp.$$" "$OUT.inputs"
    rm -rf "$stage"
    trap - EXIT
    log "wrote $OUT ($(du -k "$OUT" | cut -f1) KiB)"
}

mkdir -p "$CACHE/testhost"
with_lock host-initramfs build
printf '%s\n' "$OUT"
