package main

import (
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
)

// The CLI tests run the real binary against a temporary store, as a user would.
var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-cli-test-")
	if err != nil {
		panic(err)
	}
	strataBin = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", strataBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build strata: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cli struct {
	t    *testing.T
	root string
	env  []string // added to the test's environment
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("the CLI tests need root (they mount overlays and run containers)")
	}
	return &cli{t: t, root: t.TempDir()}
}

// run runs strata and returns stdout, stderr and the exit status.
func (c *cli) run(stdin io.Reader, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(strataBin, append([]string{"--root", c.root}, args...)...)
	cmd.Stdin = stdin
	if c.env != nil {
		cmd.Env = append(os.Environ(), c.env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("strata %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs strata and fails the test unless it exits 0.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(nil, args...)
	if code != 0 {
		c.t.Fatalf("strata %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// busyboxTar makes the demo's busybox rootfs tarball.
func busyboxTar(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox.tar")
	cmd := exec.Command("../../hack/busybox-rootfs.sh", p)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox-rootfs.sh: %v\n%s", err, out)
	}
	return p
}

// storeFiles lists the regular files under dir, relative to it.
func storeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestImportImagesHistoryInspect(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	id := strings.TrimSpace(c.ok("import", "-c", "CMD [\"/bin/sh\"]", "-c", "ENV FOO=bar", "-m", "my base", tarPath, "busybox:1"))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("import printed %q, want an image ID", id)
	}

	out := c.ok("images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") {
		t.Fatalf("images:\n%s", out)
	}
	f := strings.Fields(lines[1])
	if f[0] != "busybox" || f[1] != "1" || f[2] != id[7:19] {
		t.Fatalf("images row %q, want busybox 1 %s", lines[1], id[7:19])
	}
	if q := strings.TrimSpace(c.ok("images", "-q")); q != id[7:19] {
		t.Fatalf("images -q = %q", q)
	}
	if got := strings.TrimSpace(c.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")); got != "busybox:1 "+id[7:19] {
		t.Fatalf("images --format = %q", got)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(c.ok("images", "--format", "json")), &row); err != nil || row["Repository"] != "busybox" {
		t.Fatalf("images --format json: %v %v", row, err)
	}

	var insp []map[string]any
	if err := json.Unmarshal([]byte(c.ok("inspect", "busybox:1")), &insp); err != nil {
		t.Fatalf("inspect is not JSON: %v", err)
	}
	if len(insp) != 1 || insp[0]["Id"] != id {
		t.Fatalf("inspect Id = %v, want %s", insp[0]["Id"], id)
	}
	for _, k := range []string{"Id", "RepoTags", "RepoDigests", "Created", "Config", "RootFS", "Size"} {
		if _, ok := insp[0][k]; !ok {
			t.Errorf("inspect lacks %s", k)
		}
	}
	cfg := insp[0]["Config"].(map[string]any)
	for _, k := range []string{"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Volumes", "Labels"} {
		if _, ok := cfg[k]; !ok {
			t.Errorf("inspect Config lacks %s", k)
		}
	}
	// Like docker's, ExposedPorts is left out when the image exposes none.
	if _, ok := cfg["ExposedPorts"]; ok {
		t.Error("inspect Config has ExposedPorts for an image that exposes none")
	}
	if cmd := cfg["Cmd"].([]any); len(cmd) != 1 || cmd[0] != "/bin/sh" {
		t.Errorf("Config.Cmd = %v", cmd)
	}
	if env := cfg["Env"].([]any); len(env) != 1 || env[0] != "FOO=bar" {
		t.Errorf("Config.Env = %v", env)
	}
	rootfs := insp[0]["RootFS"].(map[string]any)
	if layers := rootfs["Layers"].([]any); len(layers) != 1 || rootfs["Type"] != "layers" {
		t.Errorf("RootFS = %v", rootfs)
	}
	if size := insp[0]["Size"].(float64); size < 500_000 {
		t.Errorf("Size = %v, want the busybox binary's size at least", size)
	}
	if got := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}} {{index .Config.Cmd 0}}", id[7:19])); got != id+" /bin/sh" {
		t.Fatalf("inspect --format = %q", got)
	}

	hist := c.ok("history", "busybox:1")
	hl := strings.Split(strings.TrimSpace(hist), "\n")
	if len(hl) != 2 || !strings.Contains(hl[0], "CREATED BY") || !strings.Contains(hl[1], "my base") || !strings.HasPrefix(hl[1], id[7:19]) {
		t.Fatalf("history:\n%s", hist)
	}
	if q := strings.TrimSpace(c.ok("history", "-q", "--no-trunc", "busybox:1")); q != id {
		t.Fatalf("history -q --no-trunc = %q", q)
	}
}

func TestImportIsContentAddressed(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	c.ok("import", tarPath, "a")
	gz := filepath.Join(t.TempDir(), "bb.tar.gz")
	if out, err := exec.Command("sh", "-c", "gzip -c "+tarPath+" > "+gz).CombinedOutput(); err != nil {
		t.Fatalf("gzip: %v %s", err, out)
	}
	f, _ := os.Open(gz)
	defer f.Close()
	if _, errs, code := c.run(f, "import", "-", "b"); code != 0 {
		t.Fatalf("import from stdin: %s", errs)
	}
	var diffs []string
	for _, n := range []string{"a", "b"} {
		diffs = append(diffs, strings.TrimSpace(c.ok("inspect", "--format", "{{index .RootFS.Layers 0}}", n)))
	}
	if diffs[0] != diffs[1] {
		t.Fatalf("same tar, plain and gzip, gave diffIDs %v", diffs)
	}
	if !strings.Contains(c.ok("info"), "Layers: 1\n") {
		t.Fatalf("the shared layer is stored twice:\n%s", c.ok("info"))
	}
}

func TestTagAndRmi(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	id := strings.TrimSpace(c.ok("import", tarPath, "busybox"))
	c.ok("tag", "busybox", "example.com/me/bb:v2")
	out := c.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
	if !strings.Contains(out, "busybox:latest") || !strings.Contains(out, "example.com/me/bb:v2") {
		t.Fatalf("images after tag:\n%s", out)
	}
	if _, errs, code := c.run(nil, "rmi", id[7:19]); code == 0 || !strings.Contains(errs, "must be forced") {
		t.Fatalf("rmi by ID of a twice-tagged image: exit %d %s", code, errs)
	}
	if out := c.ok("rmi", "example.com/me/bb:v2"); strings.TrimSpace(out) != "Untagged: example.com/me/bb:v2" {
		t.Fatalf("rmi one of two tags: %q", out)
	}
	out = c.ok("rmi", "busybox")
	if !strings.Contains(out, "Untagged: busybox:latest") || !strings.Contains(out, "Deleted: "+id) {
		t.Fatalf("rmi last tag:\n%s", out)
	}
	if imgs := strings.TrimSpace(c.ok("images", "-q")); imgs != "" {
		t.Fatalf("images after rmi: %q", imgs)
	}
	if !strings.Contains(c.ok("info"), "Layers: 0\n") {
		t.Fatal("rmi left the unused layer behind")
	}
	if blobs := storeFiles(t, filepath.Join(c.root, "content", "blobs")); len(blobs) != 0 {
		t.Fatalf("rmi left blobs: %v", blobs)
	}
}

func TestNoSuchImage(t *testing.T) {
	c := newCLI(t)
	if _, errs, code := c.run(nil, "inspect", "nope"); code != 1 || !strings.Contains(errs, "No such object: nope") {
		t.Errorf("inspect nope: exit %d, stderr %q", code, errs)
	}
	for _, args := range [][]string{{"image", "inspect", "nope"}, {"history", "nope"}, {"rmi", "nope"}, {"tag", "nope", "x"}} {
		_, errs, code := c.run(nil, args...)
		if code != 1 || !strings.Contains(errs, "No such image: nope") {
			t.Errorf("strata %v: exit %d, stderr %q", args, code, errs)
		}
	}
	if _, errs, code := c.run(nil, "images", "--bogus"); code != 125 || !strings.Contains(errs, "unknown flag") {
		t.Errorf("bad flag: exit %d, %q", code, errs)
	}
}

func TestCorruptImportLeavesStoreAsItWas(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	c.ok("import", tarPath, "base")
	before := storeFiles(t, filepath.Join(c.root, "content"))
	beforeInfo := c.ok("info")

	data, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	// Damage a header checksum in the middle of the archive.
	bad := append([]byte{}, data[:len(data)/2]...)
	bad = append(bad, bytes.Repeat([]byte{0x41}, 4096)...)
	_, errs, code := c.run(bytes.NewReader(bad), "import", "-", "broken")
	if code == 0 || !strings.Contains(errs, "Error:") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("corrupt import: exit %d, stderr %q (want one error line)", code, errs)
	}
	if after := storeFiles(t, filepath.Join(c.root, "content")); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("content changed: %v -> %v", before, after)
	}
	if got := c.ok("info"); got != beforeInfo {
		t.Fatalf("store changed:\n%s\n->\n%s", beforeInfo, got)
	}
	if out := c.ok("images", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "base" {
		t.Fatalf("images after failed import: %q", out)
	}
}

// A SIGKILL in the middle of an import must leave nothing half made.
func TestImportKilledMidway(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	data, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(strataBin, "--root", c.root, "import", "-", "half")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A pipe holds 64 KiB: once this write returns, strata has consumed
	// most of it and is blocked waiting for the rest.
	if _, err := stdin.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()

	if out := strings.TrimSpace(c.ok("images", "-q")); out != "" {
		t.Fatalf("images after killed import: %q", out)
	}
	if blobs := storeFiles(t, filepath.Join(c.root, "content", "blobs")); len(blobs) != 0 {
		t.Fatalf("partial blobs visible: %v", blobs)
	}
	if !strings.Contains(c.ok("info"), "Layers: 0\n") {
		t.Fatal("a layer from the killed import is visible")
	}
	// The store still works, and the next import completes.
	c.ok("import", tarPath, "whole")
	if out := strings.TrimSpace(c.ok("images", "--format", "{{.Repository}}")); out != "whole" {
		t.Fatalf("images = %q", out)
	}
}

// Several strata processes on one store: concurrent imports of one tarball
// under different tags, racing with removals, leave a consistent store.
func TestConcurrentProcessesShareOneStore(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	c.ok("import", tarPath, "seed") // the store exists before the race starts
	const n = 6
	errs := make(chan string, 2*n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			tag := "racer:" + strconv.Itoa(i)
			if out, errOut, code := c.run(nil, "import", tarPath, tag); code != 0 {
				errs <- "import " + tag + ": " + out + errOut
			}
		}()
		go func() {
			defer func() { done <- struct{}{} }()
			// Removing the seed while imports run must not take the
			// layer they share away from them.
			c.run(nil, "rmi", "seed")
		}()
	}
	for range 2 * n {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	tags := strings.Fields(c.ok("images", "--format", "{{.Repository}}:{{.Tag}}"))
	if len(tags) != n {
		t.Fatalf("images after the race: %v", tags)
	}
	if !strings.Contains(c.ok("info"), "Layers: 1\n") {
		t.Fatalf("one shared layer expected:\n%s", c.ok("info"))
	}
	// Every image still mounts and shows its files.
	for _, tag := range tags {
		p := strings.TrimSpace(c.ok("mount", tag))
		if _, err := os.Stat(filepath.Join(p, "bin/busybox")); err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		c.ok("umount", tag)
	}
}

func TestImportPlatform(t *testing.T) {
	c := newCLI(t)
	tarPath := busyboxTar(t)
	c.ok("import", tarPath, "plain")
	if got := strings.TrimSpace(c.ok("inspect", "--format", "{{.Os}}/{{.Architecture}}", "plain")); got != "linux/amd64" {
		t.Fatalf("default platform %q", got)
	}
	c.ok("import", "--platform", "linux/arm64/v8", tarPath, "arm")
	if got := strings.TrimSpace(c.ok("inspect", "--format", "{{.Os}}/{{.Architecture}}/{{.Variant}}", "arm")); got != "linux/arm64/v8" {
		t.Fatalf("--platform gave %q", got)
	}
	if _, errs, code := c.run(nil, "import", "--platform", "linux", tarPath, "bad"); code == 0 || !strings.Contains(errs, "invalid platform") {
		t.Fatalf("bad platform: exit %d %q", code, errs)
	}
}
