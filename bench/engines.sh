# engines.sh: sourced by the bench scripts. Sets up strata, a private dockerd
# and a private podman store side by side in one temp dir, each with the
# busybox base image imported, and removes everything on exit.
#
# Before sourcing: NAME (for messages). After: $work, $repo, arrays strata,
# docker and podman (the engine commands with their private roots),
# $podman_ulimits (flags podman's containers need on this host), $dockerd_pid.

here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
STRATA=${STRATA:-$repo/bin/strata}
if [ -z "${DOCKER:-}" ]; then
	# /usr/local/bin may hold a newer docker client than the Debian daemon.
	if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
PODMAN=${PODMAN:-podman}

# ENGINES (default: all three) picks the engines a script compares;
# HYPERFINE=no drops that requirement for scripts that time runs themselves.
ENGINES=${ENGINES:-strata docker podman}
has_engine() { case " $ENGINES " in *" $1 "*) return 0 ;; esac; return 1; }
tools=("$STRATA" jq runc)
has_engine docker && tools+=("$DOCKER" dockerd)
has_engine podman && tools+=("$PODMAN")
[ "${HYPERFINE:-yes}" = no ] || tools+=(hyperfine)
for tool in "${tools[@]}"; do
	command -v "$tool" >/dev/null || { echo "$NAME: $tool not found (apt-get install -y docker.io podman hyperfine jq runc; make build)" >&2; exit 1; }
done

# BENCH_DIR puts every engine's store on the filesystem under test (make
# bench makes a fresh one for each run); the default is /tmp.
work=$(mktemp -d "${BENCH_DIR:-/tmp}/strata-bench-$NAME.XXXXXX")
dockerd_pid=""
# Paths outside the work dir that dockerd, containerd and podman create even
# with their roots redirected (lock files, shim sockets, caches, key.json);
# the ones that did not exist before this run are removed at the end.
host_paths=(/dev/shm/libpod_lock /var/lib/containers /run/containers /run/libpod
	/run/docker /run/containerd /etc/docker/key.json /etc/cni/net.d/cni.lock)
absent=()
for p in "${host_paths[@]}"; do [ -e "$p" ] || absent+=("$p"); done

strata=("$STRATA" --root "$work/strata")
docker=("$DOCKER" -H "unix://$work/docker.sock")
# podman refuses a runroot path longer than 50 characters, which a fresh
# filesystem's mount point makes likely; its runroot is run-time state only
# (locks, pids), so it lives in a short temp dir off the filesystem under test.
podman_run=$(mktemp -d /tmp/pr.XXXXXX)
podman=("$PODMAN" --root "$work/podman/root" --runroot "$podman_run" --tmpdir "$work/podman/tmp"
	--events-backend none --cgroup-manager cgroupfs --runtime runc)
# podman (unlike docker and strata) sets RLIMIT_NOFILE/NPROC in the spec, to
# values above what a process without CAP_SYS_RESOURCE may set here; give it
# the limits the other engines' containers inherit (capped where the
# conmon-started runc could not raise them further).
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
podman_ulimits="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"

cleanup() {
	set +e
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		"${docker[@]}" system prune -af >/dev/null 2>&1
		kill "$dockerd_pid"
		# dockerd stops its own containerd and unmounts its layers on SIGTERM.
		while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.2; done
	fi
	[ -d "$work/podman" ] && "${podman[@]}" system prune -af >/dev/null 2>&1
	# Anything an engine left mounted under the work dir, deepest first.
	awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$work" "$podman_run"
	for p in "${absent[@]}"; do rm -rf "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_engines [TAR NAME] imports a base image (default: the busybox
# rootfs as busybox:latest) into each engine of ENGINES (starting dockerd).
start_engines() {
	local tar=${1:-$work/busybox.tar} name=${2:-busybox:latest}
	[ -n "${1:-}" ] || "$repo/hack/busybox-rootfs.sh" "$tar"
	mkdir -p "$work/strata" "$work/podman/tmp"
	"${strata[@]}" import "$tar" "$name" >/dev/null
	has_engine docker || return 0
	dockerd --bridge=none --iptables=false --ip6tables=false \
		--data-root "$work/docker" --exec-root "$work/docker-exec" \
		--host "unix://$work/docker.sock" --pidfile "$work/docker.pid" >"$work/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 1 100); do
		"${docker[@]}" version >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || { cat "$work/dockerd.log" >&2; exit 1; }
		sleep 0.2
	done
	"${docker[@]}" import "$tar" "$name" >/dev/null
	has_engine podman || return 0
	"${podman[@]}" import "$tar" "$name" >/dev/null
}

# engine_versions prints each engine's version, for the results.
engine_versions() {
	echo "strata: $("$STRATA" version 2>/dev/null | head -3 | tr '\n' ' ')"
	has_engine docker && echo "docker: $("${docker[@]}" version --format 'client {{.Client.Version}}, server {{.Server.Version}}')"
	has_engine podman && echo "podman: $("${podman[@]}" version --format '{{.Client.Version}}'), runtime $(runc --version | head -1)"
	[ "${HYPERFINE:-yes}" = no ] || echo "hyperfine: $(hyperfine --version)"
	echo "kernel: $(uname -r), cores: $(nproc)"
}
