// Package overlay stores snapshots for kernel overlayfs: each snapshot's
// directory holds only its own layer's changes, with deletions in the
// kernel's whiteout form, and a root filesystem is the snapshot's directory
// stacked over its parents' by an overlay mount.
//
// Layout under the root: <id>/fs is the layer (the upper dir while active),
// <id>/work the overlay work dir of an active snapshot with a parent.
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/snapshot/storage"
)

// Bucket is the metadata bucket of overlay snapshots.
const Bucket = "snapshots/overlay"

const workDir = "work"

// Snapshotter is the overlay driver. Records, removal, usage and Cleanup
// are the shared storage.Store's.
type Snapshotter struct {
	*storage.Store
}

var _ snapshot.Snapshotter = (*Snapshotter)(nil)

// New opens the overlay snapshots kept under root.
func New(root string, db *metadata.DB) (*Snapshotter, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	// ':' separates lower dirs and ',' options in overlay's option string.
	if strings.ContainsAny(root, ":,") {
		return nil, fmt.Errorf("overlay snapshotter: root %q contains ':' or ','", root)
	}
	st, err := storage.Open(root, Bucket, db)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	return &Snapshotter{Store: st}, nil
}

func (*Snapshotter) Name() string { return "overlay" }

func (*Snapshotter) Whiteouts() snapshot.WhiteoutForm { return snapshot.WhiteoutsOverlay }

func (o *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return o.create(ctx, key, parent, snapshot.KindActive)
}

func (o *Snapshotter) View(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return o.create(ctx, key, parent, snapshot.KindView)
}

func (o *Snapshotter) create(ctx context.Context, key, parent string, kind snapshot.Kind) ([]snapshot.Mount, error) {
	sn, err := o.Create(ctx, key, parent, kind, func(dir string, p *storage.Snapshot) error {
		if err := os.Mkdir(filepath.Join(dir, storage.FsDir), 0o755); err != nil {
			return err
		}
		if kind == snapshot.KindActive && p != nil {
			return os.Mkdir(filepath.Join(dir, workDir), 0o700)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mounts(sn), nil
}

func (o *Snapshotter) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	sn, err := o.Mountable(ctx, key)
	if err != nil {
		return nil, err
	}
	return mounts(sn), nil
}

// mounts describes the root filesystem of an active or view snapshot.
// Overlay is used only when there is something to stack: a single directory
// is bind mounted, and the kernel refuses a lowerdir-only overlay of one.
func mounts(sn storage.Snapshot) []snapshot.Mount {
	if sn.Kind == snapshot.KindView {
		switch len(sn.Lowers) {
		case 0:
			return []snapshot.Mount{bind(sn.Fs(), "ro")}
		case 1:
			return []snapshot.Mount{bind(sn.Lowers[0], "ro")}
		}
		return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"lowerdir=" + strings.Join(sn.Lowers, ":"), "ro",
		}}}
	}
	if len(sn.Lowers) == 0 {
		return []snapshot.Mount{bind(sn.Fs(), "rw")}
	}
	return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: append([]string{
		"lowerdir=" + strings.Join(sn.Lowers, ":"),
		"upperdir=" + sn.Fs(),
		"workdir=" + filepath.Join(sn.Path, workDir),
	}, plainUpper...)}}
}

// plainUpper keeps the upper dir in the form every reader of layers
// understands (whiteouts and opaque dirs only), whatever the host's
// overlay module defaults: no redirect xattrs for renamed directories (the
// kernel makes rename of a lower dir fail with EXDEV and tools copy
// instead), no metadata-only copy-ups, no inode index tying the upper dir
// to these exact lower dirs.
var plainUpper = []string{"index=off", "redirect_dir=off", "metacopy=off"}

func bind(dir, mode string) snapshot.Mount {
	return snapshot.Mount{Type: "bind", Source: dir, Options: []string{"rbind", mode}}
}

// CommitOn commits active snapshot key, prepared on no parent, as
// snapshot name on the committed parent. An overlay snapshot's directory
// holds only its own layer's changes, so it does not depend on what lies
// below: a layer can be unpacked before its parent is committed.
func (o *Snapshotter) CommitOn(ctx context.Context, name, key, parent string) error {
	return storage.CommitOnto(o.Store, name, key, parent)
}

func (o *Snapshotter) LowerDirs(ctx context.Context, key string) ([]string, error) {
	sn, err := o.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return sn.Lowers, nil
}
