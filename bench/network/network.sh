#!/bin/bash
# bench/network/network.sh: what networking costs, strata vs docker vs podman.
#
# 1. Latency of `ENGINE run --rm busybox true` on each network mode, all in
#    ONE hyperfine invocation: strata's default network (own namespace +
#    pasta), --network none and --network host, next to docker and podman
#    with --network none and host. Their default networks need a bridge
#    (docker0, netavark/CNI), which this kind of machine does not allow: the
#    benchmark's dockerd runs with --bridge=none, and podman 4.3 has no pasta.
# 2. Throughput through a published port: 1 GB over one TCP connection from
#    the host into a container (`-p 127.0.0.1:PORT:8080`; sender and receiver
#    are bench/network/tcpsend, static, bind-mounted into the container) next
#    to the same transfer over the host's own loopback, alternating, best and
#    median of REPEAT each.
#
#   make build && bench/network/network.sh
#
# Environment: as bench/run/run.sh (STRATA, DOCKER, PODMAN, RUNS default 30,
# WARMUP default 3, OUT default bench/network/results), BYTES (default 1 GiB),
# REPEAT (default 5).
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
BYTES=${BYTES:-1073741824}
REPEAT=${REPEAT:-5}
NAME=network
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}
command -v pasta >/dev/null || { echo "network.sh: pasta not found (apt-get install passt)" >&2; exit 1; }
command -v busybox >/dev/null || { echo "network.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }

echo "== engines: strata, docker (own dockerd), podman"
start_engines
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/tcpsend" ./bench/network/tcpsend)

names=()
cmds=()
add() { names+=("$1"); cmds+=("$2"); }
add "strata default" "${strata[*]} run --rm busybox true"
add "strata none" "${strata[*]} run --rm --network none busybox true"
add "strata host" "${strata[*]} run --rm --network host busybox true"
add "docker none" "${docker[*]} run --rm --network none busybox true"
add "docker host" "${docker[*]} run --rm --network host busybox true"
add "podman none" "${podman[*]} run --rm --network none $podman_ulimits busybox true"
add "podman host" "${podman[*]} run --rm --network host $podman_ulimits busybox true"
for c in "${cmds[@]}"; do
	$c || { echo "network.sh: failed: $c" >&2; exit 1; }
done

echo "== versions"
versions="$work/versions.txt"
{ engine_versions; echo "pasta: $(dpkg-query -W -f '${Version}' passt 2>/dev/null)"; } | tee "$versions"

mkdir -p "$OUT"
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
	--export-markdown "$OUT/network-latency.md" --export-json "$OUT/network-latency.json" "${args[@]}"
cp "$versions" "$OUT/network-versions.txt"

echo "== latency relative to docker --network none (lower is faster)"
ratio_table "$OUT/network-latency.json" "docker none" "$OUT/network-latency-ratios.txt"

# free_port prints a TCP port on 127.0.0.1 nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

echo "== throughput: $BYTES bytes over one TCP connection, $REPEAT times each"
results="$work/throughput.txt"
: >"$results"
for i in $(seq 1 "$REPEAT"); do
	# Plain loopback: the same receiver on the host's 127.0.0.1.
	p=$(free_port)
	"$work/tcpsend" -l "127.0.0.1:$p" &
	recv_pid=$!
	echo "loopback $("$work/tcpsend" "127.0.0.1:$p" "$BYTES")" >>"$results"
	wait "$recv_pid"
	# A published port: pasta forwards it to the receiver in the container.
	p=$(free_port)
	id=$("${strata[@]}" run -d -p "127.0.0.1:$p:8080" -v "$work/tcpsend:/tcpsend:ro" busybox /tcpsend -l :8080)
	echo "published $("$work/tcpsend" "127.0.0.1:$p" "$BYTES")" >>"$results"
	"${strata[@]}" rm -f "$id" >/dev/null
done
awk '{ print $1 "\t" $2 "\t" $3 }' "$results" | sort -k1,1 -k3,3n | awk -F'\t' '
	{ n[$1]++; mbs[$1, n[$1]] = $3; if ($3 > best[$1]) best[$1] = $3 }
	END {
		print "path\tbest MB/s\tmedian MB/s\tbest/loopback"
		for (k in n) { med[k] = mbs[k, int((n[k] + 1) / 2)] }
		for (k in n) printf "%s\t%d\t%d\t%.2f\n", k, best[k], med[k], best[k] / best["loopback"]
	}' | column -t -s "$(printf '\t')" | tee "$OUT/network-throughput.txt"
