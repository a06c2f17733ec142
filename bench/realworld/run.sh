#!/bin/bash
# bench/realworld/run.sh: the real-world corpus (examples/realworld), built
# cold and warm with strata and, when installed, docker, in one run.
#
# The base is Debian bookworm minbase made by hack/debian-base.sh from the
# mirror apt on this host uses (cached in $REALWORLD_CACHE), imported into
# each engine as realworld/debian:bookworm. Each example is built
#   cold  --no-cache (only the base is reused; RUN steps fetch from the
#         Debian and npm mirrors through the host network)
#   warm  the same build again (every step cached)
# and its image is checked by the example's check.sh (it runs and does its
# job). Last, a container on strata's default network (pasta) runs apt-get
# update: outbound TCP and DNS from a container. docker builds with BuildKit (DOCKER_BUILDKIT=1) and --network host,
# on a private dockerd with its own data root. Results (seconds, image size,
# check) go to stdout and $OUT/realworld-DATE.md. Run as root:
#
#   make build && bench/realworld/run.sh      (or: make realworld)
#
# Environment: STRATA, DOCKER (as bench/engines.sh), EXAMPLES (default: all),
# ENGINES (default: strata, plus docker when dockerd is installed),
# REALWORLD_CACHE (default /var/cache/strata-realworld), OUT.
set -euo pipefail

NAME=realworld
HYPERFINE=no
if [ -z "${ENGINES:-}" ]; then
	ENGINES=strata
	command -v dockerd >/dev/null && ENGINES="strata docker"
fi
# shellcheck source=../engines.sh
. "$(dirname "$0")/../engines.sh"
OUT=${OUT:-$here/results}
CACHE=${REALWORLD_CACHE:-/var/cache/strata-realworld}
EXAMPLES=${EXAMPLES:-apt go node python web cache}
corpus=$repo/examples/realworld
base=realworld/debian:bookworm

echo "== base: Debian bookworm minbase ($CACHE/debian-bookworm.tar)"
"$repo/hack/debian-base.sh" "$CACHE/debian-bookworm.tar"
start_engines "$CACHE/debian-bookworm.tar" "$base"

# The contexts are copies, so generated files never land in the repository.
cp -a "$corpus" "$work/ctx"
"$work/ctx/web/gen-assets.sh" "$work/ctx/web/site"
echo "web assets: $(find "$work/ctx/web/site" -type f | wc -l) files, $(du -sh "$work/ctx/web/site" | cut -f1)"

# Engine commands as single executables, for the check scripts.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$STRATA" "$work/strata" >"$work/bin/strata"
printf '#!/bin/sh\nexec %q -H %q "$@"\n' "$DOCKER" "unix://$work/docker.sock" >"$work/bin/docker"
chmod +x "$work/bin/strata" "$work/bin/docker"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# A host behind a TLS-inspecting proxy trusts its CA through
# /usr/local/share/ca-certificates; builds get those certificates as the
# "ca" secret (the README's pattern), never in a layer.
cas=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | sort)
if [ -n "$cas" ]; then
	# shellcheck disable=SC2086
	cat $cas >"$work/ca.crt"
	secret=(--secret "id=ca,src=$work/ca.crt")
	echo "extra CA certificates for RUN: $(echo "$cas" | wc -l) (as the build secret \"ca\")"
else
	secret=()
fi

build() { # ENGINE EXAMPLE [FLAGS...] -> log in $work/logs
	local engine=$1 ex=$2
	shift 2
	set -- "${secret[@]}" "$@"
	case $engine in
	strata) "$work/bin/strata" build --progress plain -t "rw-$ex" "$@" "$work/ctx/$ex" ;;
	docker) DOCKER_BUILDKIT=1 "$work/bin/docker" build --progress plain --network host -t "rw-$ex" "$@" "$work/ctx/$ex" ;;
	esac
}

size() {
	case $1 in
	strata) "$work/bin/strata" inspect --format '{{.Size}}' "rw-$2" ;;
	docker) "$work/bin/docker" image inspect --format '{{.Size}}' "rw-$2" ;;
	esac
}

mkdir -p "$work/logs" "$OUT"
results=$work/results.md
{
	echo "| example | engine | cold s | warm s | image MB | check |"
	echo "|---|---|---|---|---|---|"
} >"$results"
failed=0
for ex in $EXAMPLES; do
	for engine in $ENGINES; do
		log=$work/logs/$engine-$ex
		echo "== $ex: $engine"
		t0=$(now)
		if ! build "$engine" "$ex" --no-cache >"$log-cold.log" 2>&1; then
			tail -20 "$log-cold.log" >&2
			echo "| $ex | $engine | failed | | | |" >>"$results"
			failed=1
			continue
		fi
		t1=$(now)
		build "$engine" "$ex" >"$log-warm.log" 2>&1 || { tail -20 "$log-warm.log" >&2; failed=1; }
		t2=$(now)
		check=ok
		CONTEXT=$work/ctx/$ex "$corpus/$ex/check.sh" "$work/bin/$engine" "rw-$ex" >"$log-check.log" 2>&1 || {
			check=FAILED
			failed=1
			cat "$log-check.log" >&2
		}
		line="| $ex | $engine | $(secs "$t0" "$t1") | $(secs "$t1" "$t2") | $(mb "$(size "$engine" "$ex")") | $check |"
		echo "$line"
		echo "$line" >>"$results"
	done
done

# Outbound from a container on strata's default network (its own namespace,
# connected by pasta): apt-get update against the mirror the base names.
if has_engine strata; then
	echo "== outbound: strata run (default network) apt-get update"
	check=ok
	"$work/bin/strata" run --rm "$base" apt-get update >"$work/logs/outbound.log" 2>&1 || {
		check=FAILED
		failed=1
		tail -20 "$work/logs/outbound.log" >&2
	}
	echo "| outbound: run apt-get update on the default network | strata | | | | $check |" | tee -a "$results"
fi

{
	echo "# realworld corpus, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	engine_versions | sed 's/^/    /'
	echo
	cat "$results"
} >"$OUT/realworld-$(date -u +%Y%m%d-%H%M).md"
echo
cat "$results"
exit $failed
