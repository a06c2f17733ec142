package builder

import (
	"context"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
)

// squash (--squash) merges the layers the stage added to its base image
// into one: the layers are replayed in order into a snapshot over the
// base, whose diff is the merged layer (a file made and deleted by the
// stage is in neither). The stage's history entries stay, marked
// empty_layer, and one entry for the merged layer follows them, as docker's
// --squash does. The merge is cached under the image it squashes.
func (b *builder) squash(ctx context.Context, st *stageState) (*stageState, error) {
	diffs := st.cfg.RootFS.DiffIDs
	base := st.base
	if len(diffs)-base.layers < 2 {
		return st, nil // nothing to merge
	}
	ref := b.begin("", "squashing layers")
	key := digest.FromString("strata-squash-v1 " + string(st.id))
	if !b.opts.NoCache {
		if img, ok := b.cacheGet(ctx, key); ok {
			if cfg, err := loadConfig(ctx, b.s, img.ID); err == nil {
				out := *st
				out.cfg, out.id, out.size = cfg, img.ID, img.Size
				b.cached(ref)
				return &out, nil
			}
		}
	}
	w, err := b.prepare(ctx, image.ChainID(diffs[:base.layers]))
	if err != nil {
		return nil, b.fail(ref, err)
	}
	for i := base.layers; i < len(diffs); i++ {
		if err := b.replay(ctx, w.rootfs, image.ChainID(diffs[:i+1])); err != nil {
			b.discard(ctx, w)
			return nil, b.fail(ref, err)
		}
	}
	l, err := b.commit(ctx, w)
	if err != nil {
		return nil, b.fail(ref, err)
	}
	cfg := image.CloneConfig(st.cfg)
	cfg.RootFS.DiffIDs = append(append([]digest.Digest{}, diffs[:base.layers]...), l.DiffID)
	for i := base.history; i < len(cfg.History); i++ {
		cfg.History[i].EmptyLayer = true
	}
	t := b.now()
	from := "scratch"
	if base.id != "" {
		from = base.id.String()
	}
	cfg.History = append(cfg.History, ocispec.History{Created: &t, Comment: fmt.Sprintf("merge %s to %s", from, st.id)})
	cfg.Created = &t
	size := base.size + l.Size
	id, err := b.putImage(ctx, cfg, base.id, size)
	if err != nil {
		return nil, b.fail(ref, err)
	}
	if err := b.cachePut(key, id); err != nil {
		return nil, b.fail(ref, fmt.Errorf("record build cache: %w", err))
	}
	b.done(ref)
	out := *st
	out.cfg, out.id, out.size = cfg, id, size
	return &out, nil
}

// replay applies layer chain's tar to the mounted root.
func (b *builder) replay(ctx context.Context, root string, chain digest.Digest) error {
	rc, err := b.s.Layers().Tar(ctx, chain)
	if err != nil {
		return fmt.Errorf("squash: read layer %s: %w", shortID(chain), err)
	}
	defer rc.Close()
	if _, err := archive.Apply(ctx, root, rc, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete}); err != nil {
		return fmt.Errorf("squash: apply layer %s: %w", shortID(chain), err)
	}
	return nil
}
