#!/usr/bin/env bash
# The latency of a one-item map on a warm actor replica, submit to result
# (docs/design.md, "Targets": p50 under 1 ms), on a local cluster (`troupe up`,
# one worker).
#
#   - through libtroupe (troupe-latency, tests/bench/latency.c: one
#     CreateExecution with the item, sealed; WatchExecution until the phase
#     is terminal; GetOutputs), RUNS runs (default 1,000) after 10 that warm
#     the replica up: p50, p90, p99, max;
#   - through the CLI, `echo x | troupe map --cmd cat --replicas 1`, CLI_RUNS
#     runs (default 200), and, to show what of it is the CLI process itself,
#     `troupe version` (a process start, no connection) and `troupe health`
#     (a start, a connection and one call).
#
# Not part of ctest (wall-clock figures are not assertions).
#
# usage: tests/bench/latency.sh [BUILD_DIR]      (default: ./build)
#        RUNS=N CLI_RUNS=N tests/bench/latency.sh ...
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-${BUILD_DIR:-$root/build}}" && pwd)
. "$root/tests/bench/lib.sh"
warn_sanitized

runs=${RUNS:-1000}
cli_runs=${CLI_RUNS:-200}
troupe=$build/client/troupe
if [ ! -x "$build/tests/troupe-latency" ]; then
	cmake --build "$build" --target troupe-latency >/dev/null
fi
work=$(mktemp -d /tmp/troupe-latency.XXXXXX)
trap 'bench_down; rm -rf "$work"' EXIT

bench_up 2 1

echo "== libtroupe: $runs one-item maps on a warm replica of cat (after 10 warm-up runs)"
"$build/tests/troupe-latency" --runs "$runs" --cmd cat

# ms_runs FILE N CMD...: runs CMD N times, appending each one's wall time
# in ms to FILE ($EPOCHREALTIME: no process to read the clock).
ms_runs() {
	local f=$1 n=$2 i t0 t1
	shift 2
	for ((i = 0; i < n; i++)); do
		t0=$EPOCHREALTIME
		"$@" </dev/null >/dev/null
		t1=$EPOCHREALTIME
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$f"
	done
}
map_one() { echo x | "$troupe" map --cmd cat --replicas 1 --ttl 60; }

map_one >/dev/null # the replica is warm already; this warms the CLI's path
ms_runs "$work/version" "$cli_runs" "$troupe" version
ms_runs "$work/health" "$cli_runs" "$troupe" health
ms_runs "$work/map" "$cli_runs" map_one

echo "== the CLI, $cli_runs runs each, ms"
printf '%-48s %8s %8s %8s\n' "" p50 p99 mean
for k in version health map; do
	case $k in
	version) what="troupe version (process start only)" ;;
	health) what="troupe health (start, connect, one call)" ;;
	map) what="echo x | troupe map --cmd cat --replicas 1" ;;
	esac
	printf '%-48s %8s %8s %8s\n' "$what" "$(pctl "$work/$k" 0.5)" \
		"$(pctl "$work/$k" 0.99)" "$(mean "$work/$k")"
done
