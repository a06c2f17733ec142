#!/bin/sh
# binfmt.sh [ARCH...]: make the kernel run foreign binaries through Debian's
# qemu-user-static, so that `strata build --platform linux/ARCH` can build
# through emulation (default ARCH: aarch64). It mounts binfmt_misc when it
# is not mounted and registers qemu-ARCH from Debian's binfmt.d file, whose
# flags include F (fix-binary): the kernel opens the interpreter now, so it
# also runs inside containers whose root has no qemu. Idempotent; root only.
set -eu
[ $# -gt 0 ] || set -- aarch64
bm=/proc/sys/fs/binfmt_misc
if [ ! -e "$bm/register" ]; then
	mount -t binfmt_misc binfmt_misc "$bm"
fi
for arch in "$@"; do
	conf=/usr/lib/binfmt.d/qemu-$arch.conf
	[ -r "$conf" ] || { echo "binfmt.sh: $conf not found (apt-get install qemu-user-static)" >&2; exit 1; }
	if [ -e "$bm/qemu-$arch" ]; then
		if grep -q '^flags:.*F' "$bm/qemu-$arch"; then
			echo 1 > "$bm/qemu-$arch" # enable a handler left disabled
			continue
		fi
		echo -1 > "$bm/qemu-$arch" # without F it cannot run in containers
	fi
	# binfmt_misc decodes the \x escapes of the magic and mask itself.
	grep -v '^#' "$conf" | head -n 1 > "$bm/register"
done
