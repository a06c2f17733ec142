package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	requires.Root(t)
}

// target makes a mount point that is unmounted when the test ends, and
// fails the test if anything is left mounted there.
func target(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := UnmountAll(dir); err != nil {
			t.Error(err)
		}
		if ok, err := mountinfo.Mounted(dir); err != nil || ok {
			t.Errorf("%s still mounted (err %v)", dir, err)
		}
	})
	return dir
}

func TestParseOverlayOptions(t *testing.T) {
	tests := []struct {
		opts    []string
		want    overlayOptions
		wantErr bool
	}{
		{
			opts: []string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "index=off"},
			want: overlayOptions{lowers: []string{"/a", "/b"}, upper: "/u", work: "/w", other: []string{"index=off"}},
		},
		{opts: []string{"lowerdir=/a:/b", "ro"}, want: overlayOptions{lowers: []string{"/a", "/b"}, readonly: true}},
		{opts: []string{"upperdir=/u", "workdir=/w"}, wantErr: true},
		{opts: []string{"lowerdir=/a::/b"}, wantErr: true},
		{opts: []string{"lowerdir=/a", "upperdir=/u"}, wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseOverlayOptions(tc.opts)
		if (err != nil) != tc.wantErr {
			t.Errorf("parse %q: err = %v, want error %v", tc.opts, err, tc.wantErr)
			continue
		}
		if err == nil {
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(overlayOptions{})); diff != "" {
				t.Errorf("parse %q (-want +got):\n%s", tc.opts, diff)
			}
		}
	}
}

// stack builds n lower dirs, layer i adding file fNNN, plus a top layer
// whiteing out f001, under a long directory name so the mount(2) option
// string is well over a page. It returns the lowers, topmost first.
func stack(t *testing.T, n int) []string {
	t.Helper()
	base := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 3))
	var lowers []string
	for i := 1; i <= n; i++ {
		d := filepath.Join(base, fmt.Sprintf("layer-%03d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("f%03d", i)
		if err := os.WriteFile(filepath.Join(d, name), []byte("content of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append([]string{d}, lowers...)
	}
	top := filepath.Join(base, "whiteouts")
	if err := os.MkdirAll(top, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(top, "f001"), unix.S_IFCHR, int(unix.Mkdev(0, 0))); err != nil {
		t.Fatal(err)
	}
	return append([]string{top}, lowers...)
}

func checkStack(t *testing.T, root string, n int) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(root, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if want := "content of " + e.Name(); string(b) != want {
			t.Errorf("%s = %q, want %q", e.Name(), b, want)
		}
	}
	if len(names) != n-1 || slices.Contains(names, "f001") {
		t.Errorf("mount shows %d files (f001 present: %v), want %d without f001", len(names), slices.Contains(names, "f001"), n-1)
	}
}

func TestMountLongLowerdirChain(t *testing.T) {
	requireRoot(t)
	const n = 130
	lowers := stack(t, n)
	upper, work := t.TempDir(), t.TempDir()
	o := overlayOptions{lowers: lowers, upper: upper, work: work}
	if l := len(overlayData(o, lowers)); l <= maxMountData {
		t.Fatalf("option string is %d bytes; the test needs more than %d", l, maxMountData)
	}

	t.Run("MountAll", func(t *testing.T) {
		dst := target(t)
		m := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":"), "ro"}}
		if err := MountAll([]Mount{m}, dst); err != nil {
			t.Fatal(err)
		}
		checkStack(t, dst, n)
	})
	t.Run("Fsconfig", func(t *testing.T) {
		dst := target(t)
		if err := mountOverlayFsconfig(o, dst); err != nil {
			t.Fatal(err)
		}
		checkStack(t, dst, n)
		if err := os.WriteFile(filepath.Join(dst, "new"), []byte("content of new"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
			t.Errorf("write did not reach the upper dir: %v", err)
		}
		if err := os.Remove(filepath.Join(dst, "new")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Legacy", func(t *testing.T) {
		// The fallback for kernels before 6.8: mount(2) with short
		// /proc/self/fd names.
		dst := target(t)
		if err := mountOverlayLegacy(overlayOptions{lowers: lowers}, dst); err != nil {
			t.Fatal(err)
		}
		checkStack(t, dst, n)
	})
}

func TestMountOverlayErrorSaysWhy(t *testing.T) {
	requireRoot(t)
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/nonexistent/a:/nonexistent/b"}}
	err := MountAll([]Mount{m}, target(t))
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "/nonexistent/a") {
		t.Errorf("MountAll with a missing lower = %v, want ENOENT naming the dir", err)
	}
}

func TestBindReadOnly(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := target(t)
	if err := MountAll([]Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a")); err != nil || string(b) != "1" {
		t.Errorf("read through bind = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "b"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through ro bind = %v, want EROFS", err)
	}
	// The source itself stays writable: ro applies to the mount only.
	if err := os.WriteFile(filepath.Join(src, "b"), nil, 0o644); err != nil {
		t.Error(err)
	}
}

func TestMountAllUndoesOnFailure(t *testing.T) {
	requireRoot(t)
	dst := target(t)
	ms := []Mount{
		{Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}},
		{Type: "bogus"},
	}
	if err := MountAll(ms, dst); err == nil {
		t.Fatal("MountAll with an unknown type succeeded")
	}
	if ok, err := mountinfo.Mounted(dst); err != nil || ok {
		t.Errorf("first mount left in place after failure (mounted %v, err %v)", ok, err)
	}
}

func TestUnmountAllStackedNestedBusy(t *testing.T) {
	requireRoot(t)
	dst := target(t)
	if err := unix.Mount("tmpfs", dst, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dst, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dst, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	// An open file keeps the nested mount busy, so it must be detached.
	f, err := os.Create(filepath.Join(sub, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if err := UnmountAll(dst); err != nil {
		t.Fatal(err)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dst))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 0 {
		t.Errorf("%d mounts left under %s", len(mounts), dst)
	}
	if err := UnmountAll(filepath.Join(dst, "missing")); err != nil {
		t.Errorf("UnmountAll of a missing path = %v, want nil", err)
	}
}

func TestDetect(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	if err := CheckOverlay(root); err != nil {
		t.Fatalf("overlay should work on %s here: %v", root, err)
	}
	if got := Detect(root); got != "overlay" {
		t.Errorf("Detect = %q, want overlay", got)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("CheckOverlay left %d entries in %s", len(entries), root)
	}

	// Overlay cannot take an upper dir on overlay.
	lower1, lower2 := t.TempDir(), t.TempDir()
	upper, work := t.TempDir(), t.TempDir()
	merged := target(t)
	err := MountAll([]Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + lower1 + ":" + lower2, "upperdir=" + upper, "workdir=" + work,
	}}}, merged)
	if err != nil {
		t.Fatal(err)
	}
	if got := Detect(filepath.Join(merged, "store")); got != "native" {
		t.Errorf("Detect on overlayfs = %q, want native", got)
	}
}
