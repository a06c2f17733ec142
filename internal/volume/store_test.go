package volume

import "github.com/strata-project/strata/internal/store"

// The store is what the CLI hands New.
var _ Store = (*store.Store)(nil)
