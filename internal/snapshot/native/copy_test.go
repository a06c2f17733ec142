package native

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

type entry struct {
	Mode       uint32
	UID, GID   uint32
	Rdev       uint64
	Size       int64
	Mtime      unix.Timespec
	Link, Data string
	Xattrs     map[string]string
}

// describe lists everything but access times (reading the trees for the
// comparison changes those) CopyTree promises to keep, by relative path,
// plus the source inode of each path for hardlink checks.
func describe(t *testing.T, root string) (map[string]entry, map[string]uint64) {
	t.Helper()
	out, inos := map[string]entry{}, map[string]uint64{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Rdev: st.Rdev, Mtime: st.Mtim}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Data, e.Size = string(b), st.Size
		case unix.S_IFLNK:
			e.Link, _ = os.Readlink(p)
		}
		names, err := listXattrs(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			v, err := getXattr(p, n)
			if err != nil {
				return err
			}
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[n] = string(v)
		}
		out[rel], inos[rel] = e, st.Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, inos
}

func TestCopyTree(t *testing.T) {
	requires.Root(t)
	src := filepath.Join(t.TempDir(), "src")
	p := func(name string) string { return filepath.Join(src, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(p("usr/bin"), 0o755))
	must(os.WriteFile(p("usr/bin/ping"), []byte("ping binary"), 0o755))
	must(os.Chown(p("usr/bin/ping"), 0, 0))
	// A v2 file capability (cap_net_raw), which chown would clear.
	capNetRaw := []byte{0, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Lsetxattr(p("usr/bin/ping"), "security.capability", capNetRaw, 0))
	must(os.WriteFile(p("usr/bin/su"), []byte("su"), 0o644))
	must(os.Chown(p("usr/bin/su"), 7, 8))
	must(unix.Chmod(p("usr/bin/su"), 0o6755))
	must(os.Link(p("usr/bin/su"), p("usr/bin/su-link")))
	must(os.Mkdir(p("tmp"), 0o755))
	must(unix.Chmod(p("tmp"), 0o1777))
	must(os.Mkdir(p("locked"), 0o500))
	must(os.WriteFile(filepath.Join(src, "locked", "inside"), []byte("x"), 0o400))
	must(os.Symlink("/usr/bin/ping", p("abs")))
	must(os.Symlink("missing", p("dangling")))
	must(os.Lchown(p("dangling"), 3, 4))
	must(unix.Mkfifo(p("fifo"), 0o620))
	must(unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(p("blk"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	l, err := net.Listen("unix", p("sock"))
	must(err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	must(l.Close())
	must(unix.Lsetxattr(p("tmp"), "user.note", []byte("dir xattr"), 0))
	must(unix.Lsetxattr(p("usr/bin/su"), "trusted.x", []byte("t"), 0))
	must(os.WriteFile(p("big"), make([]byte, 3<<20), 0o600))
	old := time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.UTC)
	for _, n := range []string{"usr/bin/ping", "usr/bin", "tmp", "locked", "big", "fifo", "."} {
		must(os.Chtimes(p(n), old, old))
	}
	must(unix.Lutimes(p("abs"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))

	want, srcInos := describe(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := CopyTree(context.Background(), dst, src); err != nil {
		t.Fatal(err)
	}
	var fifo unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "fifo"), &fifo))
	if got := time.Unix(fifo.Atim.Unix()); !got.Equal(old) {
		t.Errorf("atime of copied fifo = %v, want %v", got, old)
	}
	got, dstInos := describe(t, dst)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("copy differs (-src +dst):\n%s", diff)
	}
	if dstInos["usr/bin/su"] != dstInos["usr/bin/su-link"] {
		t.Error("hardlink inside the tree was not kept")
	}
	for rel, ino := range dstInos {
		if ino == srcInos[rel] && rel != "." {
			t.Errorf("%s shares its inode with the source", rel)
		}
	}
	if err := CopyTree(context.Background(), dst, src); err == nil {
		t.Error("CopyTree onto an existing dst succeeded")
	}
}

// BenchmarkCopyTree copies a tree of 1000 files of 16 KiB in 10 dirs,
// the work of preparing a snapshot over such a parent.
func BenchmarkCopyTree(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	data := make([]byte, 16<<10)
	for d := range 10 {
		dir := filepath.Join(src, fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(1000 * int64(len(data)))
	out := b.TempDir()
	for i := 0; b.Loop(); i++ {
		if err := CopyTree(context.Background(), filepath.Join(out, fmt.Sprint(i)), src); err != nil {
			b.Fatal(err)
		}
	}
}
