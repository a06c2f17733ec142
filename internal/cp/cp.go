// Package cp copies files between the host and a container's root
// filesystem with `docker cp`'s rules. A copy is a tar stream: the source is
// written as a tar whose top entry carries the name the destination rules
// give it, and the stream is extracted with archive.Apply, which never
// writes outside the directory it extracts into. Paths inside a container
// are resolved inside its root, symlinks included.
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
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/strata-project/strata/internal/archive"
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
}

// Resolve is the endpoint's path on the host, resolved inside Root.
func (e Endpoint) Resolve() (string, error) {
	if e.Root == "/" {
		return filepath.Abs(e.Path)
	}
	return securejoin.SecureJoin(e.Root, e.Path)
}

// ResolveSource is the endpoint's path on the host when it is the source of
// a copy: like Resolve, but a final symlink stays unresolved unless
// FollowLink is set or the path ends in "/" or "/." (which name what the
// link points to, as they do for the kernel).
func (e Endpoint) ResolveSource() (string, error) {
	base := path.Base(e.Path)
	follow := e.FollowLink || strings.HasSuffix(e.Path, "/") || base == "." || base == ".."
	if e.Root == "/" {
		full, err := filepath.Abs(e.Path)
		if err != nil || !follow {
			return full, err
		}
		if target, err := filepath.EvalSymlinks(full); err == nil {
			return target, nil
		}
		return full, nil // missing: Copy reports it
	}
	if follow {
		return e.Resolve()
	}
	clean := path.Clean("/" + e.Path)
	dir, err := securejoin.SecureJoin(e.Root, path.Dir(clean))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, path.Base(clean)), nil
}

// Copy copies src to dst with docker cp's rules:
//   - a file onto a missing path creates it (its parent must exist), onto a
//     file overwrites it, onto a directory goes inside it;
//   - a directory onto a missing path creates it with the source's contents,
//     onto a directory goes inside it, or with SRC ending in "/." its
//     contents do; onto a file is an error.
func Copy(ctx context.Context, src, dst Endpoint) error {
	srcFull, err := src.ResolveSource()
	if err != nil {
		return err
	}
	sfi, err := os.Lstat(srcFull)
	if err != nil {
		return fmt.Errorf("could not find the file %s: %w", src.Path, err)
	}
	if strings.HasSuffix(src.Path, "/") && !sfi.IsDir() {
		return fmt.Errorf("%s: not a directory", src.Path)
	}
	contentsOnly := sfi.IsDir() && (strings.HasSuffix(src.Path, "/.") || src.Path == ".")
	dstFull, err := dst.Resolve()
	if err != nil {
		return err
	}
	into, name, err := placement(sfi.IsDir(), contentsOnly, filepath.Base(srcFull), dst.Path, dstFull)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteTar(ctx, pw, srcFull, name)) }()
	_, err = archive.Apply(ctx, into, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src.Path, dst.Path, err)
	}
	return nil
}

// placement decides the directory to extract into and the name the
// source's top entry takes there ("" = the source's contents go straight in).
func placement(srcIsDir, contentsOnly bool, srcBase, dstPath, dstFull string) (into, name string, err error) {
	dfi, err := os.Stat(dstFull)
	switch {
	case err == nil && dfi.IsDir():
		if contentsOnly {
			return dstFull, "", nil
		}
		return dstFull, srcBase, nil
	case err == nil:
		if srcIsDir {
			return "", "", fmt.Errorf("cannot copy a directory to a file: %s", dstPath)
		}
		return filepath.Dir(dstFull), filepath.Base(dstFull), nil
	case errors.Is(err, os.ErrNotExist):
		if strings.HasSuffix(dstPath, "/") && !srcIsDir {
			return "", "", fmt.Errorf("destination directory %s must exist", dstPath)
		}
		parent := filepath.Dir(dstFull)
		if pfi, err := os.Stat(parent); err != nil || !pfi.IsDir() {
			return "", "", fmt.Errorf("destination %s: parent directory does not exist", dstPath)
		}
		return parent, filepath.Base(dstFull), nil
	default:
		return "", "", err
	}
}

// WriteTar writes the tree at full as a tar whose top entry is named name
// (name "" puts a directory's contents at the top). Entries are streamed:
// a directory's own tar comes from archive.WriteTreeDiff and only its names
// are rewritten.
func WriteTar(ctx context.Context, w io.Writer, full, name string) error {
	fi, err := os.Lstat(full)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if !fi.IsDir() {
		if err := writeOne(tw, full, fi, name); err != nil {
			return err
		}
		return tw.Close()
	}
	if name != "" {
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		normalize(h, name+"/")
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteTreeDiff(ctx, pw, "", full, archive.DiffOptions{})) }()
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
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeOne(tw *tar.Writer, full string, fi os.FileInfo, name string) error {
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(full); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	normalize(h, name)
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// normalize keeps numeric ownership only, like layer tars.
func normalize(h *tar.Header, name string) {
	h.Name = name
	h.Uname, h.Gname = "", ""
	h.Format = tar.FormatPAX
}

// Extract unpacks the tar stream r into the directory dst, which must exist
// (docker cp with "-" as the source).
func Extract(ctx context.Context, r io.Reader, dst Endpoint) error {
	full, err := dst.Resolve()
	if err != nil {
		return err
	}
	if fi, err := os.Stat(full); err != nil || !fi.IsDir() {
		return fmt.Errorf("destination %s must be an existing directory", dst.Path)
	}
	if _, err := archive.Apply(ctx, full, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete}); err != nil {
		return fmt.Errorf("extract to %s: %w", dst.Path, err)
	}
	return nil
}
