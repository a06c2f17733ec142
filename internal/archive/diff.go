package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

// WriteOverlayDiff writes the changeset tar of an overlay upper dir: 0/0 char
// devices become .wh.NAME, trusted.overlay.opaque=y becomes DIR/.wh..wh..opq
// right after the dir entry, and no trusted.overlay.* xattr is written. Upper
// dirs using redirect_dir or metacopy are refused (ErrUnsupportedOverlay).
func WriteOverlayDiff(ctx context.Context, w io.Writer, upper string, opts DiffOptions) error {
	t := newTarWriter(w, opts)
	defer t.release()
	err := walkOverlay(ctx, upper, func(ev event) error {
		switch ev.kind {
		case evDelete:
			return t.writeWhiteout(ev.rel)
		case evOpaque:
			return t.writeMarker(joinRel(ev.rel, whiteoutOpaque))
		default:
			return t.writeNode(ev.n)
		}
	})
	if err == nil {
		err = t.close()
	}
	if err != nil {
		return fmt.Errorf("write diff of overlay upper %s: %w", upper, err)
	}
	return nil
}

// WriteTreeDiff writes the changeset tar that turns tree lower into tree
// upper: deleted entries become .wh.NAME; an entry is written when it is new
// or differs in type, mode, owner, size, content, xattrs, link target or
// device numbers (mtime alone is not a change), together with the
// directories above it. lower == "" writes all of upper (an export).
func WriteTreeDiff(ctx context.Context, w io.Writer, lower, upper string, opts DiffOptions) error {
	t := newTarWriter(w, opts)
	defer t.release()
	tw := &treeWalker{ctx: ctx, lower: lower, upper: upper, emit: func(ev event) error {
		if ev.kind == evDelete {
			return t.writeWhiteout(ev.rel)
		}
		return t.writeNode(ev.n)
	}}
	err := tw.walk()
	if err == nil {
		err = t.close()
	}
	if err != nil {
		return fmt.Errorf("write diff of %s against %q: %w", upper, lower, err)
	}
	return nil
}

type devIno struct{ dev, ino uint64 }

type tarWriter struct {
	tw      *tar.Writer
	epoch   *time.Time
	written func(name string, size int64) error
	links   map[devIno]string // first path written for each multiply linked inode
	buf     *[]byte
}

func newTarWriter(w io.Writer, opts DiffOptions) *tarWriter {
	t := &tarWriter{tw: tar.NewWriter(w), written: opts.EntryWritten, links: map[devIno]string{}, buf: getBuf()}
	if opts.SourceDateEpoch != nil {
		e := time.Unix(opts.SourceDateEpoch.Unix(), 0)
		t.epoch = &e
	}
	return t
}

func (t *tarWriter) release() { putBuf(t.buf) }

func (t *tarWriter) close() error { return t.tw.Close() }

// mtime applies the policy: whole seconds, clamped to SOURCE_DATE_EPOCH.
func (t *tarWriter) mtime(sec int64) time.Time {
	m := time.Unix(sec, 0)
	if t.epoch != nil && m.After(*t.epoch) {
		return *t.epoch
	}
	return m
}

func (t *tarWriter) writeWhiteout(rel string) error {
	dir, base := splitRel(rel)
	return t.writeMarker(joinRel(dir, whiteoutPrefix+base))
}

// writeMarker writes an empty whiteout-style entry. Its metadata is fixed so
// that the tar does not depend on when or by whom the deletion was made.
func (t *tarWriter) writeMarker(name string) error {
	return t.writeHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	})
}

// writeHeader writes hdr and then tells DiffOptions.EntryWritten, whose
// consumer counts on the stream position being right after the header.
func (t *tarWriter) writeHeader(hdr *tar.Header) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if t.written == nil {
		return nil
	}
	return t.written(hdr.Name, hdr.Size)
}

// readerOnly hides os.File's WriteTo so io.CopyBuffer uses our buffer.
type readerOnly struct{ io.Reader }

func (t *tarWriter) writeNode(n *node) error {
	hdr := &tar.Header{
		Name:    n.rel,
		Mode:    int64(n.st.Mode & 0o7777),
		Uid:     int(n.st.Uid),
		Gid:     int(n.st.Gid),
		ModTime: t.mtime(n.st.Mtim.Sec),
		Format:  tar.FormatPAX,
	}
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = n.st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = n.link
	case unix.S_IFCHR:
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets have no tar form; docker skips them too
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor = int64(unix.Major(n.st.Rdev))
		hdr.Devminor = int64(unix.Minor(n.st.Rdev))
	}
	if hdr.Typeflag != tar.TypeDir && n.st.Nlink > 1 && !rootfs.IsWhiteoutDev(&n.st) {
		key := devIno{uint64(n.st.Dev), n.st.Ino}
		if first, ok := t.links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			hdr.Devmajor, hdr.Devminor = 0, 0
		} else {
			t.links[key] = n.rel
		}
	}
	if len(n.xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(n.xattrs))
		for _, x := range n.xattrs {
			hdr.PAXRecords[xattrPAXPrefix+x.name] = string(x.value)
		}
	}
	if err := t.writeHeader(hdr); err != nil {
		return fmt.Errorf("write header %s: %w", n.rel, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	// The walker opened the file (a bare descriptor: os.File would also
	// register it with the poller, five wasted syscalls per file).
	written, err := io.CopyBuffer(t.tw, io.LimitReader(&offReader{fd: n.fd}, hdr.Size), *t.buf)
	if err != nil {
		return fmt.Errorf("write content of %s: %w", n.rel, err)
	}
	if written != hdr.Size {
		return fmt.Errorf("write content of %s: file shrank from %d to %d bytes while being read", n.rel, hdr.Size, written)
	}
	return nil
}
