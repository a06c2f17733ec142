#!/bin/sh
# check.sh ENGINE IMAGE: the packages are installed and work; no apt lists left.
set -eu
out=$("$1" run --rm --network none "$2" sh -c 'echo "{\"a\":[1,2,3]}" | jq -c ".a | add"; curl --version | head -1 | cut -d" " -f1; date -d @0 +%H; ls /var/lib/apt/lists | wc -l')
want=$(printf '6\ncurl\n01\n0')
[ "$out" = "$want" ] || { echo "apt: got $out" >&2; exit 1; }
