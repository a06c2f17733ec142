package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot/native"
)

// A nested hold must not release the outer one: flock(2) locks belong to
// the open file, so a naive inner Unlock would drop the lock a build holds
// while it pulls.
func TestNestedLocksKeepTheOuterHold(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(s.root, "lock")
	err = s.Shared(ctx, func() error {
		if err := s.Shared(ctx, func() error { return nil }); err != nil {
			return err
		}
		// Another process (another open file) must still be kept out.
		if _, ok, err := lockfile.TryLock(lockPath, lockfile.Exclusive); err != nil || ok {
			t.Fatalf("exclusive lock taken while shared is held (ok=%v, err=%v)", ok, err)
		}
		if err := s.Exclusive(ctx, func() error { return nil }); err == nil {
			t.Fatal("exclusive inside shared accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other, ok, err := lockfile.TryLock(lockPath, lockfile.Exclusive)
	if err != nil || !ok {
		t.Fatalf("lock not released after the outer hold (ok=%v, err=%v)", ok, err)
	}
	other.Unlock()
}

// Packages outside the store keep records beside the store's, and can
// reach none of the store's own: images, names, layers, snapshots, leases.
func TestRecordsCannotReachTheStoresBuckets(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Records("mine").Update(func(tx *metadata.Tx) error {
		_, err := tx.CreateBucket("mine")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"images", "names", "layers", native.Bucket, leasesBucket, storeBucket} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Records reached the store's bucket %q", b)
				}
			}()
			s.Records("mine", b)
		}()
	}
}
