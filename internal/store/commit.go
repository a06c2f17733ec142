package store

import (
	"context"
	"fmt"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
)

// CommitOptions are `strata commit`'s inputs.
type CommitOptions struct {
	SnapshotKey string          // the container's active snapshot
	Image       digest.Digest   // the image the container runs
	Config      image.RunConfig // the container's config (container.RunConfig)
	CreatedBy   string          // history line: the container's command
	Changes     []string        // -c Dockerfile instructions
	Message     string          // -m
	Author      string          // -a
	Ref         reference.Named // new tag, or nil
}

// CommitContainer makes a new image: the container's image plus one layer
// holding what the container changed. Only the changes are read and
// written, so the cost follows the size of the change, not of the image.
// The container keeps running on its own snapshot.
func (s *Store) CommitContainer(ctx context.Context, opts CommitOptions) (digest.Digest, error) {
	// Changes go first: a bad one fails the commit before any work.
	changed := image.Config{Config: opts.Config}
	if err := image.ApplyChanges(&changed, opts.Changes); err != nil {
		return "", err
	}
	// The diff is taken without the store lock: the lease keeps the base
	// image (and so its layers), and the new layer is this process's own
	// until the image names it.
	lease, err := s.NewLease(ctx, "commit")
	if err != nil {
		return "", err
	}
	defer lease.Release()
	if err := lease.Hold(ctx, opts.Image); err != nil {
		return "", err
	}
	base, err := s.images.Get(ctx, opts.Image.String())
	if err != nil {
		return "", err
	}
	parent := image.ChainID(base.Config.RootFS.DiffIDs)
	l, err := s.layers.CommitOnto(ctx, opts.SnapshotKey, parent, archive.DiffOptions{})
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	now := time.Now().UTC()
	img := base.Config
	img.Created = &now
	img.Author = opts.Author
	img.Config = changed.Config
	img.RootFS.DiffIDs = append(append([]digest.Digest{}, base.Config.RootFS.DiffIDs...), l.DiffID)
	img.History = append(append([]ocispec.History{}, base.Config.History...), ocispec.History{
		Created: &now, CreatedBy: opts.CreatedBy, Comment: opts.Message, Author: opts.Author,
	})
	co := image.CreateOptions{Parent: base.ID, Size: base.Size + l.Size}
	if opts.Ref != nil {
		co.Names = append(co.Names, opts.Ref)
	}
	var id digest.Digest
	err = s.Shared(ctx, func() error {
		var err error
		id, err = s.images.Create(ctx, img, co)
		return err
	})
	return id, err
}
