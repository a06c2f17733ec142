package registry

import "github.com/strata-project/strata/internal/store"

// The store is what the CLI and the builder hand Pull and Push.
var _ Store = (*store.Store)(nil)
