#!/usr/bin/env bash
# deps.sh: install the Debian/Ubuntu packages Vibe-VMM needs for a purpose.
# The one place that lists them: `make run`, `make check` (and so CI),
# `make bench` and the minimal-kernel build all come through here.
#
# Usage: scripts/deps.sh [--hint] PURPOSE...
#   build    what `make` alone needs (library + CLI)
#   run      what `make run` needs besides the test host (build + fixtures)
#   testhost the emulated AMD-V test host (qemu), for hosts whose KVM is PVM
#   kernel   building the minimal guest kernel from linux-source-6.1
#   cross-arm64     cross-building for arm64 (make ARCH=arm64
#                   CROSS_COMPILE=aarch64-linux-gnu-) and running its unit
#                   tests under qemu-aarch64; adds the dpkg architecture arm64
#   testhost-arm64  the emulated arm64 test host (qemu-system-aarch64)
#   bench    what `make bench` needs (build, test host, kernel, tools)
#   test     what `make check` needs (all of the above + test tools)
#   --hint   install nothing: print one line naming the command to run when
#            something is missing (status 0 either way; plain `make` uses it)
#
# Installs only what is missing (dpkg-query), with apt-get (running
# `apt-get update` first when there are no package lists, and once more if
# the install fails on stale ones), after one line naming the packages.
# Packages named PKG:ARCH are another dpkg architecture's (multiarch): when
# dpkg does not know ARCH yet, it is added first (dpkg --add-architecture,
# one line saying so) and the package lists are updated.
# As root it installs; otherwise through `sudo -n` when that works without a
# password; otherwise it prints one line with the command to run and exits 1.
# Nothing is printed when everything is there. On a system without dpkg it
# says so in one line and exits 0 (the build will say what is missing).
set -euo pipefail
PROG=deps

# Packages by purpose. Why each is there, where it is not obvious:
#   kmod: depmod for fetch-kernels.sh; cpio, xz-utils, zstd, lz4: the guest
#   initramfs and taking the ELF vmlinux out of a bzImage; procps: pkill in
#   testhost.sh; nvme-cli: tests/host/nvme-sriov.sh (run inside the test
#   host from this machine's /usr) brings up the emulated NVMe's VFs; acpica-tools: iasl/acpiexec check the ACPI tables (unit);
#   libclang-rt-dev: clang's ASan/UBSan and libFuzzer runtimes (a mere
#   Recommends of clang); llvm: llvm-symbolizer for readable sanitizer
#   reports; e2fsprogs: mkfs.ext4/debugfs (e2e, bench); iproute2: ip netns
#   and tuntap (e2e, bench); util-linux: unshare, setpriv (CLI tests),
#   blockdev; mount: losetup; dmsetup: the durability tests' fault injection;
#   libfdt-dev: the arm64 device tree (unit/test_arm64_fdt; the x86 library
#   does not link it); device-tree-compiler: dtc checks that tree (unit).
#   fio, iperf3: the bench guests' load generators (tests/fixtures/
#   make-bench-tools.sh copies them and their libraries into the bench
#   initramfs); iperf3 -s is also the host side of the network benchmark.
#   libjansson-dev: the API socket's and --config-file's JSON (cli/api/):
#   packaged, small, a strict parser (rejects trailing garbage, duplicate
#   keys on request, bad UTF-8), no hand-written JSON to fuzz and maintain.
#   CROSS_ARM64: the arm64 libraries the library links, as :arm64 packages.
#   libfdt-dev:arm64 is not co-installable with the amd64 one (it is not
#   Multi-Arch: same), so the cross build uses the amd64 libfdt-dev headers
#   (arch-independent) and libfdt1:arm64's library, which has no libfdt.so
#   link: link it as -L/usr/lib/aarch64-linux-gnu -l:libfdt.so.1. (A static
#   arm64 link needs libfdt.a: `apt-get download libfdt-dev:arm64` and
#   `dpkg-deb -x` it into a private directory for -L; the others ship .a.)
#   libc6:arm64 (a dependency of those anyway): with them in
#   /usr/lib/aarch64-linux-gnu, the arm64 test host mounts that directory and
#   runs dynamically linked cross-built programs as they are.
#   libcmocka-dev:arm64 (Multi-Arch: same, beside the amd64 one): the arm64
#   unit and guest tests (make ARCH=arm64 ... tests) link it, and
#   libjansson-dev(:arm64) too (they parse vm_format_metrics' JSON line;
#   the library writes it with snprintf and does not link jansson).
#   qemu-user: qemu-aarch64 runs the arm64 unit tests (binfmt_misc may be
#   missing: call it explicitly, qemu-aarch64 -L /usr/aarch64-linux-gnu).
#   TESTHOST_ARM64: qemu-system-arm holds qemu-system-aarch64; the arm64
#   kernel, busybox and initramfses are the FIXTURES' (apt-get download of
#   :arm64 packages needs the arm64 lists: fetch-kernels.sh --arch arm64 calls
#   `deps.sh cross-arm64` for that).
BUILD=(build-essential pkg-config zlib1g-dev liblzma-dev libzstd-dev liblz4-dev
       libseccomp-dev liburing-dev nettle-dev libjansson-dev)
# a native arm64 build links libfdt (the arm64 machine's device tree)
[ "$(uname -m)" != aarch64 ] || BUILD+=(libfdt-dev)
FIXTURES=(kmod cpio xz-utils zstd lz4)
TESTHOST=(qemu-system-x86 procps nvme-cli)
CROSS_ARM64=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libfdt-dev
             zlib1g-dev:arm64 liblzma-dev:arm64 libzstd-dev:arm64 liblz4-dev:arm64
             libseccomp-dev:arm64 liburing-dev:arm64 nettle-dev:arm64 libfdt1:arm64 libc6:arm64
             libcmocka-dev:arm64 libjansson-dev:arm64)
TESTHOST_ARM64=(qemu-system-arm procps)
KERNEL=(linux-source-6.1 bc bison flex libelf-dev libssl-dev build-essential
        cpio kmod xz-utils)
BENCH=(python3 e2fsprogs iproute2 fio iperf3)
TEST=(clang llvm libclang-rt-dev libcmocka-dev python3-pytest acpica-tools util-linux
      mount dmsetup libfdt-dev device-tree-compiler libjansson-dev)

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

HINT=0
purposes=()
while [ $# -gt 0 ]; do
	case "$1" in
		--hint) HINT=1 ;;
		-h|--help) usage; exit 0 ;;
		build|run|testhost|kernel|cross-arm64|testhost-arm64|bench|test) purposes+=("$1") ;;
		*) usage >&2; die "unknown argument: $1" ;;
	esac
	shift
done
[ ${#purposes[@]} -gt 0 ] || { usage >&2; die "no PURPOSE given"; }

# The packages of the purposes asked for, each once, in order.
wanted=()
add() {
	local p q
	for p in "$@"; do
		for q in "${wanted[@]}"; do [ "$q" != "$p" ] || continue 2; done
		wanted+=("$p")
	done
}
for purpose in "${purposes[@]}"; do
	case "$purpose" in
		build) add "${BUILD[@]}" ;;
		run) add "${BUILD[@]}" "${FIXTURES[@]}" ;;
		testhost) add "${FIXTURES[@]}" "${TESTHOST[@]}" ;;
		kernel) add "${KERNEL[@]}" ;;
		cross-arm64) add "${CROSS_ARM64[@]}" ;;
		testhost-arm64) add "${FIXTURES[@]}" "${TESTHOST_ARM64[@]}" ;;
		bench) add "${BUILD[@]}" "${FIXTURES[@]}" "${TESTHOST[@]}" "${KERNEL[@]}" "${BENCH[@]}" ;;
		test) add "${BUILD[@]}" "${FIXTURES[@]}" "${TESTHOST[@]}" "${KERNEL[@]}" "${BENCH[@]}" "${TEST[@]}"
		      add "${CROSS_ARM64[@]}" "${TESTHOST_ARM64[@]}" ;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	[ "$HINT" = 1 ] ||
		echo "$PROG: no dpkg/apt-get here (not Debian/Ubuntu): not checked; needed: ${wanted[*]}" >&2
	exit 0
fi

# The wanted packages dpkg does not list as installed, as NAME:ARCH, where a
# plain NAME is satisfied by the native architecture's or an :all package.
# (dpkg-query fails when it has never heard of one of them: not an error.)
native=$(dpkg --print-architecture)
installed=$(dpkg-query -W -f='${Package}:${Architecture} ${Status}\n' "${wanted[@]}" 2>/dev/null |
	awk '$NF == "installed" { print $1 }' || true)
missing=() foreign=()
for p in "${wanted[@]}"; do
	case "$p" in
		*:*) grep -qxF -- "$p" <<<"$installed" || missing+=("$p") ;;
		*) grep -qxF -e "$p:$native" -e "$p:all" <<<"$installed" || missing+=("$p") ;;
	esac
done
# the other dpkg architectures the missing packages need, each once
for p in "${missing[@]}"; do
	case "$p" in *:*) ;; *) continue ;; esac
	a=${p##*:}
	[ "$a" != "$native" ] || continue
	case " ${foreign[*]} " in *" $a "*) ;; *) foreign+=("$a") ;; esac
done
[ ${#missing[@]} -gt 0 ] || exit 0

# How the user can install them: relative to the current directory when the
# script is below it (make runs from the top of the tree).
self=$0
case "$self" in "$PWD"/*) self=${self#"$PWD"/} ;; esac
cmd="$self ${purposes[*]}"
if [ "$(id -u)" = 0 ]; then
	how="run '$cmd'"
elif command -v sudo >/dev/null 2>&1; then
	how="run 'sudo $cmd'"
else
	how="run '$cmd' as root"
fi

if [ "$HINT" = 1 ]; then
	echo "$PROG: missing ${missing[*]}: $how (Debian/Ubuntu)" >&2
	exit 0
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO=(sudo -n)
	else
		echo "$PROG: missing ${missing[*]}: $how first" >&2
		exit 1
	fi
fi

# (another apt-get running, e.g. a second `make check`: wait for it)
apt() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
LOG=$(mktemp "${TMPDIR:-/tmp}/vibevmm-deps.XXXXXX")
trap 'rm -f "$LOG"' EXIT
update() { apt update -q >>"$LOG" 2>&1; }
install() { apt install -y -q --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; }

start=$SECONDS
need_update=0
# A fresh machine has no package lists; stale lists fail the download.
compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || need_update=1
for a in "${foreign[@]}"; do
	if ! dpkg --print-foreign-architectures | grep -qxF "$a"; then
		echo "$PROG: adding the dpkg architecture $a (dpkg --add-architecture $a) for its packages" >&2
		"${SUDO[@]}" dpkg --add-architecture "$a"
		need_update=1
	fi
	# added earlier but never updated since: no lists of its packages yet
	compgen -G "/var/lib/apt/lists/*_binary-${a}_Packages*" >/dev/null || need_update=1
done
echo "$PROG: installing ${missing[*]}" >&2
if [ "$need_update" = 1 ]; then
	update || true
fi
if ! install; then
	# (an update that fails for one unrelated source may still help)
	update || true
	if ! install; then
		tail -n 20 "$LOG" | sed "s/^/$PROG: | /" >&2
		die "apt-get install failed (the end of its output above)"
	fi
fi
echo "$PROG: installed in $((SECONDS - start)) s" >&2
