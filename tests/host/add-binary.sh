#!/bin/bash
# add-binary.sh: make a program of this machine runnable inside the test host
# without the host's /usr (testhost.sh --no-host-usr).
#
# Usage: tests/host/add-binary.sh BIN PAYLOADDIR
#   BIN         a path, or a command name looked up in PATH
#   PAYLOADDIR  the directory given to testhost.sh --payload
#
# A static BIN is copied to PAYLOADDIR/bin/. A dynamically linked one goes to
# PAYLOADDIR/libexec/, its shared libraries and ld.so (from ldd) to
# PAYLOADDIR/lib/, and PAYLOADDIR/bin/NAME becomes a sh wrapper that runs it
# through that ld.so with --library-path (so /proc/self/exe is ld.so: programs
# that re-execute themselves through it need the host's /usr instead).
# Libraries loaded with dlopen() are not found by ldd: add them by hand.
# An arm64 BIN (for testhost.sh --arch arm64 --no-host-usr) works the same:
# its libraries are this machine's :arm64 ones, listed by arm64's ld.so
# --list under qemu-aarch64 (scripts/deps.sh cross-arm64).
# Prints the path of the runnable file.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/lib.sh
. "$(dirname "$0")/../fixtures/lib.sh"

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -eq 2 ] || { usage >&2; exit 2; }

BIN=$1
DIR=$2
case "$BIN" in
    */*) ;;
    *) BIN=$(command -v "$BIN") || die "$1: not found in PATH" ;;
esac
if [ ! -f "$BIN" ] || [ ! -x "$BIN" ]; then die "$BIN: not an executable file"; fi
[ "$(elf_machine "$BIN")" = aarch64 ] || need ldd
[ -d "$DIR" ] || die "$DIR: not a directory"
NAME=$(basename "$BIN")
mkdir -p "$DIR/bin"

# cp_atomic SRC DEST: copy through a temp file, so that a concurrent run never
# sees half a file.
cp_atomic() {
    local tmp
    tmp=$(mktemp "$2.XXXXXX")
    cp -L "$1" "$tmp"
    chmod --reference="$1" "$tmp" 2>/dev/null || true
    mv -f "$tmp" "$2"
}

# list_libs: the libraries BIN loads, in ldd's format
ARM64_LDSO=/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1
if [ "$(elf_machine "$BIN")" = aarch64 ] && [ "$(uname -m)" != aarch64 ]; then
    need qemu-aarch64 readelf
    [ -x "$ARM64_LDSO" ] || die "no arm64 libc here ($ARM64_LDSO): scripts/deps.sh cross-arm64"
    # (arm64's ld.so --list crashes on a static program: ask readelf first)
    list_libs() {
        readelf -l "$BIN" | grep -q 'program interpreter' || return 1
        qemu-aarch64 "$ARM64_LDSO" --list "$BIN"
    }
else
    list_libs() { ldd "$BIN"; }
fi

if ! list_libs >/dev/null 2>&1; then
    # "not a dynamic executable": static
    cp_atomic "$BIN" "$DIR/bin/$NAME"
    log "$NAME: static, copied to $DIR/bin/$NAME"
    printf '%s\n' "$DIR/bin/$NAME"
    exit 0
fi

mkdir -p "$DIR/lib" "$DIR/libexec"
interp=
n=0
while read -r line; do
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
    # "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)";
    # arm64's ld.so: "/lib/ld-linux-aarch64.so.1 => /usr/lib/... (0x...)"
    case "$line" in
        *"=> not found"*) die "$NAME: ${line%% *} not found" ;;
        /*" => /"*) lib=${line#*=> }; lib=${lib%% (*}; interp=$lib ;;
        *" => /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
        /*) lib=${line%% (*}; interp=$lib ;;
        *) continue ;;
    esac
    cp_atomic "$lib" "$DIR/lib/$(basename "$lib")"
    n=$((n + 1))
done < <(list_libs)
[ -n "$interp" ] || die "$NAME: ldd named no dynamic loader"
cp_atomic "$BIN" "$DIR/libexec/$NAME"

tmp=$(mktemp "$DIR/bin/$NAME.XXXXXX")
cat > "$tmp" <<EOF
#!/bin/sh
# written by tests/host/add-binary.sh: $BIN with its own ld.so and libraries
here=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$here/lib/$(basename "$interp")" --library-path "\$here/lib" --argv0 "\$0" "\$here/libexec/$NAME" "\$@"
EOF
chmod 755 "$tmp"
mv -f "$tmp" "$DIR/bin/$NAME"
log "$NAME: dynamic, $n libraries in $DIR/lib, wrapper $DIR/bin/$NAME"
printf '%s\n' "$DIR/bin/$NAME"
