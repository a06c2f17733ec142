package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVolumeCommands(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	if out := c.ok("volume", "create", "--label", "team=a", "v1"); out != "v1\n" {
		t.Fatalf("volume create: %q", out)
	}
	c.ok("volume", "create", "v2")
	for _, bad := range []string{"a/b", "..", "../x", "/abs", "x"} {
		if _, errs, code := c.run(nil, "volume", "create", bad); code != 1 || !strings.Contains(errs, "invalid characters") {
			t.Errorf("volume create %q: %d %q", bad, code, errs)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(c.root, "volumes")); len(entries) != 2 {
		t.Errorf("volumes dir has %d entries, want 2", len(entries))
	}
	if out := c.ok("volume", "ls"); out != "DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n" {
		t.Errorf("volume ls: %q", out)
	}
	if out := c.ok("volume", "ls", "-q", "-f", "label=team=a"); out != "v1\n" {
		t.Errorf("volume ls -f label: %q", out)
	}
	if out := c.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}", "-f", "name=v1"); out != "v1 local team=a\n" {
		t.Errorf("volume ls --format: %q", out)
	}
	var insp []map[string]any
	if err := json.Unmarshal([]byte(c.ok("volume", "inspect", "v1")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 || insp[0]["Mountpoint"] != filepath.Join(c.root, "volumes", "v1", "_data") || insp[0]["Driver"] != "local" || insp[0]["Scope"] != "local" {
		t.Errorf("volume inspect: %v", insp)
	}
	for _, verb := range []string{"inspect", "rm"} {
		if _, errs, code := c.run(nil, "volume", verb, "nosuch"); code != 1 || !strings.Contains(errs, "Error: No such volume: nosuch\n") {
			t.Errorf("volume %s nosuch: %d %q", verb, code, errs)
		}
	}

	// In use (by a stopped container too): rm is refused naming it.
	id := strings.TrimSpace(c.ok("create", "-v", "v1:/data", "busybox"))
	if _, errs, code := c.run(nil, "volume", "rm", "v1"); code != 1 || !strings.Contains(errs, "volume is in use - ["+id+"]") {
		t.Errorf("volume rm in use: %d %q", code, errs)
	}
	if out := c.ok("volume", "ls", "-q", "-f", "dangling=true"); out != "v2\n" {
		t.Errorf("volume ls dangling: %q", out)
	}
	if out := c.ok("ps", "-aq", "--no-trunc", "-f", "volume=v1"); out != id+"\n" {
		t.Errorf("ps -f volume=v1: %q", out)
	}
	// prune: anonymous only, unless -a; in-use ones stay.
	c.ok("create", "--name", "mk", "-v", "/anon", "busybox")
	anon := strings.TrimSpace(c.ok("inspect", "-f", "{{(index .Mounts 0).Name}}", "mk"))
	c.ok("rm", "mk") // without -v: the anonymous volume stays, unused
	if out := c.ok("volume", "prune", "-f"); !strings.Contains(out, "Deleted Volumes:\n"+anon+"\n") || strings.Contains(out, "v2") {
		t.Errorf("volume prune: %q", out)
	}
	if out := c.ok("volume", "prune", "-f", "-a"); !strings.Contains(out, "v2\n") || strings.Contains(out, "v1") {
		t.Errorf("volume prune -a: %q", out)
	}
	c.ok("rm", id)
	if out := c.ok("volume", "rm", "v1"); out != "v1\n" {
		t.Errorf("volume rm: %q", out)
	}
	if _, _, code := c.run(nil, "volume", "rm", "v1"); code != 1 {
		t.Errorf("volume rm of a missing volume: exit %d", code)
	}
	c.ok("volume", "rm", "-f", "v1")
	// A create that fails leaves no anonymous volume behind.
	c.ok("create", "--name", "dupe", "busybox")
	if _, _, code := c.run(nil, "create", "--name", "dupe", "-v", "/x", "busybox"); code != 1 {
		t.Errorf("create with a taken name: exit %d", code)
	}
	c.ok("rm", "dupe")
	if entries, _ := os.ReadDir(filepath.Join(c.root, "volumes")); len(entries) != 0 {
		t.Errorf("volumes left: %v", entries)
	}
}

func TestVolumeMounts(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("host"), 0o644)

	// A named volume is created on first use and outlives its containers;
	// writes survive stop/start.
	c.ok("run", "--name", "wr", "-v", "data:/d", "busybox", "sh", "-c", "echo one > /d/f")
	c.ok("start", "-a", "wr")
	c.ok("rm", "wr")
	if out := c.ok("run", "--rm", "-v", "data:/d:ro", "busybox", "cat", "/d/f"); out != "one\n" {
		t.Errorf("a second container reads %q", out)
	}
	// Read-only volumes and binds refuse writes.
	for _, v := range []string{"data:/d:ro", host + ":/d:ro"} {
		if _, errs, code := c.run(nil, "run", "--rm", "-v", v, "busybox", "touch", "/d/x"); code == 0 || !strings.Contains(errs, "Read-only file system") {
			t.Errorf("-v %s accepted a write: %d %q", v, code, errs)
		}
	}
	if out := c.ok("run", "--rm", "--mount", "type=bind,source="+host+",target=/h,readonly", "busybox", "cat", "/h/f"); out != "host" {
		t.Errorf("--mount type=bind: %q", out)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "--mount", "type=bind,source=/nonexistent-exec-test,target=/h", "busybox", "true"); code != 125 || !strings.Contains(errs, "bind source path does not exist") {
		t.Errorf("--mount of a missing host path: %d %q", code, errs)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "-v", "va:/x", "-v", "vb:/x", "busybox", "true"); code != 125 || !strings.Contains(errs, "Duplicate mount point: /x") {
		t.Errorf("duplicate mount point: %d %q", code, errs)
	}

	// tmpfs is really tmpfs, three ways.
	c.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tv")
	out := c.ok("run", "--rm", "--tmpfs", "/t1:size=2m", "--mount", "type=tmpfs,target=/t2,tmpfs-size=3m", "-v", "tv:/t3",
		"busybox", "sh", "-c", "for d in /t1 /t2 /t3; do grep \" $d \" /proc/mounts | cut -d' ' -f3; done; df -k /t1 /t2 /t3 | tail -3 | awk '{print $2}'")
	if out != "tmpfs\ntmpfs\ntmpfs\n2048\n3072\n1024\n" {
		t.Errorf("tmpfs mounts: %q", out)
	}

	// Anonymous volumes: rm -v removes them, never named ones.
	c.ok("create", "--name", "anon", "-v", "/a", "-v", "keep:/k", "busybox")
	vols := strings.Fields(c.ok("volume", "ls", "-q"))
	if len(vols) != 4 { // data, tv, keep, the anonymous one
		t.Fatalf("volumes %v", vols)
	}
	c.ok("rm", "-v", "anon")
	if got := strings.Fields(c.ok("volume", "ls", "-q")); strings.Join(got, " ") != "data keep tv" {
		t.Errorf("after rm -v: %v", got)
	}

	// --volumes-from shares the other container's volumes (ro here).
	c.ok("create", "--name", "src", "-v", "data:/d", "busybox")
	if _, errs, code := c.run(nil, "run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c", "cat /d/f; touch /d/y"); code == 0 || !strings.Contains(errs, "Read-only") {
		t.Errorf("--volumes-from src:ro: %d %q", code, errs)
	}

	// inspect: Mounts and HostConfig.
	var insp []struct {
		Mounts     []map[string]any
		HostConfig struct {
			Binds  []string
			Mounts []map[string]any
		}
	}
	c.ok("create", "--name", "in", "-v", "data:/d:ro", "-v", host+":/h", "--mount", "type=volume,target=/m,volume-nocopy", "busybox")
	if err := json.Unmarshal([]byte(c.ok("inspect", "in")), &insp); err != nil {
		t.Fatal(err)
	}
	ms := insp[0].Mounts
	if len(ms) != 3 || ms[0]["Type"] != "volume" || ms[0]["Name"] != "data" || ms[0]["RW"] != false || ms[0]["Source"] != filepath.Join(c.root, "volumes", "data", "_data") ||
		ms[1]["Type"] != "bind" || ms[1]["Source"] != host || ms[1]["RW"] != true || ms[2]["Destination"] != "/m" {
		t.Errorf("inspect Mounts: %v", ms)
	}
	if hc := insp[0].HostConfig; len(hc.Binds) != 2 || len(hc.Mounts) != 1 || hc.Mounts[0]["Target"] != "/m" {
		t.Errorf("inspect HostConfig: %+v", hc)
	}
}

func TestVolumeCopyUpAndLayers(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	escape := filepath.Join(os.TempDir(), "strata-exec-volume-escape-"+filepath.Base(c.root))
	t.Cleanup(func() { os.RemoveAll(escape) })
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
RUN mkdir -p /data /etc/real && echo seed > /data/seed && chown -R 65534:65534 /data && chmod 0750 /data && ln -s / /rootlink && ln -s /../../../..`+filepath.Dir(escape)+` /up
VOLUME /data
VOLUME /rootlink/etc/vol
VOLUME /up/`+filepath.Base(escape)+`
`), 0o644)
	c.ok("build", "-q", "-t", "voltest", ctx)

	// Copy-up: the image's content, owner and mode; symlinked VOLUME paths
	// resolve inside the container, never on the host.
	out := c.ok("run", "--name", "cu", "voltest", "sh", "-c",
		"stat -c '%u:%g %a' /data; cat /data/seed; echo new > /data/volcontent-marker; echo x > /etc/vol/f; echo y > "+escape+"/f; echo layer > /inlayer")
	if out != "65534:65534 750\nseed\n" {
		t.Errorf("copy-up: %q", out)
	}
	if _, err := os.Stat(escape); !os.IsNotExist(err) {
		t.Errorf("a VOLUME through a symlink wrote on the host: %v", err)
	}
	// nocopy: an empty volume.
	if out := c.ok("run", "--rm", "--mount", "type=volume,target=/data,volume-nocopy", "voltest", "ls", "/data"); out != "" {
		t.Errorf("volume-nocopy: %q", out)
	}

	// Volume contents are not in diff, commit or export.
	diff := c.ok("diff", "cu")
	if !strings.Contains(diff, "A /inlayer") || strings.Contains(diff, "volcontent-marker") || strings.Contains(diff, "/etc/vol/f") {
		t.Errorf("diff shows volume content:\n%s", diff)
	}
	c.ok("commit", "cu", "committed")
	if out, _, _ := c.run(nil, "run", "--rm", "--entrypoint", "sh", "committed", "-c", "cat /inlayer; ls /data"); !strings.HasPrefix(out, "layer\n") || strings.Contains(out, "volcontent-marker") {
		t.Errorf("the commit holds volume content: %q", out)
	}
	exp := c.ok("export", "cu")
	if strings.Contains(exp, "volcontent-marker") {
		t.Error("export holds volume content")
	}

	// -v target through a container symlink stays in the container.
	c.ok("run", "--rm", "-v", "/up/"+filepath.Base(escape)+"/sub", "voltest", "sh", "-c", "echo z > "+escape+"/sub/f")
	if _, err := os.Stat(escape); !os.IsNotExist(err) {
		t.Errorf("a -v target through a symlink wrote on the host: %v", err)
	}
}
