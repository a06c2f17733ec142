package container

import "github.com/strata-project/strata/internal/store"

// The store is what the CLI hands NewManager.
var _ Store = (*store.Store)(nil)
