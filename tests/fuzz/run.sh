#!/usr/bin/env bash
# Build every libFuzzer target (tests/fuzz/fuzz_*.c) with clang and run each
# for SECONDS (default 20) on its seed corpus (tests/fuzz/corpus/<name>/).
# The sources a target needs are listed on its "FUZZ_SRCS:" comment line.
# Usage: tests/fuzz/run.sh [SECONDS]   (make fuzz runs them longer)
set -u
secs=${1:-20}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
out=build/fuzz
mkdir -p "$out"
if ! command -v clang >/dev/null; then
	echo "fuzz: clang not installed; skipping"
	[ -n "${RESULTS:-}" ] && echo "0 0 1" >> "$RESULTS"
	exit 0
fi
libs="$(pkg-config --libs liblz4 libzstd liblzma zlib nettle 2>/dev/null || echo -llz4 -lzstd -llzma -lz -lnettle) $(pkg-config --libs jansson 2>/dev/null || echo -ljansson)"
status=0
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	corpus_name=${name#fuzz_}
	srcs=$(sed -n 's/.*FUZZ_SRCS: *//p' "$src" | head -1)
	echo "== $name (${secs}s)"
	# shellcheck disable=SC2086 # word splitting of the source list is wanted
	if ! clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Iinclude -I. \
		-o "$out/$name" "$src" $srcs $libs; then
		echo "fuzz: $name does not build"
		status=1
		[ -z "${CHECK_FAILURES:-}" ] || echo "fuzz: $name does not build" >> "$CHECK_FAILURES"
		[ -n "${RESULTS:-}" ] && echo "0 1 0" >> "$RESULTS"
		continue
	fi
	work="$out/corpus-$corpus_name"
	mkdir -p "$work"
	if "$out/$name" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$out/$name-" "$work" "tests/fuzz/corpus/$corpus_name" \
		> "$out/$name.log" 2>&1; then
		grep -E '^stat::number_of_executed_units|^Done' "$out/$name.log" | tr '\n' ' '
		echo
		[ -n "${RESULTS:-}" ] && echo "1 0 0" >> "$RESULTS"
	else
		tail -40 "$out/$name.log"
		echo "fuzz: $name found a crash (artifact in $out/)"
		status=1
		[ -z "${CHECK_FAILURES:-}" ] || echo "fuzz: $name found a crash" >> "$CHECK_FAILURES"
		[ -n "${RESULTS:-}" ] && echo "0 1 0" >> "$RESULTS"
	fi
done
exit $status
