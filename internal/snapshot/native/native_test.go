package native

import (
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/snapshot/testsuite"
)

func newTest(t *testing.T) *Snapshotter {
	t.Helper()
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(filepath.Join(dir, "snapshots", "native"), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) snapshot.Snapshotter { return newTest(t) })
}
