package archive

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

func mountOverlay(t *testing.T, target, opts string) {
	t.Helper()
	must(t, os.MkdirAll(target, 0o755))
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
}

func unmount(t *testing.T, target string) {
	t.Helper()
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatalf("unmount %s: %v", target, err)
	}
}

// TestOverlayRoundTrip changes files through a real overlay mount, turns the
// upper dir into a layer tar, and applies it both ways: deleting onto a copy
// of the lower, and as an overlay layer stacked on the lower. Both must show
// what the mount showed.
func TestOverlayRoundTrip(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower, upper, work, merged := base+"/lower", base+"/upper", base+"/work", base+"/merged"
	writeFile(t, lower+"/etc/passwd", "root:x:0:0\n", 0o644)
	writeFile(t, lower+"/etc/group", "root:x:0\n", 0o644)
	writeFile(t, lower+"/etc/hosts", "127.0.0.1 localhost\n", 0o644)
	writeFile(t, lower+"/opq/a", "a", 0o644)
	writeFile(t, lower+"/opq/sub/b", "b", 0o644)
	writeFile(t, lower+"/keep/x", "x", 0o644)
	writeFile(t, lower+"/usr/share/doc/f", "doc", 0o644)
	writeFile(t, lower+"/usr/share/other", "o", 0o644)
	must(t, os.MkdirAll(upper, 0o755))
	must(t, os.MkdirAll(work, 0o755))
	mountOverlay(t, merged, "lowerdir="+lower+",upperdir="+upper+",workdir="+work)

	must(t, os.Remove(merged+"/etc/group"))
	must(t, os.RemoveAll(merged+"/opq"))
	must(t, os.Mkdir(merged+"/opq", 0o755))
	writeFile(t, merged+"/opq/new", "new", 0o644)
	f, err := os.OpenFile(merged+"/etc/passwd", os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString("user:x:1000:1000\n")
	must(t, err)
	must(t, f.Close())
	writeFile(t, merged+"/etc/new-file", "added", 0o600)
	must(t, os.Chmod(merged+"/keep/x", 0o600))
	must(t, os.Chown(merged+"/keep/x", 1000, 1000))
	must(t, os.RemoveAll(merged+"/usr/share/doc"))
	writeFile(t, merged+"/newdir/file", "linked", 0o644)
	must(t, os.Link(merged+"/newdir/file", merged+"/newdir/file2"))
	must(t, os.Symlink("/etc/passwd", merged+"/newdir/link"))
	must(t, unix.Setxattr(merged+"/newdir/file", "user.k", []byte("v"), 0))
	want := manifest(t, merged, false)
	unmount(t, merged)

	if st := lstat(t, upper+"/etc/group"); !rootfs.IsWhiteoutDev(&st) {
		t.Fatalf("kernel did not leave a whiteout device: mode %o", st.Mode)
	}
	if !rootfs.IsOpaque(upper + "/opq") {
		t.Fatal("kernel did not mark opq opaque")
	}

	changes := changeList(t, func(fn func(Change) error) error {
		return OverlayChanges(context.Background(), upper, []string{lower}, fn)
	})
	wantChanges := []string{
		"C /etc", "D /etc/group", "A /etc/new-file", "C /etc/passwd",
		"C /keep", "C /keep/x",
		"A /newdir", "A /newdir/file", "A /newdir/file2", "A /newdir/link",
		"C /opq", "D /opq/a", "A /opq/new", "D /opq/sub",
		"C /usr", "C /usr/share", "D /usr/share/doc",
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("OverlayChanges:\n got %q\nwant %q", changes, wantChanges)
	}

	layer := overlayTar(t, upper)
	if again := overlayTar(t, upper); !bytes.Equal(layer, again) {
		t.Fatal("WriteOverlayDiff is not deterministic")
	}
	names := tarNames(t, layer)
	for _, n := range []string{"etc/.wh.group:0", "usr/share/.wh.doc:0", "newdir/file2:1"} {
		if !slices.Contains(names, n) {
			t.Errorf("layer lacks %s: %v", n, names)
		}
	}
	if i := slices.Index(names, "opq/:5"); i < 0 || i+1 >= len(names) || names[i+1] != "opq/.wh..wh..opq:0" {
		t.Errorf("opaque marker not right after its dir: %v", names)
	}
	assertNoOverlayXattrs(t, layer)

	t.Run("delete mode onto a copy of the lower", func(t *testing.T) {
		target := base + "/copy"
		if out, err := exec.Command("cp", "-a", lower, target).CombinedOutput(); err != nil {
			t.Fatalf("cp -a: %v: %s", err, out)
		}
		mustApply(t, target, layer, ApplyOptions{Whiteouts: WhiteoutDelete})
		diffManifests(t, want, manifest(t, target, false))
	})

	t.Run("overlay mode as a lower layer", func(t *testing.T) {
		layerDir, view := base+"/layer", base+"/view"
		must(t, os.Mkdir(layerDir, 0o755))
		mustApply(t, layerDir, layer, ApplyOptions{Whiteouts: WhiteoutOverlay, Lower: []string{lower}})
		mountOverlay(t, view, "lowerdir="+layerDir+":"+lower)
		diffManifests(t, want, manifest(t, view, false))
		unmount(t, view)
	})
}

func assertNoOverlayXattrs(t *testing.T, layer []byte) {
	t.Helper()
	if bytes.Contains(layer, []byte("trusted.overlay")) {
		t.Error("layer leaks trusted.overlay.* xattrs")
	}
}
