package rootfs

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Root is a directory held open by fd; every path given to its methods is
// resolved inside it by the kernel at the moment of the call.
type Root struct {
	fd int // O_PATH fd of the root

	// One cached parent: tar streams are ordered, so consecutive entries
	// mostly share their parent directory.
	cachePath string
	cacheFd   int
	// stale is set by anything that removes entries: a removal can change
	// what a cached path resolves to (a dir replaced by a symlink). The fd is
	// closed lazily, on the next lookup, because the caller may still use it.
	stale bool

	name string
}

// Open holds dir open as a Root. dir itself is opened by its host path (the
// caller's trusted location of a rootfs or snapshot); nothing below it is.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Root{fd: fd, cacheFd: -1, name: dir}, nil
}

// Close releases the root fd; closing again does nothing.
func (r *Root) Close() error {
	r.dropCache()
	if r.fd < 0 {
		return nil
	}
	fd := r.fd
	r.fd = -1
	return unix.Close(fd)
}

// Name is the host path the root was opened by, for messages.
func (r *Root) Name() string { return r.name }

func (r *Root) dropCache() {
	if r.cacheFd >= 0 {
		unix.Close(r.cacheFd)
	}
	r.cacheFd, r.cachePath, r.stale = -1, "", false
}

// Invalidate tells the parent cache that entries were removed or replaced:
// a cached path may now resolve elsewhere (a dir swapped for a symlink).
func (r *Root) Invalidate() { r.stale = true }

// OpenDir opens dir (relative, clean) inside the root as an O_PATH fd that
// the caller owns. Errors are raw errnos so callers can test for ENOENT.
func (r *Root) OpenDir(dir string) (int, error) {
	if dir == "" {
		return unix.Dup(r.fd)
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(r.fd, dir, &how)
		// EAGAIN: a concurrent rename raced with ".." resolution; retry.
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// MkdirHook fills in the metadata of a directory that MkdirAll or Parent had
// to create: rel is its path in the root, fd an O_PATH fd of it.
type MkdirHook func(rel string, fd int) error

// Parent returns an O_PATH fd for dir, owned by r and valid until the next
// call: consecutive calls for one dir (an ordered tar stream) reuse it. With
// mkdir, missing directories are created; mkdirHook then fills in their
// metadata. Callers act on names inside it with *at calls that do not follow
// the last component.
func (r *Root) Parent(dir string, mkdir bool, mkdirHook MkdirHook) (int, error) {
	if dir == "" {
		return r.fd, nil
	}
	if !r.stale && r.cacheFd >= 0 && r.cachePath == dir {
		return r.cacheFd, nil
	}
	r.dropCache()
	fd, err := r.OpenDir(dir)
	if err == unix.ENOENT && mkdir {
		fd, err = r.MkdirAll(dir, mkdirHook)
	}
	if err != nil {
		return -1, err
	}
	r.cachePath, r.cacheFd = dir, fd
	return fd, nil
}

// MkdirAll creates the missing components of dir (mode 0755, then hook),
// each with mkdirat on the in-root fd of its parent, and returns an O_PATH fd
// for dir that the caller owns. A symlink on the way is followed inside the
// root, as a process chrooted there would.
func (r *Root) MkdirAll(dir string, hook MkdirHook) (int, error) {
	cur, err := unix.Dup(r.fd)
	if err != nil {
		return -1, err
	}
	created := false
	start := 0
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		prefix, name := dir[:i], dir[start:i]
		start = i + 1
		var next int
		if !created {
			next, err = r.OpenDir(prefix)
			if err == nil {
				unix.Close(cur)
				cur = next
				continue
			}
			if err != unix.ENOENT {
				unix.Close(cur)
				return -1, err
			}
		}
		if err = unix.Mkdirat(cur, name, 0o755); err != nil {
			unix.Close(cur)
			if err == unix.EEXIST {
				// openat2 said ENOENT yet the name exists: a symlink whose
				// target is missing. Creating the target is never needed by
				// a well-formed layer, so refuse instead of guessing.
				return -1, &DanglingError{Prefix: prefix}
			}
			return -1, err
		}
		created = true
		next, err = unix.Openat(cur, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
		if hook != nil {
			if err := hook(prefix, cur); err != nil {
				unix.Close(cur)
				return -1, err
			}
		}
	}
	return cur, nil
}

// DanglingError is MkdirAll's refusal to create a missing directory where
// the path has a symlink whose target is missing.
type DanglingError struct{ Prefix string }

func (e *DanglingError) Error() string {
	return fmt.Sprintf("parent %q is a dangling symlink: %v", e.Prefix, unix.ENOENT)
}

func (e *DanglingError) Unwrap() error { return unix.ENOENT }

// ProcPath names the entry base inside the directory open as dirfd, for the
// few syscalls that have no *at form (lsetxattr). The kernel resolves the
// /proc magic link to the directory itself; base is not followed by l* calls.
func ProcPath(dirfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + base
}

// RemoveAllAt removes name inside dirfd, recursively for directories, never
// following symlinks. A missing name is not an error.
func RemoveAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	unlinkErr := err
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR {
		return unlinkErr // EPERM on a file: immutable, or not ours
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	// Read every name before removing any: deleting while iterating a
	// directory stream may skip entries.
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		if err := RemoveAllAt(fd, n); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}
