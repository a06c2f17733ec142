package metadata

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestUpdateThenView(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "sub", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := Bucket(tx, "things")
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.View(func(tx *bolt.Tx) error {
		b, _ := Bucket(tx, "things")
		if b == nil {
			t.Fatal("bucket missing in read-only view")
		}
		got = string(b.Get([]byte("k")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != "v" {
		t.Fatalf("got %q, want v", got)
	}
}

func TestReadOnlyMissingBucketIsNil(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		b, err := Bucket(tx, "nope")
		if err != nil || b != nil {
			t.Fatalf("got %v, %v; want nil, nil", b, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestScopeReachesOnlyItsBuckets(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := db.Scope("mine")
	if err := s.Update(func(tx *Tx) error {
		b, err := tx.CreateBucket("mine")
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.View(func(tx *Tx) error {
		if got := string(tx.Bucket("mine").Get([]byte("k"))); got != "v" {
			t.Errorf("got %q, want v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a bucket outside the scope was reachable")
		}
	}()
	_ = s.View(func(tx *Tx) error {
		tx.Bucket("images")
		return nil
	})
}

func TestScopeCannotReachOwnedBuckets(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Own("images")
	defer func() {
		if recover() == nil {
			t.Error("a scope over an owned bucket was made")
		}
	}()
	db.Scope("mine", "images")
}
