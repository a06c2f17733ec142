#!/bin/sh
# debian-base.sh OUT.tar: a Debian bookworm minbase root filesystem tarball
# made with debootstrap from the mirror apt on this host is configured with
# (there is no registry to pull debian:bookworm from). OUT.tar is kept and
# reused when it exists: the corpus builds start from the same base.
#
# Like docker's official debian image, the tarball ships an empty
# /etc/resolv.conf, no /etc/hostname and no apt lists.
set -eu
out=$1
[ -s "$out" ] && exit 0
suite=${SUITE:-bookworm}
mirror=${MIRROR:-}
if [ -z "$mirror" ]; then
	# The first deb URI of the configured sources (deb822 or one-line form).
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2; exit }')
	[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }')
fi
[ -n "$mirror" ] || { echo "debian-base.sh: no Debian mirror in /etc/apt/sources.list*; set MIRROR=" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debian-base.sh: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/debian-base.XXXXXX")
trap 'rm -rf "$dir"' EXIT
debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
rm -f "$dir.log"
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/*.log
: > "$dir/etc/resolv.conf"
rm -f "$dir/etc/hostname"
echo "deb $mirror $suite main" > "$dir/etc/apt/sources.list"
mkdir -p "$(dirname "$out")"
tar --sort=name --numeric-owner --xattrs -C "$dir" -cf "$out.tmp" .
mv "$out.tmp" "$out"
