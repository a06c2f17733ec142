package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/content"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
)

// The store is the one owner of deletion: rmi, every prune and the sweep
// decide what may go here, against one set of GC roots:
//
//   - names: a tagged image stays unless the caller removes the name;
//   - images a container was created from (RootSources, set by the CLI);
//   - images mounted with `strata mount`;
//   - images held by the live lease of an operation in progress;
//   - child images: an image something else is built on stays;
//   - layers: every layer of a kept image, layers a live lease holds, and
//     layers whose maker lives.
//
// Build cache entries are not roots of their own: a cache entry names a
// step image, which is an image like any other (builder prune makes the
// step images candidates).

// RootKind says why an image is kept.
type RootKind int

const (
	RootContainer RootKind = iota + 1
	RootMounted
	RootLease
)

// Root is one reason an image must stay.
type Root struct {
	Kind RootKind
	What string // the container's name, or the operation holding a lease
}

// RootSource reports the images something outside the store keeps: the
// container package reports the images of its containers.
type RootSource func(ctx context.Context) (map[digest.Digest]Root, error)

// AddRoots registers a source of GC roots for this store.
func (s *Store) AddRoots(src RootSource) { s.rootSources = append(s.rootSources, src) }

// roots is every image that must stay whatever a removal asks, with why.
func (s *Store) roots(ctx context.Context) (map[digest.Digest]Root, error) {
	out := map[digest.Digest]Root{}
	for _, src := range s.rootSources {
		m, err := src(ctx)
		if err != nil {
			return nil, err
		}
		for id, r := range m {
			out[id] = r
		}
	}
	mounted, err := s.MountedImages(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range mounted {
		out[id] = Root{Kind: RootMounted}
	}
	leased, _, err := s.liveLeases()
	if err != nil {
		return nil, err
	}
	for id, what := range leased.images {
		if _, ok := out[id]; !ok {
			out[id] = Root{Kind: RootLease, What: what}
		}
	}
	return out, nil
}

// PruneOptions choose what a prune may remove.
type PruneOptions struct {
	// Images selects candidate images; nil selects none (layers only).
	Images func(image.Image) bool
	// Untag lets a candidate with names lose them (image prune -a);
	// otherwise a name keeps an image.
	Untag bool
}

// PruneReport is what a prune removed, in docker's words.
type PruneReport struct {
	Untagged  []string        // familiar references
	Deleted   []digest.Digest // image IDs
	Layers    []digest.Digest // layer chainIDs
	Reclaimed int64           // bytes of the removed layers' content
}

// Prune removes the candidate images no root keeps, leaves first, then
// the layers nothing uses. It holds the store lock exclusively for the
// sweep only.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	var rep PruneReport
	err := s.Exclusive(ctx, func() error {
		roots, err := s.roots(ctx)
		if err != nil {
			return err
		}
		if o.Images != nil {
			if err := s.pruneImages(ctx, o, roots, &rep); err != nil {
				return err
			}
		}
		return s.collectLayers(ctx, &rep)
	})
	return rep, err
}

func (s *Store) pruneImages(ctx context.Context, o PruneOptions, roots map[digest.Digest]Root, rep *PruneReport) error {
	for {
		imgs, err := s.images.List(ctx)
		if err != nil {
			return err
		}
		hasChild := map[digest.Digest]bool{}
		for _, img := range imgs {
			hasChild[img.Parent] = true
		}
		removed := 0
		for _, img := range imgs {
			if _, kept := roots[img.ID]; kept || hasChild[img.ID] || !o.Images(img) {
				continue
			}
			if len(img.Names) > 0 && !o.Untag {
				continue
			}
			for _, n := range img.Names {
				rep.Untagged = append(rep.Untagged, image.Familiar(n))
			}
			if err := s.images.Delete(ctx, img.ID); err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return err
			}
			rep.Deleted = append(rep.Deleted, img.ID)
			removed++
		}
		if removed == 0 {
			return nil
		}
	}
}

// CollectLayers removes the layers no image uses. Callers hold the store
// lock exclusively.
func (s *Store) CollectLayers(ctx context.Context) ([]digest.Digest, error) {
	var rep PruneReport
	err := s.collectLayers(ctx, &rep)
	return rep.Layers, err
}

// collectLayers removes every layer that no image's stack includes, whose
// maker is not alive and whose snapshot nothing is built on, and the
// snapshots of layer ingests whose process died.
func (s *Store) collectLayers(ctx context.Context, rep *PruneReport) error {
	if err := s.removeDeadIngests(ctx); err != nil {
		return err
	}
	// Directories a crashed process left without a record.
	if c, ok := s.snapshots.(interface{ Cleanup(context.Context) error }); ok {
		if err := c.Cleanup(ctx); err != nil {
			return fmt.Errorf("clean snapshots: %w", err)
		}
	}
	used := map[digest.Digest]bool{}
	imgs, err := s.images.List(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		for _, c := range image.ChainIDs(img.Config.RootFS.DiffIDs) {
			used[c] = true
		}
	}
	held, _, err := s.liveLeases()
	if err != nil {
		return err
	}
	for c := range held.layers {
		used[c] = true
	}
	var unused []layer.Layer
	depth := map[digest.Digest]int{}
	parent := map[digest.Digest]digest.Digest{}
	err = s.layers.Walk(ctx, func(l layer.Layer) error {
		parent[l.ChainID] = l.Parent
		// A layer whose maker lives is leased to it. This process's own
		// layers are not: it is the one sweeping, under the exclusive lock.
		if !used[l.ChainID] && (l.Owner == "" || l.Owner == s.owner.ID || !s.Alive(l.Owner)) {
			unused = append(unused, l)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var depthOf func(digest.Digest) int
	depthOf = func(c digest.Digest) int {
		if d, ok := depth[c]; ok {
			return d
		}
		depth[c] = 0 // cycle guard
		d := 0
		if p := parent[c]; p != "" {
			d = depthOf(p) + 1
		}
		depth[c] = d
		return d
	}
	if err := s.collectBlobs(ctx, imgs); err != nil {
		return err
	}
	// Children before parents: a parent's snapshot cannot go while one is
	// built on it.
	sort.Slice(unused, func(i, j int) bool { return depthOf(unused[i].ChainID) > depthOf(unused[j].ChainID) })
	for _, l := range unused {
		switch err := s.layers.Remove(ctx, l.ChainID); {
		case errors.Is(err, layer.ErrInUse):
			// A container or build snapshot is on it; it stays.
		case err != nil:
			return err
		default:
			rep.Layers = append(rep.Layers, l.ChainID)
			rep.Reclaimed += l.Size
		}
	}
	return nil
}

// removeDeadIngests drops active snapshots of layer unpacks whose process is gone.
func (s *Store) removeDeadIngests(ctx context.Context) error {
	var dead []string
	err := s.snapshots.Walk(ctx, func(info snapshot.Info) error {
		if !strings.HasPrefix(info.Key, layer.IngestKeyPrefix) || info.Kind == snapshot.KindCommitted {
			return nil
		}
		if owner := layer.IngestOwner(info.Key); owner != "" && !s.Alive(owner) {
			dead = append(dead, info.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := s.snapshots.Remove(ctx, k); err != nil {
			return fmt.Errorf("remove abandoned snapshot %s: %w", k, err)
		}
	}
	return nil
}

// conflict explains, in docker's words, why root keeps image id from rmi.
func (r Root) conflict(ref string, id digest.Digest) error {
	switch r.Kind {
	case RootContainer:
		return fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, r.What, image.ShortID(id))
	case RootMounted:
		return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is mounted (strata umount %s)", image.ShortID(id), ref)
	default:
		return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is in use by %s", image.ShortID(id), r.What)
	}
}

// collectBlobs removes the blobs no image needs: each image keeps its
// config, the manifest (or index) it came from or went to, the manifests
// an index of its lists, and the digests its names pin.
func (s *Store) collectBlobs(ctx context.Context, imgs []image.Image) error {
	keep := map[digest.Digest]bool{}
	for _, img := range imgs {
		keep[img.ID] = true
		if img.Manifest != "" {
			keep[img.Manifest] = true
			if b, err := s.content.ReadAll(ctx, img.Manifest); err == nil {
				var idx struct {
					Manifests []struct {
						Digest digest.Digest `json:"digest"`
					} `json:"manifests"`
				}
				if json.Unmarshal(b, &idx) == nil {
					for _, m := range idx.Manifests {
						keep[m.Digest] = true
					}
				}
			}
		}
		for _, n := range img.Names {
			if _, d, ok := strings.Cut(n, "@"); ok {
				keep[digest.Digest(d)] = true
			}
		}
	}
	var drop []digest.Digest
	err := s.content.Walk(ctx, func(info content.Info) error {
		if !keep[info.Digest] {
			drop = append(drop, info.Digest)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range drop {
		if err := s.content.Delete(ctx, d); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return fmt.Errorf("remove unused blob %s: %w", d, err)
		}
	}
	return nil
}

// VolumeCandidate is a volume as the deletion owner sees it.
type VolumeCandidate struct {
	Name      string
	Anonymous bool
}

// VolumeSet is the volumes the deletion owner decides over. The volume
// package lists and removes them; which ones go is decided here.
type VolumeSet interface {
	// Candidates lists every volume; the caller holds the lock exclusively.
	Candidates() ([]VolumeCandidate, error)
	// Remove deletes a volume and returns the bytes freed; the caller
	// holds the lock exclusively.
	Remove(name string) (int64, error)
}

// VolumePruneOptions choose what a volume prune may remove.
type VolumePruneOptions struct {
	// All makes named volumes candidates too (docker 23's -a); otherwise
	// only anonymous ones are.
	All bool
	// Match is the --filter test; nil matches every volume.
	Match func(name string) bool
	// Users lists the containers, in any state, using a volume: a root.
	Users func(name string) ([]string, error)
}

// PruneVolumes removes the candidate volumes no container uses, under the
// exclusive store lock so that no container creation races the decision.
// It returns the names removed and the bytes freed.
func (s *Store) PruneVolumes(ctx context.Context, vs VolumeSet, o VolumePruneOptions) (removed []string, freed int64, err error) {
	err = s.Exclusive(ctx, func() error {
		vols, err := vs.Candidates()
		if err != nil {
			return err
		}
		for _, v := range vols {
			if (!o.All && !v.Anonymous) || (o.Match != nil && !o.Match(v.Name)) {
				continue
			}
			ids, err := o.Users(v.Name)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				continue
			}
			n, err := vs.Remove(v.Name)
			if err != nil {
				return err
			}
			removed = append(removed, v.Name)
			freed += n
		}
		return nil
	})
	return removed, freed, err
}
