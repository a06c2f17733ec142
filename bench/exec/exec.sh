#!/bin/bash
# bench/exec/exec.sh: `exec C true` latency, strata vs docker vs podman, side by side.
#
# Starts one long-running busybox container in each engine (--network none),
# then times `ENGINE exec C true` for all of them in ONE hyperfine invocation
# (median of RUNS), writes the markdown table and JSON, and prints each
# engine's times relative to docker's. Everything it creates lives under one
# temporary directory and is removed on exit. Run as root:
#
#   make build && bench/exec/exec.sh
#
# Environment: STRATA (default: bin/strata of this repo), DOCKER, PODMAN,
# RUNS (default 30), WARMUP (default 3), OUT (default bench/exec/results).
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
NAME=exec
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}

echo "== engines: strata, docker (own dockerd), podman"
start_engines

"${strata[@]}" run -d --name bench-exec --network none busybox sleep 100000 >/dev/null
"${docker[@]}" run -d --name bench-exec --network none busybox sleep 100000 >/dev/null
# shellcheck disable=SC2086
"${podman[@]}" run -d --name bench-exec --network none $podman_ulimits busybox sleep 100000 >/dev/null

strata_cmd="${strata[*]} exec bench-exec true"
docker_cmd="${docker[*]} exec bench-exec true"
podman_cmd="${podman[*]} exec bench-exec true"

# One exec of each first, so a broken engine shows its own error instead of
# hyperfine's generic one.
for c in "$strata_cmd" "$docker_cmd" "$podman_cmd"; do
	$c || { echo "exec.sh: failed: $c" >&2; exit 1; }
done

echo "== versions"
versions="$work/versions.txt"
engine_versions | tee "$versions"

mkdir -p "$OUT"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
	--export-markdown "$OUT/exec-latency.md" --export-json "$OUT/exec-latency.json" \
	-n strata "$strata_cmd" -n docker "$docker_cmd" -n podman "$podman_cmd"
cp "$versions" "$OUT/exec-latency-versions.txt"

"${strata[@]}" rm -f bench-exec >/dev/null
"${docker[@]}" rm -f bench-exec >/dev/null
"${podman[@]}" rm -f bench-exec >/dev/null

echo "== relative to docker (lower is faster; the median resists other load on the machine)"
ratio_table "$OUT/exec-latency.json" "docker" "$OUT/exec-latency-ratios.txt"
