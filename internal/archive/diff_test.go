package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// buildRichTree makes a tree with every kind of entry a layer can carry.
func buildRichTree(t *testing.T, root string) {
	t.Helper()
	writeFile(t, root+"/etc/passwd", "root:x:0:0\n", 0o644)
	writeFile(t, root+"/usr/bin/ping", "ELF ping", 0o755)
	writeFile(t, root+"/usr/bin/su", "ELF su", 0o755)
	writeFile(t, root+"/home/user/notes", strings.Repeat("n", 100000), 0o600)
	writeFile(t, root+"/empty-file", "", 0o644)
	must(t, os.Chown(root+"/home/user", 1000, 1000))
	must(t, os.Chown(root+"/home/user/notes", 1000, 1000))
	must(t, unix.Chmod(root+"/usr/bin/su", 0o4755)) // os.Chmod needs os.ModeSetuid
	must(t, unix.Setxattr(root+"/usr/bin/ping", "security.capability", []byte(capNetRaw), 0))
	must(t, unix.Setxattr(root+"/etc/passwd", "user.origin", []byte("test"), 0))
	must(t, os.Link(root+"/usr/bin/ping", root+"/usr/bin/ping6"))
	must(t, os.Link(root+"/usr/bin/ping", root+"/etc/ping-hardlink"))
	must(t, os.Symlink("/usr/bin/ping", root+"/usr/bin/abs-link"))
	must(t, os.Symlink("../nowhere", root+"/usr/bin/dangling"))
	must(t, os.MkdirAll(root+"/tmp", 0o755))
	must(t, unix.Chmod(root+"/tmp", 0o1777))
	must(t, os.MkdirAll(root+"/empty/dir", 0o700))
	must(t, unix.Mkfifo(root+"/run-fifo", 0o640))
	must(t, os.MkdirAll(root+"/dev", 0o755))
	must(t, unix.Mknod(root+"/dev/null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Lchown(root+"/usr/bin/abs-link", 1000, 1000))
	// Distinct mtimes, set last so creating children does not bump them.
	ts := []unix.Timespec{{Sec: 1500000000, Nsec: 5}, {Sec: 1500000000, Nsec: 999}}
	for i, p := range []string{"/usr/bin/abs-link", "/etc/passwd", "/empty/dir", "/empty", "/usr/bin", "/usr", "/etc", "/tmp"} {
		ts[1].Sec = int64(1500000000 + i*1000)
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, root+p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func TestRoundTripTreeDiff(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	buildRichTree(t, src)
	tar1 := treeTar(t, "", src, DiffOptions{})
	if again := treeTar(t, "", src, DiffOptions{}); !bytes.Equal(tar1, again) {
		t.Fatal("same tree twice gave different tars")
	}

	dst := t.TempDir()
	mustApply(t, dst, tar1, ApplyOptions{})
	tar2 := treeTar(t, "", dst, DiffOptions{})
	if sha256.Sum256(tar1) != sha256.Sum256(tar2) {
		t.Errorf("tar of the applied tree differs from the original tar:\n%v\n%v", tarNames(t, tar1), tarNames(t, tar2))
	}
	diffManifests(t, manifest(t, src, true), manifest(t, dst, true))

	// The metadata that matters survived, independently of the tar check.
	if st := lstat(t, dst+"/usr/bin/su"); st.Mode&0o7777 != 0o4755 {
		t.Errorf("su mode %o", st.Mode&0o7777)
	}
	if v, err := lgetxattr(dst+"/usr/bin/ping6", "security.capability"); err != nil || string(v) != capNetRaw {
		t.Errorf("capability on ping6: %x %v", v, err)
	}
	if a, b := lstat(t, dst+"/usr/bin/ping"), lstat(t, dst+"/etc/ping-hardlink"); a.Ino != b.Ino {
		t.Error("hardlinks not preserved")
	}
	// The first path in walk order owns the content; the others link to it.
	names := tarNames(t, tar1)
	for _, want := range []string{"etc/ping-hardlink:0", "usr/bin/ping:1", "usr/bin/ping6:1", "dev/null:3", "run-fifo:6", "usr/bin/abs-link:2", "tmp/:5", "empty/dir/:5"} {
		if !slices.Contains(names, want) {
			t.Errorf("tar lacks %s; has %v", want, names)
		}
	}
	if !slices.IsSortedFunc(names, func(a, b string) int {
		a, b = strings.TrimSuffix(strings.Split(a, ":")[0], "/"), strings.TrimSuffix(strings.Split(b, ":")[0], "/")
		if pathLess(a, b) {
			return -1
		}
		return 1
	}) {
		t.Errorf("entries not in walk order: %v", names)
	}
}

func TestTarFormatIsNormalized(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	buildRichTree(t, src)
	epoch := time.Unix(1500002500, 0)
	data := treeTar(t, "", src, DiffOptions{SourceDateEpoch: &epoch})
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.ModTime.After(epoch) || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: mtime %v not clamped to %v in whole seconds", h.Name, h.ModTime, epoch)
		}
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: host-dependent fields %q %q %v %v", h.Name, h.Uname, h.Gname, h.AccessTime, h.ChangeTime)
		}
		// etc/ had mtime 1500006000, after the epoch: clamped.
		if h.Name == "etc/" && h.ModTime.Unix() != epoch.Unix() {
			t.Errorf("etc/ mtime %v, want clamped to %v", h.ModTime, epoch)
		}
		if h.Name == "usr/bin/abs-link" && h.ModTime.Unix() != 1500000000 {
			t.Errorf("abs-link mtime %v, want 1500000000 (older than epoch, kept)", h.ModTime)
		}
	}
}

// mutateTree turns a copy of buildRichTree into the "upper" of a tree diff.
func mutateTree(t *testing.T, root string) {
	t.Helper()
	writeFile(t, root+"/etc/passwd", "root:x:0:0\nuser:x:1000\n", 0o644) // content
	must(t, unix.Setxattr(root+"/etc/passwd", "user.origin", []byte("test"), 0))
	must(t, os.Remove(root+"/usr/bin/su"))                      // delete
	must(t, os.RemoveAll(root+"/empty"))                        // delete a dir
	writeFile(t, root+"/home/user/new", "added", 0o644)         // add
	must(t, os.Chmod(root+"/home/user/notes", 0o640))           // mode
	must(t, os.Remove(root+"/usr/bin/dangling"))                // symlink target
	must(t, os.Symlink("/elsewhere", root+"/usr/bin/dangling")) //
	must(t, os.Remove(root+"/run-fifo"))                        // type change
	must(t, os.Mkdir(root+"/run-fifo", 0o755))                  //
	writeFile(t, root+"/run-fifo/inside", "x", 0o644)           //
	// mtime only: not a change.
	must(t, os.Chtimes(root+"/empty-file", time.Unix(1, 0), time.Unix(2, 0)))
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	mustApply(t, dst, treeTar(t, "", src, DiffOptions{}), ApplyOptions{})
}

func TestTreeDiffAppliesToUpper(t *testing.T) {
	requireRoot(t)
	lower, upper, target := t.TempDir(), t.TempDir(), t.TempDir()
	buildRichTree(t, lower)
	copyTree(t, lower, upper)
	copyTree(t, lower, target)
	mutateTree(t, upper)

	changes := changeList(t, func(fn func(Change) error) error {
		return TreeChanges(context.Background(), lower, upper, fn)
	})
	wantChanges := []string{
		"C /etc", "C /etc/passwd",
		"C /home", "C /home/user", "A /home/user/new", "C /home/user/notes",
		"D /empty",
		"C /run-fifo", "A /run-fifo/inside",
		"C /usr", "C /usr/bin", "C /usr/bin/dangling", "D /usr/bin/su",
	}
	slices.SortFunc(wantChanges, func(a, b string) int {
		if pathLess(a[2:], b[2:]) {
			return -1
		}
		return 1
	})
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("TreeChanges:\n got %q\nwant %q", changes, wantChanges)
	}

	diff := treeTar(t, lower, upper, DiffOptions{})
	mustApply(t, target, diff, ApplyOptions{Whiteouts: WhiteoutDelete})
	// Everything equal except the mtime-only change, which is not carried.
	want, got := manifest(t, upper, false), manifest(t, target, false)
	for _, m := range []map[string]string{want, got} {
		m["empty-file"] = strings.Split(m["empty-file"], " mtime=")[0]
	}
	diffManifests(t, want, got)
	if !slices.Contains(tarNames(t, diff), "usr/bin/.wh.su:0") {
		t.Errorf("no whiteout for su in %v", tarNames(t, diff))
	}
	if slices.Contains(tarNames(t, diff), "empty-file:0") {
		t.Error("an mtime-only change was written")
	}

	// No changes between a tree and itself.
	if c := changeList(t, func(fn func(Change) error) error {
		return TreeChanges(context.Background(), upper, target, fn)
	}); len(c) != 0 {
		t.Errorf("changes after applying the diff: %v", c)
	}
}

func TestOverlayDiffRefusesRedirectAndMetacopy(t *testing.T) {
	requireRoot(t)
	for _, x := range []string{overlayRedirectXattr, overlayMetacopyXattr} {
		upper := t.TempDir()
		writeFile(t, upper+"/d/f", "x", 0o644)
		target := upper + "/d"
		if x == overlayMetacopyXattr {
			target = upper + "/d/f"
		}
		must(t, unix.Setxattr(target, x, []byte("/other"), 0))
		err := WriteOverlayDiff(context.Background(), &bytes.Buffer{}, upper, DiffOptions{})
		if !errors.Is(err, ErrUnsupportedOverlay) {
			t.Errorf("%s: err = %v, want ErrUnsupportedOverlay", x, err)
		}
		err = OverlayChanges(context.Background(), upper, nil, func(Change) error { return nil })
		if !errors.Is(err, ErrUnsupportedOverlay) {
			t.Errorf("%s: OverlayChanges err = %v", x, err)
		}
	}
}
