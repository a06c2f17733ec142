package rootfs

import (
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// DropCopyUps removes from an overlay upper dir each directory of rels
// (clean, relative to the root) that is there only because overlayfs
// copied it up: empty, not opaque, and of the same type, mode and owner
// as its copy in lowers (topmost first). Such a directory records nothing
// but an mtime; left in place it would put the directory into the layer.
// A directory that is not empty or differs is kept. Every path is looked
// up without following a symlink inside upper.
func DropCopyUps(upper string, lowers []string, rels []string) error {
	sorted := append([]string(nil), rels...)
	// Deepest first, so a parent emptied by its child's removal goes too.
	sort.Slice(sorted, func(i, j int) bool {
		return strings.Count(sorted[i], "/") > strings.Count(sorted[j], "/")
	})
	for _, rel := range sorted {
		if rel == "" || rel == "." {
			continue
		}
		up, err := LookupLower([]string{upper}, rel)
		if err != nil {
			return err
		}
		if up == nil || !IsDir(&up.Stat) || IsOpaque(up.Path) {
			continue
		}
		low, err := LookupLower(lowers, rel)
		if err != nil {
			return err
		}
		if low == nil || low.Stat.Mode != up.Stat.Mode || low.Stat.Uid != up.Stat.Uid || low.Stat.Gid != up.Stat.Gid {
			continue
		}
		if err := unix.Rmdir(up.Path); err != nil && err != unix.ENOTEMPTY && err != unix.EEXIST {
			return err
		}
	}
	return nil
}
