package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A root whose every way out points at a canary directory next to it.
func hostileRoot(t *testing.T) (root *Root, dir, canary string) {
	t.Helper()
	base := t.TempDir()
	dir, canary = filepath.Join(base, "root"), filepath.Join(base, "canary")
	for _, d := range []string{dir, canary} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"abs": canary, "rel": "../canary", "deep": "sub/../../../canary", "file": canary + "/f"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir, canary
}

func TestRootStaysInside(t *testing.T) {
	r, dir, canary := hostileRoot(t)
	for _, p := range []string{"abs/x", "/rel/x", "deep/x", "../../canary/x", "file"} {
		f, err := r.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			if _, serr := os.Stat(filepath.Join(canary, "x")); serr == nil {
				t.Fatalf("%s: wrote outside", p)
			}
			continue // a missing in-root parent is fine too
		}
		f.Close()
	}
	fd, err := r.MkdirAllMode("abs/a/b", 0o711, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if err := r.Symlink("/etc/passwd", "abs/a/link"); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("abs"); err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(canary)
	for _, n := range names {
		t.Errorf("outside the root: %s", n.Name())
	}
	// What was created went to the symlinks' targets inside the root.
	if st, err := os.Stat(filepath.Join(dir, canary, "a", "b")); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("in-root mkdir: %v %v", st, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "abs")); !os.IsNotExist(err) {
		t.Errorf("Remove of a symlink left it: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, canary, "a")); err != nil {
		t.Errorf("Remove followed the symlink: %v", err)
	}
	if _, err := r.OpenFile("rel", os.O_RDONLY|unix.O_NOFOLLOW, 0); !errors.Is(err, unix.ELOOP) {
		t.Errorf("O_NOFOLLOW on a final symlink: %v", err)
	}
	if l, err := r.Readlink(canary + "/a/link"); err != nil || l != "/etc/passwd" {
		t.Errorf("Readlink = %q, %v", l, err)
	}
}

func TestResolveLower(t *testing.T) {
	base := t.TempDir()
	top, bottom := filepath.Join(base, "top"), filepath.Join(base, "bottom")
	for _, d := range []string{top + "/usr", bottom + "/usr/lib", bottom + "/real"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		top + "/lib":     "usr/lib",         // relative, resolved in the merged dir
		bottom + "/etc":  "/../../real",     // absolute, ".." stops at the root
		top + "/usr/up":  "../../../../etc", // climbs to the root, then follows etc
		bottom + "/loop": "loop",
	}
	for l, target := range links {
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	layers := []string{top, bottom}
	for in, want := range map[string]string{"lib/x": "usr/lib/x", "etc/hosts": "real/hosts", "usr/up/f": "real/f", "/../etc": "real"} {
		got, _, err := ResolveLower(layers, in)
		if err != nil || got != want {
			t.Errorf("ResolveLower(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, le, err := ResolveLower(layers, "lib"); err != nil || got != "usr/lib" || le == nil || !IsDir(&le.Stat) {
		t.Errorf("ResolveLower(lib) = %q %v %v", got, le, err)
	}
	if _, _, err := ResolveLower(layers, "loop/x"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("symlink loop: %v", err)
	}
}
