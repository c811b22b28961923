# Shared by the scripts in tests/bench: start and stop a local cluster
# with `troupe up` in a throw-away TROUPE_HOME.  Source it; needs $build.

# bench_up SLOTS [WORKERS]: starts `troupe up` in the background and waits
# (at most 30 s) until its API answers and its workers are READY.  The
# caller traps EXIT to bench_down.
bench_up() {
	TROUPE_HOME=$(mktemp -d /tmp/troupe-bench.XXXXXX)
	export TROUPE_HOME
	unset TROUPE_ADDR TROUPE_TOKEN TROUPE_TOKEN_FILE
	"$build/client/troupe" up --slots "$1" --workers "${2:-1}" \
		>"$TROUPE_HOME/up.log" 2>&1 &
	bench_up_pid=$!
	local i=0
	until "$build/client/troupe" health >/dev/null 2>&1 &&
		[ "$("$build/client/troupe" workers | grep -ci ready)" -ge "${2:-1}" ]; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 "$bench_up_pid" 2>/dev/null; then
			echo "troupe up did not come up; its log:" >&2
			cat "$TROUPE_HOME/up.log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# bench_down: Ctrl-C to `troupe up` (bounded), then removes the home.
# Called as the EXIT trap of a failing script, first prints the end of the
# cluster's log.
bench_down() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -n "${TROUPE_HOME:-}" ] && [ -f "$TROUPE_HOME/up.log" ]; then
		echo "== failed ($rc); the end of the cluster's log:" >&2
		tail -n 20 "$TROUPE_HOME/up.log" >&2
	fi
	if [ -n "${bench_up_pid:-}" ] && kill -0 "$bench_up_pid" 2>/dev/null; then
		kill -INT "$bench_up_pid"
		local i=0
		while kill -0 "$bench_up_pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$bench_up_pid" 2>/dev/null || true
	fi
	bench_up_pid=
	if [ -n "${TROUPE_HOME:-}" ] && [ -d "$TROUPE_HOME" ]; then
		rm -rf "$TROUPE_HOME"
	fi
}

# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# elapsed T0 T1: T1 - T0 in seconds, 2 decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ratio X IDEAL: X / IDEAL, 2 decimals.
ratio() { awk -v x="$1" -v i="$2" 'BEGIN { printf "%.2f", x / i }'; }

# warn_sanitized: sanitizers make troupe several times slower.
warn_sanitized() {
	if grep -qs '^TROUPE_SANITIZE:STRING=.\+' "$build/CMakeCache.txt"; then
		echo "warning: $build is built with sanitizers; figures are not representative" >&2
	fi
}

# bench_actors_json: one JSON object per actor environment, with its live
# replicas (`troupe actors --json`).
bench_actors_json() { "$build/client/troupe" actors --json; }

# bench_replicas CMD: "PIDS SERVED" for the environment whose command is
# CMD: its live replicas' pids, sorted and comma-separated ("-": none),
# and the items they served in total.  Parses JSON with python3 (jq is
# not among the packages .ci/deps installs).
bench_replicas() {
	bench_actors_json | python3 -c '
import json, sys
pids, served = [], 0
for line in sys.stdin:
    a = json.loads(line)
    if (a.get("env") or {}).get("command") != sys.argv[1]:
        continue
    for r in a.get("replicas") or []:
        pids.append(int(r.get("pid", 0)))
        served += int(r.get("items_served", 0))
print(",".join(map(str, sorted(pids))) or "-", served)' "$1"
}

# bench_replicas_settled CMD SERVED: bench_replicas CMD once its replicas
# have reported SERVED items in total (a worker reports its replicas' counts
# with its next Pull, so they lag the outputs), or after 5 s.
bench_replicas_settled() {
	local r i=0
	while :; do
		r=$(bench_replicas "$1")
		if [ "${r#* }" -ge "$2" ] || [ $i -ge 10 ]; then
			echo "$r"
			return 0
		fi
		i=$((i + 1))
		sleep 0.5
	done
}

# bench_daemon_pid NAME: the pid of `troupe up`'s child daemon NAME
# (troupe-scheduler or troupe-worker; the first one).
bench_daemon_pid() {
	local p
	for p in $(pgrep -P "$bench_up_pid"); do
		case $(readlink "/proc/$p/exe" 2>/dev/null) in
		*/"$1") echo "$p"; return 0 ;;
		esac
	done
	return 1
}

# bench_hwm PID: the peak resident set (VmHWM) of PID, in MiB.
bench_hwm() {
	awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# bench_written PID: bytes PID has written to storage so far (its database
# and WAL), in MiB.
bench_written() {
	awk '/^write_bytes:/ { printf "%.1f", $2 / 1048576 }' "/proc/$1/io"
}

# pctl FILE Q: the Q-quantile (0..1, nearest rank) of the numbers in FILE.
pctl() {
	sort -g "$1" | awk -v q="$2" '{ v[NR] = $1 } END {
		k = int(q * NR + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR
		print v[k] }'
}

# mean FILE: the mean of the numbers in FILE.
mean() { awk '{ s += $1 } END { printf "%.3f", s / NR }' "$1"; }
