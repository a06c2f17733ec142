package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/store"
)

// loadConfig reads image id's config.
func loadConfig(ctx context.Context, s *store.Store, id digest.Digest) (image.Config, error) {
	b, err := s.Content.ReadAll(ctx, id)
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
	return b.s.Images.Create(ctx, cfg, image.CreateOptions{Parent: parent, Size: size})
}

// cacheGet returns the image a step key made, if it is still there.
func (b *builder) cacheGet(ctx context.Context, key digest.Digest) (image.Image, bool) {
	var e cacheEntry
	err := b.s.DB.View(func(tx *bolt.Tx) error {
		bk, _ := metadata.Bucket(tx, cacheBucket)
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
	img, err := b.s.Images.Get(ctx, e.Image.String())
	if err != nil {
		return image.Image{}, false // removed since: a miss
	}
	return img, true
}

func (b *builder) cachePut(key, id digest.Digest) error {
	v, err := json.Marshal(cacheEntry{Image: id})
	if err != nil {
		return err
	}
	return b.s.DB.Update(func(tx *bolt.Tx) error {
		bk, err := metadata.Bucket(tx, cacheBucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(key), v)
	})
}

// PruneResult is what PruneCache removed.
type PruneResult struct {
	Entries int             // cache records
	Images  []digest.Digest // untagged step images nothing else was built on
	Layers  []digest.Digest // layers no image uses any more
	// CacheMounts is how many RUN --mount=type=cache directories went.
	CacheMounts int
}

// PruneCache forgets every cached step, removes the step images that have
// no name and no child image, collects the layers left unused, and
// empties the RUN --mount=type=cache directories (no build runs meanwhile:
// the store is held exclusively).
func PruneCache(ctx context.Context, s *store.Store) (PruneResult, error) {
	var res PruneResult
	err := s.Exclusive(ctx, func() error {
		cached := map[digest.Digest]bool{}
		err := s.DB.Update(func(tx *bolt.Tx) error {
			bk, _ := metadata.Bucket(tx, cacheBucket)
			if bk == nil {
				return nil
			}
			err := bk.ForEach(func(_, v []byte) error {
				var e cacheEntry
				if json.Unmarshal(v, &e) == nil {
					cached[e.Image] = true
				}
				res.Entries++
				return nil
			})
			if err != nil {
				return err
			}
			if err := forgetGoneDockerfiles(tx); err != nil {
				return err
			}
			return tx.DeleteBucket([]byte(cacheBucket))
		})
		if err != nil {
			return fmt.Errorf("clear build cache: %w", err)
		}
		// Remove leaves first, until only images with names or children stay.
		for {
			imgs, err := s.Images.List(ctx)
			if err != nil {
				return err
			}
			hasChild := map[digest.Digest]bool{}
			for _, img := range imgs {
				hasChild[img.Parent] = true
			}
			removed := 0
			for _, img := range imgs {
				if !cached[img.ID] || len(img.Names) > 0 || hasChild[img.ID] {
					continue
				}
				if err := s.Images.Delete(ctx, img.ID); err != nil && !errors.Is(err, metadata.ErrNotFound) {
					return err
				}
				res.Images = append(res.Images, img.ID)
				removed++
			}
			if removed == 0 {
				break
			}
		}
		if res.Layers, err = s.CollectLayers(ctx); err != nil {
			return err
		}
		dir := filepath.Join(s.Root, CacheMountsDir)
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				res.CacheMounts++
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove cache mounts: %w", err)
		}
		return nil
	})
	return res, err
}
