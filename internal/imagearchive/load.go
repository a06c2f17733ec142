package imagearchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/store"
)

// LoadEvent tells how far the load of one layer got: Current of Total
// bytes of its blob in the archive read.
type LoadEvent struct {
	DiffID         digest.Digest
	Current, Total int64
	Done           bool
}

// Loaded is one image a load stored.
type Loaded struct {
	ID   digest.Digest
	Tags []reference.NamedTagged
	// Moved are tags that pointed at another image before (tag → old ID).
	Moved map[string]digest.Digest
}

// maxJSON bounds the metadata files an archive may hold (manifests,
// configs, indexes): they are read whole.
const maxJSON = 32 << 20

// Load reads an image archive into s: a docker archive (old per-layer
// directories or docker 25's OCI-based layout), an OCI archive, or, when
// path is a directory, an OCI layout. The archive is path, or r when path
// is "". Either may be gzip, zstd, xz or bzip2 compressed. Everything is
// verified before any image or tag is recorded; on error the store keeps
// nothing of the archive.
func Load(ctx context.Context, s Store, r io.Reader, path string, progress func(LoadEvent)) ([]Loaded, error) {
	if progress == nil {
		progress = func(LoadEvent) {}
	} else {
		// Layers unpack at once: their events arrive one at a time.
		var mu sync.Mutex
		report := progress
		progress = func(e LoadEvent) {
			mu.Lock()
			defer mu.Unlock()
			report(e)
		}
	}
	src, err := openSource(s.Root(), r, path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	plans, err := readPlans(src)
	if err != nil {
		return nil, err
	}
	// Layers are read without the store lock, so a removal never waits for
	// the archive: the lease keeps the layers already in the store, and
	// those the load makes are its own until its images name them.
	lease, err := s.NewLease(ctx, "load")
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	out, err := apply(ctx, s, lease, src, plans, progress)
	if err != nil {
		// Layers unpacked before the failure belong to no image: remove them.
		lease.Release()
		cleanup := context.WithoutCancel(ctx)
		s.Exclusive(cleanup, func() error {
			_, err := s.CollectLayers(cleanup)
			return err
		})
		return nil, err
	}
	return out, nil
}

// openSource opens the archive for reading members by name. An
// uncompressed archive file is read in place; a compressed one, or one
// arriving on a pipe, is first spooled into an unlinked temp file in the
// store root (it must be read out of order: the manifest comes last).
func openSource(root string, r io.Reader, p string) (source, error) {
	if p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			return newDirSource(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r = f
	}
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			var head [6]byte
			n, _ := f.ReadAt(head[:], 0)
			if compression.Detect(head[:n]) == compression.Uncompressed {
				src, err := newTarSource(f)
				if err != nil {
					f.Close()
					return nil, err
				}
				return src, nil
			}
		}
		if p != "" {
			defer f.Close()
		}
	}
	dr, _, err := compression.Decompress(r)
	if err != nil {
		return nil, invalid("%v", err)
	}
	defer dr.Close()
	spool, err := os.CreateTemp(root, ".load-")
	if err != nil {
		return nil, err
	}
	os.Remove(spool.Name())
	if _, err := io.Copy(spool, dr); err != nil {
		spool.Close()
		return nil, invalid("read archive: %v", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		spool.Close()
		return nil, err
	}
	src, err := newTarSource(spool)
	if err != nil {
		spool.Close()
		return nil, err
	}
	return src, nil
}

// plan is one image of the archive: its config and where its layers are.
type plan struct {
	config  []byte
	id      digest.Digest
	diffIDs []digest.Digest
	layers  []blobRef
	tags    []reference.NamedTagged
}

// blobRef names a layer member and, when the archive states it, the
// digest and size its bytes must have.
type blobRef struct {
	name   string
	digest digest.Digest
	size   int64 // -1: not stated
}

// readPlans reads the archive's manifests: docker's manifest.json when
// there is one (old docker and docker 25+), else the OCI index.
func readPlans(src source) ([]*plan, error) {
	switch {
	case src.has("manifest.json"):
		return dockerPlans(src)
	case src.has(ocispec.ImageIndexFile):
		return ociPlans(src)
	}
	return nil, invalid("no manifest.json or index.json: not a docker or OCI image archive")
}

func dockerPlans(src source) ([]*plan, error) {
	b, err := readMember(src, "manifest.json", "", -1)
	if err != nil {
		return nil, err
	}
	var dms []dockerManifest
	if err := json.Unmarshal(b, &dms); err != nil {
		return nil, invalid("manifest.json: %v", err)
	}
	if len(dms) == 0 {
		return nil, invalid("manifest.json lists no image")
	}
	var plans []*plan
	for _, dm := range dms {
		p := &plan{}
		if p.config, err = readMember(src, dm.Config, digestOfName(dm.Config), -1); err != nil {
			return nil, err
		}
		if err := p.setConfig(); err != nil {
			return nil, fmt.Errorf("%s: %w", dm.Config, err)
		}
		if len(dm.Layers) != len(p.diffIDs) {
			return nil, invalid("manifest.json names %d layers for %s, its config %d", len(dm.Layers), dm.Config, len(p.diffIDs))
		}
		for _, l := range dm.Layers {
			p.layers = append(p.layers, blobRef{name: l, digest: digestOfName(l), size: -1})
		}
		for _, t := range dm.RepoTags {
			tag, err := image.ParseTagged(t)
			if err != nil {
				return nil, invalid("manifest.json: RepoTags: %v", err)
			}
			p.tags = appendTag(p.tags, tag)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func ociPlans(src source) ([]*plan, error) {
	b, err := readMember(src, ocispec.ImageIndexFile, "", -1)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, invalid("index.json: %v", err)
	}
	var plans []*plan
	byManifest := map[digest.Digest]*plan{}
	var visit func(d ocispec.Descriptor, depth int, names []reference.NamedTagged) error
	visit = func(d ocispec.Descriptor, depth int, names []reference.NamedTagged) error {
		if err := d.Digest.Validate(); err != nil {
			return invalid("descriptor digest %q: %v", d.Digest, err)
		}
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
			if depth > 3 {
				return invalid("indexes nested too deep")
			}
			b, err := readMember(src, blobName(d.Digest), d.Digest, d.Size)
			if err != nil {
				return err
			}
			var child ocispec.Index
			if err := json.Unmarshal(b, &child); err != nil {
				return invalid("index %s: %v", d.Digest, err)
			}
			found := 0
			for _, c := range child.Manifests {
				// The platform strata runs; attestations (unknown/unknown) are no images.
				if c.Platform != nil && (c.Platform.OS != image.DefaultOS || c.Platform.Architecture != image.DefaultArch) {
					continue
				}
				found++
				if err := visit(c, depth+1, names); err != nil {
					return err
				}
			}
			if found == 0 {
				return invalid("index %s has no %s/%s image", d.Digest, image.DefaultOS, image.DefaultArch)
			}
			return nil
		case ocispec.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json":
		default:
			return invalid("index entry %s has media type %q", d.Digest, d.MediaType)
		}
		if p := byManifest[d.Digest]; p != nil {
			for _, n := range names {
				p.tags = appendTag(p.tags, n)
			}
			return nil
		}
		b, err := readMember(src, blobName(d.Digest), d.Digest, d.Size)
		if err != nil {
			return err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return invalid("manifest %s: %v", d.Digest, err)
		}
		p := &plan{tags: names}
		if err := m.Config.Digest.Validate(); err != nil {
			return invalid("manifest %s: config digest: %v", d.Digest, err)
		}
		if p.config, err = readMember(src, blobName(m.Config.Digest), m.Config.Digest, m.Config.Size); err != nil {
			return err
		}
		if err := p.setConfig(); err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		if len(m.Layers) != len(p.diffIDs) {
			return invalid("manifest %s has %d layers, its config %d", d.Digest, len(m.Layers), len(p.diffIDs))
		}
		for _, l := range m.Layers {
			if err := l.Digest.Validate(); err != nil {
				return invalid("manifest %s: layer digest: %v", d.Digest, err)
			}
			p.layers = append(p.layers, blobRef{name: blobName(l.Digest), digest: l.Digest, size: l.Size})
		}
		byManifest[d.Digest] = p
		plans = append(plans, p)
		return nil
	}
	for _, d := range idx.Manifests {
		if err := visit(d, 0, ociNames(d.Annotations)); err != nil {
			return nil, err
		}
	}
	if len(plans) == 0 {
		return nil, invalid("index.json lists no image")
	}
	return plans, nil
}

// ociNames reads the name an index entry gives its image: containerd's
// full name, else a ref.name that is a whole reference (podman, skopeo).
// A ref.name that is only a tag names no repository.
func ociNames(a map[string]string) []reference.NamedTagged {
	for _, s := range []string{a[annotationImageName], a[annotationRefName]} {
		if s == "" || !strings.ContainsAny(s, ":/") {
			continue
		}
		if t, err := image.ParseTagged(s); err == nil {
			return []reference.NamedTagged{t}
		}
	}
	return nil
}

func (p *plan) setConfig() error {
	cfg, err := image.ParseConfig(p.config)
	if err != nil {
		return invalid("%v", err)
	}
	p.id = digest.FromBytes(p.config)
	p.diffIDs = cfg.RootFS.DiffIDs
	return nil
}

// digestOfName is the digest a member's name claims: blobs/sha256/HEX or
// HEX.json (old docker's config files); "" when it claims none.
func digestOfName(name string) digest.Digest {
	base := name[strings.LastIndex(name, "/")+1:]
	base = strings.TrimSuffix(base, ".json")
	d := digest.NewDigestFromEncoded(digest.SHA256, base)
	if d.Validate() != nil {
		return ""
	}
	return d
}

// readMember reads a small member whole, checking its digest and size when given.
func readMember(src source, name string, want digest.Digest, size int64) ([]byte, error) {
	rc, n, err := src.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if n > maxJSON {
		return nil, invalid("%s is %d bytes, too big for metadata", name, n)
	}
	if size >= 0 && n != size {
		return nil, invalid("%s is %d bytes, its descriptor says %d", name, n, size)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxJSON))
	if err != nil {
		return nil, err
	}
	if want != "" && digest.FromBytes(b) != want {
		return nil, invalid("%s has digest %s, not the %s it is named by", name, digest.FromBytes(b), want)
	}
	return b, nil
}

// apply stores the layers of every plan, then records the images and
// their tags. The caller holds the store lock shared.
func apply(ctx context.Context, s Store, lease *store.Lease, src source, plans []*plan, progress func(LoadEvent)) ([]Loaded, error) {
	for _, p := range plans {
		if err := lease.HoldLayers(ctx, image.ChainIDs(p.diffIDs)); err != nil {
			return nil, err
		}
	}
	sizes := make([]int64, len(plans))
	for pi, p := range plans {
		n, err := storeLayers(ctx, s, src, p, progress)
		if err != nil {
			return nil, err
		}
		sizes[pi] = n
	}
	var out []Loaded
	err := s.Shared(ctx, func() error {
		var err error
		out, err = record(ctx, s, plans, sizes)
		return err
	})
	return out, err
}

// record names the loaded images, under the store lock.
func record(ctx context.Context, s Store, plans []*plan, sizes []int64) ([]Loaded, error) {
	var out []Loaded
	for pi, p := range plans {
		ld := Loaded{ID: p.id, Tags: p.tags, Moved: map[string]digest.Digest{}}
		names := make([]reference.Named, 0, len(p.tags))
		for _, t := range p.tags {
			if old, err := s.Images().Resolve(ctx, t.String()); err == nil && old != p.id {
				ld.Moved[t.String()] = old
			}
			names = append(names, t)
		}
		if _, err := s.Images().CreateRaw(ctx, p.config, image.CreateOptions{Names: names, Size: sizes[pi]}); err != nil {
			return nil, err
		}
		out = append(out, ld)
	}
	return out, nil
}

// storeLayers brings the layers of p into the store and returns their
// content size. The layers whose stacks are there already are checked
// against the archive's copies; the rest unpack as one stack.
func storeLayers(ctx context.Context, s Store, src source, p *plan, progress func(LoadEvent)) (int64, error) {
	chains := image.ChainIDs(p.diffIDs)
	var size int64
	have := 0
	for ; have < len(chains); have++ {
		l, err := s.Layers().Get(ctx, chains[have])
		if err != nil {
			break
		}
		if err := checkLayer(ctx, src, p.layers[have], p.diffIDs[have], progress); err != nil {
			return 0, fmt.Errorf("layer %s: %w", p.layers[have].name, err)
		}
		size += l.Size
	}
	if have == len(chains) {
		return size, nil
	}
	stack := make([]layer.StackLayer, 0, len(chains)-have)
	for i := have; i < len(chains); i++ {
		ref, diffID := p.layers[i], p.diffIDs[i]
		var n int64
		stack = append(stack, layer.StackLayer{
			DiffID: diffID,
			Digest: ref.digest,
			Open: func(context.Context) (io.ReadCloser, error) {
				var blob io.ReadCloser
				var err error
				blob, n, err = openLayer(src, ref, diffID, progress)
				return blob, err
			},
			Done: func(layer.Layer) {
				progress(LoadEvent{DiffID: diffID, Current: n, Total: n, Done: true})
			},
		})
	}
	var parent digest.Digest
	if have > 0 {
		parent = chains[have-1]
	}
	ls, err := s.Layers().UnpackStack(ctx, parent, stack)
	if err != nil {
		var se *layer.StackError
		if !errors.As(err, &se) {
			return 0, err
		}
		return 0, fmt.Errorf("layer %s: %w", p.layers[have+se.Index].name, layerError(se.Err))
	}
	for _, l := range ls {
		size += l.Size
	}
	return size, nil
}

// openLayer opens the blob of layer ref, checking the size the archive
// states.
func openLayer(src source, ref blobRef, diffID digest.Digest, progress func(LoadEvent)) (io.ReadCloser, int64, error) {
	rc, n, err := src.open(ref.name)
	if err != nil {
		return nil, 0, err
	}
	if ref.size >= 0 && n != ref.size {
		rc.Close()
		return nil, 0, invalid("%d bytes, its descriptor says %d", n, ref.size)
	}
	return struct {
		io.Reader
		io.Closer
	}{&loadProgress{r: rc, ev: LoadEvent{DiffID: diffID, Total: n}, report: progress}, rc}, n, nil
}

// checkLayer checks that the archive's copy of a layer the store has is
// that layer, without unpacking it.
func checkLayer(ctx context.Context, src source, ref blobRef, diffID digest.Digest, progress func(LoadEvent)) error {
	var n int64
	defer func() { progress(LoadEvent{DiffID: diffID, Current: n, Total: n, Done: true}) }()
	return layerError(layer.VerifyBlob(ctx, layer.StackLayer{DiffID: diffID, Digest: ref.digest, Open: func(context.Context) (io.ReadCloser, error) {
		var blob io.ReadCloser
		var err error
		blob, n, err = openLayer(src, ref, diffID, progress)
		return blob, err
	}}))
}

// layerError is an error of the layer store about a layer of the archive
// in load's terms.
func layerError(err error) error {
	var de *layer.DiffIDError
	var ge *layer.DigestError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		return invalid("content has diffID %s, the config says %s", de.Got, de.Want)
	case errors.As(err, &ge):
		return invalid("content has digest %s, the archive names it %s", ge.Got, ge.Want)
	case !errors.Is(err, ErrInvalid):
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return err
}

// loadProgress reports the bytes of a layer blob read so far, at most
// every reportEvery bytes.
type loadProgress struct {
	r      io.Reader
	ev     LoadEvent
	last   int64
	report func(LoadEvent)
}

const reportEvery = 1 << 20

func (p *loadProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.ev.Current += int64(n)
	if p.ev.Current-p.last >= reportEvery {
		p.last = p.ev.Current
		p.report(p.ev)
	}
	return n, err
}
