package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/snapshot/driver"
)

// entry is one tar header plus its content, for building layers in tests.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func dir(name string) entry      { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func whiteout(name string) entry { return entry{name: name, typ: tar.TypeReg, mode: 0o644} }
func symlink(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}

// makeTar writes entries as a tar, with some padding after the end marker
// the way some tools do: the diffID covers it too.
func makeTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

func newStore(t testing.TB, drv string) *Store {
	t.Helper()
	root := t.TempDir()
	db, err := metadata.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := driver.Open(drv, root, db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(filepath.Join(root, "layers"), db, sn, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mountView mounts a read-only view of the stack top and returns its path.
func mountView(t *testing.T, s *Store, top digest.Digest) string {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("view-%d", time.Now().UnixNano())
	mounts, err := s.sn.View(ctx, key, string(top))
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("unmount: %v", err)
		}
		s.sn.Remove(ctx, key)
	})
	return target
}

func forEachDriver(t *testing.T, fn func(t *testing.T, s *Store)) {
	for _, d := range []string{"overlay", "native"} {
		t.Run(d, func(t *testing.T) { fn(t, newStore(t, d)) })
	}
}

func unpackAll(t *testing.T, s *Store, tars ...[]byte) []Layer {
	t.Helper()
	var out []Layer
	var parent digest.Digest
	for i, tb := range tars {
		l, err := s.Unpack(context.Background(), parent, bytes.NewReader(tb))
		if err != nil {
			t.Fatalf("unpack layer %d: %v", i+1, err)
		}
		if want := digest.FromBytes(tb); l.DiffID != want {
			t.Fatalf("layer %d diffID %s, want sha256 of the stream %s", i+1, l.DiffID, want)
		}
		if want := image.ChildChainID(parent, l.DiffID); l.ChainID != want {
			t.Fatalf("layer %d chainID %s, want %s", i+1, l.ChainID, want)
		}
		out = append(out, l)
		parent = l.ChainID
	}
	return out
}

func TestWhiteoutsAcrossLayers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		l1 := makeTar(t, dir("etc/"), file("etc/keep", "k"), dir("data/"), file("data/old1", "1"), file("data/old2", "2"))
		l2 := makeTar(t, file("etc/added", "a"), file("data/more", "m"))
		l3 := makeTar(t, whiteout("etc/.wh.added"), dir("data/"), whiteout("data/.wh..wh..opq"), file("data/new", "n"))
		layers := unpackAll(t, s, l1, l2, l3)
		root := mountView(t, s, layers[2].ChainID)
		if _, err := os.Lstat(filepath.Join(root, "etc/added")); !os.IsNotExist(err) {
			t.Errorf("etc/added added in layer 2 and deleted in layer 3 is visible (%v)", err)
		}
		if b, err := os.ReadFile(filepath.Join(root, "etc/keep")); err != nil || string(b) != "k" {
			t.Errorf("etc/keep = %q, %v", b, err)
		}
		names := readDir(t, filepath.Join(root, "data"))
		if fmt.Sprint(names) != "[new]" {
			t.Errorf("opaque data/ shows %v, want only [new]", names)
		}
		// The middle of the stack still shows layer 2's view.
		mid := mountView(t, s, layers[1].ChainID)
		if fmt.Sprint(readDir(t, filepath.Join(mid, "data"))) != "[more old1 old2]" {
			t.Errorf("layer 2 view of data/: %v", readDir(t, filepath.Join(mid, "data")))
		}
	})
}

func readDir(t *testing.T, p string) []string {
	t.Helper()
	ents, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// The exact tar comes back from the snapshot and tar-split metadata.
func TestTarReproducesStream(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		l1 := makeTar(t, dir("bin/"), file("bin/tool", "#!/bin/sh\necho tool\n"), symlink("bin/alias", "tool"), hardlink("bin/hard", "bin/tool"), file("empty", ""))
		l2 := makeTar(t, file("bin/tool", "replaced"), whiteout("bin/.wh.alias"), file("big", string(bytes.Repeat([]byte("0123456789"), 100000))))
		layers := unpackAll(t, s, l1, l2)
		for i, want := range [][]byte{l1, l2} {
			rc, err := s.Tar(context.Background(), layers[i].ChainID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("layer %d tar: %v", i+1, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("layer %d: reproduced tar differs (%d vs %d bytes)", i+1, len(got), len(want))
			}
		}
		if layers[1].Size != 8+1000000 {
			t.Errorf("layer 2 size %d, want content bytes %d", layers[1].Size, 8+1000000)
		}
	})
}

// A snapshot changed behind the store's back cannot pass for the layer.
func TestTarDetectsTampering(t *testing.T) {
	s := newStore(t, "overlay")
	layers := unpackAll(t, s, makeTar(t, file("f", "original")))
	dir, err := s.sn.Dir(context.Background(), string(layers[0].ChainID))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarFails(t, s, layers[0].ChainID, "tampered snapshot reproduced without error")
}

// tarFails reads layer chainID's tar to its end and fails the test with
// what if that succeeds.
func tarFails(t *testing.T, s *Store, chainID digest.Digest, what string) {
	t.Helper()
	rc, err := s.Tar(context.Background(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Fatal(what)
	}
}

// A file swapped for a symlink to a host file with the very bytes the
// layer recorded is still refused: payloads are read from the snapshot's
// own regular files, never through a link out of it.
func TestTarRefusesSymlinkedFile(t *testing.T) {
	s := newStore(t, "overlay")
	layers := unpackAll(t, s, makeTar(t, file("d/f", "original")))
	dir, err := s.sn.Dir(context.Background(), string(layers[0].ChainID))
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "host")
	if err := os.WriteFile(host, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "d", "f")
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, f); err != nil {
		t.Fatal(err)
	}
	tarFails(t, s, layers[0].ChainID, "a payload was read through a symlink out of the snapshot")
}

// A file cut short in the snapshot fails the tar at that file, rather
// than shifting every later byte of the stream.
func TestTarDetectsTruncatedFile(t *testing.T) {
	s := newStore(t, "overlay")
	layers := unpackAll(t, s, makeTar(t, file("f", "original"), file("g", "second")))
	dir, err := s.sn.Dir(context.Background(), string(layers[0].ChainID))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "f"), 3); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Tar(context.Background(), layers[0].ChainID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	if err == nil || !strings.Contains(err.Error(), "f: 3 bytes, the layer recorded 8") {
		t.Fatalf("tar of a truncated file: %v, want the file named with both sizes", err)
	}
}

func TestSameLayerStoredOnce(t *testing.T) {
	s := newStore(t, "overlay")
	tb := makeTar(t, file("a", "x"))
	a := unpackAll(t, s, tb)
	b := unpackAll(t, s, tb)
	if a[0].ChainID != b[0].ChainID {
		t.Fatal("chainIDs differ")
	}
	var n int
	s.sn.Walk(context.Background(), func(snapshot.Info) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d snapshots for one layer unpacked twice", n)
	}
}

func TestBadTarLeavesNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		good := makeTar(t, file("a", "x"), file("b", "y"))
		bad := append(append([]byte{}, good[:600]...), bytes.Repeat([]byte{'Z'}, 2048)...)
		if _, err := s.Unpack(context.Background(), "", bytes.NewReader(bad)); err == nil {
			t.Fatal("corrupt tar unpacked")
		}
		var n int
		s.sn.Walk(context.Background(), func(snapshot.Info) error { n++; return nil })
		s.Walk(context.Background(), func(Layer) error { n++; return nil })
		if n != 0 {
			t.Fatalf("%d snapshots/layers left after a failed unpack", n)
		}
		left, _ := filepath.Glob(filepath.Join(s.dir, "*"))
		tmps, _ := filepath.Glob(filepath.Join(s.dir, tmpDir, "*"))
		left = append(slices.DeleteFunc(left, func(p string) bool { return filepath.Base(p) == tmpDir }), tmps...)
		if len(left) != 0 {
			t.Fatalf("files left in the layer dir: %v", left)
		}
	})
}

// Committing an active snapshot gives the layer its changeset tar describes,
// and that tar unpacked elsewhere gives the same diffID.
func TestCommitActiveSnapshot(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := unpackAll(t, s, makeTar(t, dir("etc/"), file("etc/passwd", "root"), file("etc/gone", "g")))[0]
		key := "container/test"
		changeThrough(t, s, key, base.ChainID, func(target string) {
			os.WriteFile(filepath.Join(target, "etc/passwd"), []byte("root\napp"), 0o644)
			os.Remove(filepath.Join(target, "etc/gone"))
			os.WriteFile(filepath.Join(target, "new"), []byte("n"), 0o600)
		})
		var changes []string
		if err := s.Changes(ctx, key, func(c archive.Change) error {
			changes = append(changes, c.Kind.String()+" "+c.Path)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(changes); got != "[C /etc D /etc/gone C /etc/passwd A /new]" {
			t.Errorf("changes %s", got)
		}
		l, err := s.Commit(ctx, key, base.ChainID, archive.DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := s.Tar(ctx, l.ChainID)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(tb) != l.DiffID {
			t.Fatal("reproduced tar does not match the committed diffID")
		}
		other := newStore(t, "overlay")
		again := unpackAll(t, other, makeTar(t, dir("etc/"), file("etc/passwd", "root"), file("etc/gone", "g")), tb)
		root := mountView(t, other, again[1].ChainID)
		if _, err := os.Lstat(filepath.Join(root, "etc/gone")); !os.IsNotExist(err) {
			t.Error("deleted file came back after commit and unpack")
		}
		if b, _ := os.ReadFile(filepath.Join(root, "etc/passwd")); string(b) != "root\napp" {
			t.Errorf("etc/passwd = %q", b)
		}
	})
}

// changeThrough prepares active snapshot key on parent and lets change
// modify it through a mount, as a container would.
func changeThrough(t *testing.T, s *Store, key string, parent digest.Digest, change func(target string)) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.sn.Prepare(ctx, key, string(parent)); err != nil {
		t.Fatal(err)
	}
	mounts, err := s.sn.Mounts(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	change(target)
	if err := snapshot.UnmountAll(target); err != nil {
		t.Fatal(err)
	}
}

// A stack deeper than the mount option page allows for must still mount.
func TestManyLayersMount(t *testing.T) {
	s := newStore(t, "overlay")
	var tars [][]byte
	for i := range 130 {
		tars = append(tars, makeTar(t, file(fmt.Sprintf("f%03d", i), fmt.Sprint(i))))
	}
	tars = append(tars, makeTar(t, whiteout(".wh.f000")))
	layers := unpackAll(t, s, tars...)
	root := mountView(t, s, layers[len(layers)-1].ChainID)
	names := readDir(t, root)
	if len(names) != 129 {
		t.Fatalf("%d files visible, want 129", len(names))
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f077")); string(b) != "77" {
		t.Fatalf("f077 = %q", b)
	}
}

// CommitOnto lays what a snapshot on another stack changed (a container
// over its init layer) onto the image's stack: the layer is the same tar
// WriteDiff gives, it unpacks to the change, and the source is kept.
func TestCommitOnto(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := unpackAll(t, s, makeTar(t, dir("etc/"), file("etc/passwd", "root"), file("etc/gone", "g")))[0]
		init, err := s.Unpack(ctx, base.ChainID, bytes.NewReader(makeTar(t, dir("etc/"), file("etc/hosts", ""))))
		if err != nil {
			t.Fatal(err)
		}
		key := "container/onto"
		changeThrough(t, s, key, init.ChainID, func(target string) {
			os.WriteFile(filepath.Join(target, "etc/passwd"), []byte("root\napp"), 0o644)
			os.Remove(filepath.Join(target, "etc/gone"))
			os.MkdirAll(filepath.Join(target, "srv/a"), 0o755)
			os.WriteFile(filepath.Join(target, "srv/a/f"), []byte("f"), 0o600)
		})
		t.Cleanup(func() { s.sn.Remove(ctx, key) })
		var want bytes.Buffer
		if err := s.WriteDiff(ctx, &want, key, archive.DiffOptions{}); err != nil {
			t.Fatal(err)
		}
		l, err := s.CommitOnto(ctx, key, base.ChainID, archive.DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.DiffID != digest.FromBytes(want.Bytes()) || l.TarSize != int64(want.Len()) || l.Parent != base.ChainID {
			t.Fatalf("layer %+v is not the diff's tar (%d bytes)", l, want.Len())
		}
		rc, err := s.Tar(ctx, l.ChainID)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(tb, want.Bytes()) {
			t.Fatalf("stored tar differs from the diff: %v", err)
		}
		root := mountView(t, s, l.ChainID)
		if b, _ := os.ReadFile(filepath.Join(root, "etc/passwd")); string(b) != "root\napp" {
			t.Errorf("etc/passwd = %q", b)
		}
		if _, err := os.Lstat(filepath.Join(root, "etc/gone")); !os.IsNotExist(err) {
			t.Error("etc/gone is back")
		}
		if _, err := os.Lstat(filepath.Join(root, "etc/hosts")); !os.IsNotExist(err) {
			t.Error("the init layer's etc/hosts leaked into the commit")
		}
		if b, _ := os.ReadFile(filepath.Join(root, "srv/a/f")); string(b) != "f" {
			t.Errorf("srv/a/f = %q", b)
		}
		if _, err := s.sn.Stat(ctx, key); err != nil {
			t.Errorf("source snapshot: %v", err)
		}
	})
}
