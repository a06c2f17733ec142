package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"

	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/store"
)

func cachePlan(sharing instructions.ShareMode) mountPlan {
	return mountPlan{id: "/root/.cache", target: "/root/.cache", m: &instructions.Mount{Type: instructions.MountTypeCache, CacheSharing: sharing}}
}

func TestCacheMountSharing(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{s: s}

	// shared: every user gets the same directory at once.
	d1, r1, err := b.cacheMountDir(ctx, cachePlan(instructions.MountSharingShared))
	if err != nil {
		t.Fatal(err)
	}
	d2, r2, err := b.cacheMountDir(ctx, cachePlan(""))
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("shared gave %s and %s", d1, d2)
	}
	r1()
	r2()

	// private: a second user while the first holds it gets its own.
	p1, rp1, err := b.cacheMountDir(ctx, cachePlan(instructions.MountSharingPrivate))
	if err != nil {
		t.Fatal(err)
	}
	p2, rp2, err := b.cacheMountDir(ctx, cachePlan(instructions.MountSharingPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if p1 != d1 || p2 == p1 {
		t.Errorf("private gave %s then %s (shared dir %s)", p1, p2, d1)
	}
	rp2()
	rp1()
	if p, r, _ := b.cacheMountDir(ctx, cachePlan(instructions.MountSharingPrivate)); p != p1 {
		t.Errorf("after release, private gave %s, want %s", p, p1)
	} else {
		r()
	}

	// locked: a second user waits; a cancelled wait gives up.
	_, rl, err := b.cacheMountDir(ctx, cachePlan(instructions.MountSharingLocked))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := b.cacheMountDir(cctx, cachePlan(instructions.MountSharingLocked)); !errors.Is(err, context.Canceled) {
		t.Errorf("locked while held: %v", err)
	}
	rl()
	if _, r, err := b.cacheMountDir(cctx, cachePlan(instructions.MountSharingLocked)); err != nil {
		t.Errorf("locked after release: %v", err)
	} else {
		r()
	}
}

func TestCacheMountDirOwnerAndMode(t *testing.T) {
	requires.Root(t)
	dir := filepath.Join(t.TempDir(), "c")
	uid, gid, mode := uint64(123), uint64(456), uint64(0o710)
	m := &instructions.Mount{UID: &uid, GID: &gid, Mode: &mode}
	if err := ensureCacheDir(dir, m); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o710 || st.Uid != 123 || st.Gid != 456 {
		t.Errorf("mode %o owner %d:%d", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	// A second call keeps the directory and its contents.
	os.WriteFile(filepath.Join(dir, "kept"), nil, 0o644)
	if err := ensureCacheDir(dir, &instructions.Mount{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kept")); err != nil {
		t.Error("the cache directory was replaced")
	}
	left, _ := filepath.Glob(dir + ".new-*")
	if len(left) != 0 {
		t.Errorf("temporary dirs left: %v", left)
	}
}

func TestMissingPathsAndStubs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	os.Symlink("/root", filepath.Join(dir, "home"))
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	got := missingPaths(root, "/home/.cache/x")
	want := []string{"root/.cache", "root/.cache/x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("missingPaths = %v, want %v", got, want)
	}
	if len(missingPaths(root, "/home")) != 0 || len(missingPaths(root, "/root")) != 0 {
		t.Error("an existing path is missing")
	}
	// What the runtime made is removed; what a RUN put there stays.
	os.Mkdir(filepath.Join(dir, "root/empty"), 0o755)
	os.Mkdir(filepath.Join(dir, "full"), 0o755)
	os.WriteFile(filepath.Join(dir, "full/f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "stub"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "written"), []byte("data"), 0o644)
	// A RUN that turned a stub's parent into a symlink to the host does
	// not get an empty host directory removed.
	canary := t.TempDir()
	os.Mkdir(filepath.Join(canary, "hostdir"), 0o755)
	os.Symlink(canary, filepath.Join(dir, "swapped"))
	for _, p := range []string{"home/empty", "full", "stub", "written", "swapped/hostdir"} {
		removeStub(root, p)
	}
	for p, gone := range map[string]bool{"root/empty": true, "stub": true, "full": false, "written": false} {
		_, err := os.Lstat(filepath.Join(dir, p))
		if gone != (err != nil) {
			t.Errorf("%s: gone=%v, want %v", p, err != nil, gone)
		}
	}
	if _, err := os.Stat(filepath.Join(canary, "hostdir")); err != nil {
		t.Errorf("removeStub removed a host directory through a symlink: %v", err)
	}
}

func TestExclude(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"d/a.txt", "d/b.md", "d/sub/c.txt", "d/sub/deep/e.txt", "top.md"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	pm, err := patternmatcher.New([]string{"*.md", "sub/deep"})
	if err != nil {
		t.Fatal(err)
	}
	if !excludedMatch(pm, "top.md") || excludedMatch(pm, "d") || excludedMatch(nil, "top.md") {
		t.Error("excludedMatch")
	}
	m, err := walkSource(testRoot(t, dir), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.excludeBelow(pm)
	var rels []string
	for _, e := range m.entries[1:] {
		rels = append(rels, e.rel)
	}
	if got := strings.Join(rels, " "); got != "a.txt sub sub/c.txt" {
		t.Errorf("entries after --exclude: %q", got)
	}
}

func TestKeptPath(t *testing.T) {
	for _, tc := range []struct{ pattern, rel, want string }{
		{"a/b/c.txt", "a/b/c.txt", "a/b/c.txt"},
		{"./a/./b/c.txt", "a/b/c.txt", "b/c.txt"},
		{"a/./b/*", "a/b/x", "b/x"},
		{"x/", "x", "x"},
	} {
		if got := keptPath(tc.pattern, tc.rel); got != tc.want {
			t.Errorf("keptPath(%q, %q) = %q, want %q", tc.pattern, tc.rel, got, tc.want)
		}
	}
}

func TestIsTarHead(t *testing.T) {
	if isTarHead([]byte("FROM busybox\nRUN true\n")) {
		t.Error("a Dockerfile taken for a tar")
	}
	if !isTarHead([]byte{0x1f, 0x8b, 0x08, 0}) {
		t.Error("gzip not taken for an archive")
	}
	h := make([]byte, 512)
	copy(h[257:], "ustar")
	if !isTarHead(h) {
		t.Error("tar header not recognised")
	}
}

// A context file a RUN's bind mount shows that is written after the step's
// key was made of it fails the step, whether the mount is the context's
// own file (read-only: checked after the RUN) or a private copy (rw:
// checked when it is copied): the layer would otherwise be cached under a
// key that names other content.
func TestBindSourceChangedAfterKeyFails(t *testing.T) {
	requires.Root(t)
	for _, rw := range []bool{false, true} {
		ctx := context.Background()
		ctxDir := t.TempDir()
		z := filepath.Join(ctxDir, "z")
		if err := os.WriteFile(z, []byte("one"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(ctx, store.Options{Root: t.TempDir(), Driver: "native"})
		if err != nil {
			t.Fatal(err)
		}
		b := &builder{s: s, opts: Options{ContextDir: ctxDir}, ig: &ignore{}}
		p := mountPlan{m: &instructions.Mount{Type: instructions.MountTypeBind, Source: "z", Target: "/z", ReadOnly: !rw}, target: "/z", source: "z"}
		if err := b.bindOrigin(ctx, nil, &p, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(z, []byte("written since"), 0o644); err != nil {
			t.Fatal(err)
		}
		rm, err := b.setupMounts(ctx, &work{dir: t.TempDir()}, []mountPlan{p})
		if err == nil {
			rm.close()
			err = rm.check()
		}
		if err == nil || !strings.Contains(err.Error(), "changed") {
			t.Errorf("rw=%v: a bind source written after the key: %v", rw, err)
		}
	}
}
