package imagearchive

import "github.com/strata-project/strata/internal/store"

// The store is what the CLI hands Save and Load.
var _ Store = (*store.Store)(nil)
