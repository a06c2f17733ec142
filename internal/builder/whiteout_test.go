package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// whiteoutTar is a tar (not a layer) whose members have whiteout names.
func whiteoutTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"etc/.wh.passwd", "etc/.wh..wh..opq", "Dockerfile"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
	}
	tw.Close()
	return buf.Bytes()
}

func assertLiteralWhiteouts(t *testing.T, root string) {
	t.Helper()
	for _, name := range []string{"etc/.wh.passwd", "etc/.wh..wh..opq"} {
		if b, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(b) != "x" {
			t.Errorf("%s not written as a file: %q %v", name, b, err)
		}
	}
}

// A tar build context on stdin is not a layer: .wh.* members are files.
func TestStdinContextKeepsWhiteoutNames(t *testing.T) {
	requires.Root(t)
	dir, _, err := StdinContext(context.Background(), bytes.NewReader(whiteoutTar(t)), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	assertLiteralWhiteouts(t, dir)
}

// ADD of a local tar writes .wh.* members as files and deletes nothing.
func TestAddLocalTarKeepsWhiteoutNames(t *testing.T) {
	requires.Root(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(tarDir, "a.tar"), whiteoutTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := walkSource(testRoot(t, tarDir), "a.tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCopier(root, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.extract(context.Background(), &m.entries[0], "/"); err != nil {
		t.Fatal(err)
	}
	assertLiteralWhiteouts(t, root)
	if b, err := os.ReadFile(filepath.Join(root, "etc/passwd")); err != nil || string(b) != "root" {
		t.Errorf("/etc/passwd after ADD: %q %v", b, err)
	}
}
