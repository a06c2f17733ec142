package rootfs

import (
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// LowerEntry is a path as seen through a stack of overlay layer dirs.
type LowerEntry struct {
	Path string // host path of the topmost layer's copy
	Stat unix.Stat_t
	// Dirs: for a directory, the host paths of every layer's copy that
	// overlayfs merges into it, topmost first (cut at an opaque dir).
	Dirs []string
}

// IsWhiteoutDev tells whether st is overlayfs's whiteout: a 0/0 char device.
func IsWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// IsDir tells whether st is a directory.
func IsDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// IsOpaque tells whether the directory path is an opaque overlay dir.
func IsOpaque(path string) bool {
	var b [1]byte
	n, err := unix.Lgetxattr(path, OpaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// LookupLower finds rel (clean, relative) in the merged view of layers
// (topmost first) the way overlayfs does: a whiteout or a non-directory hides
// everything below it, an opaque directory stops the merge. Every prefix is
// checked with lstat on a path whose parents are known real directories, so no
// symlink inside a layer is ever followed. It returns nil when rel is absent.
func LookupLower(layers []string, rel string) (*LowerEntry, error) {
	if len(layers) == 0 {
		return nil, nil
	}
	stack := layers
	var top *LowerEntry
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
		if top != nil && !IsDir(&top.Stat) {
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
			if IsWhiteoutDev(&st) {
				break
			}
			if top == nil {
				top = &LowerEntry{Path: p, Stat: st}
			}
			if !IsDir(&st) {
				break // a non-directory ends the merge
			}
			next = append(next, p)
			if IsOpaque(p) {
				break
			}
		}
		if top == nil {
			return nil, nil
		}
		stack = next
	}
	if top != nil && IsDir(&top.Stat) {
		top.Dirs = stack
	}
	return top, nil
}

// MergedNames lists the visible names of a merged lower directory given its
// layer copies (LowerEntry.Dirs), sorted.
func MergedNames(dirs []string) ([]string, error) {
	seen := map[string]bool{} // name -> visible
	for _, d := range dirs {
		names, err := ReadNames(d)
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
			seen[n] = !IsWhiteoutDev(&st)
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

// ReadNames returns the sorted names in dir.
func ReadNames(dir string) ([]string, error) {
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

// OpaqueXattr marks an overlay directory that hides the layers below it.
const OpaqueXattr = "trusted.overlay.opaque"

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// ResolveLower resolves rel in the merged view of layers (topmost first) the
// way the kernel would inside the mounted root: symlinks are followed, with
// absolute targets and ".." stopping at the root. It returns the resolved
// path, free of symlinks in the lowers, and its entry (nil when absent).
// Layers are committed and never change, so resolving to a string here is
// safe; the caller still writes through a Root.
func ResolveLower(layers []string, rel string) (string, *LowerEntry, error) {
	todo := strings.Split(Clean(rel), "/")
	var done []string
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := strings.Join(append(done, name), "/")
		le, err := LookupLower(layers, cur)
		if err != nil {
			return "", nil, err
		}
		if le == nil || le.Stat.Mode&unix.S_IFMT != unix.S_IFLNK {
			done = append(done, name)
			continue
		}
		if links++; links > maxSymlinks {
			return "", nil, &os.PathError{Op: "resolve", Path: rel, Err: unix.ELOOP}
		}
		target, err := os.Readlink(le.Path)
		if err != nil {
			return "", nil, err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	res := strings.Join(done, "/")
	le, err := LookupLower(layers, res)
	return res, le, err
}
