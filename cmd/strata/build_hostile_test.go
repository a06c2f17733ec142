package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Context and image shapes docker's classic builder handles, each checked
// against what dockerd 20.10 made of the same context: COPY . copies a FIFO
// as a FIFO and skips a socket; `*` with a `!` exception leaves no empty
// excluded directory; COPY through a dangling symlink in the image creates
// the link's target (a directory's, or a file's), and the link stays.
func TestBuildContextShapesLikeDocker(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.importBusybox()
	mk := func(dir string, files map[string]string) string {
		for name, data := range files {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(data), 0o644)
		}
		return dir
	}

	special := mk(t.TempDir(), map[string]string{"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", "top": "y"})
	if err := syscall.Mkfifo(filepath.Join(special, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(special, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c.build("-t", "special", special)
	root := c.mountImage("special")
	if fi, err := os.Lstat(filepath.Join(root, "ctx/fifo")); err != nil || fi.Mode().Type() != os.ModeNamedPipe || fi.Mode().Perm() != 0o640 {
		t.Errorf("fifo: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "ctx/sock")); !os.IsNotExist(err) {
		t.Errorf("socket copied: %v", err)
	}

	ignore := mk(t.TempDir(), map[string]string{
		"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", ".dockerignore": "*\n!sub/deep/keep.txt\n",
		"sub/deep/keep.txt": "keep", "other/x": "x", "top": "y",
	})
	c.build("-t", "ignore", ignore)
	root = c.mountImage("ignore")
	var got []string
	filepath.Walk(filepath.Join(root, "ctx"), func(p string, fi os.FileInfo, err error) error {
		got = append(got, strings.TrimPrefix(p, root))
		return nil
	})
	if strings.Join(got, " ") != "/ctx /ctx/sub /ctx/sub/deep /ctx/sub/deep/keep.txt" {
		t.Errorf("* + !sub/deep/keep.txt copied %v", got)
	}

	dangling := mk(t.TempDir(), map[string]string{
		"Dockerfile": "FROM busybox\nRUN ln -s /target/dir /link && ln -s /gone /file-link\nCOPY f /link/x\nCOPY f /file-link\n",
		"f":          "data",
	})
	c.build("-t", "dangling", dangling)
	root = c.mountImage("dangling")
	if b, err := os.ReadFile(filepath.Join(root, "target/dir/x")); err != nil || string(b) != "data" {
		t.Errorf("COPY through a dangling dir link: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "gone")); err != nil || string(b) != "data" {
		t.Errorf("COPY onto a dangling file link: %q %v", b, err)
	}
	for link, want := range map[string]string{"link": "/target/dir", "file-link": "/gone"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("/%s = %q %v, want the link kept", link, got, err)
		}
	}
}
