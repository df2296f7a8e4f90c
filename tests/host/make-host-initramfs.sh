#!/bin/bash
# make-host-initramfs.sh: build (or reuse) the test host's initramfs.
#
# Usage: tests/host/make-host-initramfs.sh [--force] [--arch x86_64|arm64]
#
# Prints the path of the initramfs ($CACHE/testhost/host-initramfs.cpio.gz;
# host-initramfs-arm64.cpio.gz for the arm64 test host).
# It is rebuilt when one of its inputs changed: this script, host-init.sh,
# testhost-check.sh, lib.sh, the kernel package, busybox-static.
# Contents: static busybox (applets in /bin and /sbin), /init (host-init.sh),
# /bin/testhost-check, the generic kernel's modules for KVM (irqbypass, ccp,
# kvm, kvm-amd), tun, loop, bridge, virtio-pci, virtio-blk + ext4,
# device-mapper with its flakey target (fault injection) and 9p
# (9pnet, 9pnet_virtio, netfs, fscache, 9p), decompressed and listed in
# dependency order in /modules/load-order. /usr is empty and /lib, /lib64 link
# into it, so that the outer host's /usr mounted there (testhost.sh's default)
# makes its dynamically linked programs work.
# arm64: Debian's arm64 kernel (KVM built in) and busybox-static:arm64; boot
# modules tun, loop, virtio-pci and 9p, the same ones on demand; an empty
# /usr/lib/aarch64-linux-gnu, where testhost.sh mounts this machine's
# (libc6:arm64 and the other :arm64 libraries of `deps.sh cross-arm64`),
# with /lib/aarch64-linux-gnu and the dynamic loader's standard name
# /lib/ld-linux-aarch64.so.1 pointing there: programs cross-built here run
# inside as they are.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
FORCE=0 ARCH=x86_64
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1; shift ;;
        --arch) ARCH=${2:?--arch needs x86_64 or arm64}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
need cpio gzip sha256sum flock

# Loaded at boot, in dependency order: KVM (x86: modules; arm64: built in),
# tun and loop (their /dev nodes only appear once they are loaded),
# virtio-pci and 9p for the payload.
case "$ARCH" in
    x86_64|amd64)
        ARCH=x86_64 KIND=generic BUSYBOX=$CACHE/busybox
        OUT=$CACHE/testhost/host-initramfs.cpio.gz
        BOOT_MODULES=(irqbypass ccp kvm kvm-amd) ;;
    arm64|aarch64)
        ARCH=arm64 KIND=arm64 BUSYBOX=$CACHE/busybox-arm64
        OUT=$CACHE/testhost/host-initramfs-arm64.cpio.gz
        BOOT_MODULES=() ;;
    *) die "--arch takes x86_64 or arm64, not '$ARCH'" ;;
esac
BOOT_MODULES+=(
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
    vfio vfio_iommu_type1 vfio-pci nvme
)

HERE=$VIBEVMM_SRC/tests/host
FIX=$VIBEVMM_SRC/tests/fixtures
KDIR=$CACHE/kernels/$KIND

if [ ! -s "$KDIR/version" ] || [ ! -x "$BUSYBOX" ]; then
    log "fetching kernels first"
    "$FIX/fetch-kernels.sh" --arch "$ARCH" >/dev/null
fi

inputs_hash() {
    {
        cat "$0" "$HERE/host-init.sh" "$HERE/testhost-check.sh" "$FIX/lib.sh"
        cat "$KDIR/package" "$KDIR/version" "$BUSYBOX.package"
    } | sha256sum | cut -d' ' -f1
}

build() {
    local hash stage r kver moddir m n applet tmp_out mods
    hash=$(inputs_hash)
    if [ "$FORCE" = 0 ] && [ -s "$OUT" ] && [ "$(cat "$OUT.inputs" 2>/dev/null)" = "$hash" ]; then
        return 0
    fi
    kver=$(cat "$KDIR/version")
    moddir=$KDIR/lib/modules/$kver
    log "building the test-host initramfs ($kver)"
    stage=$(mktemp -d "${TMPDIR:-/tmp}/vibevmm-hostinitramfs.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the locals are gone at exit
    trap "rm -rf '$stage'" EXIT
    r=$stage/root
    mkdir -p "$r"/{bin,sbin,usr,etc,proc,sys,dev,tmp,run,root,payload,lib/modules}
    chmod 1777 "$r/tmp"
    if [ "$ARCH" = x86_64 ]; then
        # The outer host's /usr goes on /usr: its programs find ld.so and
        # libc through these (Debian is merged-/usr); /lib itself holds the
        # modules.
        ln -s ../usr/lib/x86_64-linux-gnu "$r/lib/x86_64-linux-gnu"
        ln -s usr/lib64 "$r/lib64"
    else
        # The mount point of the arm64 libraries (in ld.so's default search
        # path, like /lib/aarch64-linux-gnu) and the dynamic loader's
        # standard name.
        mkdir -p "$r/usr/lib/aarch64-linux-gnu"
        ln -s ../usr/lib/aarch64-linux-gnu "$r/lib/aarch64-linux-gnu"
        ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$r/lib/ld-linux-aarch64.so.1"
    fi

    cp "$BUSYBOX" "$r/bin/busybox"
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
    done < <(busybox_applets "$r/bin/busybox")
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
with_lock "host-initramfs-$ARCH" build
printf '%s\n' "$OUT"
