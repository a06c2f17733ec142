package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/snapshot"
)

// CollectLayers removes every layer that no image's stack includes and
// whose snapshot nothing is built on, and the snapshots of layer ingests
// whose process died. Callers hold the store lock exclusively.
func (s *Store) CollectLayers(ctx context.Context) (removed []digest.Digest, err error) {
	if err := s.removeDeadIngests(ctx); err != nil {
		return nil, err
	}
	// Directories a crashed process left without a record.
	if c, ok := s.Snapshots.(interface{ Cleanup(context.Context) error }); ok {
		if err := c.Cleanup(ctx); err != nil {
			return nil, fmt.Errorf("clean snapshots: %w", err)
		}
	}
	used := map[digest.Digest]bool{}
	imgs, err := s.Images.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		for _, c := range image.ChainIDs(img.Config.RootFS.DiffIDs) {
			used[c] = true
		}
	}
	var unused []layer.Layer
	depth := map[digest.Digest]int{}
	parent := map[digest.Digest]digest.Digest{}
	err = s.Layers.Walk(ctx, func(l layer.Layer) error {
		parent[l.ChainID] = l.Parent
		if !used[l.ChainID] {
			unused = append(unused, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	// Children before parents: a parent's snapshot cannot go while one is
	// built on it.
	sort.Slice(unused, func(i, j int) bool { return depthOf(unused[i].ChainID) > depthOf(unused[j].ChainID) })
	for _, l := range unused {
		switch err := s.Layers.Remove(ctx, l.ChainID); {
		case errors.Is(err, layer.ErrInUse):
			// A container or build snapshot is on it; it stays.
		case err != nil:
			return removed, err
		default:
			removed = append(removed, l.ChainID)
		}
	}
	return removed, nil
}

// removeDeadIngests drops active snapshots of layer unpacks whose process is gone.
func (s *Store) removeDeadIngests(ctx context.Context) error {
	var dead []string
	err := s.Snapshots.Walk(ctx, func(info snapshot.Info) error {
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
		if err := s.Snapshots.Remove(ctx, k); err != nil {
			return fmt.Errorf("remove abandoned snapshot %s: %w", k, err)
		}
	}
	return nil
}
