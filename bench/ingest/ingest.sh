#!/bin/bash
# bench/ingest/ingest.sh: bringing an image into the store, strata vs docker
# vs podman side by side, each against the machine's limit for the same job
# measured in the same hyperfine run:
#   import  `ENGINE import FILE` of a tar of the busybox rootfs with the build
#           benchmark's context under /app (bench/build/context.sh: SIZE_MB
#           of random data in FILES files); limit: GNU `tar -x` of the same
#           tar into a fresh directory, then `sync -f` (strata syncs too).
#   pull    the image strata builds from that context (13 steps, 9 layers),
#           pushed once by strata (gzip) to Debian's docker-registry on
#           127.0.0.1 (random port), pulled by each engine into a store
#           without it; limit: every layer blob of the registry's storage
#           decompressed (pigz) and extracted (GNU tar), two layers at a time
#           (both cores), then `sync -f`.
# Then strata's peak RSS (/usr/bin/time) of one run of each. Run as root:
#
#   make build && bench/ingest/ingest.sh
#
# Environment: STRATA, DOCKER, PODMAN, ENGINES (bench/engines.sh), SIZE_MB
# (200), FILES (10000), RUNS (3), OUT (results directory, default
# bench/ingest/results).
set -euo pipefail

SIZE_MB=${SIZE_MB:-200}
FILES=${FILES:-10000}
RUNS=${RUNS:-3}
NAME=ingest
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}
for tool in pigz curl; do
	command -v $tool >/dev/null || { echo "ingest.sh: $tool not found (apt-get install -y $tool)" >&2; exit 1; }
done
mkdir -p "$OUT"
rm -f "$OUT/ingest-rss.txt"

start_registry
. "$here/../build/context.sh"
make_context "$work/ctx"
image_tar "$work/image.tar" "$work/ctx"
image_mb=$(du -m --apparent-size "$work/image.tar" | cut -f1)

echo "== engines: $ENGINES"
start_engines
engine_versions | tee "$OUT/ingest-versions.txt"
echo "image: $image_mb MB tar, $(tar -tf "$work/image.tar" | wc -l) entries" | tee -a "$OUT/ingest-versions.txt"

# Each command has its own --prepare (hyperfine pairs them in order): the
# engine forgets the previous run's image, and everything is on disk.
cmds=() preps=()
add() { cmds+=(-n "$1" "$2"); preps+=(--prepare "$3; sync"); }

echo "== import"
add tar-x "mkdir $work/x && tar -C $work/x -xf $work/image.tar && sync -f $work/x" "rm -rf $work/x"
add strata "${strata[*]} import $work/image.tar imp:1" "${strata[*]} rmi imp:1 >/dev/null 2>&1; true"
has_engine docker && add docker "${docker[*]} import $work/image.tar imp:1" "${docker[*]} rmi imp:1 >/dev/null 2>&1; true"
has_engine podman && add podman "${podman[*]} import -q $work/image.tar imp:1" "${podman[*]} rmi imp:1 >/dev/null 2>&1; true"
hyperfine --runs "$RUNS" --export-json "$OUT/ingest-import.json" --export-markdown "$OUT/ingest-import.md" \
	"${preps[@]}" "${cmds[@]}"
"${strata[@]}" rmi imp:1 >/dev/null
peak_rss import "$OUT/ingest-rss.txt" "${strata[@]}" import "$work/image.tar" imp:1

echo "== pull"
"${strata[@]}" build -q --network none -t "$reg/bench/pull:1" "$work/ctx" >/dev/null
"${strata[@]}" push -q "$reg/bench/pull:1" >/dev/null
"${strata[@]}" rmi "$reg/bench/pull:1" >/dev/null
# The layer blobs as the registry stores them, in the manifest's order.
blobs=$work/registry/docker/registry/v2/blobs/sha256
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
	"http://$reg/v2/bench/pull/manifests/1" | jq -r '.layers[].digest | sub("sha256:"; "")' |
	awk -v b="$blobs" '{ print NR, b "/" substr($1, 1, 2) "/" $1 "/data" }' >"$work/layers.txt"
pull_mb=$(awk '{ print $2 }' "$work/layers.txt" | xargs du -cm --apparent-size | tail -1 | cut -f1)
echo "pull: $(wc -l <"$work/layers.txt") layers, $pull_mb MB gzip" | tee -a "$OUT/ingest-versions.txt"
cat >"$work/limit-pull.sh" <<SH
#!/bin/sh
# Every layer blob decompressed and extracted into its own directory, two at a time.
xargs -P 2 -n 2 sh -c 'mkdir -p $work/px/\$0 && pigz -dc \$1 | tar -C $work/px/\$0 -x' <$work/layers.txt
sync -f $work/px
SH
chmod +x "$work/limit-pull.sh"
cmds=() preps=()
add pigz-tar-x "$work/limit-pull.sh" "rm -rf $work/px"
add strata "$STRATA --root $work/strata-pull pull -q $reg/bench/pull:1" "rm -rf $work/strata-pull"
has_engine docker && add docker "${docker[*]} pull -q $reg/bench/pull:1" "${docker[*]} rmi $reg/bench/pull:1 >/dev/null 2>&1; ${docker[*]} image prune -af >/dev/null; true"
has_engine podman && add podman "${podman[*]} pull -q --tls-verify=false $reg/bench/pull:1" "${podman[*]} rmi -af >/dev/null 2>&1; true"
hyperfine --runs "$RUNS" --export-json "$OUT/ingest-pull.json" --export-markdown "$OUT/ingest-pull.md" \
	"${preps[@]}" "${cmds[@]}"
rm -rf "$work/strata-pull"
peak_rss pull "$OUT/ingest-rss.txt" "$STRATA" --root "$work/strata-pull" pull -q "$reg/bench/pull:1"

echo "== ratios (best-peer: the faster of docker and podman; the limit: the machine's best at the same job)"
{
	echo "# import ($image_mb MB tar)"
	ratio_table "$OUT/ingest-import.json" best-peer /dev/null s tar-x
	echo "# pull ($pull_mb MB gzip)"
	ratio_table "$OUT/ingest-pull.json" best-peer /dev/null s pigz-tar-x
	echo "# strata peak RSS"
	cat "$OUT/ingest-rss.txt"
} >"$OUT/ingest-ratios.txt"
cat "$OUT/ingest-ratios.txt"
