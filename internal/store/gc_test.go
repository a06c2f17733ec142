package store

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/strata-project/strata/internal/image"
)

// oneFileTar is a tar holding one regular file.
func oneFileTar(name, content string) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	return &buf
}

func importOne(t *testing.T, s *Store, name, content string) image.Image {
	t.Helper()
	buf := oneFileTar("f", content)
	ref, err := image.ParseTagged(name)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Import(context.Background(), buf, ImportOptions{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.images.Get(context.Background(), id.String())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// An image held by a live lease survives every removal; once the lease is
// released the same prune removes it and its layer.
func TestLeasedImagesAreRoots(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	img := importOne(t, s, "leased:1", "x")
	l, err := s.NewLease(ctx, "build")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Hold(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.RemoveImage(ctx, img.ID.String(), false, true)
	if err == nil || !strings.Contains(err.Error(), "in use by a running build") {
		t.Fatalf("rmi by ID of a leased image: %v", err)
	}
	// By name, the name goes and the image stays for the build.
	res, err := s.RemoveImage(ctx, "leased:1", false, true)
	if err != nil || len(res.Untagged) != 1 || len(res.Deleted) != 0 {
		t.Fatalf("rmi by name of a leased image: %+v, %v", res, err)
	}
	all := PruneOptions{Images: func(image.Image) bool { return true }, Untag: true}
	rep, err := s.Prune(ctx, all)
	if err != nil || len(rep.Deleted) != 0 || len(rep.Layers) != 0 {
		t.Fatalf("prune removed leased things: %+v, %v", rep, err)
	}
	l.Release()
	rep, err = s.Prune(ctx, all)
	if err != nil || len(rep.Deleted) != 1 || len(rep.Layers) != 1 || rep.Reclaimed != 1 {
		t.Fatalf("prune after release: %+v, %v", rep, err)
	}
	// A lease cannot take an image that is gone.
	l2, _ := s.NewLease(ctx, "pull")
	defer l2.Release()
	if err := l2.Hold(ctx, img.ID); !IsNoSuchImage(err) {
		t.Fatalf("Hold of a removed image: %v", err)
	}
}

// Roots from a source (the CLI's containers) keep images from prune -a.
func TestRootSourcesKeepImages(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	used := importOne(t, s, "used:1", "u")
	importOne(t, s, "free:1", "f")
	s.AddRoots(func(context.Context) (map[digest.Digest]Root, error) {
		return map[digest.Digest]Root{used.ID: {Kind: RootContainer, What: "box"}}, nil
	})
	rep, err := s.Prune(ctx, PruneOptions{Images: func(image.Image) bool { return true }, Untag: true})
	if err != nil || len(rep.Deleted) != 1 || len(rep.Untagged) != 1 || rep.Untagged[0] != "free:1" {
		t.Fatalf("prune -a: %+v, %v", rep, err)
	}
	if _, err := s.images.Get(ctx, "used:1"); err != nil {
		t.Fatalf("image of a container pruned: %v", err)
	}
	if _, err := s.RemoveImage(ctx, "used:1", false, true); err == nil || !strings.Contains(err.Error(), "container box is using") {
		t.Fatalf("rmi of a container's image: %v", err)
	}
}

// A lease's layers stay through prune while no image names them (a pull
// stacking on layers already here); released, the prune takes them.
func TestLeasedLayersAreKept(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	img := importOne(t, s, "base:1", "y")
	l, err := s.NewLease(ctx, "pull")
	if err != nil {
		t.Fatal(err)
	}
	chains := image.ChainIDs(img.Config.RootFS.DiffIDs)
	if err := l.HoldLayers(ctx, chains); err != nil {
		t.Fatal(err)
	}
	all := PruneOptions{Images: func(image.Image) bool { return true }, Untag: true}
	rep, err := s.Prune(ctx, all)
	if err != nil || len(rep.Deleted) != 1 || len(rep.Layers) != 0 {
		t.Fatalf("prune with the layer leased: %+v, %v", rep, err)
	}
	if _, err := s.layers.Get(ctx, chains[0]); err != nil {
		t.Fatalf("leased layer removed: %v", err)
	}
	l.Release()
	rep, err = s.Prune(ctx, all)
	if err != nil || len(rep.Layers) != 1 {
		t.Fatalf("prune after release: %+v, %v", rep, err)
	}
}

// An import holds no store lock while it reads its tar: a prune in the
// middle runs at once, and the import still makes its image.
func TestImportHoldsNoLockWhileReading(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	buf := oneFileTar("big", strings.Repeat("z", 1<<20))
	pr, pw := io.Pipe()
	type result struct {
		id  digest.Digest
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := s.Import(ctx, pr, ImportOptions{Source: "-"})
		done <- result{id, err}
	}()
	half := buf.Len() / 2
	// The write returns once Import has read it: the import is mid-layer.
	if _, err := pw.Write(buf.Bytes()[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, PruneOptions{Images: func(image.Image) bool { return true }, Untag: true}); err != nil {
		t.Fatalf("prune during an import: %v", err)
	}
	pw.Write(buf.Bytes()[half:])
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("import raced by a prune: %v", r.err)
	}
	if _, err := s.images.Get(ctx, r.id.String()); err != nil {
		t.Fatal(err)
	}
}

type volumeList struct {
	vols    []VolumeCandidate
	removed []string
}

func (l *volumeList) Candidates() ([]VolumeCandidate, error) { return l.vols, nil }
func (l *volumeList) Remove(name string) (int64, error) {
	l.removed = append(l.removed, name)
	return 10, nil
}

// The deletion owner's volume rule: a used volume stays; named ones go
// only with All; Match filters.
func TestPruneVolumesRule(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	users := func(name string) ([]string, error) {
		if name == "used" {
			return []string{"c1"}, nil
		}
		return nil, nil
	}
	vols := []VolumeCandidate{{Name: "anon", Anonymous: true}, {Name: "named"}, {Name: "used", Anonymous: true}, {Name: "other"}}
	for _, tc := range []struct {
		o    VolumePruneOptions
		want string
	}{
		{VolumePruneOptions{Users: users}, "anon"},
		{VolumePruneOptions{All: true, Users: users}, "anon named other"},
		{VolumePruneOptions{All: true, Users: users, Match: func(n string) bool { return n != "other" }}, "anon named"},
	} {
		set := &volumeList{vols: vols}
		removed, freed, err := s.PruneVolumes(ctx, set, tc.o)
		if got := strings.Join(removed, " "); err != nil || got != tc.want || got != strings.Join(set.removed, " ") || freed != int64(10*len(removed)) {
			t.Errorf("all=%v: removed %q (set saw %q), freed %d, %v; want %q", tc.o.All, got, set.removed, freed, err, tc.want)
		}
	}
}
