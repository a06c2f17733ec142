package cp

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
)

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// host is the host side; ctr a fake container root with a hostile symlink.
func setup(t *testing.T) (host, ctr string) {
	host, ctr = t.TempDir(), t.TempDir()
	write(t, filepath.Join(host, "f.txt"), "file")
	write(t, filepath.Join(host, "d/a"), "a")
	write(t, filepath.Join(host, "d/sub/b"), "b")
	os.MkdirAll(filepath.Join(ctr, "srv"), 0o755)
	write(t, filepath.Join(ctr, "etc/passwd"), "root")
	os.Symlink("/", filepath.Join(ctr, "escape"))
	return host, ctr
}

func TestDockerCpRules(t *testing.T) {
	ctx := context.Background()
	host, ctr := setup(t)
	in := func(p string) Endpoint { return Endpoint{Root: ctr, Path: p} }
	onHost := func(p string) Endpoint { return Endpoint{Root: "/", Path: host + "/" + p} }

	// file onto a missing path: created under that name
	if err := Copy(ctx, onHost("f.txt"), in("/srv/renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "srv/renamed.txt")) != "file" {
		t.Fatal("file not created under the new name")
	}
	// file onto a directory: goes inside
	if err := Copy(ctx, onHost("f.txt"), in("/srv")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "srv/f.txt")) != "file" {
		t.Fatal("file not copied into the directory")
	}
	// file onto a file: overwrites
	if err := Copy(ctx, onHost("f.txt"), in("/etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "etc/passwd")) != "file" {
		t.Fatal("file not overwritten")
	}
	// dir onto a directory: goes inside as d/
	if err := Copy(ctx, onHost("d"), in("/srv")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "srv/d/sub/b")) != "b" {
		t.Fatal("directory not copied inside")
	}
	// dir/. onto a directory: contents go in
	if err := Copy(ctx, onHost("d/."), in("/etc")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "etc/a")) != "a" || read(t, filepath.Join(ctr, "etc/sub/b")) != "b" {
		t.Fatal("directory contents not copied")
	}
	// dir onto a missing path: created with the contents
	if err := Copy(ctx, onHost("d"), in("/newdir")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "newdir/a")) != "a" {
		t.Fatal("new directory not created")
	}
	// errors
	if err := Copy(ctx, onHost("d"), in("/etc/passwd")); err == nil {
		t.Error("directory onto a file accepted")
	}
	if err := Copy(ctx, onHost("f.txt"), in("/missing/")); err == nil {
		t.Error("file onto a missing directory path accepted")
	}
	if err := Copy(ctx, onHost("nope"), in("/srv")); err == nil {
		t.Error("missing source accepted")
	}
	// container -> host
	out := t.TempDir()
	if err := Copy(ctx, in("/srv/d"), Endpoint{Root: "/", Path: filepath.Join(out, "got")}); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(out, "got/sub/b")) != "b" {
		t.Fatal("copy out failed")
	}
}

// A symlink inside the container resolves inside its root: "/escape/x"
// lands in the container's own root, never in the host's.
func TestContainerSymlinksStayInside(t *testing.T) {
	host, ctr := setup(t)
	err := Copy(context.Background(), Endpoint{Root: "/", Path: filepath.Join(host, "f.txt")}, Endpoint{Root: ctr, Path: "/escape/tmp-strata-cp-test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/tmp-strata-cp-test"); err == nil {
		os.Remove("/tmp-strata-cp-test")
		t.Fatal("copy escaped the container root")
	}
	if read(t, filepath.Join(ctr, "tmp-strata-cp-test")) != "file" {
		t.Fatal("file not placed at the in-root resolution of the path")
	}
}

// Like docker cp, a source symlink is copied as a link unless followed with
// -L; a followed link still resolves inside the container's root.
func TestSourceSymlinks(t *testing.T) {
	ctx := context.Background()
	_, ctr := setup(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(ctr, "lnk")); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Copy(ctx, Endpoint{Root: ctr, Path: "/lnk"}, Endpoint{Root: "/", Path: filepath.Join(out, "asis")}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(out, "asis")); err != nil || target != "/etc/passwd" {
		t.Fatalf("link copied as %q, %v; want the link itself", target, err)
	}
	if err := Copy(ctx, Endpoint{Root: ctr, Path: "/lnk", FollowLink: true}, Endpoint{Root: "/", Path: filepath.Join(out, "followed")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(out, "followed")); got != "root" {
		t.Fatalf("followed link: %q, want the container's /etc/passwd", got)
	}
	if err := Copy(ctx, Endpoint{Root: ctr, Path: "/etc/passwd/"}, Endpoint{Root: "/", Path: filepath.Join(out, "x")}); err == nil {
		t.Error("a file named with a trailing slash was copied")
	}
}

// As docker cp: a destination that is a symlink names where it points,
// resolved inside the destination's root; the copy writes there and the
// link stays. A link to a host path never reaches the host.
func TestCopyOntoSymlinkWritesItsTarget(t *testing.T) {
	ctx := context.Background()
	host, ctr := setup(t)
	os.MkdirAll(filepath.Join(ctr, "t"), 0o755)
	write(t, filepath.Join(ctr, "t/old"), "old")
	os.MkdirAll(filepath.Join(ctr, "d"), 0o755)
	os.Symlink("/t/new", filepath.Join(ctr, "d/abs"))   // to a missing file
	os.Symlink("../t/old", filepath.Join(ctr, "d/rel")) // to a file
	os.Symlink("rel", filepath.Join(ctr, "d/chain"))    // to a link
	os.Symlink(filepath.Join(host, "f.txt"), filepath.Join(ctr, "d/host"))
	in := func(p string) Endpoint { return Endpoint{Root: ctr, Path: p} }
	src := Endpoint{Root: "/", Path: filepath.Join(host, "d/a")}

	for _, c := range []struct{ dst, target string }{
		{"/d/abs", "t/new"}, {"/d/rel", "t/old"}, {"/d/chain", "t/old"},
	} {
		os.WriteFile(filepath.Join(ctr, "t/old"), []byte("old"), 0o644)
		if err := Copy(ctx, src, in(c.dst)); err != nil {
			t.Fatalf("%s: %v", c.dst, err)
		}
		if got := read(t, filepath.Join(ctr, c.target)); got != "a" {
			t.Errorf("copy onto %s: %s has %q, want the copied file", c.dst, c.target, got)
		}
		if fi, err := os.Lstat(filepath.Join(ctr, c.dst)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("copy onto %s replaced the link (%v)", c.dst, err)
		}
	}
	// The host path the link names has no parent in the container: refused.
	if err := Copy(ctx, src, in("/d/host")); err == nil {
		t.Error("copy onto a link to a path whose parent the container lacks succeeded")
	}
	if read(t, filepath.Join(host, "f.txt")) != "file" {
		t.Fatal("a copy onto a container's link to a host path wrote the host file")
	}
}

// As docker cp: what a copy from a container writes on the host belongs
// to the user who copies (docker extracts with NoLchown); a tar to stdout
// keeps the container's owners.
func TestCopyToHostOwnedByCaller(t *testing.T) {
	requires.Root(t)
	ctx := context.Background()
	host, ctr := setup(t)
	write(t, filepath.Join(ctr, "d/s/f"), "f")
	for _, p := range []string{"d", "d/s", "d/s/f"} {
		if err := os.Lchown(filepath.Join(ctr, p), 5, 6); err != nil {
			t.Fatal(err)
		}
	}
	caller := &[2]int{os.Getuid(), os.Getgid()}
	if err := Copy(ctx, Endpoint{Root: ctr, Path: "/d"}, Endpoint{Root: "/", Path: filepath.Join(host, "out"), Owner: caller}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"out", "out/s", "out/s/f"} {
		fi, err := os.Lstat(filepath.Join(host, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
			t.Errorf("%s on the host is owned by %d:%d, want the caller's %d:%d", p, st.Uid, st.Gid, os.Getuid(), os.Getgid())
		}
	}
	var buf bytes.Buffer
	if err := WriteSource(ctx, &buf, Endpoint{Root: ctr, Path: "/d"}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Uid != 5 || h.Gid != 6 {
			t.Errorf("tar to stdout: %s owned by %d:%d, want 5:6", h.Name, h.Uid, h.Gid)
		}
	}
}

// cp -a: what a copy writes into a container belongs to the container's
// user, from a host path and from a tar on stdin alike.
func TestCopyIntoContainerOwner(t *testing.T) {
	requires.Root(t)
	ctx := context.Background()
	host, ctr := setup(t)
	user := &[2]int{7, 8}
	if err := Copy(ctx, Endpoint{Root: "/", Path: filepath.Join(host, "d")}, Endpoint{Root: ctr, Path: "/srv/d", Owner: user}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSource(ctx, &buf, Endpoint{Root: "/", Path: filepath.Join(host, "d")}); err != nil {
		t.Fatal(err)
	}
	if err := Extract(ctx, &buf, Endpoint{Root: ctr, Path: "/etc", Owner: user}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"srv/d", "srv/d/a", "srv/d/sub/b", "etc/d", "etc/d/sub", "etc/d/sub/b"} {
		fi, err := os.Lstat(filepath.Join(ctr, p))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 7 || st.Gid != 8 {
			t.Errorf("%s is owned by %d:%d, want 7:8", p, st.Uid, st.Gid)
		}
	}
}
