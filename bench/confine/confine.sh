#!/bin/bash
# bench/confine/confine.sh: what confinement and limits cost a container
# start, strata vs docker vs podman, side by side.
#
# Times `ENGINE run --rm --network none busybox true` for each engine as it
# confines by default (strata and docker: docker's default seccomp profile,
# capabilities, masked paths, a cgroup per container; podman: its own
# equivalents), the same with limits set (-m 64m --pids-limit 100 --cpus 1:
# memory, pids and cpu cgroup files written), and strata with
# --security-opt seccomp=unconfined (the profile's own cost), all in ONE
# hyperfine invocation, and prints each mean and median relative to
# podman's. Everything lives under one temp dir removed on exit
# (bench/engines.sh). Run as root:
#
#   make build && bench/confine/confine.sh
#
# Environment: STRATA, DOCKER, PODMAN (see engines.sh), RUNS (default 20),
# WARMUP (default 3), OUT (default bench/confine/results).
set -euo pipefail

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
NAME=confine
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}

echo "== engines: strata, docker (own dockerd), podman"
start_engines

limits="-m 64m --pids-limit 100 --cpus 1"
# hyperfine runs the commands one after the other; the first ones pay for
# whatever the engines' start-up left running (dockerd settling), so the
# other engines go first and strata last.
names=(podman podman-limits docker docker-limits strata strata-limits strata-unconfined)
cmds=(
	"${podman[*]} run --rm --network none $podman_ulimits busybox true"
	"${podman[*]} run --rm --network none $podman_ulimits $limits busybox true"
	"${docker[*]} run --rm --network none busybox true"
	"${docker[*]} run --rm --network none $limits busybox true"
	"${strata[*]} run --rm --network none busybox true"
	"${strata[*]} run --rm --network none $limits busybox true"
	"${strata[*]} run --rm --network none --security-opt seccomp=unconfined busybox true"
)
# One run of each first, so a broken engine shows its own error.
for c in "${cmds[@]}"; do
	$c || { echo "confine.sh: failed: $c" >&2; exit 1; }
done
# The default strata container is confined as the numbers claim.
status=$("${strata[@]}" run --rm --network none busybox grep -E '^(Seccomp|CapEff):' /proc/self/status | tr -s '\t\n' '  ')
echo "strata default container: $status"
case "$status" in *"Seccomp: 2"*) ;; *) echo "confine.sh: strata ran without seccomp" >&2; exit 1 ;; esac

echo "== versions"
versions="$work/versions.txt"
engine_versions | tee "$versions"

mkdir -p "$OUT"
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
	--export-markdown "$OUT/confine-latency.md" --export-json "$OUT/confine-latency.json" "${args[@]}"
cp "$versions" "$OUT/confine-latency-versions.txt"

echo "== relative to podman (lower is faster; the median resists other load on the machine)"
ratio_table "$OUT/confine-latency.json" "podman" "$OUT/confine-latency-ratios.txt"
