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

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
STRATA=${STRATA:-$repo/bin/strata}
if [ -z "${DOCKER:-}" ]; then
	if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
PODMAN=${PODMAN:-podman}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
OUT=${OUT:-$here/results}

for tool in "$STRATA" "$DOCKER" dockerd "$PODMAN" hyperfine jq runc; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (apt-get install -y docker.io podman hyperfine jq runc; make build)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/strata-bench-run.XXXXXX)
dockerd_pid=""
# Paths outside the work dir that dockerd, containerd and podman create even
# with their roots redirected (lock files, shim sockets, caches, key.json);
# the ones that did not exist before this run are removed at the end.
host_paths=(/dev/shm/libpod_lock /var/lib/containers /run/containers /run/libpod
	/run/docker /run/containerd /etc/docker/key.json /etc/cni/net.d/cni.lock)
absent=()
for p in "${host_paths[@]}"; do [ -e "$p" ] || absent+=("$p"); done

cleanup() {
	set +e
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		"$DOCKER" -H "unix://$work/docker.sock" rmi -f busybox:latest >/dev/null 2>&1
		kill "$dockerd_pid"
		# dockerd stops its own containerd and unmounts its layers on SIGTERM.
		while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.2; done
	fi
	[ -d "$work/podman" ] && "${podman[@]}" rmi -af >/dev/null 2>&1
	[ -d "$work/strata" ] && "$STRATA" --root "$work/strata" rmi -f busybox:latest >/dev/null 2>&1
	# Anything an engine left mounted under the work dir, deepest first.
	awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$work"
	for p in "${absent[@]}"; do rm -rf "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

podman=("$PODMAN" --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp"
	--events-backend none --cgroup-manager cgroupfs --runtime runc)
# podman (unlike docker and strata) sets RLIMIT_NOFILE/NPROC in the spec, to
# values above what a process without CAP_SYS_RESOURCE may set here; give it
# the limits the other engines' containers inherit (capped where the
# conmon-started runc could not raise them further).
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
podman_run_flags="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"

echo "== preparing base image"
"$repo/hack/busybox-rootfs.sh" "$work/busybox.tar"

echo "== strata"
mkdir -p "$work/strata"
"$STRATA" --root "$work/strata" import "$work/busybox.tar" busybox:latest

echo "== docker (own dockerd)"
dockerd --bridge=none --iptables=false --ip6tables=false \
	--data-root "$work/docker" --exec-root "$work/docker-exec" \
	--host "unix://$work/docker.sock" --pidfile "$work/docker.pid" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 100); do
	"$DOCKER" -H "unix://$work/docker.sock" version >/dev/null 2>&1 && break
	kill -0 "$dockerd_pid" 2>/dev/null || { cat "$work/dockerd.log" >&2; exit 1; }
	sleep 0.2
done
"$DOCKER" -H "unix://$work/docker.sock" import "$work/busybox.tar" busybox:latest

echo "== podman"
mkdir -p "$work/podman/tmp"
"${podman[@]}" import "$work/busybox.tar" busybox:latest

strata_cmd="$STRATA --root $work/strata run --rm --network none busybox true"
docker_cmd="$DOCKER -H unix://$work/docker.sock run --rm --network none busybox true"
podman_cmd="${podman[*]} run --rm --network none $podman_run_flags busybox true"

# One run of each first, so a broken engine shows its own error instead of
# hyperfine's generic one.
for c in "$strata_cmd" "$docker_cmd" "$podman_cmd"; do
	$c || { echo "run.sh: failed: $c" >&2; exit 1; }
done

echo "== versions"
versions="$work/versions.txt"
{
	echo "strata: $("$STRATA" version 2>/dev/null | head -3 | tr '\n' ' ')"
	echo "docker: $("$DOCKER" -H "unix://$work/docker.sock" version --format 'client {{.Client.Version}}, server {{.Server.Version}}')"
	echo "podman: $("${podman[@]}" version --format '{{.Client.Version}}'), runtime $(runc --version | head -1)"
	echo "hyperfine: $(hyperfine --version)"
	echo "kernel: $(uname -r), cores: $(nproc)"
} | tee "$versions"

mkdir -p "$OUT"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
	--export-markdown "$OUT/run-latency.md" --export-json "$OUT/run-latency.json" \
	-n strata "$strata_cmd" -n docker "$docker_cmd" -n podman "$podman_cmd"
cp "$versions" "$OUT/run-latency-versions.txt"

echo "== relative to docker (lower is faster; the median resists other load on the machine)"
jq -r '
	def ms: . * 10000 | round / 10;
	def x: . * 100 | round / 100;
	(.results[] | select(.command == "docker")) as $d
	| "engine\tmean ms\tmedian ms\tmin ms\tmean/docker\tmedian/docker",
	  (.results[] | "\(.command)\t\(.mean | ms)\t\(.median | ms)\t\(.min | ms)\t\(.mean / $d.mean | x)\t\(.median / $d.median | x)")' \
	"$OUT/run-latency.json" | column -t -s "$(printf '\t')" | tee "$OUT/run-latency-ratios.txt"
