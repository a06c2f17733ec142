// Package registry moves images between the store and OCI registries. It
// speaks the distribution protocol through go-containerregistry and reports
// what it does as events; it never prints.
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
)

// Options tune a pull.
type Options struct {
	// Platform is "os/arch[/variant]" to pick from a multi-platform index;
	// "" means linux/amd64, the only platform strata runs.
	Platform string
	// Progress, when set, receives every event of the pull. Calls are
	// serialized, so it need not be safe for concurrent use; it must not
	// block for long, since downloads wait for it.
	Progress func(Event)
	// Access is how the registry is reached (TLS, credentials).
	Access Access
}

// DefaultPlatform is what a pull picks from an index unless told otherwise.
const DefaultPlatform = image.DefaultOS + "/" + image.DefaultArch

// Errors a caller may want to tell apart (wrapped).
var (
	ErrManifestUnknown = errors.New("manifest unknown")
	ErrDigestMismatch  = errors.New("digest mismatch")
	ErrUnsupported     = errors.New("unsupported")
)

// Pull fetches ref (name[:tag] or name@digest) from its registry into s and
// returns the stored image. Layers whose stack is already in the store are
// not fetched. The image is named by its tag (unless pulled by digest) and
// by name@digest of the manifest (or index) the reference resolved to.
func Pull(ctx context.Context, s Store, ref string, opts Options) (image.Image, error) {
	return pull(ctx, s, ref, opts, downloadJobs)
}

func pull(ctx context.Context, s Store, ref string, opts Options, jobs int) (image.Image, error) {
	named, err := image.ParseNamed(ref)
	if err != nil {
		return image.Image{}, err
	}
	explicitPlatform := opts.Platform != ""
	if opts.Platform == "" {
		opts.Platform = DefaultPlatform
	}
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return image.Image{}, err
	}
	p := &puller{s: s, named: named, plat: plat, emit: serialize(opts.Progress), jobs: jobs, access: opts.Access}
	if err := p.resolve(ctx); err != nil {
		return image.Image{}, err
	}
	if explicitPlatform {
		if err := checkConfigPlatform(p.config.Image, plat); err != nil {
			return image.Image{}, fmt.Errorf("%s: %w", reference.FamiliarString(named), err)
		}
	}
	// The download runs without the store lock, so a removal never waits
	// for the network: the lease keeps the layers already in the store, and
	// those the pull makes are its own until the image names them.
	lease, err := s.NewLease(ctx, "pull")
	if err != nil {
		return image.Image{}, err
	}
	defer lease.Release()
	if err := lease.HoldLayers(ctx, image.ChainIDs(p.config.RootFS.DiffIDs)); err != nil {
		return image.Image{}, err
	}
	return p.store(ctx)
}

// puller is one pull in progress.
type puller struct {
	s      Store
	named  reference.Named
	plat   v1.Platform
	emit   func(Event)
	jobs   int // downloads at once
	access Access

	top       digest.Digest // what the reference resolved to: index or manifest
	index     []byte        // raw index, when top is one
	img       v1.Image      // the platform's image
	manifest  []byte
	mdigest   digest.Digest
	layers    []v1.Descriptor
	configRaw []byte
	config    image.Config
}

// resolve fetches the manifest (through the index, if there is one) and the
// config, and checks that strata can store what they describe.
func (p *puller) resolve(ctx context.Context) error {
	ref, err := ggcrRef(p.named, p.access.insecure(registryHost(reference.Domain(p.named))))
	if err != nil {
		return err
	}
	t, err := p.access.transport(registryHost(reference.Domain(p.named)))
	if err != nil {
		return err
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(p.access.keychain()),
		remote.WithPlatform(p.plat),
		remote.WithTransport(t),
	}
	familiar := reference.FamiliarString(p.named)
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return describeFetchError(familiar, err)
	}
	p.top = digest.Digest(desc.Digest.String())
	switch mt := desc.MediaType; {
	case mt.IsSchema1():
		return fmt.Errorf("%s: schema 1 manifests are %w (the image must be pushed again with a current client)", familiar, ErrUnsupported)
	case mt.IsIndex():
		p.index = desc.Manifest
		idx, err := desc.ImageIndex()
		if err != nil {
			return fmt.Errorf("%s: %w", familiar, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("%s: index: %w", familiar, err)
		}
		child, err := matchPlatform(im.Manifests, p.plat)
		if err != nil {
			return fmt.Errorf("%s: %w", familiar, err)
		}
		if child.MediaType.IsSchema1() || child.MediaType.IsIndex() {
			return fmt.Errorf("%s: platform entry of media type %s is %w", familiar, child.MediaType, ErrUnsupported)
		}
		if p.img, err = idx.Image(child.Digest); err != nil {
			return describeFetchError(familiar, err)
		}
	case mt.IsImage():
		if p.img, err = desc.Image(); err != nil {
			return fmt.Errorf("%s: %w", familiar, err)
		}
	default:
		return fmt.Errorf("%s: manifest media type %q is %w", familiar, mt, ErrUnsupported)
	}
	if p.manifest, err = p.img.RawManifest(); err != nil {
		return fmt.Errorf("%s: manifest: %w", familiar, err)
	}
	p.mdigest = digest.FromBytes(p.manifest)
	m, err := p.img.Manifest()
	if err != nil {
		return fmt.Errorf("%s: manifest: %w", familiar, err)
	}
	if err := checkManifest(m); err != nil {
		return fmt.Errorf("%s: %w", familiar, err)
	}
	p.layers = m.Layers
	// ggcr checks the config blob against the manifest's descriptor.
	if p.configRaw, err = p.img.RawConfigFile(); err != nil {
		return fmt.Errorf("%s: config: %w", familiar, err)
	}
	if p.config, err = image.ParseConfig(p.configRaw); err != nil {
		return fmt.Errorf("%s: %w", familiar, err)
	}
	if n, d := len(m.Layers), len(p.config.RootFS.DiffIDs); n != d {
		return fmt.Errorf("%s: manifest has %d layers but the config lists %d diff_ids", familiar, n, d)
	}
	blobs := make([]digest.Digest, len(p.layers))
	for i, l := range p.layers {
		blobs[i] = blobDigest(l)
	}
	p.emit(Event{Kind: Resolved, Ref: p.named, Digest: p.top, Blobs: blobs})
	return nil
}

// store brings the missing layers in and records the image, holding the
// store lock only to record it. The caller leases the image's layers.
func (p *puller) store(ctx context.Context) (image.Image, error) {
	diffIDs := p.config.RootFS.DiffIDs
	chains := image.ChainIDs(diffIDs)
	// A stack that exists brings every stack below it.
	have := 0
	for i := len(chains) - 1; i >= 0; i-- {
		if _, err := p.s.Layers().Get(ctx, chains[i]); err == nil {
			have = i + 1
			break
		}
	}
	for i := range have {
		p.emit(Event{Kind: LayerExists, Layer: blobDigest(p.layers[i]), Total: p.layers[i].Size})
	}
	if err := p.fetchLayers(ctx, have, chains, diffIDs); err != nil {
		return image.Image{}, err
	}
	var size int64
	for _, c := range chains {
		l, err := p.s.Layers().Get(ctx, c)
		if err != nil {
			return image.Image{}, err
		}
		size += l.Size
	}

	var img image.Image
	err := p.s.Shared(ctx, func() error {
		var err error
		img, err = p.record(ctx, have == len(chains), size)
		return err
	})
	return img, err
}

// record stores the manifests and the image under the store lock: a blob
// and the image that keeps it appear together to the deletion owner.
func (p *puller) record(ctx context.Context, hadAll bool, size int64) (image.Image, error) {
	diffIDs := p.config.RootFS.DiffIDs
	// The manifests go into the content store so push and save can hand
	// out the same bytes, and so RepoDigests name something that exists.
	if _, err := p.s.Content().Put(ctx, bytes.NewReader(p.manifest), p.mdigest, int64(len(p.manifest))); err != nil {
		return image.Image{}, fmt.Errorf("store manifest: %w", err)
	}
	if p.index != nil {
		if _, err := p.s.Content().Put(ctx, bytes.NewReader(p.index), p.top, int64(len(p.index))); err != nil {
			return image.Image{}, fmt.Errorf("store index: %w", err)
		}
	}
	byDigest, err := reference.WithDigest(reference.TrimNamed(p.named), p.top)
	if err != nil {
		return image.Image{}, err
	}
	names := []reference.Named{byDigest}
	if _, isDigest := p.named.(reference.Digested); !isDigest {
		names = append(names, p.named)
	}
	// Remember the blobs, so a push to this registry can skip or mount them.
	infos := make([]BlobInfo, len(p.layers))
	for i, l := range p.layers {
		infos[i] = BlobInfo{Digest: blobDigest(l), Size: l.Size, MediaType: string(l.MediaType), Registry: reference.Domain(p.named), Repository: reference.Path(p.named)}
	}
	if err := rememberBlobs(p.s.Records(blobsBucket), diffIDs, infos); err != nil {
		return image.Image{}, err
	}
	id := digest.FromBytes(p.configRaw)
	upToDate := hadAll && p.namesPointAt(ctx, names, id)
	if _, err := p.s.Images().CreateRaw(ctx, p.configRaw, image.CreateOptions{Names: names, Manifest: p.top, Size: size}); err != nil {
		return image.Image{}, err
	}
	// An image that was in the store before (built, loaded) learns where it lives now.
	if err := p.s.Images().SetManifest(ctx, id, p.top); err != nil {
		return image.Image{}, err
	}
	p.emit(Event{Kind: Stored, Ref: p.named, Digest: p.top, UpToDate: upToDate})
	return p.s.Images().Get(ctx, id.String())
}

func (p *puller) namesPointAt(ctx context.Context, names []reference.Named, id digest.Digest) bool {
	for _, n := range names {
		if got, err := p.s.Images().Resolve(ctx, n.String()); err != nil || got != id {
			return false
		}
	}
	return true
}

// fetchLayers brings layers from..n in. Every download starts at once (a
// few at a time) into its own spool, and each layer unpacks as its bytes
// arrive (layer.UnpackStack: on overlay several at once, each committed
// after those below it).
func (p *puller) fetchLayers(ctx context.Context, from int, chains, diffIDs []digest.Digest) error {
	if from == len(chains) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	spools := make([]*spool, len(chains))
	for i := from; i < len(chains); i++ {
		sp, err := newSpool(ctx, p.s.Root())
		if err != nil {
			for _, sp := range spools[from:i] {
				sp.Close()
			}
			return err
		}
		spools[i] = sp
	}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		for _, sp := range spools[from:] {
			sp.Close()
		}
	}()
	// Downloads start in layer order, so the layer unpacked next is never
	// the one left waiting for a slot.
	sem := make(chan struct{}, p.jobs)
	wg.Go(func() {
		for i := from; i < len(chains); i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for _, sp := range spools[i:] {
					sp.finish(ctx.Err())
				}
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				spools[i].finish(p.download(ctx, p.layers[i], spools[i]))
			})
		}
	})
	stack := make([]layer.StackLayer, 0, len(chains)-from)
	for i := from; i < len(chains); i++ {
		d := blobDigest(p.layers[i])
		stack = append(stack, layer.StackLayer{
			DiffID: diffIDs[i],
			// The end of the blob is reported only once the whole blob has
			// arrived and verified, so a layer made from an unverified blob
			// is never committed.
			Open: func(lctx context.Context) (io.ReadCloser, error) {
				p.emit(Event{Kind: LayerExtracting, Layer: d, Total: p.layers[i].Size})
				return io.NopCloser(spools[i].Reader(lctx)), nil
			},
			Done: func(layer.Layer) {
				spools[i].Close()
				p.emit(Event{Kind: LayerDone, Layer: d, Total: p.layers[i].Size})
			},
		})
	}
	var parent digest.Digest
	if from > 0 {
		parent = chains[from-1]
	}
	_, err := p.s.Layers().UnpackStack(ctx, parent, stack)
	var se *layer.StackError
	if !errors.As(err, &se) {
		return err
	}
	i := from + se.Index
	err = se.Err
	var de *layer.DiffIDError
	switch {
	case errors.As(err, &de):
		err = fmt.Errorf("%w: %v", ErrDigestMismatch, de)
	default:
		// A blob that failed verification explains any decompression or
		// tar error: report that.
		if derr := spools[i].wait(ctx); derr != nil {
			err = derr
		}
	}
	return fmt.Errorf("layer %s: %w", blobDigest(p.layers[i]), err)
}

// downloadJobs is how many blobs download at once: enough to keep the link
// busy while the single apply runs, few enough to be polite to a registry.
const downloadJobs = 3

// download streams blob desc into sp, checking its size and digest.
func (p *puller) download(ctx context.Context, desc v1.Descriptor, sp *spool) error {
	d := blobDigest(desc)
	l, err := p.img.LayerByDigest(desc.Digest)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer rc.Close()
	p.emit(Event{Kind: LayerDownloading, Layer: d, Total: desc.Size})
	// ggcr hashes the blob as it reads it and fails the read at its end
	// on a mismatch (the layer's diffID is checked again on apply): the
	// bytes are hashed once, there, and its untyped error typed here.
	body := &readErr{r: rc}
	w := &progressWriter{w: sp, ctx: ctx, report: func(n int64) {
		p.emit(Event{Kind: LayerDownloading, Layer: d, Current: n, Total: desc.Size})
	}}
	n, cerr := io.Copy(w, body)
	switch {
	case cerr != nil && ctx.Err() != nil:
		return ctx.Err()
	case body.err != nil && body.n == desc.Size:
		// Every byte the manifest promised arrived: only the digest
		// check can fail the read after them.
		return fmt.Errorf("%w: %v", ErrDigestMismatch, body.err)
	case cerr != nil:
		return fmt.Errorf("fetch: %w", cerr)
	case n != desc.Size:
		return fmt.Errorf("%w: got %d bytes, the manifest says %d", ErrDigestMismatch, n, desc.Size)
	}
	p.emit(Event{Kind: LayerVerified, Layer: d, Current: n, Total: desc.Size})
	return nil
}

// readErr counts what r gave and keeps the error it ended with.
type readErr struct {
	r   io.Reader
	n   int64
	err error
}

func (r *readErr) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// progressWriter reports the bytes written so far and stops on cancellation.
type progressWriter struct {
	w      io.Writer
	ctx    context.Context
	n      int64
	report func(int64)
}

func (w *progressWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.report(w.n)
	return n, err
}

// checkManifest refuses what strata cannot store faithfully.
func checkManifest(m *v1.Manifest) error {
	switch m.Config.MediaType {
	case types.DockerConfigJSON, types.OCIConfigJSON:
	default:
		return fmt.Errorf("config media type %q is %w (not a container image?)", m.Config.MediaType, ErrUnsupported)
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer:
		case types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer, types.OCIRestrictedLayer + "+zstd":
			return fmt.Errorf("layer %s is a foreign (non-distributable) layer: %w", l.Digest, ErrUnsupported)
		default:
			return fmt.Errorf("layer %s has media type %q, which is %w", l.Digest, l.MediaType, ErrUnsupported)
		}
		if l.Digest.Algorithm != "sha256" {
			return fmt.Errorf("layer %s: digest algorithm %w", l.Digest, ErrUnsupported)
		}
	}
	return nil
}

// ggcrRef turns a normalized strata reference into go-containerregistry's.
func ggcrRef(n reference.Named, insecure bool) (name.Reference, error) {
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	if d, ok := n.(reference.Digested); ok {
		return name.NewDigest(n.Name()+"@"+d.Digest().String(), opts...)
	}
	if t, ok := n.(reference.Tagged); ok {
		return name.NewTag(n.Name()+":"+t.Tag(), opts...)
	}
	return name.NewTag(n.Name()+":latest", opts...)
}

// describeFetchError gives the registry's "not found" answers docker's wording.
func describeFetchError(familiar string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode:
				return fmt.Errorf("manifest for %s not found: %w", familiar, ErrManifestUnknown)
			case transport.NameUnknownErrorCode:
				return fmt.Errorf("pull access denied for %s, repository does not exist or may require authentication: %w", familiar, ErrManifestUnknown)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("pull access denied for %s: %s", familiar, d.Message)
			}
		}
		if te.StatusCode == 404 {
			return fmt.Errorf("manifest for %s not found: %w", familiar, ErrManifestUnknown)
		}
	}
	return fmt.Errorf("pull %s: %w", familiar, err)
}

func blobDigest(d v1.Descriptor) digest.Digest { return digest.Digest(d.Digest.String()) }

func serialize(fn func(Event)) func(Event) {
	if fn == nil {
		return func(Event) {}
	}
	var mu sync.Mutex
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		fn(e)
	}
}

// Pullable tells whether ref names a repository a registry may have, as
// opposed to an image ID or ID prefix, which only the store knows.
func Pullable(ref string) bool {
	if _, err := image.ParseNamed(ref); err != nil {
		return false
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) != 64 {
		return true
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return true
		}
	}
	return false
}
