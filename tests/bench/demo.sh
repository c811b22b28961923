#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine, installs the
# packages (.ci/deps), builds troupe into ./build, starts a local cluster
# (`troupe up`, two workers of 5 slots) in a throw-away TROUPE_HOME, and
# reproduces the seed: the anomaly detector over 100 items, with a model
# that takes 0.5 s to load and 10 ms per item,
#
#   1. as a process per item at concurrency 10 (actors/detect_item.sh),
#   2. as 10 actor replicas, cold (actors/detect.py: loads once per replica),
#   3. the same map again while the replicas are warm (no process starts),
#
# printing the three times side by side, the outputs' summary and whether
# the three runs agree; then stops the cluster.
#
# usage: tests/bench/demo.sh          (as root, or with sudo available)
# SKIP_DEPS=1 skips apt-get; BUILD_DIR overrides ./build.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}

if [ -z "${SKIP_DEPS:-}" ]; then
	sudo=
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	mapfile -t pkgs < <(grep -v '^#' "$root/.ci/deps" | grep -v '^$')
	echo "== installing: ${pkgs[*]}"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
		--no-install-recommends "${pkgs[@]}"
fi

echo "== building into $build"
# The dashboard's protobufjs, from web/'s lockfile (once; npm is the machine's).
[ -d "$root/web/node_modules" ] || (cd "$root/web" && npm ci --no-audit --no-fund)
# Warnings are errors in CI (.ci/run), not on a user's compiler.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_WERROR=OFF >/dev/null
cmake --build "$build" -j2
build=$(cd "$build" && pwd)
export PATH="$build/client:$build/daemon:$PATH"
. "$root/tests/bench/lib.sh"

work=$(mktemp -d /tmp/troupe-demo.XXXXXX)
trap 'bench_down; rm -rf "$work"' EXIT
A=$root/tests/bench/actors
per_item="$A/detect_item.sh --boot 0.5 --work-ms 10 {}"
actor="python3 $A/detect.py --boot 0.5 --work-ms 10"

echo "== troupe up --workers 2 --slots 5 (TROUPE_HOME is a temp dir)"
bench_up 5 2
troupe workers

# run NAME ARGS...: `seq 100 | troupe map ARGS`, outputs in $work/NAME,
# seconds in t_NAME.
run() {
	local name=$1 t0 t1
	shift
	echo "== seq 100 | troupe map$(for a in "$@"; do case $a in *' '*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac; done)"
	t0=$(now)
	seq 100 | troupe map "$@" >"$work/$name"
	t1=$(now)
	printf -v "t_$name" '%s' "$(elapsed "$t0" "$t1")"
	echo "   $(elapsed "$t0" "$t1") s; outputs: $(sort "$work/$name" | uniq -c | awk '{ printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $2 }')"
}

run per_item --cmd "$per_item" --concurrency 10

read -r pids _ <<<"$(bench_replicas "$actor")"
[ "$pids" = - ] || { echo "cold run: replicas already there ($pids)" >&2; exit 1; }
run cold --cmd "$actor" --replicas 10 --ttl 60
read -r pids_cold served_cold <<<"$(bench_replicas_settled "$actor" 100)"
run warm --cmd "$actor" --replicas 10 --ttl 60
read -r pids_warm served_warm <<<"$(bench_replicas_settled "$actor" 200)"

echo "== troupe actors"
troupe actors

echo
echo "The seed: 100 items, concurrency 10, 0.5 s to load the model, 10 ms per item"
printf '%-34s %10s %10s\n' "" seconds ideal
printf '%-34s %10s %10s\n' "a process per item (detect_item.sh)" "$t_per_item" 5.1
printf '%-34s %10s %10s\n' "10 actor replicas, cold (detect.py)" "$t_cold" 0.6
printf '%-34s %10s %10s\n' "10 actor replicas, warm" "$t_warm" 0.1
if cmp -s "$work/per_item" "$work/cold" && cmp -s "$work/cold" "$work/warm"; then
	echo "The three runs agree: $(grep -c true "$work/warm") true, $(grep -c false "$work/warm") false."
else
	echo "The runs DISAGREE (outputs differ)" >&2
	exit 1
fi
if [ "$pids_warm" = "$pids_cold" ]; then
	echo "The warm run started no process: the same $(tr ',' '\n' <<<"$pids_cold" | grep -c .) replicas (pids $pids_cold) served it."
else
	echo "The warm run did not find the same replicas ($pids_cold, then $pids_warm)" >&2
	exit 1
fi
t_py=$( { TIMEFORMAT=%R; time python3 -c pass; } 2>&1)
echo "Cold replicas also pay Python's own start-up, once each: python3 -c pass takes $t_py s here ($(nproc) CPUs)."

echo "== stopping the cluster (Ctrl-C to troupe up)"
bench_down
echo "== done.  Next: tests/bench/seed.sh, latency.sh, throughput.sh measure more; .ci/run runs the test suite."
