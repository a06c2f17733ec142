// Package registrytest runs a real registry (Debian's docker-registry, the
// distribution project's server) for tests, and builds the images they push
// into it.
package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/store"
)

// Binary is the registry server the tests run.
const Binary = "/usr/bin/docker-registry"

// Registry is a registry process serving plain HTTP on 127.0.0.1.
type Registry struct {
	Host    string // 127.0.0.1:PORT
	Storage string // its filesystem storage root
}

// Start runs a registry with its own storage in a temp dir; the test's
// cleanup kills it.
func Start(t testing.TB) *Registry {
	t.Helper()
	return start(t, "")
}

// StartAuth runs a registry that wants user and password (htpasswd,
// basic auth), as a private registry does.
func StartAuth(t testing.TB, user, password string) *Registry {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, fmt.Sprintf("auth:\n  htpasswd:\n    realm: strata-test\n    path: %s\n", p))
}

func start(t testing.TB, extra string) *Registry {
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("the registry tests need %s (apt-get install docker-registry): %v", Binary, err)
	}
	dir := t.TempDir()
	r := &Registry{Host: freeAddr(t), Storage: filepath.Join(dir, "storage")}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, r.Storage, r.Host, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// Wait for it to answer: poll /v2/ until a deadline, or until it dies.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (extra != "" && resp.StatusCode == http.StatusUnauthorized) {
				return r
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("registry exited: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer on %s: %v\n%s", r.Host, err, logs.String())
		}
	}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Ref is the reference of repo (e.g. "test/bb:v1") in this registry.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Push writes img under ref (REPO:TAG).
func (r *Registry) Push(t testing.TB, ref string, img v1.Image) v1.Hash {
	t.Helper()
	n, err := name.ParseReference(r.Ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex writes idx (and its images) under ref.
func (r *Registry) PushIndex(t testing.TB, ref string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	n, err := name.ParseReference(r.Ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(n, idx); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// BlobPath is where the registry keeps blob d on disk. Tests overwrite it
// to make the registry serve a corrupted blob.
func (r *Registry) BlobPath(d v1.Hash) string {
	return filepath.Join(r.Storage, "docker/registry/v2/blobs", d.Algorithm, d.Hex[:2], d.Hex, "data")
}

// Corrupt flips one byte in the middle of blob d as the registry stores it.
func (r *Registry) Corrupt(t testing.TB, d v1.Hash) {
	t.Helper()
	p := r.BlobPath(d)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// File is one tar entry of a test layer: a regular file, or a directory
// when Name ends in "/". Whiteouts are files named ".wh.NAME".
type File struct {
	Name string
	Body string
	Mode int64
}

// Tar makes an uncompressed layer tar of files.
func Tar(t testing.TB, files ...File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if n := len(f.Name); n > 0 && f.Name[n-1] == '/' {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(f.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Compression of a test layer.
type Compression int

const (
	Gzip Compression = iota
	Zstd
	None
)

// Layer makes a layer of the uncompressed tar b.
func Layer(t testing.TB, b []byte, c Compression) v1.Layer {
	t.Helper()
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	var l v1.Layer
	var err error
	switch c {
	case None:
		return static.NewLayer(b, types.OCIUncompressedLayer)
	case Zstd:
		l, err = tarball.LayerFromOpener(open, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd), tarball.WithCompressedCaching)
	default:
		l, err = tarball.LayerFromOpener(open, tarball.WithCompressedCaching)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// LayerFromFile makes a gzip layer of the tar file at path.
func LayerFromFile(t testing.TB, path string) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromFile(path, tarball.WithCompressedCaching)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image stacks layers into an image for os/arch whose command is cmd. oci
// chooses OCI media types (needed for zstd layers) over docker's.
func Image(t testing.TB, arch string, oci bool, cmd []string, layers ...v1.Layer) v1.Image {
	t.Helper()
	var base v1.Image = empty.Image
	if oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Cmd = cmd
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Index makes a multi-platform index of images, keyed by architecture.
func Index(t testing.TB, images map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	archs := make([]string, 0, len(images))
	for a := range images {
		archs = append(archs, a)
	}
	slices.Sort(archs)
	for _, arch := range archs {
		img := images[arch]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return mutate.IndexMediaType(idx, types.OCIImageIndex)
}

// DiffIDs lists the image's layer diffIDs as strings.
func DiffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range cf.RootFS.DiffIDs {
		out = append(out, d.String())
	}
	return out
}

// StoreImage stacks layer tars into an image in s named by refs (normalized
// references) and returns its ID: for tests that push or save an image
// the store has.
func StoreImage(t testing.TB, s *store.Store, cmd []string, layers [][]byte, refs ...string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	var parent digest.Digest
	var cfg image.Config
	cfg.Platform = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	cfg.RootFS = ocispec.RootFS{Type: "layers"}
	cfg.Config.Cmd = cmd
	for _, b := range layers {
		l, err := s.Layers().Unpack(ctx, parent, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		parent = l.ChainID
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	var names []reference.Named
	for _, r := range refs {
		n, err := image.ParseNamed(r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	id, err := s.Images().Create(ctx, cfg, image.CreateOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Proxy passes requests on to a registry and counts them: how a test
// sees what a client sent (a second push that uploads nothing).
type Proxy struct {
	Host string // 127.0.0.1:PORT
	mu   sync.Mutex
	reqs []string // "METHOD /path"
	hold map[string]chan struct{}
	// arrived are the HoldBlob arrivals not yet signalled.
	arrived []arrival
}

// HoldBlob makes GETs of blob d wait until release is called; arrived is
// closed when the first one comes in: how a test catches a pull mid-download.
func (p *Proxy) HoldBlob(d v1.Hash) (arrived <-chan struct{}, release func()) {
	a, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p.mu.Lock()
	if p.hold == nil {
		p.hold = map[string]chan struct{}{}
	}
	p.hold[d.String()] = r
	p.arrived = append(p.arrived, arrival{d.String(), a})
	p.mu.Unlock()
	return a, func() { once.Do(func() { close(r) }) }
}

type arrival struct {
	digest string
	ch     chan struct{}
}

// NewProxy starts a counting proxy in front of the registry at target.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Method+" "+r.URL.Path)
		var wait chan struct{}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			wait = p.hold[d]
			for i, a := range p.arrived {
				if a.digest == d {
					close(a.ch)
					p.arrived = append(p.arrived[:i], p.arrived[i+1:]...)
					break
				}
			}
		}
		p.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Ref is the reference of repo through the proxy.
func (p *Proxy) Ref(repo string) string { return p.Host + "/" + repo }

// Uploads counts the requests that sent blob bytes since the last call.
func (p *Proxy) Uploads() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.reqs {
		if strings.HasPrefix(r, "PATCH ") || (strings.HasPrefix(r, "PUT ") && strings.Contains(r, "/blobs/uploads/")) {
			n++
		}
	}
	p.reqs = nil
	return n
}
