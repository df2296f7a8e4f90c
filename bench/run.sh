#!/bin/bash
# bench/run.sh: Vibe-VMM benchmarks side by side with QEMU microvm (`make bench`).
#
# Usage: bench/run.sh [--reps N] [--only a,b,c] [--json FILE] [--png FILE] [--quick]
#        bench/run.sh --smoke
#   --reps N     runs per VMM and case (default 5; disk, net: at most 3)
#   --only LIST  some of: boot,startup,exits,memory,disk,net,density,snapshot,transport,arm64
#                (default all; arm64: boot and exit cost inside the arm64
#                test host, vibevmm vs qemu-system-aarch64 -M virt)
#   --json FILE  results (default bench/results/latest.json; the table goes
#                to the same name with .txt)
#   --png FILE   also a gnuplot bar chart of the ratios (installs gnuplot-nox)
#   --quick      3 runs, fewer boot cases, smaller disk/net sizes, no density
#   --smoke      every benchmark once with tiny sizes, results in
#                build/bench/smoke.json: checks that the scripts work
#                (`make check`); nothing is asserted on timings
#
# Installs the packages it needs (scripts/deps.sh bench: QEMU included),
# builds what it needs (make, bench/bench.mk, tests/e2e/prepare-assets.sh),
# then runs bench/bench.py:
# directly on a host with hardware KVM; on a PVM host (software KVM that cannot
# boot Linux) the exit-cost benchmark runs here too and everything runs inside
# the emulated AMD-V test host (tests/host/run-direct-or-host.sh, the
# repository as its payload). arm64 always runs inside the arm64 test host
# (bench/arm64-inside.sh; bench/README.md). The output says where each table
# was measured.
#
# Exit status: 0; 1 when a benchmark could not run (an error, not a slow
# timing) or a script failed; 77 with --smoke when nothing could run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PROG=bench
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }

REPS=5 ONLY='' JSON='' PNG='' MODE=full
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --json) JSON=${2:?}; shift 2 ;;
        --png) PNG=${2:?}; shift 2 ;;
        --quick) MODE=quick; shift ;;
        --smoke) MODE=smoke; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$REPS" in ''|*[!0-9]*|0) die "--reps takes a positive number" ;; esac
if [ "$MODE" = quick ] && [ "$REPS" -gt 3 ]; then REPS=3; fi
if [ "$MODE" = smoke ]; then
    REPS=1
    : "${JSON:=build/bench/smoke.json}"
fi
: "${JSON:=bench/results/latest.json}"
case "$JSON" in /*) ;; *) JSON=$top/$JSON ;; esac
case "$PNG" in ''|/*) ;; *) PNG=$top/$PNG ;; esac
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
for b in ${ONLY//,/ }; do
    case "$b" in
        boot|startup|exits|memory|disk|net|density|snapshot|transport|arm64) ;;
        *) die "unknown benchmark '$b' (have: boot,startup,exits,memory,disk,net,density,snapshot,transport,arm64)" ;;
    esac
done
# the x86 benchmarks (all but arm64)
X86=0
for b in boot startup exits memory disk net density snapshot transport; do want "$b" && X86=1; done
PY=/usr/bin/python3
BB=build/bench
MODEARGS=()
[ "$MODE" = full ] || MODEARGS=("--$MODE")
COMMAND="bench/run.sh"
[ "$MODE" = full ] || COMMAND+=" --$MODE"
[ "$REPS" = 5 ] || [ "$MODE" != full ] || COMMAND+=" --reps $REPS"
[ -z "$ONLY" ] || COMMAND+=" --only $ONLY"

apt_install() { # PKG: install a Debian package (root only)
    [ "$(id -u)" = 0 ] || { log "not root: cannot apt-get install $1"; return 1; }
    log "installing $1 with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$1" >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$1" >&2; }
}

# ---- packages, build
scripts/deps.sh bench || exit 1
log "building vibevmm and the benchmark programs"
make -s all >&2 || die "make failed"
[ "$X86" = 0 ] || make -s -f bench/bench.mk all >&2 || die "building bench/ failed"
if [ -n "$PNG" ] && ! command -v gnuplot >/dev/null 2>&1; then
    apt_install gnuplot-nox || log "no gnuplot: no chart"
fi
LINUX=1
if [ "$X86" = 0 ]; then
    LINUX=0
elif ! tests/e2e/prepare-assets.sh; then
    log "cannot prepare the guest kernels/initramfs: Linux benchmarks skipped"
    LINUX=0
fi
# disk and net: the cloud guest's initramfs + fio, iperf3 and their libraries
if [ "$LINUX" = 1 ] && { want disk || want net || want transport; }; then
    tools=$(tests/fixtures/make-bench-tools.sh) || die "cannot build the fio/iperf3 archive"
    make -s -f bench/bench.mk initrd BENCH_TOOLS="$tools" >&2 ||
        die "building the benchmark initramfs failed"
fi

# ---- where
load0=$(cut -d' ' -f1-3 /proc/loadavg)
where=$(tests/host/run-direct-or-host.sh --where 2>/dev/null) || where=testhost
pvm=0
if [ -d /sys/module/kvm_pvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then pvm=1; fi
outs=()
rc=0
scratch=''
trap '[ -z "$scratch" ] || rm -f "$scratch"' EXIT

# ---- exit costs directly on this PVM host
if [ "$X86" = 1 ] && [ "$where" = testhost ] && [ "$pvm" = 1 ] && want exits; then
    log "exit costs directly on this PVM host"
    out=$top/$BB/out-pvm.json
    rm -f "$out"
    "$PY" bench/bench.py run --env pvm --only exits --reps "$REPS" "${MODEARGS[@]}" \
        --json "$out" || rc=1
    [ -s "$out" ] && outs+=("$out")
fi

# ---- everything else where Linux boots: here, or inside the test host.
# One session (one test host) per benchmark and per boot case: a nested guest
# that hangs the emulated machine costs that part only (it is retried once).
ONLY_IN=$(tr ',' '\n' <<< "$ONLY" | grep -Ev '^(arm64|)$' | paste -sd, -) || true
[ -n "$ONLY" ] || ONLY_IN=boot,startup,exits,memory,disk,net,density,snapshot,transport
if [ "$LINUX" = 0 ]; then
    ONLY_IN=$(tr ',' '\n' <<< "$ONLY_IN" | grep -Ev '^(boot|memory|disk|net|density|snapshot|transport)$' |
              paste -sd, -) || true
fi
want_in() { [[ ",$ONLY_IN," == *",$1,"* ]]; }
# Two test-host CPUs, so 4-vCPU and concurrent guests are measured as such;
# the test host then dies now and then (see testhost.sh --smp): retried.
# The disk and net parts run one 1-vCPU guest and get one test-host CPU
# (PART_SMP=1): on two, the emulated machine's nested-SVM bug also crashes
# nested guests now and then under network load (QEMU's the same way as
# vibevmm's: bench/README.md), while on one no run failed.
HOSTOPTS=(--mem 3072)
INNER=()
[ -z "${BENCH_IO_QEMU_ALONE:-}" ] || INNER+=(--io-qemu-alone)
# BENCH_DISK_OPTS=cache=none,aio=sync (say): added to vibevmm's --disk.
[ -z "${BENCH_DISK_OPTS:-}" ] || INNER+=(--disk-opts "$BENCH_DISK_OPTS")
# The disk benchmark needs O_DIRECT (QEMU's cache=none): inside the test host
# /tmp is a tmpfs, so it gets an ext4 scratch disk, attached only when vibevmm
# has --disk (or BENCH_IO_QEMU_ALONE=1 asks for QEMU's numbers alone).
# A device vibevmm does not have yet is skipped here, without a session.
lacks() { # OPTION ARG: vibevmm's "not implemented" line for it, if any
    local said
    said=$(bin/vibevmm "$1" "$2" --kernel /nonexistent-vbench-kernel 2>&1) || true
    if [[ "$said" == *"not implemented"* ]] && [ -z "${BENCH_IO_QEMU_ALONE:-}" ]; then
        printf '%s\n' "$said" | grep -m1 'not implemented'
    fi
}
probe=$(mktemp)
why_disk=$(lacks --disk "$probe")
why_net=$(lacks --net tap=vbenchprobe0)
rm -f "$probe"
if [ "$where" = testhost ] && want_in disk; then
    if [ -n "$why_disk" ]; then
        log "vibevmm has no --disk yet: no scratch disk for the test host"
    else
        scratch=$top/$BB/scratch.img
        size=2200M
        [ "$MODE" = full ] || size=600M
        rm -f "$scratch"
        truncate -s "$size" "$scratch"
        mkfs.ext4 -q -F -m 0 "$scratch" || die "mkfs.ext4 failed"
    fi
fi

run_part() { # NAME TIMEOUT BENCH.PY-ARGS...: one session; sets outs, rc
    local name=$1 tmo=$2 try hrc out='' opts
    shift 2
    for try in 1 2; do
        local o=$BB/out-$where-$name-$try.json
        rm -f "$top/$o"
        opts=("${HOSTOPTS[@]}" --smp "${PART_SMP:-2}")
        local inner=("${INNER[@]}")
        if [ -n "$scratch" ] && { [ "$name" = disk ] || [ "$name" = smoke ]; }; then
            opts+=(--qemu-arg -drive --qemu-arg "file=$scratch,format=raw,if=virtio,cache=unsafe")
            inner+=(--scratch-dev /dev/vda)
        fi
        if [ "$try" = 1 ]; then log "$name: $where"; else log "$name: retrying once"; fi
        set +e
        tests/host/run-direct-or-host.sh --timeout "$tmo" --idle-timeout 300 "${opts[@]}" --payload "$top" -- \
            "$PY" bench/bench.py run --env "$where" --reps "$REPS" "${MODEARGS[@]}" \
            "${inner[@]}" --json "$o" "$@"
        hrc=$?
        set -e
        [ -s "$top/$o" ] && out=$top/$o
        case "$hrc" in
            124|125)
                log "$name: the session timed out or the test host died (status $hrc)"
                [ "$try" = 1 ] && continue ;;
            77)
                log "$name: skipped: no test host here (no qemu or kernels)"
                SKIPPED=$((SKIPPED + 1)); return 0 ;;
        esac
        break
    done
    [ -z "$out" ] || outs+=("$out")
    [ "$hrc" = 0 ] || rc=1
}

SKIPPED=0
if [ -n "$ONLY_IN" ]; then
    if [ "$MODE" = smoke ]; then
        run_part smoke 300 --only "$ONLY_IN"
    else
        for b in boot startup exits memory disk net density snapshot transport; do
            want_in "$b" || continue
            case "$b" in
                boot)
                    mapfile -t cases < <("$PY" bench/bench.py cases "${MODEARGS[@]}")
                    for c in "${cases[@]}"; do
                        run_part "boot-${c/:/-}" 900 --only boot --boot-case "$c"
                    done ;;
                disk|net)
                    why=$why_disk
                    [ "$b" = disk ] || why=$why_net
                    if [ -n "$why" ]; then
                        log "$b: skipped: $why"
                        "$PY" bench/bench.py skipped --env "$where" \
                            --json "$BB/out-$where-$b.json" "$b" "$why"
                        outs+=("$top/$BB/out-$where-$b.json")
                    elif [ "$b" = disk ]; then
                        PART_SMP=1 run_part disk 2400 --only disk
                    else
                        PART_SMP=1 run_part net 3600 --only net
                    fi ;;
                density) [ "$MODE" = quick ] || run_part density 600 --only density ;;
                startup) run_part startup 300 --only startup ;;
                snapshot) run_part snapshot 1800 --only snapshot ;;
                # one 1-vCPU guest doing disk I/O, as disk (PART_SMP above)
                transport) PART_SMP=1 run_part transport 1800 --only transport ;;
                *) run_part "$b" 600 --only "$b" ;;
            esac
        done
    fi
fi

# ---- arm64: inside the arm64 test host (bench/arm64-inside.sh)
# Its own sessions: the 1-vCPU boots and the exit cost in a 1-CPU test host,
# the 2-vCPU boots in a 2-CPU one (a 2-vCPU guest on one emulated CPU would
# measure the contention). No Python there: bench.py arm64-parse turns the
# script's lines into results here.
A64=$BB/arm64
a64_prepare() { # cross builds, kernel, QEMU, initramfs, the payload
    local p=$top/$A64/payload f
    scripts/deps.sh cross-arm64 testhost-arm64 >&2 || return 1
    make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- all >&2 || return 1
    make -s -f bench/bench.mk arm64 >&2 || return 1
    tests/fixtures/fetch-kernels.sh --arch arm64 >/dev/null || return 1
    QDIR=$(tests/fixtures/fetch-qemu-arm64.sh) || return 1
    KDIR=${VIBEVMM_CACHE:-$HOME/.cache/vibevmm}/kernels/arm64
    rm -rf "$p"
    mkdir -p "$p/bin" "$p/qemu/bin" "$p/qemu/lib"
    tests/fixtures/make-initramfs.sh arm64 "$p/initrd.cpio.gz" >/dev/null || return 1
    # hard links where the cache shares the file system (no 80 MB copy)
    for f in "build/arm64/bin/vibevmm:bin/" "$A64/exitbench-arm64:bin/" "$A64/bootclock:bin/" \
             "bench/arm64-inside.sh:" "$KDIR/vmlinuz:Image" \
             "$QDIR/bin/qemu-system-aarch64:qemu/bin/"; do
        cp -l "${f%%:*}" "$p/${f#*:}" 2>/dev/null || cp "${f%%:*}" "$p/${f#*:}" || return 1
    done
    cp -l "$QDIR"/lib/* "$p/qemu/lib/" 2>/dev/null || cp "$QDIR"/lib/* "$p/qemu/lib/" || return 1
}
A64_OUTS=() A64_NOTES=() A64_INCOMPLETE=()
a64_part() { # NAME SMP TIMEOUT ARGS...: one arm64 test-host session
    local name=$1 smp=$2 tmo=$3 try hrc o
    shift 3
    for try in 1 2; do
        o=$top/$A64/out-$name.txt
        rm -f "$o"
        if [ "$try" = 1 ]; then log "arm64 $name: arm64 test host, $smp CPU(s)"
        else log "arm64 $name: retrying once"; fi
        set +e
        tests/host/testhost.sh --arch arm64 --smp "$smp" --mem 2048 --timeout "$tmo" \
            --idle-timeout 300 --payload "$top/$A64/payload" -- \
            sh arm64-inside.sh "$@" | tee "$o" >&2
        hrc=${PIPESTATUS[0]}
        set -e
        case "$hrc" in
            124|125)
                log "arm64 $name: the session timed out or the test host died (status $hrc)"
                [ "$try" = 1 ] && continue
                A64_INCOMPLETE=(--incomplete) ;;
            77)
                A64_NOTES+=(--note "arm64 $name: skipped: no arm64 test host here")
                return 0 ;;
        esac
        break
    done
    [ ! -s "$o" ] || A64_OUTS+=("$o")
    [ "$hrc" = 0 ] || rc=1
}
if want arm64; then
    log "arm64: preparing (cross builds, Debian's arm64 kernel and QEMU, initramfs)"
    if ! a64_prepare; then
        log "arm64: skipped: cannot prepare (see above)"
        "$PY" bench/bench.py skipped --env testhost-arm64 --json "$BB/out-testhost-arm64.json" \
            arm64 "cannot build or fetch what it needs (cross compiler, arm64 kernel, QEMU)"
        outs+=("$top/$BB/out-testhost-arm64.json")
        rc=1
    else
        t_a64=$SECONDS
        case "$MODE" in
            smoke) a64_part smoke 1 600 --reps 1 --cpus 1 --exits 1000 ;;
            *) a64_part cpus1 1 1800 --reps "$REPS" --cpus 1 --exits 10000
               a64_part cpus2 2 1800 --reps "$REPS" --cpus 2 --exits 0 ;;
        esac
        if [ ${#A64_OUTS[@]} -gt 0 ]; then
            [ "$MODE" = smoke ] || A64_NOTES+=(--note "arm64: the 2-vCPU boots ran in a 2-CPU test host, the rest in a 1-CPU one")
            "$PY" bench/bench.py arm64-parse --json "$top/$BB/out-testhost-arm64.json" \
                --mode "$MODE" --reps "$REPS" --seconds $((SECONDS - t_a64)) \
                "${A64_INCOMPLETE[@]}" "${A64_NOTES[@]}" "${A64_OUTS[@]}" || rc=1
            outs+=("$top/$BB/out-testhost-arm64.json")
        elif [ ${#A64_NOTES[@]} -gt 0 ]; then
            SKIPPED=$((SKIPPED + 1))
        fi
    fi
fi

if [ ${#outs[@]} -eq 0 ] && [ "$SKIPPED" -gt 0 ] && [ "$MODE" = smoke ]; then exit 77; fi

[ ${#outs[@]} -gt 0 ] || die "no results"
mkdir -p "$(dirname "$JSON")"
REPORT=(--json "$JSON" --text "${JSON%.json}.txt" --command "$COMMAND"
        --machine-load "$load0 -> $(cut -d' ' -f1-3 /proc/loadavg)")
[ -z "$PNG" ] || REPORT+=(--png "$PNG")
"$PY" bench/bench.py report "${REPORT[@]}" "${outs[@]}" || rc=1
exit "$rc"
