// Package metadata owns strata's one embedded database file (bbolt).
//
// Every package keeps its records in its own top-level bucket of this one
// file, so state that must change together (an image and the layers it
// references, a container and its snapshot) can change in one transaction.
//
// The file is opened for each transaction rather than for the life of the
// process: bbolt holds an flock on the file while it is open, and a
// long-running command (a foreground container, a build) must not lock every
// other strata process out of the store.
package metadata

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-project/strata/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned (wrapped) by packages when a record does not
// exist: errdefs' kind.
var ErrNotFound = errdefs.ErrNotFound

// ErrExists is returned (wrapped) by packages when a record already
// exists: errdefs' kind.
var ErrExists = errdefs.ErrAlreadyExists

// DB is the metadata database of one store root.
type DB struct {
	path string
}

// lockTimeout bounds how long a transaction waits for another strata process
// that holds the database.
const lockTimeout = 2 * time.Minute

// Open returns the database at path, creating the file and its directory on
// first use.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	db := &DB{path: path}
	// Create the file now so read-only transactions never find it missing.
	if err := db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return nil, err
	}
	return db, nil
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Update runs fn in a read-write transaction; fn's error rolls it back.
func (db *DB) Update(fn func(tx *bolt.Tx) error) error {
	b, err := bolt.Open(db.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("open metadata %s: %w", db.path, err)
	}
	err = b.Update(fn)
	if cerr := b.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close metadata %s: %w", db.path, cerr)
	}
	return err
}

// View runs fn in a read-only transaction. Readers share the file lock.
func (db *DB) View(fn func(tx *bolt.Tx) error) error {
	b, err := bolt.Open(db.path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open metadata %s: %w", db.path, err)
	}
	err = b.View(fn)
	if cerr := b.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close metadata %s: %w", db.path, cerr)
	}
	return err
}

// Bucket returns the top-level bucket name in tx, creating it in a writable
// transaction. In a read-only transaction a missing bucket yields nil.
func Bucket(tx *bolt.Tx, name string) (*bolt.Bucket, error) {
	if !tx.Writable() {
		return tx.Bucket([]byte(name)), nil
	}
	b, err := tx.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return b, nil
}
