#!/bin/sh
# check.sh ENGINE IMAGE: the app's dependencies load and do their job.
set -eu
out=$("$1" run --rm --network host "$2" node server.js --check)
[ "$out" = '{"twoHours":7200000,"newer":true}' ] || { echo "node: got $out" >&2; exit 1; }
