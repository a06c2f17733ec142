// Package imagearchive writes images from the store into archives and
// loads archives into the store: docker's `save`/`load` formats (old and
// new) and the OCI image layout, as a tar stream or a directory.
//
// Layers are never kept as files in the store, so save streams each layer
// tar straight from its snapshot and tar-split metadata (checked against
// the diffID as it goes), and load unpacks each layer while reading it.
package imagearchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
)

// Format is an archive layout.
type Format string

const (
	// DockerArchive is what docker 25+ saves: an OCI image layout plus
	// docker's manifest.json and repositories, so old docker loads it and
	// OCI tools read it.
	DockerArchive Format = "docker-archive"
	// OCIArchive is the OCI image layout as a tar (skopeo's oci-archive:).
	OCIArchive Format = "oci-archive"
	// OCIDir is the OCI image layout as a directory (skopeo's oci:).
	OCIDir Format = "oci-dir"
)

// ParseFormat reads --format.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case DockerArchive, OCIArchive, OCIDir:
		return f, nil
	case "":
		return DockerArchive, nil
	}
	return "", fmt.Errorf("invalid --format %q: want docker-archive, oci-archive or oci-dir", s)
}

// Annotations docker and containerd put on index.json entries.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// dockerManifest is one entry of docker's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// saved is one image to write: its ID, config, the tags it is saved under
// and its layers.
type saved struct {
	id     digest.Digest
	config []byte
	tags   []reference.NamedTagged
	layers []savedLayer
	// manifest is the OCI manifest of the image as saved.
	manifest []byte
}

type savedLayer struct {
	chainID, diffID digest.Digest
	size            int64 // bytes of the uncompressed tar
}

// sink receives the files of an archive in order.
type sink interface {
	dir(name string) error
	file(name string, size int64, r io.Reader) error
}

// Save writes the images refs name (references or IDs) in format f: to w
// for the archive formats, into the directory dir for OCIDir. Each layer
// is written once, however many images share it: its exact tar, or with
// comp "gzip" or "zstd" that tar compressed.
func Save(ctx context.Context, s Store, refs []string, f Format, comp string, w io.Writer, dir string) error {
	if _, err := compression.NewWriter(io.Discard, comp); err != nil {
		return err
	}
	return s.Shared(ctx, func() error {
		imgs, err := collect(ctx, s, refs)
		if err != nil {
			return err
		}
		var sk sink
		if f == OCIDir {
			ds, err := newDirSink(dir)
			if err != nil {
				return err
			}
			sk = ds
		} else {
			ts := &tarSink{tw: tar.NewWriter(w)}
			defer ts.tw.Close()
			sk = ts
		}
		if err := write(ctx, s, imgs, f, comp, sk); err != nil {
			return err
		}
		if ts, ok := sk.(*tarSink); ok {
			return ts.tw.Close()
		}
		return nil
	})
}

// collect resolves refs to images, keeping the order of first mention and
// the tags they were named by.
func collect(ctx context.Context, s Store, refs []string) ([]*saved, error) {
	var out []*saved
	byID := map[digest.Digest]*saved{}
	var all []image.Image
	for _, ref := range refs {
		// A repository without a tag saves every tag it has, as docker does.
		if n, err := reference.ParseNormalizedNamed(ref); err == nil && reference.IsNameOnly(n) {
			if all == nil {
				if all, err = s.Images().List(ctx); err != nil {
					return nil, err
				}
			}
			var tags []string
			for _, img := range all {
				for _, name := range img.Names {
					if t, err := image.ParseTagged(name); err == nil && t.Name() == n.Name() {
						tags = append(tags, t.String())
					}
				}
			}
			if len(tags) > 0 {
				sort.Strings(tags)
				more, err := collect(ctx, s, tags)
				if err != nil {
					return nil, err
				}
				for _, m := range more {
					if have := byID[m.id]; have != nil {
						for _, t := range m.tags {
							have.tags = appendTag(have.tags, t)
						}
						continue
					}
					byID[m.id] = m
					out = append(out, m)
				}
				continue
			}
		}
		img, err := s.Images().Get(ctx, ref)
		if err != nil {
			return nil, err
		}
		sv := byID[img.ID]
		if sv == nil {
			sv = &saved{id: img.ID}
			if sv.config, err = s.Content().ReadAll(ctx, img.ID); err != nil {
				return nil, fmt.Errorf("image %s config: %w", image.ShortID(img.ID), err)
			}
			diffIDs := img.Config.RootFS.DiffIDs
			for i, c := range image.ChainIDs(diffIDs) {
				l, err := s.Layers().Get(ctx, c)
				if err != nil {
					return nil, fmt.Errorf("image %s: %w", image.ShortID(img.ID), err)
				}
				sv.layers = append(sv.layers, savedLayer{chainID: c, diffID: diffIDs[i], size: l.TarSize})
			}
			byID[img.ID] = sv
			out = append(out, sv)
		}
		// A name, not an ID, is saved as a tag (docker: `save busybox` is busybox:latest).
		if id, err := s.Images().Resolve(ctx, ref); err == nil && id == img.ID && !isIDRef(ref, img.ID) {
			if n, err := image.ParseNamed(ref); err == nil {
				if t, ok := n.(reference.NamedTagged); ok {
					sv.tags = appendTag(sv.tags, t)
				}
			}
		}
	}
	return out, nil
}

func isIDRef(ref string, id digest.Digest) bool {
	hex := ref
	if len(ref) > 7 && ref[:7] == "sha256:" {
		hex = ref[7:]
	}
	return len(hex) > 0 && len(hex) <= 64 && id.Encoded()[:len(hex)] == hex
}

func appendTag(tags []reference.NamedTagged, t reference.NamedTagged) []reference.NamedTagged {
	for _, have := range tags {
		if have.String() == t.String() {
			return tags
		}
	}
	return append(tags, t)
}

func blobName(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// write lays the images out: blobs first (layers, configs, manifests),
// then the indexes that name them, as docker does.
func write(ctx context.Context, s Store, imgs []*saved, f Format, comp string, sk sink) error {
	if err := sk.file(ocispec.ImageLayoutFile, -1, jsonReader(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})); err != nil {
		return err
	}
	for _, d := range []string{"blobs", "blobs/sha256"} {
		if err := sk.dir(d); err != nil {
			return err
		}
	}
	written := map[digest.Digest]bool{}
	blobs := map[digest.Digest]ocispec.Descriptor{} // diffID -> layer blob
	for _, img := range imgs {
		for _, l := range img.layers {
			if _, ok := blobs[l.diffID]; ok {
				continue
			}
			desc, err := writeLayer(ctx, s, sk, l, comp)
			if err != nil {
				return err
			}
			blobs[l.diffID] = desc
			written[desc.Digest] = true
		}
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	var dms []dockerManifest
	repos := map[string]map[string]string{}
	for _, img := range imgs {
		if !written[img.id] {
			written[img.id] = true
			if err := sk.file(blobName(img.id), int64(len(img.config)), bytesReader(img.config)); err != nil {
				return err
			}
		}
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.id, Size: int64(len(img.config))},
			Layers:    []ocispec.Descriptor{},
		}
		dm := dockerManifest{Config: blobName(img.id), RepoTags: []string{}}
		for _, l := range img.layers {
			m.Layers = append(m.Layers, blobs[l.diffID])
			dm.Layers = append(dm.Layers, blobName(blobs[l.diffID].Digest))
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		img.manifest = mb
		md := digest.FromBytes(mb)
		if !written[md] {
			written[md] = true
			if err := sk.file(blobName(md), int64(len(mb)), bytesReader(mb)); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}
		if len(img.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range img.tags {
			d := desc
			d.Annotations = map[string]string{annotationImageName: t.String(), annotationRefName: t.Tag()}
			if f == OCIArchive || f == OCIDir {
				// skopeo and podman look a reference up by this annotation alone.
				d.Annotations[annotationRefName] = reference.FamiliarString(t)
			}
			index.Manifests = append(index.Manifests, d)
			fam := reference.FamiliarName(t)
			dm.RepoTags = append(dm.RepoTags, reference.FamiliarString(t))
			if repos[fam] == nil {
				repos[fam] = map[string]string{}
			}
			if n := len(img.layers); n > 0 {
				repos[fam][t.Tag()] = blobs[img.layers[n-1].diffID].Digest.Encoded()
			}
		}
		dms = append(dms, dm)
	}
	if err := sk.file(ocispec.ImageIndexFile, -1, jsonReader(index)); err != nil {
		return err
	}
	if f != DockerArchive {
		return nil
	}
	if err := sk.file("manifest.json", -1, jsonReader(dms)); err != nil {
		return err
	}
	if len(repos) > 0 {
		return sk.file("repositories", -1, jsonReader(repos))
	}
	return nil
}

// writeLayer streams the exact tar of a layer from its snapshot. A
// compressed layer's size must be known before the archive can hold it,
// so it is compressed into an unlinked temp file in the store first (one
// layer at a time, never the whole archive).
func writeLayer(ctx context.Context, s Store, sk sink, l savedLayer, comp string) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.diffID, Size: l.size}
	rc, err := s.Layers().Tar(ctx, l.chainID)
	if err != nil {
		return desc, err
	}
	defer rc.Close()
	var src io.Reader = rc
	if comp == "gzip" || comp == "zstd" {
		f, err := os.CreateTemp(s.Root(), ".save-")
		if err != nil {
			return desc, err
		}
		os.Remove(f.Name())
		defer f.Close()
		h := digest.SHA256.Digester()
		zw, err := compression.NewWriter(io.MultiWriter(f, h.Hash()), comp)
		if err != nil {
			return desc, err
		}
		if _, err := io.Copy(zw, rc); err != nil {
			return desc, fmt.Errorf("layer %s: %w", image.ShortID(l.diffID), err)
		}
		if err := zw.Close(); err != nil {
			return desc, err
		}
		size, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return desc, err
		}
		desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: h.Digest(), Size: size}
		if comp == "zstd" {
			desc.MediaType = ocispec.MediaTypeImageLayerZstd
		}
		src = io.NewSectionReader(f, 0, size)
	}
	if err := sk.file(blobName(desc.Digest), desc.Size, src); err != nil {
		return desc, fmt.Errorf("layer %s: %w", image.ShortID(l.diffID), err)
	}
	return desc, nil
}

// jsonReader is a reader of v's JSON; a sink learns its size by reading it.
func jsonReader(v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		return errReader{err}
	}
	return bytesReader(b)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// archiveTime is the modification time of every archive member: saving
// the same images twice gives the same bytes.
var archiveTime = time.Unix(0, 0).UTC()

type tarSink struct{ tw *tar.Writer }

const copyBuf = 1 << 20

func (t *tarSink) dir(name string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: archiveTime, Format: tar.FormatPAX})
}

func (t *tarSink) file(name string, size int64, r io.Reader) error {
	if size < 0 {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		size, r = int64(len(b)), bytesReader(b)
	}
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: archiveTime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	// A layer's tar comes through here: in 1 MiB writes rather than
	// io.Copy's 32 KiB, a tenth of a save's system calls went.
	n, err := io.CopyBuffer(t.tw, r, make([]byte, copyBuf))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: %d bytes, expected %d", name, n, size)
	}
	return nil
}

// dirSink writes an OCI layout directory. Blobs go to temp files renamed
// into place, so a failed save leaves no truncated blob under its digest.
type dirSink struct{ root string }

func newDirSink(dir string) (*dirSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	// Only an empty directory or an existing OCI layout may be written into.
	if len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err != nil {
			return nil, fmt.Errorf("save: %s is not empty and not an OCI layout", dir)
		}
	}
	return &dirSink{root: dir}, nil
}

func (d *dirSink) dir(name string) error {
	return os.MkdirAll(filepath.Join(d.root, filepath.FromSlash(name)), 0o755)
}

func (d *dirSink) file(name string, size int64, r io.Reader) (err error) {
	dst := filepath.Join(d.root, filepath.FromSlash(name))
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, r)
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%s: %d bytes, expected %d", name, n, size)
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}
