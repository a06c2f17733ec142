package driver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/testutil/requires"
)

func TestOpen(t *testing.T) {
	requires.Root(t)
	open := func(name, root string) string {
		t.Helper()
		db, err := metadata.Open(filepath.Join(root, "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(name, root, db)
		if err != nil {
			t.Fatal(err)
		}
		return s.Name()
	}

	fresh := t.TempDir()
	if got := open("", fresh); got != "overlay" {
		t.Errorf("detected %q on ext4, want overlay", got)
	}
	if _, err := os.Stat(filepath.Join(fresh, "snapshots", "overlay")); err != nil {
		t.Errorf("overlay root not made: %v", err)
	}

	// A store made with native keeps native even where overlay works.
	nat := t.TempDir()
	if got := open("native", nat); got != "native" {
		t.Errorf("Open(native) = %q", got)
	}
	if got := open("", nat); got != "native" {
		t.Errorf("reopened native store as %q", got)
	}

	db, err := metadata.Open(filepath.Join(nat, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open("zfs", nat, db); err == nil {
		t.Error("Open of an unknown driver succeeded")
	}
}
