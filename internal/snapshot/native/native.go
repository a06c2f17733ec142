// Package native stores snapshots as full directory trees, for filesystems
// where overlay cannot mount. An active snapshot starts as a complete copy
// of its parent, so deletions are made by deleting and a root filesystem is
// a plain bind mount.
//
// Copies use reflinks where the filesystem has them and copy_file_range
// otherwise; they never hardlink across snapshots, since a write through
// one link would change the parent too.
package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/snapshot/storage"
)

// Bucket is the metadata bucket of native snapshots.
const Bucket = "snapshots/native"

// Snapshotter is the copying driver. Records, removal, usage and Cleanup
// are the shared storage.Store's.
type Snapshotter struct {
	*storage.Store
}

var _ snapshot.Snapshotter = (*Snapshotter)(nil)

// New opens the native snapshots kept under root.
func New(root string, db *metadata.DB) (*Snapshotter, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("native snapshotter: %w", err)
	}
	st, err := storage.Open(root, Bucket, db)
	if err != nil {
		return nil, fmt.Errorf("native snapshotter: %w", err)
	}
	return &Snapshotter{Store: st}, nil
}

func (*Snapshotter) Name() string { return "native" }

func (*Snapshotter) Whiteouts() snapshot.WhiteoutForm { return snapshot.WhiteoutsDelete }

func (n *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	sn, err := n.Create(ctx, key, parent, snapshot.KindActive, func(dir string, p *storage.Snapshot) error {
		fs := filepath.Join(dir, storage.FsDir)
		if p == nil {
			return os.Mkdir(fs, 0o755)
		}
		return CopyTree(ctx, fs, p.Fs())
	})
	if err != nil {
		return nil, err
	}
	return mounts(sn), nil
}

// View copies nothing: a view is the committed parent's tree bind mounted
// read-only.
func (n *Snapshotter) View(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	sn, err := n.Create(ctx, key, parent, snapshot.KindView, func(dir string, _ *storage.Snapshot) error {
		return os.Mkdir(filepath.Join(dir, storage.FsDir), 0o755)
	})
	if err != nil {
		return nil, err
	}
	return mounts(sn), nil
}

func (n *Snapshotter) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	sn, err := n.Mountable(ctx, key)
	if err != nil {
		return nil, err
	}
	return mounts(sn), nil
}

func mounts(sn storage.Snapshot) []snapshot.Mount {
	if sn.Kind == snapshot.KindView {
		dir := sn.Fs()
		if len(sn.Lowers) > 0 {
			dir = sn.Lowers[0]
		}
		return []snapshot.Mount{{Type: "bind", Source: dir, Options: []string{"rbind", "ro"}}}
	}
	return []snapshot.Mount{{Type: "bind", Source: sn.Fs(), Options: []string{"rbind", "rw"}}}
}

// LowerDirs is the parent's full tree alone: it already holds every layer
// below.
func (n *Snapshotter) LowerDirs(ctx context.Context, key string) ([]string, error) {
	sn, err := n.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(sn.Lowers) == 0 {
		return nil, nil
	}
	return sn.Lowers[:1], nil
}
