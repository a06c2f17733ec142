// Package archive is strata's one implementation of layer tars: applying a
// changeset tar onto a directory (Apply) and producing one from a directory
// (WriteOverlayDiff, WriteTreeDiff), plus the `docker diff` style change lists.
//
// Layer semantics (OCI image spec, "Representing Changes"):
//   - `.wh.NAME` deletes NAME from the layers below;
//   - `DIR/.wh..wh..opq` hides everything below DIR in the layers below;
//   - other `.wh..wh.*` names are AUFS bookkeeping and are ignored.
//
// Whiteouts are stored two ways on disk, chosen per call by WhiteoutMode: a
// merged tree applies them by deleting; an overlay layer directory keeps them
// the kernel's way (a 0/0 character device, xattr trusted.overlay.opaque=y) so
// that the directory can be used as an overlayfs lowerdir.
//
// Safety is the first requirement of Apply: the tar is untrusted. Every path is
// resolved by the kernel inside root (openat2 RESOLVE_IN_ROOT, so absolute
// symlinks behave as in a chroot), the last component is never followed, and
// names that climb out with ".." are rejected.
//
// Tars written here are deterministic: depth-first walk with names sorted
// bytewise inside each directory (parents before children), PAX format,
// numeric ids only, mtimes truncated to whole seconds (optionally clamped to
// SOURCE_DATE_EPOCH), no atime/ctime, xattrs as SCHILY.xattr.* records.
// Whiteout entries are empty regular files with mode 0644, owner 0:0 and mtime
// 0 (the Unix epoch), so they do not depend on when the deletion happened.
package archive

import (
	"archive/tar"
	"errors"
	"sync"
	"time"

	"github.com/strata-project/strata/internal/rootfs"
)

// WhiteoutMode says how Apply stores whiteouts.
type WhiteoutMode int

const (
	// WhiteoutDelete: root is a merged tree. .wh.NAME deletes NAME; .wh..wh..opq
	// empties the dir of every entry not written by this same layer.
	WhiteoutDelete WhiteoutMode = iota
	// WhiteoutOverlay: root is an overlay layer dir. .wh.NAME becomes a 0/0 char
	// device NAME; .wh..wh..opq sets trusted.overlay.opaque=y on the dir.
	WhiteoutOverlay
	// WhiteoutNone: the tar is not a layer (docker cp, ADD of a local
	// archive, a tar build context): .wh.* names are ordinary files,
	// written as they are, as docker does.
	WhiteoutNone
)

func (m WhiteoutMode) String() string {
	switch m {
	case WhiteoutDelete:
		return "delete"
	case WhiteoutOverlay:
		return "overlay"
	case WhiteoutNone:
		return "none"
	}
	return "WhiteoutMode(?)"
}

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	// Lower: dirs of the lower layers, topmost first (overlay mode). A hardlink
	// whose target is not in root but in a lower layer is satisfied by copying
	// the target up into root first, then linking. Directories that Apply has to
	// create implicitly (a parent missing from the tar) take their owner, mode
	// and xattrs from the lower layers, so the upper copy does not mask them.
	Lower []string
	// LowerReady, when set, is called once before Apply first reads the
	// lower layers, and its error stops Apply: their directories may still
	// be being written when Apply starts (the layers of a stack unpacked
	// at once), and a layer whose tar names every parent dir and links
	// nothing below never waits for them.
	LowerReady func() error
	// EntryRead, when set, is called with each header as soon as it has been
	// read, before the entry is applied; an error stops Apply. Apply's
	// reader never reads ahead, so the bytes read from r up to that moment
	// end exactly with the header (after the previous payload's padding and
	// any extended headers), and the entry's stored payload comes next:
	// hdr.Size bytes, none for links, directories and devices, fewer for GNU
	// sparse files. A consumer teeing r can index the stream this way
	// without parsing it again. Apply also reads r to its end.
	EntryRead func(hdr *tar.Header) error
}

// DiffOptions tunes the tar writers.
type DiffOptions struct {
	// SourceDateEpoch, when set, clamps every mtime to at most this.
	SourceDateEpoch *time.Time
	// EntryWritten, when set, is called right after each entry's header
	// (with any PAX records before it) has been written to the writer, with
	// the name and payload size it declares; size payload bytes follow. A
	// consumer of the stream can index it this way without parsing it again.
	EntryWritten func(name string, size int64) error
}

// ErrBreakout is wrapped by Apply errors for entries whose name or hardlink
// target points outside the root.
var ErrBreakout = errors.New("path escapes the root")

// ErrNotPermitted is wrapped by Apply errors when the kernel refuses to create
// a device node (not running as real root, or inside a user namespace).
var ErrNotPermitted = errors.New("device node creation not permitted")

// ErrUnsupportedOverlay is wrapped by WriteOverlayDiff and OverlayChanges
// errors for upper dirs using overlay features strata never enables
// (redirect_dir, metacopy): their on-disk form cannot be diffed correctly by
// walking the upper dir alone.
var ErrUnsupportedOverlay = errors.New("unsupported overlay feature in upper dir")

const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaque     = ".wh..wh..opq"

	xattrPAXPrefix       = "SCHILY.xattr."
	overlayXattrPrefix   = "trusted.overlay."
	overlayOpaqueXattr   = rootfs.OpaqueXattr
	overlayRedirectXattr = "trusted.overlay.redirect"
	overlayMetacopyXattr = "trusted.overlay.metacopy"
)

// copyBufSize is large enough that a typical layer file is copied in one or
// two read/write pairs.
const copyBufSize = 1 << 20

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

func getBuf() *[]byte  { return copyBufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { copyBufPool.Put(b) }
