package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/store"
)

func storeImage(t *testing.T, s *store.Store, layers [][]byte, refs ...string) digest.Digest {
	return rt.StoreImage(t, s, nil, layers, refs...)
}

func twoLayers(t *testing.T) [][]byte {
	// Big enough that gzip runs several pgzip blocks.
	big := strings.Repeat("strata pushes layers\n", 200000)
	return [][]byte{
		rt.Tar(t, rt.File{Name: "etc/"}, rt.File{Name: "etc/os", Body: "strata\n"}, rt.File{Name: "big", Body: big}),
		rt.Tar(t, rt.File{Name: "app", Body: "app\n"}),
	}
}

func (r *recorder) layerStates() map[EventKind]int {
	out := map[EventKind]int{}
	for _, e := range r.events {
		out[e.Kind]++
	}
	return out
}

func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(n)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushToRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	px := rt.NewProxy(t, reg.Host)
	ref := px.Host + "/ship/app:1"
	id := storeImage(t, s, twoLayers(t), ref)

	var rec recorder
	pushed, err := Push(ctx, s, ref, PushOptions{Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	st := rec.layerStates()
	if st[PushPushed] != 2 || st[PushPreparing] != 2 || st[PushDone] != 1 {
		t.Errorf("events %v, want 2 layers pushed", st)
	}
	if px.Uploads() == 0 {
		t.Fatal("the proxy saw no upload")
	}
	// What the registry has is the image: same config (ID), same diffIDs.
	ri := remoteImage(t, ref)
	if d, _ := ri.Digest(); d.String() != pushed[0].Digest.String() {
		t.Errorf("registry has manifest %s, push said %s", d, pushed[0].Digest)
	}
	if cn, _ := ri.ConfigName(); cn.String() != id.String() {
		t.Errorf("registry config %s, image ID %s", cn, id)
	}
	if mt, _ := ri.MediaType(); mt != types.DockerManifestSchema2 {
		t.Errorf("manifest media type %s", mt)
	}
	img, _ := s.Images().Get(ctx, id.String())
	want := []string{}
	for _, d := range img.Config.RootFS.DiffIDs {
		want = append(want, d.String())
	}
	if got := rt.DiffIDs(t, ri); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("registry diffIDs %v, want %v", got, want)
	}

	// A second push uploads nothing and gives the same digest.
	rec = recorder{}
	again, err := Push(ctx, s, ref, PushOptions{Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	if n := px.Uploads(); n != 0 {
		t.Errorf("second push made %d upload requests", n)
	}
	if st := rec.layerStates(); st[PushExists] != 2 || again[0].Digest != pushed[0].Digest {
		t.Errorf("second push: events %v, digest %s (first %s)", st, again[0].Digest, pushed[0].Digest)
	}

	// Another repository of the registry mounts the layers.
	other := px.Host + "/ship/other:1"
	if err := s.Images().Tag(ctx, id, mustNamed(t, other)); err != nil {
		t.Fatal(err)
	}
	rec = recorder{}
	if _, err := Push(ctx, s, other, PushOptions{Progress: rec.add}); err != nil {
		t.Fatal(err)
	}
	if n := px.Uploads(); n != 0 {
		t.Errorf("mounting push made %d upload requests", n)
	}
	if st := rec.layerStates(); st[PushMounted] != 2 {
		t.Errorf("push to another repository: events %v, want 2 mounted", st)
	}

	// zstd and uncompressed layers: OCI manifests, and the pull gives the image back.
	for _, comp := range []string{"zstd", "none"} {
		zref := px.Host + "/ship/app:" + comp
		s.Images().Tag(ctx, id, mustNamed(t, zref))
		if _, err := Push(ctx, s, zref, PushOptions{Compression: comp}); err != nil {
			t.Fatal(err)
		}
		m, err := remoteImage(t, zref).Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if got := compressionOf(string(m.Layers[0].MediaType)); got != comp {
			t.Errorf("%s push: layer media type %s", comp, m.Layers[0].MediaType)
		}
		fresh := openStore(t)
		got, err := Pull(ctx, fresh, zref, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != id {
			t.Errorf("%s: pulled image %s, pushed %s", comp, got.ID, id)
		}
	}

	// -a: every tag of the repository, each with its digest.
	s.Images().Tag(ctx, id, mustNamed(t, px.Host+"/ship/app:2"))
	all, err := Push(ctx, s, px.Host+"/ship/app", PushOptions{AllTags: true})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, p := range all {
		tags = append(tags, p.Ref.Tag())
	}
	if strings.Join(tags, ",") != "1,2,none,zstd" {
		t.Errorf("push -a pushed %v", tags)
	}
	if d, _ := remoteImage(t, px.Host+"/ship/app:2").Digest(); d.String() != pushed[0].Digest.String() {
		t.Errorf("tag 2 has %s, want %s", d, pushed[0].Digest)
	}
	if _, err := Push(ctx, s, px.Host+"/ship/app:1", PushOptions{AllTags: true}); err == nil {
		t.Error("-a with a tag accepted")
	}

	// An unknown image, a bad compression: errors, nothing sent.
	if _, err := Push(ctx, s, px.Host+"/ship/nothere:1", PushOptions{}); !errors.Is(err, ErrNoSuchLocalImage) {
		t.Errorf("push of a missing image: %v", err)
	}
	if _, err := Push(ctx, s, ref, PushOptions{Compression: "lz4"}); err == nil {
		t.Error("compression lz4 accepted")
	}
}

func mustNamed(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := image.ParseNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPulledImagePushesBackAsTheSameBlobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	src := threeLayers(t)
	mdigest := reg.Push(t, "test/bb:v1", src)
	if _, err := Pull(ctx, s, reg.Ref("test/bb:v1"), Options{}); err != nil {
		t.Fatal(err)
	}
	s.Images().Tag(ctx, mustID(t, s, reg.Ref("test/bb:v1")), mustNamed(t, reg.Ref("test/bb:v2")))
	var rec recorder
	pushed, err := Push(ctx, s, reg.Ref("test/bb:v2"), PushOptions{Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	if st := rec.layerStates(); st[PushExists] != 3 {
		t.Errorf("events %v, want every layer to exist", st)
	}
	if pushed[0].Digest.String() != mdigest.String() {

		t.Errorf("pushed back as %s, pulled as %s", pushed[0].Digest, mdigest)
	}
}

func mustID(t *testing.T, s *store.Store, ref string) digest.Digest {
	t.Helper()
	id, err := s.Images().Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// faulty wraps go-containerregistry's in-process registry and breaks the
// requests its rules pick.
type faulty struct {
	Host  string
	mu    sync.Mutex
	rules []func(w http.ResponseWriter, r *http.Request) bool // true: handled (a fault)
	hits  atomic.Int32
}

func newFaulty(t *testing.T) *faulty {
	f := &faulty{}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		rules := f.rules
		f.mu.Unlock()
		for _, rule := range rules {
			if rule(w, r) {
				f.hits.Add(1)
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.Host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

func (f *faulty) set(rules ...func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.rules = rules
	f.mu.Unlock()
	f.hits.Store(0)
}

// times makes a rule fault only its first n matches.
func times(n int32, match func(r *http.Request) bool, fault func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	var seen atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || seen.Add(1) > n {
			return false
		}
		fault(w, r)
		return true
	}
}

func isPatch(r *http.Request) bool { return r.Method == http.MethodPatch }
func isManifestPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
}
func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
}

func status500(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	http.Error(w, "injected", http.StatusInternalServerError)
}

// reset reads part of the request body, then drops the connection.
func reset(w http.ResponseWriter, r *http.Request) {
	io.CopyN(io.Discard, r.Body, 1000)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}
}

func TestPushFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	f := newFaulty(t)
	ref := f.Host + "/ship/faults:1"
	storeImage(t, s, twoLayers(t), ref)
	good, err := Push(ctx, s, ref, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tagDigest := func() string {
		d, err := remoteImage(t, ref).Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	// A changed image under the same tag, so a push that gets through moves it.
	storeImage(t, s, append(twoLayers(t), rt.Tar(t, rt.File{Name: "new", Body: "new\n"})), ref)

	// Faults a retry gets past: the push succeeds.
	for _, tc := range []struct {
		name string
		rule func(http.ResponseWriter, *http.Request) bool
	}{
		{"500 on upload", times(1, isPatch, status500)},
		{"reset mid-blob", times(1, isPatch, reset)},
		{"500 on manifest", times(1, isManifestPut, status500)},
		// A registry that wants lengths: the monolithic fallback (one hit per layer).
		{"no chunked upload", times(1, isPatch, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "length required", http.StatusLengthRequired)
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := openStore(t)
			r2 := f.Host + "/ship/" + strings.ReplaceAll(tc.name, " ", "-") + ":1"
			storeImage(t, s2, [][]byte{rt.Tar(t, rt.File{Name: "f", Body: tc.name})}, r2)
			f.set(tc.rule)
			if _, err := Push(ctx, s2, r2, PushOptions{}); err != nil {
				t.Fatalf("push failed despite retries: %v", err)
			}
			if f.hits.Load() != 1 {
				t.Errorf("the fault hit %d times", f.hits.Load())
			}
		})
	}

	// Faults that last, or that no retry fixes: a clear error, the tag stays.
	lie := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads/") {
			return false
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Docker-Content-Digest", digest.FromString("lie").String())
		w.WriteHeader(http.StatusCreated)
		return true
	}
	for _, tc := range []struct {
		name string
		rule func(http.ResponseWriter, *http.Request) bool
		want string
	}{
		{"lasting 500", times(100, isPatch, status500), "500 Internal Server Error"},
		{"lasting resets", times(100, isPatch, reset), "layer"},
		{"manifest refused", times(100, isManifestPut, status500), "manifest"},
		{"lying digest", lie, "digest mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.set(tc.rule)
			_, err := Push(ctx, s, ref, PushOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if n := f.hits.Load(); tc.name != "lying digest" && n != int32(1+len(retryBackoff)) && !strings.Contains(tc.name, "manifest") {
				t.Logf("fault hit %d times", n)
			}
			f.set()
			if got := tagDigest(); got != good[0].Digest.String() {
				t.Errorf("tag moved to %s after a failed push", got)
			}
		})
	}
	f.set()
	if _, err := Push(ctx, s, ref, PushOptions{}); err != nil {
		t.Fatalf("push after the faults: %v", err)
	}
	if tagDigest() == good[0].Digest.String() {
		t.Error("tag did not move after a good push")
	}
}

func TestPullFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFaulty(t)
	img := threeLayers(t)
	n, _ := name.ParseReference(f.Host + "/test/pf:1")
	if err := remote.Write(n, img); err != nil {
		t.Fatal(err)
	}
	// A reset mid-blob is retried (by go-containerregistry's transport).
	s := openStore(t)
	f.set(times(1, isBlobGet, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	if _, err := Pull(ctx, s, f.Host+"/test/pf:1", Options{}); err != nil {
		t.Fatalf("pull failed despite a retry: %v", err)
	}
	// A registry serving other bytes than the digest names: refused, nothing stored.
	s = openStore(t)
	f.set(func(w http.ResponseWriter, r *http.Request) bool {
		if !isBlobGet(r) || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			return false
		}
		ls, _ := img.Layers()
		ld, _ := ls[0].Digest()
		if !strings.HasSuffix(r.URL.Path, ld.String()) {
			return false
		}
		rc, _ := ls[0].Compressed()
		b, _ := io.ReadAll(rc)
		b[len(b)/2] ^= 0xff
		w.Write(b)
		return true
	})
	if _, err := Pull(ctx, s, f.Host+"/test/pf:1", Options{}); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("pull of a lying blob: %v", err)
	}
	if imgs, _ := s.Images().List(ctx); len(imgs) != 0 {
		t.Errorf("%d images after a failed pull", len(imgs))
	}
}

func TestPushFromIndexIsThePlatformManifest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	reg := rt.Start(t)
	mk := func(arch string) v1.Image {
		return rt.Image(t, arch, true, nil, rt.Layer(t, rt.Tar(t, rt.File{Name: "arch", Body: arch}), rt.Gzip))
	}
	amd := mk("amd64")
	reg.PushIndex(t, "test/multi:1", rt.Index(t, map[string]v1.Image{"amd64": amd, "arm64": mk("arm64")}))
	img, err := Pull(ctx, s, reg.Ref("test/multi:1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Images().Tag(ctx, img.ID, mustNamed(t, reg.Ref("test/single:1")))
	pushed, err := Push(ctx, s, reg.Ref("test/single:1"), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := amd.Digest(); pushed[0].Digest.String() != want.String() {
		t.Errorf("pushed %s, want the amd64 manifest %s", pushed[0].Digest, want)
	}
}
