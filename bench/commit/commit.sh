#!/bin/bash
# bench/commit/commit.sh: `ENGINE commit` of a container that changed part of
# a many-file image, strata vs docker vs podman side by side. Each engine
# imports the same tar (the busybox rootfs with the build benchmark's
# context under /app: SIZE_MB of random data in FILES files, 100 directories)
# and runs one container that appends a line to every file of the first 10
# directories (1000 files at the default FILES) and deletes the files of the
# 11th (100), then exits. hyperfine times committing that stopped container
# (the previous run's image removed before each run). Then strata's peak RSS
# (/usr/bin/time) of one commit. Run as root:
#
#   make build && bench/commit/commit.sh
#
# Environment: STRATA, DOCKER, PODMAN, ENGINES (bench/engines.sh), SIZE_MB
# (200), FILES (10000), RUNS (5), OUT (results directory, default
# bench/commit/results).
set -euo pipefail

SIZE_MB=${SIZE_MB:-200}
FILES=${FILES:-10000}
RUNS=${RUNS:-5}
NAME=commit
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}
mkdir -p "$OUT"
rm -f "$OUT/commit-rss.txt"

. "$here/../build/context.sh"
make_context "$work/ctx"
image_tar "$work/image.tar" "$work/ctx"

echo "== engines: $ENGINES, each importing the $FILES-file image"
start_engines "$work/image.tar" bench10k:latest
engine_versions | tee "$OUT/commit-versions.txt"

change='for f in /app/data/d0[0-9]/f*; do echo changed >>$f; done; rm /app/data/d10/f*'
"${strata[@]}" run --name bench-commit --network none bench10k sh -c "$change"
cmds=() preps=()
add() { cmds+=(-n "$1" "$2 commit bench-commit committed:1"); preps+=(--prepare "$2 rmi committed:1 >/dev/null 2>&1; sync"); }
add strata "${strata[*]}"
if has_engine docker; then
	"${docker[@]}" run --name bench-commit --network none bench10k sh -c "$change"
	add docker "${docker[*]}"
fi
if has_engine podman; then
	"${podman[@]}" run --name bench-commit --network none $podman_ulimits bench10k sh -c "$change"
	add podman "${podman[*]}"
fi
echo "strata's container changed: $("${strata[@]}" diff bench-commit | awk '{ n[$1]++ } END { for (k in n) printf "%s %d ", k, n[k] }')" |
	tee -a "$OUT/commit-versions.txt"

hyperfine --runs "$RUNS" --export-json "$OUT/commit.json" --export-markdown "$OUT/commit.md" \
	"${preps[@]}" "${cmds[@]}"
"${strata[@]}" rmi committed:1 >/dev/null
peak_rss commit "$OUT/commit-rss.txt" "${strata[@]}" commit bench-commit committed:1

echo "== ratios (best-peer: the faster of docker and podman)"
{
	ratio_table "$OUT/commit.json" best-peer /dev/null s
	echo "# strata peak RSS"
	cat "$OUT/commit-rss.txt"
} >"$OUT/commit-ratios.txt"
cat "$OUT/commit-ratios.txt"
