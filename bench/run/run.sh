#!/bin/bash
# bench/run/run.sh: container run latency, strata vs docker vs podman, side by side.
#
# Imports the same busybox rootfs tarball into each engine, then times
# `ENGINE run --rm --network none busybox true` for all of them in ONE hyperfine
# invocation, writes the markdown table and JSON, and prints each engine's mean
# relative to docker's. Everything it creates (stores, its own dockerd, mounts)
# lives under one temporary directory and is removed on exit, so it can be run
# again. Run as root on the benchmark machine:
#
#   make build && bench/run/run.sh
#
# Environment: STRATA (default: bin/strata of this repo), DOCKER (default:
# Debian's /usr/bin/docker), PODMAN, RUNS (default 30), WARMUP (default 3),
# OUT (results directory, default bench/run/results).
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
NAME=run
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}

echo "== engines: strata, docker (own dockerd), podman"
start_engines

strata_cmd="${strata[*]} run --rm --network none busybox true"
docker_cmd="${docker[*]} run --rm --network none busybox true"
podman_cmd="${podman[*]} run --rm --network none $podman_ulimits busybox true"

# One run of each first, so a broken engine shows its own error instead of
# hyperfine's generic one.
for c in "$strata_cmd" "$docker_cmd" "$podman_cmd"; do
	$c || { echo "run.sh: failed: $c" >&2; exit 1; }
done

echo "== versions"
versions="$work/versions.txt"
engine_versions | tee "$versions"

mkdir -p "$OUT"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
	--export-markdown "$OUT/run-latency.md" --export-json "$OUT/run-latency.json" \
	-n strata "$strata_cmd" -n docker "$docker_cmd" -n podman "$podman_cmd"
cp "$versions" "$OUT/run-latency-versions.txt"

echo "== relative to docker (lower is faster; the median resists other load on the machine)"
ratio_table "$OUT/run-latency.json" "docker" "$OUT/run-latency-ratios.txt"
