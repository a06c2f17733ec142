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

// A snapshot made on nothing is committed onto a committed parent as if it
// had been prepared there; one made on a parent, or onto a snapshot not
// committed, is refused and left active.
func TestCommitOn(t *testing.T) {
	ctx := context.Background()
	s := newTest(t)
	for _, p := range []struct{ key, parent string }{{"base", ""}, {"top", ""}, {"early", ""}} {
		if _, err := s.Prepare(ctx, p.key, p.parent); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, "L0", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "onbase", "L0"); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOn(ctx, "L1", "onbase", "L0"); err == nil {
		t.Error("a snapshot made on a parent was committed onto one")
	}
	if err := s.CommitOn(ctx, "L1", "early", "top"); err == nil {
		t.Error("a snapshot was committed onto an active one")
	}
	for _, k := range []string{"onbase", "early"} {
		if info, err := s.Stat(ctx, k); err != nil || info.Kind != snapshot.KindActive {
			t.Errorf("%s after a refused CommitOn: %+v, %v", k, info, err)
		}
	}
	if err := s.CommitOn(ctx, "L1", "top", "L0"); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, "L1")
	if err != nil || info.Kind != snapshot.KindCommitted || info.Parent != "L0" {
		t.Fatalf("L1: %+v, %v; want committed on L0", info, err)
	}
	base, _ := s.Dir(ctx, "L0")
	lowers, err := s.LowerDirs(ctx, "L1")
	if err != nil || len(lowers) != 1 || lowers[0] != base {
		t.Errorf("lower dirs of L1: %v, %v; want [%s]", lowers, err, base)
	}
	if _, err := s.Prepare(ctx, "c", "L1"); err != nil {
		t.Errorf("prepare on L1: %v", err)
	}
	if err := s.Remove(ctx, "L0"); !errors.Is(err, snapshot.ErrInUse) {
		t.Errorf("remove L0 under L1: %v, want in use", err)
	}
}
