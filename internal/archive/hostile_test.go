package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

// hostileCase is a crafted layer that tries to touch something outside the
// root. out is the absolute path of the directory holding the root and the
// canary, so an escape would land where the test can see it (and never in
// the host's /etc).
type hostileCase struct {
	name string
	pre  func(t *testing.T, root, out string) // state left by earlier layers
	tar  func(t *testing.T, out string) []byte
	// errIn lists the modes in which Apply must fail; in the others it must
	// succeed and contain the entry inside the root.
	errIn []WhiteoutMode
	check func(t *testing.T, root, out string, mode WhiteoutMode)
}

var (
	both        = []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay}
	overlayOnly = []WhiteoutMode{WhiteoutOverlay}
)

func ents(e ...ent) func(*testing.T, string) []byte {
	return func(t *testing.T, _ string) []byte { return mkTar(t, e...) }
}

func wantFile(rel, body string) func(*testing.T, string, string, WhiteoutMode) {
	return func(t *testing.T, root, _ string, _ WhiteoutMode) {
		if got := readFile(t, filepath.Join(root, rel)); got != body {
			t.Errorf("%s = %q, want %q", rel, got, body)
		}
	}
}

func wantType(rel string, typ uint32) func(*testing.T, string, string, WhiteoutMode) {
	return func(t *testing.T, root, _ string, _ WhiteoutMode) {
		if st := lstat(t, filepath.Join(root, rel)); st.Mode&unix.S_IFMT != typ {
			t.Errorf("%s has type %o, want %o", rel, st.Mode&unix.S_IFMT, typ)
		}
	}
}

// wantWhitedOut: rel is gone (delete mode) or a whiteout device (overlay).
func wantWhitedOut(rel string) func(*testing.T, string, string, WhiteoutMode) {
	return func(t *testing.T, root, _ string, m WhiteoutMode) {
		var st unix.Stat_t
		err := unix.Lstat(filepath.Join(root, rel), &st)
		switch {
		case m == WhiteoutDelete && err == nil:
			t.Errorf("%s not deleted", rel)
		case m == WhiteoutOverlay && (err != nil || !rootfs.IsWhiteoutDev(&st)):
			t.Errorf("%s is not a whiteout device: mode %o, %v", rel, st.Mode, err)
		}
	}
}

func hostileCases() []hostileCase {
	chain := func(t *testing.T, _ string) []byte {
		var e []ent
		for i := range 50 {
			e = append(e, symlink(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)))
		}
		e = append(e, symlink("l50", "."), file("l0/x", "pwned"))
		return mkTar(t, e...)
	}
	return []hostileCase{
		{name: "dotdot-file", tar: ents(file("../escaped", "pwned")), errIn: both},
		{name: "dotdot-deep", tar: ents(file("a/../../escaped", "pwned")), errIn: both},
		{name: "dotdot-dir", tar: ents(dir("../newdir/")), errIn: both},
		{name: "dotdot-symlink-name", tar: ents(symlink("../lnk", "x")), errIn: both},
		{name: "dotdot-hardlink-name", tar: ents(file("x", "1"), hardlink("../h", "x")), errIn: both},
		{name: "dotdot-device", tar: ents(ent{name: "../null", typ: tar.TypeChar, major: 1, minor: 3}), errIn: both},
		{name: "gnu-long-name-dotdot", tar: func(t *testing.T, _ string) []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			name := strings.Repeat("a/", 60) + strings.Repeat("../", 62) + "escaped"
			must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644, Format: tar.FormatGNU}))
			_, _ = tw.Write([]byte("x"))
			must(t, tw.Close())
			return buf.Bytes()
		}, errIn: both},
		{name: "absolute-name", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, file(out+"/escaped", "contained"))
		}, check: func(t *testing.T, root, out string, m WhiteoutMode) {
			wantFile(out+"/escaped", "contained")(t, root, out, m)
		}},
		{name: "symlink-up-then-write", tar: ents(symlink("lnk", "../"), file("lnk/escaped", "contained")),
			check: wantFile("escaped", "contained")},
		{name: "symlink-abs-dangling-then-write", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("lnk", out), file("lnk/canary", "pwned"))
		}, errIn: both},
		{name: "symlink-abs-then-write", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, dir(out+"/"), symlink("lnk", out), file("lnk/canary", "contained"))
		}, check: func(t *testing.T, root, out string, m WhiteoutMode) {
			wantFile(out+"/canary", "contained")(t, root, out, m)
		}},
		{name: "symlink-far-up-then-write", tar: ents(symlink("lnk", "../../../../../../.."), file("lnk/canary", "contained")),
			check: wantFile("canary", "contained")},
		{name: "symlink-chain-up", tar: ents(symlink("a", "b"), symlink("b", "c"), symlink("c", "../.."), file("a/x", "contained")),
			check: wantFile("x", "contained")},
		{name: "symlink-root-repeated", tar: ents(symlink("s", "/"), file("s/s/s/x", "contained")),
			check: wantFile("x", "contained")},
		{name: "symlink-loop-50", tar: chain, errIn: both},
		{name: "symlink-proc-self-root", tar: ents(symlink("p", "/proc/self/root"), file("p/escaped", "pwned")), errIn: both},
		{name: "file-replaces-symlink", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("lnk", out+"/canary"), file("lnk", "contained"))
		}, check: wantFile("lnk", "contained")},
		{name: "dir-replaces-symlink", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("lnk", out), dir("lnk/"), file("lnk/x", "contained"))
		}, check: wantFile("lnk/x", "contained")},
		{name: "existing-symlink-file-replaced", pre: func(t *testing.T, root, out string) {
			must(t, os.Symlink(out+"/canary", root+"/f"))
		}, tar: ents(file("f", "contained")), check: wantFile("f", "contained")},
		{name: "existing-symlink-dir-parent", pre: func(t *testing.T, root, out string) {
			must(t, os.Symlink(out, root+"/lib"))
		}, tar: ents(file("lib/canary", "pwned")), errIn: both},
		{name: "existing-relative-symlink-parent", pre: func(t *testing.T, root, out string) {
			must(t, os.Symlink("../../..", root+"/lib"))
		}, tar: ents(file("lib/canary", "contained")), check: wantFile("canary", "contained")},
		{name: "hardlink-dotdot-target", tar: ents(hardlink("h", "../canary")), errIn: both},
		{name: "hardlink-abs-target-missing", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, hardlink("h", out+"/canary"))
		}, errIn: both},
		{name: "hardlink-abs-target-inside", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, file(out+"/canary", "inside"), hardlink("h", out+"/canary"))
		}, check: wantFile("h", "inside")},
		{name: "hardlink-to-symlink-out", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("s", out+"/canary"), hardlink("h", "s"))
		}, check: wantType("h", unix.S_IFLNK)},
		{name: "hardlink-to-symlink-then-write", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("s", out+"/canary"), hardlink("h", "s"), file("h", "contained"))
		}, check: func(t *testing.T, root, out string, m WhiteoutMode) {
			wantFile("h", "contained")(t, root, out, m)
			wantType("s", unix.S_IFLNK)(t, root, out, m)
		}},
		{name: "hardlink-through-symlink-dir", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("d", out), hardlink("h", "d/canary"))
		}, errIn: both},
		{name: "hardlink-through-up-symlink", tar: ents(symlink("d", "../.."), hardlink("h", "d/canary")), errIn: both},
		{name: "hardlink-to-dir", tar: ents(dir("d/"), hardlink("h", "d")), errIn: both},
		{name: "hardlink-to-root", tar: ents(hardlink("h", "/")), errIn: both},
		{name: "file-under-file", tar: ents(file("f", "x"), file("f/x", "y")), errIn: both},
		{name: "root-as-file", tar: ents(file(".", "x")), errIn: both},
		{name: "root-as-symlink", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("/", out))
		}, errIn: both},
		{name: "whiteout-dotdot", tar: ents(file("../.wh.canary", "")), errIn: both},
		{name: "whiteout-of-dotdot", tar: ents(file("a/.wh..", "")), errIn: both},
		{name: "whiteout-of-dot", tar: ents(file(".wh..", "")), errIn: both},
		{name: "whiteout-in-symlink-dir", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("d", out), file("d/.wh.canary", ""))
		}, errIn: overlayOnly},
		// Whiteouts spare entries of their own layer by name; reached
		// through another name, the file is treated as a lower one. Either
		// way nothing leaves the root.
		{name: "whiteout-via-up-symlink", tar: ents(file("canary", "mine"), symlink("d", "../.."), file("d/.wh.canary", "")),
			check: wantWhitedOut("canary")},
		{name: "whiteout-via-up-symlink-lower", pre: func(t *testing.T, root, _ string) {
			writeFile(t, root+"/canary", "lower", 0o644)
		}, tar: ents(symlink("d", "../.."), file("d/.wh.canary", "")), check: wantWhitedOut("canary")},
		{name: "opaque-in-symlink-dir", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("d", out), file("d/.wh..wh..opq", ""))
		}, errIn: overlayOnly},
		{name: "opaque-via-up-symlink", pre: func(t *testing.T, root, _ string) {
			writeFile(t, root+"/lower-file", "x", 0o644)
		}, tar: ents(file("keep", "k"), symlink("d", "../.."), file("d/.wh..wh..opq", "")),
			check: func(t *testing.T, root, out string, m WhiteoutMode) {
				if m == WhiteoutOverlay {
					wantFile("keep", "k")(t, root, out, m)
					if !rootfs.IsOpaque(root) {
						t.Error("root not marked opaque")
					}
				} else if exists(root + "/lower-file") {
					t.Error("opaque root kept a lower file")
				}
			}},
		{name: "top-level-opaque", pre: func(t *testing.T, root, _ string) {
			writeFile(t, root+"/old", "x", 0o644)
		}, tar: ents(file("new", "n"), file(".wh..wh..opq", "")),
			check: func(t *testing.T, root, out string, m WhiteoutMode) {
				wantFile("new", "n")(t, root, out, m)
				if m == WhiteoutDelete && exists(root+"/old") {
					t.Error("old survived a top-level opaque")
				}
			}},
		{name: "xattr-on-symlink-out", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, ent{name: "s", typ: tar.TypeSymlink, link: out + "/canary",
				xattrs: map[string]string{"user.pwn": "1", "trusted.pwn": "1"}})
		}, check: wantType("s", unix.S_IFLNK)},
		{name: "device-via-up-symlink", tar: ents(symlink("d", "../.."), ent{name: "d/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666}),
			check: wantType("null", unix.S_IFCHR)},
		{name: "fifo-replaces-symlink", tar: func(t *testing.T, out string) []byte {
			return mkTar(t, symlink("f", out+"/canary"), ent{name: "f", typ: tar.TypeFifo, mode: 0o600})
		}, check: wantType("f", unix.S_IFIFO)},
		{name: "overlay-redirect-xattr", tar: ents(ent{name: "d/", typ: tar.TypeDir,
			xattrs: map[string]string{"trusted.overlay.redirect": "/../../../"}}),
			check: func(t *testing.T, root, _ string, _ WhiteoutMode) {
				if _, err := lgetxattr(root+"/d", overlayRedirectXattr); err == nil {
					t.Error("trusted.overlay.redirect from the tar was set")
				}
			}},
	}
}

// outsideState describes everything under base except the roots, so any
// file created, removed or changed outside them shows up.
func outsideState(t *testing.T, base string, roots ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(roots, p) {
			return filepath.SkipDir
		}
		m[p] = describe(t, p, true)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHostileLayers applies each crafted layer in both whiteout modes to a
// root with a canary file beside it.
func TestHostileLayers(t *testing.T) {
	requireRoot(t)
	cases := hostileCases()
	if len(cases) < 25 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, tc := range cases {
		for _, mode := range both {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				base := t.TempDir()
				out := base + "/out"
				root := out + "/root"
				must(t, os.MkdirAll(root, 0o755))
				writeFile(t, out+"/canary", "canary", 0o644)
				must(t, unix.Setxattr(out+"/canary", "user.canary", []byte("1"), 0))
				writeFile(t, out+"/canarydir/file", "canary", 0o644)
				if tc.pre != nil {
					tc.pre(t, root, out)
				}
				before := outsideState(t, base, root)
				_, err := apply(t, root, tc.tar(t, out), ApplyOptions{Whiteouts: mode})
				diffManifests(t, before, outsideState(t, base, root))
				wantErr := false
				for _, m := range tc.errIn {
					wantErr = wantErr || m == mode
				}
				switch {
				case wantErr && err == nil:
					t.Fatal("Apply succeeded; want an error")
				case !wantErr && err != nil:
					t.Fatalf("Apply: %v; want the entry contained", err)
				case !wantErr && tc.check != nil:
					tc.check(t, root, out, mode)
				}
			})
		}
	}
}
