package builder

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
)

// mountImage mounts image id of s read-only until the test ends.
func mountImage(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	ctx := context.Background()
	img, err := s.Images().Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	key := s.Layers().IngestKey()
	mounts, err := s.Snapshots().View(ctx, key, string(image.ChainID(img.Config.RootFS.DiffIDs)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Snapshots().Remove(ctx, key) })
	dir := t.TempDir()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.UnmountAll(dir) })
	return dir
}

// listTree describes every entry below root: type, mode, owner, size,
// content digest, link target and, for all but directories the builder
// ran commands in, the mtime.
func listTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x mtime=%d", sha256.Sum256(b), st.Mtim.Nano())
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " -> " + l + fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
		case syscall.S_IFDIR:
			if strings.HasPrefix(rel, "new") {
				desc += fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const copyTreeDockerfile = `FROM busybox
RUN mkdir -p /usr/lib/real /target /app/over/inner /app/keep && echo old > /app/over/inner/old.txt && echo lower > /app/keep/k.txt && ln -s /usr/lib/real /app/lib && ln -s /target /linked && echo f > /app/dirover && chown 7:8 /target
COPY --chown=1000:1001 data/ /new/data/
COPY data/ /app/
COPY data/ /linked/sub/
COPY --chmod=0600 data/sub /new/chmod/
`

// copyTreeContext writes the context of copyTreeDockerfile.
func copyTreeContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	for _, d := range []string{"sub/deeper", "lib", "dirover"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"a.txt": "alpha", "exec.sh": "#!/bin/sh\n", "sub/b.txt": "beta", "sub/deeper/c.txt": strings.Repeat("c", 300000),
		"lib/x.txt": "x", "over": "now a file", "dirover/y.txt": "y"}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(data, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Chmod(filepath.Join(data, "exec.sh"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a.txt", filepath.Join(data, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, n := range []string{"a.txt", "sub/deeper/c.txt", "sub/deeper", "sub"} {
		if err := os.Chtimes(filepath.Join(data, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(copyTreeDockerfile), 0o644)
	return dir
}

// COPY of directory trees gives the same files, owners, modes and times
// on overlay (where new directories are written in the upper dir) and on
// native, and the expected ones: lower symlinks in the destination path
// are followed, entries replace lower files and directories of another
// type, and existing directories are merged.
func TestCopyTreeOverlayMatchesNative(t *testing.T) {
	trees := map[string]map[string]string{}
	ctxDir := copyTreeContext(t)
	for _, driver := range []string{"overlay", "native"} {
		s := benchStore(t, driver)
		res, err := Build(context.Background(), s, Options{ContextDir: ctxDir, Network: "none"})
		if err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
		trees[driver] = listTree(t, mountImage(t, s, string(res.ID)))
	}
	ov, nat := trees["overlay"], trees["native"]
	var paths []string
	for p := range ov {
		paths = append(paths, p)
	}
	for p := range nat {
		if _, ok := ov[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	// Made by RUN or as a missing parent: times of the build, not the context.
	buildTime := map[string]bool{"app/keep/k.txt": true, "linked": true, "new": true}
	for _, p := range paths {
		if buildTime[p] {
			o, _, _ := strings.Cut(ov[p], " mtime=")
			n, _, _ := strings.Cut(nat[p], " mtime=")
			if o != n {
				t.Errorf("%s: overlay %q, native %q", p, ov[p], nat[p])
			}
			continue
		}
		if ov[p] != nat[p] && !strings.HasPrefix(p, "proc") && !strings.HasPrefix(p, "dev") {
			t.Errorf("%s: overlay %q, native %q", p, ov[p], nat[p])
		}
	}

	old := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC).UnixNano()
	want := map[string]string{
		"new/data/a.txt":              fmt.Sprintf("100644 1000:1001 %x mtime=%d", sha256.Sum256([]byte("alpha")), old),
		"new/data/sub/deeper/c.txt":   fmt.Sprintf("100644 1000:1001 %x mtime=%d", sha256.Sum256([]byte(strings.Repeat("c", 300000))), old),
		"new/data/sub/deeper":         fmt.Sprintf("40755 1000:1001 mtime=%d", old),
		"new/data/sub":                fmt.Sprintf("40750 1000:1001 mtime=%d", old),
		"new/chmod/deeper/c.txt":      fmt.Sprintf("100600 0:0 %x mtime=%d", sha256.Sum256([]byte(strings.Repeat("c", 300000))), old),
		"app/over":                    fmt.Sprintf("100644 0:0 %x", sha256.Sum256([]byte("now a file"))),
		"app/keep/k.txt":              fmt.Sprintf("100644 0:0 %x", sha256.Sum256([]byte("lower\n"))),
		"app/dirover/y.txt":           fmt.Sprintf("100644 0:0 %x", sha256.Sum256([]byte("y"))),
		"app/lib/x.txt":               fmt.Sprintf("100644 0:0 %x", sha256.Sum256([]byte("x"))),
		"target/sub/sub/deeper/c.txt": fmt.Sprintf("100644 0:0 %x", sha256.Sum256([]byte(strings.Repeat("c", 300000)))),
	}
	for p, w := range want {
		if got := ov[p]; !strings.HasPrefix(got, w) {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	for p, w := range map[string]string{"new/data/exec.sh": "104755 1000:1001", "new/data/sub/link": "120777 1000:1001 -> ../a.txt", "app/dirover": "40755 0:0", "app/lib": "40755 0:0", "linked": "120777 0:0 -> /target", "target": "40755 7:8"} {
		if got := ov[p]; !strings.HasPrefix(got, w) {
			t.Errorf("%s = %q, want prefix %q", p, got, w)
		}
	}
	for _, p := range []string{"app/over/inner", "usr/lib/real/x.txt", "linked/sub", "new/chmod/sub"} {
		if _, ok := ov[p]; ok {
			t.Errorf("%s exists", p)
		}
	}
}

// writeDir maps a directory made through an overlay mount to the upper
// dir, and leaves a directory of a lower layer to the mount.
func TestWriteDirMapsFreshDirsToUpper(t *testing.T) {
	s := benchStore(t, "overlay")
	ctx := context.Background()
	img, err := s.Images().Get(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	key := s.Layers().IngestKey()
	mounts, err := s.Snapshots().Prepare(ctx, key, string(image.ChainID(img.Config.RootFS.DiffIDs)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Snapshots().Remove(ctx, key) })
	root := t.TempDir()
	if err := snapshot.MountAll(mounts, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.UnmountAll(root) })
	upper, err := s.Snapshots().Dir(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCopier(root, upper)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := os.Mkdir(filepath.Join(root, "fresh"), 0o755); err != nil {
		t.Fatal(err)
	}
	// writeDir gives the directory to write into: an fd of the upper
	// dir's copy of a fresh dir, the mount's own fd for a lower dir.
	writeDir := func(rel string) (got string, sameFd bool) {
		t.Helper()
		fd, err := c.root.OpenDir(rel)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		w, err := c.writeDir(fd, rel)
		if err != nil {
			t.Fatal(err)
		}
		if w != fd {
			defer unix.Close(w)
		}
		p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(w))
		if err != nil {
			t.Fatal(err)
		}
		return p, w == fd
	}
	if got, _ := writeDir("fresh"); got != filepath.Join(upper, "fresh") {
		t.Errorf("fresh dir writes to %s, want the upper dir", got)
	}
	if got, same := writeDir("etc"); !same || got != filepath.Join(root, "etc") {
		t.Errorf("lower dir etc writes to %s, want the mount", got)
	}
	// What is written in the upper dir shows in the mount.
	if got, _ := writeDir("fresh"); os.WriteFile(filepath.Join(got, "f"), []byte("hi"), 0o644) != nil {
		t.Fatal("write into the upper dir")
	}
	if b, err := os.ReadFile(filepath.Join(root, "fresh", "f")); err != nil || string(b) != "hi" {
		t.Errorf("file written in the upper dir reads %q %v through the mount", b, err)
	}
}

// The parallel file hashing keeps the source digest of before: cache keys
// made by earlier builds stay valid.
func TestSourceDigestFormatUnchanged(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d", "e"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("one"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "e", "g"), []byte(strings.Repeat("g", 1<<20)), 0o600)
	os.Symlink("f", filepath.Join(dir, "d", "link"))
	m, err := walkSource(testRoot(t, dir), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if err := digestMatch(h, m, false); err != nil {
		t.Fatal(err)
	}
	// The digest input as the sequential hashing wrote it.
	want := sha256.New()
	fmt.Fprintf(want, "match %q dir=%v\n", "d", true)
	for _, e := range m.entries {
		fmt.Fprintf(want, "%q %o %q", e.rel, uint32(e.fi.Mode()), e.link)
		if e.fi.Mode().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.path))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(want, " %d %x", e.fi.Size(), sha256.Sum256(b))
		}
		fmt.Fprintln(want)
	}
	if fmt.Sprintf("%x", h.Sum(nil)) != fmt.Sprintf("%x", want.Sum(nil)) {
		t.Error("source digest changed")
	}
	os.Remove(filepath.Join(dir, "d", "f"))
	if err := digestMatch(sha256.New(), m, false); err == nil {
		t.Error("a source file vanished and the digest did not fail")
	}
}
