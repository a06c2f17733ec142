#!/bin/bash
# bench/share/share.sh: moving images, strata vs docker vs podman (and skopeo),
# side by side: push to a local registry, a second push of the same image,
# save and load. Each scenario is one hyperfine invocation with every engine
# in it; the results also give each engine's speed as a fraction of what the
# machine allows (bench/share/limits: sha256, gzip and zstd on both cores,
# disk write).
#
# The image is the build benchmark's (bench/build/context.sh: SIZE_MB of
# random data in FILES files on busybox), built by each engine itself. The
# registry is Debian's docker-registry on 127.0.0.1 (random port), wiped and
# restarted before every first-push run. Everything lives under one temporary
# directory (its own dockerd and registry included) and is removed on exit.
# Run as root:
#
#   make build && bench/share/share.sh
#
# Environment: STRATA, DOCKER, PODMAN (as bench/run/run.sh), SKOPEO, SIZE_MB
# (300), FILES (3000), RUNS (3), OUT (results directory, default
# bench/share/results).
set -euo pipefail

SIZE_MB=${SIZE_MB:-300}
FILES=${FILES:-3000}
RUNS=${RUNS:-3}
SKOPEO=${SKOPEO:-skopeo}
NAME=share
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}
# The registry: $work/fresh-registry.sh restarts it on an empty storage.
start_registry

. "$here/../build/context.sh"
make_context "$work/ctx"

echo "== engines: strata, docker (own dockerd), podman; building the image in each"
start_engines
"${strata[@]}" build -q --network none -t bench:latest "$work/ctx" >/dev/null
DOCKER_BUILDKIT=0 "${docker[@]}" build -q --network none -t bench:latest "$work/ctx" >/dev/null
"${podman[@]}" build -q --network none $podman_ulimits -t bench:latest "$work/ctx" >/dev/null
for e in strata docker podman; do
	case $e in
	strata) "${strata[@]}" tag bench:latest "$reg/bench/strata:1" ;;
	docker) "${docker[@]}" tag bench:latest "$reg/bench/docker:1" ;;
	podman) "${podman[@]}" tag bench:latest "$reg/bench/podman:1" ;;
	esac
done
# skopeo copies strata's image from an OCI layout (uncompressed layers, as
# strata saves them): the same compress-and-upload job as a push.
"${strata[@]}" save --format oci-dir -o "$work/oci" bench:latest
"${strata[@]}" save -o "$work/strata.tar" bench:latest
image_mb=$(du -m --apparent-size "$work/strata.tar" | cut -f1)
echo "image: $image_mb MB uncompressed (strata's archive)"

p_strata="${strata[*]} push -q $reg/bench/strata:1"
p_docker="${docker[*]} push -q $reg/bench/docker:1"
p_podman="${podman[*]} push -q --tls-verify=false $reg/bench/podman:1"
p_skopeo="$SKOPEO copy -q --dest-tls-verify=false oci:$work/oci docker://$reg/bench/skopeo:1"

mkdir -p "$OUT"
{
	engine_versions
	echo "skopeo: $($SKOPEO --version)"
	echo "image: $image_mb MB uncompressed, $(find "$work/ctx" -type f | wc -l) files in the context"
} | tee "$OUT/share-versions.txt"

echo "== push (fresh registry before each run)"
hyperfine --runs "$RUNS" --export-json "$OUT/share-push.json" --export-markdown "$OUT/share-push.md" \
	--prepare "$work/fresh-registry.sh" \
	-n strata "$p_strata" -n docker "$p_docker" -n podman "$p_podman" -n skopeo "$p_skopeo"

echo "== second push (the registry has every blob)"
"$work/fresh-registry.sh"
for c in "$p_strata" "$p_docker" "$p_podman" "$p_skopeo"; do sh -c "$c" >/dev/null; done
hyperfine --runs "$RUNS" --export-json "$OUT/share-push-again.json" --export-markdown "$OUT/share-push-again.md" \
	-n strata "$p_strata" -n docker "$p_docker" -n podman "$p_podman" -n skopeo "$p_skopeo"

echo "== save"
hyperfine --runs "$RUNS" --export-json "$OUT/share-save.json" --export-markdown "$OUT/share-save.md" \
	--prepare "rm -f $work/s-*.tar; sync" \
	-n strata "${strata[*]} save -o $work/s-strata.tar bench:latest" \
	-n docker "${docker[*]} save -o $work/s-docker.tar bench:latest" \
	-n podman "${podman[*]} save -o $work/s-podman.tar bench:latest"

echo "== load (into a store without the image or its layers)"
"${docker[@]}" save -o "$work/docker.tar" bench:latest
"${podman[@]}" save -o "$work/podman.tar" bench:latest
hyperfine --runs "$RUNS" --export-json "$OUT/share-load.json" --export-markdown "$OUT/share-load.md" \
	--prepare "rm -rf $work/strata-load; ${docker[*]} rmi -f bench:latest $reg/bench/docker:1 >/dev/null 2>&1; ${docker[*]} image prune -af >/dev/null; ${podman[*]} rmi -af >/dev/null 2>&1; sync; true" \
	-n strata "$STRATA --root $work/strata-load load -i $work/strata.tar" \
	-n docker "${docker[*]} load -i $work/docker.tar" \
	-n podman "${podman[*]} load -i $work/podman.tar"

echo "== strata's peak RSS (one run each)"
rm -f "$OUT/share-rss.txt"
"$work/fresh-registry.sh"
peak_rss push "$OUT/share-rss.txt" "${strata[@]}" push -q "$reg/bench/strata:1"
peak_rss save "$OUT/share-rss.txt" "${strata[@]}" save -o "$work/s-strata.tar" bench:latest
rm -rf "$work/strata-load"
peak_rss load "$OUT/share-rss.txt" "$STRATA" --root "$work/strata-load" load -i "$work/strata.tar"

echo "== machine limits over strata's archive"
(cd "$repo" && go run ./bench/share/limits -in "$work/strata.tar" -dir "$work") | tee "$OUT/share-limits.txt"

echo "== summary: mean s, MB/s of the uncompressed image, ratio to docker, fraction of the machine limit"
limit() { grep "^$1" "$OUT/share-limits.txt" | cut -f2; }
gz=$(limit gzip); disk=$(limit disk); sha=$(limit sha256)
for s in push:$gz push-again:0 save:$disk load:$disk; do
	scen=${s%%:*} lim=${s#*:}
	jq -r --arg s "$scen" --argjson mb "$image_mb" --argjson lim "$lim" '
		def r2: . * 100 | round / 100;
		(.results[] | select(.command == "docker")) as $d
		| .results[] | "\($s)\t\(.command)\t\(.mean | r2)\t\($mb / .mean | round)\t\(.mean / $d.mean | r2)\t\(if $lim > 0 then ($mb / .mean / $lim | r2) else "-" end)"' \
		"$OUT/share-$scen.json"
done | (printf 'scenario\tengine\tmean s\tMB/s\tmean/docker\tof limit\n'; cat) |
	column -t -s "$(printf '\t')" | tee "$OUT/share-ratios.txt"
echo "limits: push = gzip on both cores ($gz MB/s), save/load = disk write ($disk MB/s); sha256 $sha MB/s, zstd $(limit zstd) MB/s (a second push sends no layer bytes: no limit applies)"
