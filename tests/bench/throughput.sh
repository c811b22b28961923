#!/usr/bin/env bash
# Throughput of trivial items through actor replicas (docs/design.md, "Targets":
# a million trivial items through 10 replicas in about a second on a 2-core
# machine, scheduler memory bounded whatever the map's size).
#
# Runs `troupe map --cmd cat --replicas 10` (a `lines` actor that answers
# each item with itself) over N items (default 100,000; --million: 1,000,000)
# on a local cluster (`troupe up --slots 10`, one worker), twice (the second
# run finds the replicas warm), checks every output, and prints for each run
# the wall time of the CLI (upload, run, download of the outputs), the
# scheduler's own time from creation to the last result committed, items/s
# for both, and the peak resident memory (VmHWM) of the scheduler and of the
# worker.  Not part of ctest (wall-clock figures are not assertions).
#
# usage: tests/bench/throughput.sh [BUILD_DIR] [--million | --items N]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=
n=100000
while [ $# -gt 0 ]; do
	case $1 in
	--million) n=1000000; shift ;;
	--items) n=$2; shift 2 ;;
	-*) echo "usage: throughput.sh [BUILD_DIR] [--million | --items N]" >&2; exit 2 ;;
	*) dir=$1; shift ;;
	esac
done
build=$(cd "${dir:-${BUILD_DIR:-$root/build}}" && pwd)
. "$root/tests/bench/lib.sh"
warn_sanitized

troupe=$build/client/troupe
work=$(mktemp -d /tmp/troupe-throughput.XXXXXX)
trap 'bench_down; rm -rf "$work"' EXIT
seq "$n" >"$work/items"

bench_up 10 1
sched=$(bench_daemon_pid troupe-scheduler)
worker=$(bench_daemon_pid troupe-worker)
echo "$n items through 10 replicas of cat; scheduler and worker at rest:" \
	"$(bench_hwm "$sched") MiB, $(bench_hwm "$worker") MiB peak RSS"
printf '%-6s %10s %12s %12s %12s %14s %12s %14s\n' run "CLI s" \
	"CLI items/s" "sched s" "sched items/s" "sched MiB" "worker MiB" \
	"sched wrote MiB"
for run in cold warm; do
	w0=$(bench_written "$sched")
	t0=$(now)
	"$troupe" map --items "$work/items" --cmd cat --replicas 10 --ttl 60 \
		--name "throughput-$run" >"$work/out"
	t1=$(now)
	cmp -s "$work/out" "$work/items" || { echo "$run: wrong outputs" >&2; exit 1; }
	t=$(elapsed "$t0" "$t1")
	# The scheduler's view: created (first chunk of items committed) to
	# finished (last result committed).
	id=$("$troupe" list --json | python3 -c '
import json, sys
for line in sys.stdin:
    x = json.loads(line)
    if x.get("spec", {}).get("name") == sys.argv[1]:
        print(x["id"]); break' "throughput-$run")
	s=$("$troupe" status "$id" --json | python3 -c '
import json, sys
x = json.load(sys.stdin)
print("%.2f" % ((int(x["finished_ms"]) - int(x["created_ms"])) / 1000))')
	printf '%-6s %10s %12.0f %12s %14.0f %12s %12s %14.1f\n' "$run" "$t" \
		"$(awk -v n="$n" -v t="$t" 'BEGIN { print n / t }')" "$s" \
		"$(awk -v n="$n" -v t="$s" 'BEGIN { print (t > 0 ? n / t : 0) }')" \
		"$(bench_hwm "$sched")" "$(bench_hwm "$worker")" \
		"$(awk -v a="$w0" -v b="$(bench_written "$sched")" 'BEGIN { print b - a }')"
done
