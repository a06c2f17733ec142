package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/testutil/requires"
)

// A store on a small full filesystem: build, pull and load fail with a
// clear error, leave the store checking clean, and a run still works.
func TestDiskFull(t *testing.T) {
	requires.Runc(t)
	c := newCLI(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "strata-diskfull", c.root).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if ids := strings.Fields(c.ok("ps", "-aq", "--no-trunc")); len(ids) > 0 {
			c.ok(append([]string{"rm", "-f"}, ids...)...)
		}
		exec.Command("umount", "-l", c.root).Run()
	})
	tarPath := busyboxTar(t)
	c.ok("import", "-c", `CMD ["/bin/sh"]`, tarPath, "busybox")
	reg := rt.Start(t)
	reg.Push(t, "full/img:v1", rt.Image(t, "amd64", true, []string{"/bin/sh"},
		rt.LayerFromFile(t, tarPath),
		rt.Layer(t, rt.Tar(t, rt.File{Name: "big", Body: strings.Repeat("\x00", 16<<20)}), rt.Gzip)))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nCOPY fill /fill\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fill"), []byte(strings.Repeat("f", 16<<20)), 0o644)
	archive := filepath.Join(t.TempDir(), "big.tar")
	other := &cli{t: t, root: t.TempDir()}
	other.ok("pull", "-q", reg.Ref("full/img:v1"))
	other.ok("save", "-o", archive, reg.Ref("full/img:v1"))

	for _, args := range [][]string{
		{"build", "-q", dir},
		{"pull", "-q", reg.Ref("full/img:v1")},
		{"load", "-i", archive},
	} {
		out, errs, code := c.run(nil, args...)
		if code == 0 {
			t.Fatalf("%s succeeded on a full disk: %s", args[0], out)
		}
		if !strings.Contains(errs, "no space left on device") {
			t.Errorf("%s on a full disk says: %s", args[0], errs)
		}
		if out, errs, code := c.run(nil, "system", "check"); code != 0 {
			t.Fatalf("check after a failed %s: %s%s", args[0], out, errs)
		}
		c.ok("run", "--rm", "busybox", "true")
	}
}
