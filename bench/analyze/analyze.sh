#!/bin/bash
# bench/analyze/analyze.sh: `strata image analyze` of the build benchmark's
# image (13 steps, FILES files, about SIZE_MB MB) next to `dive --ci` of the
# same Dockerfile built by docker, in one run; time (hyperfine) and peak
# memory (GNU time's maximum resident set size). dive reads its image from
# the private dockerd (it has no strata source); strata reads only its
# layers' tar-split headers. Run as root:
#
#   make build && go install github.com/wagoodman/dive/cmd/dive@latest && bench/analyze/analyze.sh
#
# Environment: STRATA, DOCKER, PODMAN (as bench/engines.sh), DIVE (dive),
# SIZE_MB (200), FILES (10000), RUNS (5), OUT (default bench/analyze/results).
set -euo pipefail

SIZE_MB=${SIZE_MB:-200}
FILES=${FILES:-10000}
RUNS=${RUNS:-5}
DIVE=${DIVE:-$(command -v dive || echo "$HOME/go/bin/dive")}
NAME=analyze
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
# shellcheck source=../build/context.sh
. "$(dirname "$0")/../build/context.sh"
OUT=${OUT:-$here/results}
mkdir -p "$OUT"

make_context "$work/ctx"
start_engines
"${strata[@]}" build -q --network none -t bench:latest "$work/ctx" >/dev/null
DOCKER_BUILDKIT=0 "${docker[@]}" build -q --network none -t bench:latest "$work/ctx" >/dev/null

a_strata="${strata[*]} image analyze bench:latest"
a_dive="DOCKER_HOST=unix://$work/docker.sock $DIVE --ci --source docker bench:latest"
use_dive=1
if ! out=$(sh -c "$a_dive" 2>&1); then
	echo "analyze.sh: dive cannot analyze here, left out:" >&2
	echo "$out" | tail -5 >&2
	use_dive=0
fi
args=(-n strata "$a_strata")
[ "$use_dive" = 1 ] && args+=(-n dive "$a_dive")

echo "== time"
hyperfine --warmup 1 --runs "$RUNS" --export-markdown "$OUT/analyze.md" --export-json "$OUT/analyze.json" "${args[@]}"

echo "== peak memory (max RSS)"
rss() { /usr/bin/time -f %M sh -c "$1 >/dev/null 2>&1" 2>&1 | tail -1; }
{
	echo "strata image analyze: $(rss "$a_strata") KiB"
	[ "$use_dive" = 1 ] && echo "dive --ci: $(rss "$a_dive") KiB"
	echo "image: $("${strata[@]}" images --format '{{.Size}}' bench:latest), $FILES context files"
} | tee "$OUT/analyze-memory.txt"
"${strata[@]}" image analyze bench:latest | sed -n '/^Shipped/,/^Wasted/p' | tee -a "$OUT/analyze-memory.txt"
