package main

import (
	"archive/tar"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func syscallTime(sec int64) time.Time { return time.Unix(sec, 0) }

// corpusContext copies the Dockerfile corpus into a fresh context dir and
// adds the tar that ADD unpacks.
func corpusContext(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	if out, err := exec.Command("cp", "-a", "../../internal/build/testdata/corpus", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy corpus: %v %s", err, out)
	}
	f, err := os.Create(filepath.Join(dir, "files", "archive.tar"))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "p.txt", Mode: 0o600, Size: 7, Uid: 42, Gid: 43, Typeflag: tar.TypeReg})
	tw.Write([]byte("packed\n"))
	tw.Close()
	f.Close()
	return dir
}

// buildOut runs `strata build` and returns its progress output; it fails
// the test unless the build succeeds.
func (c *cli) build(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(nil, append([]string{"build", "--progress", "plain"}, args...)...)
	if code != 0 {
		c.t.Fatalf("strata build %v: exit %d\n%s%s", args, code, out, errs)
	}
	return errs
}

// stepStatus maps each step header to CACHED or DONE.
func stepStatus(t *testing.T, progress string) map[string]string {
	t.Helper()
	names := map[string]string{}
	out := map[string]string{}
	header := regexp.MustCompile(`^#(\d+) (\[.*)$`)
	for _, line := range strings.Split(progress, "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			names[m[1]] = m[2]
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 && (f[1] == "CACHED" || f[1] == "DONE") {
			if n, ok := names[strings.TrimPrefix(f[0], "#")]; ok {
				out[n] = f[1]
			}
		}
	}
	return out
}

func (c *cli) importBusybox() {
	c.t.Helper()
	c.ok("import", busyboxTar(c.t), "busybox")
}

func (c *cli) mountImage(ref string) string {
	c.t.Helper()
	p := strings.TrimSpace(c.ok("mount", ref))
	c.t.Cleanup(func() { c.run(nil, "umount", ref) })
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildCorpus(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := corpusContext(t)
	iid := filepath.Join(t.TempDir(), "iid")
	progress := c.build("-t", "corpus:1", "-t", "corpus:2", "--label", "built=by-test", "--iidfile", iid, ctx)
	id := readFile(t, iid)
	for _, want := range []string{"[base 3/3] RUN echo base > /base.txt", "[final 2/31] MAINTAINER", "writing image " + id + " done", "naming to docker.io/library/corpus:1 done", "naming to docker.io/library/corpus:2 done"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
	if got := strings.TrimSpace(c.ok("inspect", "--format", "{{.Id}}", "corpus:2")); got != id {
		t.Fatalf("corpus:2 is %s, iidfile says %s", got, id)
	}

	root := c.mountImage("corpus:1")
	files := map[string]string{
		"base.txt":             "base\n",
		"from-base.txt":        "base\n",
		"app/sub/a.txt":        "alpha\n",
		"app/dir/d.txt":        "in dir\n",
		"app/dir/nested/n.txt": "deep\n",
		"app/contents/d.txt":   "in dir\n",
		"app/globbed/a.txt":    "alpha\n",
		"app/globbed/keep.log": "kept\n",
		"app/extracted/p.txt":  "packed\n",
		"app/added.txt":        "alpha\n",
		"app/exec.txt":         "exec-form 1.0 amd64\n",
		"app/shell.txt":        "hello world value with spaces\n",
		"app/heredoc.txt":      "heredoc\n",
		"app/inline.txt":       "inline 1.0\n",
		"app/shell2.txt":       "errexit\n",
		"tmp/uid-nobody.txt":   "65534\n",
	}
	for p, want := range files {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"app/globbed/secret.txt", "app/globbed/x.log", "app/contents/nested/../../dir/nested/../../globbed/dir"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s exists: .dockerignore or the directory-contents rule was not applied", p)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "app/sub/a.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != 0o640 {
		t.Errorf("COPY --chown=1000:1000 --chmod=0640 gave %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if err := syscall.Stat(filepath.Join(root, "app/extracted/p.txt"), &st); err != nil || st.Uid != 42 || st.Mode&0o777 != 0o600 {
		t.Errorf("ADD tar did not keep the entry's owner and mode: %d %o %v", st.Uid, st.Mode&0o777, err)
	}
	// The runtime's mount points made for RUN must not end up in layers
	// the base did not have them in... the busybox base has them: check
	// the RUN layers held no /proc entries instead via history sizes below.

	var insp []struct {
		Config struct {
			Env          []string
			Cmd          []string
			Entrypoint   []string
			WorkingDir   string
			User         string
			Labels       map[string]string
			ExposedPorts map[string]any
			Volumes      map[string]any
			StopSignal   string
		}
		Author string
	}
	if err := json.Unmarshal([]byte(c.ok("inspect", "corpus:1")), &insp); err != nil {
		t.Fatal(err)
	}
	cfg := insp[0].Config
	if cfg.WorkingDir != "/app/sub" || cfg.User != "root" || cfg.StopSignal != "SIGTERM" || insp[0].Author != "someone@example.com" {
		t.Errorf("config: %+v author %q", cfg, insp[0].Author)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/bin/sh" || strings.Join(cfg.Cmd, " ") != "-c echo hi" {
		t.Errorf("entrypoint %v cmd %v", cfg.Entrypoint, cfg.Cmd)
	}
	if cfg.Labels["stage"] != "base" || cfg.Labels["built"] != "by-test" {
		t.Errorf("labels %v", cfg.Labels)
	}
	if _, ok := cfg.ExposedPorts["53/udp"]; !ok || len(cfg.ExposedPorts) != 2 {
		t.Errorf("exposed %v", cfg.ExposedPorts)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("volumes %v", cfg.Volumes)
	}
	env := strings.Join(cfg.Env, "|")
	if !strings.Contains(env, "GREETING=hello world") || !strings.Contains(env, "APP_HOME=/app") || strings.Contains(env, "VERSION") {
		t.Errorf("env %v (ARGs must not persist)", cfg.Env)
	}
	// Healthcheck, OnBuild and Shell are docker fields outside ocispec.
	raw := readFile(t, filepath.Join(c.root, "content", "blobs", "sha256", strings.TrimPrefix(id, "sha256:")))
	var dcfg struct {
		Config struct {
			Healthcheck struct {
				Test     []string
				Interval int64
			}
			OnBuild []string
			Shell   []string
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(raw), &dcfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(dcfg.Config.Healthcheck.Test, " ") != "CMD-SHELL wget -q localhost || exit 1" || dcfg.Config.Healthcheck.Interval != 30e9 {
		t.Errorf("healthcheck %+v", dcfg.Config.Healthcheck)
	}
	if len(dcfg.Config.OnBuild) != 1 || dcfg.Config.Shell[1] != "-e" {
		t.Errorf("onbuild %v shell %v", dcfg.Config.OnBuild, dcfg.Config.Shell)
	}

	// ONBUILD triggers run in a build FROM the image.
	child := t.TempDir()
	os.WriteFile(filepath.Join(child, "Dockerfile"), []byte("FROM corpus:1\nRUN cat /onbuild.txt\n"), 0o644)
	c.build("-t", "child", child)
	if got := readFile(t, filepath.Join(c.mountImage("child"), "onbuild.txt")); got != "onbuild\n" {
		t.Errorf("onbuild trigger output %q", got)
	}

	// Rebuilding the unchanged context: every step cached, same image.
	again := c.build("--iidfile", iid, "--label", "built=by-test", ctx)
	if readFile(t, iid) != id {
		t.Fatalf("unchanged rebuild gave %s, want %s", readFile(t, iid), id)
	}
	againStatus := stepStatus(t, again)
	if len(againStatus) != 34 {
		t.Errorf("rebuild showed %d steps, want 34:\n%s", len(againStatus), again)
	}
	for step, status := range againStatus {
		if status != "CACHED" && !strings.Contains(step, " FROM ") {
			t.Errorf("unchanged rebuild ran %s", step)
		}
	}
}

func TestBuildCacheInvalidation(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	write := func(name, data string) {
		os.MkdirAll(filepath.Dir(filepath.Join(ctx, name)), 0o755)
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM busybox\nCOPY one.txt /one.txt\nRUN cat /one.txt > /r1\nCOPY two.txt /two.txt\nRUN cat /two.txt > /r2\nENV DONE=1\n")
	write("one.txt", "1")
	write("two.txt", "2")
	write("ignored/big.bin", "x")
	write(".dockerignore", "ignored\n")
	first := c.build("-t", "app", ctx)
	if s := stepStatus(t, first); s["[4/6] COPY two.txt /two.txt"] != "DONE" {
		t.Fatalf("first build: %v\n%s", s, first)
	}
	id := c.ok("inspect", "--format", "{{.Id}}", "app")

	// An ignored file changes nothing; nor does a new mtime.
	write("ignored/big.bin", "y")
	now := syscallTime(2000000000)
	os.Chtimes(filepath.Join(ctx, "one.txt"), now, now)
	second := c.build("-t", "app", ctx)
	secondStatus := stepStatus(t, second)
	if len(secondStatus) != 6 {
		t.Errorf("second build showed %d steps:\n%s", len(secondStatus), second)
	}
	for step, status := range secondStatus {
		if status != "CACHED" && !strings.Contains(step, "FROM") {
			t.Errorf("after touching/ignored change, %s ran", step)
		}
	}
	if got := c.ok("inspect", "--format", "{{.Id}}", "app"); got != id {
		t.Errorf("image changed: %s -> %s", id, got)
	}

	// Changing two.txt re-runs from the COPY that selects it.
	write("two.txt", "22")
	third := stepStatus(t, c.build("-t", "app", ctx))
	want := map[string]string{
		"[2/6] COPY one.txt /one.txt":  "CACHED",
		"[3/6] RUN cat /one.txt > /r1": "CACHED",
		"[4/6] COPY two.txt /two.txt":  "DONE",
		"[5/6] RUN cat /two.txt > /r2": "DONE",
		"[6/6] ENV DONE=1":             "DONE",
	}
	for step, status := range want {
		if third[step] != status {
			t.Errorf("%s: %s, want %s (all: %v)", step, third[step], status, third)
		}
	}
	if got := readFile(t, filepath.Join(c.mountImage("app"), "r2")); got != "22" {
		t.Errorf("r2 = %q", got)
	}

	// --no-cache runs everything; the cache survives for the next build.
	for step, status := range stepStatus(t, c.build("--no-cache", ctx)) {
		if status == "CACHED" {
			t.Errorf("--no-cache: %s was cached", step)
		}
	}
}

func TestBuildFailingRunLeavesNothing(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	df := filepath.Join(t.TempDir(), "app.Dockerfile") // -f outside the context
	os.WriteFile(df, []byte("FROM busybox\nRUN echo ok > /ok\n"), 0o644)
	c.build("-t", "app", "-f", df, ctx)
	good := c.ok("inspect", "--format", "{{.Id}}", "app")
	images := c.ok("images", "-a", "-q", "--no-trunc")
	info := c.ok("info")

	os.WriteFile(df, []byte("FROM busybox\nRUN echo ok > /ok\n\nRUN echo first line; echo about to fail >&2; exit 3\n"), 0o644)
	_, errs, code := c.run(nil, "build", "--progress", "plain", "-t", "app", "-f", df, ctx)
	if code == 0 {
		t.Fatal("failing RUN: build succeeded")
	}
	for _, want := range []string{"app.Dockerfile:4:", "exit code: 3", "about to fail", "first line"} {
		if !strings.Contains(errs, "Error: ") || !strings.Contains(errs[strings.Index(errs, "Error: "):], want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
	if got := c.ok("inspect", "--format", "{{.Id}}", "app"); got != good {
		t.Errorf("the tag moved: %s -> %s", good, got)
	}
	if got := c.ok("images", "-a", "-q", "--no-trunc"); got != images {
		t.Errorf("images changed:\n%s\n->\n%s", images, got)
	}
	if got := c.ok("info"); got != info {
		t.Errorf("store changed:\n%s\n->\n%s", info, got)
	}
	if left := storeFiles(t, filepath.Join(c.root, "build", "steps")); len(left) != 0 {
		t.Errorf("step files left: %v", left)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), c.root) {
		t.Errorf("mounts left under the store:\n%s", mounts)
	}
	var active []string
	filepath.Walk(filepath.Join(c.root, "snapshots"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, "ingest") {
			active = append(active, p)
		}
		return nil
	})
	if len(active) != 0 {
		t.Errorf("snapshot dirs left: %v", active)
	}
}

func TestBuildTargetAndUnsupported(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox AS unused
RUN echo unused > /u
FROM busybox AS dep
RUN echo dep > /d
FROM busybox AS mid
COPY --from=dep /d /d
RUN cat /d > /m
FROM mid AS last
RUN exit 1
`), 0o644)
	progress := c.build("--target", "mid", "-t", "mid", ctx)
	if strings.Contains(progress, "[unused") || strings.Contains(progress, "[last") {
		t.Errorf("--target mid built stages it does not need:\n%s", progress)
	}
	if !strings.Contains(progress, "[dep 2/2] RUN echo dep") {
		t.Errorf("--target mid did not build its dependency:\n%s", progress)
	}
	if got := readFile(t, filepath.Join(c.mountImage("mid"), "m")); got != "dep\n" {
		t.Errorf("m = %q", got)
	}
	if _, errs, code := c.run(nil, "build", "--target", "nope", ctx); code == 0 || !strings.Contains(errs, `target stage "nope" could not be found`) {
		t.Errorf("unknown target: %d %s", code, errs)
	}

	for _, tc := range []struct{ line, want string }{
		{"RUN --mount=type=ssh true", "Dockerfile:2: RUN --mount=type=ssh is not supported"},
		{"COPY --link Dockerfile /", "Dockerfile:2: COPY --link is not supported"},
		{"ADD http://127.0.0.1:1/x /x", "Dockerfile:2: ADD of a URL"},
		{"RUN --security=insecure true", "Dockerfile:2: RUN --security is not supported"},
	} {
		bad := t.TempDir()
		os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\n"+tc.line+"\n"), 0o644)
		if _, errs, code := c.run(nil, "build", bad); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.line, code, errs, tc.want)
		}
	}
	for _, flag := range [][]string{{"--pull"}, {"--squash"}, {"--secret", "id=x,src=/etc/hostname"}, {"--build-context", "a=/tmp"}} {
		if _, errs, code := c.run(nil, append(append([]string{"build"}, flag...), ctx)...); code != 125 || !strings.Contains(errs, "not supported") {
			t.Errorf("build %v: exit %d, %q", flag, code, errs)
		}
	}
}

// Two builds on two empty stores with SOURCE_DATE_EPOCH give the same image.
func TestBuildReproducible(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	ctx := t.TempDir()
	data, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(ctx, "busybox"), data, 0o755)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /out && /bin/busybox echo made > /out/file"]
WORKDIR /work
ENV A=b
CMD ["/bin/busybox", "sh"]
`), 0o644)
	var ids []string
	for i := 0; i < 2; i++ {
		c := newCLI(t)
		// A different mtime each time: the epoch clamps it away.
		tm := syscallTime(int64(1700000000 + i*1000))
		os.Chtimes(filepath.Join(ctx, "busybox"), tm, tm)
		c.build("--build-arg", "SOURCE_DATE_EPOCH=1600000000", "-t", "repro", ctx)
		ids = append(ids, c.ok("inspect", "--format", "{{.Id}} {{.Created}}", "repro"))
	}
	if ids[0] != ids[1] {
		t.Fatalf("SOURCE_DATE_EPOCH builds differ: %v", ids)
	}
	if !strings.Contains(ids[0], "2020-09-13") {
		t.Errorf("created is not the epoch: %s", ids[0])
	}
}
