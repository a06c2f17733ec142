package lockfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// An Owner is a live process as other processes see it: a random ID and a
// lock file dir/<ID>.lock that the process holds for its whole life. Things
// a process leaves behind while it works (ingest snapshots, build scratch
// directories, leases) carry its owner ID; another process finds them
// abandoned exactly when Alive says no. IDs are never reused, so a dead
// owner's garbage can never look alive again.
type Owner struct {
	ID   string
	lock *Lock
}

const ownerSuffix = ".lock"

// NewOwner registers this process in dir.
func NewOwner(dir string) (*Owner, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("register process: %w", err)
	}
	for {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id := hex.EncodeToString(b[:])
		p := filepath.Join(dir, id+ownerSuffix)
		l, ok, err := TryLock(p, Exclusive)
		if err != nil {
			return nil, fmt.Errorf("register process: %w", err)
		}
		if !ok {
			continue
		}
		// Between create and lock a sweeper could have removed the fresh,
		// unlocked file: the lock must be on the file that has the name.
		held, err1 := l.f.Stat()
		named, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return &Owner{ID: id, lock: l}, nil
		}
		l.Unlock()
	}
}

// Close ends the registration; whatever still carries the ID is abandoned.
func (o *Owner) Close() {
	if o == nil || o.lock == nil {
		return
	}
	p := o.lock.Path()
	// Remove while holding: a sweeper never sees the file unlocked.
	os.Remove(p)
	o.lock.Unlock()
	o.lock = nil
}

// Alive tells whether the owner id registered in dir still lives.
func Alive(dir, id string) bool {
	if id == "" || strings.ContainsAny(id, `/\`) {
		return false
	}
	return Held(filepath.Join(dir, id+ownerSuffix))
}

// SweepOwners removes the lock files of dead owners in dir and returns how
// many went.
func SweepOwners(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ownerSuffix) {
			continue
		}
		if RemoveFree(filepath.Join(dir, e.Name())) {
			n++
		}
	}
	return n, nil
}
