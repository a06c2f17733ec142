package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-project/strata/internal/content"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/metadata"
)

// Buckets of the metadata file owned by this package.
const (
	imagesBucket = "images" // image ID -> record
	namesBucket  = "names"  // normalized reference -> image ID
)

// record is what the store keeps about an image beyond its config blob.
type record struct {
	Added    time.Time     `json:"added"`
	Parent   digest.Digest `json:"parent,omitempty"`   // the image this one was built or committed on
	Manifest digest.Digest `json:"manifest,omitempty"` // set when the image came from or went to a registry
	Size     int64         `json:"size"`               // bytes of the layers' content
}

// Image is one stored image.
type Image struct {
	ID       digest.Digest
	Config   Config
	Names    []string // normalized references pointing at it, sorted
	Added    time.Time
	Parent   digest.Digest
	Manifest digest.Digest
	Size     int64
}

// RepoTags are the tag references in docker's familiar form.
func (img Image) RepoTags() []string {
	out := []string{}
	for _, n := range img.Names {
		if _, _, d := SplitFamiliar(n); d == "" {
			out = append(out, Familiar(n))
		}
	}
	return out
}

// RepoDigests are the digest references in docker's familiar form.
func (img Image) RepoDigests() []string {
	out := []string{}
	for _, n := range img.Names {
		if _, _, d := SplitFamiliar(n); d != "" {
			out = append(out, Familiar(n))
		}
	}
	return out
}

// Store records images (config blobs in the content store, the rest in the
// metadata file). It does not own layers: callers make sure the layers an
// image names exist before Create, and the store package collects the layers
// no image uses.
type Store struct {
	db      *metadata.DB
	content *content.Store
}

// NewStore returns the image store over db and the blobs in cs.
func NewStore(db *metadata.DB, cs *content.Store) *Store {
	db.Own(imagesBucket, namesBucket)
	return &Store{db: db, content: cs}
}

// CreateOptions are the store-side facts about a new image.
type CreateOptions struct {
	Parent   digest.Digest
	Manifest digest.Digest
	Size     int64
	Names    []reference.Named // tags to point at it (moved from any other image)
}

// Create stores config and records the image; creating an image that exists
// only adds the names. It returns the image ID.
func (s *Store) Create(ctx context.Context, cfg Config, opts CreateOptions) (digest.Digest, error) {
	b, _, err := MarshalConfig(cfg)
	if err != nil {
		return "", err
	}
	return s.CreateRaw(ctx, b, opts)
}

// CreateRaw is Create for config bytes made elsewhere (a pulled config):
// they are kept byte for byte, so the image ID is their digest.
func (s *Store) CreateRaw(ctx context.Context, config []byte, opts CreateOptions) (digest.Digest, error) {
	if _, err := ParseConfig(config); err != nil {
		return "", err
	}
	id := digest.FromBytes(config)
	if _, err := s.content.PutBytes(ctx, config); err != nil {
		return "", fmt.Errorf("store config %s: %w", id, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ib, err := metadata.Bucket(tx, imagesBucket)
		if err != nil {
			return err
		}
		if ib.Get([]byte(id)) == nil {
			rec, err := json.Marshal(record{Added: time.Now().UTC(), Parent: opts.Parent, Manifest: opts.Manifest, Size: opts.Size})
			if err != nil {
				return err
			}
			if err := ib.Put([]byte(id), rec); err != nil {
				return err
			}
		}
		nb, err := metadata.Bucket(tx, namesBucket)
		if err != nil {
			return err
		}
		for _, n := range opts.Names {
			if err := nb.Put([]byte(n.String()), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("record image %s: %w", id, err)
	}
	return id, nil
}

// Resolve finds the image ID that ref names: a reference (name[:tag] or
// name@digest), a full ID, or a unique ID prefix, in docker's order.
func (s *Store) Resolve(ctx context.Context, ref string) (digest.Digest, error) {
	var id digest.Digest
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		id, err = resolve(tx, ref)
		return err
	})
	return id, err
}

func resolve(tx *bolt.Tx, ref string) (digest.Digest, error) {
	ib, _ := metadata.Bucket(tx, imagesBucket)
	nb, _ := metadata.Bucket(tx, namesBucket)
	if ib == nil || nb == nil {
		return "", errdefs.NotFound("image", ref)
	}
	if d, err := digest.Parse(ref); err == nil {
		if ib.Get([]byte(d)) != nil {
			return d, nil
		}
		return "", errdefs.NotFound("image", ref)
	}
	if n, err := ParseNamed(ref); err == nil {
		if v := nb.Get([]byte(n.String())); v != nil {
			return digest.Digest(v), nil
		}
	}
	if prefix, ok := looksLikeID(ref); ok {
		var found []digest.Digest
		c := ib.Cursor()
		seek := []byte("sha256:" + prefix)
		for k, _ := c.Seek(seek); k != nil && strings.HasPrefix(string(k), string(seek)); k, _ = c.Next() {
			found = append(found, digest.Digest(k))
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
		default:
			return "", fmt.Errorf("%s: ambiguous image ID prefix (%d images match)", ref, len(found))
		}
	}
	return "", errdefs.NotFound("image", ref)
}

// Get resolves ref and loads the image.
func (s *Store) Get(ctx context.Context, ref string) (Image, error) {
	var img Image
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		img, err = load(tx, id)
		return err
	})
	if err != nil {
		return Image{}, err
	}
	return img, s.fillConfig(ctx, &img)
}

// List returns every image, newest first.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	imgs, _, err := s.Records(ctx)
	if err != nil {
		return nil, err
	}
	for i := range imgs {
		if err := s.fillConfig(ctx, &imgs[i]); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(imgs, func(i, j int) bool { return imgs[i].created().After(imgs[j].created()) })
	return imgs, nil
}

// created is the image's creation time as docker shows it: the config's
// created field, or when it entered the store.
func (img Image) created() time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return img.Added
}

// Created is the time docker shows in the CREATED column.
func (img Image) Created() time.Time { return img.created() }

func load(tx *bolt.Tx, id digest.Digest) (Image, error) {
	ib, _ := metadata.Bucket(tx, imagesBucket)
	if ib == nil {
		return Image{}, errdefs.NotFound("image", id.String())
	}
	v := ib.Get([]byte(id))
	if v == nil {
		return Image{}, errdefs.NotFound("image", id.String())
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		return Image{}, fmt.Errorf("image record %s: %w", id, err)
	}
	img := Image{ID: id, Added: rec.Added, Parent: rec.Parent, Manifest: rec.Manifest, Size: rec.Size, Names: []string{}}
	if nb, _ := metadata.Bucket(tx, namesBucket); nb != nil {
		err := nb.ForEach(func(k, v []byte) error {
			if string(v) == string(id) {
				img.Names = append(img.Names, string(k))
			}
			return nil
		})
		if err != nil {
			return Image{}, err
		}
	}
	sort.Strings(img.Names)
	return img, nil
}

func (s *Store) fillConfig(ctx context.Context, img *Image) error {
	b, err := s.content.ReadAll(ctx, img.ID)
	if err != nil {
		return fmt.Errorf("image %s config: %w", ShortID(img.ID), err)
	}
	img.Config, err = ParseConfig(b)
	return err
}

// Tag points name at image id, moving it from any image it named before.
func (s *Store) Tag(ctx context.Context, id digest.Digest, name reference.Named) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := load(tx, id); err != nil {
			return err
		}
		nb, err := metadata.Bucket(tx, namesBucket)
		if err != nil {
			return err
		}
		return nb.Put([]byte(name.String()), []byte(id))
	})
}

// Untag removes name and returns the image it pointed at.
func (s *Store) Untag(ctx context.Context, name reference.Named) (digest.Digest, error) {
	var id digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		nb, err := metadata.Bucket(tx, namesBucket)
		if err != nil {
			return err
		}
		v := nb.Get([]byte(name.String()))
		if v == nil {
			return errdefs.NotFound("image", reference.FamiliarString(name))
		}
		id = digest.Digest(v)
		return nb.Delete([]byte(name.String()))
	})
	return id, err
}

// Delete removes image id, its names and its config blob. Layers stay until
// the store collects them.
func (s *Store) Delete(ctx context.Context, id digest.Digest) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ib, err := metadata.Bucket(tx, imagesBucket)
		if err != nil {
			return err
		}
		if ib.Get([]byte(id)) == nil {
			return errdefs.NotFound("image", id.String())
		}
		if err := ib.Delete([]byte(id)); err != nil {
			return err
		}
		nb, err := metadata.Bucket(tx, namesBucket)
		if err != nil {
			return err
		}
		var drop [][]byte
		nb.ForEach(func(k, v []byte) error {
			if string(v) == string(id) {
				drop = append(drop, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range drop {
			if err := nb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.content.Delete(ctx, id); err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return fmt.Errorf("delete config %s: %w", id, err)
	}
	return nil
}

// Children lists the images recorded as built on id.
func (s *Store) Children(ctx context.Context, id digest.Digest) ([]digest.Digest, error) {
	var out []digest.Digest
	err := s.db.View(func(tx *bolt.Tx) error {
		ib, _ := metadata.Bucket(tx, imagesBucket)
		if ib == nil {
			return nil
		}
		return ib.ForEach(func(k, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			if rec.Parent == id {
				out = append(out, digest.Digest(k))
			}
			return nil
		})
	})
	return out, err
}

// SetManifest records the registry manifest digest of an image.
func (s *Store) SetManifest(ctx context.Context, id, manifest digest.Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		ib, err := metadata.Bucket(tx, imagesBucket)
		if err != nil {
			return err
		}
		v := ib.Get([]byte(id))
		if v == nil {
			return errdefs.NotFound("image", id.String())
		}
		var rec record
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		rec.Manifest = manifest
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return ib.Put([]byte(id), b)
	})
}

// Records lists every image record without reading config blobs (a check
// must see images whose config is missing), and the names that point at
// no image.
func (s *Store) Records(ctx context.Context) (imgs []Image, danglingNames []string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		ib, _ := metadata.Bucket(tx, imagesBucket)
		if ib != nil {
			err := ib.ForEach(func(k, _ []byte) error {
				img, err := load(tx, digest.Digest(k))
				if err != nil {
					return err
				}
				imgs = append(imgs, img)
				return nil
			})
			if err != nil {
				return err
			}
		}
		nb, _ := metadata.Bucket(tx, namesBucket)
		if nb == nil {
			return nil
		}
		return nb.ForEach(func(k, v []byte) error {
			if ib == nil || ib.Get(v) == nil {
				danglingNames = append(danglingNames, string(k))
			}
			return nil
		})
	})
	return imgs, danglingNames, err
}

// DeleteName removes a name whatever it points at (a repair of a name
// whose image is gone).
func (s *Store) DeleteName(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		nb, err := metadata.Bucket(tx, namesBucket)
		if err != nil {
			return err
		}
		return nb.Delete([]byte(name))
	})
}

// ReadConfig returns image id's parsed config.
func (s *Store) ReadConfig(ctx context.Context, id digest.Digest) (Config, error) {
	img := Image{ID: id}
	err := s.fillConfig(ctx, &img)
	return img.Config, err
}

// WithoutIntermediates drops the intermediate images (untagged, with
// images built on them: a classic build's steps), as `images` without -a,
// `system df` and `image tree` list them.
func WithoutIntermediates(imgs []Image) []Image {
	hasChild := map[digest.Digest]bool{}
	for _, img := range imgs {
		hasChild[img.Parent] = true
	}
	var out []Image
	for _, img := range imgs {
		if len(img.Names) > 0 || !hasChild[img.ID] {
			out = append(out, img)
		}
	}
	return out
}
