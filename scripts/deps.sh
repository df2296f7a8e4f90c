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
#   bench    what `make bench` needs (build, test host, kernel, tools)
#   test     what `make check` needs (all of the above + test tools)
#   --hint   install nothing: print one line naming the command to run when
#            something is missing (status 0 either way; plain `make` uses it)
#
# Installs only what is missing (dpkg-query), with apt-get (running
# `apt-get update` first when there are no package lists, and once more if
# the install fails on stale ones), after one line naming the packages.
# As root it installs; otherwise through `sudo -n` when that works without a
# password; otherwise it prints one line with the command to run and exits 1.
# Nothing is printed when everything is there. On a system without dpkg it
# says so in one line and exits 0 (the build will say what is missing).
set -euo pipefail
PROG=deps

# Packages by purpose. Why each is there, where it is not obvious:
#   kmod: depmod for fetch-kernels.sh; cpio, xz-utils, zstd, lz4: the guest
#   initramfs and taking the ELF vmlinux out of a bzImage; procps: pkill in
#   testhost.sh; acpica-tools: iasl/acpiexec check the ACPI tables (unit);
#   libclang-rt-dev: clang's ASan/UBSan and libFuzzer runtimes (a mere
#   Recommends of clang); llvm: llvm-symbolizer for readable sanitizer
#   reports; e2fsprogs: mkfs.ext4/debugfs (e2e, bench); iproute2: ip netns
#   and tuntap (e2e, bench); util-linux: unshare, setpriv (CLI tests),
#   blockdev; mount: losetup; dmsetup: the durability tests' fault injection;
#   libfdt-dev: the arm64 device tree (unit/test_arm64_fdt; the x86 library
#   does not link it); device-tree-compiler: dtc checks that tree (unit).
BUILD=(build-essential pkg-config zlib1g-dev liblzma-dev libzstd-dev liblz4-dev
       libseccomp-dev liburing-dev)
FIXTURES=(kmod cpio xz-utils zstd lz4)
TESTHOST=(qemu-system-x86 procps)
KERNEL=(linux-source-6.1 bc bison flex libelf-dev libssl-dev build-essential
        cpio kmod xz-utils)
BENCH=(python3 e2fsprogs iproute2)
TEST=(clang llvm libclang-rt-dev libcmocka-dev python3-pytest acpica-tools util-linux
      mount dmsetup libfdt-dev device-tree-compiler)

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

HINT=0
purposes=()
while [ $# -gt 0 ]; do
	case "$1" in
		--hint) HINT=1 ;;
		-h|--help) usage; exit 0 ;;
		build|run|testhost|kernel|bench|test) purposes+=("$1") ;;
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
		bench) add "${BUILD[@]}" "${FIXTURES[@]}" "${TESTHOST[@]}" "${KERNEL[@]}" "${BENCH[@]}" ;;
		test) add "${BUILD[@]}" "${FIXTURES[@]}" "${TESTHOST[@]}" "${KERNEL[@]}" "${BENCH[@]}" "${TEST[@]}" ;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	[ "$HINT" = 1 ] ||
		echo "$PROG: no dpkg/apt-get here (not Debian/Ubuntu): not checked; needed: ${wanted[*]}" >&2
	exit 0
fi

# The wanted packages dpkg does not list as installed.
# (dpkg-query fails when it has never heard of one of them: not an error.)
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${wanted[@]}" 2>/dev/null |
	awk '$NF == "installed" { print $1 }' || true)
missing=()
for p in "${wanted[@]}"; do
	grep -qxF -- "$p" <<<"$installed" || missing+=("$p")
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

echo "$PROG: installing ${missing[*]}" >&2
start=$SECONDS
# A fresh machine has no package lists; stale lists fail the download.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
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
