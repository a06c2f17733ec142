#!/bin/bash
# bench/build/build.sh: Dockerfile build time, strata vs docker vs podman, side by side.
#
# Generates a build context of FILES files totalling about SIZE_MB MB of random
# (incompressible) data plus a 13-instruction Dockerfile FROM the busybox base
# image, and times three scenarios, each one hyperfine invocation with every
# engine in it:
#   cold    --no-cache build (images and dangling layers pruned before each run)
#   warm    rebuild of the unchanged context (every step cached)
#   change  rebuild after one 20 KB file of the big COPY changed (that COPY and
#           the steps after it rebuild)
# docker is timed with both of its builders when available: the classic one
# (DOCKER_BUILDKIT=0, the default of docker 20.10 on Linux) and BuildKit.
# Everything it creates lives under one temporary directory (its own dockerd
# included) and is removed on exit. Run as root:
#
#   make build && bench/build/build.sh
#
# Environment: STRATA, DOCKER, PODMAN (as bench/run/run.sh), SIZE_MB (200),
# FILES (10000), RUNS_COLD (3), RUNS_WARM (5), RUNS_CHANGE (3),
# SCENARIOS ("warm change cold"), COLD_SETTLE (seconds to wait after the
# cold scenario's prune, default 0: on a journal-less ext4, inodes deleted
# in the last minute (several while their inode table block is dirty) are
# skipped when new ones are allocated, so a build right after a prune of
# the previous one pays for it, every engine alike; bench/all.sh's ext4j
# column, with a journal, does not), OUT (results directory, default bench/build/results).
set -euo pipefail

SIZE_MB=${SIZE_MB:-200}
FILES=${FILES:-10000}
RUNS_COLD=${RUNS_COLD:-3}
RUNS_WARM=${RUNS_WARM:-5}
RUNS_CHANGE=${RUNS_CHANGE:-3}
NAME=build
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}

. "$(dirname "$0")/context.sh"
make_context "$work/ctx"
ctx=$work/ctx
du -sh "$ctx" | cut -f1 | sed 's/^/context size: /'
find "$ctx" -type f | wc -l | sed 's/^/context files: /'

echo "== engines: strata, docker (own dockerd), podman"
start_engines

# Build and prune commands per engine, as strings for hyperfine (run through
# its shell, so env assignments work).
b_strata="${strata[*]} build -q --network none -t bench:latest $ctx"
b_classic="DOCKER_BUILDKIT=0 ${docker[*]} build -q --network none -t bench:classic $ctx"
b_buildkit="DOCKER_BUILDKIT=1 ${docker[*]} build -q --network none -t bench:buildkit $ctx"
b_podman="${podman[*]} build -q --network none $podman_ulimits -t bench:latest $ctx"
p_strata="${strata[*]} rmi -f bench:latest >/dev/null 2>&1; ${strata[*]} builder prune -af >/dev/null 2>&1; true"
p_classic="${docker[*]} rmi -f bench:classic >/dev/null 2>&1; ${docker[*]} image prune -f >/dev/null 2>&1; true"
p_buildkit="${docker[*]} rmi -f bench:buildkit >/dev/null 2>&1; ${docker[*]} builder prune -af >/dev/null 2>&1; true"
p_podman="${podman[*]} rmi -f bench:latest >/dev/null 2>&1; ${podman[*]} image prune -f >/dev/null 2>&1; true"

names=(strata docker-classic docker-buildkit podman)
builds=("$b_strata" "$b_classic" "$b_buildkit" "$b_podman")
prunes=("$p_strata" "$p_classic" "$p_buildkit" "$p_podman")

# Each engine builds once for real (also proving it can); an engine that
# cannot is left out with its error shown.
use=()
for i in "${!names[@]}"; do
	if out=$(sh -c "${builds[$i]}" 2>&1); then
		use+=("$i")
	else
		echo "build.sh: ${names[$i]} cannot build here, left out:" >&2
		echo "$out" | tail -5 >&2
	fi
done
[ "${#use[@]}" -gt 0 ] || exit 1

# The images must hold what the Dockerfile made: the file count of the COPY.
echo "== check: /app/etc/file-count and CMD output in each image"
check=("${strata[*]} run --rm --network none bench:latest"
	"${docker[*]} run --rm --network none bench:classic"
	"${docker[*]} run --rm --network none bench:buildkit"
	"${podman[*]} run --rm --network none $podman_ulimits bench:latest")
for i in "${use[@]}"; do
	echo "${names[$i]}: $(${check[$i]} cat /app/etc/file-count) files, CMD says $(${check[$i]} | tr -d '\r')"
done

echo "== versions"
mkdir -p "$OUT"
{
	engine_versions
	echo "context: $(du -sh "$ctx" | cut -f1), $(find "$ctx" -type f | wc -l) files"
	echo "engines measured: $(for i in "${use[@]}"; do printf '%s ' "${names[$i]}"; done)"
} | tee "$OUT/build-versions.txt"

bench() { # scenario runs extra-hyperfine-args-per-engine-builder
	local scenario=$1 runs=$2 mode=$3 args=()
	for i in "${use[@]}"; do
		case $mode in
		cold) args+=(--prepare "${prunes[$i]}; sleep ${COLD_SETTLE:-0}" -n "${names[$i]}" "${builds[$i]/ build / build --no-cache }") ;;
		warm) args+=(-n "${names[$i]}" "${builds[$i]}") ;;
		change) args+=(--prepare "date +%s%N >> $ctx/data/d50/f0042" -n "${names[$i]}" "${builds[$i]}") ;;
		esac
	done
	echo "== $scenario"
	hyperfine --runs "$runs" --export-markdown "$OUT/build-$scenario.md" --export-json "$OUT/build-$scenario.json" \
		"${args[@]}"
}
# warm first: every engine has just built the context once.
SCENARIOS=${SCENARIOS:-warm change cold}
for s in $SCENARIOS; do
	case $s in
	warm) bench warm "$RUNS_WARM" warm ;;
	change) bench change "$RUNS_CHANGE" change ;;
	cold) bench cold "$RUNS_COLD" cold ;;
	*) echo "build.sh: unknown scenario $s (warm, change, cold)" >&2; exit 2 ;;
	esac
done

echo "== relative to docker-classic (lower is faster)"
for s in $SCENARIOS; do
	jq -r --arg s "$s" '
		def sec: . * 100 | round / 100;
		def x: . * 100 | round / 100;
		(.results[] | select(.command == "docker-classic")) as $d
		| .results[] | "\($s)\t\(.command)\t\(.mean | sec)\t\(.median | sec)\t\(.min | sec)\t\(if $d then (.mean / $d.mean | x) else "-" end)"' \
		"$OUT/build-$s.json"
done | (printf 'scenario\tengine\tmean s\tmedian s\tmin s\tmean/docker-classic\n'; cat) |
	column -t -s "$(printf '\t')" | tee "$OUT/build-ratios.txt"
