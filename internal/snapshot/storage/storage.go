// Package storage keeps what both snapshot drivers share: the record of each
// snapshot in the store's metadata database and its numbered directory.
//
// Each snapshot has a directory root/<id>, where id is a number drawn from
// the bucket's sequence, and a record key -> {id, parent, kind, created} in
// the driver's bucket. Names of committed snapshots and keys of active ones
// are both keys here; committing renames the record and keeps the directory.
//
// Crash safety comes from ordering. A new directory is filled under a
// temporary name, then renamed to its id inside the transaction that writes
// its record, so a record never points at a half-made directory. Removal
// deletes the record first and the directory after. Whatever a crash leaves
// is a directory without a record, which Cleanup finds by comparing the
// directory listing with the database.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
)

// FsDir is the subdirectory of a snapshot's directory holding its files.
const FsDir = "fs"

// tempPrefix names directories still being filled.
const tempPrefix = "new-"

// Store is the records and directories of one driver.
type Store struct {
	root   string
	bucket string
	db     *metadata.DB
	// tempMade, when set (tests), runs between the making of a temporary
	// directory and its locking: the moment another process's Cleanup can
	// take it for an orphan.
	tempMade func(dir string)
}

// Open returns the store of snapshots under root, recorded in bucket.
func Open(root, bucket string, db *metadata.DB) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	db.Own(bucket)
	return &Store{root: root, bucket: bucket, db: db}, nil
}

// Snapshot is one snapshot's record and where its files are.
type Snapshot struct {
	snapshot.Info
	ID uint64
	// Path is the snapshot's directory, root/<id>.
	Path string
	// Lowers are the fs directories of the committed parent chain,
	// topmost (the parent) first.
	Lowers []string
}

// Fs is the directory of the snapshot's files.
func (s Snapshot) Fs() string { return filepath.Join(s.Path, FsDir) }

type record struct {
	ID      uint64        `json:"id"`
	Parent  string        `json:"parent,omitempty"`
	Kind    snapshot.Kind `json:"kind"`
	Created time.Time     `json:"created"`
}

func (s *Store) path(id uint64) string {
	return filepath.Join(s.root, strconv.FormatUint(id, 10))
}

// Create makes a new active or view snapshot key over the committed parent
// ("" for none). fill is given the new directory, still under a temporary
// name, and the parent (nil for none); it runs outside any transaction, so
// a long copy does not hold the database. The record is written only if key
// is still free and parent still the same snapshot when fill is done.
func (s *Store) Create(ctx context.Context, key, parent string, kind snapshot.Kind, fill func(dir string, parent *Snapshot) error) (Snapshot, error) {
	if key == "" {
		return Snapshot{}, errors.New("create snapshot: empty key")
	}
	if kind != snapshot.KindActive && kind != snapshot.KindView {
		return Snapshot{}, fmt.Errorf("create snapshot %s: cannot create a %s snapshot", key, kind)
	}
	var p *Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil {
			return err
		}
		if b != nil && b.Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %s: %w", key, metadata.ErrExists)
		}
		if parent == "" {
			return nil
		}
		ps, err := s.get(b, parent)
		if err != nil {
			return err
		}
		p = &ps
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	if p != nil && p.Kind != snapshot.KindCommitted {
		return Snapshot{}, fmt.Errorf("create snapshot %s: parent %s is %s, not committed", key, parent, p.Kind)
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
	}

	tmp, unlock, err := s.tempDir()
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	defer unlock()
	keep := false
	defer func() {
		if !keep {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := fill(tmp, p); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
	}

	created := Snapshot{Info: snapshot.Info{Key: key, Parent: parent, Kind: kind, Created: time.Now().UTC()}}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil {
			return err
		}
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %s: %w", key, metadata.ErrExists)
		}
		if p != nil {
			now, err := s.get(b, parent)
			if err != nil {
				return err
			}
			if now.ID != p.ID || now.Kind != snapshot.KindCommitted {
				return fmt.Errorf("parent %s changed while the snapshot was made", parent)
			}
			created.Lowers = append([]string{now.Fs()}, now.Lowers...)
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		rec, err := json.Marshal(record{ID: id, Parent: parent, Kind: kind, Created: created.Created})
		if err != nil {
			return err
		}
		if err := b.Put([]byte(key), rec); err != nil {
			return err
		}
		// Renamed last and inside the transaction: should the commit
		// fail, the directory is renamed back below and removed.
		created.ID, created.Path = id, s.path(id)
		return os.Rename(tmp, created.Path)
	})
	if err != nil {
		if created.Path != "" {
			if _, serr := os.Stat(created.Path); serr == nil {
				_ = os.Rename(created.Path, tmp)
			}
		}
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	keep = true
	return created, nil
}

// tempDir makes a directory to fill and holds an flock on it until unlock,
// so that Cleanup in another process leaves it alone. Between the making
// and the locking such a Cleanup may take the new directory for an orphan
// and remove it (or hold it to remove it): then another is made.
func (s *Store) tempDir() (dir string, unlock func(), err error) {
	for range tempAttempts {
		dir, fd, err := s.lockedTemp()
		if errors.Is(err, errTempTaken) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return dir, func() { unix.Close(fd) }, nil
	}
	return "", nil, fmt.Errorf("make a directory in %s: removed by a cleanup %d times in a row", s.root, tempAttempts)
}

const tempAttempts = 10

// errTempTaken says a cleanup removed or is removing a new directory.
var errTempTaken = errors.New("temporary directory taken by a cleanup")

func (s *Store) lockedTemp() (string, int, error) {
	dir, err := os.MkdirTemp(s.root, tempPrefix)
	if err != nil {
		return "", -1, err
	}
	if s.tempMade != nil {
		s.tempMade(dir)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return "", -1, errTempTaken
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", -1, fmt.Errorf("open %s: %w", dir, err)
	}
	ok, err := lockfile.TryFd(fd, lockfile.Exclusive)
	if err == nil && ok {
		// A cleanup that held it before may have removed it since.
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil && st.Nlink > 0 {
			return dir, fd, nil
		}
	}
	unix.Close(fd)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", -1, fmt.Errorf("lock %s: %w", dir, err)
	}
	return "", -1, errTempTaken
}

// Mountable returns an active or view snapshot; committed snapshots are
// never mounted themselves (a view is made over them).
func (s *Store) Mountable(ctx context.Context, key string) (Snapshot, error) {
	sn, err := s.Get(ctx, key)
	if err != nil {
		return Snapshot{}, err
	}
	if sn.Kind == snapshot.KindCommitted {
		return Snapshot{}, fmt.Errorf("mounts of snapshot %s: committed snapshots are not mounted; make a view", key)
	}
	return sn, nil
}

// Get returns the snapshot key with its parent chain.
func (s *Store) Get(ctx context.Context, key string) (Snapshot, error) {
	var sn Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil {
			return err
		}
		sn, err = s.get(b, key)
		return err
	})
	return sn, err
}

// get reads key and walks its parents. b may be nil (bucket not made yet).
func (s *Store) get(b *bolt.Bucket, key string) (Snapshot, error) {
	rec, err := getRecord(b, key)
	if err != nil {
		return Snapshot{}, err
	}
	sn := Snapshot{
		Info: snapshot.Info{Key: key, Parent: rec.Parent, Kind: rec.Kind, Created: rec.Created},
		ID:   rec.ID, Path: s.path(rec.ID),
	}
	for p := rec.Parent; p != ""; {
		prec, err := getRecord(b, p)
		if err != nil {
			return Snapshot{}, fmt.Errorf("parent chain of %s: %w", key, err)
		}
		sn.Lowers = append(sn.Lowers, filepath.Join(s.path(prec.ID), FsDir))
		p = prec.Parent
	}
	return sn, nil
}

func getRecord(b *bolt.Bucket, key string) (record, error) {
	var v []byte
	if b != nil {
		v = b.Get([]byte(key))
	}
	if v == nil {
		return record{}, fmt.Errorf("snapshot %s: %w", key, metadata.ErrNotFound)
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		return record{}, fmt.Errorf("snapshot %s: decode record: %w", key, err)
	}
	return rec, nil
}

// Stat describes snapshot key.
func (s *Store) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	sn, err := s.Get(ctx, key)
	return sn.Info, err
}

// Dir is the directory of snapshot key's own files.
func (s *Store) Dir(ctx context.Context, key string) (string, error) {
	sn, err := s.Get(ctx, key)
	if err != nil {
		return "", err
	}
	return sn.Fs(), nil
}

// Commit turns active snapshot key into committed snapshot name, keeping
// its directory. A taken name yields an error wrapping metadata.ErrExists
// and leaves key as it was.
func (s *Store) Commit(ctx context.Context, name, key string) error {
	return s.commit(name, key, nil)
}

// CommitOnto is Commit for a driver whose directories hold only their own
// layer's changes (overlay): key, made on no parent, becomes committed
// snapshot name on the committed parent, as if it had been prepared there.
// It is a function, not a method, so that a driver embedding Store offers
// it only by choice.
func CommitOnto(s *Store, name, key, parent string) error {
	return s.commit(name, key, &parent)
}

func (s *Store) commit(name, key string, parent *string) error {
	if name == "" {
		return fmt.Errorf("commit snapshot %s: empty name", key)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil {
			return err
		}
		rec, err := getRecord(b, key)
		if err != nil {
			return err
		}
		if rec.Kind != snapshot.KindActive {
			return fmt.Errorf("snapshot %s is %s, not active", key, rec.Kind)
		}
		if name != key && b.Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %s: %w", name, metadata.ErrExists)
		}
		if parent != nil && *parent != "" {
			if rec.Parent != "" {
				return fmt.Errorf("snapshot %s was made on %s, not on nothing", key, rec.Parent)
			}
			prec, err := getRecord(b, *parent)
			if err != nil {
				return fmt.Errorf("parent: %w", err)
			}
			if prec.Kind != snapshot.KindCommitted {
				return fmt.Errorf("parent %s is %s, not committed", *parent, prec.Kind)
			}
			rec.Parent = *parent
		}
		rec.Kind = snapshot.KindCommitted
		rec.Created = time.Now().UTC()
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return fmt.Errorf("commit snapshot %s as %s: %w", key, name, err)
	}
	return nil
}

// Remove deletes snapshot key's record, then its directory. A snapshot
// other snapshots stand on is refused with an error wrapping
// snapshot.ErrInUse.
func (s *Store) Remove(ctx context.Context, key string) error {
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil {
			return err
		}
		rec, err := getRecord(b, key)
		if err != nil {
			return err
		}
		var children []string
		err = b.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %s: decode record: %w", k, err)
			}
			if r.Parent == key {
				children = append(children, string(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(children) > 0 {
			return fmt.Errorf("%w: parent of %s", snapshot.ErrInUse, strings.Join(children, ", "))
		}
		id = rec.ID
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	// The record is gone, so a failure here only leaves an orphan for
	// Cleanup.
	if err := os.RemoveAll(s.path(id)); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return nil
}

// Walk calls fn for every snapshot, in key order. fn runs after the
// database is closed again, so it may call back into the store.
func (s *Store) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	var infos []snapshot.Info
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %s: decode record: %w", k, err)
			}
			infos = append(infos, snapshot.Info{Key: string(k), Parent: r.Parent, Kind: r.Kind, Created: r.Created})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Usage measures snapshot key's own files.
func (s *Store) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	sn, err := s.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	u, err := Usage(sn.Fs())
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage of snapshot %s: %w", key, err)
	}
	return u, nil
}

// Cleanup removes directories no record points to: those of snapshots whose
// creation or removal was interrupted. Directories another process is still
// filling are locked and left alone.
func (s *Store) Cleanup(ctx context.Context) error {
	// The listing is taken before the database is read: a directory renamed
	// to its id after the listing is not in it, and one renamed before is
	// recorded by the time the read transaction gets the file.
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("cleanup snapshots: %w", err)
	}
	ids := map[uint64]bool{}
	err = s.db.View(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, s.bucket)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %s: decode record: %w", k, err)
			}
			ids[r.ID] = true
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("cleanup snapshots: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !isOrphan(e.Name(), ids) {
			continue
		}
		if err := removeUnlocked(filepath.Join(s.root, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup snapshots: %w", err)
	}
	return nil
}

// isOrphan says whether a directory name under the root is an unrecorded
// snapshot directory. Other names (a driver's own files) are not touched.
func isOrphan(name string, ids map[uint64]bool) bool {
	if strings.HasPrefix(name, tempPrefix) {
		return true
	}
	id, err := strconv.ParseUint(name, 10, 64)
	return err == nil && strconv.FormatUint(id, 10) == name && !ids[id]
}

func removeUnlocked(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	switch ok, err := lockfile.TryFd(fd, lockfile.Exclusive); {
	case err != nil:
		return fmt.Errorf("lock %s: %w", dir, err)
	case !ok:
		return nil // its maker is alive
	}
	return os.RemoveAll(dir)
}

// Usage counts the regular file bytes and the inodes under dir, each inode
// once however many links it has.
func Usage(dir string) (snapshot.Usage, error) {
	var u snapshot.Usage
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		k := inode{uint64(st.Dev), st.Ino}
		if seen[k] {
			return nil
		}
		seen[k] = true
		u.Inodes++
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			u.Size += st.Size
		}
		return nil
	})
	return u, err
}
