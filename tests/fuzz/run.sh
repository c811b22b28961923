#!/usr/bin/env bash
# Runs libFuzzer targets for a bounded time each and prints, per target,
# its executions, executions per second and outcome.
#
#   tests/fuzz/run.sh SECONDS BUILD_DIR CORPUS_ROOT FUZZ_BINARY...
#
# Target fuzz_NAME starts from the seeds in CORPUS_ROOT/NAME (read only)
# and the inputs it found before in BUILD_DIR/corpus/NAME (where it adds
# new ones); a crashing input goes to BUILD_DIR/crashes/NAME-*, and the
# full log to BUILD_DIR/logs/NAME.log.  Extra libFuzzer flags for a target
# are read from CORPUS_ROOT/../NAME.options (one line) when it exists.
# Exit status 0 when no target
# crashed, leaked, timed out or ran out of memory.
set -uo pipefail

secs=$1 build=$2 seeds=$3
shift 3
status=0
printf '%-10s %12s %10s %8s  %s\n' target executions exec/s seconds result
for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	out=$build/corpus/$name
	log=$build/logs/$name.log
	mkdir -p "$out" "$build/crashes" "$build/logs"
	dirs=("$out")
	if [ -d "$seeds/$name" ]; then dirs+=("$seeds/$name"); fi
	opts=()
	if [ -f "$seeds/../$name.options" ]; then
		read -ra opts <"$seeds/../$name.options"
	fi
	start=$(date +%s)
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 \
		-artifact_prefix="$build/crashes/$name-" ${opts[@]+"${opts[@]}"} \
		"${dirs[@]}" \
		>"$log" 2>&1
	rv=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	if [ "$rv" = 0 ]; then
		result=ok
	else
		result="FAILED (exit $rv, see $log)"
		status=1
	fi
	printf '%-10s %12s %10s %8s  %s\n' "$name" "${execs:-?}" "${rate:-?}" \
		"$took" "$result"
	if [ "$rv" != 0 ]; then
		grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" |
			head -20
	fi
done
exit $status
