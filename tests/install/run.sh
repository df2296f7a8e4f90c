#!/usr/bin/env bash
# `make install` into a temporary prefix, then build and run a program
# outside the tree with pkg-config, against the shared and the static library.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
make -s -C "$top" install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
for h in hypervisor.h vm.h vcpu.h mm.h devices.h boot.h machine.h arch_x86_64.h arch_arm64.h utils.h; do
	[ -f "$prefix/include/vibevmm/$h" ] || { echo "install: missing header $h"; exit 1; }
done
[ -x "$prefix/bin/vibevmm" ] || { echo "install: missing bin/vibevmm"; exit 1; }
cd "$prefix"
# shellcheck disable=SC2046 # pkg-config output is meant to be split
cc -std=gnu11 -Wall -Wextra -Werror -o prog-shared "$top/tests/install/prog.c" $(pkg-config --cflags --libs vibevmm)
# shellcheck disable=SC2046
cc -std=gnu11 -Wall -Wextra -Werror -o prog-static "$top/tests/install/prog.c" $(pkg-config --cflags vibevmm) \
	"$prefix/lib/libvibevmm.a" $(pkg-config --libs-only-other --static vibevmm | sed 's/-lvibevmm//') \
	$(pkg-config --static --libs vibevmm | sed 's/-L[^ ]*//; s/-lvibevmm//')
for p in prog-shared prog-static; do
	set +e
	out=$(LD_LIBRARY_PATH="$prefix/lib" "./$p"); rc=$?
	set -e
	if [ $rc -eq 77 ]; then echo "install: $p built; no KVM to run it"; continue; fi
	[ "$out" = "exit=hlt rax=42" ] || { echo "install: $p printed '$out' (rc $rc)"; exit 1; }
	echo "install: $p ok ($out)"
done
