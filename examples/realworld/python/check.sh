#!/bin/sh
# check.sh ENGINE IMAGE: Flask serves the YAML-configured items, sorted.
set -eu
out=$("$1" run --rm --network none "$2" python3 app.py --check)
[ "$out" = "200 ['apple', 'fig', 'pear']" ] || { echo "python: got $out" >&2; exit 1; }
