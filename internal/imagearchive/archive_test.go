package imagearchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
	"github.com/strata-project/strata/internal/testutil/requires"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	requires.Root(t)
	s, err := store.Open(context.Background(), store.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func makeImage(t *testing.T, s *store.Store, ref string, cmd string, layers ...[]byte) digest.Digest {
	return rt.StoreImage(t, s, []string{cmd}, layers, ref)
}

var (
	baseTar = func(t *testing.T) []byte {
		return rt.Tar(t, rt.File{Name: "etc/"}, rt.File{Name: "etc/os", Body: "strata\n"}, rt.File{Name: "etc/gone", Body: "x"})
	}
	topTar = func(t *testing.T, body string) []byte {
		return rt.Tar(t, rt.File{Name: "etc/"}, rt.File{Name: "etc/.wh.gone"}, rt.File{Name: "app", Body: body})
	}
)

// members lists a tar's member names and the bytes of each file.
func members(t *testing.T, b []byte) (names []string, files map[string][]byte) {
	t.Helper()
	files = map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
}

func imageCount(t *testing.T, s *store.Store) int {
	t.Helper()
	imgs, err := s.Images().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(imgs)
}

func layerCount(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	if err := s.Layers().Walk(context.Background(), func(layer.Layer) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openStore(t)
	idA := makeImage(t, src, "ship/a:1", "a", baseTar(t), topTar(t, "a\n"))
	idB := makeImage(t, src, "ship/b:2", "b", baseTar(t), topTar(t, "b\n"))

	var buf bytes.Buffer
	if err := Save(ctx, src, []string{"ship/a:1", "ship/b:2", idA.String()}, DockerArchive, "", &buf, ""); err != nil {
		t.Fatal(err)
	}
	names, files := members(t, buf.Bytes())
	for _, want := range []string{"oci-layout", "index.json", "manifest.json", "repositories"} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s: %v", want, names)
		}
	}
	// The shared base layer is stored once: 3 layers, 2 configs, 2 manifests.
	blobs := 0
	for _, n := range names {
		if strings.HasPrefix(n, "blobs/sha256/") && len(n) > len("blobs/sha256/") {
			blobs++
			if got := digest.FromBytes(files[n]).Encoded(); !strings.HasSuffix(n, got) {
				t.Errorf("blob %s has digest %s", n, got)
			}
		}
	}
	if blobs != 7 {
		t.Errorf("%d blobs, want 7 (3 layers once each, 2 configs, 2 manifests): %v", blobs, names)
	}
	var dms []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &dms); err != nil {
		t.Fatal(err)
	}
	if len(dms) != 2 || !slices.Equal(dms[0].RepoTags, []string{"ship/a:1"}) || dms[0].Config != "blobs/sha256/"+idA.Encoded() {
		t.Errorf("manifest.json: %+v", dms)
	}
	// A repository without a tag is every tag it has.
	src.Images().Tag(ctx, idB, mustNamed(t, "ship/a:other"))
	var repo bytes.Buffer
	if err := Save(ctx, src, []string{"ship/a"}, DockerArchive, "", &repo, ""); err != nil {
		t.Fatal(err)
	}
	_, rf := members(t, repo.Bytes())
	var rdms []dockerManifest
	json.Unmarshal(rf["manifest.json"], &rdms)
	if len(rdms) != 2 || !slices.Equal(rdms[0].RepoTags, []string{"ship/a:1"}) || !slices.Equal(rdms[1].RepoTags, []string{"ship/a:other"}) {
		t.Errorf("save of a repository: %+v", rdms)
	}
	// Saving again gives the same bytes.
	var again bytes.Buffer
	if err := Save(ctx, src, []string{"ship/a:1", "ship/b:2", idA.String()}, DockerArchive, "", &again, ""); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two saves of the same images differ")
	}

	dst := openStore(t)
	var done []digest.Digest
	loaded, err := Load(ctx, dst, bytes.NewReader(buf.Bytes()), "", func(e LoadEvent) {
		if e.Done && e.Current == e.Total && e.Total > 0 {
			done = append(done, e.DiffID)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 4 {
		t.Errorf("progress reported %d layers done, want 4 (2 images of 2 layers)", len(done))
	}
	if len(loaded) != 2 || loaded[0].ID != idA || loaded[1].ID != idB || loaded[0].Tags[0].String() != "docker.io/ship/a:1" {
		t.Fatalf("loaded %+v", loaded)
	}
	for _, ref := range []string{"ship/a:1", "ship/b:2"} {
		if _, err := dst.Images().Get(ctx, ref); err != nil {
			t.Error(err)
		}
	}
	if n := layerCount(t, dst); n != 3 {
		t.Errorf("%d layers after load, want 3", n)
	}
	// The loaded layers reproduce the very tars that were saved.
	img, _ := dst.Images().Get(ctx, "ship/b:2")
	rc, err := dst.Layers().Tar(ctx, image.ChainID(img.Config.RootFS.DiffIDs))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, topTar(t, "b\n")) {
		t.Errorf("layer tar after load differs (%v)", err)
	}

	// Loading again skips the layers it has (after checking them) and keeps IDs.
	loaded, err = Load(ctx, dst, bytes.NewReader(buf.Bytes()), "", nil)
	if err != nil || len(loaded) != 2 || layerCount(t, dst) != 3 {
		t.Fatalf("second load: %v %+v, %d layers", err, loaded, layerCount(t, dst))
	}
}

func TestLoadFormats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openStore(t)
	id := makeImage(t, src, "ship/f:1", "f", baseTar(t), topTar(t, "f\n"))
	save := func(f Format) []byte {
		var buf bytes.Buffer
		if err := Save(ctx, src, []string{"ship/f:1"}, f, "", &buf, ""); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	docker, ociArchive := save(DockerArchive), save(OCIArchive)
	// Compressed layers: each layer blob is the tar compressed, named by that digest.
	compressed := map[string][]byte{}
	for _, comp := range []string{"gzip", "zstd"} {
		var buf bytes.Buffer
		if err := Save(ctx, src, []string{"ship/f:1"}, DockerArchive, comp, &buf, ""); err != nil {
			t.Fatal(err)
		}
		_, files := members(t, buf.Bytes())
		var dms []dockerManifest
		json.Unmarshal(files["manifest.json"], &dms)
		if layer := files[dms[0].Layers[1]]; compression.Detect(layer).String() != comp {
			t.Errorf("--compression %s: the layer is %s", comp, compression.Detect(layer))
		}
		compressed[comp] = buf.Bytes()
	}
	if names, _ := members(t, ociArchive); slices.Contains(names, "manifest.json") {
		t.Error("oci-archive has docker's manifest.json")
	}
	ociDir := filepath.Join(t.TempDir(), "layout")
	if err := Save(ctx, src, []string{"ship/f:1"}, OCIDir, "", nil, ociDir); err != nil {
		t.Fatal(err)
	}
	// ggcr reads the layout strata wrote.
	lp, err := layout.FromPath(ociDir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[ocispec.AnnotationRefName] != "ship/f:1" {
		t.Errorf("oci-dir index: %+v", im.Manifests)
	}

	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	zs := func(b []byte) []byte {
		var out bytes.Buffer
		zw, _ := zstd.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	// ggcr's tarball is the pre-25 docker layout with gzip'd layers.
	ggcrImg := rt.Image(t, "amd64", false, []string{"g"}, rt.Layer(t, baseTar(t), rt.Gzip), rt.Layer(t, topTar(t, "g\n"), rt.Zstd))
	tag, _ := name.NewTag("ship/g:1")
	var old bytes.Buffer
	if err := tarball.Write(tag, ggcrImg, &old); err != nil {
		t.Fatal(err)
	}
	ggcrID, _ := ggcrImg.ConfigName()
	ggcrDir := filepath.Join(t.TempDir(), "ggcr-layout")
	if _, err := layout.Write(ggcrDir, empty.Index); err != nil {
		t.Fatal(err)
	}
	lp2, _ := layout.FromPath(ggcrDir)
	if err := lp2.AppendImage(ggcrImg); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		data   []byte
		path   string
		id     digest.Digest
		tagged string
	}{
		{"docker", docker, "", id, "ship/f:1"},
		{"docker gzip", gz(docker), "", id, "ship/f:1"},
		{"docker zstd", zs(docker), "", id, "ship/f:1"},
		{"oci-archive", ociArchive, "", id, "ship/f:1"},
		{"gzip layers", compressed["gzip"], "", id, "ship/f:1"},
		{"zstd layers", compressed["zstd"], "", id, "ship/f:1"},
		{"oci-dir", nil, ociDir, id, "ship/f:1"},
		{"old docker with compressed layers", old.Bytes(), "", digest.Digest(ggcrID.String()), "ship/g:1"},
		{"oci layout without names", nil, ggcrDir, digest.Digest(ggcrID.String()), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := openStore(t)
			path := tc.path
			var r io.Reader
			if tc.data != nil {
				// Half the cases from a file (read in place), half from a pipe.
				if len(tc.name)%2 == 0 {
					path = filepath.Join(t.TempDir(), "archive")
					os.WriteFile(path, tc.data, 0o644)
				} else {
					r = bytes.NewReader(tc.data)
				}
			}
			loaded, err := Load(ctx, dst, r, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].ID != tc.id {
				t.Fatalf("loaded %+v, want ID %s", loaded, tc.id)
			}
			if tc.tagged != "" {
				if got, err := dst.Images().Resolve(ctx, tc.tagged); err != nil || got != tc.id {
					t.Errorf("%s resolves to %s (%v)", tc.tagged, got, err)
				}
			} else if len(loaded[0].Tags) != 0 {
				t.Errorf("tags %v, want none", loaded[0].Tags)
			}
			if layerCount(t, dst) != 2 {
				t.Errorf("%d layers", layerCount(t, dst))
			}
		})
	}
}

// tarOf builds an archive from raw members, in order.
type member struct {
	name string
	typ  byte
	body []byte
	link string
}

func tarOf(t *testing.T, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Mode: 0o644, Size: int64(len(m.body)), Linkname: m.link}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.body)
	}
	tw.Close()
	return buf.Bytes()
}

func TestLoadHostileArchives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openStore(t)
	makeImage(t, src, "ship/h:1", "h", baseTar(t), topTar(t, "h\n"))
	var buf bytes.Buffer
	if err := Save(ctx, src, []string{"ship/h:1"}, DockerArchive, "", &buf, ""); err != nil {
		t.Fatal(err)
	}
	_, files := members(t, buf.Bytes())
	var dms []dockerManifest
	json.Unmarshal(files["manifest.json"], &dms)
	cfgName, base, top := dms[0].Config, dms[0].Layers[0], dms[0].Layers[1]
	manifest := func(cfg string, layers ...string) []byte {
		b, _ := json.Marshal([]dockerManifest{{Config: cfg, RepoTags: []string{"ship/evil:1"}, Layers: layers}})
		return b
	}
	good := []member{{name: cfgName, body: files[cfgName]}, {name: base, body: files[base]}, {name: top, body: files[top]}}
	with := func(extra ...member) []byte { return tarOf(t, append(slices.Clone(good), extra...)...) }
	// A config whose diffIDs are not those of the layers.
	var cfg ocispec.Image
	json.Unmarshal(files[cfgName], &cfg)
	cfg.RootFS.DiffIDs[1] = digest.FromString("not this layer")
	lyingCfg, _ := json.Marshal(cfg)
	lyingCfgName := "blobs/sha256/" + digest.FromBytes(lyingCfg).Encoded()
	// A layer whose bytes are not those of its name.
	tampered := slices.Clone(files[top])
	tampered[bytes.LastIndex(tampered, []byte("h\n"))] = 'H'

	cases := []struct {
		name string
		tar  []byte
		want string
	}{
		{"traversal", with(member{name: "../escape", body: []byte("x")}, member{name: "manifest.json", body: manifest(cfgName, base, top)}), "outside the archive"},
		{"absolute name", with(member{name: "/etc/evil", body: []byte("x")}, member{name: "manifest.json", body: manifest(cfgName, base, top)}), "absolute name"},
		{"symlink out", with(member{name: "l/layer.tar", typ: tar.TypeSymlink, link: "../../../etc/passwd"}, member{name: "manifest.json", body: manifest(cfgName, base, "l/layer.tar")}), "symlink out of the archive"},
		{"absolute symlink", with(member{name: "l/layer.tar", typ: tar.TypeSymlink, link: "/etc/passwd"}, member{name: "manifest.json", body: manifest(cfgName, base, "l/layer.tar")}), "absolute path"},
		{"manifest names a file outside", with(member{name: "manifest.json", body: manifest(cfgName, base, "../../etc/passwd")}), "outside the archive"},
		{"manifest names a missing file", with(member{name: "manifest.json", body: manifest(cfgName, base, "nothere/layer.tar")}), "not in the archive"},
		{"lying layer digest", tarOf(t, member{name: cfgName, body: files[cfgName]}, member{name: base, body: files[base]}, member{name: top, body: tampered}, member{name: "manifest.json", body: manifest(cfgName, base, top)}), "content has digest"},
		{"lying diffID", with(member{name: lyingCfgName, body: lyingCfg}, member{name: "manifest.json", body: manifest(lyingCfgName, base, top)}), "the config says"},
		{"config not matching its name", with(member{name: "blobs/sha256/" + strings.Repeat("a", 64), body: files[cfgName]}, member{name: "manifest.json", body: manifest("blobs/sha256/"+strings.Repeat("a", 64), base, top)}), "not the sha256:aaaa"},
		{"layer count mismatch", with(member{name: "manifest.json", body: manifest(cfgName, base)}), "names 1 layers"},
		{"duplicate entry", with(member{name: base, body: files[base]}, member{name: "manifest.json", body: manifest(cfgName, base, top)}), "duplicate entry"},
		{"device entry", with(member{name: "dev", typ: tar.TypeChar}, member{name: "manifest.json", body: manifest(cfgName, base, top)}), "only files"},
		{"not an archive", []byte("hello"), "read tar"},
		{"no manifest", tarOf(t, good...), "no manifest.json or index.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := openStore(t)
			_, err := Load(ctx, dst, bytes.NewReader(tc.tar), "", nil)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
			if n, l := imageCount(t, dst), layerCount(t, dst); n != 0 || l != 0 {
				t.Errorf("store keeps %d images, %d layers after a failed load", n, l)
			}
			dst.Snapshots().Walk(ctx, func(info snapshot.Info) error {
				t.Errorf("snapshot %s (%s) left after a failed load", info.Key, info.Kind)
				return nil
			})
			if _, err := os.Stat("/etc/evil"); err == nil {
				t.Fatal("/etc/evil was written")
			}
		})
	}

	t.Run("huge claimed size", func(t *testing.T) {
		// A header claiming 10 GB in a file that has a few KB.
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: 10 << 30})
		tw.Write([]byte("[]"))
		p := filepath.Join(t.TempDir(), "huge.tar")
		os.WriteFile(p, b.Bytes(), 0o644)
		dst := openStore(t)
		_, err := Load(ctx, dst, nil, p, nil)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		if imageCount(t, dst) != 0 {
			t.Error("image recorded")
		}
	})
}

func mustNamed(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := image.ParseNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Layers the store has already are not unpacked again, but the archive's
// copies are still checked: a tampered one fails the load, and the store
// keeps what it had.
func TestLoadChecksLayersTheStoreHas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openStore(t)
	makeImage(t, src, "ship/k:1", "k", baseTar(t), topTar(t, "k\n"))
	var buf bytes.Buffer
	if err := Save(ctx, src, []string{"ship/k:1"}, DockerArchive, "", &buf, ""); err != nil {
		t.Fatal(err)
	}
	_, files := members(t, buf.Bytes())
	var dms []dockerManifest
	json.Unmarshal(files["manifest.json"], &dms)
	cfgName, base, top := dms[0].Config, dms[0].Layers[0], dms[0].Layers[1]
	tampered := slices.Clone(files[top])
	tampered[bytes.LastIndex(tampered, []byte("k\n"))] = 'K'
	dms[0].RepoTags = []string{"ship/evil:1"}
	manifest, _ := json.Marshal(dms)
	bad := tarOf(t, member{name: cfgName, body: files[cfgName]}, member{name: base, body: files[base]}, member{name: top, body: tampered}, member{name: "manifest.json", body: manifest})

	dst := openStore(t)
	if _, err := Load(ctx, dst, bytes.NewReader(buf.Bytes()), "", nil); err != nil {
		t.Fatal(err)
	}
	_, err := Load(ctx, dst, bytes.NewReader(bad), "", nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "content has digest") || !strings.Contains(err.Error(), top) {
		t.Fatalf("load of a tampered copy of a layer the store has: %v", err)
	}
	if n, l := imageCount(t, dst), layerCount(t, dst); n != 1 || l != 2 {
		t.Errorf("store has %d images, %d layers after the failed load, want 1 and 2", n, l)
	}
	if _, err := dst.Images().Resolve(ctx, "ship/evil:1"); err == nil {
		t.Error("the failed load's tag exists")
	}
}
