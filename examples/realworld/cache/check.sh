#!/bin/sh
# check.sh ENGINE IMAGE: the packages installed through the cache mounts work,
# and the image holds neither the downloaded .debs nor the apt lists.
set -eu
out=$("$1" run --rm --network none "$2")
[ "$out" = "$(printf 'apple\nfig\npear')" ] || { echo "cache: got $out" >&2; exit 1; }
left=$("$1" run --rm --network none "$2" sh -c 'ls /var/cache/apt/archives/*.deb /var/lib/apt/lists/*_Packages* 2>/dev/null | wc -l; xz --version | head -1 | cut -d" " -f1')
[ "$left" = "$(printf '0\nxz')" ] || { echo "cache: got $left" >&2; exit 1; }
