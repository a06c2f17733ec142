package archive

import (
	"fmt"
	"path"
	"strings"
)

// cleanName turns a tar entry name into a clean path relative to the root
// ("" is the root itself). Absolute names land inside the root, as in a
// chroot (GNU tar strips the leading "/" too); a relative name that climbs
// above the root with ".." is rejected rather than clamped, because no
// well-formed layer has one.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name %q contains NUL: %w", name, ErrBreakout)
	}
	var rel string
	if strings.HasPrefix(name, "/") {
		rel = strings.TrimPrefix(path.Clean(name), "/") // ".." stops at "/"
	} else {
		rel = path.Clean(name)
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("name %q: %w", name, ErrBreakout)
	}
	if rel == "." || rel == "" {
		return "", nil
	}
	return rel, nil
}

// splitRel splits a clean relative path into its parent ("" for the root) and
// last component.
func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func joinRel(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

// entryKind is what a tar entry name means for whiteout handling.
type entryKind int

const (
	entryPlain    entryKind = iota // an ordinary file, dir, link...
	entryWhiteout                  // .wh.NAME: delete NAME
	entryOpaque                    // .wh..wh..opq: hide the lower contents of the dir
	entryMeta                      // other .wh..wh.* (AUFS): ignore
)

// classify decides what the last component of a clean name means. For a
// whiteout it returns the name being deleted.
func classify(base string) (entryKind, string, error) {
	switch {
	case !strings.HasPrefix(base, whiteoutPrefix):
		return entryPlain, "", nil
	case base == whiteoutOpaque:
		return entryOpaque, "", nil
	case strings.HasPrefix(base, whiteoutMetaPrefix):
		return entryMeta, "", nil
	}
	target := base[len(whiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return 0, "", fmt.Errorf("whiteout %q names no file: %w", base, ErrBreakout)
	}
	return entryWhiteout, target, nil
}
