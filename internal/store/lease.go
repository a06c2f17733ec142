package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-project/strata/internal/metadata"
)

// A lease is an operation in progress (build, pull, import, load, commit)
// telling the deletion owner which images it is about to reference. It is a
// record in the leases bucket keyed <owner ID>/<n>: it holds only while its
// process's owner lock is held, so a killed operation's lease is dead the
// moment the kernel drops that lock, and the next reconcile deletes it.
//
// Images join a lease under the shared store lock, in the transaction that
// checks they still exist; a removal decides under the exclusive lock. So
// a removal either runs first (the operation then sees "No such image") or
// sees the lease and keeps the image.
//
// Layers an operation will stack on or name without an image that holds
// them yet (a pull's or load's layers already in the store) join with
// HoldLayers, under the shared lock too, before the operation looks for
// them. Layers it makes need no entry: a layer record carries the owner ID
// of the process that made it (or last found it while committing), and the
// deletion owner keeps layers of live owners. That covers the window
// between a layer's commit and the image that will name it.
type Lease struct {
	s    *Store
	key  string
	what string
}

const leasesBucket = "leases"

type leaseRecord struct {
	What    string          `json:"what"`
	Created time.Time       `json:"created"`
	Images  []digest.Digest `json:"images,omitempty"`
	Layers  []digest.Digest `json:"layers,omitempty"` // chainIDs
}

var leaseSeq atomic.Int64

// NewLease starts a lease for what ("build", "pull", ...).
func (s *Store) NewLease(ctx context.Context, what string) (*Lease, error) {
	l := &Lease{s: s, what: what, key: s.owner.ID + "/" + strconv.FormatInt(leaseSeq.Add(1), 10)}
	rec := leaseRecord{What: what, Created: time.Now().UTC()}
	if err := l.put(rec); err != nil {
		return nil, err
	}
	return l, nil
}

// Hold adds image id to the lease. It fails with the image store's
// not-found error when the image is gone.
func (l *Lease) Hold(ctx context.Context, id digest.Digest) error {
	return l.s.Shared(ctx, func() error {
		if _, err := l.s.images.Get(ctx, id.String()); err != nil {
			return err
		}
		return l.update(func(rec *leaseRecord) {
			if !slices.Contains(rec.Images, id) {
				rec.Images = append(rec.Images, id)
			}
		})
	})
}

// HoldLayers adds the stacks chainIDs to the lease, whether they exist
// yet or not. Once it returns, a layer found in the store among them stays
// until Release: call it before looking for them.
func (l *Lease) HoldLayers(ctx context.Context, chainIDs []digest.Digest) error {
	return l.s.Shared(ctx, func() error {
		return l.update(func(rec *leaseRecord) {
			for _, c := range chainIDs {
				if !slices.Contains(rec.Layers, c) {
					rec.Layers = append(rec.Layers, c)
				}
			}
		})
	})
}

// update changes the lease's record in one transaction.
func (l *Lease) update(change func(*leaseRecord)) error {
	return l.s.db.Update(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, leasesBucket)
		if err != nil {
			return err
		}
		var rec leaseRecord
		if v := b.Get([]byte(l.key)); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
		}
		change(&rec)
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte(l.key), v)
	})
}

// Release ends the lease. Safe on nil.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	_ = l.s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(leasesBucket)); b != nil {
			return b.Delete([]byte(l.key))
		}
		return nil
	})
}

func (l *Lease) put(rec leaseRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = l.s.db.Update(func(tx *bolt.Tx) error {
		b, err := metadata.Bucket(tx, leasesBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(l.key), v)
	})
	if err != nil {
		return fmt.Errorf("record %s lease: %w", l.what, err)
	}
	return nil
}

// leased is what the live leases hold.
type leased struct {
	images map[digest.Digest]string // image ID: what holds it
	layers map[digest.Digest]bool   // chainIDs
}

// liveLeases returns what the live leases hold and the keys of dead leases.
func (s *Store) liveLeases() (held leased, dead []string, err error) {
	held = leased{images: map[digest.Digest]string{}, layers: map[digest.Digest]bool{}}
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leasesBucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			owner, _, _ := strings.Cut(string(k), "/")
			if !s.Alive(owner) {
				dead = append(dead, string(k))
				return nil
			}
			var rec leaseRecord
			if json.Unmarshal(v, &rec) != nil {
				return nil
			}
			for _, id := range rec.Images {
				held.images[id] = "a running " + rec.What
			}
			for _, c := range rec.Layers {
				held.layers[c] = true
			}
			return nil
		})
	})
	return held, dead, err
}

// releaseDeadLeases deletes the leases whose process died.
func (s *Store) releaseDeadLeases() (int, error) {
	_, dead, err := s.liveLeases()
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leasesBucket))
		if b == nil {
			return nil
		}
		for _, k := range dead {
			owner, _, _ := strings.Cut(k, "/")
			if s.Alive(owner) {
				continue
			}
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	return len(dead), err
}
