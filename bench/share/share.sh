#!/bin/bash
# bench/share/share.sh: moving images, strata vs docker vs podman (and skopeo),
# side by side: push to a local registry, a second push of the same image,
# save and load. Each scenario is one hyperfine invocation with every engine
# in it and the machine's limit for the same job measured in the same run:
#   push  the registry's receive limit: the blobs strata's push made (already
#         compressed, digests known) uploaded by curl, one POST and one PUT
#         each, three at a time (registry-put); and the compressor's limit
#         (bench/share/limits: pgzip on both cores). A push is read against
#         the slower of the two.
#   save  dd of the same archive with fsync (dd-fsync: the disk's write
#         speed) and without (dd: what a save that does not sync, as no
#         engine's does, can reach at best).
#   load  GNU tar -x of the image's layer tars, each into a directory of its
#         own, two at a time, then sync -f (tar-x): a load must create the
#         files; the dd-fsync of the save run gives the disk's write speed.
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
# (300), FILES (3000), RUNS (3), LOAD_SETTLE (61, see load below), OUT
# (results directory, default bench/share/results), ENGINES
# (bench/engines.sh; skopeo runs with podman).
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

echo "== engines: $ENGINES; building the image in each"
start_engines
"${strata[@]}" build -q --network none -t bench:latest "$work/ctx" >/dev/null
"${strata[@]}" tag bench:latest "$reg/bench/strata:1"
if has_engine docker; then
	DOCKER_BUILDKIT=0 "${docker[@]}" build -q --network none -t bench:latest "$work/ctx" >/dev/null
	"${docker[@]}" tag bench:latest "$reg/bench/docker:1"
fi
if has_engine podman; then
	"${podman[@]}" build -q --network none $podman_ulimits -t bench:latest "$work/ctx" >/dev/null
	"${podman[@]}" tag bench:latest "$reg/bench/podman:1"
fi
# skopeo copies strata's image from an OCI layout (uncompressed layers, as
# strata saves them): the same compress-and-upload job as a push.
"${strata[@]}" save --format oci-dir -o "$work/oci" bench:latest
"${strata[@]}" save -o "$work/strata.tar" bench:latest
image_mb=$(($(stat -c %s "$work/strata.tar") / 1000000)) # MB as the limits tool counts them
echo "image: $image_mb MB uncompressed (strata's archive)"

# The load limit's input: the layer tars of strata's archive, in order.
mkdir -p "$work/layers"
tar -C "$work/layers" -xf "$work/strata.tar" blobs manifest.json
jq -r '.[0].Layers[]' "$work/layers/manifest.json" | awk -v d="$work/layers" '{ print NR, d "/" $0 }' >"$work/layers.txt"
cat >"$work/limit-load.sh" <<SH
#!/bin/sh
# Every layer tar extracted into a directory of its own, two at a time.
xargs -P 2 -n 2 sh -c 'mkdir -p $work/lx/\$0 && tar -C $work/lx/\$0 -xf \$1' <$work/layers.txt
sync -f $work/lx
SH
chmod +x "$work/limit-load.sh"

# The push commands, name and command line in turn (skopeo with podman).
p_strata="${strata[*]} push -q $reg/bench/strata:1"
pushes=(-n strata "$p_strata")
has_engine docker && pushes+=(-n docker "${docker[*]} push -q $reg/bench/docker:1")
has_engine podman && pushes+=(-n podman "${podman[*]} push -q --tls-verify=false $reg/bench/podman:1"
	-n skopeo "$SKOPEO copy -q --dest-tls-verify=false oci:$work/oci docker://$reg/bench/skopeo:1")

# The push limit's input: every blob strata's push stores, compressed as it
# sent them, copied out of the registry's storage with their digests.
"$work/fresh-registry.sh"
sh -c "$p_strata" >/dev/null
mkdir -p "$work/upload"
for f in "$work"/registry/docker/registry/v2/blobs/sha256/*/*/data; do
	hex=$(basename "$(dirname "$f")")
	cp "$f" "$work/upload/$hex"
	echo "$hex $work/upload/$hex"
done >"$work/upload.txt"
upload_mb=$(awk '{ print $2 }' "$work/upload.txt" | xargs stat -c %s | awk '{ n += $1 } END { printf "%d", n / 1e6 }')
cat >"$work/limit-upload.sh" <<SH
#!/bin/sh
# Each blob: a session opened (POST), its bytes and digest in one PUT; three
# blobs at a time, as strata and docker push.
xargs -P 3 -n 2 sh -c 'loc=\$(curl -sf -X POST -D - -o /dev/null http://$reg/v2/bench/upload/blobs/uploads/ | tr -d "\\r" | sed -n "s/^[Ll]ocation: //p")
case \$loc in *\\?*) sep="&" ;; *) sep="?" ;; esac
curl -sf -H "Expect:" -H "Content-Type: application/octet-stream" -T "\$1" -o /dev/null "\$loc\${sep}digest=sha256:\$0"' <$work/upload.txt
SH
chmod +x "$work/limit-upload.sh"

mkdir -p "$OUT"
{
	engine_versions
	has_engine podman && echo "skopeo: $($SKOPEO --version)"
	echo "image: $image_mb MB uncompressed, $(find "$work/ctx" -type f | wc -l) files in the context, $(wc -l <"$work/layers.txt") layers; strata's push sends $upload_mb MB of blobs"
} | tee "$OUT/share-versions.txt"

echo "== push (fresh registry before each run)"
hyperfine --runs "$RUNS" --export-json "$OUT/share-push.json" --export-markdown "$OUT/share-push.md" \
	--prepare "$work/fresh-registry.sh" \
	"${pushes[@]}" -n registry-put "$work/limit-upload.sh"

echo "== second push (the registry has every blob)"
"$work/fresh-registry.sh"
for ((i = 1; i < ${#pushes[@]}; i += 3)); do sh -c "${pushes[i+1]}" >/dev/null; done
hyperfine --runs "$RUNS" --export-json "$OUT/share-push-again.json" --export-markdown "$OUT/share-push-again.md" \
	"${pushes[@]}"

saves=()
has_engine docker && saves+=(-n docker "${docker[*]} save -o $work/s-docker.tar bench:latest")
has_engine podman && saves+=(-n podman "${podman[*]} save -o $work/s-podman.tar bench:latest")
echo "== save"
hyperfine --runs "$RUNS" --export-json "$OUT/share-save.json" --export-markdown "$OUT/share-save.md" \
	--prepare "rm -f $work/s-*.tar; sync" \
	-n dd-fsync "dd if=$work/strata.tar of=$work/s-dd.tar bs=1M conv=fsync status=none" \
	-n dd "dd if=$work/strata.tar of=$work/s-dd.tar bs=1M status=none" \
	-n strata "${strata[*]} save -o $work/s-strata.tar bench:latest" \
	"${saves[@]}"

echo "== load (into a store without the image or its layers)"
# Each command forgets what its previous run made in a --prepare of its own
# (hyperfine pairs them in order). On a journal-less ext4 a new inode is not
# taken from those freed less than 60 s ago (5 min while the inode table is
# dirty; fs/ext4/ialloc.c, recently_deleted): every file creation scans past
# all of them, so a load right after another's 3000 files were deleted pays
# for those too, and hyperfine's order, not the engine, decided the ratio
# (tar-x first, 3 runs: strata 3.43 s against 1.17 s; strata first: 1.28 s
# against 1.70 s). tar-x and strata therefore start each run in a new
# directory, the previous one renamed aside (a rename frees no inode) and
# deleted after the last run; docker and podman must delete their image and
# layers, and wait LOAD_SETTLE seconds (61) after it, synced, before the run.
mkdir -p "$work/aside"
aside() { echo "for d in $*; do if [ -e \$d ]; then mv \$d $work/aside/\$(date +%s%N); fi; done; sync"; }
loads=(-n tar-x "$work/limit-load.sh" -n strata "$STRATA --root $work/strata-load load -i $work/strata.tar")
preps=(--prepare "$(aside "$work/lx")" --prepare "$(aside "$work/strata-load")")
settle="sync; sleep ${LOAD_SETTLE:-61}"
if has_engine docker; then
	"${docker[@]}" save -o "$work/docker.tar" bench:latest
	loads+=(-n docker "${docker[*]} load -i $work/docker.tar")
	preps+=(--prepare "${docker[*]} rmi -f bench:latest $reg/bench/docker:1 >/dev/null 2>&1; ${docker[*]} image prune -af >/dev/null; $settle")
fi
if has_engine podman; then
	"${podman[@]}" save -o "$work/podman.tar" bench:latest
	loads+=(-n podman "${podman[*]} load -i $work/podman.tar")
	preps+=(--prepare "${podman[*]} rmi -af >/dev/null 2>&1; $settle")
fi
hyperfine --runs "$RUNS" --export-json "$OUT/share-load.json" --export-markdown "$OUT/share-load.md" \
	"${preps[@]}" "${loads[@]}"
rm -rf "$work/aside" "$work/lx"

echo "== strata's peak RSS (one run each)"
rm -f "$OUT/share-rss.txt"
"$work/fresh-registry.sh"
peak_rss push "$OUT/share-rss.txt" "${strata[@]}" push -q "$reg/bench/strata:1"
peak_rss save "$OUT/share-rss.txt" "${strata[@]}" save -o "$work/s-strata.tar" bench:latest
rm -rf "$work/strata-load"
peak_rss load "$OUT/share-rss.txt" "$STRATA" --root "$work/strata-load" load -i "$work/strata.tar"

echo "== machine limits over strata's archive"
(cd "$repo" && go run ./bench/share/limits -in "$work/strata.tar" -dir "$work") | tee "$OUT/share-limits.txt"

echo "== summary: mean s, MB/s of the uncompressed image, ratio to docker, fraction of the limit's speed (same run), of the disk's write speed"
limit() { grep "^$1" "$OUT/share-limits.txt" | cut -f2; }
mean() { jq --arg c "$2" '.results[] | select(.command == $c) | .mean' "$OUT/share-$1.json"; }
gz=$(limit gzip); sha=$(limit sha256)
# Each scenario's limit as a time: push the slower of compressing (pgzip on
# both cores) and the registry receiving the compressed blobs; save and load
# their commands in the same hyperfine run.
push_lim=$(jq -n --argjson mb "$image_mb" --argjson gz "$gz" --argjson up "$(mean push registry-put)" '[$mb / $gz, $up] | max')
disk=$(mean save dd-fsync)
for s in push:$push_lim push-again:0 save:$disk load:$(mean load tar-x); do
	scen=${s%%:*} lim=${s#*:}
	jq -r --arg s "$scen" --argjson mb "$image_mb" --argjson lim "$lim" --argjson disk "$disk" '
		def r2: . * 100 | round / 100;
		([.results[] | select(.command == "docker")] | first) as $d
		| .results[] | "\($s)\t\(.command)\t\(.mean | r2)\t\($mb / .mean | round)\t\(if $d then .mean / $d.mean | r2 else "-" end)\t\(if $lim > 0 then ($lim / .mean | r2) else "-" end)\t\(if $s == "save" or $s == "load" then ($disk / .mean | r2) else "-" end)"' \
		"$OUT/share-$scen.json"
done | (printf 'scenario\tengine\tmean s\tMB/s\tmean/docker\tof limit\tof disk write\n'; cat) |
	column -t -s "$(printf '\t')" | tee "$OUT/share-ratios.txt"
echo "limits (times for the $image_mb MB image): push $(jq -n "$push_lim * 100 | round / 100") s = the slower of gzip on both cores ($gz MB/s: $(jq -n "$image_mb / $gz * 100 | round / 100") s) and registry-put ($(jq -n "$(mean push registry-put) * 100 | round / 100") s); save dd-fsync; load tar-x of the layers + sync; sha256 $sha MB/s, zstd $(limit zstd) MB/s (a second push sends no layer bytes: no limit applies)" | tee -a "$OUT/share-ratios.txt"
