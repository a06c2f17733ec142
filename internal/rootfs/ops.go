package rootfs

import (
	"errors"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Clean turns any path a user or an image gives (absolute or relative, with
// ".." or not) into the clean relative form the Root methods take: "" is the
// root itself. ".." cannot climb above the root, as in a chroot.
func Clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (r *Root) openat2(rel string, flag int, mode uint32) (int, error) {
	return r.openat2How(rel, flag, mode, 0)
}

// openat2How is openat2 with resolve flags beyond RESOLVE_IN_ROOT.
func (r *Root) openat2How(rel string, flag int, mode uint32, resolve uint64) (int, error) {
	rel = Clean(rel)
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   uint64(flag | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | resolve,
	}
	if flag&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(mode)
	}
	for range 16 {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

func (r *Root) pathErr(op, rel string, err error) error {
	return &os.PathError{Op: op, Path: path.Join(r.name, Clean(rel)), Err: err}
}

// Sub holds the directory rel (resolved inside r, symlinks followed in
// root) open as a Root of its own: paths given to it cannot leave it.
func (r *Root) Sub(rel string) (*Root, error) {
	fd, err := r.openat2(rel, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, r.pathErr("open", rel, err)
	}
	return &Root{fd: fd, cacheFd: -1, name: path.Join(r.name, Clean(rel))}, nil
}

// OpenFile opens rel like os.OpenFile. Every component, the last included,
// is resolved inside the root; O_NOFOLLOW in flag keeps a final symlink from
// being followed (ELOOP), O_CREAT|O_EXCL never follows one.
func (r *Root) OpenFile(rel string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := r.openat2(rel, flag, uint32(perm.Perm()))
	if err != nil {
		return nil, r.pathErr("open", rel, err)
	}
	return os.NewFile(uintptr(fd), path.Join(r.name, Clean(rel))), nil
}

// OpenPath is an O_PATH fd of rel that the caller owns, for *at calls
// relative to it; follow says whether a final symlink is followed (in root).
func (r *Root) OpenPath(rel string, follow bool) (int, error) {
	flag := unix.O_PATH
	if !follow {
		flag |= unix.O_NOFOLLOW
	}
	fd, err := r.openat2(rel, flag, 0)
	if err != nil {
		return -1, r.pathErr("open", rel, err)
	}
	return fd, nil
}

// OpenExact opens rel (a raw fd the caller owns) for a path that a walk
// found free of symlinks: every component is resolved inside the root at
// this moment, and a symlink anywhere on the way, the last component
// included, is refused (ELOOP) instead of followed, so what is opened is
// what the walk saw or nothing.
func (r *Root) OpenExact(rel string, flag int) (int, error) {
	fd, err := r.openat2How(rel, flag|unix.O_NOFOLLOW, 0, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return -1, r.pathErr("open", rel, err)
	}
	return fd, nil
}

// PathOf is where the inode open as fd (opened through r) is, as a clean
// path relative to the root with every symlink resolved: a name to reopen
// it by with OpenExact, or for bookkeeping.
func (r *Root) PathOf(fd int) (string, error) {
	rootPath, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(r.fd))
	if err != nil {
		return "", err
	}
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if rootPath == "/" {
		return Clean(p), nil
	}
	in, ok := strings.CutPrefix(p, rootPath)
	if !ok || (in != "" && in[0] != '/') {
		return "", &os.PathError{Op: "resolve", Path: p, Err: unix.EXDEV}
	}
	return Clean(in), nil
}

// RealPath is rel with every symlink in its parent directories resolved
// inside the root, as a clean relative path: the name, for bookkeeping such
// as finding it in an overlay upper dir, of where rel is. Never open the
// string through the host path later; go through the Root again.
func (r *Root) RealPath(rel string) (string, error) {
	dir, base := path.Split(Clean(rel))
	fd, err := r.OpenDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return "", r.pathErr("open", dir, err)
	}
	defer unix.Close(fd)
	in, err := r.PathOf(fd)
	if err != nil {
		return "", r.pathErr("resolve", rel, err)
	}
	return Clean(in + "/" + base), nil
}

// Lstat stats rel without following a final symlink.
func (r *Root) Lstat(rel string) (unix.Stat_t, error) { return r.stat(rel, false) }

// Stat stats rel, following a final symlink inside the root.
func (r *Root) Stat(rel string) (unix.Stat_t, error) { return r.stat(rel, true) }

func (r *Root) stat(rel string, follow bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.OpenPath(rel, follow)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, r.pathErr("stat", rel, err)
	}
	return st, nil
}

// parentOf opens rel's parent directory (O_PATH, caller owns) and returns
// it with rel's last component.
func (r *Root) parentOf(rel string) (int, string, error) {
	dir, base := path.Split(Clean(rel))
	if base == "" {
		return -1, "", r.pathErr("open", rel, unix.EINVAL) // the root itself
	}
	fd, err := r.OpenDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1, "", r.pathErr("open", dir, err)
	}
	return fd, base, nil
}

// Mkdir creates the directory rel with exactly perm (no umask); its parent
// must exist.
func (r *Root) Mkdir(rel string, perm os.FileMode) error {
	pfd, base, err := r.parentOf(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
		return r.pathErr("mkdir", rel, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return r.pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, FileMode(perm)); err != nil {
		return r.pathErr("chmod", rel, err)
	}
	return nil
}

// MkdirAllMode is MkdirAll for callers that want plain directories:
// missing ones get perm (no umask) and owner uid:gid. It returns an O_PATH
// fd of rel that the caller owns.
// A symlink on the way whose target is missing has its target created,
// inside the root, as `mkdir -p` in a chroot would (WORKDIR /app where /app
// is a dangling link).
func (r *Root) MkdirAllMode(rel string, perm os.FileMode, uid, gid int) (int, error) {
	hook := func(_ string, fd int) error { return SetOwnerMode(fd, uid, gid, FileMode(perm)) }
	p := Clean(rel)
	for range maxSymlinks {
		fd, err := r.MkdirAll(p, hook)
		var de *DanglingError
		if !errors.As(err, &de) {
			if err != nil {
				return -1, r.pathErr("mkdir", rel, err)
			}
			return fd, nil
		}
		target, err := r.Readlink(de.Prefix)
		if err != nil {
			return -1, err
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(de.Prefix), target)
		}
		p = Clean(target + "/" + strings.TrimPrefix(p, de.Prefix))
	}
	return -1, r.pathErr("mkdir", rel, unix.ELOOP)
}

// Lchown changes the owner of rel, not following a final symlink.
func (r *Root) Lchown(rel string, uid, gid int) error {
	fd, err := r.OpenPath(rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return r.pathErr("lchown", rel, err)
	}
	return nil
}

// SetOwnerMode chowns, then chmods (chown clears setuid/setgid) the inode
// an O_PATH fd refers to, as MkdirHooks do.
func SetOwnerMode(fd, uid, gid int, mode uint32) error {
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return err
	}
	return chmodFd(fd, mode)
}

// chmodFd chmods the inode an O_PATH fd refers to: fchmod refuses O_PATH
// fds, the /proc magic link resolves to the inode itself, never a path.
func chmodFd(fd int, mode uint32) error {
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0)
}

// Lutimes sets the access and modification times of rel, not following a
// final symlink.
func (r *Root) Lutimes(rel string, atime, mtime time.Time) error {
	pfd, base, err := r.parentOf(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return r.pathErr("utimes", rel, err)
	}
	return nil
}

// Symlink creates rel as a symlink to target, stored verbatim.
func (r *Root) Symlink(target, rel string) error {
	pfd, base, err := r.parentOf(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Symlinkat(target, pfd, base); err != nil {
		return r.pathErr("symlink", rel, err)
	}
	return nil
}

// Readlink reads the symlink rel (its parents resolved in the root).
func (r *Root) Readlink(rel string) (string, error) {
	pfd, base, err := r.parentOf(rel)
	if err != nil {
		return "", err
	}
	defer unix.Close(pfd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(pfd, base, buf)
	if err != nil {
		return "", r.pathErr("readlink", rel, err)
	}
	return string(buf[:n]), nil
}

// Remove removes rel, a file or an empty directory, like os.Remove, never
// following a final symlink (the symlink itself is removed).
func (r *Root) Remove(rel string) error {
	pfd, base, err := r.parentOf(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	r.Invalidate()
	err = unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return r.pathErr("remove", rel, err)
	}
	return nil
}

// FileMode is perm with setuid/setgid/sticky in the kernel's bits.
func FileMode(m os.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		out |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		out |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		out |= unix.S_ISVTX
	}
	return out
}
