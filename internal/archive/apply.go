package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

// Apply extracts the tar stream r into root (which exists). It reads r to EOF,
// including any padding after the end-of-archive blocks, because callers hash
// the stream as it is read (diffID). It returns the total size of regular-file
// content written. Nothing outside root is created or modified: entry names
// and hardlink targets that climb out are rejected (ErrBreakout); symlinks are
// created verbatim but every path is resolved inside root.
//
// Files are not fsynced one by one; the caller syncs the filesystem once.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	rt, err := rootfs.Open(root)
	if err != nil {
		return 0, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	defer rt.Close()
	return ApplyRoot(ctx, rt, r, opts)
}

// ApplyRoot is Apply into a root the caller holds open, for a directory
// inside a rootfs that must be resolved in-root (rootfs.Root.Sub) rather
// than by a host path a running container could redirect.
func ApplyRoot(ctx context.Context, rt *rootfs.Root, r io.Reader, opts ApplyOptions) (int64, error) {
	root := rt.Name()
	buf := getBuf()
	defer putBuf(buf)
	a := &applier{
		root:     rt,
		opts:     opts,
		buf:      *buf,
		written:  map[string]struct{}{},
		dirIndex: map[string]int{},
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.size, fmt.Errorf("apply layer to %s: %w", root, err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, fmt.Errorf("apply layer to %s: read tar: %w", root, err)
		}
		if opts.EntryRead != nil {
			if err := opts.EntryRead(hdr); err != nil {
				return a.size, fmt.Errorf("apply layer to %s: entry %q: %w", root, hdr.Name, err)
			}
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, fmt.Errorf("apply layer to %s: entry %q: %w", root, hdr.Name, err)
		}
	}
	if err := a.restoreDirTimes(); err != nil {
		return a.size, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return a.size, fmt.Errorf("apply layer to %s: read tar padding: %w", root, err)
	}
	return a.size, nil
}

type applier struct {
	root *rootfs.Root
	opts ApplyOptions
	buf  []byte
	size int64

	// written holds every path this layer created, plus their parents. A
	// whiteout never deletes what its own layer wrote (OCI: whiteouts apply
	// to lower layers only), and an opaque dir keeps exactly these. Paths
	// are the entry names: an entry reached through a symlinked path under
	// another name counts as lower content. Well-formed layers never do
	// that, and either way everything stays inside the root.
	written map[string]struct{}

	lowerReady bool // opts.LowerReady has returned

	// Directory times are restored at the end: creating children changes
	// them. dirIndex dedupes repeated entries for one dir (the last wins).
	dirTimes []dirTime
	dirIndex map[string]int
}

type dirTime struct {
	rel string
	ts  [2]unix.Timespec
}

// meta is what Apply sets on a created entry, from a tar header or, for a
// copy-up, from a lower layer's inode.
type meta struct {
	uid, gid int
	mode     uint32 // permission bits incl. setuid/setgid/sticky
	xattrs   []xattr
	times    [2]unix.Timespec // atime, mtime
}

func headerMeta(hdr *tar.Header) meta {
	m := meta{uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode) & 0o7777}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPAXPrefix)
		// trusted.overlay.* from a tar would inject overlay internals
		// (a redirect can point anywhere in the lower layers): drop it.
		if !ok || strings.HasPrefix(name, overlayXattrPrefix) {
			continue
		}
		m.xattrs = append(m.xattrs, xattr{name: name, value: []byte(v)})
	}
	sort.Slice(m.xattrs, func(i, j int) bool { return m.xattrs[i].name < m.xattrs[j].name })
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	m.times = [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	return m
}

func statMeta(st *unix.Stat_t, xattrs []xattr) meta {
	return meta{
		uid: int(st.Uid), gid: int(st.Gid), mode: st.Mode & 0o7777, xattrs: xattrs,
		times: [2]unix.Timespec{st.Atim, st.Mtim},
	}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		// The root's own metadata belongs to the snapshot, not the layer.
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("entry for the root is not a directory: %w", ErrBreakout)
	}
	dir, base := splitRel(rel)
	kind, target := entryPlain, ""
	if a.opts.Whiteouts != WhiteoutNone {
		if kind, target, err = classify(base); err != nil {
			return err
		}
	}
	switch kind {
	case entryMeta:
		return nil
	case entryWhiteout:
		return a.whiteout(dir, target)
	case entryOpaque:
		return a.opaque(dir)
	}

	pfd, err := a.root.Parent(dir, true, a.mkdirHook)
	if err != nil {
		return fmt.Errorf("open parent dir: %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		err = a.regular(pfd, base, hdr, r)
	case tar.TypeDir:
		err = a.dir(pfd, rel, base, headerMeta(hdr))
	case tar.TypeSymlink:
		err = a.symlink(pfd, base, hdr.Linkname, headerMeta(hdr))
	case tar.TypeLink:
		err = a.hardlink(pfd, rel, base, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.node(pfd, base, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	a.markWritten(rel)
	return nil
}

// lowerEntry looks rel up in the lower layers, once they are complete.
func (a *applier) lowerEntry(rel string) (*rootfs.LowerEntry, error) {
	if len(a.opts.Lower) == 0 {
		return nil, nil
	}
	if a.opts.LowerReady != nil && !a.lowerReady {
		if err := a.opts.LowerReady(); err != nil {
			return nil, fmt.Errorf("wait for lower layers: %w", err)
		}
		a.lowerReady = true
	}
	return rootfs.LookupLower(a.opts.Lower, rel)
}

func (a *applier) markWritten(rel string) {
	for rel != "" {
		if _, ok := a.written[rel]; ok {
			return // its parents are in already
		}
		a.written[rel] = struct{}{}
		rel, _ = splitRel(rel)
	}
}

// replace runs create; if the name exists, it removes whatever is there
// (without following it) and runs create once more.
func (a *applier) replace(pfd int, base string, create func() error) error {
	err := create()
	if err != unix.EEXIST {
		return err
	}
	a.root.Invalidate()
	if err := rootfs.RemoveAllAt(pfd, base); err != nil {
		return fmt.Errorf("remove existing %s: %w", base, err)
	}
	return create()
}

// writerOnly hides os.File's ReadFrom so io.CopyBuffer uses our pooled buffer
// instead of the 32 KiB fallback copy inside ReadFrom.
type writerOnly struct{ io.Writer }

func (a *applier) regular(pfd int, base string, hdr *tar.Header, r io.Reader) error {
	var fd int
	err := a.replace(pfd, base, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	n, err := io.CopyBuffer(fdWriter(fd), r, a.buf)
	a.size += n
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("write file: %w", err)
	}
	m := headerMeta(hdr)
	// Content first: a write clears setuid bits and security.capability.
	err = setMetaFd(fd, m)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close file: %w", cerr)
	}
	if err != nil {
		return err
	}
	return setTimes(pfd, base, m)
}

// fdWriter writes to a raw fd. os.NewFile would cost an fcntl per file to
// probe for non-blocking mode, which a regular file never needs.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Write(int(w), p[total:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
		total += n
	}
	return total, nil
}

func (a *applier) dir(pfd int, rel, base string, m meta) error {
	err := unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && !rootfs.IsDir(&st) {
			// A layer that deletes a lower dir and creates a new one of the
			// same name: in an overlay layer the new dir must be opaque or
			// the lower dir's contents would show through.
			if a.opts.Whiteouts == WhiteoutOverlay && rootfs.IsWhiteoutDev(&st) {
				m.xattrs = append(m.xattrs, xattr{name: overlayOpaqueXattr, value: []byte("y")})
			}
			err = a.replace(pfd, base, func() error { return unix.Mkdirat(pfd, base, 0o700) })
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	err = setMetaFd(fd, m)
	unix.Close(fd)
	if err != nil {
		return err
	}
	a.recordDirTimes(rel, m.times)
	return nil
}

func (a *applier) recordDirTimes(rel string, ts [2]unix.Timespec) {
	if i, ok := a.dirIndex[rel]; ok {
		a.dirTimes[i].ts = ts
		return
	}
	a.dirIndex[rel] = len(a.dirTimes)
	a.dirTimes = append(a.dirTimes, dirTime{rel: rel, ts: ts})
}

func (a *applier) symlink(pfd int, base, target string, m meta) error {
	err := a.replace(pfd, base, func() error { return unix.Symlinkat(target, pfd, base) })
	if err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	// No chmod: symlink permissions mean nothing on Linux.
	if err := setMetaAt(pfd, base, m, false); err != nil {
		return err
	}
	return setTimes(pfd, base, m)
}

func (a *applier) node(pfd int, base string, hdr *tar.Header) error {
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	default:
		typ = unix.S_IFIFO
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	err := a.mknod(pfd, base, typ, dev)
	if err != nil {
		return err
	}
	m := headerMeta(hdr)
	if err := setMetaAt(pfd, base, m, true); err != nil {
		return err
	}
	return setTimes(pfd, base, m)
}

func (a *applier) mknod(pfd int, base string, typ uint32, dev int) error {
	err := a.replace(pfd, base, func() error { return unix.Mknodat(pfd, base, typ|0o600, dev) })
	if err == unix.EPERM && typ != unix.S_IFIFO {
		return fmt.Errorf("mknod %s: %w", base, ErrNotPermitted)
	}
	if err != nil {
		return fmt.Errorf("mknod %s: %w", base, err)
	}
	return nil
}

// hardlink links rel to linkname, both resolved inside the root. The link
// itself is never followed: a hardlink to a symlink links the symlink.
func (a *applier) hardlink(pfd int, rel, base, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "" {
		return fmt.Errorf("hardlink to the root: %w", ErrBreakout)
	}
	if target == rel {
		return nil
	}
	tdir, tbase := splitRel(target)
	tfd, err := a.root.OpenDir(tdir)
	if err == nil {
		err = a.replace(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
		unix.Close(tfd)
	}
	if err == unix.ENOENT && len(a.opts.Lower) > 0 {
		if tfd, err = a.copyUp(target); err == nil {
			err = a.replace(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
			unix.Close(tfd)
		}
	}
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", linkname, err)
	}
	return nil
}

// copyUp copies target from the lower layers into the root, as overlayfs
// would before linking to it, and returns an O_PATH fd of its parent dir.
func (a *applier) copyUp(target string) (int, error) {
	le, err := a.lowerEntry(target)
	if err != nil {
		return -1, err
	}
	if le == nil {
		return -1, unix.ENOENT
	}
	if rootfs.IsDir(&le.Stat) {
		return -1, fmt.Errorf("copy up %s: cannot hardlink a directory: %w", target, unix.EPERM)
	}
	tdir, tbase := splitRel(target)
	tfd, err := a.root.OpenDir(tdir)
	if err == unix.ENOENT {
		tfd, err = a.root.MkdirAll(tdir, a.mkdirHook)
	}
	if err != nil {
		return -1, fmt.Errorf("copy up %s: %w", target, err)
	}
	if err := a.copyUpEntry(tfd, tbase, le); err != nil {
		unix.Close(tfd)
		return -1, fmt.Errorf("copy up %s: %w", target, err)
	}
	a.markWritten(target)
	return tfd, nil
}

func (a *applier) copyUpEntry(tfd int, tbase string, le *rootfs.LowerEntry) error {
	xs, err := readXattrs(le.Path)
	if err != nil {
		return err
	}
	m := statMeta(&le.Stat, xs)
	switch le.Stat.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		src, err := os.OpenFile(le.Path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer src.Close()
		fd, err := unix.Openat(tfd, tbase, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		dst := os.NewFile(uintptr(fd), tbase)
		_, err = io.CopyBuffer(writerOnly{dst}, readerOnly{src}, a.buf)
		if err == nil {
			err = setMetaFd(fd, m)
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		link, err := os.Readlink(le.Path)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(link, tfd, tbase); err != nil {
			return err
		}
		if err := setMetaAt(tfd, tbase, m, false); err != nil {
			return err
		}
	default:
		if err := a.mknod(tfd, tbase, le.Stat.Mode&unix.S_IFMT, int(le.Stat.Rdev)); err != nil {
			return err
		}
		if err := setMetaAt(tfd, tbase, m, true); err != nil {
			return err
		}
	}
	return setTimes(tfd, tbase, m)
}

// mkdirHook fills in a directory Apply had to create because the tar has no
// entry for it. In an overlay layer a fresh dir would mask the lower dir's
// owner and mode, so it copies them from the lower layers when there.
func (a *applier) mkdirHook(rel string, fd int) error {
	le, err := a.lowerEntry(rel)
	if err != nil || le == nil || !rootfs.IsDir(&le.Stat) {
		return err
	}
	xs, err := readXattrs(le.Path)
	if err != nil {
		return err
	}
	m := statMeta(&le.Stat, xs)
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = setMetaFd(dfd, m)
	unix.Close(dfd)
	if err != nil {
		return fmt.Errorf("copy metadata of lower dir %s: %w", rel, err)
	}
	a.recordDirTimes(rel, m.times)
	return nil
}

func (a *applier) whiteout(dir, name string) error {
	rel := joinRel(dir, name)
	if _, ok := a.written[rel]; ok {
		return nil // whiteouts hide lower layers only, never their own layer
	}
	if a.opts.Whiteouts == WhiteoutOverlay {
		pfd, err := a.root.Parent(dir, true, a.mkdirHook)
		if err != nil {
			return fmt.Errorf("open parent dir: %w", err)
		}
		if err := a.replace(pfd, name, func() error { return unix.Mknodat(pfd, name, unix.S_IFCHR, 0) }); err != nil {
			if err == unix.EPERM {
				err = ErrNotPermitted
			}
			return fmt.Errorf("create whiteout device: %w", err)
		}
		return nil
	}
	pfd, err := a.root.Parent(dir, false, nil)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil // nothing to delete
	}
	if err != nil {
		return fmt.Errorf("open parent dir: %w", err)
	}
	a.root.Invalidate()
	if err := rootfs.RemoveAllAt(pfd, name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

func (a *applier) opaque(dir string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		dfd, err := a.root.Parent(dir, true, a.mkdirHook)
		if err != nil {
			return fmt.Errorf("open opaque dir: %w", err)
		}
		fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open opaque dir: %w", err)
		}
		err = unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mark dir opaque: %w", err)
		}
		a.markWritten(dir)
		return nil
	}
	dfd, err := a.root.Parent(dir, false, nil)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open opaque dir: %w", err)
	}
	a.root.Invalidate()
	if err := a.removeUnwritten(dfd, dir); err != nil {
		return fmt.Errorf("empty opaque dir: %w", err)
	}
	return nil
}

// removeUnwritten empties the directory open as dfd (path dir) of everything
// this layer did not write, keeping written subtrees but emptying them of
// older content too: below an opaque dir nothing from lower layers survives.
func (a *applier) removeUnwritten(dfd int, dir string) error {
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		child := joinRel(dir, n)
		if _, ok := a.written[child]; !ok {
			if err := rootfs.RemoveAllAt(fd, n); err != nil {
				return err
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if !rootfs.IsDir(&st) {
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = a.removeUnwritten(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) restoreDirTimes() error {
	for i := len(a.dirTimes) - 1; i >= 0; i-- {
		d := a.dirTimes[i]
		dir, base := splitRel(d.rel)
		pfd, err := a.root.Parent(dir, false, nil)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			continue // removed later in the layer
		}
		if err != nil {
			return fmt.Errorf("restore times of %s: %w", d.rel, err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || !rootfs.IsDir(&st) {
			continue
		}
		if err := unix.UtimesNanoAt(pfd, base, d.ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("restore times of %s: %w", d.rel, err)
		}
	}
	return nil
}

// setMetaFd sets owner, then mode (chown clears setuid/setgid), then xattrs
// (security.capability must come after chown, which clears it too).
func setMetaFd(fd int, m meta) error {
	if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for _, x := range m.xattrs {
		if err := unix.Fsetxattr(fd, x.name, x.value, 0); err != nil && !ignorableXattrErr(x.name, err) {
			return fmt.Errorf("set xattr %s: %w", x.name, err)
		}
	}
	return nil
}

// setMetaAt is setMetaFd for entries that cannot be opened for writing
// (symlinks, devices, fifos), addressed as base inside the dir pfd.
func setMetaAt(pfd int, base string, m meta, chmod bool) error {
	if err := unix.Fchownat(pfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// base was just created by us as a non-symlink, so following it is safe.
	if chmod {
		if err := unix.Fchmodat(pfd, base, m.mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if len(m.xattrs) == 0 {
		return nil
	}
	p := rootfs.ProcPath(pfd, base)
	for _, x := range m.xattrs {
		if err := unix.Lsetxattr(p, x.name, x.value, 0); err != nil && !ignorableXattrErr(x.name, err) {
			return fmt.Errorf("set xattr %s: %w", x.name, err)
		}
	}
	return nil
}

func setTimes(pfd int, base string, m meta) error {
	if err := unix.UtimesNanoAt(pfd, base, m.times[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// ignorableXattrErr is the xattr policy: user.* and trusted.* (and SELinux
// labels) are best effort, since filesystems, symlinks and unprivileged
// callers may refuse them; anything else, like security.capability, must
// apply or the image would silently lose behaviour.
func ignorableXattrErr(name string, err error) bool {
	if err != unix.ENOTSUP && err != unix.EPERM {
		return false
	}
	return strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") || name == "security.selinux"
}
