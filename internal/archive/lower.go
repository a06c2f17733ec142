package archive

import (
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// lowerEntry is a path as seen through a stack of overlay layer dirs.
type lowerEntry struct {
	path string // host path of the topmost layer's copy
	st   unix.Stat_t
	// dirs: for a directory, the host paths of every layer's copy that
	// overlayfs merges into it, topmost first (cut at an opaque dir).
	dirs []string
}

func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

func isOpaque(path string) bool {
	var b [1]byte
	n, err := unix.Lgetxattr(path, overlayOpaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// lookupLower finds rel (clean, relative) in the merged view of layers
// (topmost first) the way overlayfs does: a whiteout or a non-directory hides
// everything below it, an opaque directory stops the merge. Every prefix is
// checked with lstat on a path whose parents are known real directories, so no
// symlink inside a layer is ever followed. It returns nil when rel is absent.
func lookupLower(layers []string, rel string) (*lowerEntry, error) {
	if len(layers) == 0 {
		return nil, nil
	}
	stack := layers
	var top *lowerEntry
	start := 0
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			continue
		}
		name := rel[start:i]
		start = i + 1
		if name == "" {
			continue
		}
		if top != nil && !isDir(&top.st) {
			return nil, nil // a file where a directory is needed
		}
		var next []string
		top = nil
		for _, dir := range stack {
			p := dir + "/" + name
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				if err == unix.ENOENT || err == unix.ENOTDIR {
					continue
				}
				return nil, &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			if isWhiteoutDev(&st) {
				break
			}
			if top == nil {
				top = &lowerEntry{path: p, st: st}
			}
			if !isDir(&st) {
				break // a non-directory ends the merge
			}
			next = append(next, p)
			if isOpaque(p) {
				break
			}
		}
		if top == nil {
			return nil, nil
		}
		stack = next
	}
	if top != nil && isDir(&top.st) {
		top.dirs = stack
	}
	return top, nil
}

// mergedNames lists the visible names of a merged lower directory given its
// layer copies (lowerEntry.dirs), sorted.
func mergedNames(dirs []string) ([]string, error) {
	seen := map[string]bool{} // name -> visible
	for _, d := range dirs {
		names, err := readNames(d)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if _, ok := seen[n]; ok {
				continue
			}
			var st unix.Stat_t
			if err := unix.Lstat(d+"/"+n, &st); err != nil {
				return nil, &os.PathError{Op: "lstat", Path: d + "/" + n, Err: err}
			}
			seen[n] = !isWhiteoutDev(&st)
		}
	}
	var out []string
	for n, visible := range seen {
		if visible {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// readNames returns the sorted names in dir.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}
