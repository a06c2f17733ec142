package builder

import (
	"context"

	"github.com/strata-project/strata/internal/registry"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
)

// Store is what a build needs of the store: what a pull needs (a FROM
// pulls its base; steps add blobs, layers and images under a lease, and
// the cache keeps its records beside the registry's), the snapshots that
// RUN and COPY work in, this process's owner ID and the liveness of others
// for scratch directories, and the deletion owner for builder prune.
type Store interface {
	registry.Store
	Snapshots() snapshot.Snapshotter
	Owner() string
	Alive(owner string) bool
	Prune(ctx context.Context, o store.PruneOptions) (store.PruneReport, error)
}
