package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/testutil/requires"
)

// dockerClient is the Debian client, which matches the Debian daemon.
const dockerClient = "/usr/bin/docker"

// engine runs another engine's CLI with its private roots.
type engine struct {
	name string
	argv []string
	env  []string
}

func (e *engine) run(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(e.argv[0], append(e.argv[1:], args...)...)
	cmd.Env = append(os.Environ(), e.env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s", e.name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (e *engine) ok(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, err := e.run(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hostPaths are created outside their roots by dockerd, containerd and
// podman; those that did not exist before the test are removed after it.
var hostPaths = []string{"/dev/shm/libpod_lock", "/var/lib/containers", "/run/containers", "/run/libpod",
	"/run/docker", "/run/containerd", "/etc/docker/key.json", "/etc/cni/net.d/cni.lock"}

func removeNewHostPaths(t *testing.T) {
	var absent []string
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			absent = append(absent, p)
		}
	}
	t.Cleanup(func() {
		for _, p := range absent {
			os.RemoveAll(p)
		}
	})
}

// startDockerd runs a private dockerd (no bridge, no iptables) and stops
// it, by its PID, when the test ends.
func startDockerd(t *testing.T) *engine {
	t.Helper()
	dir, err := os.MkdirTemp("", "strata-ship-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	cmd := exec.Command("dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		// Anything it left mounted under its dir, deepest first.
		if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			var mounts []string
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
					mounts = append(mounts, f[4])
				}
			}
			for i := len(mounts) - 1; i >= 0; i-- {
				syscall.Unmount(mounts[i], syscall.MNT_DETACH)
			}
		}
		logf.Close()
		os.RemoveAll(dir)
	})
	d := &engine{name: "docker", argv: []string{dockerClient, "-H", "unix://" + sock}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.run(nil, "version"); err == nil {
			return d
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited:\n%s", b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not answer in time")
		}
	}
}

// newPodman is podman with its own roots and a containers.conf that works
// on this host (runc, file limits within the hard limit).
func newPodman(t *testing.T) *engine {
	t.Helper()
	dir := t.TempDir()
	// podman sets these limits in the spec, above what may be set here
	// unless capped at the hard limits strata's and docker's containers inherit.
	var nofile, nproc syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
	np := min(nproc.Max, 32768)
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
`, nofile.Max, nofile.Max, np, np)), 0o644)
	p := &engine{name: "podman", env: []string{"CONTAINERS_CONF=" + conf},
		argv: []string{"podman", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--tmpdir", filepath.Join(dir, "tmp")}}
	t.Cleanup(func() { p.run(nil, "system", "prune", "-af") })
	return p
}

// TestInterop moves images between strata, docker, podman, skopeo and a
// real registry, both ways, and runs them on the other side.
func TestInterop(t *testing.T) {
	t.Parallel()
	requires.Runc(t)
	requires.Command(t, "dockerd", dockerClient, "podman", "skopeo")
	removeNewHostPaths(t)
	c := newBusyboxCLI(t)
	c.ok("tag", "busybox", "ship/interop:1")
	id := strings.TrimSpace(c.ok("inspect", "--format", "{{.Id}}", "ship/interop:1"))
	saved, errs, code := c.run(nil, "save", "ship/interop:1")
	if code != 0 {
		t.Fatalf("save: %s", errs)
	}
	docker := startDockerd(t)
	podman := newPodman(t)
	reg := rt.Start(t)
	px := rt.NewProxy(t, reg.Host)

	t.Run("strata save | docker load", func(t *testing.T) {
		if out := docker.ok(t, []byte(saved), "load"); !strings.Contains(out, "Loaded image: ship/interop:1") {
			t.Errorf("docker load printed %q", out)
		}
		if got := strings.TrimSpace(docker.ok(t, nil, "inspect", "--format", "{{.Id}}", "ship/interop:1")); got != id {
			t.Errorf("docker has ID %s, strata %s", got, id)
		}
		if out := docker.ok(t, nil, "run", "--rm", "--network", "none", "ship/interop:1", "echo", "docker ran strata's image"); out != "docker ran strata's image\n" {
			t.Errorf("docker run printed %q", out)
		}
	})
	t.Run("docker save | strata load", func(t *testing.T) {
		docker.ok(t, nil, "tag", "ship/interop:1", "ship/fromdocker:2")
		archive := docker.ok(t, nil, "save", "ship/fromdocker:2")
		d := newCLI(t)
		out, errs, code := d.run(strings.NewReader(archive), "load")
		if code != 0 || out != "Loaded image: ship/fromdocker:2\n" {
			t.Fatalf("strata load of docker's archive: %d %q %s", code, out, errs)
		}
		if got := strings.TrimSpace(d.ok("inspect", "--format", "{{.Id}}", "ship/fromdocker:2")); got != id {
			t.Errorf("loaded ID %s, want %s", got, id)
		}
		if out := d.ok("run", "--rm", "ship/fromdocker:2", "echo", "strata ran docker's archive"); out != "strata ran docker's archive\n" {
			t.Errorf("strata run printed %q", out)
		}
	})
	t.Run("strata save | podman load; podman save | strata load", func(t *testing.T) {
		if out := podman.ok(t, []byte(saved), "load"); !strings.Contains(out, "ship/interop:1") {
			t.Errorf("podman load printed %q", out)
		}
		if out := podman.ok(t, nil, "run", "--rm", "--network", "none", "docker.io/ship/interop:1", "echo", "podman ran strata's image"); out != "podman ran strata's image\n" {
			t.Errorf("podman run printed %q", out)
		}
		for _, format := range []string{"docker-archive", "oci-archive"} {
			p := filepath.Join(t.TempDir(), "podman.tar")
			podman.ok(t, nil, "save", "--format", format, "-o", p, "docker.io/ship/interop:1")
			d := newCLI(t)
			out := d.ok("load", "-i", p)
			if !strings.Contains(out, "Loaded image") {
				t.Errorf("strata load of podman's %s printed %q", format, out)
			}
			ref := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(out, "Loaded image: "), "Loaded image ID: "))
			if out := d.ok("run", "--rm", ref, "echo", "strata ran podman's "+format); out != "strata ran podman's "+format+"\n" {
				t.Errorf("strata run of podman's %s printed %q", format, out)
			}
		}
	})
	t.Run("skopeo reads strata's OCI archive and copies it to a registry", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "oci.tar")
		c.ok("save", "--format", "oci-archive", "-o", p, "ship/interop:1")
		skopeo := &engine{name: "skopeo", argv: []string{"skopeo"}}
		if out := skopeo.ok(t, nil, "inspect", "oci-archive:"+p); !strings.Contains(out, `"Architecture": "amd64"`) {
			t.Errorf("skopeo inspect printed %s", out)
		}
		// Docker's combined archive is an OCI layout too.
		dp := filepath.Join(t.TempDir(), "docker.tar")
		os.WriteFile(dp, []byte(saved), 0o644)
		skopeo.ok(t, nil, "inspect", "docker-archive:"+dp)
		skopeo.ok(t, nil, "copy", "--dest-tls-verify=false", "oci-archive:"+p, "docker://"+reg.Ref("ship/skopeo:1"))
		d := newCLI(t)
		d.ok("pull", "-q", reg.Ref("ship/skopeo:1"))
		if got := strings.TrimSpace(d.ok("inspect", "--format", "{{.Id}}", reg.Ref("ship/skopeo:1"))); got != id {
			t.Errorf("pulled after skopeo copy: ID %s, want %s", got, id)
		}
	})
	t.Run("push to a registry: docker pulls it; strata pulls docker's push", func(t *testing.T) {
		ref := px.Ref("ship/pushed:1")
		c.ok("tag", "ship/interop:1", ref)
		out := c.ok("push", ref)
		if !strings.HasPrefix(out, "The push refers to repository ["+px.Host+"/ship/pushed]\n") || !strings.Contains(out, ": Pushed\n") || !strings.Contains(out, "1: digest: sha256:") {
			t.Errorf("push printed:\n%s", out)
		}
		if px.Uploads() == 0 {
			t.Error("the registry received no blob")
		}
		out = c.ok("push", ref)
		if n := px.Uploads(); n != 0 || !strings.Contains(out, ": Layer already exists\n") {
			t.Errorf("second push: %d uploads, printed:\n%s", n, out)
		}
		docker.ok(t, nil, "pull", ref)
		if got := strings.TrimSpace(docker.ok(t, nil, "inspect", "--format", "{{.Id}}", ref)); got != id {
			t.Errorf("docker pulled ID %s, strata pushed %s", got, id)
		}
		if out := docker.ok(t, nil, "run", "--rm", "--network", "none", ref, "echo", "docker ran strata's push"); out != "docker ran strata's push\n" {
			t.Errorf("docker run printed %q", out)
		}
		dref := px.Ref("ship/bydocker:1")
		docker.ok(t, nil, "tag", ref, dref)
		docker.ok(t, nil, "push", dref)
		d := newCLI(t)
		d.ok("pull", dref)
		if got := strings.TrimSpace(d.ok("inspect", "--format", "{{.Id}}", dref)); got != id {
			t.Errorf("strata pulled ID %s from docker's push, want %s", got, id)
		}
		if out := d.ok("run", "--rm", dref, "echo", "strata ran docker's push"); out != "strata ran docker's push\n" {
			t.Errorf("strata run printed %q", out)
		}
		// Pushed back, docker's blobs are docker's: nothing is uploaded.
		px.Uploads()
		d.ok("tag", dref, px.Ref("ship/bydocker:again"))
		d.ok("push", px.Ref("ship/bydocker:again"))
		if n := px.Uploads(); n != 0 {
			t.Errorf("pushing docker's image back uploaded %d blobs", n)
		}
	})
}
