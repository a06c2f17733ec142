package builder

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"
	"github.com/strata-project/strata/internal/testutil/swap"
)

// A context directory whose subdirectory keeps being swapped for a symlink
// to a host directory while COPY walks, hashes and copies it never gets a
// host file's content into the copy: each directory is walked through its
// parent's descriptor, and each file is opened again in the context root
// refusing any symlink on its path.
func TestSourceSwappedForSymlinkStaysInside(t *testing.T) {
	requires.Root(t)
	ctxDir, dst := t.TempDir(), t.TempDir()
	top := filepath.Join(ctxDir, "top")
	if err := os.Mkdir(top, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "a"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	swap.Subdir(t, top)

	root := testRoot(t, ctxDir)
	deadline := time.Now().Add(2 * time.Second)
	tries, copied := 0, 0
	for ; tries < 1000 && time.Now().Before(deadline); tries++ {
		m, err := walkSource(root, "top", nil)
		if err != nil {
			continue
		}
		if digestMatch(sha256.New(), m, false) != nil {
			continue // a file's path had a symlink by then: refused
		}
		os.RemoveAll(dst)
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := newCopier(dst, "")
		if err != nil {
			t.Fatal(err)
		}
		err = c.tree(m, "/out")
		c.close()
		if err != nil {
			continue
		}
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), swap.HostContent) {
				t.Fatalf("try %d: %s has a host file's content", tries, p)
			}
			if strings.Contains(p, "sub") {
				copied++
			}
			return nil
		})
	}
	t.Logf("%d tries, %d files copied from below the swapped directory", tries, copied)
}

// A context file written after the step's key was made of it (its walk and
// digest) and before it is copied fails the copy: the layer would otherwise
// hold content its key does not name, and a later build of the content the
// key names would be served that layer from the cache.
func TestSourceChangedAfterDigestFailsCopy(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single=%v", single), func(t *testing.T) {
			t.Parallel()
			ctxDir, dst := t.TempDir(), t.TempDir()
			src := filepath.Join(ctxDir, "d", "a")
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(src, []byte("one"), 0o644); err != nil {
				t.Fatal(err)
			}
			rel := "d"
			if single {
				rel = "d/a"
			}
			m, err := walkSource(testRoot(t, ctxDir), rel, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := digestMatch(sha256.New(), m, false); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(src, []byte("written since"), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := newCopier(dst, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			if single {
				err = c.file(m.entries[0], "/out/a")
			} else {
				err = c.tree(m, "/out")
			}
			if err == nil || !strings.Contains(err.Error(), "copy a: ") || !strings.Contains(err.Error(), "changed") {
				b, _ := os.ReadFile(filepath.Join(dst, "out", "a"))
				t.Fatalf("copy of a file written after its digest: err %v, copied %q", err, b)
			}
		})
	}
}
