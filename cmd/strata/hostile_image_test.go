package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// hostileImageTar is busybox with its mount points, WORKDIR and VOLUME
// targets turned into symlinks that lead out of the root: absolute ones to
// canary, relative ones climbing there with "..".
func hostileImageTar(t *testing.T, canary string, proc bool) string {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xf", busyboxTar(t), "-C", tree).CombinedOutput(); err != nil {
		t.Fatalf("untar busybox: %v %s", err, out)
	}
	climb := strings.Repeat("../", 20) + strings.TrimPrefix(canary, "/")
	links := map[string]string{
		"dev":             canary,                  // the runtime's mount points
		"proc":            climb,                   // relative escape
		"etc/resolv.conf": canary + "/resolv.conf", // a bind-mounted file
		"etc/hostname":    climb + "/hostname",
		"app":             canary,              // WORKDIR and COPY target
		"rel":             "../../../" + climb, // WORKDIR, relative
		"vol":             canary + "/vol",     // VOLUME target
	}
	if !proc {
		// runc refuses to mount proc on a symlink, as docker does: an
		// image like that is only created, never run.
		delete(links, "proc")
	}
	for name, target := range links {
		p := filepath.Join(tree, name)
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "hostile.tar")
	if b, err := exec.Command("tar", "--numeric-owner", "-C", tree, "-cf", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar hostile image: %v %s", err, b)
	}
	return out
}

// An image whose /dev, /proc, /etc files, WORKDIR and VOLUME targets are
// symlinks out of its root gets nothing created outside the store by
// create, run, build (WORKDIR, COPY, RUN) or cp, on both drivers.
func TestHostileImageStaysInside(t *testing.T) {
	requires.Runc(t)
	for _, driver := range []string{"overlay", "native"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			c := newCLI(t)
			canary := t.TempDir()
			c.ok("--storage-driver", driver, "import", "-c", "VOLUME /vol", "-c", "WORKDIR /app", hostileImageTar(t, canary, false), "hostile")
			c.ok("import", hostileImageTar(t, canary, true), "hostileproc")

			c.ok("create", "--name", "made", "hostile", "true")
			c.ok("create", "--name", "procmade", "hostileproc", "true")
			if _, errs, code := c.run(nil, "start", "procmade"); code == 0 || !strings.Contains(errs, "proc") {
				t.Errorf("start with /proc a symlink: exit %d %s", code, errs)
			}
			c.ok("run", "--rm", "--network", "none", "hostile", "sh", "-c", "ls / >/dev/null")
			ctx := t.TempDir()
			if err := os.WriteFile(filepath.Join(ctx, "f"), []byte("f"), 0o644); err != nil {
				t.Fatal(err)
			}
			df := "FROM hostile\nWORKDIR /rel/w\nRUN pwd\nCOPY f /app/\nCOPY f /rel/sub/\nWORKDIR /app/deep\n"
			if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
				t.Fatal(err)
			}
			c.ok("build", "-q", "-t", "built", ctx)
			// What the build wrote went to the symlinks' targets inside
			// the root, and /dev is the image's symlink again.
			built := c.mountImage("built")
			for _, p := range []string{canary + "/f", canary + "/w", canary + "/sub/f", canary + "/deep"} {
				if _, err := os.Lstat(filepath.Join(built, p)); err != nil {
					t.Errorf("built image lacks %s: %v", p, err)
				}
			}
			if l, err := os.Readlink(filepath.Join(built, "dev")); err != nil || l != canary {
				t.Errorf("built image's /dev = %q, %v; want the image's symlink", l, err)
			}
			c.ok("cp", filepath.Join(ctx, "f"), "made:/app/")
			c.ok("cp", filepath.Join(ctx, "f"), "made:/rel/cpd")

			names, err := os.ReadDir(canary)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				t.Errorf("created outside the store: %s", filepath.Join(canary, n.Name()))
			}
			c.ok("rm", "-f", "made", "procmade")
		})
	}
}
