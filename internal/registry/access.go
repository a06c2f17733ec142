package registry

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Access is how strata reaches registries, for pull, push, login and
// search alike: TLS is verified, and plain HTTP used, only as docker does.
type Access struct {
	// SkipTLSVerify is --tls-verify=false: HTTPS without verifying the
	// certificate, and plain HTTP allowed, for every registry.
	SkipTLSVerify bool
	// InsecureRegistries are docker's insecure-registries (host[:port] or
	// CIDR): treated as with SkipTLSVerify.
	InsecureRegistries []string
	// CertsDir holds HOST[:PORT]/ca.crt (and client NAME.cert/NAME.key)
	// like docker's; "" is /etc/docker/certs.d.
	CertsDir string
	// Keychain finds credentials; nil is docker's config (DOCKER_CONFIG or
	// ~/.docker/config.json with its credential helpers).
	Keychain authn.Keychain
}

// DefaultCertsDir is where docker looks for a registry's CA.
const DefaultCertsDir = "/etc/docker/certs.d"

// DefaultConfigPath is strata's own configuration file (docker's
// daemon.json keys that apply to a daemonless engine).
const DefaultConfigPath = "/etc/strata/config.json"

// config is the strata config file.
type config struct {
	InsecureRegistries []string `json:"insecure-registries"`
}

// LoadAccess reads the config file at path ("" is $STRATA_CONFIG or
// DefaultConfigPath; a missing default file is no error).
func LoadAccess(path string) (Access, error) {
	explicit := path != ""
	if path == "" {
		path = os.Getenv("STRATA_CONFIG")
		explicit = path != ""
	}
	if path == "" {
		path = DefaultConfigPath
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return Access{}, nil
	}
	if err != nil {
		return Access{}, fmt.Errorf("strata config: %w", err)
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return Access{}, fmt.Errorf("strata config %s: %w", path, err)
	}
	return Access{InsecureRegistries: c.InsecureRegistries}, nil
}

func (a Access) keychain() authn.Keychain {
	if a.Keychain != nil {
		return a.Keychain
	}
	return authn.DefaultKeychain
}

// insecure tells whether host may be reached without verified TLS.
func (a Access) insecure(host string) bool {
	if a.SkipTLSVerify {
		return true
	}
	hostOnly := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostOnly = h
	}
	ip := net.ParseIP(hostOnly)
	for _, e := range a.InsecureRegistries {
		if e == host || e == hostOnly {
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil && ip != nil && cidr.Contains(ip) {
			return true
		}
	}
	return false
}

// isLoopback tells whether host (host[:port]) is this machine: the only
// registries docker talks plain HTTP to without being told.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// registry is host as go-containerregistry names it; an insecure one may
// fall back to plain HTTP.
func (a Access) registry(host string) (name.Registry, error) {
	opts := []name.Option{name.StrictValidation}
	if a.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(host, opts...)
}

// transport is the HTTP transport for host: its TLS trust (docker's
// certs.d, or none when insecure) and the plain-HTTP rule.
func (a Access) transport(host string) (http.RoundTripper, error) {
	insecure := a.insecure(host)
	t := remote.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	dir := a.CertsDir
	if dir == "" {
		dir = DefaultCertsDir
	}
	if err := loadCerts(cfg, filepath.Join(dir, host)); err != nil {
		return nil, err
	}
	t.TLSClientConfig = cfg
	return &httpPolicy{inner: t, host: host, allowHTTP: insecure || isLoopback(host)}, nil
}

// loadCerts adds dir's *.crt to the trusted roots and its NAME.cert +
// NAME.key pairs as client certificates, as docker does.
func loadCerts(cfg *tls.Config, dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			if cfg.RootCAs == nil {
				if cfg.RootCAs, err = x509.SystemCertPool(); err != nil {
					cfg.RootCAs = x509.NewCertPool()
				}
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !cfg.RootCAs.AppendCertsFromPEM(b) {
				return fmt.Errorf("%s: no PEM certificate", p)
			}
		case strings.HasSuffix(e.Name(), ".cert"):
			key := strings.TrimSuffix(p, ".cert") + ".key"
			c, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return fmt.Errorf("client certificate %s: %w", p, err)
			}
			cfg.Certificates = append(cfg.Certificates, c)
		}
	}
	return nil
}

// ErrInsecure is wrapped by the refusal to talk plain HTTP to a registry
// that is neither loopback nor configured as insecure.
var ErrInsecure = errors.New("plain HTTP refused")

// httpPolicy refuses plain HTTP to the registry unless it is allowed, so
// nobody on the network can serve an unverified image in its name.
type httpPolicy struct {
	inner     http.RoundTripper
	host      string
	allowHTTP bool
}

func (p *httpPolicy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !p.allowHTTP && r.URL.Host == p.host {
		return nil, fmt.Errorf("registry %s: %w (only loopback registries are reached over HTTP; use --tls-verify=false or list it in insecure-registries in %s)", p.host, ErrInsecure, DefaultConfigPath)
	}
	return p.inner.RoundTrip(r)
}
