package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cache-from on a fresh store: an image built on another store and
// loaded here gives its steps back (RUN output and all) while the step and
// its parent layers match; a changed COPY and every step after it run.
func TestBuildCacheFrom(t *testing.T) {
	t.Parallel()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "app.txt"), []byte("v1\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
RUN head -c 8 /dev/urandom | od -An -tx1 > /rand1
ENV MODE=prod
COPY app.txt /app.txt
RUN head -c 8 /dev/urandom | od -An -tx1 > /rand2
`), 0o644)
	// One base image ID in every store: the same tarball, path and time.
	epoch := []string{"SOURCE_DATE_EPOCH=1700000000"}
	base := busyboxTar(t)
	a := newCLI(t)
	a.env = epoch
	a.ok("import", base, "busybox")
	a.build("-t", "app:ci", ctx)
	archive := filepath.Join(t.TempDir(), "app.tar")
	a.ok("save", "-o", archive, "app:ci")
	files := func(c *cli, ref string) string {
		root := c.mountImage(ref)
		return readFile(t, filepath.Join(root, "rand1")) + readFile(t, filepath.Join(root, "rand2"))
	}
	want := files(a, "app:ci")

	b := newCLI(t)
	b.env = epoch
	b.ok("import", base, "busybox")
	b.ok("load", "-i", archive)
	progress := b.build("--cache-from", "app:ci", "-t", "app:new", ctx)
	for _, step := range []string{"RUN head -c 8 /dev/urandom | od -An -tx1 > /rand1", "ENV MODE=prod", "COPY app.txt /app.txt", "> /rand2"} {
		if got := statusOf(t, progress, step); got != "CACHED" {
			t.Errorf("%s: %s with --cache-from\n%s", step, got, progress)
		}
	}
	if got := files(b, "app:new"); got != want {
		t.Errorf("--cache-from reran steps: %q, want %q", got, want)
	}
	if id := b.ok("inspect", "--format", "{{.Id}}", "app:new"); id != a.ok("inspect", "--format", "{{.Id}}", "app:ci") {
		t.Errorf("the cached build is another image: %s", id)
	}

	os.WriteFile(filepath.Join(ctx, "app.txt"), []byte("v2\n"), 0o644)
	c := newCLI(t)
	c.env = epoch
	c.ok("import", base, "busybox")
	c.ok("load", "-i", archive)
	progress = c.build("--cache-from", "app:ci", "-t", "app:v2", ctx)
	if statusOf(t, progress, "> /rand1") != "CACHED" || statusOf(t, progress, "COPY app.txt") != "DONE" || statusOf(t, progress, "> /rand2") != "DONE" {
		t.Errorf("a changed COPY:\n%s", progress)
	}
	got := files(c, "app:v2")
	if got[:len(got)/2] != want[:len(want)/2] || got == want {
		t.Errorf("after the changed COPY: %q (was %q)", got, want)
	}
	if _, errs, code := c.run(nil, "build", "--cache-from", "type=local,src=/x", ctx); code != 125 || !strings.Contains(errs, "want an image reference") {
		t.Errorf("--cache-from type=local: exit %d %q", code, errs)
	}
}
