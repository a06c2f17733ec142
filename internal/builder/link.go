package builder

// COPY --link / ADD --link, as docker defines them: the sources are
// copied into an empty filesystem and the resulting layer is laid on top of
// the previous state, as if built FROM scratch and merged. Nothing of the
// parent is read (a destination is never resolved through the parent's
// symlinks; directories the copy creates replace the parent's metadata;
// --chown takes numeric IDs only), so the layer does not depend on the
// parent and neither does its cache entry: a link key leaves the parent
// out. When a later build finds the key on another parent, the recorded
// layer is replayed onto the new parent (same tar, so the same diffID)
// without copying anything again.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
)

// linkKey is the parent-free cache key of a --link step; ok is false for
// other steps.
func linkKey(st *stageState, c instructions.Command, extra []string) (digest.Digest, bool) {
	var dest string
	switch c := c.(type) {
	case *instructions.CopyCommand:
		if !c.Link {
			return "", false
		}
		dest = c.DestPath
	case *instructions.AddCommand:
		if !c.Link {
			return "", false
		}
		dest = c.DestPath
	default:
		return "", false
	}
	// A relative destination depends on WORKDIR, which the instruction
	// text does not show.
	return stepKey("link", canonical(c)+"\nworkdir "+st.cfg.Config.WorkingDir+" dest "+dest, extra), true
}

// numericChown tells whether a --chown value needs no passwd lookup.
func numericChown(s string) bool {
	if s == "" {
		return true
	}
	for _, part := range strings.SplitN(s, ":", 2) {
		if _, err := strconv.ParseUint(part, 10, 32); err != nil {
			return false
		}
	}
	return true
}

// linkHit looks a --link step up by its link key and, when found, lays the
// recorded layer on st's state (replaying it if it was made on another
// parent) and records the step under its ordinary key too.
func (b *builder) linkHit(ctx context.Context, st *stageState, c instructions.Command, key, lkey digest.Digest) (bool, error) {
	img, ok := b.cacheGet(ctx, lkey)
	if !ok {
		return false, nil
	}
	made, err := loadConfig(ctx, b.s, img.ID)
	if err != nil || len(made.RootFS.DiffIDs) == 0 || len(made.History) == 0 {
		return false, nil // unusable record: build the step
	}
	diffs := made.RootFS.DiffIDs
	d := diffs[len(diffs)-1]
	l, err := b.s.Layers().Get(ctx, image.ChildChainID(st.chainID(), d))
	if err != nil {
		if l, err = b.replayOnto(ctx, image.ChainID(diffs), st.chainID()); err != nil {
			return false, err
		}
		if l.DiffID != d {
			return false, fmt.Errorf("replay link layer %s: got diffID %s", shortID(d), l.DiffID)
		}
	}
	next := image.CloneConfig(st.cfg)
	h := made.History[len(made.History)-1]
	next.RootFS.DiffIDs = append(next.RootFS.DiffIDs, d)
	next.History = append(next.History, h)
	next.Created = h.Created
	size := st.size + l.Size
	id, err := b.putImage(ctx, next, st.id, size)
	if err != nil {
		return false, err
	}
	if err := b.cachePut(key, id); err != nil {
		return false, fmt.Errorf("record build cache: %w", err)
	}
	st.cfg, st.id, st.size, st.key = next, id, size, key
	b.applyScope(st, c)
	return true, nil
}

// replayOnto unpacks the tar of the top layer of chain onto parent.
func (b *builder) replayOnto(ctx context.Context, chain, parent digest.Digest) (layer.Layer, error) {
	rc, err := b.s.Layers().Tar(ctx, chain)
	if err != nil {
		return layer.Layer{}, fmt.Errorf("read link layer %s: %w", shortID(chain), err)
	}
	defer rc.Close()
	l, err := b.s.Layers().Unpack(ctx, parent, rc)
	if err != nil {
		return layer.Layer{}, fmt.Errorf("lay link layer on %s: %w", shortID(parent), err)
	}
	return l, nil
}

// commitOnto turns the changes of w, a snapshot over nothing, into a layer
// on parent, and w goes.
func (b *builder) commitOnto(ctx context.Context, w *work, parent digest.Digest) (*layer.Layer, error) {
	if err := w.unmount(); err != nil {
		return nil, err
	}
	l, err := b.s.Layers().CommitOnto(ctx, w.key, parent, archive.DiffOptions{SourceDateEpoch: b.opts.SourceDateEpoch})
	b.discard(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("commit link layer: %w", err)
	}
	return &l, nil
}
