package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDropCopyUps(t *testing.T) {
	t.Parallel()
	lower, upper, outside := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{"etc", "etc/sub", "var", "opq", "full", "mode", "link"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
	}
	for _, d := range []string{"etc/sub", "var", "opq", "full", "mode"} {
		os.MkdirAll(filepath.Join(upper, d), 0o755)
	}
	os.Chmod(filepath.Join(upper, "mode"), 0o700)
	os.WriteFile(filepath.Join(upper, "full", "f"), nil, 0o644)
	if err := unix.Setxattr(filepath.Join(upper, "opq"), OpaqueXattr, []byte("y"), 0); err != nil {
		t.Skipf("trusted xattrs: %v", err)
	}
	os.Mkdir(filepath.Join(outside, "victim"), 0o755)
	os.Symlink(outside, filepath.Join(upper, "link"))

	err := DropCopyUps(upper, []string{lower}, []string{"etc", "etc/sub", "var", "opq", "full", "mode", "link/victim", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"etc": false, "etc/sub": false, "var": false, // copied up only: gone
		"opq": true, "full": true, "mode": true, // opaque, not empty, chmodded: kept
	} {
		_, err := os.Lstat(filepath.Join(upper, rel))
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", rel, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Errorf("followed a symlink out of upper: %v", err)
	}
}
