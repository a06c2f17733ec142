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

// xattrSource is where xattrs are read from: an open descriptor (fd >= 0),
// else path, whose last component is not followed.
type xattrSource struct {
	fd   int
	path string
	// nameOnly, when set, picks the xattrs whose value nobody reads: they
	// are listed without one, saving a getxattr each.
	nameOnly func(name string) bool
}

func (s xattrSource) list(b []byte) (int, error) {
	if s.fd >= 0 {
		return unix.Flistxattr(s.fd, b)
	}
	return unix.Llistxattr(s.path, b)
}

func (s xattrSource) get(name string, b []byte) (int, error) {
	if s.fd >= 0 {
		return unix.Fgetxattr(s.fd, name, b)
	}
	return unix.Lgetxattr(s.path, name, b)
}

// readXattrs returns the xattrs of path (a final symlink is not followed),
// sorted by name.
func readXattrs(path string) ([]xattr, error) {
	return xattrSource{fd: -1, path: path}.read(path)
}

// read returns the source's xattrs sorted by name; where names it in
// errors. It runs once per file of every diff, so it asks with a buffer
// that fits the usual list instead of asking for the size first: a file
// without xattrs costs one listxattr.
func (s xattrSource) read(where string) ([]xattr, error) {
	var stack [256]byte
	list, err := xattrCall(stack[:], s.list)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "listxattr", Path: where, Err: err}
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
		if s.nameOnly != nil && s.nameOnly(name) {
			xs = append(xs, xattr{name: name})
			continue
		}
		var vstack [128]byte
		v, err := xattrCall(vstack[:], func(b []byte) (int, error) { return s.get(name, b) })
		if err == unix.ENODATA {
			continue // removed in between
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + name, Path: where, Err: err}
		}
		xs = append(xs, xattr{name: name, value: bytes.Clone(v)})
	}
	return xs, nil
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

// node is one entry of a tree being diffed. It is read through the
// descriptor of its parent directory, and a directory is walked through its
// own descriptor: nothing below the root of a walk is ever looked up by a
// path, so a symlink swapped in anywhere below (a running container) is
// read as a symlink, never followed.
type node struct {
	rel    string // relative to the tree root, slash separated
	where  string // host path, for messages only
	st     unix.Stat_t
	xattrs []xattr // trusted.overlay.* removed
	link   string  // symlink target
	opaque bool    // trusted.overlay.opaque=y
	// fd is the entry held open, owned by the walker: a regular file for
	// reading, a directory for walking; -1 for other types.
	fd int
}

func (n *node) close() {
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
}

// readDir lists the directory open as fd (rootfs.ReadDir), naming where
// in errors.
func readDir(fd int, buf []byte, where string) ([]rootfs.Dirent, error) {
	ents, err := rootfs.ReadDir(fd, buf)
	if err != nil {
		return nil, &os.PathError{Op: "getdents", Path: where, Err: err}
	}
	return ents, nil
}

// openRoot opens the root of a walk. Its path is the caller's (a snapshot,
// a layer, /proc/self/fd/N of a directory resolved in-root); nothing below
// it is opened by path.
func openRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// readNode reads the entry d of the directory open as dirfd. Regular files
// and directories are opened (O_NOFOLLOW) and described by their
// descriptor; other types by fstatat without following. An entry replaced
// between the listing and the open (a running container) is read as what
// it is at the open, and a file is only ever read after fstat said it is a
// regular file. For overlay upper dirs (overlay true) it refuses redirect
// and metacopy xattrs: with them the upper dir alone does not say what
// changed.
func readNode(dirfd int, d rootfs.Dirent, rel, where string, overlay bool) (*node, error) {
	n := &node{rel: rel, where: where, fd: -1}
	typ := d.Type
	for tries := 0; ; tries++ {
		if typ != unix.DT_REG && typ != unix.DT_DIR {
			if err := unix.Fstatat(dirfd, d.Name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return nil, &os.PathError{Op: "lstat", Path: where, Err: err}
			}
			switch n.st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				typ = unix.DT_REG
			case unix.S_IFDIR:
				typ = unix.DT_DIR
			}
		}
		if typ != unix.DT_REG && typ != unix.DT_DIR {
			break
		}
		if tries == 3 {
			return nil, fmt.Errorf("%s keeps changing type while being read", where)
		}
		flag := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if typ == unix.DT_DIR {
			flag |= unix.O_DIRECTORY
		} else {
			// A FIFO or device swapped in must not block or become our
			// terminal before fstat tells what it is.
			flag |= unix.O_NONBLOCK | unix.O_NOCTTY
		}
		fd, err := unix.Openat(dirfd, d.Name, flag, 0)
		if err == unix.ELOOP || err == unix.ENOTDIR || err == unix.ENXIO {
			typ = unix.DT_UNKNOWN // replaced since it was listed: look again
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: where, Err: err}
		}
		if err := unix.Fstat(fd, &n.st); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "fstat", Path: where, Err: err}
		}
		if typ == unix.DT_REG && n.st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			typ = unix.DT_UNKNOWN
			continue
		}
		n.fd = fd
		break
	}
	if rootfs.IsWhiteoutDev(&n.st) {
		return n, nil
	}
	// Of overlay's own xattrs only opaque's value counts (redirect and
	// metacopy are refused by name); every copied-up file carries
	// trusted.overlay.origin, whose value a diff would read for nothing.
	src := xattrSource{fd: n.fd, nameOnly: func(name string) bool {
		return strings.HasPrefix(name, overlayXattrPrefix) && name != overlayOpaqueXattr
	}}
	if n.fd < 0 {
		// No descriptor can be opened for reading a symlink or device;
		// the /proc name of the parent pins everything above the entry.
		src.path = rootfs.ProcPath(dirfd, d.Name)
	}
	xs, err := src.read(where)
	if err != nil {
		n.close()
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
			n.close()
			return nil, fmt.Errorf("%s has %s: %w", where, x.name, ErrUnsupportedOverlay)
		}
	}
	if n.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, unix.PathMax)
		k, err := unix.Readlinkat(dirfd, d.Name, buf)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: where, Err: err}
		}
		n.link = string(buf[:k])
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
	// names: for evOpaque, the names in the opaque dir.
	names []string
}

// contextErr is the part of context.Context the walkers need.
type contextErr interface{ Err() error }

// walkOverlay reports every entry of an overlay upper dir, depth first,
// names sorted inside each dir. 0/0 char devices are deletions.
func walkOverlay(ctx contextErr, upper string, emit func(event) error) error {
	fd, err := openRoot(upper)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	w := &overlayWalker{ctx: ctx, upper: upper, emit: emit, buf: make([]byte, rootfs.DirBufSize)}
	ents, err := readDir(fd, w.buf, upper)
	if err != nil {
		return err
	}
	return w.dir(fd, "", ents)
}

type overlayWalker struct {
	ctx   contextErr
	upper string
	emit  func(event) error
	buf   []byte
}

func (w *overlayWalker) dir(fd int, rel string, ents []rootfs.Dirent) error {
	for _, d := range ents {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		crel := joinRel(rel, d.Name)
		n, err := readNode(fd, d, crel, w.upper+"/"+crel, true)
		if err != nil {
			return err
		}
		err = w.entry(n)
		n.close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *overlayWalker) entry(n *node) error {
	if rootfs.IsWhiteoutDev(&n.st) {
		return w.emit(event{kind: evDelete, rel: n.rel})
	}
	if err := w.emit(event{kind: evAdd, rel: n.rel, n: n}); err != nil {
		return err
	}
	if !rootfs.IsDir(&n.st) {
		return nil
	}
	ents, err := readDir(n.fd, w.buf, n.where)
	if err != nil {
		return err
	}
	if n.opaque {
		names := make([]string, len(ents))
		for i, d := range ents {
			names[i] = d.Name
		}
		if err := w.emit(event{kind: evOpaque, rel: n.rel, n: n, names: names}); err != nil {
			return err
		}
	}
	return w.dir(n.fd, n.rel, ents)
}

// treeWalker compares two trees. A change below a directory first emits the
// directory itself (evModify), like `docker diff` reports "C /etc" above
// "A /etc/foo", so a tar carries the parent's metadata with the change.
type treeWalker struct {
	ctx          contextErr
	lower, upper string // lower "" means empty
	emit         func(event) error
	pending      []*pendingDir
	bufA, bufB   []byte
	dirBuf       []byte
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
	w.dirBuf = make([]byte, rootfs.DirBufSize)
	up, err := openRoot(w.upper)
	if err != nil {
		return err
	}
	defer unix.Close(up)
	lo := -1
	if w.lower != "" {
		if lo, err = openRoot(w.lower); err != nil {
			return err
		}
		defer unix.Close(lo)
	}
	return w.dir("", up, lo)
}

// dir compares the directories open as up and lo (-1: nothing below).
func (w *treeWalker) dir(rel string, up, lo int) error {
	upEnts, err := readDir(up, w.dirBuf, w.upper+"/"+rel)
	if err != nil {
		return err
	}
	var loEnts []rootfs.Dirent
	if lo >= 0 {
		if loEnts, err = readDir(lo, w.dirBuf, w.lower+"/"+rel); err != nil {
			return err
		}
	}
	i, j := 0, 0
	for i < len(upEnts) || j < len(loEnts) {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		switch {
		case j == len(loEnts) || (i < len(upEnts) && upEnts[i].Name < loEnts[j].Name):
			crel := joinRel(rel, upEnts[i].Name)
			n, err := readNode(up, upEnts[i], crel, w.upper+"/"+crel, false)
			i++
			if err != nil {
				return err
			}
			err = w.changed(evAdd, n, -1)
			n.close()
			if err != nil {
				return err
			}
		case i == len(upEnts) || loEnts[j].Name < upEnts[i].Name:
			crel := joinRel(rel, loEnts[j].Name)
			j++
			if err := w.flush(); err != nil {
				return err
			}
			if err := w.emit(event{kind: evDelete, rel: crel}); err != nil {
				return err
			}
		default:
			crel := joinRel(rel, upEnts[i].Name)
			err := w.both(up, lo, upEnts[i], loEnts[j], crel)
			i++
			j++
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// both compares the entry crel present in both trees.
func (w *treeWalker) both(up, lo int, ud, ld rootfs.Dirent, crel string) error {
	un, err := readNode(up, ud, crel, w.upper+"/"+crel, false)
	if err != nil {
		return err
	}
	defer un.close()
	ln, err := readNode(lo, ld, crel, w.lower+"/"+crel, false)
	if err != nil {
		return err
	}
	defer ln.close()
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
		below := -1
		if sameType {
			below = ln.fd
		}
		return w.changed(evModify, un, below)
	case rootfs.IsDir(&un.st):
		w.pending = append(w.pending, &pendingDir{n: un})
		err := w.dir(crel, un.fd, ln.fd)
		w.pending = w.pending[:len(w.pending)-1]
		return err
	}
	return nil
}

// changed emits n and, for a directory, everything below it compared with
// the lower directory open as lo (-1: none).
func (w *treeWalker) changed(kind eventKind, n *node, lo int) error {
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
	err := w.dir(n.rel, n.fd, lo)
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
		eq, err := w.contentEqual(l, u)
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

// contentEqual compares two open regular files with pread, leaving their
// offsets at the start for writeNode.
func (w *treeWalker) contentEqual(a, b *node) (bool, error) {
	if w.bufA == nil {
		w.bufA, w.bufB = make([]byte, 64<<10), make([]byte, 64<<10)
	}
	ra, rb := &offReader{fd: a.fd}, &offReader{fd: b.fd}
	for {
		na, errA := io.ReadFull(ra, w.bufA)
		nb, errB := io.ReadFull(rb, w.bufB)
		if !bytes.Equal(w.bufA[:na], w.bufB[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		if errA != nil && !endA {
			return false, fmt.Errorf("read %s: %w", a.where, errA)
		}
		if errB != nil && !endB {
			return false, fmt.Errorf("read %s: %w", b.where, errB)
		}
		if endA || endB {
			return endA == endB, nil
		}
	}
}

// offReader reads a file descriptor with pread from its own offset,
// leaving the descriptor's position alone.
type offReader struct {
	fd  int
	off int64
}

func (r *offReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Pread(r.fd, p, r.off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		r.off += int64(n)
		return n, nil
	}
}
