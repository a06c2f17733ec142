package registry

import (
	"context"

	"github.com/strata-project/strata/internal/content"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/store"
)

// Store is what pull and push need of the store: blobs, layers and images
// to read and add to, the registry's own memory of compressed blobs
// (Records), a lease on what a pull adds, the shared lock, and the store's
// directory for spooling downloads and keeping registry tokens.
type Store interface {
	Root() string
	Content() *content.Store
	Layers() *layer.Store
	Images() *image.Store
	Records(buckets ...string) *metadata.Scope
	NewLease(ctx context.Context, what string) (*store.Lease, error)
	Shared(ctx context.Context, fn func() error) error
}
