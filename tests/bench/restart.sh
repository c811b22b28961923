#!/usr/bin/env bash
# How long a scheduler restart takes with a big database: EXECS executions
# of ITEMS items each (default 1,000 x 1,000 = a million items), submitted
# with `troupe map --detach` to a scheduler with no worker, so that every
# one of them is unfinished and is resumed (all its items loaded) on
# start.  With MODE "finished", a worker runs them all first (as actor
# maps), so the database holds finished executions, which a restart does
# not load.  Then, for a clean stop (SIGTERM) and a crash (SIGKILL):
# the time from starting troupe-scheduler until GetHealth answers, and the
# time until `troupe list` answers, and the scheduler's resident memory
# after the restart.  Not part of ctest (wall-clock figures are not
# assertions).
#
# usage: tests/bench/restart.sh [BUILD_DIR] [EXECS] [ITEMS] [MODE]
#        (default: ./build, 1000, 1000, queued)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-${BUILD_DIR:-$root/build}}" && pwd)
execs=${2:-1000}
items=${3:-1000}
mode=${4:-queued}
. "$root/tests/bench/lib.sh"
warn_sanitized

TROUPE_HOME=$(mktemp -d /tmp/troupe-bench-restart.XXXXXX)
export TROUPE_HOME
unset TROUPE_ADDR TROUPE_TOKEN TROUPE_TOKEN_FILE
sched_pid=
worker_pid=

# start_sched: starts the scheduler on TROUPE_HOME in the background and
# waits (at most 600 s) until it answers; sets sched_pid, and up to the
# seconds it took.
start_sched() {
	local t0 i=0
	t0=$(now)
	"$build/daemon/troupe-scheduler" --home "$TROUPE_HOME" \
		>>"$TROUPE_HOME/scheduler.log" 2>&1 &
	sched_pid=$!
	until "$build/client/troupe" health >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 60000 ] || ! kill -0 "$sched_pid" 2>/dev/null; then
			echo "the scheduler did not come up; its log:" >&2
			tail -20 "$TROUPE_HOME/scheduler.log" >&2
			exit 1
		fi
		sleep 0.01
	done
	up=$(elapsed "$t0" "$(now)")
}

# stop_sched SIGNAL: stops it and waits.
stop_sched() {
	kill "-$1" "$sched_pid"
	wait "$sched_pid" 2>/dev/null || true
	sched_pid=
}

cleanup() {
	[ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null
	[ -n "$sched_pid" ] && kill -KILL "$sched_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TROUPE_HOME"
}
trap cleanup EXIT

rss_mib() {
	awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

start_sched
seq "$items" >"$TROUPE_HOME/items"
if [ "$mode" = finished ]; then
	mkdir -p "$TROUPE_HOME/w1"
	# As root, a worker must be told that items may run as root.
	root=()
	[ "$(id -u)" = 0 ] && root=(--allow-root)
	"$build/daemon/troupe-worker" --home "$TROUPE_HOME/w1" --name w1 \
		--scheduler "ipc://$TROUPE_HOME/worker.sock" --slots 4 "${root[@]}" \
		>>"$TROUPE_HOME/worker.log" 2>&1 &
	worker_pid=$!
	echo "submitting $execs actor maps of $items items, run by one worker..."
	run=(--replicas 4 --cmd 'while read x; do echo "o$x"; done')
else
	echo "submitting $execs executions of $items items (no worker: all stay queued)..."
	run=(--cmd 'echo {}')
fi
t0=$(now)
for i in $(seq "$execs"); do echo "$i"; done | xargs -P 4 -I{} \
	"$build/client/troupe" map --detach --items "$TROUPE_HOME/items" \
	--name "bench-{}" "${run[@]}" >/dev/null
if [ "$mode" = finished ]; then
	until [ "$("$build/client/troupe" list --limit 0 --phase succeeded |
		grep -c bench-)" -ge "$execs" ]; do
		sleep 1
	done
	kill -TERM "$worker_pid"
	wait "$worker_pid" || true
	worker_pid=
fi
t1=$(now)
n=$("$build/client/troupe" list --json --limit 0 | wc -l)
echo "submitted$([ "$mode" = finished ] && echo " and run") in $(elapsed "$t0" "$t1") s; troupe list shows $n; database $(du -sh "$TROUPE_HOME" | cut -f1)"
echo "scheduler RSS before the restarts: $(rss_mib "$sched_pid") MiB"

for sig in TERM KILL; do
	t0=$(now)
	stop_sched "$sig"
	t1=$(now)
	start_sched
	t2=$(now)
	"$build/client/troupe" list >/dev/null
	t3=$(now)
	printf 'SIG%s: stopped in %s s; restart to GetHealth %s s; to the first list %s s; RSS %s MiB\n' \
		"$sig" "$(elapsed "$t0" "$t1")" "$up" "$(elapsed "$t1" "$t3")" "$(rss_mib "$sched_pid")"
done
grep -h "resumed" "$TROUPE_HOME/scheduler.log" | tail -1 || true
