// Package snapshot keeps layers extracted on disk and stacks them into root
// filesystems.
//
// A committed snapshot is one layer's contents, read-only, named by the
// chainID of the layer stack it ends (so images sharing a base share its
// snapshots). An active snapshot is a writable directory over a committed
// parent chain: a container's root, a build step, or a layer being unpacked.
// Two implementations exist: overlay (kernel overlayfs; a snapshot dir holds
// only its own layer's changes, with whiteouts in the kernel's form) and
// native (each snapshot is a full tree copied from its parent; whiteouts are
// applied by deleting).
package snapshot

import (
	"context"
	"errors"
	"time"
)

// ErrInUse is returned (wrapped) when a committed snapshot cannot be removed
// because other snapshots are stacked on it. Missing snapshots yield errors
// wrapping metadata.ErrNotFound, and names already taken errors wrapping
// metadata.ErrExists.
var ErrInUse = errors.New("snapshot in use")

// Kind says what a snapshot is for.
type Kind int

const (
	KindActive    Kind = iota + 1 // writable, not yet committed
	KindView                      // read-only view over a committed parent
	KindCommitted                 // immutable; may be a parent
)

func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindView:
		return "view"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes one snapshot.
type Info struct {
	Key     string // name of a committed snapshot, or key of an active one
	Parent  string // committed parent's name; "" for a base
	Kind    Kind
	Created time.Time
}

// Usage is the disk use of a snapshot's own directory (not its parents).
type Usage struct {
	Size   int64 // bytes of regular file data
	Inodes int64
}

// Mount is how to make a snapshot's root filesystem visible somewhere.
// Use snapshot.MountAll and snapshot.UnmountAll rather than calling mount(2)
// with these directly: overlay lowerdir chains can exceed the mount option
// page limit and MountAll knows how to mount them anyway.
type Mount struct {
	Type    string   // "overlay" or "bind"
	Source  string   // "overlay", or the directory to bind
	Options []string // e.g. "lowerdir=a:b", "upperdir=...", "workdir=...", "ro", "rbind"
}

// WhiteoutForm says how deletions must be recorded when writing into an
// active snapshot's Dir.
type WhiteoutForm int

const (
	// WhiteoutsOverlay: deletions are char devices 0/0, opaque directories
	// carry trusted.overlay.opaque=y; the Dir holds only this layer's changes.
	WhiteoutsOverlay WhiteoutForm = iota + 1
	// WhiteoutsDelete: the Dir is the full merged tree; deletions delete.
	WhiteoutsDelete
)

// Snapshotter stores snapshots. Keys and names share one namespace.
// All methods are safe to call from several strata processes on one store.
type Snapshotter interface {
	// Name is the driver name shown by `strata info` ("overlay", "native").
	Name() string
	// Prepare creates an active snapshot key over the committed parent
	// ("" for none) and returns how to mount it read-write.
	Prepare(ctx context.Context, key, parent string) ([]Mount, error)
	// View creates a read-only snapshot key over the committed parent.
	View(ctx context.Context, key, parent string) ([]Mount, error)
	// Commit turns active snapshot key into committed snapshot name.
	// The directory is kept as it is: nothing is copied or re-extracted.
	// When name is taken (another process committed the same layer first)
	// the error wraps metadata.ErrExists and key is left active, for the
	// caller to remove. Unmount key before committing it: a committed
	// directory must no longer change.
	Commit(ctx context.Context, name, key string) error
	// Mounts returns how to mount an existing active or view snapshot.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Remove deletes a snapshot. A committed snapshot that is the parent of
	// another snapshot cannot be removed (the error wraps ErrInUse).
	Remove(ctx context.Context, key string) error
	// Stat describes a snapshot; errors wrap metadata.ErrNotFound when missing.
	Stat(ctx context.Context, key string) (Info, error)
	// Usage measures the snapshot's own directory.
	Usage(ctx context.Context, key string) (Usage, error)
	// Walk calls fn for every snapshot.
	Walk(ctx context.Context, fn func(Info) error) error

	// Dir is where changes to active snapshot key are written directly
	// (layer unpack, COPY) without mounting, and Whiteouts says in which
	// form deletions go there. For overlay this is the upper dir; for
	// native it is the snapshot's full tree. For a committed snapshot it is
	// the same directory, to be read only (diff, save).
	Dir(ctx context.Context, key string) (string, error)
	Whiteouts() WhiteoutForm
	// LowerDirs returns the directories of the committed chain under
	// snapshot key, topmost first (overlay: each layer's own dir; native:
	// the parent's full tree alone). Used to resolve hardlinks to lower
	// layers when unpacking, and to tell added from changed files in diffs.
	LowerDirs(ctx context.Context, key string) ([]string, error)
}

// MaxOverlayLowers is the most lower dirs one overlay mount can stack: the
// kernel's OVL_MAX_STACK. A container's mount adds its init layer below
// the writable one, so an image it runs has at most one layer less.
const MaxOverlayLowers = 500
