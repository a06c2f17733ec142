package builder

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/progress"
	"github.com/strata-project/strata/internal/store"
)

// layerFiles reads the top layer of image ref: its entry names and the
// content of its regular files.
func layerFiles(t *testing.T, s *store.Store, ref string) map[string]string {
	t.Helper()
	ctx := context.Background()
	img, err := s.Images().Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Layers().Tar(ctx, image.ChainID(img.Config.RootFS.DiffIDs))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = string(data)
	}
}

// A RUN on a base whose own resolv.conf is empty (as Debian's and most
// official images ship it) resolves as the host does and has a working
// /etc/hosts; none of the three files reaches the layer. No packet leaves:
// nsswitch.conf limits lookups to /etc/hosts.
func TestRunSeesHostResolverAndHosts(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "nsswitch.conf"), []byte("hosts: files\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(`FROM busybox
COPY empty /etc/resolv.conf
COPY nsswitch.conf /etc/
RUN cat /etc/resolv.conf > /seen-resolv && cat /etc/hosts > /seen-hosts && \
    hostname -i > /seen-ip && cat /etc/hostname > /seen-hostname
`), 0o644)
	for _, network := range []string{"host", "none"} {
		ref := "net-" + network
		tag, _ := image.ParseTagged(ref)
		if _, err := Build(context.Background(), s, Options{ContextDir: dir, Network: network, Tags: []reference.Named{tag}}); err != nil {
			t.Fatal(err)
		}
		want, err := netconf.Make(netconf.Config{HostNetwork: network == "host", Hostname: buildHostname, Build: true}, netconf.ReadHost())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(want.ResolvConf), "nameserver ") {
			t.Fatalf("no nameserver in the expected resolv.conf %q", want.ResolvConf)
		}
		files := layerFiles(t, s, ref)
		for name, want := range map[string]string{
			"seen-resolv":   string(want.ResolvConf),
			"seen-hosts":    string(want.Hosts),
			"seen-ip":       "127.0.0.1\n",
			"seen-hostname": buildHostname + "\n",
		} {
			if got, ok := files[name]; !ok || got != want {
				t.Errorf("--network %s: RUN saw %s %q, want %q", network, name, got, want)
			}
		}
		if len(files) != 4 {
			t.Errorf("--network %s: the RUN layer holds more than its own files: %v", network, keys(files))
		}
		if network == "host" {
			if host := netconf.ReadHost().ResolvConf; strings.Contains(string(host), "nameserver ") && files["seen-resolv"] != string(host) {
				t.Errorf("on the host network RUN saw %q, the host has %q", files["seen-resolv"], host)
			}
		}
	}
	// The image keeps the base's own (empty) resolv.conf and has no hosts.
	root, err := s.MountImage(context.Background(), "net-host")
	if err != nil {
		t.Fatal(err)
	}
	defer s.UnmountImage(context.Background(), "net-host")
	if b, err := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); err != nil || len(b) != 0 {
		t.Errorf("image resolv.conf %q, %v; want the base's empty file", b, err)
	}
	for _, f := range []string{"etc/hosts", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(root, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is in the image: %v", f, err)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Proxy build args need no ARG line, reach RUN, and stay out of the
// history and the cache key unless an ARG declares them.
func TestProxyBuildArgs(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(`FROM busybox
RUN echo "$HTTP_PROXY $no_proxy $FTP_PROXY" > /undeclared
ARG HTTPS_PROXY
RUN echo "$HTTPS_PROXY" > /declared
`), 0o644)
	build := func(proxy string) (ref string, cached int, warnings []string) {
		tag, _ := image.ParseTagged("proxy")
		_, err := Build(context.Background(), s, Options{ContextDir: dir, Tags: []reference.Named{tag},
			BuildArgs: map[string]string{"HTTP_PROXY": proxy, "no_proxy": "localhost", "HTTPS_PROXY": "https://p.test"},
			Events: func(e progress.Event) {
				switch e.Kind {
				case progress.EventCached:
					cached++
				case progress.EventWarning:
					warnings = append(warnings, e.Text)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		return "proxy", cached, warnings
	}
	ref, _, warnings := build("http://user:pw@p.test:3128")
	if len(warnings) != 0 {
		t.Errorf("proxy args warned about: %v", warnings)
	}
	files := layerFiles(t, s, ref)
	if got := files["declared"]; got != "https://p.test\n" {
		t.Errorf("declared proxy arg: %q", got)
	}
	root, err := s.MountImage(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "undeclared"))
	s.UnmountImage(context.Background(), ref)
	if string(got) != "http://user:pw@p.test:3128 localhost \n" {
		t.Errorf("RUN saw proxies %q", got)
	}
	img, _ := s.Images().Get(context.Background(), ref)
	var history []string
	for _, h := range img.Config.History {
		history = append(history, h.CreatedBy)
	}
	all := strings.Join(history, "\n")
	if strings.Contains(all, "p.test:3128") || strings.Contains(all, "no_proxy=") {
		t.Errorf("undeclared proxy args in the history:\n%s", all)
	}
	if !strings.Contains(all, "HTTPS_PROXY=https://p.test") {
		t.Errorf("declared proxy arg not in the history:\n%s", all)
	}
	if _, cached, _ := build("http://other.test:8080"); cached != 3 {
		t.Errorf("another proxy value: %d of 3 steps cached", cached)
	}
}

// The forwarder carries an agent conversation both ways and stops cleanly.
func TestForwardUnix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	agent, err := net.Listen("unix", filepath.Join(dir, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			c.Write(append([]byte("agent got "), b...))
			c.Close()
		}
	}()
	stop, err := forwardUnix(filepath.Join(dir, "fwd"), filepath.Join(dir, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("unix", filepath.Join(dir, "fwd"))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("list keys"))
		c.(*net.UnixConn).CloseWrite()
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "agent got list keys" {
			t.Errorf("round %d: %q", i, got)
		}
	}
	stop()
	if _, err := net.Dial("unix", filepath.Join(dir, "fwd")); err == nil {
		t.Error("forwarder still listening after stop")
	}
}

// RUN --mount=type=ssh sees a socket of its own at the default target,
// with SSH_AUTH_SOCK pointing at it and the mount's owner and mode; an
// absent optional agent mounts nothing; a required one fails the step.
func TestRunMountSSH(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "agent"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(`FROM busybox
RUN --mount=type=ssh,uid=65534,mode=0660 test -S "$SSH_AUTH_SOCK" && stat -c '%n %u %a' "$SSH_AUTH_SOCK" > /ssh
RUN --mount=type=ssh,id=other echo "${SSH_AUTH_SOCK:-none}" > /other
`), 0o644)
	tag, _ := image.ParseTagged("ssh")
	if _, err := Build(context.Background(), s, Options{ContextDir: dir, Tags: []reference.Named{tag}, SSH: map[string]string{"default": l.Addr().String()}}); err != nil {
		t.Fatal(err)
	}
	root, err := s.MountImage(context.Background(), "ssh")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "ssh"))
	other, _ := os.ReadFile(filepath.Join(root, "other"))
	_, runDir := os.Lstat(filepath.Join(root, "run/buildkit"))
	s.UnmountImage(context.Background(), "ssh")
	if string(got) != "/run/buildkit/ssh_agent.0 65534 660\n" || string(other) != "none\n" {
		t.Errorf("ssh mount: %q, absent agent: %q", got, other)
	}
	if !errors.Is(runDir, os.ErrNotExist) {
		t.Errorf("the mount point stayed in the image: %v", runDir)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN --mount=type=ssh,id=deploy,required true\n"), 0o644)
	if _, err := Build(context.Background(), s, Options{ContextDir: dir}); err == nil || !strings.Contains(err.Error(), `no SSH agent "deploy" was given`) {
		t.Errorf("required agent missing: %v", err)
	}
}
