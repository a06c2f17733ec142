package store

import (
	"path/filepath"

	"github.com/strata-project/strata/internal/lockfile"
)

// Alive tells whether the strata process registered as owner still runs.
func (s *Store) Alive(owner string) bool {
	return lockfile.Alive(filepath.Join(s.root, ownersDir), owner)
}
