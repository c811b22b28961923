#!/usr/bin/env bash
# The seed scenario (docs/design.md, "Targets"): 100 items, concurrency 10, a
# task whose process boots in 0.5 s and then works 10 ms per item.  One
# invocation runs, on the same items and the same machine:
#
#   - a process per item: troupe (`troupe up --slots 10`), GNU parallel -j10
#     and xargs -P10, all running the same shell task;
#     ideal 10 rounds x 0.51 s = 5.1 s;
#   - troupe with 10 actor replicas of the same task written as a `lines`
#     actor (actors/seed_actor.sh: boots once, then 10 ms per item without
#     a process per item), cold: ideal 0.5 + 10 x 0.01 = 0.6 s;
#   - the same map again within the TTL, on the same replicas, warm: ideal
#     10 x 0.01 = 0.1 s;
#
# and prints each time, its ratio to its ideal and its ratio to xargs.  The
# cold run is cold: a fresh cluster (new TROUPE_HOME) and a command string
# of its own, and no replica of it before the run.  The warm run is warm:
# the replicas' pids (`troupe actors --json`) are the same after it as
# before it, and their count of items served grew.  Not part of ctest
# (wall-clock figures are not assertions).
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
ideal_cold=0.6
ideal_warm=0.1
# Boot (0.5 s), then the work (10 ms), then the output.  Each runner
# starts one shell per item running this ({} is the item).
task='sleep 0.5; sleep 0.01; echo out-{}'
# The same as an actor (actors/seed_actor.sh): boots once in 0.5 s, then
# 10 ms per item.  The no-op word makes the command, so its ad hoc
# environment, this run's own.
actor=": seed-$$-$(date +%s%N); exec $(printf %q "$root/tests/bench/actors/seed_actor.sh") 0.5 10"
work=$(mktemp -d /tmp/troupe-seed.XXXXXX)
trap 'bench_down; rm -rf "$work"' EXIT
seq $items >"$work/items"
seq $items | sed 's/^/out-/' >"$work/want"
troupe=$build/client/troupe

bench_up $conc 1

t0=$(now)
"$troupe" map --items "$work/items" --concurrency $conc \
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

# Actors.  Before the cold run no replica of this command may exist.
read -r before _ <<<"$(bench_replicas "$actor")"
[ "$before" = - ] || { echo "cold run: replicas already there ($before)" >&2; exit 1; }
t0=$(now)
"$troupe" map --items "$work/items" --cmd "$actor" --replicas $conc \
	--ttl 60 >"$work/cold.out"
t1=$(now)
t_cold=$(elapsed "$t0" "$t1")
cmp -s "$work/cold.out" "$work/want" || { echo "actors cold: wrong outputs" >&2; exit 1; }
read -r pids_cold served_cold <<<"$(bench_replicas_settled "$actor" $items)"

t0=$(now)
"$troupe" map --items "$work/items" --cmd "$actor" --replicas $conc \
	--ttl 60 >"$work/warm.out"
t1=$(now)
t_warm=$(elapsed "$t0" "$t1")
cmp -s "$work/warm.out" "$work/want" || { echo "actors warm: wrong outputs" >&2; exit 1; }
read -r pids_warm served_warm <<<"$(bench_replicas_settled "$actor" $((2 * items)))"

echo "seed scenario: $items items, concurrency $conc, 0.5 s boot + 10 ms work per item"
printf '%-30s %8s %8s %15s %15s\n' runner seconds ideal "ratio to ideal" "ratio to xargs"
row() {
	printf '%-30s %8s %8s %15s %15s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" \
		"$(ratio "$2" "$t_xargs")"
}
row "troupe map, process per item" "$t_troupe" $ideal
row "GNU parallel -j$conc" "$t_parallel" $ideal
row "xargs -P$conc" "$t_xargs" $ideal
row "troupe map, $conc replicas cold" "$t_cold" $ideal_cold
row "troupe map, $conc replicas warm" "$t_warm" $ideal_warm
n_cold=$(tr ',' '\n' <<<"$pids_cold" | grep -c .)
echo "replicas: none before the cold run; after it $n_cold live, pids $pids_cold ($served_cold items served)"
if [ "$pids_warm" = "$pids_cold" ] && [ "$served_warm" -gt "$served_cold" ]; then
	echo "warm run: the same $n_cold pids, no process started; $served_warm items served in all"
else
	echo "warm run: NOT the same replicas: pids $pids_warm, $served_warm items served" >&2
	exit 1
fi
