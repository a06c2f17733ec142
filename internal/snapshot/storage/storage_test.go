package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "snapshots"), "snapshots/test", db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mkfs(dir string, _ *Snapshot) error { return os.Mkdir(filepath.Join(dir, FsDir), 0o755) }

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestCreateChain(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, err := s.Create(ctx, "a", "", snapshot.KindActive, mkfs)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "A", "a"); err != nil {
		t.Fatal(err)
	}
	var seen *Snapshot
	b, err := s.Create(ctx, "b", "A", snapshot.KindActive, func(dir string, p *Snapshot) error {
		seen = p
		return mkfs(dir, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == nil || seen.ID != a.ID || seen.Kind != snapshot.KindCommitted {
		t.Errorf("fill got parent %+v, want committed A with id %d", seen, a.ID)
	}
	if b.ID == a.ID || !slices.Equal(b.Lowers, []string{a.Fs()}) {
		t.Errorf("b = %+v, want a new id and lowers [%s]", b, a.Fs())
	}
	if err := s.Commit(ctx, "B", "b"); err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(ctx, "c", "B", snapshot.KindView, mkfs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{b.Fs(), a.Fs()}; !slices.Equal(got.Lowers, want) || !slices.Equal(c.Lowers, want) {
		t.Errorf("lowers of c = %q (Create: %q), want %q", got.Lowers, c.Lowers, want)
	}
	if slices.ContainsFunc(names(t, s.root), func(n string) bool { return n[:1] == "n" }) {
		t.Errorf("temporary dir left: %q", names(t, s.root))
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	boom := errors.New("boom")
	_, err := s.Create(ctx, "a", "", snapshot.KindActive, func(dir string, _ *Snapshot) error {
		if err := mkfs(dir, nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Create = %v, want boom", err)
	}
	if n := names(t, s.root); len(n) != 0 {
		t.Errorf("left behind: %q", n)
	}
	if _, err := s.Stat(ctx, "a"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Stat after failed Create = %v, want ErrNotFound", err)
	}
	// A key taken while fill ran is refused at record time.
	_, err = s.Create(ctx, "b", "", snapshot.KindActive, func(dir string, _ *Snapshot) error {
		if _, err := s.Create(ctx, "b", "", snapshot.KindActive, mkfs); err != nil {
			return err
		}
		return mkfs(dir, nil)
	})
	if !errors.Is(err, metadata.ErrExists) {
		t.Errorf("Create racing another = %v, want ErrExists", err)
	}
	if n := names(t, s.root); len(n) != 1 {
		t.Errorf("want only the winner's dir, have %q", n)
	}
}

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	kept, err := s.Create(ctx, "kept", "", snapshot.KindActive, mkfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"999", "new-crashed", "driver-state"} {
		if err := os.MkdirAll(filepath.Join(s.root, d, FsDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A directory being filled by someone else right now.
	var during []string
	_, err = s.Create(ctx, "filling", "", snapshot.KindActive, func(dir string, _ *Snapshot) error {
		if err := s.Cleanup(ctx); err != nil {
			return err
		}
		during = names(t, s.root)
		return mkfs(dir, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(during) != 3 || !slices.Contains(during, filepath.Base(kept.Path)) || !slices.Contains(during, "driver-state") {
		t.Errorf("after Cleanup during a Create: %q, want the recorded dir, the locked temp dir and driver-state", during)
	}
	if n := names(t, s.root); len(n) != 3 {
		t.Errorf("after the Create finished: %q, want 2 snapshot dirs and driver-state", n)
	}
}

func TestRemoveDeletesDir(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	sn, err := s.Create(ctx, "a", "", snapshot.KindActive, mkfs)
	if err != nil {
		t.Fatal(err)
	}
	// Kernel-made overlay work dirs are mode 0; removal must still work.
	if err := os.MkdirAll(filepath.Join(sn.Fs(), "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(sn.Fs(), "x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sn.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir of removed snapshot: %v", err)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a-long-target-that-is-not-data", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	u, err := Usage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := (snapshot.Usage{Size: 100, Inodes: 3}); u != want {
		t.Errorf("Usage = %+v, want %+v", u, want)
	}
}

// Another process's Cleanup may find a new snapshot's directory before its
// maker has locked it and remove it as an orphan: the maker makes another,
// and the snapshot is created.
func TestCreateSurvivesCleanupBeforeLock(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var taken []string
	s.tempMade = func(dir string) {
		if len(taken) > 0 {
			return
		}
		taken = append(taken, dir)
		if err := s.Cleanup(ctx); err != nil {
			t.Error(err)
		}
	}
	sn, err := s.Create(ctx, "a", "", snapshot.KindActive, mkfs)
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != 1 {
		t.Fatalf("the hook ran %d times", len(taken))
	}
	if _, err := os.Stat(taken[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cleanup left %s: %v", taken[0], err)
	}
	if _, err := os.Stat(sn.Fs()); err != nil {
		t.Fatal(err)
	}
}
