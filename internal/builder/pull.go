package builder

import (
	"context"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/registry"
)

// pulled is one pull of a build, shared by every stage that names the ref.
type pulled struct {
	done chan struct{}
	img  image.Image
	err  error
}

// imageFor finds the image ref names for FROM, COPY --from, RUN --mount
// from= and docker-image:// contexts: pulled first with --pull, otherwise
// the stored one, pulled only when the store lacks it, as docker does.
// For another platform than the host's, a stored image must be of that
// platform (a pullable one is pulled for it instead), as docker's does.
func (b *builder) imageFor(ctx context.Context, ref string, plat ocispec.Platform) (image.Image, error) {
	foreign := plat.OS != "" && !samePlatform(plat, hostPlatform())
	mismatch := ""
	if !b.opts.Pull {
		img, err := b.s.Images().Get(ctx, ref)
		if err == nil && foreign && !samePlatform(img.Config.Platform, plat) {
			mismatch = fmt.Sprintf("image %s is %s, not the %s the build is for", ref, image.FormatPlatform(img.Config.Platform), image.FormatPlatform(plat))
		}
		switch {
		case mismatch != "" && !registry.Pullable(ref):
			return img, errors.New(mismatch)
		case mismatch != "":
		case err == nil:
			return img, b.hold(ctx, img.ID)
		case !isNotFound(err) || !registry.Pullable(ref):
			return img, err
		}
	}
	img, err := b.pull(ctx, ref, plat)
	if err != nil {
		if mismatch != "" {
			return img, fmt.Errorf("%s, and %w", mismatch, err)
		}
		return img, err
	}
	return img, b.hold(ctx, img.ID)
}

// samePlatform compares an image's platform with a wanted one, an unset
// variant matching any.
func samePlatform(got, want ocispec.Platform) bool {
	return got.OS == want.OS && got.Architecture == want.Architecture && (want.Variant == "" || got.Variant == want.Variant)
}

// hold adds an image the build uses to its lease; an image removed since
// it was looked up is reported as missing.
func (b *builder) hold(ctx context.Context, id digest.Digest) error {
	if b.lease == nil {
		return nil
	}
	return b.lease.Hold(ctx, id)
}

// pull fetches ref once per build, as its own progress step.
func (b *builder) pull(ctx context.Context, ref string, plat ocispec.Platform) (image.Image, error) {
	pf := ""
	if plat.OS != "" {
		pf = image.FormatPlatform(plat)
	}
	b.pullMu.Lock()
	if b.pulls == nil {
		b.pulls = map[string]*pulled{}
	}
	p, ok := b.pulls[ref+" "+pf]
	if ok {
		b.pullMu.Unlock()
		<-p.done
		return p.img, p.err
	}
	p = &pulled{done: make(chan struct{})}
	b.pulls[ref+" "+pf] = p
	b.pullMu.Unlock()
	defer close(p.done)

	r := b.begin("", "[internal] pull "+ref)
	p.img, p.err = registry.Pull(ctx, b.s, ref, registry.Options{Access: b.opts.Registry, Platform: pf, Progress: func(e registry.Event) {
		switch e.Kind {
		case registry.LayerExists:
			b.log(r, fmt.Sprintf("%s: already exists", image.ShortID(e.Layer)))
		case registry.LayerDone:
			b.log(r, fmt.Sprintf("%s: pull complete", image.ShortID(e.Layer)))
		}
	}})
	if p.err != nil {
		p.err = b.fail(r, fmt.Errorf("pull %s: %w", ref, p.err))
		return p.img, p.err
	}
	b.done(r)
	return p.img, nil
}
