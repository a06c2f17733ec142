package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"

	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	requires.Root(t)
}

// ent is one tar entry of a test archive.
type ent struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	major    int64
	minor    int64
	xattrs   map[string]string
	mtime    time.Time
}

func file(name, body string) ent   { return ent{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) ent          { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) ent  { return ent{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) ent { return ent{name: name, typ: tar.TypeLink, link: to} }

// mkTar builds a PAX tar of ents.
func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		mt := e.mtime
		if mt.IsZero() {
			mt = time.Unix(1700000000, 0)
		}
		h := &tar.Header{
			Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: mode,
			Uid: e.uid, Gid: e.gid, Size: int64(len(e.body)), ModTime: mt,
			Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX,
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if len(e.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				h.PAXRecords[xattrPAXPrefix+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %s: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func apply(t testing.TB, root string, data []byte, opts ApplyOptions) (int64, error) {
	t.Helper()
	return Apply(context.Background(), root, bytes.NewReader(data), opts)
}

func mustApply(t testing.TB, root string, data []byte, opts ApplyOptions) {
	t.Helper()
	if _, err := apply(t, root, data, opts); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// manifest describes every entry below dir (not dir itself) independently of
// the code under test: type, permissions, owner, content hash, link target,
// device, xattrs (overlay internals left out) and, unless dirs is false,
// directory mtimes. Non-directory mtimes are compared in whole seconds.
func manifest(t testing.TB, root string, dirTimes bool) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = describe(t, p, dirTimes)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return m
}

func describe(t testing.TB, p string, dirTimes bool) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, " size=%d sha=%s", len(data), hex.EncodeToString(sum[:8]))
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		fmt.Fprintf(&b, " link=%s", l)
	case unix.S_IFCHR, unix.S_IFBLK:
		fmt.Fprintf(&b, " rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || dirTimes {
		fmt.Fprintf(&b, " mtime=%d", st.Mtim.Sec)
	}
	xs, err := readXattrs(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if strings.HasPrefix(x.name, overlayXattrPrefix) && x.name != overlayOpaqueXattr {
			continue
		}
		fmt.Fprintf(&b, " %s=%q", x.name, x.value)
	}
	return b.String()
}

func diffManifests(t testing.TB, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var bad []string
	for _, k := range keys {
		if want[k] != got[k] {
			bad = append(bad, fmt.Sprintf("%s:\n  want %q\n  got  %q", k, want[k], got[k]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("trees differ:\n%s", strings.Join(bad, "\n"))
	}
}

func writeFile(t testing.TB, p, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func treeTar(t testing.TB, lower, upper string, opts DiffOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTreeDiff(context.Background(), &buf, lower, upper, opts); err != nil {
		t.Fatalf("WriteTreeDiff: %v", err)
	}
	return buf.Bytes()
}

func overlayTar(t testing.TB, upper string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteOverlayDiff(context.Background(), &buf, upper, DiffOptions{}); err != nil {
		t.Fatalf("WriteOverlayDiff: %v", err)
	}
	return buf.Bytes()
}

// tarNames lists the entry names of a tar with their type flags, "name:type".
func tarNames(t testing.TB, data []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			if err == io.EOF {
				return out
			}
			t.Fatalf("read tar: %v", err)
		}
		out = append(out, h.Name+":"+string(h.Typeflag))
	}
}

func changeList(t testing.TB, f func(fn func(Change) error) error) []string {
	t.Helper()
	var out []string
	if err := f(func(c Change) error { out = append(out, c.String()); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// lgetxattr reads one xattr of path, not following a final symlink.
func lgetxattr(path, name string) ([]byte, error) {
	var stack [128]byte
	v, err := xattrCall(stack[:], func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
	return bytes.Clone(v), err
}
