#!/usr/bin/env bash
# `make soak`: the soak tests of tests/e2e/test_soak.py at full length, in
# one test-host session (or directly on a host with hardware KVM):
#   VIBEVMM_SOAK_CYCLES        boots of the minimal kernel in one process (100)
#   VIBEVMM_SOAK_CLOUD_CYCLES  boots of Debian's cloud kernel (10)
#   VIBEVMM_SOAK_SECONDS       traffic time of the 8-guest soak (600)
# make check's e2e stage runs the same tests shorter (10, 2, 120). Extra
# arguments go to pytest, e.g. `tests/soak/run.sh -k multi`.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
cycles=${VIBEVMM_SOAK_CYCLES:-100}
cloud=${VIBEVMM_SOAK_CLOUD_CYCLES:-10}
secs=${VIBEVMM_SOAK_SECONDS:-600}
case "$cycles$cloud$secs" in *[!0-9]*) echo "soak: the VIBEVMM_SOAK_* knobs take numbers" >&2; exit 2 ;; esac
tests/e2e/prepare-assets.sh
# A bound for a wedged session: a minute per boot (they take 2-15 s), the
# traffic time, and half an hour for the 8 guests' boots and the rest.
timeout=$(((cycles + cloud) * 60 + secs + 1800))
# The tests print a line at least every 30 s; the environment does not
# cross into the test host, so the knobs go on the command.
exec tests/host/run-direct-or-host.sh --smp 1 --timeout "$timeout" --idle-timeout 300 \
	--payload "$top" -- env VIBEVMM_SOAK_CYCLES="$cycles" \
	VIBEVMM_SOAK_CLOUD_CYCLES="$cloud" VIBEVMM_SOAK_SECONDS="$secs" \
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -rs tests/e2e/test_soak.py "$@"
