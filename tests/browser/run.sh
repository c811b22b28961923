#!/bin/sh
# ctest's entry to the dashboard's browser test (dashboard.js): says
# clearly when node is missing (a skip, exit 77; a failure under
# TROUPE_TEST_NO_SKIP=1, as in CI), else runs it.
if ! command -v node >/dev/null 2>&1; then
	if [ "${TROUPE_TEST_NO_SKIP:-}" = 1 ]; then
		echo "FAILED: no node: Node.js 20 or later and npm, then npm ci in web/"
		exit 1
	fi
	echo "SKIPPED: no node (Node.js 20 or later and npm, then npm ci in web/)"
	exit 77
fi
exec node "$(dirname "$0")/dashboard.js" "$@"
