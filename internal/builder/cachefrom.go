package builder

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/progress"
)

// Every history entry a build step writes carries the step's cache key in
// its comment. A key already names everything the step's result depends on
// (its parent's key, the expanded instruction, the content it reads), so an
// image built elsewhere and pulled, or built on this machine before the
// cache was pruned, can serve as a cache source (--cache-from) without
// trusting instruction text: a COPY whose files changed has another key.
const historyKeyPrefix = "strata build "

func historyComment(key digest.Digest) string { return historyKeyPrefix + string(key) }

// cacheSource is one --cache-from image: its config and where each step
// key sits in its history.
type cacheSource struct {
	ref  string
	cfg  image.Config
	keys map[digest.Digest]int // key -> history index
}

// loadCacheSources reads the --cache-from images from the store. A name
// the store lacks is skipped with a warning, as docker's classic builder
// ignores a cache source it cannot find.
func (b *builder) loadCacheSources(ctx context.Context) {
	for _, ref := range b.opts.CacheFrom {
		img, err := b.s.Images().Get(ctx, ref)
		if err != nil {
			b.emit(progress.Event{Kind: progress.EventWarning, Text: fmt.Sprintf("[Warning] --cache-from %s: %v (not used)", ref, err)})
			continue
		}
		cs := cacheSource{ref: ref, cfg: img.Config, keys: map[digest.Digest]int{}}
		for i, h := range img.Config.History {
			if k, ok := strings.CutPrefix(h.Comment, historyKeyPrefix); ok {
				if d, err := digest.Parse(k); err == nil {
					cs.keys[d] = i
				}
			}
		}
		b.cacheFrom = append(b.cacheFrom, cs)
	}
}

// fromCacheSource finds step key in a --cache-from image whose layers
// below that step are the stage's current ones (the classic builder's
// rule: the same parent chain), and returns the step's result without
// running it: the instruction's config change, the source's layer (if the
// step made one) and its history entry.
func (b *builder) fromCacheSource(ctx context.Context, st *stageState, c instructions.Command, key digest.Digest) (image.Config, *layer.Layer, *ocispec.History, bool) {
	for _, cs := range b.cacheFrom {
		i, ok := cs.keys[key]
		if !ok {
			continue
		}
		h := cs.cfg.History[i]
		n := 0 // layers below entry i
		for _, e := range cs.cfg.History[:i] {
			if !e.EmptyLayer {
				n++
			}
		}
		diffs := cs.cfg.RootFS.DiffIDs
		if n > len(diffs) || (!h.EmptyLayer && n >= len(diffs)) || !sameDiffIDs(diffs[:n], st.cfg.RootFS.DiffIDs) {
			continue
		}
		var l *layer.Layer
		if !h.EmptyLayer {
			got, err := b.s.Layers().Get(ctx, image.ChainID(diffs[:n+1]))
			if err != nil {
				continue
			}
			l = &got
		}
		next := image.CloneConfig(st.cfg)
		if _, err := st.apply.Apply(&next, c); err != nil {
			return next, nil, nil, false
		}
		return next, l, &h, true
	}
	return image.Config{}, nil, nil, false
}

func sameDiffIDs(a, b []digest.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
