#!/bin/bash
# bench/limits.sh: what this machine can do at best, measured on the
# filesystem under test (BENCH_DIR), so every engine's numbers can be put as a
# fraction of a limit measured in the same run:
#   tar-x     GNU tar extracting the build benchmark's context (10k files)
#   sha256    hashing, one stream per core
#   gzip      pigz -6 compress / decompress on both cores
#   zstd      zstd -3 compress / decompress on both cores
#   write     dd of 1 GiB with fsync
# Prints "name MB/s" lines and writes them to OUT/limits.txt.
set -euo pipefail
SIZE_MB=${SIZE_MB:-200}
FILES=${FILES:-10000}
DIR=${BENCH_DIR:-/tmp}
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$here/results}
for tool in pigz zstd sha256sum tar dd; do
	command -v $tool >/dev/null || { echo "limits.sh: $tool not found (apt-get install -y pigz zstd)" >&2; exit 1; }
done
work=$(mktemp -d "$DIR/strata-limits.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"
# shellcheck source=build/context.sh
. "$here/build/context.sh"
make_context "$work/ctx" >/dev/null
tar -C "$work/ctx" -cf "$work/ctx.tar" .
bytes=$(stat -c %s "$work/ctx.tar")
# One GiB of incompressible data for the stream tools, in memory.
sample=/dev/shm/strata-limits-sample.$$
trap 'rm -rf "$work" "$sample"*' EXIT
head -c 1073741824 /dev/urandom >"$sample"
half=$((1073741824 / 2))
split -b "$half" -d -a 1 "$sample" "$sample."

now() { date +%s.%N; }
rate() { echo "$1 $2 $3" | awk '{ printf "%.0f", $1 / 1e6 / ($3 - $2) }'; }
measure() { # name bytes command...
	local name=$1 n=$2; shift 2
	sync
	local t0; t0=$(now)
	"$@"
	local t1; t1=$(now)
	printf '%-16s %6s MB/s\n' "$name" "$(rate "$n" "$t0" "$t1")"
}
both() { # runs "$1 FILE" on both halves at once
	sh -c "$1 $sample.0" & sh -c "$1 $sample.1" & wait
}
{
	measure tar-x "$bytes" sh -c "mkdir $work/x && tar -C $work/x -xf $work/ctx.tar && sync -f $work/x"
	measure sha256 1073741824 both "sha256sum >/dev/null"
	measure gzip-compress 1073741824 sh -c "pigz -6 -p 2 -c $sample >$sample.gz"
	measure gzip-decompress 1073741824 sh -c "pigz -d -c $sample.gz >/dev/null"
	measure zstd-compress 1073741824 sh -c "zstd -3 -T2 -q -c $sample >$sample.zst"
	measure zstd-decompress 1073741824 sh -c "zstd -d -q -c $sample.zst >/dev/null"
	measure write-fsync 1073741824 dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fsync status=none
} | tee "$OUT/limits.txt"
