package archive

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// inRoot resolves paths inside a root directory with the kernel's help.
// Parent directories are resolved with openat2(RESOLVE_IN_ROOT): symlinks are
// followed but ".." and absolute targets stop at the root. Callers then act on
// the last component with *at syscalls that do not follow it.
type inRoot struct {
	fd int // O_PATH fd of the root

	// One cached parent: tar streams are ordered, so consecutive entries
	// mostly share their parent directory.
	cachePath string
	cacheFd   int
	// stale is set by anything that removes entries: a removal can change
	// what a cached path resolves to (a dir replaced by a symlink). The fd is
	// closed lazily, on the next lookup, because the caller may still use it.
	stale bool
}

func openRoot(root string) (*inRoot, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	return &inRoot{fd: fd, cacheFd: -1}, nil
}

func (r *inRoot) close() {
	r.dropCache()
	unix.Close(r.fd)
}

func (r *inRoot) dropCache() {
	if r.cacheFd >= 0 {
		unix.Close(r.cacheFd)
	}
	r.cacheFd, r.cachePath, r.stale = -1, "", false
}

func (r *inRoot) invalidate() { r.stale = true }

// openDir opens dir (relative, clean) inside the root as an O_PATH fd that
// the caller owns. Errors are raw errnos so callers can test for ENOENT.
func (r *inRoot) openDir(dir string) (int, error) {
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

// parent returns an fd for dir, owned by r and valid until the next call.
// With mkdir, missing directories are created; mkdirHook then fills in their
// metadata.
func (r *inRoot) parent(dir string, mkdir bool, mkdirHook func(rel string, fd int) error) (int, error) {
	if dir == "" {
		return r.fd, nil
	}
	if !r.stale && r.cacheFd >= 0 && r.cachePath == dir {
		return r.cacheFd, nil
	}
	r.dropCache()
	fd, err := r.openDir(dir)
	if err == unix.ENOENT && mkdir {
		fd, err = r.mkdirAll(dir, mkdirHook)
	}
	if err != nil {
		return -1, err
	}
	r.cachePath, r.cacheFd = dir, fd
	return fd, nil
}

// mkdirAll creates the missing components of dir, each with mkdirat on the
// in-root fd of its parent, and returns an O_PATH fd for dir.
func (r *inRoot) mkdirAll(dir string, hook func(rel string, fd int) error) (int, error) {
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
			next, err = r.openDir(prefix)
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
				return -1, fmt.Errorf("parent %q is a dangling symlink: %w", prefix, unix.ENOENT)
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

// procPath names the entry base inside the directory open as dirfd, for the
// few syscalls that have no *at form (lsetxattr). The kernel resolves the
// /proc magic link to the directory itself; base is not followed by l* calls.
func procPath(dirfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + base
}

// removeAllAt removes name inside dirfd, recursively for directories, never
// following symlinks. A missing name is not an error.
func removeAllAt(dirfd int, name string) error {
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
		if err := removeAllAt(fd, n); err != nil {
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
