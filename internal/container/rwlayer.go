package container

import (
	"context"

	"github.com/strata-project/strata/internal/archive"
)

// LayerSize is the bytes in c's writable layer (docker's SizeRw); 0 when it
// cannot be measured (the layer is gone).
func (m *Manager) LayerSize(ctx context.Context, c Container) int64 {
	u, _ := m.store.Snapshots().Usage(ctx, c.SnapshotKey)
	return u.Size
}

// HasLayer tells whether c's writable layer still exists: a container
// without one cannot run again.
func (m *Manager) HasLayer(ctx context.Context, c Container) bool {
	_, err := m.store.Snapshots().Stat(ctx, c.SnapshotKey)
	return err == nil
}

// Changes streams what c changed in its writable layer (docker diff).
func (m *Manager) Changes(ctx context.Context, c Container, fn func(archive.Change) error) error {
	return m.store.Layers().Changes(ctx, c.SnapshotKey, fn)
}
