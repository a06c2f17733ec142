// Package testsuite holds the behaviour every snapshot driver must have, run
// against real mounts: lifecycle and its errors, whiteouts and opaque
// directories written in the driver's form, metadata seen through a mount,
// isolation of writable snapshots, usage, long layer chains and concurrent
// commits. Drivers call Run from their tests. It needs root.
package testsuite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
)

// Run runs every test against snapshotters made by newSnapshotter, a fresh
// empty store for each test, kept under t.TempDir().
func Run(t *testing.T, newSnapshotter func(t *testing.T) snapshot.Snapshotter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s snapshot.Snapshotter)
	}{
		{"Lifecycle", testLifecycle},
		{"Errors", testErrors},
		{"RemoveParentWithChildren", testRemoveParent},
		{"Whiteout", testWhiteout},
		{"Opaque", testOpaque},
		{"Metadata", testMetadata},
		{"ActiveDoesNotChangeParent", testActiveIsolated},
		{"SiblingsIndependent", testSiblings},
		{"ViewReadOnly", testViewReadOnly},
		{"Usage", testUsage},
		{"ManyLayers", testManyLayers},
		{"ConcurrentCommit", testConcurrentCommit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("snapshot tests mount filesystems and need root")
			}
			checkNoMountsLeft(t)
			tc.fn(t, newSnapshotter(t))
		})
	}
}

// checkNoMountsLeft registers, before anything else is set up, a cleanup
// that runs after every other one: nothing may stay mounted under the
// test's temporary directories.
func checkNoMountsLeft(t *testing.T) {
	base := filepath.Dir(t.TempDir())
	t.Cleanup(func() {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(base))
		if err != nil {
			t.Errorf("read mount table: %v", err)
			return
		}
		for _, m := range mounts {
			t.Errorf("left mounted: %s (%s)", m.Mountpoint, m.FSType)
		}
	})
}

// mount mounts ms on a new directory, unmounted when the test ends.
func mount(t *testing.T, ms []snapshot.Mount) string {
	t.Helper()
	target := t.TempDir()
	if err := snapshot.MountAll(ms, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if ok, err := mountinfo.Mounted(target); err != nil || ok {
			t.Errorf("%s still mounted after UnmountAll (err %v)", target, err)
		}
	})
	return target
}

// layer writes an active snapshot's contents directly into its Dir, with
// deletions in the driver's whiteout form, as layer unpacking does.
type layer struct {
	t   *testing.T
	s   snapshot.Snapshotter
	key string
	dir string
}

func prepare(t *testing.T, s snapshot.Snapshotter, key, parent string) *layer {
	t.Helper()
	if _, err := s.Prepare(context.Background(), key, parent); err != nil {
		t.Fatal(err)
	}
	dir, err := s.Dir(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &layer{t: t, s: s, key: key, dir: dir}
}

func (l *layer) path(name string) string { return filepath.Join(l.dir, name) }

func (l *layer) file(name, content string) *layer {
	l.t.Helper()
	if err := os.MkdirAll(filepath.Dir(l.path(name)), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(l.path(name), []byte(content), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return l
}

func (l *layer) mkdir(name string) *layer {
	l.t.Helper()
	if err := os.MkdirAll(l.path(name), 0o755); err != nil {
		l.t.Fatal(err)
	}
	return l
}

// remove deletes name from the layers below.
func (l *layer) remove(name string) *layer {
	l.t.Helper()
	p := l.path(name)
	if err := os.RemoveAll(p); err != nil {
		l.t.Fatal(err)
	}
	if l.s.Whiteouts() == snapshot.WhiteoutsOverlay {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			l.t.Fatal(err)
		}
		if err := unix.Mknod(p, unix.S_IFCHR, int(unix.Mkdev(0, 0))); err != nil {
			l.t.Fatal(err)
		}
	}
	return l
}

// opaque makes directory name hide everything the layers below have in it.
// Entries the layer adds to it come after.
func (l *layer) opaque(name string) *layer {
	l.t.Helper()
	p := l.path(name)
	if err := os.RemoveAll(p); err != nil {
		l.t.Fatal(err)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		l.t.Fatal(err)
	}
	if l.s.Whiteouts() == snapshot.WhiteoutsOverlay {
		if err := unix.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			l.t.Fatal(err)
		}
	}
	return l
}

func (l *layer) commit(name string) {
	l.t.Helper()
	if err := l.s.Commit(context.Background(), name, l.key); err != nil {
		l.t.Fatal(err)
	}
}

var viewSeq atomic.Int64

// viewOf mounts a read-only view of committed snapshot name.
func viewOf(t *testing.T, s snapshot.Snapshotter, name string) string {
	t.Helper()
	key := fmt.Sprintf("view-%s-%d", name, viewSeq.Add(1))
	ms, err := s.View(context.Background(), key, name)
	if err != nil {
		t.Fatal(err)
	}
	return mount(t, ms)
}

// tree lists a directory: relative path -> "dir", "file:CONTENT" or
// "link:TARGET".
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link:" + target
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = "file:" + string(b)
		default:
			out[rel] = d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkTree(t *testing.T, root string, want map[string]string) {
	t.Helper()
	if diff := cmp.Diff(want, tree(t, root)); diff != "" {
		t.Errorf("tree of %s (-want +got):\n%s", root, diff)
	}
}

func testLifecycle(t *testing.T, s snapshot.Snapshotter) {
	ctx := context.Background()
	prepare(t, s, "base-active", "").file("a", "1").commit("L1")

	info, err := s.Stat(ctx, "L1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != snapshot.KindCommitted || info.Parent != "" || info.Key != "L1" || info.Created.IsZero() {
		t.Errorf("Stat(L1) = %+v, want committed base", info)
	}
	if _, err := s.Stat(ctx, "base-active"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Stat of committed key = %v, want ErrNotFound", err)
	}

	ms, err := s.Prepare(ctx, "child", "L1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Mounts(ctx, "child")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ms, again); diff != "" {
		t.Errorf("Mounts differ from Prepare's (-prepare +mounts):\n%s", diff)
	}
	if _, err := s.View(ctx, "v", "L1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, "v0", ""); err != nil {
		t.Fatal(err)
	}
	checkTree(t, mount(t, ms), map[string]string{"a": "file:1"})

	l1dir, err := s.Dir(ctx, "L1")
	if err != nil {
		t.Fatal(err)
	}
	lowers, err := s.LowerDirs(ctx, "child")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lowers, []string{l1dir}) {
		t.Errorf("LowerDirs(child) = %q, want [%q]", lowers, l1dir)
	}

	var got []string
	err = s.Walk(ctx, func(i snapshot.Info) error {
		got = append(got, fmt.Sprintf("%s<%s>%s", i.Key, i.Parent, i.Kind))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"L1<>committed", "child<L1>active", "v0<>view", "v<L1>view"}
	if !slices.Equal(got, want) {
		t.Errorf("Walk = %q, want %q", got, want)
	}

	for _, k := range []string{"child", "v", "v0", "L1"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	n := 0
	if err := s.Walk(ctx, func(snapshot.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d snapshots left after removing all", n)
	}
	if _, err := os.Stat(l1dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory of removed L1 still there: %v", err)
	}
}

func testErrors(t *testing.T, s snapshot.Snapshotter) {
	ctx := context.Background()
	prepare(t, s, "k", "").commit("L1")
	prepare(t, s, "k2", "")

	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Remove(ctx, "missing"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Remove(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Prepare(ctx, "k2", ""); !errors.Is(err, metadata.ErrExists) {
		t.Errorf("Prepare of existing key = %v, want ErrExists", err)
	}
	if _, err := s.Prepare(ctx, "L1", ""); !errors.Is(err, metadata.ErrExists) {
		t.Errorf("Prepare under a committed name = %v, want ErrExists", err)
	}
	if _, err := s.Prepare(ctx, "x", "missing"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Prepare over missing parent = %v, want ErrNotFound", err)
	}
	if _, err := s.Prepare(ctx, "x", "k2"); err == nil {
		t.Error("Prepare over an active parent succeeded")
	}
	if _, err := s.View(ctx, "x", "k2"); err == nil {
		t.Error("View over an active parent succeeded")
	}
	if err := s.Commit(ctx, "L1", "k2"); !errors.Is(err, metadata.ErrExists) {
		t.Errorf("Commit to a taken name = %v, want ErrExists", err)
	}
	if info, err := s.Stat(ctx, "k2"); err != nil || info.Kind != snapshot.KindActive {
		t.Errorf("after failed commit, Stat(k2) = %+v, %v; want still active", info, err)
	}
	if err := s.Commit(ctx, "L2", "k2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "L3", "k2"); err == nil {
		t.Error("second Commit of one key succeeded")
	}
	if err := s.Commit(ctx, "L4", "L1"); err == nil {
		t.Error("Commit of a committed snapshot succeeded")
	}
	if _, err := s.Mounts(ctx, "L1"); err == nil {
		t.Error("Mounts of a committed snapshot succeeded")
	}
	if _, err := s.View(ctx, "v", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "L5", "v"); err == nil {
		t.Error("Commit of a view succeeded")
	}
	if _, err := s.Prepare(ctx, "", ""); err == nil {
		t.Error("Prepare with empty key succeeded")
	}
}

func testRemoveParent(t *testing.T, s snapshot.Snapshotter) {
	ctx := context.Background()
	prepare(t, s, "k", "").file("a", "1").commit("L1")
	prepare(t, s, "k", "L1").commit("L2")
	ms, err := s.View(ctx, "v", "L2")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"L1", "L2"} {
		if err := s.Remove(ctx, k); !errors.Is(err, snapshot.ErrInUse) {
			t.Errorf("Remove(%s) with a child = %v, want ErrInUse", k, err)
		}
		if _, err := s.Stat(ctx, k); err != nil {
			t.Errorf("%s gone after refused Remove: %v", k, err)
		}
	}
	root := mount(t, ms)
	checkTree(t, root, map[string]string{"a": "file:1"})
	if err := snapshot.UnmountAll(root); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"v", "L2", "L1"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Errorf("Remove(%s) = %v", k, err)
		}
	}
}

func testWhiteout(t *testing.T, s snapshot.Snapshotter) {
	prepare(t, s, "k1", "").file("keep", "1").file("d/gone-from-1", "1").commit("L1")
	prepare(t, s, "k2", "L1").file("added-in-2", "2").file("d/added-in-2", "2").commit("L2")
	prepare(t, s, "k3", "L2").remove("added-in-2").remove("d/added-in-2").remove("d/gone-from-1").commit("L3")

	checkTree(t, viewOf(t, s, "L3"), map[string]string{"keep": "file:1", "d": "dir"})
	// The layers below are untouched.
	checkTree(t, viewOf(t, s, "L2"), map[string]string{
		"keep": "file:1", "d": "dir", "d/gone-from-1": "file:1", "added-in-2": "file:2", "d/added-in-2": "file:2",
	})
	// Something deleted can come back in a later layer.
	prepare(t, s, "k4", "L3").file("added-in-2", "4").commit("L4")
	checkTree(t, viewOf(t, s, "L4"), map[string]string{"keep": "file:1", "d": "dir", "added-in-2": "file:4"})
}

func testOpaque(t *testing.T, s snapshot.Snapshotter) {
	prepare(t, s, "k1", "").file("o/from-1", "1").file("o/sub/deep-1", "1").file("other", "1").commit("L1")
	prepare(t, s, "k2", "L1").file("o/from-2", "2").mkdir("o/dir-2").commit("L2")
	prepare(t, s, "k3", "L2").opaque("o").file("o/from-3", "3").file("o/sub/new-3", "3").commit("L3")

	checkTree(t, viewOf(t, s, "L3"), map[string]string{
		"o": "dir", "o/from-3": "file:3", "o/sub": "dir", "o/sub/new-3": "file:3", "other": "file:1",
	})
	// An active snapshot on top sees the same.
	ms, err := s.Prepare(context.Background(), "k4", "L3")
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, mount(t, ms), map[string]string{
		"o": "dir", "o/from-3": "file:3", "o/sub": "dir", "o/sub/new-3": "file:3", "other": "file:1",
	})
}

type meta struct {
	Mode     uint32
	UID, GID uint32
	Rdev     uint64
	Mtime    int64
	Xattr    string
}

func lstatMeta(t *testing.T, p string) meta {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	m := meta{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Rdev: st.Rdev, Mtime: st.Mtim.Sec}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(p, "user.strata", buf); err == nil {
		m.Xattr = string(buf[:n])
	}
	return m
}

func testMetadata(t *testing.T, s snapshot.Snapshotter) {
	l := prepare(t, s, "k1", "")
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	l.file("bin/tool", "#!/bin/sh\n").mkdir("secret").file("data", "0123456789")
	must(os.Chown(l.path("bin/tool"), 1000, 1001))
	must(unix.Chmod(l.path("bin/tool"), 0o4755))
	must(os.Chown(l.path("secret"), 2, 3))
	must(unix.Chmod(l.path("secret"), 0o1710))
	must(os.Symlink("/etc/passwd", l.path("abs-link")))
	must(os.Lchown(l.path("abs-link"), 5, 6))
	must(unix.Setxattr(l.path("data"), "user.strata", []byte("hello"), 0))
	must(os.Link(l.path("data"), l.path("data-link")))
	must(unix.Mkfifo(l.path("fifo"), 0o640))
	must(unix.Mknod(l.path("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chtimes(l.path("data"), mtime, mtime))
	must(os.Chtimes(l.path("secret"), mtime, mtime))
	names := []string{"bin/tool", "secret", "abs-link", "data", "data-link", "fifo", "null"}
	want := map[string]meta{}
	for _, n := range names {
		want[n] = lstatMeta(t, l.path(n))
	}
	l.commit("L1")
	prepare(t, s, "k2", "L1").file("top", "2").commit("L2")

	for _, top := range []string{"L1", "L2"} {
		root := viewOf(t, s, top)
		got := map[string]meta{}
		for _, n := range names {
			got[n] = lstatMeta(t, filepath.Join(root, n))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("metadata in view of %s (-want +got):\n%s", top, diff)
		}
		var a, b unix.Stat_t
		must(unix.Lstat(filepath.Join(root, "data"), &a))
		must(unix.Lstat(filepath.Join(root, "data-link"), &b))
		if a.Ino != b.Ino || a.Nlink != 2 {
			t.Errorf("view of %s: data and data-link are not one inode with 2 links (ino %d/%d, nlink %d)", top, a.Ino, b.Ino, a.Nlink)
		}
	}
}

func testActiveIsolated(t *testing.T, s snapshot.Snapshotter) {
	prepare(t, s, "k1", "").file("keep", "one").file("del", "x").file("d/inner", "i").commit("L1")
	parentTree := map[string]string{"keep": "file:one", "del": "file:x", "d": "dir", "d/inner": "file:i"}

	ms, err := s.Prepare(context.Background(), "c", "L1")
	if err != nil {
		t.Fatal(err)
	}
	root := mount(t, ms)
	if err := os.WriteFile(filepath.Join(root, "keep"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Appending through an existing descriptor is the path where a shared
	// inode would leak.
	f, err := os.OpenFile(filepath.Join(root, "d/inner"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("+more"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "del")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, map[string]string{"keep": "file:changed", "d": "dir", "d/inner": "file:i+more", "new": "file:n"})
	checkTree(t, viewOf(t, s, "L1"), parentTree)
	l1, err := s.Dir(context.Background(), "L1")
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, l1, parentTree)
}

func testSiblings(t *testing.T, s snapshot.Snapshotter) {
	ctx := context.Background()
	prepare(t, s, "k1", "").file("f", "base").commit("L1")
	roots := map[string]string{}
	for _, k := range []string{"a", "b"} {
		ms, err := s.Prepare(ctx, k, "L1")
		if err != nil {
			t.Fatal(err)
		}
		roots[k] = mount(t, ms)
	}
	for k, root := range roots {
		if err := os.WriteFile(filepath.Join(root, "f"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "only-"+k), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, root := range roots {
		checkTree(t, root, map[string]string{"f": "file:" + k, "only-" + k: "file:" + k})
		if err := snapshot.UnmountAll(root); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, "L2"+k, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b"} {
		checkTree(t, viewOf(t, s, "L2"+k), map[string]string{"f": "file:" + k, "only-" + k: "file:" + k})
	}
	checkTree(t, viewOf(t, s, "L1"), map[string]string{"f": "file:base"})
}

func testViewReadOnly(t *testing.T, s snapshot.Snapshotter) {
	prepare(t, s, "k1", "").file("a", "1").commit("L1")
	prepare(t, s, "k2", "L1").file("b", "2").commit("L2")
	for _, name := range []string{"L1", "L2"} {
		root := viewOf(t, s, name)
		err := os.WriteFile(filepath.Join(root, "w"), nil, 0o644)
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("write into view of %s = %v, want EROFS", name, err)
		}
	}
	ms, err := s.View(context.Background(), "empty", "")
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, mount(t, ms), map[string]string{})
}

func testUsage(t *testing.T, s snapshot.Snapshotter) {
	l := prepare(t, s, "k1", "").file("a", strings.Repeat("x", 1000)).file("c", strings.Repeat("y", 24)).mkdir("d")
	if err := os.Link(l.path("a"), l.path("b")); err != nil {
		t.Fatal(err)
	}
	l.commit("L1")
	u, err := s.Usage(context.Background(), "L1")
	if err != nil {
		t.Fatal(err)
	}
	// The root, a (= b), c and d.
	if want := (snapshot.Usage{Size: 1024, Inodes: 4}); u != want {
		t.Errorf("Usage = %+v, want %+v", u, want)
	}
	if _, err := s.Usage(context.Background(), "missing"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Usage(missing) = %v, want ErrNotFound", err)
	}
}

// testManyLayers stacks more layers than fit in one page of overlay mount
// options.
func testManyLayers(t *testing.T, s snapshot.Snapshotter) {
	const n = 130
	want := map[string]string{}
	parent := ""
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("f%03d", i)
		layerName := fmt.Sprintf("L%03d", i)
		prepare(t, s, "k", parent).file(name, "layer "+name).commit(layerName)
		want[name] = "file:layer " + name
		parent = layerName
	}
	prepare(t, s, "k", parent).remove("f001").commit("top")
	delete(want, "f001")
	checkTree(t, viewOf(t, s, "top"), want)

	ms, err := s.Prepare(context.Background(), "rw", "top")
	if err != nil {
		t.Fatal(err)
	}
	root := mount(t, ms)
	if err := os.WriteFile(filepath.Join(root, "f002"), []byte("rewritten"), 0o644); err != nil {
		t.Fatal(err)
	}
	want["f002"] = "file:rewritten"
	checkTree(t, root, want)
	if len(want) != n-1 {
		t.Fatalf("test wants %d files, expected %d", len(want), n-1)
	}
}

// testConcurrentCommit races several writers to commit the same layer, as
// two processes unpacking one image do: one wins, the others learn the name
// exists and drop their copy.
func testConcurrentCommit(t *testing.T, s snapshot.Snapshotter) {
	ctx := context.Background()
	const writers = 4
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			key := fmt.Sprintf("unpack-%d", i)
			errs[i] = func() error {
				if _, err := s.Prepare(ctx, key, ""); err != nil {
					return err
				}
				dir, err := s.Dir(ctx, key)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, "f"), []byte("same"), 0o644); err != nil {
					return err
				}
				err = s.Commit(ctx, "shared", key)
				if errors.Is(err, metadata.ErrExists) {
					if rerr := s.Remove(ctx, key); rerr != nil {
						return rerr
					}
				}
				return err
			}()
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, metadata.ErrExists):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers committed, want exactly 1", won)
	}
	var keys []string
	if err := s.Walk(ctx, func(i snapshot.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"shared"}) {
		t.Errorf("snapshots after the race = %q, want [shared]", keys)
	}
	checkTree(t, viewOf(t, s, "shared"), map[string]string{"f": "file:same"})
}
