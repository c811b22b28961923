#!/bin/sh
# The seed's anomaly detector as a per-item process: boots (sleeps --boot
# seconds, standing for loading a model), works (--work-ms), then prints
# "true" when ITEM is above the threshold, else "false".  The per-item
# counterpart of detect.py, paying the boot for every item.
#
# usage: detect_item.sh [--boot S] [--work-ms N] [--threshold T] ITEM
boot=0
work_ms=0
threshold=11
while [ $# -gt 1 ]; do
	case $1 in
	--boot) boot=$2; shift 2 ;;
	--work-ms) work_ms=$2; shift 2 ;;
	--threshold) threshold=$2; shift 2 ;;
	*) break ;;
	esac
done
if [ $# -ne 1 ]; then
	echo "usage: detect_item.sh [--boot S] [--work-ms N] [--threshold T] ITEM" >&2
	exit 2
fi
item=$1
case $item in
'' | - | *[!0-9-]* | ?*-*)
	echo "detect_item.sh: not an integer: '$item'" >&2
	exit 1
	;;
esac
sleep "$boot"
[ "$work_ms" != 0 ] && sleep "$(awk -v ms="$work_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
if [ "$item" -gt "$threshold" ]; then
	echo true
else
	echo false
fi
