package imagearchive

import (
	"context"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/content"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/store"
)

// Store is what save and load need of the store: images, their blobs and
// layers to read and add to, a lease on what a load adds, the locks, the
// deletion owner to sweep the layers of a failed load, and the store's
// directory for temporary files on its filesystem.
type Store interface {
	Root() string
	Content() *content.Store
	Layers() *layer.Store
	Images() *image.Store
	NewLease(ctx context.Context, what string) (*store.Lease, error)
	Shared(ctx context.Context, fn func() error) error
	Exclusive(ctx context.Context, fn func() error) error
	CollectLayers(ctx context.Context) ([]digest.Digest, error)
}
