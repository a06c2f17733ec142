package registry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
)

// PushOptions tune a push.
type PushOptions struct {
	Access
	// Compression of layers strata has to upload: "gzip", "zstd" or
	// "none". "" reuses a blob of any compression the registry has and
	// makes new ones gzip; a value set explicitly only reuses blobs of
	// that compression.
	Compression string
	// AllTags pushes every tag of the repository (ref must have no tag).
	AllTags bool
	// Progress, when set, receives every event; calls are serialized.
	Progress func(Event)
}

// Pushed is one tag a push stored.
type Pushed struct {
	Ref    reference.NamedTagged
	Digest digest.Digest // of the manifest, as the registry stores it
	Size   int64         // of the manifest
}

// ErrNoSuchLocalImage is wrapped when the name to push is not in the store.
var ErrNoSuchLocalImage = errors.New("An image does not exist locally with the tag")

// uploadJobs is how many layers upload at once, as docker does.
const uploadJobs = 3

// Push uploads the image ref names (or, with AllTags, every tag of its
// repository) to its registry. Layers the registry has, or can mount from
// another repository, are not sent; the manifest goes last, so a failed
// push never moves a tag.
func Push(ctx context.Context, s Store, ref string, opts PushOptions) ([]Pushed, error) {
	switch opts.Compression {
	case "", "gzip", "zstd", "none":
	default:
		return nil, fmt.Errorf("invalid compression %q: want gzip, zstd or none", opts.Compression)
	}
	tags, err := pushTags(ctx, s, ref, opts.AllTags)
	if err != nil {
		return nil, err
	}
	emit := serialize(opts.Progress)
	var out []Pushed
	// The store lock (shared) keeps the layers from being removed under the push.
	err = s.Shared(ctx, func() error {
		for _, t := range tags {
			p, err := pushOne(ctx, s, t, opts, emit)
			if errors.Is(err, ErrUnauthorized) {
				return fmt.Errorf("push access denied for %s: %w (authentication required: strata login %s): %v", reference.FamiliarName(t), ErrUnauthorized, reference.Domain(t), err)
			}
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// pushTags lists the tags to push.
func pushTags(ctx context.Context, s Store, ref string, all bool) ([]reference.NamedTagged, error) {
	if !all {
		t, err := image.ParseTagged(ref)
		if err != nil {
			return nil, err
		}
		if _, err := s.Images().Resolve(ctx, t.String()); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchLocalImage, reference.FamiliarString(t))
		}
		return []reference.NamedTagged{t}, nil
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w", ref, err)
	}
	if _, tagged := n.(reference.Tagged); tagged {
		return nil, fmt.Errorf("tag can't be used with --all-tags/-a")
	}
	imgs, err := s.Images().List(ctx)
	if err != nil {
		return nil, err
	}
	var out []reference.NamedTagged
	for _, img := range imgs {
		for _, name := range img.Names {
			t, err := image.ParseTagged(name)
			if err == nil && t.Name() == n.Name() {
				out = append(out, t)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchLocalImage, reference.FamiliarName(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag() < out[j].Tag() })
	return out, nil
}

// pushLayer is one layer of the image being pushed.
type pushLayer struct {
	chainID, diffID digest.Digest
	tarSize         int64
	desc            ocispec.Descriptor // what the manifest lists, once known
}

func pushOne(ctx context.Context, s Store, tag reference.NamedTagged, opts PushOptions, emit func(Event)) (Pushed, error) {
	host, repo := reference.Domain(tag), reference.Path(tag)
	img, err := s.Images().Get(ctx, tag.String())
	if err != nil {
		return Pushed{}, err
	}
	config, err := s.Content().ReadAll(ctx, img.ID)
	if err != nil {
		return Pushed{}, fmt.Errorf("image %s config: %w", image.ShortID(img.ID), err)
	}
	src := sourceManifest(ctx, s, img)
	oci := opts.Compression == "zstd" || (src != nil && src.MediaType == ocispec.MediaTypeImageManifest)

	diffIDs := img.Config.RootFS.DiffIDs
	layers := make([]*pushLayer, len(diffIDs))
	mountFrom := map[string]bool{}
	known := make([][]BlobInfo, len(diffIDs))
	for i, c := range image.ChainIDs(diffIDs) {
		l, err := s.Layers().Get(ctx, c)
		if err != nil {
			return Pushed{}, err
		}
		layers[i] = &pushLayer{chainID: c, diffID: diffIDs[i], tarSize: l.TarSize}
		if known[i], err = knownBlobs(s.Records(blobsBucket), diffIDs[i]); err != nil {
			return Pushed{}, err
		}
		for _, k := range known[i] {
			if k.Registry == host && k.Repository != repo {
				mountFrom[k.Repository] = true
			}
		}
	}
	c, err := newClient(ctx, opts.Access, registryHost(host), repo, s.Root(), sortedKeys(mountFrom))
	if err != nil {
		return Pushed{}, err
	}
	emit(Event{Kind: PushStarted, Ref: tag})
	for i := len(layers) - 1; i >= 0; i-- {
		emit(Event{Kind: PushPreparing, Layer: layers[i].diffID})
	}

	// Layers, a few at a time; the first error stops the rest.
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	sem := make(chan struct{}, uploadJobs)
	for i := len(layers) - 1; i >= 0; i-- {
		l, k := layers[i], known[i]
		select {
		case sem <- struct{}{}:
		case <-ctx2.Done():
		}
		if ctx2.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := pushBlob(ctx2, s, c, l, k, host, repo, oci, opts.Compression, emit); err != nil {
				once.Do(func() { firstErr = fmt.Errorf("layer %s: %w", image.ShortID(l.diffID), err); cancel() })
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return Pushed{}, firstErr
	}
	if ctx.Err() != nil {
		return Pushed{}, ctx.Err()
	}

	if err := pushConfig(ctx, c, img.ID, config, sortedKeys(mountFrom)); err != nil {
		return Pushed{}, fmt.Errorf("config: %w", err)
	}

	mt, manifest, err := buildManifest(src, oci, img.ID, int64(len(config)), layers)
	if err != nil {
		return Pushed{}, err
	}
	if err := c.putManifest(ctx, tag.Tag(), mt, manifest); err != nil {
		return Pushed{}, fmt.Errorf("manifest: %w", err)
	}
	md := digest.FromBytes(manifest)

	// Remember where every layer now is, keep the manifest, and name the
	// image by its digest in that repository. The image's own manifest
	// (the one it was pulled as) stays what later pushes follow, so a
	// push with another --compression does not change what they send.
	infos := make([]BlobInfo, len(layers))
	for i, l := range layers {
		infos[i] = BlobInfo{Digest: l.desc.Digest, Size: l.desc.Size, MediaType: l.desc.MediaType, Registry: host, Repository: repo}
	}
	if err := rememberBlobs(s.Records(blobsBucket), diffIDs, infos); err != nil {
		return Pushed{}, err
	}
	if _, err := s.Content().PutBytes(ctx, manifest); err != nil {
		return Pushed{}, err
	}
	byDigest, err := reference.WithDigest(reference.TrimNamed(tag), md)
	if err != nil {
		return Pushed{}, err
	}
	if _, err := s.Images().CreateRaw(ctx, config, image.CreateOptions{Names: []reference.Named{byDigest}}); err != nil {
		return Pushed{}, err
	}
	p := Pushed{Ref: tag, Digest: md, Size: int64(len(manifest))}
	emit(Event{Kind: PushDone, Ref: tag, Digest: md, Total: p.Size})
	return p, nil
}

// pushConfig makes the config blob exist in the repository: there
// already, mounted from a repository the layers are known in, or sent.
func pushConfig(ctx context.Context, c *client, id digest.Digest, config []byte, mountFrom []string) error {
	has, err := c.hasBlob(ctx, id)
	if err != nil || has {
		return err
	}
	for _, from := range mountFrom {
		if ok, err := c.mount(ctx, id, from); err != nil || ok {
			return err
		}
	}
	return c.putBlob(ctx, config)
}

// registryHost is where a reference's domain is served.
func registryHost(domain string) string {
	if domain == "docker.io" {
		return "index.docker.io"
	}
	return domain
}

// sourceManifest is the registry manifest the image came from or went to,
// when the store has it: its media types are kept, and its bytes reused
// when every blob is the same.
func sourceManifest(ctx context.Context, s Store, img image.Image) *storedManifest {
	if img.Manifest == "" {
		return nil
	}
	b, err := s.Content().ReadAll(ctx, img.Manifest)
	if err != nil {
		return nil
	}
	var probe struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return nil
	}
	if probe.Manifests != nil {
		// An index: its platform manifest for this image, if stored.
		for _, d := range probe.Manifests {
			if m := sourceManifest(ctx, s, image.Image{ID: img.ID, Manifest: d.Digest}); m != nil {
				return m
			}
		}
		return nil
	}
	var m ocispec.Manifest
	if json.Unmarshal(b, &m) != nil || m.Config.Digest != img.ID {
		return nil
	}
	if m.MediaType == "" {
		m.MediaType = ocispec.MediaTypeImageManifest
	}
	return &storedManifest{Manifest: m, raw: b}
}

// storedManifest is a manifest as parsed and the bytes it was stored as.
type storedManifest struct {
	ocispec.Manifest
	raw []byte
}

// buildManifest returns the manifest to store: the source manifest's own
// bytes when the push gives the same blobs, else a new one.
func buildManifest(src *storedManifest, oci bool, config digest.Digest, configSize int64, layers []*pushLayer) (string, []byte, error) {
	if src != nil && len(src.Layers) == len(layers) {
		same := true
		for i, l := range layers {
			d := src.Layers[i]
			// The same bytes: the media type may only name them in the
			// other family (docker's gzip type in an OCI manifest).
			if d.Digest != l.desc.Digest || d.Size != l.desc.Size || compressionOf(d.MediaType) != compressionOf(l.desc.MediaType) {
				same = false
			}
		}
		if same {
			return src.MediaType, src.raw, nil
		}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: string(types.DockerManifestSchema2)}
	m.Config = ocispec.Descriptor{MediaType: string(types.DockerConfigJSON), Digest: config, Size: configSize}
	if oci {
		m.MediaType = ocispec.MediaTypeImageManifest
		m.Config.MediaType = ocispec.MediaTypeImageConfig
	}
	m.Layers = []ocispec.Descriptor{}
	for _, l := range layers {
		m.Layers = append(m.Layers, l.desc)
	}
	b, err := json.MarshalIndent(m, "", "   ")
	return m.MediaType, b, err
}

// layerMediaType is the media type of a layer blob in the chosen family.
func layerMediaType(oci bool, compression string) string {
	switch {
	case compression == "zstd":
		return ocispec.MediaTypeImageLayerZstd
	case oci && compression == "none":
		return ocispec.MediaTypeImageLayer
	case oci:
		return ocispec.MediaTypeImageLayerGzip
	case compression == "none":
		return string(types.DockerUncompressedLayer)
	}
	return string(types.DockerLayer)
}

// compressionOf names the compression of a layer media type.
func compressionOf(mt string) string {
	switch types.MediaType(mt) {
	case types.OCILayerZStd:
		return "zstd"
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return "none"
	}
	return "gzip"
}

// pushBlob makes layer l exist in the repository: already there, mounted
// from another repository of the registry, or compressed and uploaded.
func pushBlob(ctx context.Context, s Store, c *client, l *pushLayer, known []BlobInfo, host, repo string, oci bool, want string, emit func(Event)) error {
	ok := func(comp string) bool { return want == "" || want == comp }
	found := func(d digest.Digest, size int64, comp string) {
		l.desc = ocispec.Descriptor{MediaType: layerMediaType(oci, comp), Digest: d, Size: size}
	}
	// Known blobs in this repository first, then elsewhere in the registry
	// (mounted), then ones seen in other registries (it may have them too).
	// Without --compression, gzip first: what docker pushes and every
	// registry client reads.
	sort.SliceStable(known, func(i, j int) bool {
		if ri, rj := rank(known[i], host, repo), rank(known[j], host, repo); ri != rj {
			return ri < rj
		}
		return compressionRank(known[i].MediaType) < compressionRank(known[j].MediaType)
	})
	if want == "none" {
		known = append([]BlobInfo{{Digest: l.diffID, Size: l.tarSize, MediaType: string(types.OCIUncompressedLayer), Registry: host, Repository: repo}}, known...)
	}
	tried := map[digest.Digest]bool{}
	for _, k := range known {
		comp := compressionOf(k.MediaType)
		if !ok(comp) || (comp == "zstd" && !oci) {
			continue
		}
		if k.Registry == host && k.Repository != repo {
			mounted, err := c.mount(ctx, k.Digest, k.Repository)
			if err != nil {
				return err
			}
			if mounted {
				found(k.Digest, k.Size, comp)
				emit(Event{Kind: PushMounted, Layer: l.diffID, From: k.Repository})
				return nil
			}
		}
		if tried[k.Digest] {
			continue
		}
		tried[k.Digest] = true
		has, err := c.hasBlob(ctx, k.Digest)
		if err != nil {
			return err
		}
		if has {
			found(k.Digest, k.Size, comp)
			emit(Event{Kind: PushExists, Layer: l.diffID})
			return nil
		}
	}
	comp := want
	if comp == "" {
		comp = "gzip"
	}
	d, n, err := c.upload(ctx, func() (io.Reader, func() (digest.Digest, int64, error), func()) {
		return compressLayer(ctx, s, l, comp, emit)
	})
	if err != nil {
		return err
	}
	found(d, n, comp)
	emit(Event{Kind: PushPushed, Layer: l.diffID, Total: l.tarSize})
	return nil
}

func compressionRank(mt string) int {
	switch compressionOf(mt) {
	case "gzip":
		return 0
	case "zstd":
		return 1
	}
	return 2
}

func rank(k BlobInfo, host, repo string) int {
	switch {
	case k.Registry == host && k.Repository == repo:
		return 0
	case k.Registry == host:
		return 1
	}
	return 2
}

// compressLayer streams the layer's exact tar through the compressor into
// a pipe, hashing the compressed bytes on their way: nothing is written to
// disk and the tar is read once per try.
func compressLayer(ctx context.Context, s Store, l *pushLayer, comp string, emit func(Event)) (io.Reader, func() (digest.Digest, int64, error), func()) {
	pr, pw := io.Pipe()
	h := sha256.New()
	counted := &countWriter{w: io.MultiWriter(pw, h)}
	errc := make(chan error, 1)
	go func() {
		err := writeCompressed(ctx, s, l, comp, counted, emit)
		pw.CloseWithError(err) // nil: the body reader sees EOF
		errc <- err
	}()
	var once sync.Once
	var werr error
	wait := func() error {
		once.Do(func() { werr = <-errc })
		return werr
	}
	sum := func() (digest.Digest, int64, error) {
		if err := wait(); err != nil {
			return "", 0, err
		}
		return digest.NewDigest(digest.SHA256, h), counted.n, nil
	}
	cleanup := func() {
		pr.CloseWithError(errors.New("upload ended"))
		wait()
	}
	return pr, sum, cleanup
}

func writeCompressed(ctx context.Context, s Store, l *pushLayer, comp string, w io.Writer, emit func(Event)) error {
	rc, err := s.Layers().Tar(ctx, l.chainID)
	if err != nil {
		return err
	}
	defer rc.Close()
	zw, err := compression.NewWriter(w, comp)
	if err != nil {
		return err
	}
	pw := &progressWriter{w: zw, ctx: ctx, report: func(n int64) {
		emit(Event{Kind: PushPushing, Layer: l.diffID, Current: n, Total: l.tarSize})
	}}
	if _, err := io.Copy(pw, rc); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
