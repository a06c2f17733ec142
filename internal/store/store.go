// Package store is one strata store root: it opens the metadata file, the
// blob store, the snapshotter, the layers and the images over one directory,
// and owns what spans them: the store lock, image import, image removal and
// garbage collection of layers no image uses.
package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/strata-project/strata/internal/content"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/snapshot/driver"
)

// DefaultRoot is where the store lives unless --root or STRATA_ROOT say otherwise.
const DefaultRoot = "/var/lib/strata"

// Options choose the store root and, on first use, its storage driver.
type Options struct {
	Root   string
	Driver string // "" = the one recorded, or detect on first use
}

// Store is an opened store root.
type Store struct {
	root      string
	db        *metadata.DB
	content   *content.Store
	snapshots snapshot.Snapshotter
	layers    *layer.Store
	images    *image.Store

	// owner is this process as other strata processes see it: the
	// liveness signal behind ingest keys, build scratch dirs and leases.
	owner *lockfile.Owner

	rootSources []RootSource

	lockPath      string
	lock          *lockfile.Lock
	lockMu        sync.Mutex
	lockDepth     int
	lockExclusive bool
}

const (
	storeBucket = "store"
	driverKey   = "driver"
)

// Open opens (creating on first use) the store at opts.Root.
func Open(ctx context.Context, opts Options) (*Store, error) {
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create store root %s: %w", root, err)
	}
	db, err := metadata.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	db.Own(storeBucket, leasesBucket)
	drv, err := chooseDriver(db, root, opts.Driver)
	if err != nil {
		return nil, err
	}
	sn, err := driver.Open(drv, root, db)
	if err != nil {
		return nil, err
	}
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	owner, err := lockfile.NewOwner(filepath.Join(root, ownersDir))
	if err != nil {
		return nil, err
	}
	ls, err := layer.New(filepath.Join(root, "layers"), db, sn, owner.ID)
	if err != nil {
		owner.Close()
		return nil, err
	}
	s := &Store{
		root:      root,
		db:        db,
		content:   cs,
		snapshots: sn,
		layers:    ls,
		images:    image.NewStore(db, cs),
		owner:     owner,
		lockPath:  filepath.Join(root, "lock"),
	}
	ls.SetGuard(s.Shared)
	return s, nil
}

// chooseDriver keeps a store on the driver it was created with: snapshots of
// one driver mean nothing to another.
func chooseDriver(db *metadata.DB, root, want string) (string, error) {
	var recorded string
	err := db.View(func(tx *bolt.Tx) error {
		if b, _ := metadata.Bucket(tx, storeBucket); b != nil {
			recorded = string(b.Get([]byte(driverKey)))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	switch {
	case recorded != "" && want != "" && want != recorded:
		return "", fmt.Errorf("store %s uses storage driver %q, not %q (use another --root for %s)", root, recorded, want, want)
	case recorded != "":
		return recorded, nil
	}
	drv := want
	if drv == "" {
		drv = driver.Choose(filepath.Join(root, "snapshots"))
	}
	if !slices.Contains(driver.Names, drv) {
		return "", fmt.Errorf("unknown storage driver %q (want overlay or native)", drv)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, storeBucket)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(driverKey)); v != nil {
			drv = string(v) // another process chose first
			return nil
		}
		return b.Put([]byte(driverKey), []byte(drv))
	})
	return drv, err
}

// Root is the store's directory: packages keep their own files (containers,
// volumes, the build cache) under it.
func (s *Store) Root() string { return s.root }

// Content is the blob store: manifests, configs, compressed layers.
func (s *Store) Content() *content.Store { return s.content }

// Snapshots is the snapshotter that layers and containers are mounted from.
func (s *Store) Snapshots() snapshot.Snapshotter { return s.snapshots }

// Layers is the layer store: unpacked changesets by chain ID.
func (s *Store) Layers() *layer.Store { return s.layers }

// Images is the image store: records, names and configs.
func (s *Store) Images() *image.Store { return s.images }

// Owner is this process's ID as other strata processes see it (see
// Alive): what scratch files name so a later sweep knows if they are dead.
func (s *Store) Owner() string { return s.owner.ID }

// Records is the metadata database limited to the named buckets: how a
// package outside the store (containers, volumes, the build cache) keeps
// its own records beside the store's, in the same file. The store's,
// images', layers', snapshots' and leases' buckets are owned: naming one
// panics (metadata.DB.Own).
func (s *Store) Records(buckets ...string) *metadata.Scope { return s.db.Scope(buckets...) }

// Driver is the storage driver's name.
func (s *Store) Driver() string { return s.snapshots.Name() }

// Shared runs fn while holding the store lock shared: for work that adds
// layers and images. Any number of such holders run at once. Calls nest: a
// pull inside a build shares the build's hold.
func (s *Store) Shared(ctx context.Context, fn func() error) error {
	return s.withLock(ctx, false, fn)
}

// Exclusive runs fn while no other process holds the store lock: for
// removals, which must not race with work that is about to use what they
// remove.
func (s *Store) Exclusive(ctx context.Context, fn func() error) error {
	return s.withLock(ctx, true, fn)
}

// withLock takes the flock once per process and counts nested holders: an
// inner Unlock must not release an outer hold, since flock(2) locks belong
// to the open file, not to the caller.
func (s *Store) withLock(ctx context.Context, exclusive bool, fn func() error) error {
	s.lockMu.Lock()
	if s.lockDepth > 0 {
		if exclusive && !s.lockExclusive {
			s.lockMu.Unlock()
			return fmt.Errorf("lock store: an exclusive hold was asked for inside a shared one")
		}
		s.lockDepth++
		s.lockMu.Unlock()
		defer s.release()
		return fn()
	}
	l, err := s.waitLock(ctx, exclusive)
	if err != nil {
		s.lockMu.Unlock()
		return fmt.Errorf("lock store: %w", err)
	}
	s.lock, s.lockDepth, s.lockExclusive = l, 1, exclusive
	s.lockMu.Unlock()
	defer s.release()
	return fn()
}

func (s *Store) release() {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	s.lockDepth--
	if s.lockDepth == 0 {
		s.lock.Unlock()
		s.lock = nil
	}
}

// waitLock takes the store lock, and says on stderr what it waits for when
// it cannot have it at once: a command never hangs silently.
func (s *Store) waitLock(ctx context.Context, exclusive bool) (*lockfile.Lock, error) {
	mode := lockfile.Shared
	if exclusive {
		mode = lockfile.Exclusive
	}
	l, ok, err := lockfile.TryLock(s.lockPath, mode)
	if ok || err != nil {
		return l, err
	}
	if exclusive {
		fmt.Fprintln(os.Stderr, "Waiting for other strata processes to finish writing to the store...")
	} else {
		fmt.Fprintln(os.Stderr, "Waiting for a removal from the store to finish...")
	}
	return lockfile.Wait(ctx, s.lockPath, mode)
}

// IsNotFound tells whether err means a missing record of any kind.
func IsNotFound(err error) bool { return errdefs.IsNotFound(err) }

// ownersDir holds the lock files of live strata processes (lockfile.Owner).
const ownersDir = "procs"
