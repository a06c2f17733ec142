package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The docker client's proxies (config.json proxies.default) reach builds as
// build args and containers as env, wherever the user set nothing; build
// --add-host reaches RUN's /etc/hosts.
func TestClientProxiesAndAddHost(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.importBusybox()
	cfgDir := t.TempDir()
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"proxies":{"default":{
		"httpProxy":"http://cfg.test:3128","noProxy":"localhost,.internal"}}}`), 0o600)
	c.env = []string{"DOCKER_CONFIG=" + cfgDir}
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
RUN echo "$HTTP_PROXY|$http_proxy|$NO_PROXY" > /proxies && grep db /etc/hosts > /hosts && grep gw /etc/hosts > /gw
`), 0o644)
	c.build("--build-arg", "http_proxy=http://mine.test:1", "--add-host", "db:192.0.2.9", "--add-host", "gw:host-gateway", "-t", "px", ctx)
	root := c.mountImage("px")
	if got := readFile(t, filepath.Join(root, "proxies")); got != "http://cfg.test:3128|http://mine.test:1|localhost,.internal\n" {
		t.Errorf("RUN saw proxies %q", got)
	}
	if got := readFile(t, filepath.Join(root, "hosts")); got != "192.0.2.9\tdb\n" {
		t.Errorf("RUN's hosts entry %q", got)
	}
	// RUN is on the host's network: host-gateway is the host's loopback.
	if got := readFile(t, filepath.Join(root, "gw")); got != "127.0.0.1\tgw\n" {
		t.Errorf("RUN's host-gateway entry %q", got)
	}
	if h := c.ok("history", "--no-trunc", "px"); strings.Contains(h, "cfg.test") {
		t.Errorf("client proxy in the history:\n%s", h)
	}
	out := c.ok("run", "--rm", "-e", "NO_PROXY=mine", "px", "sh", "-c", `echo "$HTTP_PROXY|$no_proxy|$NO_PROXY"`)
	if out != "http://cfg.test:3128|localhost,.internal|mine\n" {
		t.Errorf("container env proxies %q", out)
	}
	if _, errs, code := c.run(nil, "build", "--add-host", "nocolon", ctx); code != 125 || !strings.Contains(errs, "bad format for add-host") {
		t.Errorf("bad --add-host: exit %d %q", code, errs)
	}
}
