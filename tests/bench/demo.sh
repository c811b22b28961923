#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine, installs the
# packages (.ci/deps), builds troupe into ./build, starts a local cluster
# (`troupe up`) in a throw-away TROUPE_HOME, runs a real map printing its
# outputs and timing, and stops the cluster.
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
# Warnings are errors in CI (.ci/run), not on a user's compiler.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_WERROR=OFF >/dev/null
cmake --build "$build" -j2
build=$(cd "$build" && pwd)
export PATH="$build/client:$build/daemon:$PATH"
. "$root/tests/bench/lib.sh"

echo "== troupe up --workers 2 --slots 5 (TROUPE_HOME is a temp dir)"
trap bench_down EXIT
bench_up 5 2
troupe workers

echo "== seq 100 | troupe map --cmd 'test {} -gt 11 && echo true || echo false' --concurrency 10"
t0=$(now)
seq 100 | troupe map --cmd 'test {} -gt 11 && echo true || echo false' --concurrency 10
t1=$(now)
echo "== 100 items in $(elapsed "$t0" "$t1") s"

echo "== troupe list"
troupe list

echo "== stopping the cluster (Ctrl-C to troupe up)"
bench_down
echo "== done.  Next: .ci/run runs the whole test suite."
