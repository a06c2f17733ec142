package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot/storage"
	"github.com/strata-project/strata/internal/store"
)

// loadConfig reads image id's config.
func loadConfig(ctx context.Context, s Store, id digest.Digest) (image.Config, error) {
	b, err := s.Content().ReadAll(ctx, id)
	if err != nil {
		return image.Config{}, fmt.Errorf("image %s config: %w", shortID(id), err)
	}
	return image.ParseConfig(b)
}

// Buckets of the metadata file owned by this package.
const (
	cacheBucket = "buildcache" // step key -> cacheEntry
)

type cacheEntry struct {
	Image digest.Digest `json:"image"`
}

// putImage stores cfg as an image built on parent and returns its ID.
// Storing an existing image changes nothing.
func (b *builder) putImage(ctx context.Context, cfg image.Config, parent digest.Digest, size int64) (digest.Digest, error) {
	var id digest.Digest
	// Made and leased in one shared hold, so no prune sees it unleased.
	err := b.s.Shared(ctx, func() error {
		var err error
		if id, err = b.s.Images().Create(ctx, cfg, image.CreateOptions{Parent: parent, Size: size}); err != nil {
			return err
		}
		return b.hold(ctx, id)
	})
	return id, err
}

// cacheGet returns the image a step key made, if it is still there.
func (b *builder) cacheGet(ctx context.Context, key digest.Digest) (image.Image, bool) {
	var e cacheEntry
	err := records(b.s).View(func(tx *metadata.Tx) error {
		bk := tx.Bucket(cacheBucket)
		if bk == nil {
			return metadata.ErrNotFound
		}
		v := bk.Get([]byte(key))
		if v == nil {
			return metadata.ErrNotFound
		}
		return json.Unmarshal(v, &e)
	})
	if err != nil {
		return image.Image{}, false
	}
	img, err := b.s.Images().Get(ctx, e.Image.String())
	if err != nil || b.hold(ctx, img.ID) != nil {
		return image.Image{}, false // removed since: a miss
	}
	return img, true
}

func (b *builder) cachePut(key, id digest.Digest) error {
	return b.cachePutWith(id, nil, key)
}

// cachePutWith records image id under each of keys and, in the same
// transaction (one pair of disk flushes instead of two), what also
// writes; an error of also's is not the cache's (also writes what only
// explanations read).
func (b *builder) cachePutWith(id digest.Digest, also func(*metadata.Tx) error, keys ...digest.Digest) error {
	v, err := json.Marshal(cacheEntry{Image: id})
	if err != nil {
		return err
	}
	return records(b.s).Update(func(tx *metadata.Tx) error {
		bk, err := tx.CreateBucket(cacheBucket)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := bk.Put([]byte(k), v); err != nil {
				return err
			}
		}
		if also != nil {
			_ = also(tx)
		}
		return nil
	})
}

// PruneResult is what PruneCache removed.
type PruneResult struct {
	Entries int             // cache records
	Images  []digest.Digest // untagged step images nothing else was built on
	Layers  []digest.Digest // layers no image uses any more
	// CacheMounts is how many RUN --mount=type=cache directories went.
	CacheMounts int
	Reclaimed   int64 // bytes of layer content removed
}

// CacheItem is one build cache record as `system df` and prune see it.
type CacheItem struct {
	Key     string
	Image   digest.Digest // the step image
	Created time.Time     // when the step image was made
	Size    int64         // bytes the step added to its parent
	Named   bool          // the step image has a name (a build's result)
}

// CacheMountsSize is the bytes the RUN --mount=type=cache directories
// hold (0 when there are none).
func CacheMountsSize(s Store) int64 {
	u, _ := storage.Usage(filepath.Join(s.Root(), CacheMountsDir))
	return u.Size
}

// CacheItems lists the build cache; records whose image is gone have a
// zero Created.
func CacheItems(ctx context.Context, s Store) ([]CacheItem, error) {
	var items []CacheItem
	err := records(s).View(func(tx *metadata.Tx) error {
		bk := tx.Bucket(cacheBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var e cacheEntry
			if json.Unmarshal(v, &e) == nil {
				items = append(items, CacheItem{Key: string(k), Image: e.Image})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read build cache: %w", err)
	}
	for i, e := range items {
		img, err := s.Images().Get(ctx, e.Image.String())
		if err != nil {
			continue // its image is gone: the record is garbage
		}
		items[i].Created, items[i].Size, items[i].Named = img.Added, img.Size, len(img.Names) > 0
		if img.Parent != "" {
			if p, err := s.Images().Get(ctx, img.Parent.String()); err == nil {
				items[i].Size -= p.Size
			}
		}
	}
	return items, nil
}

// PruneOptions narrow builder prune, as docker's flags do.
type PruneOptions struct {
	// Until keeps cache made at or after it (--filter until=).
	Until time.Time
	// KeepStorage keeps the newest cache up to this many bytes
	// (--keep-storage); 0 keeps none.
	KeepStorage int64
}

// PruneCache forgets cached steps (all of them, or those o selects),
// hands their step images that have no name to the store's deletion owner
// (which keeps those a container, mount, running build or child image
// needs), and empties the RUN --mount=type=cache directories no running
// build holds.
func PruneCache(ctx context.Context, s Store, o PruneOptions) (PruneResult, error) {
	var res PruneResult
	entries, err := CacheItems(ctx, s)
	if err != nil {
		return res, err
	}
	// Oldest first, so that --keep-storage keeps the newest.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Created.Before(entries[j].Created) })
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	drop := map[string]bool{}
	cached := map[digest.Digest]bool{}
	for _, e := range entries {
		if !o.Until.IsZero() && !e.Created.IsZero() && !e.Created.Before(o.Until) {
			continue
		}
		if o.KeepStorage > 0 && total <= o.KeepStorage {
			break
		}
		drop[e.Key], cached[e.Image] = true, true
		total -= e.Size
	}
	err = records(s).Update(func(tx *metadata.Tx) error {
		bk := tx.Bucket(cacheBucket)
		if bk == nil {
			return nil
		}
		for k := range drop {
			if err := bk.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return forgetGoneDockerfiles(tx)
	})
	if err != nil {
		return res, fmt.Errorf("clear build cache: %w", err)
	}
	res.Entries = len(drop)
	rep, err := s.Prune(ctx, store.PruneOptions{Images: func(img image.Image) bool { return cached[img.ID] }})
	res.Images, res.Layers, res.Reclaimed = rep.Deleted, rep.Layers, rep.Reclaimed
	if err != nil {
		return res, err
	}
	if err := forgetCopiedOfGoneLayers(ctx, s); err != nil {
		return res, fmt.Errorf("clear build cache: %w", err)
	}
	if o.KeepStorage > 0 || !o.Until.IsZero() {
		return res, nil // cache mounts have no age or size to select by
	}
	n, err := pruneCacheMounts(filepath.Join(s.Root(), CacheMountsDir))
	res.CacheMounts = n
	if err != nil {
		return res, err
	}
	// The context digests are a cache of the build's too; a build running
	// meanwhile rewrites its own at the end.
	if err := os.RemoveAll(filepath.Join(s.Root(), hashCacheDir)); err != nil {
		return res, fmt.Errorf("clear context digests: %w", err)
	}
	return res, nil
}

// pruneCacheMounts removes the cache mount directories whose lock it can
// take: a running build holds the lock of each cache it mounts.
func pruneCacheMounts(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		l, ok, err := lockfile.TryLock(p+".lock", lockfile.Exclusive)
		if err != nil {
			return n, err
		}
		if !ok {
			continue
		}
		err = os.RemoveAll(p)
		if err == nil {
			err = os.Remove(p + ".lock")
		}
		l.Unlock()
		if err != nil {
			return n, fmt.Errorf("remove cache mount: %w", err)
		}
		n++
	}
	// Locks of caches that were never made (or are gone), then the
	// directory itself once empty.
	locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	for _, p := range locks {
		lockfile.RemoveFree(p)
	}
	os.Remove(dir)
	return n, nil
}

// records is where the builder keeps its cache and step records.
func records(s Store) *metadata.Scope { return s.Records(cacheBucket, stepsBucket) }
