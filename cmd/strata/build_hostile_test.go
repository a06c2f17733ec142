package main

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
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

// Sources that lead out of their root: a stage whose rootfs has absolute
// and "../" symlinks to a host directory, read by COPY --from and by RUN
// --mount=type=bind,from=..., and a context with symlinks to the host.
// As docker, symlinks on the source path itself are followed inside the
// root (so they reach the root's own copy of the host path), and symlinks
// below a copied directory are copied as symlinks. Nothing of the host
// directory is ever read. Every expected value is what dockerd 20.10's
// BuildKit made of the same context and Dockerfile (the classic builder
// has no RUN --mount).
func TestBuildSourcesSymlinkedOutStayInside(t *testing.T) {
	requires.Runc(t)
	t.Parallel()
	c := newCLI(t)
	c.importBusybox()
	canary := t.TempDir()
	for p, body := range map[string]string{"secret": "HOST SECRET\n", "sub/f": "HOST SECRET\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(canary, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(canary, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	climb := strings.Repeat("../", 20) + strings.TrimPrefix(canary, "/")
	ctx := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctx, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ctx, canary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, canary, "secret"), []byte("INSIDE ctx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"dir/abs": canary, "dir/rel": climb, "ctxlink": canary, "rellink": climb} {
		if err := os.Symlink(target, filepath.Join(ctx, name)); err != nil {
			t.Fatal(err)
		}
	}
	df := fmt.Sprintf(`FROM busybox AS evil
RUN mkdir -p %[1]s/sub && echo INSIDE > %[1]s/secret && echo INSIDE > %[1]s/sub/f && ln -s %[1]s /abs && ln -s %[2]s /rel && mkdir /d && ln -s %[1]s /d/inner && ln -s %[1]s/secret /fileln
FROM busybox
COPY --from=evil /abs/ /got/abs/
COPY --from=evil /rel/sub /got/rel/
COPY --from=evil /fileln /got/file
COPY --from=evil /d /got/d
COPY dir /got/ctxdir
COPY ctxlink/secret /got/ctxlink
COPY rellink/secret /got/rellink
RUN --mount=type=bind,from=evil,source=/abs,target=/m1 --mount=type=bind,from=evil,source=rel/sub,target=/m2 --mount=type=bind,from=evil,source=/fileln,target=/m3 cat /m1/secret /m2/f /m3 > /got/bind
RUN --mount=type=bind,source=ctxlink,target=/m4 --mount=type=bind,source=rellink,target=/m5,rw cat /m4/secret /m5/secret > /got/ctxbind
`, canary, climb)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	c.build("-t", "symlinked", ctx)
	got := filepath.Join(c.mountImage("symlinked"), "got")
	for p, want := range map[string]string{
		"abs/secret": "INSIDE\n", "rel/f": "INSIDE\n", "file": "INSIDE\n",
		"ctxlink": "INSIDE ctx\n", "rellink": "INSIDE ctx\n",
		"bind": "INSIDE\nINSIDE\nINSIDE\n", "ctxbind": "INSIDE ctx\nINSIDE ctx\n",
	} {
		if b, err := os.ReadFile(filepath.Join(got, p)); err != nil || string(b) != want {
			t.Errorf("/got/%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for p, want := range map[string]string{"d/inner": canary, "ctxdir/abs": canary, "ctxdir/rel": climb} {
		if l, err := os.Readlink(filepath.Join(got, p)); err != nil || l != want {
			t.Errorf("/got/%s: link %q, %v; want a symlink to %q", p, l, err, want)
		}
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.Contains(readFile(t, p), "HOST") {
			t.Errorf("%s has the host file's content", p)
		}
		return nil
	})
}
