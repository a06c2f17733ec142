package builder

import "github.com/strata-project/strata/internal/store"

// The store is what the CLI hands Build, Sweep and the cache's prune.
var _ Store = (*store.Store)(nil)
