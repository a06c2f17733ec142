package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMountShowsImageReadOnly(t *testing.T) {
	for _, drv := range []string{"overlay", "native"} {
		t.Run(drv, func(t *testing.T) {
			c := newCLI(t)
			tarPath := busyboxTar(t)
			c.ok("--storage-driver", drv, "import", tarPath, "bb")
			if !strings.Contains(c.ok("info"), "Storage Driver: "+drv) {
				t.Fatalf("info does not show driver %s", drv)
			}
			if _, errs, code := c.run(nil, "--storage-driver", otherDriver(drv), "images"); code == 0 || !strings.Contains(errs, "uses storage driver") {
				t.Fatalf("switching driver on an existing store: exit %d %s", code, errs)
			}
			p := strings.TrimSpace(c.ok("mount", "bb"))
			t.Cleanup(func() { c.run(nil, "umount", "bb") })
			if fi, err := os.Stat(filepath.Join(p, "bin/busybox")); err != nil || fi.Size() < 500_000 {
				t.Fatalf("bin/busybox in the mounted image: %v", err)
			}
			err := os.WriteFile(filepath.Join(p, "new"), []byte("x"), 0o644)
			if !errors.Is(err, syscall.EROFS) {
				t.Fatalf("write into the mounted image: %v, want EROFS", err)
			}
			if again := strings.TrimSpace(c.ok("mount", "bb")); again != p {
				t.Fatalf("second mount at %s, first at %s", again, p)
			}
			if _, errs, code := c.run(nil, "rmi", "bb"); code == 0 || !strings.Contains(errs, "mounted") {
				t.Fatalf("rmi of a mounted image: exit %d %s", code, errs)
			}
			c.ok("umount", "bb")
			assertNothingMounted(t, c.root)
			c.ok("rmi", "bb")
			if !strings.Contains(c.ok("info"), "Layers: 0\n") {
				t.Fatal("layer left after rmi")
			}
		})
	}
}

func otherDriver(d string) string {
	if d == "overlay" {
		return "native"
	}
	return "overlay"
}
