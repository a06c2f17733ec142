package registry

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
)

func TestInsecureAndLoopback(t *testing.T) {
	a := Access{InsecureRegistries: []string{"reg.example:5000", "10.0.0.0/8", "plain.example"}}
	for host, want := range map[string]bool{
		"reg.example:5000": true, "reg.example": false, "10.1.2.3:443": true,
		"192.168.1.1:5000": false, "plain.example:8080": true, "docker.io": false,
	} {
		if got := a.insecure(host); got != want {
			t.Errorf("insecure(%s) = %v, want %v", host, got, want)
		}
	}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.8.9.10": true, "[::1]:5000": true, "localhost:5000": true,
		"10.0.0.1:5000": false, "192.168.0.1": false, "example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%s) = %v, want %v", host, got, want)
		}
	}
	if !(Access{SkipTLSVerify: true}).insecure("anything:1") {
		t.Error("--tls-verify=false does not make a registry insecure")
	}
}

// failingTransport fails the test if a request gets through the policy.
type failingTransport struct{ t *testing.T }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request to %s was sent", r.URL)
	return nil, errors.New("sent")
}

func TestPlainHTTPOnlyToLoopbackOrInsecure(t *testing.T) {
	// Refused before any connection: no traffic leaves for the private address.
	p := &httpPolicy{inner: failingTransport{t}, host: "10.1.2.3:5000"}
	req, _ := http.NewRequest(http.MethodGet, "http://10.1.2.3:5000/v2/", nil)
	if _, err := p.RoundTrip(req); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "insecure-registries") {
		t.Errorf("plain HTTP to a private address: %v", err)
	}
	tr, err := Access{InsecureRegistries: []string{"10.1.2.3:5000"}}.transport("10.1.2.3:5000")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.(*httpPolicy).allowHTTP {
		t.Error("an insecure registry may not use plain HTTP")
	}
	tr, _ = Access{}.transport("127.0.0.1:5000")
	if !tr.(*httpPolicy).allowHTTP {
		t.Error("a loopback registry may not use plain HTTP")
	}
}

func TestLoadAccess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(p, []byte(`{"insecure-registries": ["reg.example:5000"]}`), 0o644)
	a, err := LoadAccess(p)
	if err != nil || len(a.InsecureRegistries) != 1 || !a.insecure("reg.example:5000") {
		t.Fatalf("LoadAccess: %+v %v", a, err)
	}
	if _, err := LoadAccess(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing explicit config file is no error")
	}
	os.WriteFile(p, []byte(`{`), 0o644)
	if _, err := LoadAccess(p); err == nil {
		t.Error("a broken config file is no error")
	}
}

func TestTLSVerifiedWithCertsDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	srv := httptest.NewTLSServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	ref := host + "/ship/tls:1"
	storeImage(t, s, [][]byte{rt.Tar(t, rt.File{Name: "tls", Body: "tls\n"})}, ref)

	// An unknown CA: refused, even on loopback.
	certs := t.TempDir()
	if _, err := Push(ctx, s, ref, PushOptions{Access: Access{CertsDir: certs}}); err == nil {
		t.Fatal("push to a registry with an unknown CA succeeded")
	}
	// Its CA in certs.d/HOST/ca.crt, as docker reads it: verified TLS.
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	os.WriteFile(filepath.Join(certs, host, "ca.crt"), ca, 0o644)
	a := Access{CertsDir: certs}
	if _, err := Push(ctx, s, ref, PushOptions{Access: a}); err != nil {
		t.Fatalf("push with the CA in certs.d: %v", err)
	}
	if _, err := Pull(ctx, openStore(t), ref, Options{Access: a}); err != nil {
		t.Fatalf("pull with the CA in certs.d: %v", err)
	}
	// --tls-verify=false: no verification.
	if _, err := Pull(ctx, openStore(t), ref, Options{Access: Access{CertsDir: t.TempDir(), SkipTLSVerify: true}}); err != nil {
		t.Fatalf("pull with --tls-verify=false: %v", err)
	}
}

// A registry with token auth (as Docker Hub and most private registries
// have): login is good when the token server issues a token for the
// credentials.
func TestVerifyTokenAuth(t *testing.T) {
	t.Parallel()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			if u, p, ok := r.BasicAuth(); !ok || u != "ship" || p != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"token":"good-token"}`))
		case "/v2/":
			if r.Header.Get("Authorization") != "Bearer good-token" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := Verify(context.Background(), Access{}, host, Credentials{Username: "ship", Password: "s3cret"}); err != nil {
		t.Errorf("good credentials: %v", err)
	}
	err := Verify(context.Background(), Access{}, host, Credentials{Username: "ship", Password: "wrong"})
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong password: %v", err)
	}
}
