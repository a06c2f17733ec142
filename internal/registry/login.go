package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DockerHubServer is the key docker stores Docker Hub credentials under.
const DockerHubServer = "https://index.docker.io/v1/"

// ErrUnauthorized is wrapped when a registry refuses the credentials.
var ErrUnauthorized = errors.New("unauthorized")

// Credentials are a user's for one registry.
type Credentials struct {
	Username, Password string
}

// ServerKey is how docker names server in its config file: Docker Hub's
// v1 URL, else the bare host[:port].
func ServerKey(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHubServer
	}
	return s
}

// ServerHost is the registry host behind a config key.
func ServerHost(key string) string {
	if key == DockerHubServer {
		return "index.docker.io"
	}
	return key
}

// loadConfig reads docker's config file ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json), as docker and the keychain do.
func loadConfig() (*configfile.ConfigFile, error) {
	cf, err := dockerconfig.Load(os.Getenv("DOCKER_CONFIG"))
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	return cf, nil
}

// StoredCredentials returns the credentials stored for server, if any.
func StoredCredentials(server string) (Credentials, bool, error) {
	cf, err := loadConfig()
	if err != nil {
		return Credentials{}, false, err
	}
	key := ServerKey(server)
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return Credentials{}, false, err
	}
	if ac.Username == "" && ac.IdentityToken == "" {
		return Credentials{}, false, nil
	}
	return Credentials{Username: ac.Username, Password: ac.Password}, true, nil
}

// LoginResult says where the credentials went.
type LoginResult struct {
	ConfigFile string
	// Unencrypted: they are in the config file itself (no credential
	// helper), which docker warns about.
	Unencrypted bool
}

// Login checks creds against server's registry (basic or token auth) and
// stores them the way docker does: through the credential helper the
// config names (credsStore, credHelpers), else base64 in the file.
func Login(ctx context.Context, a Access, server string, creds Credentials) (LoginResult, error) {
	key := ServerKey(server)
	if err := Verify(ctx, a, ServerHost(key), creds); err != nil {
		return LoginResult{}, err
	}
	cf, err := loadConfig()
	if err != nil {
		return LoginResult{}, err
	}
	store := cf.GetCredentialsStore(key)
	if err := store.Store(types.AuthConfig{Username: creds.Username, Password: creds.Password, ServerAddress: key}); err != nil {
		return LoginResult{}, fmt.Errorf("store credentials: %w", err)
	}
	if err := cf.Save(); err != nil {
		return LoginResult{}, fmt.Errorf("save %s: %w", cf.Filename, err)
	}
	helper := cf.CredentialsStore
	if h, ok := cf.CredentialHelpers[key]; ok {
		helper = h
	}
	return LoginResult{ConfigFile: cf.Filename, Unencrypted: helper == ""}, nil
}

// Logout removes the stored credentials for server; false means there
// were none.
func Logout(server string) (bool, error) {
	cf, err := loadConfig()
	if err != nil {
		return false, err
	}
	key := ServerKey(server)
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return false, err
	}
	_, inFile := cf.AuthConfigs[key]
	if ac.Username == "" && ac.IdentityToken == "" && !inFile {
		return false, nil
	}
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return false, fmt.Errorf("remove credentials: %w", err)
	}
	delete(cf.AuthConfigs, key)
	if err := cf.Save(); err != nil {
		return false, fmt.Errorf("save %s: %w", cf.Filename, err)
	}
	return true, nil
}

// Verify asks host's registry whether creds are good: its /v2/ answer
// with them (basic auth) or a token issued for them.
func Verify(ctx context.Context, a Access, host string, creds Credentials) error {
	reg, err := a.registry(host)
	if err != nil {
		return err
	}
	t, err := a.transport(host)
	if err != nil {
		return err
	}
	rt, err := transport.NewWithContext(ctx, reg, &authn.Basic{Username: creds.Username, Password: creds.Password}, t, nil)
	if err != nil {
		return describeLoginError(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return describeLoginError(host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return describeLoginError(host, err)
	}
	return nil
}

func describeLoginError(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("login to %s: %w: incorrect username or password", host, ErrUnauthorized)
	}
	return fmt.Errorf("login to %s: %w", host, err)
}
