package overlay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"

	"golang.org/x/sys/unix"

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
	s, err := New(filepath.Join(dir, "snapshots", "overlay"), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) snapshot.Snapshotter { return newTest(t) })
}

// Renaming a lower directory must not leave redirect xattrs in the upper
// dir, which the layer differ does not read: with redirect_dir=off the
// kernel refuses and tools fall back to copying.
func TestRenameOfLowerDirIsRefused(t *testing.T) {
	requires.Root(t)
	ctx := context.Background()
	s := newTest(t)
	if _, err := s.Prepare(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	dir, err := s.Dir(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "L1", "k"); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Prepare(ctx, "c", "L1")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := snapshot.MountAll(ms, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(root); err != nil {
			t.Error(err)
		}
	})
	if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, "e")); !errors.Is(err, unix.EXDEV) {
		t.Errorf("rename of a lower dir = %v, want EXDEV", err)
	}
}

func TestNewRejectsSeparatorsInRoot(t *testing.T) {
	db, err := metadata.Open(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"/tmp/a:b", "/tmp/a,b"} {
		if _, err := New(root, db); err == nil {
			t.Errorf("New(%q) succeeded", root)
		}
	}
}
