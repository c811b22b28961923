#!/usr/bin/env bash
# The seed scenario in per-item mode (DESIGN.md, "Targets"): 100 items,
# concurrency 10, a task whose process boots in 0.5 s and then works
# 10 ms per item.  Ideal: 10 rounds x 0.51 s = 5.1 s.  Runs troupe (a local
# cluster, `troupe up --slots 10`), GNU parallel -j10 and xargs -P10 on the
# same items in the same invocation and prints each time and its ratio to
# the ideal.  Not part of ctest (wall-clock figures are not assertions).
#
# usage: tests/bench/seed.sh [BUILD_DIR]     (default: ./build)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-${BUILD_DIR:-$root/build}}" && pwd)
. "$root/tests/bench/lib.sh"
warn_sanitized

items=100
conc=10
ideal=5.1
# Boot (0.5 s), then the work (10 ms), then the output.  Each runner
# starts one shell per item running this ({} is the item).
task='sleep 0.5; sleep 0.01; echo out-{}'
work=$(mktemp -d /tmp/troupe-seed.XXXXXX)
trap 'bench_down; rm -rf "$work"' EXIT
seq $items >"$work/items"
seq $items | sed 's/^/out-/' >"$work/want"

bench_up $conc 1

t0=$(now)
"$build/client/troupe" map --items "$work/items" --concurrency $conc \
	--cmd "$task" >"$work/troupe.out"
t1=$(now)
t_troupe=$(elapsed "$t0" "$t1")
cmp -s "$work/troupe.out" "$work/want" || { echo "troupe: wrong outputs" >&2; exit 1; }

t0=$(now)
parallel --will-cite -j$conc "$task" <"$work/items" >"$work/parallel.out"
t1=$(now)
t_parallel=$(elapsed "$t0" "$t1")
sort -V "$work/parallel.out" | cmp -s - "$work/want" || { echo "parallel: wrong outputs" >&2; exit 1; }

t0=$(now)
xargs -P$conc -I{} sh -c "$task" <"$work/items" >"$work/xargs.out"
t1=$(now)
t_xargs=$(elapsed "$t0" "$t1")
sort -V "$work/xargs.out" | cmp -s - "$work/want" || { echo "xargs: wrong outputs" >&2; exit 1; }

echo "seed scenario, per-item processes: $items items, concurrency $conc, 0.5 s boot + 10 ms work; ideal $ideal s"
printf '%-22s %8s %15s %15s\n' runner seconds "ratio to ideal" "ratio to xargs"
row() { printf '%-22s %8s %15s %15s\n' "$1" "$2" "$(ratio "$2" $ideal)" "$(ratio "$2" "$t_xargs")"; }
row "troupe map" "$t_troupe"
row "GNU parallel -j$conc" "$t_parallel"
row "xargs -P$conc" "$t_xargs"
