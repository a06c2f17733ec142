package store

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
)

// ImportOptions are `strata import`'s flags.
type ImportOptions struct {
	Source  string          // shown in the history comment: a path or "-"
	Ref     reference.Named // tag for the new image, or nil
	Changes []string        // Dockerfile instructions (--change)
	Message string          // history comment (-m)
	// Platform is the image's os/arch[/variant]; "" is linux/amd64.
	Platform string
	// Created is the image's creation time (SOURCE_DATE_EPOCH); nil is now.
	Created *time.Time
}

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip, zstd, xz or bzip2). The tar is read once: decompressed, hashed,
// recorded and extracted into the layer's snapshot in one pass.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (digest.Digest, error) {
	var cfg image.Config
	cfg.Platform = ocispec.Platform{OS: image.DefaultOS, Architecture: image.DefaultArch}
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return "", err
		}
		cfg.Platform = p
	}
	if err := image.ApplyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	// The layer is unpacked without the store lock: a removal waits for
	// nobody, and the new layer is kept as this process's own (a lease
	// covers the operation) until the image names it.
	lease, err := s.NewLease(ctx, "import")
	if err != nil {
		return "", err
	}
	defer lease.Release()
	tr, _, err := compression.Decompress(r)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", opts.Source, err)
	}
	defer tr.Close()
	l, err := s.layers.Unpack(ctx, "", tr)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", opts.Source, err)
	}
	now := time.Now().UTC()
	if opts.Created != nil {
		now = opts.Created.UTC()
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	cfg.Created = &now
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	co := image.CreateOptions{Size: l.Size}
	if opts.Ref != nil {
		co.Names = append(co.Names, opts.Ref)
	}
	var id digest.Digest
	err = s.Shared(ctx, func() error {
		var err error
		id, err = s.images.Create(ctx, cfg, co)
		return err
	})
	return id, err
}
