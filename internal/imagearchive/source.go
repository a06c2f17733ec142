package imagearchive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// ErrInvalid is wrapped by every error about an archive's content: a
// hostile or broken archive, as opposed to a failing disk or store.
var ErrInvalid = errors.New("invalid image archive")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// source is an archive opened for reading members by name. Names are
// slash-separated, relative and clean; nothing outside the archive can be
// named.
type source interface {
	// open returns member name and its size.
	open(name string) (io.ReadCloser, int64, error)
	has(name string) bool
	Close() error
}

// maxEntries bounds how many members an archive may have.
const maxEntries = 1 << 20

// tarSource reads members of an uncompressed tar file in place: the file
// is indexed once (headers only, payloads skipped by seeking) and each
// member is then a section of the file.
type tarSource struct {
	f       *os.File
	entries map[string]tarEntry
}

type tarEntry struct {
	off, size int64
	link      string // a symlink's or hardlink's target member, "" for a file
}

func newTarSource(f *os.File) (*tarSource, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	end := st.Size()
	ts := &tarSource{f: f, entries: map[string]tarEntry{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if n >= maxEntries {
			return nil, invalid("more than %d entries", maxEntries)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, invalid("read tar: %v", err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue // "./"
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		e := tarEntry{off: off}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			if hdr.Size < 0 || hdr.Size > end-off {
				return nil, invalid("entry %s claims %d bytes, more than the archive holds", name, hdr.Size)
			}
			e.size = hdr.Size
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return nil, invalid("entry %s is a symlink to the absolute path %s", name, hdr.Linkname)
			}
			if e.link, err = cleanName(path.Join(path.Dir(name), hdr.Linkname)); err != nil || e.link == "" {
				return nil, invalid("entry %s is a symlink out of the archive (%s)", name, hdr.Linkname)
			}
		case tar.TypeLink:
			if e.link, err = cleanName(hdr.Linkname); err != nil || e.link == "" {
				return nil, invalid("entry %s is a hard link out of the archive (%s)", name, hdr.Linkname)
			}
		default:
			return nil, invalid("entry %s has type %q: an image archive holds only files, directories and links", name, hdr.Typeflag)
		}
		if _, dup := ts.entries[name]; dup {
			return nil, invalid("duplicate entry %s", name)
		}
		ts.entries[name] = e
	}
	return ts, nil
}

// cleanName makes a member name relative and clean, refusing absolute
// names and names that climb out with "..".
func cleanName(name string) (string, error) {
	if path.IsAbs(name) {
		return "", invalid("entry %s has an absolute name", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", invalid("entry %s points outside the archive", name)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// resolve follows links to the member holding the bytes.
func (ts *tarSource) resolve(name string) (tarEntry, error) {
	const maxHops = 8
	for range maxHops {
		e, ok := ts.entries[name]
		if !ok {
			return e, invalid("%s is not in the archive", name)
		}
		if e.link == "" {
			return e, nil
		}
		name = e.link
	}
	return tarEntry{}, invalid("%s: too many links", name)
}

func (ts *tarSource) has(name string) bool {
	_, err := ts.resolve(name)
	return err == nil
}

func (ts *tarSource) open(name string) (io.ReadCloser, int64, error) {
	clean, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	e, err := ts.resolve(clean)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(io.NewSectionReader(ts.f, e.off, e.size)), e.size, nil
}

func (ts *tarSource) Close() error { return ts.f.Close() }

// dirSource reads an OCI layout directory; os.Root keeps every open,
// symlinks included, inside it.
type dirSource struct{ root *os.Root }

func newDirSource(dir string) (*dirSource, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &dirSource{root: r}, nil
}

func (d *dirSource) open(name string) (io.ReadCloser, int64, error) {
	clean, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	if clean == "" {
		return nil, 0, invalid("empty member name")
	}
	f, err := d.root.Open(clean)
	if err != nil {
		return nil, 0, invalid("%s: %v", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, invalid("%s is not a regular file", name)
	}
	return f, st.Size(), nil
}

func (d *dirSource) has(name string) bool {
	rc, _, err := d.open(name)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}

func (d *dirSource) Close() error { return d.root.Close() }
