package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw (bit 13) permitted+effective, what ping carries.
var capNetRaw = string([]byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

func TestApplyTypesAndMetadata(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	mt := time.Unix(1600000000, 123456789)
	data := mkTar(t,
		ent{name: "bin/", typ: tar.TypeDir, mode: 0o755, mtime: mt},
		ent{name: "bin/ping", typ: tar.TypeReg, body: "ping", mode: 0o4755, uid: 1000, gid: 1000,
			xattrs: map[string]string{"security.capability": capNetRaw, "user.note": "hi"}, mtime: mt},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777, mtime: mt},
		ent{name: "sgid", typ: tar.TypeReg, body: "x", mode: 0o2750, uid: 5, gid: 6},
		ent{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox", uid: 7, gid: 8, mtime: mt},
		ent{name: "bin/ping2", typ: tar.TypeLink, link: "bin/ping"},
		ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		ent{name: "dev/sda", typ: tar.TypeBlock, major: 8, minor: 0, mode: 0o660},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o620},
		ent{name: "deep/a/b/c", typ: tar.TypeReg, body: strings.Repeat("z", 3<<20)},
	)
	n, err := apply(t, root, data, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4 + 1 + 3<<20); n != want {
		t.Errorf("Apply returned size %d, want %d", n, want)
	}
	st := lstat(t, root+"/bin/ping")
	if st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("bin/ping mode %o owner %d:%d; want 4755 1000:1000 (chmod must follow chown)", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st.Nlink != 2 {
		t.Errorf("bin/ping nlink %d, want 2 (hardlinked by bin/ping2)", st.Nlink)
	}
	if st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != int64(mt.Nanosecond()) {
		t.Errorf("bin/ping mtime %v, want %v", st.Mtim, mt)
	}
	if v, err := lgetxattr(root+"/bin/ping", "security.capability"); err != nil || string(v) != capNetRaw {
		t.Errorf("security.capability = %x, %v; want %x", v, err, capNetRaw)
	}
	if v, err := lgetxattr(root+"/bin/ping", "user.note"); err != nil || string(v) != "hi" {
		t.Errorf("user.note = %q, %v", v, err)
	}
	if st := lstat(t, root+"/tmp"); st.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode %o, want 1777", st.Mode&0o7777)
	}
	if st := lstat(t, root+"/sgid"); st.Mode&0o7777 != 0o2750 || st.Gid != 6 {
		t.Errorf("sgid mode %o gid %d", st.Mode&0o7777, st.Gid)
	}
	if l, _ := os.Readlink(root + "/bin/sh"); l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", l)
	}
	if st := lstat(t, root+"/bin/sh"); st.Uid != 7 || st.Gid != 8 || st.Mtim.Sec != mt.Unix() {
		t.Errorf("symlink owner %d:%d mtime %d: lchown/lutimes not applied", st.Uid, st.Gid, st.Mtim.Sec)
	}
	if st := lstat(t, root+"/dev/null"); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) || st.Mode&0o777 != 0o666 {
		t.Errorf("dev/null mode %o rdev %d", st.Mode, st.Rdev)
	}
	if st := lstat(t, root+"/dev/sda"); st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(8, 0) {
		t.Errorf("dev/sda mode %o rdev %d", st.Mode, st.Rdev)
	}
	if st := lstat(t, root+"/fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o777 != 0o620 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	// Dir mtimes are restored after their children were written.
	if st := lstat(t, root+"/bin"); st.Mtim.Sec != mt.Unix() {
		t.Errorf("bin mtime %d, want %d", st.Mtim.Sec, mt.Unix())
	}
	// Implicit parents get 0755.
	if st := lstat(t, root+"/deep/a"); st.Mode&0o7777 != 0o755 {
		t.Errorf("implicit parent mode %o", st.Mode&0o7777)
	}
	if got := readFile(t, root+"/deep/a/b/c"); len(got) != 3<<20 {
		t.Errorf("deep/a/b/c has %d bytes", len(got))
	}
}

func TestApplyLongNamesAndSparse(t *testing.T) {
	requireRoot(t)
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("f", 150)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// GNU long name and long link, then a PAX long name.
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: long, Size: 2, Mode: 0o644, Format: tar.FormatGNU}))
	_, _ = tw.Write([]byte("hi"))
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: long, Format: tar.FormatGNU}))
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: long + "2", Size: 1, Mode: 0o644, Format: tar.FormatPAX}))
	_, _ = tw.Write([]byte("x"))
	must(t, tw.Close())
	root := t.TempDir()
	mustApply(t, root, buf.Bytes(), ApplyOptions{})
	if readFile(t, root+"/"+long) != "hi" || readFile(t, root+"/"+long+"2") != "x" {
		t.Error("long names not extracted")
	}
	if l, _ := os.Readlink(root + "/l"); l != long {
		t.Errorf("long link target %q", l)
	}

	// A GNU sparse file (old format), as GNU tar --sparse writes it: the
	// header's sparse map says data at [0,4) and [8192,8196) of 8196 bytes.
	sparse := gnuSparseTar(t)
	root2 := t.TempDir()
	n, err := apply(t, root2, sparse, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := readFile(t, root2+"/sparse")
	want := "AAAA" + strings.Repeat("\x00", 8188) + "BBBB"
	if got != want {
		t.Errorf("sparse file content wrong: len %d", len(got))
	}
	if n != int64(len(want)) {
		t.Errorf("size %d, want %d", n, len(want))
	}
}

// gnuSparseTar hand-builds an old-GNU sparse entry (type 'S'), which
// archive/tar can read but not write.
func gnuSparseTar(t *testing.T) []byte {
	t.Helper()
	blk := make([]byte, 512)
	copy(blk[0:], "sparse")
	octal := func(b []byte, v int64) {
		s := []byte(strings.Repeat("0", len(b)-1))
		for i := len(s) - 1; i >= 0 && v > 0; i-- {
			s[i] = byte('0' + v%8)
			v /= 8
		}
		copy(b, s)
		b[len(b)-1] = 0
	}
	octal(blk[100:108], 0o644)
	octal(blk[108:116], 0)
	octal(blk[116:124], 0)
	octal(blk[124:136], 8) // stored data: two 4-byte fragments
	octal(blk[136:148], 1700000000)
	blk[156] = 'S'
	copy(blk[257:265], "ustar  \x00")
	// Sparse map at offset 386: 4 entries of (offset[12], numbytes[12]).
	octal(blk[386:398], 0)
	octal(blk[398:410], 4)
	octal(blk[410:422], 8192)
	octal(blk[422:434], 4)
	octal(blk[483:495], 8196) // real size
	for i := range 8 {
		blk[148+i] = ' '
	}
	var sum int64
	for _, c := range blk {
		sum += int64(c)
	}
	octal(blk[148:155], sum)
	blk[155] = ' '
	var out bytes.Buffer
	out.Write(blk)
	data := make([]byte, 512)
	copy(data, "AAAABBBB")
	out.Write(data)
	out.Write(make([]byte, 1024))
	return out.Bytes()
}

func TestApplyReplacesExisting(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	writeFile(t, root+"/file-to-dir", "old", 0o644)
	writeFile(t, root+"/dir-to-file/child", "old", 0o644)
	writeFile(t, root+"/merge/keep", "lower", 0o644)
	writeFile(t, root+"/target", "must not change", 0o644)
	must(t, os.Symlink("target", root+"/link-to-file"))
	must(t, os.Symlink(".", root+"/link-to-dir"))
	data := mkTar(t,
		dir("file-to-dir/"),
		file("dir-to-file", "new"),
		ent{name: "merge/", typ: tar.TypeDir, mode: 0o700},
		file("merge/new", "n"),
		file("link-to-file", "replaced the link, not the target"),
		dir("link-to-dir/"),
	)
	mustApply(t, root, data, ApplyOptions{})
	if st := lstat(t, root+"/file-to-dir"); !rootfs.IsDir(&st) {
		t.Error("file-to-dir is not a dir")
	}
	if readFile(t, root+"/dir-to-file") != "new" {
		t.Error("dir-to-file not replaced")
	}
	if readFile(t, root+"/merge/keep") != "lower" || readFile(t, root+"/merge/new") != "n" {
		t.Error("existing dir not merged")
	}
	if st := lstat(t, root+"/merge"); st.Mode&0o777 != 0o700 {
		t.Errorf("merged dir mode %o, want 700", st.Mode&0o777)
	}
	if readFile(t, root+"/target") != "must not change" {
		t.Error("wrote through a symlink")
	}
	if st := lstat(t, root+"/link-to-file"); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Error("link-to-file is still a symlink")
	}
	if st := lstat(t, root+"/link-to-dir"); !rootfs.IsDir(&st) {
		t.Error("link-to-dir is still a symlink")
	}
}

func TestApplyWhiteoutDelete(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	writeFile(t, root+"/etc/passwd", "root", 0o644)
	writeFile(t, root+"/etc/group", "root", 0o644)
	writeFile(t, root+"/opq/old", "x", 0o644)
	writeFile(t, root+"/opq/sub/old", "x", 0o644)
	writeFile(t, root+"/opq/keep/old", "x", 0o644)
	writeFile(t, root+"/gone/deep/file", "x", 0o644)
	data := mkTar(t,
		file("etc/.wh.passwd", ""),
		file(".wh.gone", ""),
		file(".wh.never-existed", ""),
		file("nodir/.wh.x", ""),
		file("opq/new", "n"),
		dir("opq/keep/"),
		file("opq/keep/mine", "m"),
		// The opaque marker after siblings from the same layer: they stay.
		file("opq/.wh..wh..opq", ""),
		file("opq/.wh..wh.plnk", ""),
		file(".wh..wh.aufs", ""),
		file("opq/after", "a"),
	)
	mustApply(t, root, data, ApplyOptions{Whiteouts: WhiteoutDelete})
	names := slices.Sorted(maps.Keys(manifest(t, root, false)))
	want := []string{"etc", "etc/group", "opq", "opq/after", "opq/keep", "opq/keep/mine", "opq/new"}
	if !slices.Equal(names, want) {
		t.Errorf("tree after whiteouts:\n got %v\nwant %v", names, want)
	}
}

func TestApplyWhiteoutOverlay(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	data := mkTar(t,
		dir("etc/"),
		file("etc/.wh.passwd", ""),
		file("opq/.wh..wh..opq", ""),
		file("opq/new", "n"),
		file(".wh..wh.plnk", ""),
	)
	mustApply(t, root, data, ApplyOptions{Whiteouts: WhiteoutOverlay})
	if st := lstat(t, root+"/etc/passwd"); !rootfs.IsWhiteoutDev(&st) {
		t.Errorf("etc/passwd mode %o rdev %d, want char 0/0", st.Mode, st.Rdev)
	}
	if !rootfs.IsOpaque(root + "/opq") {
		t.Error("opq not marked opaque")
	}
	if readFile(t, root+"/opq/new") != "n" {
		t.Error("opq/new missing")
	}
	if exists(root + "/.wh..wh.plnk") {
		t.Error("AUFS meta entry extracted")
	}
}

// A layer that deletes a lower dir and re-creates it (whiteout first, as
// the OCI spec orders them) hides the old contents in both modes.
func TestApplyWhiteoutThenSameNameDir(t *testing.T) {
	requireRoot(t)
	layer := mkTar(t, file(".wh.d", ""), dir("d/"), file("d/new", "n"))

	merged := t.TempDir()
	writeFile(t, merged+"/d/old", "x", 0o644)
	mustApply(t, merged, layer, ApplyOptions{Whiteouts: WhiteoutDelete})
	if exists(merged+"/d/old") || readFile(t, merged+"/d/new") != "n" {
		t.Error("delete mode: old content survived or new missing")
	}

	layerDir := t.TempDir()
	mustApply(t, layerDir, layer, ApplyOptions{Whiteouts: WhiteoutOverlay})
	if !rootfs.IsOpaque(layerDir+"/d") || readFile(t, layerDir+"/d/new") != "n" {
		t.Error("overlay mode: re-created dir is not opaque")
	}
}

func TestApplyDropsOverlayXattrsFromTar(t *testing.T) {
	requireRoot(t)
	for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
		root := t.TempDir()
		data := mkTar(t, ent{name: "d/", typ: tar.TypeDir, xattrs: map[string]string{
			"trusted.overlay.redirect": "/../../etc", "trusted.overlay.opaque": "y", "user.ok": "1"}})
		mustApply(t, root, data, ApplyOptions{Whiteouts: mode})
		xs, err := readXattrs(root + "/d")
		if err != nil {
			t.Fatal(err)
		}
		if len(xs) != 1 || xs[0].name != "user.ok" {
			t.Errorf("%v: xattrs on d = %v, want only user.ok", mode, xs)
		}
	}
}

func TestApplyReadsToEOF(t *testing.T) {
	requireRoot(t)
	data := append(mkTar(t, file("a", "1")), make([]byte, 10000)...)
	r := bytes.NewReader(data)
	if _, err := Apply(context.Background(), t.TempDir(), r, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread", r.Len())
	}
}

func TestApplyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mkTar(t, file("a", "1"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestApplyHardlinkCopyUpFromLower(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower2, lower1, root := base+"/l2", base+"/l1", base+"/root"
	writeFile(t, lower2+"/usr/bin/tool", "from l2", 0o755)
	writeFile(t, lower2+"/usr/bin/hidden", "whited out in l1", 0o755)
	must(t, os.Chown(lower2+"/usr/bin/tool", 3, 4))
	must(t, os.Chmod(lower2+"/usr", 0o700))
	must(t, os.MkdirAll(lower1+"/usr/bin", 0o755))
	must(t, os.Chmod(lower1+"/usr", 0o750)) // the topmost copy is what overlayfs shows
	must(t, unix.Mknod(lower1+"/usr/bin/hidden", unix.S_IFCHR, 0))
	must(t, os.Mkdir(root, 0o755))
	opts := ApplyOptions{Whiteouts: WhiteoutOverlay, Lower: []string{lower1, lower2}}
	mustApply(t, root, mkTar(t, hardlink("usr/bin/alias", "usr/bin/tool")), opts)
	if readFile(t, root+"/usr/bin/tool") != "from l2" || readFile(t, root+"/usr/bin/alias") != "from l2" {
		t.Fatal("target not copied up")
	}
	st, st2 := lstat(t, root+"/usr/bin/tool"), lstat(t, root+"/usr/bin/alias")
	if st.Ino != st2.Ino || st.Uid != 3 || st.Gid != 4 || st.Mode&0o7777 != 0o755 {
		t.Errorf("copy-up: ino %d/%d owner %d:%d mode %o", st.Ino, st2.Ino, st.Uid, st.Gid, st.Mode&0o7777)
	}
	// The implicitly created usr takes the lower's mode, not 0755: it must
	// not change what the merged view shows.
	if st := lstat(t, root+"/usr"); st.Mode&0o7777 != 0o750 {
		t.Errorf("implicit usr mode %o, want 750 from the topmost lower", st.Mode&0o7777)
	}
	// A target whited out by a higher lower is not visible: error.
	_, err := apply(t, root, mkTar(t, hardlink("usr/bin/h2", "usr/bin/hidden")), opts)
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("link to whited-out lower file: err = %v, want ENOENT", err)
	}
}

func TestApplyRejectsUnknownType(t *testing.T) {
	requireRoot(t)
	_, err := apply(t, t.TempDir(), mkTar(t, ent{name: "v", typ: 'V'}), ApplyOptions{})
	if err == nil {
		t.Error("volume header entry accepted")
	}
}

func TestApplyStreamsFromPipe(t *testing.T) {
	requireRoot(t)
	// A reader without Seek or WriterTo, like a decompressor.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(func() error {
			_, err := pw.Write(mkTar(t, file("a/b", "content")))
			return err
		}())
	}()
	root := t.TempDir()
	if _, err := Apply(context.Background(), root, pr, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(root, "a/b")) != "content" {
		t.Error("content mismatch")
	}
}

// WhiteoutNone is for tars that are not layers (cp, ADD, a tar context):
// whiteout and AUFS names are written as the files they are, nothing is
// deleted, and names still cannot climb out of the root.
func TestApplyWhiteoutNone(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root+"/etc/passwd", "root", 0o644)
	writeFile(t, root+"/etc/keep", "k", 0o644)
	mustApply(t, root, mkTar(t, file("etc/.wh.passwd", "a"), file("etc/.wh..wh..opq", "b"), file(".wh..wh.plnk", "c")), ApplyOptions{Whiteouts: WhiteoutNone})
	for p, want := range map[string]string{"etc/passwd": "root", "etc/keep": "k", "etc/.wh.passwd": "a", "etc/.wh..wh..opq": "b", ".wh..wh.plnk": "c"} {
		if got := readFile(t, root+"/"+p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if _, err := apply(t, root, mkTar(t, file("../.wh.x", "x")), ApplyOptions{Whiteouts: WhiteoutNone}); err == nil {
		t.Error("a name climbing out was applied")
	}
}
