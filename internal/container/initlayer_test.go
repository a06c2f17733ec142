package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// hostileImage lays out an image whose mount-point parents point outside
// its root: /etc and /dev are absolute symlinks to a host directory, /proc
// a relative one that climbs out. canary is that host directory.
func hostileImage(t *testing.T, dir, canary string) {
	t.Helper()
	climb := strings.Repeat("../", strings.Count(dir, "/")+2) + strings.TrimPrefix(canary, "/")
	for name, target := range map[string]string{"etc": canary, "dev": canary + "/", "proc": climb} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func assertEmpty(t *testing.T, canary string) {
	t.Helper()
	names, err := os.ReadDir(canary)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		t.Errorf("created outside the root: %s", filepath.Join(canary, n.Name()))
	}
}

// The init layer never writes through an image's symlinks to the host, on
// either driver: native (the layer dir is the whole tree) and overlay (an
// empty upper over the image's layer dirs).
func TestInitLayerHostileSymlinks(t *testing.T) {
	requires.Root(t)
	for _, driver := range []string{"native", "overlay"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			canary := filepath.Join(base, "canary")
			image := filepath.Join(base, "image")
			for _, d := range []string{canary, image} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			hostileImage(t, image, canary)
			dir, lowers := image, []string{image}
			if driver == "overlay" {
				dir = filepath.Join(base, "upper")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := writeInitLayer(dir, lowers); err != nil {
				t.Fatal(err)
			}
			assertEmpty(t, canary)
			// The mount points exist where the runtime will look for them:
			// at the symlinks' targets taken inside the root.
			for _, rel := range []string{"hosts", "hostname", "resolv.conf"} {
				if _, err := os.Lstat(filepath.Join(dir, canary, rel)); err != nil {
					t.Errorf("mount point %s not created inside the root: %v", rel, err)
				}
			}
			// /dev is the runtime's: a symlink there is replaced by a
			// directory (runc writes /dev/fd... by host path).
			for _, rel := range []string{"dev", "dev/pts", "dev/shm", "dev/mqueue"} {
				if st, err := os.Lstat(filepath.Join(dir, rel)); err != nil || !st.IsDir() {
					t.Errorf("/%s is not a directory in the init layer: %v", rel, err)
				}
			}
			if st, err := os.Lstat(filepath.Join(dir, "sys")); err != nil || !st.IsDir() {
				t.Errorf("/sys: %v", err)
			}
		})
	}
}

// A parent the image has keeps its owner and mode when the overlay init
// layer has to create it to hold a missing mount point.
func TestInitLayerKeepsLowerDirAttributes(t *testing.T) {
	requires.Root(t)
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	for _, d := range []string{lower + "/etc", lower + "/dev/pts", upper} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(lower+"/etc", 12, 34); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(lower+"/etc", 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lower+"/etc/hosts", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeInitLayer(upper, []string{lower}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(upper+"/etc", &st); err != nil || st.Uid != 12 || st.Gid != 34 || st.Mode&0o7777 != 0o2750 {
		t.Errorf("etc in init layer: uid %d gid %d mode %o, %v", st.Uid, st.Gid, st.Mode&0o7777, err)
	}
	if _, err := os.Lstat(upper + "/etc/hosts"); !os.IsNotExist(err) {
		t.Errorf("etc/hosts the image has was created again: %v", err)
	}
	for _, rel := range []string{"etc/hostname", "etc/resolv.conf", "dev/shm", "proc", "sys"} {
		if _, err := os.Lstat(filepath.Join(upper, rel)); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	if _, err := os.Lstat(upper + "/dev/pts"); !os.IsNotExist(err) {
		t.Errorf("dev/pts the image has was created again: %v", err)
	}
}
