package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Behaviours a Docker user relies on every day, each once broken in strata.

// docker run -v creates a missing host directory rather than failing.
func TestRunBindCreatesMissingHostDir(t *testing.T) {
	c := newBusyboxCLI(t)
	host := filepath.Join(t.TempDir(), "missing", "sub")
	c.ok("run", "--rm", "-v", host+":/data", "busybox", "touch", "/data/made")
	fi, err := os.Stat(filepath.Join(host, "made"))
	if err != nil {
		t.Fatalf("file written through the bind: %v", err)
	}
	if !fi.Mode().IsRegular() {
		t.Fatalf("%s is %v", host, fi.Mode())
	}
}

// docker run -v ./dir:/ctr binds a directory relative to the current one.
func TestRunBindRelativeHostPath(t *testing.T) {
	c := newBusyboxCLI(t)
	dir := t.TempDir()
	t.Chdir(dir)
	c.ok("run", "--rm", "-v", "./rel:/data", "busybox", "touch", "/data/made")
	if _, err := os.Stat(filepath.Join(dir, "rel", "made")); err != nil {
		t.Fatalf("relative bind: %v", err)
	}
}

// docker's json template function does not escape <, > and &.
func TestFormatJSONDoesNotEscapeHTML(t *testing.T) {
	c := newCLI(t)
	c.ok("import", "-c", `CMD ["sh","-c","a > b && c"]`, busyboxTar(t), "img")
	if out := c.ok("inspect", "-f", "{{json .Config.Cmd}}", "img"); out != `["sh","-c","a > b && c"]`+"\n" {
		t.Fatalf("inspect json: %q", out)
	}
	if out := c.ok("inspect", "img"); !strings.Contains(out, `"a > b && c"`) {
		t.Fatalf("inspect: %s", out)
	}
}

// rmi deletes the untagged parents left by a build unless --no-prune.
func TestRmiPrunesUntaggedParents(t *testing.T) {
	c := newBusyboxCLI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo 1 > /one\nRUN echo 2 > /two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	all := func() []string { return strings.Fields(c.ok("images", "-aq")) }
	before := all()
	c.ok("build", "-q", "-t", "app", dir)
	if n := len(all()) - len(before); n != 2 {
		t.Fatalf("build added %d images, want 2 (one per RUN)", n)
	}
	c.ok("rmi", "--no-prune", "app")
	if n := len(all()) - len(before); n != 1 {
		t.Fatalf("rmi --no-prune left %d new images, want the untagged parent", n)
	}
	c.ok("build", "-q", "-t", "app", dir)
	c.ok("rmi", "app")
	if after := all(); len(after) != len(before) {
		t.Fatalf("rmi left %v, want only %v", after, before)
	}
	// The base image has a tag: it stays.
	c.ok("inspect", "busybox")
}

// ps --filter narrows the list the way docker's does.
func TestPsFilter(t *testing.T) {
	c := newBusyboxCLI(t)
	if _, _, code := c.run(nil, "run", "--name", "done7", "busybox", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("run exit 7: %d", code)
	}
	c.ok("run", "--name", "done0", "busybox", "true")
	c.ok("create", "--name", "fresh", "busybox")
	names := func(args ...string) string {
		t.Helper()
		return strings.Join(strings.Fields(c.ok(append([]string{"ps", "-a", "--format", "{{.Names}}"}, args...)...)), " ")
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{[]string{"--filter", "name=done"}, "done0 done7"},
		{[]string{"-f", "name=^done7$"}, "done7"},
		{[]string{"-f", "status=exited"}, "done0 done7"},
		{[]string{"-f", "status=created"}, "fresh"},
		{[]string{"-f", "exited=7"}, "done7"},
		{[]string{"-f", "name=done", "-f", "exited=0"}, "done0"},
		{[]string{"-f", "status=created", "-f", "status=exited"}, "done0 done7 fresh"},
		{[]string{"-f", "ancestor=busybox"}, "done0 done7 fresh"},
	} {
		got := strings.Fields(names(tc.filters...))
		slices.Sort(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("ps %v: %v, want %s", tc.filters, got, tc.want)
		}
	}
	// A status filter shows stopped containers without -a, as docker's does.
	if got := strings.Fields(c.ok("ps", "-f", "status=created", "--format", "{{.Names}}")); !slices.Equal(got, []string{"fresh"}) {
		t.Errorf("ps -f status=created: %v", got)
	}
	// info breaks the count down like docker's.
	if info := c.ok("info"); !strings.Contains(info, " Containers: 3\n  Running: 0\n  Paused: 0\n  Stopped: 3\n") {
		t.Errorf("info:\n%s", info)
	}
	if _, errs, code := c.run(nil, "ps", "-f", "bogus=1"); code == 0 || !strings.Contains(errs, "invalid filter 'bogus'") {
		t.Fatalf("bad filter: exit %d, %q", code, errs)
	}
	if _, errs, code := c.run(nil, "ps", "-f", "name"); code != 125 || !strings.Contains(errs, "bad format of filter") {
		t.Fatalf("filter without '=': exit %d, %q (docker exits 125)", code, errs)
	}
}

// docker cp copies a symlink as a link; -L copies what it points to.
func TestCpSymlinkSource(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "--name", "ln", "busybox", "sh", "-c", "echo tgt > /target; ln -s /target /lnk")
	out := t.TempDir()
	c.ok("cp", "ln:/lnk", filepath.Join(out, "asis"))
	if target, err := os.Readlink(filepath.Join(out, "asis")); err != nil || target != "/target" {
		t.Fatalf("cp of a link: %q, %v", target, err)
	}
	c.ok("cp", "-L", "ln:/lnk", filepath.Join(out, "followed"))
	if b, err := os.ReadFile(filepath.Join(out, "followed")); err != nil || string(b) != "tgt\n" {
		t.Fatalf("cp -L: %q, %v", b, err)
	}
}

// images -f reference=PATTERN is the REPOSITORY argument's other spelling.
func TestImagesReferenceFilter(t *testing.T) {
	c := newCLI(t)
	tarball := busyboxTar(t)
	c.ok("import", tarball, "busybox")
	c.ok("tag", "busybox", "app:v1")
	c.ok("tag", "busybox", "apple:v2")
	rows := func(args ...string) string {
		t.Helper()
		return strings.Join(strings.Fields(c.ok(append([]string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, args...)...)), " ")
	}
	if got := rows("-f", "reference=app*"); got != "app:v1 apple:v2" && got != "apple:v2 app:v1" {
		t.Errorf("reference=app*: %s", got)
	}
	if got := rows("-f", "reference=busybox", "-f", "reference=*:v1"); got != "app:v1 busybox:latest" && got != "busybox:latest app:v1" {
		t.Errorf("two references: %s", got)
	}
	if got := rows("apple"); got != "apple:v2" {
		t.Errorf("argument: %s", got)
	}
}

// -it with a pipe for input is refused before anything is created, as in
// docker: the container's terminal would wait for input forever.
func TestRunInteractiveTtyNeedsTerminal(t *testing.T) {
	c := newBusyboxCLI(t)
	_, errs, code := c.run(strings.NewReader("echo hi\n"), "run", "--rm", "-it", "busybox", "sh")
	if code != 1 || !strings.Contains(errs, "the input device is not a TTY") {
		t.Fatalf("run -it from a pipe: exit %d, %q", code, errs)
	}
	if ps := strings.TrimSpace(c.ok("ps", "-aq")); ps != "" {
		t.Fatalf("a container was left: %s", ps)
	}
	c.ok("create", "--name", "tt", "-it", "busybox", "sh")
	if _, errs, code := c.run(strings.NewReader(""), "start", "-ai", "tt"); code != 1 || !strings.Contains(errs, "the input device is not a TTY") {
		t.Fatalf("start -ai from a pipe: exit %d, %q", code, errs)
	}
	// -t alone needs no terminal.
	if out := c.ok("run", "--rm", "-t", "busybox", "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("run -t: %q", out)
	}
}

// An image with children is never deleted, even with -f: docker then only
// takes its names, and the child keeps its history.
func TestRmiImageWithChildren(t *testing.T) {
	c := newBusyboxCLI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo 1 > /one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("build", "-q", "-t", "child", dir)
	c.ok("tag", "busybox", "base:1")
	id := strings.TrimSpace(c.ok("inspect", "-f", "{{.Id}}", "busybox"))
	if _, errs, code := c.run(nil, "rmi", id); code != 1 || !strings.Contains(errs, "must be forced") {
		t.Fatalf("rmi of a twice-tagged parent: exit %d, %q", code, errs)
	}
	out := c.ok("rmi", "-f", id)
	if strings.Contains(out, "Deleted:") || !strings.Contains(out, "Untagged: busybox:latest") || !strings.Contains(out, "Untagged: base:1") {
		t.Fatalf("rmi -f of a parent: %q", out)
	}
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.Id}}", id)); got != id {
		t.Fatalf("the parent went: %q", got)
	}
	if _, errs, code := c.run(nil, "rmi", "-f", id); code != 1 || !strings.Contains(errs, "image has dependent child images") {
		t.Fatalf("rmi -f of an untagged parent: exit %d, %q", code, errs)
	}
	if n := len(strings.Split(strings.TrimSpace(c.ok("history", "-q", "child")), "\n")); n != 2 {
		t.Fatalf("child history has %d entries", n)
	}
	c.ok("run", "--rm", "child", "cat", "/one")
}
