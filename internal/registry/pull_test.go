package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
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

// recorder keeps the events of one pull.
type recorder struct{ events []Event }

func (r *recorder) add(e Event) { r.events = append(r.events, e) }

func (r *recorder) kinds(k EventKind) []Event {
	var out []Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func layerCount(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	if err := s.Layers().Walk(context.Background(), func(layer.Layer) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// threeLayers is a gzip base, a gzip layer that whites out a base file,
// and a zstd layer: the formats a pull must take.
func threeLayers(t *testing.T) v1.Image {
	base := rt.Layer(t, rt.Tar(t, rt.File{Name: "etc/"}, rt.File{Name: "etc/gone", Body: "x"}, rt.File{Name: "etc/kept", Body: "kept\n"}), rt.Gzip)
	wh := rt.Layer(t, rt.Tar(t, rt.File{Name: "etc/"}, rt.File{Name: "etc/.wh.gone"}, rt.File{Name: "hello", Body: "hello\n"}), rt.Gzip)
	z := rt.Layer(t, rt.Tar(t, rt.File{Name: "zstd.txt", Body: "from zstd\n"}), rt.Zstd)
	return rt.Image(t, "amd64", true, []string{"/bin/sh"}, base, wh, z)
}

func TestPullStoresImageAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	src := threeLayers(t)
	mdigest := reg.Push(t, "test/bb:v1", src)

	var rec recorder
	img, err := Pull(ctx, s, reg.Ref("test/bb:v1"), Options{Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range img.Config.RootFS.DiffIDs {
		got = append(got, d.String())
	}
	if want := rt.DiffIDs(t, src); !slices.Equal(got, want) {
		t.Fatalf("diffIDs %v, want %v", got, want)
	}
	cfgDigest, _ := src.ConfigName()
	if img.ID.String() != cfgDigest.String() {
		t.Errorf("image ID %s, want the config digest %s", img.ID, cfgDigest)
	}
	if img.Manifest.String() != mdigest.String() {
		t.Errorf("manifest %s, want %s", img.Manifest, mdigest)
	}
	wantNames := []string{reg.Ref("test/bb:v1"), reg.Ref("test/bb") + "@" + mdigest.String()}
	if !slices.Equal(img.Names, wantNames) {
		t.Errorf("names %v, want %v", img.Names, wantNames)
	}
	if _, err := s.Content().Info(ctx, digest.Digest(mdigest.String())); err != nil {
		t.Errorf("manifest blob not in the content store: %v", err)
	}
	if len(rec.events) == 0 || rec.events[0].Kind != Resolved || rec.events[0].Digest.String() != mdigest.String() {
		t.Fatalf("first event %+v, want Resolved %s", rec.events[0], mdigest)
	}
	if n := len(rec.kinds(LayerDone)); n != 3 {
		t.Errorf("%d layers done, want 3", n)
	}
	if st := rec.kinds(Stored); len(st) != 1 || st[0].UpToDate {
		t.Errorf("stored events %+v, want one not up to date", st)
	}
	if n := layerCount(t, s); n != 3 {
		t.Errorf("%d layers in the store, want 3", n)
	}

	// The whiteout removed the base file from the stack; the zstd layer is there.
	top := img.Config.RootFS.DiffIDs
	chain := image.ChainIDs(top)
	dir, err := s.Snapshots().Dir(ctx, string(chain[2]))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dir + "/zstd.txt"); err != nil || string(b) != "from zstd\n" {
		t.Errorf("zstd layer content %q, %v", b, err)
	}

	// Again: nothing is fetched, nothing new is made.
	var again recorder
	img2, err := Pull(ctx, s, reg.Ref("test/bb:v1"), Options{Progress: again.add})
	if err != nil {
		t.Fatal(err)
	}
	if img2.ID != img.ID {
		t.Errorf("second pull gave %s, want %s", img2.ID, img.ID)
	}
	if n := len(again.kinds(LayerDownloading)); n != 0 {
		t.Errorf("second pull downloaded (%d events)", n)
	}
	if n := len(again.kinds(LayerExists)); n != 3 {
		t.Errorf("second pull: %d layers exist, want 3", n)
	}
	if st := again.kinds(Stored); len(st) != 1 || !st[0].UpToDate {
		t.Errorf("second pull stored events %+v, want up to date", st)
	}
	imgs, _ := s.Images().List(ctx)
	if len(imgs) != 1 || layerCount(t, s) != 3 {
		t.Errorf("after the second pull: %d images, %d layers; want 1, 3", len(imgs), layerCount(t, s))
	}
}

func TestPullSharesBaseLayer(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	base := rt.Layer(t, rt.Tar(t, rt.File{Name: "base", Body: "base\n"}), rt.Gzip)
	one := rt.Image(t, "amd64", false, nil, base, rt.Layer(t, rt.Tar(t, rt.File{Name: "one", Body: "1"}), rt.Gzip))
	two := rt.Image(t, "amd64", true, nil, base, rt.Layer(t, rt.Tar(t, rt.File{Name: "two", Body: "2"}), rt.None))
	reg.Push(t, "test/one:latest", one)
	reg.Push(t, "test/two:latest", two)
	if _, err := Pull(ctx, s, reg.Ref("test/one"), Options{}); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if _, err := Pull(ctx, s, reg.Ref("test/two"), Options{Progress: rec.add}); err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := base.Digest()
	ex := rec.kinds(LayerExists)
	if len(ex) != 1 || ex[0].Layer.String() != baseDigest.String() {
		t.Errorf("exists events %+v, want the base %s", ex, baseDigest)
	}
	if n := len(rec.kinds(LayerDone)); n != 1 {
		t.Errorf("%d layers pulled, want 1 (the uncompressed one)", n)
	}
	if n := layerCount(t, s); n != 3 {
		t.Errorf("%d layers in the store, want 3 (base once)", n)
	}
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	mk := func(arch string) v1.Image {
		return rt.Image(t, arch, true, nil, rt.Layer(t, rt.Tar(t, rt.File{Name: "arch", Body: arch}), rt.Gzip))
	}
	amd, arm := mk("amd64"), mk("arm64")
	idxDigest := reg.PushIndex(t, "test/multi:1", rt.Index(t, map[string]v1.Image{"amd64": amd, "arm64": arm}))

	img, err := Pull(ctx, s, reg.Ref("test/multi:1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Architecture != "amd64" {
		t.Errorf("default pull got %s", img.Config.Architecture)
	}
	if img.Manifest.String() != idxDigest.String() {
		t.Errorf("recorded digest %s, want the index %s", img.Manifest, idxDigest)
	}
	if _, err := s.Content().Info(ctx, digest.Digest(idxDigest.String())); err != nil {
		t.Errorf("index blob not stored: %v", err)
	}
	armImg, err := Pull(ctx, s, reg.Ref("test/multi:1"), Options{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if armImg.Config.Architecture != "arm64" {
		t.Errorf("--platform linux/arm64 got %s", armImg.Config.Architecture)
	}
	_, err = Pull(ctx, s, reg.Ref("test/multi:1"), Options{Platform: "linux/s390x"})
	if err == nil || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
		t.Errorf("pull for a missing platform: %v", err)
	}
}

func TestPullCorruptBlobLeavesNoImage(t *testing.T) {
	// Each layer in turn: gzip base, gzip on a parent, zstd on top.
	for i := range 3 {
		t.Run(fmt.Sprint("layer", i), func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			reg := rt.Start(t)
			src := threeLayers(t)
			reg.Push(t, "test/bad:v1", src)
			layers, _ := src.Layers()
			d, _ := layers[i].Digest()
			reg.Corrupt(t, d)

			_, err := Pull(ctx, s, reg.Ref("test/bad:v1"), Options{})
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("pull of a corrupted blob: %v, want a digest mismatch", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), d.String()) {
				t.Errorf("error %q does not name the blob %s", err, d)
			}
			imgs, _ := s.Images().List(ctx)
			if len(imgs) != 0 {
				t.Errorf("%d images after a failed pull", len(imgs))
			}
			if _, err := s.Images().Resolve(ctx, reg.Ref("test/bad:v1")); err == nil {
				t.Error("the tag exists after a failed pull")
			}
			// Verified layers below may stay (garbage for GC); the bad one
			// and those above it must not.
			if n := layerCount(t, s); n > i {
				t.Errorf("%d layers after the failure, want at most %d", n, i)
			}
			// Nor anything half made.
			s.Snapshots().Walk(ctx, func(info snapshot.Info) error {
				if info.Kind == snapshot.KindActive {
					t.Errorf("snapshot %s left active", info.Key)
				}
				return nil
			})
		})
	}
}

func TestPullUnknownTag(t *testing.T) {
	s := openStore(t)
	reg := rt.Start(t)
	reg.Push(t, "test/x:v1", rt.Image(t, "amd64", false, nil))
	_, err := Pull(context.Background(), s, reg.Ref("test/x:nope"), Options{})
	if !errors.Is(err, ErrManifestUnknown) {
		t.Fatalf("err = %v, want manifest unknown", err)
	}
	if want := "manifest for " + reg.Ref("test/x:nope") + " not found"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start %q", err, want)
	}
}

func TestPullRefusesDiffIDMismatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	src := threeLayers(t)
	cf, err := src.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	// The config claims the second layer unpacks to the first one's diffID.
	cf.RootFS.DiffIDs[1] = cf.RootFS.DiffIDs[0]
	lying, err := mutate.ConfigFile(src, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "test/lie:v1", lying)
	_, err = Pull(ctx, s, reg.Ref("test/lie:v1"), Options{})
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "the config says") {
		t.Fatalf("pull: %v, want a diffID mismatch", err)
	}
	if imgs, _ := s.Images().List(ctx); len(imgs) != 0 {
		t.Errorf("%d images after a failed pull", len(imgs))
	}
}

func TestPullByDigestNamesOnlyTheDigest(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	img := rt.Image(t, "amd64", false, nil, rt.Layer(t, rt.Tar(t, rt.File{Name: "f", Body: "f"}), rt.Gzip))
	d := reg.Push(t, "test/d:v1", img)
	ref := reg.Ref("test/d") + "@" + d.String()
	got, err := Pull(ctx, s, ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, []string{ref}) {
		t.Errorf("names %v, want only %s", got.Names, ref)
	}
	if _, err := s.Images().Resolve(ctx, reg.Ref("test/d:v1")); err == nil {
		t.Error("a digest pull created a tag")
	}
}
