package store

import (
	"context"
	"encoding/json"
	"fmt"
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
// Layers need no lease entry: a layer record carries the owner ID of the
// process that made it (or last found it while committing), and the
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
}

var leaseSeq atomic.Int64

// NewLease starts a lease for what ("build", "pull", ...).
func (s *Store) NewLease(ctx context.Context, what string) (*Lease, error) {
	l := &Lease{s: s, what: what, key: s.Owner.ID + "/" + strconv.FormatInt(leaseSeq.Add(1), 10)}
	rec := leaseRecord{What: what, Created: time.Now().UTC()}
	if err := l.put(rec); err != nil {
		return nil, err
	}
	return l, nil
}

// Hold adds image ref to the lease and returns its ID. It fails with the
// image store's not-found error when the image is gone.
func (l *Lease) Hold(ctx context.Context, id digest.Digest) error {
	return l.s.Shared(ctx, func() error {
		if _, err := l.s.Images.Get(ctx, id.String()); err != nil {
			return err
		}
		return l.s.DB.Update(func(tx *bolt.Tx) error {
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
			for _, have := range rec.Images {
				if have == id {
					return nil
				}
			}
			rec.Images = append(rec.Images, id)
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			return b.Put([]byte(l.key), v)
		})
	})
}

// Release ends the lease. Safe on nil.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	_ = l.s.DB.Update(func(tx *bolt.Tx) error {
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
	err = l.s.DB.Update(func(tx *bolt.Tx) error {
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

// liveLeases returns the live leases' images (by ID: what holds them) and
// the keys of dead leases.
func (s *Store) liveLeases() (held map[digest.Digest]string, dead []string, err error) {
	held = map[digest.Digest]string{}
	err = s.DB.View(func(tx *bolt.Tx) error {
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
				held[id] = "a running " + rec.What
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
	err = s.DB.Update(func(tx *bolt.Tx) error {
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
