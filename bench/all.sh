#!/bin/bash
# bench/all.sh (make bench): every benchmark script under bench/*/ with all
# engines' stores (strata, a private dockerd's --data-root, podman's --root)
# on one freshly made filesystem, and the machine's limits (bench/limits.sh)
# measured on it in the same run:
#   ext4   a sparse file, mkfs.ext4 -O ^has_journal, loop-mounted: fresh block
#          groups and no recently-deleted inodes, which on this VM's / slow
#          file creation for minutes after big deletes, whichever engine made
#          them (see BENCHMARKS.md)
#   ext4j  the same with mkfs.ext4's default journal, as users' ext4 has it:
#          ext4 skips recently deleted inodes on allocation only without a
#          journal, so a build right after a prune does not pay for it here
#   tmpfs  the same in memory: a CPU-only column
# Results: bench/results/FS/SCRIPT/ and bench/results/summary.txt. Run as
# root on an otherwise idle machine:
#
#   make bench                      # everything, every filesystem
#   FS=ext4 SCRIPTS="run build" make bench
#
# Environment: FS ("ext4 ext4j tmpfs"), SCRIPTS (default: every bench/*/NAME.sh
# whose file is NAME.sh in a directory NAME), EXT4_SIZE (80G, sparse),
# TMPFS_SIZE (12G), and each script's own variables.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
FS=${FS:-ext4 ext4j tmpfs}
if [ -z "${SCRIPTS:-}" ]; then
	SCRIPTS=""
	for d in "$here"/*/; do
		n=$(basename "$d")
		[ -x "$d/$n.sh" ] && SCRIPTS="$SCRIPTS $n"
	done
fi
results=$here/results
mkdir -p "$results"
mnt="" img=""
cleanup() {
	set +e
	if [ -n "$mnt" ] && mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
	[ -n "$mnt" ] && rmdir "$mnt"
	[ -n "$img" ] && rm -f "$img"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for fs in $FS; do
	mnt=$(mktemp -d /tmp/strata-benchfs.XXXXXX)
	case $fs in
	ext4 | ext4j)
		img=$(mktemp /var/tmp/strata-benchfs.XXXXXX.img)
		truncate -s "${EXT4_SIZE:-80G}" "$img"
		if [ "$fs" = ext4 ]; then
			mkfs.ext4 -q -F -O ^has_journal "$img"
		else
			mkfs.ext4 -q -F "$img"
		fi
		mount -o loop "$img" "$mnt"
		;;
	tmpfs) mount -t tmpfs -o "size=${TMPFS_SIZE:-12G}" tmpfs "$mnt" ;;
	*) echo "all.sh: unknown filesystem $fs (ext4, ext4j or tmpfs)" >&2; exit 2 ;;
	esac
	echo "=== $fs at $mnt"
	BENCH_DIR=$mnt OUT=$results/$fs/limits "$here/limits.sh"
	for s in $SCRIPTS; do
		echo "=== $fs: $s"
		if ! BENCH_DIR=$mnt OUT=$results/$fs/$s "$here/$s/$s.sh"; then
			echo "all.sh: $s failed on $fs" >&2
			echo "$s: FAILED" >"$results/$fs/$s.failed"
		fi
	done
	cleanup
	mnt="" img=""
done

{
	echo "bench/all.sh $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) cores"
	for fs in $FS; do
		echo
		echo "## $fs"
		cat "$results/$fs/limits/limits.txt"
		for f in "$results/$fs"/*/*ratios*.txt "$results/$fs"/*.failed; do
			[ -e "$f" ] || continue
			echo
			echo "# ${f#"$results/"}"
			cat "$f"
		done
	done
} | tee "$results/summary.txt"
