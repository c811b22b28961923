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
bench_down() {
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
