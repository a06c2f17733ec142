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

# ratio_table JSON BASE OUT [UNIT [LIMIT]] prints (and writes to OUT) a
# table of hyperfine's JSON: each command's mean, median and min (UNIT: ms,
# the default, or s) and its mean and median over command BASE's. BASE
# best-peer is the fastest command that is neither strata nor LIMIT. LIMIT,
# when given, is the command in the same run doing the machine's best at the
# same job (tar -x of the same files, say): a last column gives mean/LIMIT.
ratio_table() {
	local json=$1 base=$2 out=$3 unit=${4:-ms} lim=${5:-}
	jq -r --arg b "$base" --arg u "$unit" --arg lim "$lim" '
		def t: if $u == "s" then . * 100 | round / 100 else . * 10000 | round / 10 end;
		def x: . * 100 | round / 100;
		(if $b == "best-peer"
		 then [.results[] | select((.command | startswith("strata") | not) and .command != $lim)] | min_by(.mean)
		 else .results[] | select(.command == $b) end) as $d
		| (if $lim == "" then null else .results[] | select(.command == $lim) end) as $l
		| (if $d then $d.command | gsub(" "; "-") else $b end) as $dn
		| "engine\tmean \($u)\tmedian \($u)\tmin \($u)\tmean/\($dn)\tmedian/\($dn)" + (if $l then "\tmean/\($lim)" else "" end),
		  (.results[] | "\(.command)\t\(.mean | t)\t\(.median | t)\t\(.min | t)\t\(if $d then .mean / $d.mean | x else "-" end)\t\(if $d then .median / $d.median | x else "-" end)"
			+ (if $l then "\t\(.mean / $l.mean | x)" else "" end))' \
		"$json" | column -t -s "$(printf '\t')" | tee "$out"
}

# peak_rss LABEL OUT COMMAND... runs COMMAND once under /usr/bin/time and
# appends its peak resident set size to OUT (and prints it).
peak_rss() {
	local label=$1 out=$2; shift 2
	/usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null
	printf '%-24s %6.1f MiB\n' "$label" "$(awk '{ print $1 / 1024 }' "$work/rss")" | tee -a "$out"
}

# image_tar TAR CTX writes a tar of the busybox rootfs with the build
# benchmark's context (bench/build/context.sh) under /app: a base image of
# many files that every engine imports the same way.
image_tar() {
	local tar=$1 ctx=$2 root=$work/image-root
	"$repo/hack/busybox-rootfs.sh" "$work/busybox.tar"
	mkdir -p "$root"
	tar -C "$root" -xf "$work/busybox.tar"
	cp -a "$ctx" "$root/app"
	tar -C "$root" -cf "$tar" .
	rm -rf "$root"
}

# start_registry starts Debian's docker-registry on 127.0.0.1 (a random port,
# storage under the work dir) and sets $reg to its host:port. The script
# $work/fresh-registry.sh restarts it on empty storage (a hyperfine
# --prepare); it is stopped on exit.
start_registry() {
	command -v docker-registry >/dev/null || { echo "$NAME: docker-registry not found (apt-get install docker-registry)" >&2; exit 1; }
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	reg=127.0.0.1:$port
	cat >"$work/registry.yml" <<-YML
	version: 0.1
	log:
	  level: error
	  accesslog:
	    disabled: true
	storage:
	  filesystem:
	    rootdirectory: $work/registry
	http:
	  addr: $reg
	YML
	cat >"$work/fresh-registry.sh" <<-SH
	#!/bin/sh
	# Stops the registry (by its PID), empties its storage, starts it again.
	[ -s $work/registry.pid ] && kill \$(cat $work/registry.pid) 2>/dev/null && while kill -0 \$(cat $work/registry.pid) 2>/dev/null; do sleep 0.05; done
	rm -rf $work/registry
	docker-registry serve $work/registry.yml >>$work/registry.log 2>&1 &
	echo \$! > $work/registry.pid
	for i in \$(seq 1 200); do curl -sf http://$reg/v2/ >/dev/null && exit 0; sleep 0.05; done
	echo "registry did not start" >&2; exit 1
	SH
	chmod +x "$work/fresh-registry.sh"
	trap 'stop_registry; cleanup' EXIT
	"$work/fresh-registry.sh"
}
stop_registry() { [ -s "$work/registry.pid" ] && kill "$(cat "$work/registry.pid")" 2>/dev/null; true; }
