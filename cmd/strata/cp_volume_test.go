package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cp to and from a path under a volume or a bind mount reads and writes the
// mounted directory, as docker's cp does, not the container layer the
// mount hides; a read-only mount refuses the write.
func TestCpThroughVolumesAndBinds(t *testing.T) {
	c := newBusyboxCLI(t)
	host := t.TempDir()
	local := filepath.Join(t.TempDir(), "f")
	os.WriteFile(local, []byte("through the mount\n"), 0o644)
	c.ok("run", "-d", "--name", "cpv", "-v", "cpvol:/data", "-v", host+":/bind", "-v", host+":/robind:ro", "busybox", "sleep", "300")
	t.Cleanup(func() { c.run(nil, "volume", "rm", "-f", "cpvol") })

	c.ok("cp", local, "cpv:/data/f")
	if out := c.ok("run", "--rm", "-v", "cpvol:/data", "busybox", "cat", "/data/f"); out != "through the mount\n" {
		t.Errorf("the volume holds %q", out)
	}
	c.ok("cp", local, "cpv:/bind/")
	if b, err := os.ReadFile(filepath.Join(host, "f")); err != nil || string(b) != "through the mount\n" {
		t.Errorf("the bind's host dir holds %q, %v", b, err)
	}
	if out := c.ok("cp", "cpv:/data/f", "-"); !strings.Contains(out, "through the mount") {
		t.Errorf("cp out of the volume: %q", out)
	}
	if _, errs, code := c.run(nil, "cp", local, "cpv:/robind/g"); code != 1 || !strings.Contains(errs, "mounted volume is marked read-only") {
		t.Errorf("cp into a read-only mount: exit %d %q", code, errs)
	}
	// Nothing went into the container layer under the mount points.
	if out := c.ok("diff", "cpv"); strings.Contains(out, "/data/f") || strings.Contains(out, "/bind/f") {
		t.Errorf("container layer changed under the mounts:\n%s", out)
	}
}
