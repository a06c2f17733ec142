// Package cp copies files between the host and a container's root
// filesystem with `docker cp`'s rules. A copy is a tar stream: the source is
// written as a tar whose top entry carries the name the destination rules
// give it, and the stream is extracted with archive.ApplyRoot with no
// whiteout handling (a cp tar is not a layer). Both ends are opened through
// rootfs.Root: each path is resolved inside its root at the moment it is
// opened, never resolved to a string and reopened, so a running container
// swapping a directory for a symlink cannot redirect a copy to the host.
package cp

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/rootfs"
)

// Endpoint is one side of a copy: a path inside a root filesystem. The
// host is Root "/".
type Endpoint struct {
	Root string
	Path string
	// FollowLink makes a source whose last element is a symlink copy the
	// link's target (`cp -L`); otherwise the link itself is copied, as in
	// docker. Destinations always follow.
	FollowLink bool
	// Owner, on a destination, is the uid and gid every entry the copy
	// writes gets (nil: the source's): docker gives the host's copy to the
	// user who copies, and cp -a gives a container's to its user.
	Owner *[2]int
}

// rel is the endpoint's path relative to its root: a relative host path
// is taken from the working directory, a container path from its root.
func (e Endpoint) rel() (string, error) {
	p := e.Path
	if e.Root == "/" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		p = abs
	}
	return rootfs.Clean(p), nil
}

// source is the opened source of a copy: fd holds what the path named at
// the moment it was resolved (inside its root), so reading it never
// resolves the path again.
type source struct {
	f    *os.File // O_PATH
	fi   os.FileInfo
	name string // base name of what was opened (a followed link's target)
}

// full is a path the kernel resolves to the opened inode itself.
func (s *source) full() string {
	p := "/proc/self/fd/" + strconv.Itoa(int(s.f.Fd()))
	if s.fi.IsDir() {
		p += "/."
	}
	return p
}

// openSource resolves the source endpoint inside its root. A final
// symlink stays unresolved unless FollowLink is set or the path ends in
// "/" or "/." (which name what the link points to, as for the kernel).
func openSource(e Endpoint) (*source, error) {
	rel, err := e.rel()
	if err != nil {
		return nil, err
	}
	root, err := rootfs.Open(e.Root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	base := path.Base(e.Path)
	follow := e.FollowLink || strings.HasSuffix(e.Path, "/") || base == "." || base == ".."
	fd, err := root.OpenPath(rel, follow)
	if err != nil {
		return nil, fmt.Errorf("could not find the file %s: %w", e.Path, err)
	}
	f := os.NewFile(uintptr(fd), e.Path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if strings.HasSuffix(e.Path, "/") && !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: not a directory", e.Path)
	}
	where, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &source{f: f, fi: fi, name: filepath.Base(where)}, nil
}

// Copy copies src to dst with docker cp's rules:
//   - a file onto a missing path creates it (its parent must exist), onto a
//     file overwrites it, onto a directory goes inside it;
//   - a directory onto a missing path creates it with the source's contents,
//     onto a directory goes inside it, or with SRC ending in "/." its
//     contents do; onto a file is an error.
//
// Both sides are resolved inside their roots when they are opened: a
// container that swaps a directory for a symlink while the copy runs can
// redirect it only within its own root. Below an opened source directory
// the archive walker opens each entry relative to its parent's descriptor
// without following symlinks, so a swap there is read as a symlink. The
// caller still pauses a running container (as docker does) so that the
// copy is one moment's view of it.
func Copy(ctx context.Context, src, dst Endpoint) error {
	s, err := openSource(src)
	if err != nil {
		return err
	}
	defer s.f.Close()
	contentsOnly := s.fi.IsDir() && (strings.HasSuffix(src.Path, "/.") || src.Path == ".")
	droot, err := rootfs.Open(dst.Root)
	if err != nil {
		return err
	}
	defer droot.Close()
	drel, err := dst.rel()
	if err != nil {
		return err
	}
	into, name, err := placement(droot, s.fi.IsDir(), contentsOnly, s.name, dst.Path, drel)
	if err != nil {
		return err
	}
	sub, err := droot.Sub(into)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src.Path, dst.Path, err)
	}
	defer sub.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(ctx, pw, s, name, dst.Owner)) }()
	_, err = archive.ApplyRoot(ctx, sub, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src.Path, dst.Path, err)
	}
	return nil
}

// placement decides the directory to extract into (relative to root) and
// the name the source's top entry takes there ("" = the source's contents
// go straight in).
func placement(root *rootfs.Root, srcIsDir, contentsOnly bool, srcBase, dstPath, rel string) (into, name string, err error) {
	if rel, err = resolveLinks(root, rel); err != nil {
		return "", "", fmt.Errorf("destination %s: %w", dstPath, err)
	}
	st, err := root.Stat(rel)
	switch {
	case err == nil && rootfs.IsDir(&st):
		if contentsOnly {
			return rel, "", nil
		}
		return rel, srcBase, nil
	case err == nil:
		if srcIsDir {
			return "", "", fmt.Errorf("cannot copy a directory to a file: %s", dstPath)
		}
		return path.Dir(rel), path.Base(rel), nil
	case errors.Is(err, os.ErrNotExist):
		if strings.HasSuffix(dstPath, "/") && !srcIsDir {
			return "", "", fmt.Errorf("destination directory %s must exist", dstPath)
		}
		parent := path.Dir(rel)
		if pst, err := root.Stat(parent); err != nil || !rootfs.IsDir(&pst) {
			return "", "", fmt.Errorf("destination %s: parent directory does not exist", dstPath)
		}
		return parent, path.Base(rel), nil
	default:
		return "", "", err
	}
}

// resolveLinks follows rel while its last element is a symlink, as docker
// cp does with a destination: the copy writes where the link points (in
// the root; the link stays), even when that does not exist yet. The kernel's
// limit of 40 links bounds a loop.
func resolveLinks(root *rootfs.Root, rel string) (string, error) {
	for range 40 {
		st, err := root.Lstat(rel)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return rel, nil
		}
		target, err := root.Readlink(rel)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(rel), target)
		}
		rel = rootfs.Clean(target)
	}
	return "", unix.ELOOP
}

// WriteSource writes src as a tar to w, its top entry named like the
// source (docker cp with "-" as the destination).
func WriteSource(ctx context.Context, w io.Writer, src Endpoint) error {
	s, err := openSource(src)
	if err != nil {
		return err
	}
	defer s.f.Close()
	return writeTar(ctx, w, s, s.name, nil)
}

// writeTar writes the opened source as a tar whose top entry is named name
// (name "" puts a directory's contents at the top). Entries are streamed:
// a directory's own tar comes from archive.WriteTreeDiff, which walks below
// the opened directory by descriptors only, and only its names are
// rewritten. A non-nil owner (uid, gid) replaces every entry's.
func writeTar(ctx context.Context, w io.Writer, s *source, name string, owner *[2]int) error {
	tw := tar.NewWriter(w)
	if !s.fi.IsDir() {
		if err := writeOne(tw, s, name, owner); err != nil {
			return err
		}
		return tw.Close()
	}
	if name != "" {
		h, err := tar.FileInfoHeader(s.fi, "")
		if err != nil {
			return err
		}
		normalize(h, name+"/", owner)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteTreeDiff(ctx, pw, "", s.full(), archive.DiffOptions{})) }()
	defer pr.Close()
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if rel == "" {
			continue // the tree's own root entry, written above
		}
		h.Name = path.Join(name, rel)
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(name, strings.TrimPrefix(path.Clean("/"+h.Linkname), "/"))
		}
		if owner != nil {
			h.Uid, h.Gid = owner[0], owner[1]
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeOne(tw *tar.Writer, s *source, name string, owner *[2]int) error {
	link := ""
	if s.fi.Mode()&os.ModeSymlink != 0 {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(s.f.Fd()), "", buf)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: s.f.Name(), Err: err}
		}
		link = string(buf[:n])
	}
	h, err := tar.FileInfoHeader(s.fi, link)
	if err != nil {
		return err
	}
	normalize(h, name, owner)
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !s.fi.Mode().IsRegular() {
		return nil
	}
	// Reopening the O_PATH fd through /proc reads the inode it holds.
	f, err := os.Open(s.full())
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// normalize keeps numeric ownership only, like layer tars, or sets owner.
func normalize(h *tar.Header, name string, owner *[2]int) {
	h.Name = name
	h.Uname, h.Gname = "", ""
	if owner != nil {
		h.Uid, h.Gid = owner[0], owner[1]
	}
	h.Format = tar.FormatPAX
}

// Extract unpacks the tar stream r into the directory dst, which must exist
// (docker cp with "-" as the source). The stream is not a layer: .wh.*
// names are written as files, as docker does.
func Extract(ctx context.Context, r io.Reader, dst Endpoint) error {
	rel, err := dst.rel()
	if err != nil {
		return err
	}
	root, err := rootfs.Open(dst.Root)
	if err != nil {
		return err
	}
	defer root.Close()
	sub, err := root.Sub(rel)
	if err != nil {
		return fmt.Errorf("destination %s must be an existing directory", dst.Path)
	}
	defer sub.Close()
	if dst.Owner != nil {
		pr, pw := io.Pipe()
		go func(r io.Reader) { pw.CloseWithError(chownTar(pw, r, *dst.Owner)) }(r)
		defer pr.Close()
		r = pr
	}
	if _, err := archive.ApplyRoot(ctx, sub, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone}); err != nil {
		return fmt.Errorf("extract to %s: %w", dst.Path, err)
	}
	return nil
}

// chownTar copies the tar r to w with every entry owned by owner.
func chownTar(w io.Writer, r io.Reader, owner [2]int) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		h.Uid, h.Gid, h.Uname, h.Gname = owner[0], owner[1], "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
