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
	"slices"
	"sync"
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

	mu    sync.Mutex
	owned map[string]bool // buckets no Scope may reach (Own)
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

// Scope is the database as one package sees it: transactions that reach
// only the buckets that package keeps its records in. Packages outside the
// store get a Scope rather than the DB, so none of them can read or change
// another's records (images, layers, leases) behind the owner's back.
type Scope struct {
	db      *DB
	buckets []string
}

// Own marks buckets as kept by a package that holds the DB itself (the
// store and the image, layer and snapshot stores it opens): no Scope may
// reach them.
func (db *DB) Own(buckets ...string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.owned == nil {
		db.owned = map[string]bool{}
	}
	for _, b := range buckets {
		db.owned[b] = true
	}
}

// Scope returns the view of db limited to the named buckets. Asking for a
// bucket another package owns panics: bucket names are constants, so this
// is a programming error the first test of the caller finds.
func (db *DB) Scope(buckets ...string) *Scope {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, b := range buckets {
		if db.owned[b] {
			panic(fmt.Sprintf("metadata: bucket %q belongs to the store, not to a scope", b))
		}
	}
	return &Scope{db: db, buckets: buckets}
}

// Tx is a transaction of a Scope.
type Tx struct {
	tx    *bolt.Tx
	scope *Scope
}

// View runs fn in a read-only transaction.
func (s *Scope) View(fn func(tx *Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, scope: s}) })
}

// Update runs fn in a read-write transaction; fn's error rolls it back.
func (s *Scope) Update(fn func(tx *Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, scope: s}) })
}

// Bucket returns the named bucket, or nil if it does not exist yet.
func (t *Tx) Bucket(name string) *bolt.Bucket {
	t.check(name)
	return t.tx.Bucket([]byte(name))
}

// CreateBucket returns the named bucket, creating it in a read-write
// transaction; in a read-only one a missing bucket yields nil, as Bucket.
func (t *Tx) CreateBucket(name string) (*bolt.Bucket, error) {
	t.check(name)
	return Bucket(t.tx, name)
}

// check panics on a bucket outside the scope: the names are constants of
// the package that asked for the scope, so this is a programming error
// that any test of that package's records finds.
func (t *Tx) check(name string) {
	if !slices.Contains(t.scope.buckets, name) {
		panic(fmt.Sprintf("metadata: bucket %q is outside this scope %q", name, t.scope.buckets))
	}
}
