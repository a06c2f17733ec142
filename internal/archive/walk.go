package archive

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

type xattr struct {
	name  string
	value []byte
}

// readXattrs returns the xattrs of path (a final symlink is not followed),
// sorted by name. It runs once per file of every diff, so it asks with a
// buffer that fits the usual list instead of asking for the size first: a
// file without xattrs costs one llistxattr.
func readXattrs(path string) ([]xattr, error) {
	var stack [256]byte
	list, err := xattrCall(stack[:], func(b []byte) (int, error) { return unix.Llistxattr(path, b) })
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
	}
	if len(list) == 0 {
		return nil, nil
	}
	var names []string
	for _, name := range bytes.Split(list, []byte{0}) {
		if len(name) > 0 {
			names = append(names, string(name))
		}
	}
	sort.Strings(names)
	xs := make([]xattr, 0, len(names))
	for _, name := range names {
		v, err := lgetxattr(path, name)
		if err == unix.ENODATA {
			continue // removed in between
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		xs = append(xs, xattr{name: name, value: v})
	}
	return xs, nil
}

func lgetxattr(path, name string) ([]byte, error) {
	var stack [128]byte
	v, err := xattrCall(stack[:], func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
	return bytes.Clone(v), err
}

// xattrCall runs a list/get xattr call with buf, and when that is too small
// asks for the size and retries until the value stops growing in between.
// The result may alias buf.
func xattrCall(buf []byte, call func([]byte) (int, error)) ([]byte, error) {
	n, err := call(buf)
	for err == unix.ERANGE {
		if n, err = call(nil); err != nil {
			return nil, err
		}
		buf = make([]byte, n)
		n, err = call(buf)
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// node is one entry of a tree being diffed.
type node struct {
	rel    string // relative to the tree root, slash separated
	path   string // host path
	st     unix.Stat_t
	xattrs []xattr // trusted.overlay.* removed
	link   string  // symlink target
	opaque bool    // trusted.overlay.opaque=y
}

// readNode lstats root/rel. For overlay upper dirs (overlay true) it refuses
// redirect and metacopy xattrs: with them the upper dir alone does not say
// what changed.
func readNode(root, rel string, overlay bool) (*node, error) {
	n := &node{rel: rel, path: root + "/" + rel}
	if err := unix.Lstat(n.path, &n.st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: n.path, Err: err}
	}
	if rootfs.IsWhiteoutDev(&n.st) {
		return n, nil
	}
	xs, err := readXattrs(n.path)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		if !strings.HasPrefix(x.name, overlayXattrPrefix) {
			n.xattrs = append(n.xattrs, x)
			continue
		}
		if !overlay {
			continue
		}
		switch x.name {
		case overlayOpaqueXattr:
			n.opaque = string(x.value) == "y" && rootfs.IsDir(&n.st)
		case overlayRedirectXattr, overlayMetacopyXattr:
			return nil, fmt.Errorf("%s has %s: %w", n.path, x.name, ErrUnsupportedOverlay)
		}
	}
	if n.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if n.link, err = os.Readlink(n.path); err != nil {
			return nil, err
		}
	}
	return n, nil
}

type eventKind int

const (
	evAdd    eventKind = iota // present in upper, not in lower (tree walk) / present in upper (overlay walk)
	evModify                  // present in both and changed, or a dir holding changes
	evDelete                  // removed
	evOpaque                  // the dir in n is opaque (overlay walk, right after its evAdd)
)

type event struct {
	kind eventKind
	rel  string
	n    *node // nil for evDelete
}

// walkOverlay reports every entry of an overlay upper dir, depth first, names
// sorted inside each dir. 0/0 char devices are deletions.
func walkOverlay(ctx contextErr, upper, rel string, emit func(event) error) error {
	names, err := rootfs.ReadNames(upper + "/" + rel)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		crel := joinRel(rel, name)
		n, err := readNode(upper, crel, true)
		if err != nil {
			return err
		}
		if rootfs.IsWhiteoutDev(&n.st) {
			if err := emit(event{kind: evDelete, rel: crel}); err != nil {
				return err
			}
			continue
		}
		if err := emit(event{kind: evAdd, rel: crel, n: n}); err != nil {
			return err
		}
		if !rootfs.IsDir(&n.st) {
			continue
		}
		if n.opaque {
			if err := emit(event{kind: evOpaque, rel: crel, n: n}); err != nil {
				return err
			}
		}
		if err := walkOverlay(ctx, upper, crel, emit); err != nil {
			return err
		}
	}
	return nil
}

// contextErr is the part of context.Context the walkers need.
type contextErr interface{ Err() error }

// treeWalker compares two trees. A change below a directory first emits the
// directory itself (evModify), like `docker diff` reports "C /etc" above
// "A /etc/foo", so a tar carries the parent's metadata with the change.
type treeWalker struct {
	ctx          contextErr
	lower, upper string // lower "" means empty
	emit         func(event) error
	pending      []*pendingDir
	bufA, bufB   []byte
}

type pendingDir struct {
	n    *node
	done bool
}

func (w *treeWalker) flush() error {
	for _, p := range w.pending {
		if !p.done {
			p.done = true
			if err := w.emit(event{kind: evModify, rel: p.n.rel, n: p.n}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *treeWalker) walk() error {
	return w.dir("", w.lower != "")
}

func (w *treeWalker) dir(rel string, hasLower bool) error {
	upNames, err := rootfs.ReadNames(w.upper + "/" + rel)
	if err != nil {
		return err
	}
	var loNames []string
	if hasLower {
		if loNames, err = rootfs.ReadNames(w.lower + "/" + rel); err != nil {
			return err
		}
	}
	i, j := 0, 0
	for i < len(upNames) || j < len(loNames) {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		switch {
		case j == len(loNames) || (i < len(upNames) && upNames[i] < loNames[j]):
			n, err := readNode(w.upper, joinRel(rel, upNames[i]), false)
			i++
			if err != nil {
				return err
			}
			if err := w.changed(evAdd, n, false); err != nil {
				return err
			}
		case i == len(upNames) || loNames[j] < upNames[i]:
			crel := joinRel(rel, loNames[j])
			j++
			if err := w.flush(); err != nil {
				return err
			}
			if err := w.emit(event{kind: evDelete, rel: crel}); err != nil {
				return err
			}
		default:
			crel := joinRel(rel, upNames[i])
			i++
			j++
			un, err := readNode(w.upper, crel, false)
			if err != nil {
				return err
			}
			ln, err := readNode(w.lower, crel, false)
			if err != nil {
				return err
			}
			sameType := un.st.Mode&unix.S_IFMT == ln.st.Mode&unix.S_IFMT
			differs := !sameType
			if sameType {
				if differs, err = w.differs(ln, un); err != nil {
					return err
				}
			}
			switch {
			case differs:
				// A dir replacing a non-dir has nothing below it to compare.
				if err := w.changed(evModify, un, sameType); err != nil {
					return err
				}
			case rootfs.IsDir(&un.st):
				w.pending = append(w.pending, &pendingDir{n: un})
				err := w.dir(crel, true)
				w.pending = w.pending[:len(w.pending)-1]
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (w *treeWalker) changed(kind eventKind, n *node, hasLower bool) error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.emit(event{kind: kind, rel: n.rel, n: n}); err != nil {
		return err
	}
	if !rootfs.IsDir(&n.st) {
		return nil
	}
	w.pending = append(w.pending, &pendingDir{n: n, done: true})
	err := w.dir(n.rel, hasLower)
	w.pending = w.pending[:len(w.pending)-1]
	return err
}

// differs reports whether two entries of the same type differ in anything a
// layer carries except mtime: mode, owner, size, content, xattrs, link
// target, device numbers.
func (w *treeWalker) differs(l, u *node) (bool, error) {
	if l.st.Mode != u.st.Mode || l.st.Uid != u.st.Uid || l.st.Gid != u.st.Gid {
		return true, nil
	}
	if !xattrsEqual(l.xattrs, u.xattrs) {
		return true, nil
	}
	switch u.st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return l.link != u.link, nil
	case unix.S_IFCHR, unix.S_IFBLK:
		return l.st.Rdev != u.st.Rdev, nil
	case unix.S_IFREG:
		if l.st.Size != u.st.Size {
			return true, nil
		}
		if l.st.Dev == u.st.Dev && l.st.Ino == u.st.Ino {
			return false, nil
		}
		eq, err := w.contentEqual(l.path, u.path)
		return !eq, err
	}
	return false, nil
}

func xattrsEqual(a, b []xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].value, b[i].value) {
			return false
		}
	}
	return true
}

func (w *treeWalker) contentEqual(a, b string) (bool, error) {
	fa, err := os.OpenFile(a, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.OpenFile(b, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	if w.bufA == nil {
		w.bufA, w.bufB = make([]byte, 64<<10), make([]byte, 64<<10)
	}
	for {
		na, errA := io.ReadFull(fa, w.bufA)
		nb, errB := io.ReadFull(fb, w.bufB)
		if !bytes.Equal(w.bufA[:na], w.bufB[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		if errA != nil && !endA {
			return false, errA
		}
		if errB != nil && !endB {
			return false, errB
		}
		if endA || endB {
			return endA == endB, nil
		}
	}
}
