package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// A container's changes show in diff as A/C/D, and commit carries exactly
// those changes into a new image, deletions included.
func TestDiffCommitRoundTrip(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "--name", "changer", "busybox", "sh", "-c",
		"echo new > /root/added; echo changed >> /etc/passwd; rm /etc/group; mkdir -p /srv/www; echo hi > /srv/www/index.html")

	if st := strings.TrimSpace(c.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "changer")); st != "exited 0" {
		t.Fatalf("inspect of the container: %q", st)
	}
	got := strings.TrimSpace(c.ok("diff", "changer"))
	want := strings.Join([]string{
		"C /etc", "C /etc/passwd", "D /etc/group", "C /root", "A /root/added", "A /srv", "A /srv/www", "A /srv/www/index.html",
	}, "\n")
	if sortLines(got) != sortLines(want) {
		t.Fatalf("diff:\n%s\nwant (any order):\n%s", got, want)
	}

	id := strings.TrimSpace(c.ok("commit", "-m", "my change", "-a", "tester", "-c", "ENV STAGE=committed", "changer", "changed:v1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	out := c.ok("run", "--rm", "changed:v1", "sh", "-c",
		"cat /root/added; tail -n1 /etc/passwd; test -e /etc/group && echo group-present || echo group-absent; cat /srv/www/index.html; echo $STAGE")
	if out != "new\nchanged\ngroup-absent\nhi\ncommitted\n" {
		t.Fatalf("new container from the committed image sees:\n%s", out)
	}
	// The base image still has the file the commit deleted.
	if out := c.ok("run", "--rm", "busybox", "cat", "/etc/group"); !strings.Contains(out, "root:x:0:") {
		t.Fatalf("base image lost /etc/group: %q", out)
	}
	hist := c.ok("history", "--format", "{{.Comment}}|{{.CreatedBy}}", "changed:v1")
	if first := strings.Split(hist, "\n")[0]; !strings.HasPrefix(first, "my change|sh -c echo new") {
		t.Fatalf("history top entry %q", first)
	}
	layers := strings.TrimSpace(c.ok("inspect", "--format", "{{len .RootFS.Layers}} {{.Parent}}", "changed:v1"))
	baseID := strings.TrimSpace(c.ok("inspect", "--format", "{{.Id}}", "busybox"))
	if layers != "2 "+baseID {
		t.Fatalf("committed image layers/parent %q, want 2 %s", layers, baseID)
	}
	// Only the change was stored: the new layer is small.
	size := strings.TrimSpace(c.ok("history", "--format", "{{.Size}}", "changed:v1"))
	if first := strings.Split(size, "\n")[0]; strings.HasSuffix(first, "MB") {
		t.Fatalf("the commit layer is %s: it should hold only the change", first)
	}
}

func sortLines(s string) string {
	l := strings.Split(s, "\n")
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j] < l[i] {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	return strings.Join(l, "\n")
}

// export | import gives an image with the same files.
func TestExportImportRoundTrip(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("create", "--name", "exp", "busybox", "sh", "-c", "true")
	c.ok("cp", "cli_test.go", "exp:/root/cli_test.go")
	tarPath := filepath.Join(t.TempDir(), "exp.tar")
	c.ok("export", "-o", tarPath, "exp")

	names := tarNames(t, tarPath)
	for _, want := range []string{"bin/busybox", "etc/passwd", "root/cli_test.go"} {
		if !names[want] {
			t.Fatalf("export lacks %s", want)
		}
	}
	c.ok("import", tarPath, "reimported")
	out := c.ok("run", "--rm", "reimported", "sh", "-c", "wc -c < /root/cli_test.go; ls /bin/busybox")
	src, _ := os.ReadFile("cli_test.go")
	if !strings.HasPrefix(out, strconv.Itoa(len(src))+"\n") || !strings.Contains(out, "/bin/busybox") {
		t.Fatalf("reimported image: %q", out)
	}
}

func tarNames(t *testing.T, p string) map[string]bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return tarNamesFrom(t, f)
}

func tarNamesFrom(t *testing.T, r io.Reader) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")] = true
	}
}

// cp works both ways, on running and stopped containers, and "-" streams tars.
func TestCpBothWays(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "cpbox", "busybox", "sleep", "1000")
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "dir/sub"), 0o755)
	os.WriteFile(filepath.Join(host, "dir/sub/f"), []byte("payload"), 0o600)

	c.ok("cp", filepath.Join(host, "dir"), "cpbox:/tmp")
	back := filepath.Join(host, "back")
	c.ok("cp", "cpbox:/tmp/dir/sub/f", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != "payload" {
		t.Fatalf("copied back %q, %v", b, err)
	}
	out, _, code := c.run(nil, "cp", "cpbox:/tmp/dir", "-")
	if code != 0 {
		t.Fatal("cp to stdout failed")
	}
	if names := tarNamesFrom(t, strings.NewReader(out)); !names["dir/sub/f"] {
		t.Fatalf("tar stream names: %v", names)
	}
	// A tar on stdin lands in the container.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "fromtar", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.Close()
	if _, errs, code := c.run(&buf, "cp", "-", "cpbox:/root"); code != 0 {
		t.Fatalf("cp from stdin: %s", errs)
	}
	c.ok("stop", "-t", "1", "cpbox")
	// Stopped: copying out mounts the root on its own.
	c.ok("cp", "cpbox:/root/fromtar", filepath.Join(host, "fromtar"))
	if b, _ := os.ReadFile(filepath.Join(host, "fromtar")); string(b) != "abc" {
		t.Fatalf("fromtar = %q", b)
	}
	diff := c.ok("diff", "cpbox")
	for _, want := range []string{"A /tmp/dir/sub/f", "A /root/fromtar"} {
		if !strings.Contains(diff, want+"\n") {
			t.Fatalf("diff lacks %s:\n%s", want, diff)
		}
	}
	if _, errs, code := c.run(nil, "cp", "cpbox:/nope", host); code == 0 || !strings.Contains(errs, "Error:") {
		t.Fatalf("cp of a missing path: exit %d %q", code, errs)
	}
}

// Committing a running container pauses it for the commit (docker's
// default) and leaves it running afterwards, not frozen.
func TestCommitRunningContainerResumesIt(t *testing.T) {
	c := newBusyboxCLI(t)
	id := strings.TrimSpace(c.ok("run", "-d", "--name", "busy", "busybox", "sleep", "1000"))
	c.ok("commit", "-c", "CMD [\"cat\", \"/etc/passwd\"]", "busy", "snap:1")
	c.ok("commit", "--pause=false", "busy", "snap:2")
	out, err := exec.Command("runc", "--root", filepath.Join(c.root, "runtime", "runc"), "state", id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var st struct{ Status string }
	if err := json.Unmarshal(out, &st); err != nil || st.Status != "running" {
		t.Fatalf("after commit the container is %q (%v), want running", st.Status, err)
	}
	if got := c.ok("run", "--rm", "snap:1"); !strings.HasPrefix(got, "root:x:0:0") {
		t.Fatalf("committed image runs: %q", got)
	}
}

// commit keeps the image's Healthcheck and OnBuild (docker commits the
// whole config), and --change ENTRYPOINT drops the inherited CMD as docker
// and the builder do, so the committed image runs the new entrypoint
// alone.
func TestCommitChangesAgreeWithDocker(t *testing.T) {
	requires.Runc(t)
	c := newCLI(t)
	c.ok("import", "-c", `CMD ["sh"]`, "-c", "HEALTHCHECK --interval=7s CMD true", "-c", "ONBUILD RUN true", busyboxTar(t), "hc")
	c.ok("create", "--name", "hcbox", "hc")
	c.ok("commit", "-c", `ENTRYPOINT ["/bin/echo", "entry"]`, "-c", "EXPOSE 80 81-82/UDP", "hcbox", "hc:committed")
	got := strings.TrimSpace(c.ok("inspect", "--format",
		`{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Healthcheck}} {{json .Config.OnBuild}} {{json .Config.ExposedPorts}}`, "hc:committed"))
	want := `["/bin/echo","entry"] null {"Test":["CMD-SHELL","true"],"Interval":7000000000} ["RUN true"] {"80/tcp":{},"81/udp":{},"82/udp":{}}`
	if got != want {
		t.Fatalf("committed config:\n got %s\nwant %s", got, want)
	}
	if out := c.ok("run", "--rm", "hc:committed"); out != "entry\n" {
		t.Fatalf("the committed image runs %q, want the entrypoint alone", out)
	}
	// A CMD in the same set of changes survives the ENTRYPOINT.
	c.ok("commit", "-c", "CMD echo hi", "-c", `ENTRYPOINT ["/bin/echo"]`, "hcbox", "hc:both")
	if got := strings.TrimSpace(c.ok("inspect", "--format", `{{json .Config.Cmd}}`, "hc:both")); got != `["/bin/sh","-c","echo hi"]` {
		t.Fatalf("cmd %s", got)
	}
	for ch, msg := range map[string]string{`VOLUME ""`: "VOLUME specified can not be an empty string", "STOPSIGNAL 9": "stopsignal is not a valid change command"} {
		if _, errs, code := c.run(nil, "commit", "-c", ch, "hcbox", "hc:bad"); code == 0 || !strings.Contains(errs, msg) {
			t.Errorf("commit -c %s: exit %d %q, want an error with %q", ch, code, errs, msg)
		}
	}
}

// cp -a gives what it writes into a container to the container's user (as
// docker; strata looks the user up in the container), and what cp writes
// on the host belongs to the user who copies.
func TestCpArchiveOwners(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "cpuser", "--user", "nobody", "busybox", "sleep", "1000")
	host := t.TempDir()
	f := filepath.Join(host, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	os.Chown(f, 1234, 4321)
	c.ok("cp", "-a", f, "cpuser:/tmp/a")
	c.ok("cp", "-q", f, "cpuser:/tmp/q")
	if got := c.ok("exec", "cpuser", "stat", "-c", "%u:%g", "/tmp/a", "/tmp/q"); got != "65534:65534\n1234:4321\n" {
		t.Fatalf("owners in the container after cp -a and cp -q:\n%s", got)
	}
	back := filepath.Join(host, "back")
	c.ok("cp", "cpuser:/tmp/q", back)
	var st syscall.Stat_t
	if err := syscall.Lstat(back, &st); err != nil || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Fatalf("the host's copy is owned by %d:%d (%v), want the caller's", st.Uid, st.Gid, err)
	}
}
