#!/usr/bin/env bash
# The seed's task as a `lines` actor: boots once (sleeps BOOT_S seconds,
# standing for loading a model), then for each item on stdin waits WORK_MS
# milliseconds (the work) and answers "out-ITEM".  The per-item wait starts
# no process (a `read -t` on a pipe that nobody writes to), so 10 ms of work
# costs 10 ms and not also a fork and exec of sleep(1).
#
# usage: seed_actor.sh [BOOT_S] [WORK_MS]      (defaults: 0.5 10)
boot=${1:-0.5}
work=$(awk -v ms="${2:-10}" 'BEGIN { printf "%.3f", ms / 1000 }')
sleep "$boot"
# A pipe held open for reading and writing: reads on it only time out.
exec 3<> <(:)
while IFS= read -r x; do
	read -r -t "$work" -u 3 || :
	printf 'out-%s\n' "$x"
done
