#!/bin/sh
# check.sh ENGINE IMAGE: the static binary runs alone in a scratch image.
set -eu
out=$("$1" run --rm --network none "$2" strata)
[ "$out" = '{"greeting":"hello, strata","os":"linux","sha256":"82ba7e1f"}' ] || { echo "go: got $out" >&2; exit 1; }
