package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"
)

func syscallTime(sec int64) time.Time { return time.Unix(sec, 0) }

// corpusContext copies the Dockerfile corpus into a fresh context dir and
// adds the tar that ADD unpacks.
func corpusContext(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	if out, err := exec.Command("cp", "-a", "../../internal/builder/testdata/corpus", dir).CombinedOutput(); err != nil {
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
	args := []string{"--build-arg", "FLAVOUR=spicy", "--build-arg", "UNUSED=1", "--build-arg", "ALSO_UNUSED=2"}
	progress := c.build(append(args, "-t", "corpus:1", "-t", "corpus:2", "--label", "built=by-test", "--iidfile", iid, ctx)...)
	id := readFile(t, iid)
	for _, want := range []string{"[base 4/4] RUN echo base > /base.txt", "[final 2/36] MAINTAINER", "[Warning] One or more build-args [ALSO_UNUSED UNUSED] were not consumed", "writing image " + id + " done", "naming to docker.io/library/corpus:1 done", "naming to docker.io/library/corpus:2 done"} {
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
		"meta-arg.txt":         "busybox\n",
		"app/args.txt":         "linux/amd64 linux linux/amd64 spicy unset\n",
		"app/net-none.txt":     "lo\n",
		"app/net-host.txt":     hostInterfaces(t),
		"app/group-from-image": "root:x:0:\nnogroup:x:65534:\n",
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
	// inspect shows them as docker does.
	if got := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{index .Config.Healthcheck.Test 0}} {{len .Config.OnBuild}} {{index .Config.Shell 1}}", id)); got != "CMD-SHELL 1 -e" {
		t.Errorf("inspect Healthcheck/OnBuild/Shell: %q", got)
	}

	// ONBUILD triggers run in a build FROM the image.
	child := t.TempDir()
	os.WriteFile(filepath.Join(child, "Dockerfile"), []byte("FROM corpus:1\nRUN cat /onbuild.txt\n"), 0o644)
	c.build("-t", "child", child)
	if got := readFile(t, filepath.Join(c.mountImage("child"), "onbuild.txt")); got != "onbuild\n" {
		t.Errorf("onbuild trigger output %q", got)
	}

	// Rebuilding the unchanged context: every step cached, same image.
	again := c.build(append(args, "--iidfile", iid, "--label", "built=by-test", ctx)...)
	if readFile(t, iid) != id {
		t.Fatalf("unchanged rebuild gave %s, want %s", readFile(t, iid), id)
	}
	againStatus := stepStatus(t, again)
	if len(againStatus) != 40 {
		t.Errorf("rebuild showed %d steps, want 40:\n%s", len(againStatus), again)
	}
	for step, status := range againStatus {
		if status != "CACHED" && !strings.Contains(step, " FROM ") {
			t.Errorf("unchanged rebuild ran %s", step)
		}
	}
}

// hostInterfaces lists the network interfaces of the test's namespace, as
// the corpus's RUN --network=host step does.
func hostInterfaces(t *testing.T) string {
	t.Helper()
	var names []string
	for i, line := range strings.Split(readFile(t, "/proc/self/net/dev"), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && i >= 2 {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return strings.Join(names, "\n") + "\n"
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
		{"RUN --mount=type=ssh,required true", `Dockerfile:2: RUN --mount=type=ssh,target=/run/buildkit/ssh_agent.0: no SSH agent "default" was given`},
		{"RUN --mount=type=cache,from=busybox,target=/c true", "Dockerfile:2: RUN --mount=type=cache,from= is not supported"},
		{"ADD git@github.com:x/y.git /x", "Dockerfile:2: ADD of a git source"},
		{"ADD --checksum=sha256:00 Dockerfile /x", "Dockerfile:2: ADD --checksum needs an http(s) source"},
		{"RUN --mount=type=bind,source=nope,target=/x true", "Dockerfile:2: RUN --mount=type=bind,source=nope: nope: "},
		{"RUN --security=insecure true", "Dockerfile:2: RUN --security is not supported"},
		{"RUN --network=bridge true", `Dockerfile:2: invalid network mode "bridge"`},
		{"FROM --platform=linux/s390x busybox", "Dockerfile:2: FROM --platform linux/s390x: this host is linux/amd64 and the kernel has no binfmt_misc emulation registered for linux/s390x"},
		{"COPY Dockerfile Dockerfile /nodir", "Dockerfile:2: When using COPY with more than one source file, the destination must be a directory and end with a /"},
	} {
		bad := t.TempDir()
		os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\n"+tc.line+"\n"), 0o644)
		if _, errs, code := c.run(nil, "build", bad); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.line, code, errs, tc.want)
		}
	}
	for _, tc := range []struct {
		flag []string
		want string
	}{
		{[]string{"--progress", "fancy"}, `invalid --progress "fancy"`},
		{[]string{"--network", "bridge"}, `network mode "bridge" not supported`},
		{[]string{"--secret", "src=/etc/hostname"}, "invalid --secret"},
		{[]string{"--secret", "id=x,src=/nonexistent"}, "no such file"},
		{[]string{"--secret", "id=x,env=STRATA_TEST_UNSET_VAR"}, "is not set"},
		{[]string{"--build-context", "noequals"}, "invalid --build-context"},
		{[]string{"-f", "-"}, "cannot both come from stdin"},
	} {
		args := append(append([]string{"build"}, tc.flag...), ctx)
		if tc.flag[0] == "-f" {
			args[len(args)-1] = "-"
		}
		if _, errs, code := c.run(nil, args...); code != 125 || !strings.Contains(errs, tc.want) {
			t.Errorf("build %v: exit %d, %q, want %q", tc.flag, code, errs, tc.want)
		}
	}
}

// Two builds on two empty stores with SOURCE_DATE_EPOCH give the same image.
func TestBuildReproducible(t *testing.T) {
	bb := requires.Command(t, "busybox")
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

// statusOf finds the status of the one step whose header contains part.
func statusOf(t *testing.T, progress, part string) string {
	t.Helper()
	found := ""
	for step, status := range stepStatus(t, progress) {
		if strings.Contains(step, part) {
			if found != "" {
				t.Fatalf("more than one step contains %q", part)
			}
			found = status
		}
	}
	if found == "" {
		t.Fatalf("no step contains %q:\n%s", part, progress)
	}
	return found
}

// storeContains tells which files under dir hold needle.
func storeContains(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestBuildRunMounts(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("in.txt", "context file\n")
	write("gone.txt", "still here\n")
	write("ignored.txt", "ignored\n")
	write(".dockerignore", "ignored.txt\n")
	write("Dockerfile", `FROM busybox AS src
RUN mkdir /data && echo from-stage > /data/s.txt
FROM busybox
RUN --mount=type=cache,target=/root/.cache/x,id=c1,uid=65534,mode=0700 sh -c 'n=$(cat /root/.cache/x/n 2>/dev/null || echo 0); echo $((n+1)) > /root/.cache/x/n; cp /root/.cache/x/n /count; stat -c "%u %a" /root/.cache/x > /cachemode'
RUN --mount=type=tmpfs,target=/scratch/t sh -c 'echo tmp > /scratch/t/f; cat /scratch/t/f > /tmpout; grep -q " /scratch/t tmpfs " /proc/mounts'
RUN --mount=type=bind,target=/ctx sh -c 'cat /ctx/in.txt > /ctxout; test ! -e /ctx/ignored.txt; ! touch /ctx/new 2>/dev/null'
RUN --mount=type=bind,target=/ctx,rw sh -c 'echo changed > /ctx/in.txt; rm /ctx/gone.txt'
RUN --mount=type=bind,from=src,source=/data,target=/s cat /s/s.txt > /stageout
RUN --mount=type=secret,id=tok sh -c 'sha256sum /run/secrets/tok | cut -d" " -f1 > /secretsum; stat -c "%a %u" /run/secrets/tok > /secretmode'
RUN --mount=type=secret,id=tok,env=TOK sh -c 'echo -n "$TOK" | sha256sum | cut -d" " -f1 > /envsum'
`)
	secret := []byte("s3cr3t-Value-9f2c")
	secretFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(secretFile, secret, 0o600)

	c.build("-t", "m", "--secret", "id=tok,src="+secretFile, ctx)

	// The secret's bytes are nowhere in the store: not in a layer, a
	// config (history), nor the metadata file (cache keys).
	if hits := storeContains(t, c.root, secret); len(hits) != 0 {
		t.Errorf("the secret is in the store: %v", hits)
	}
	if hist := c.ok("history", "--no-trunc", "m"); strings.Contains(hist, string(secret)) || !strings.Contains(hist, "sha256sum /run/secrets/tok") {
		t.Errorf("history:\n%s", hist)
	}

	root := c.mountImage("m")
	for p, want := range map[string]string{
		"count":      "1\n",
		"cachemode":  "65534 700\n",
		"tmpout":     "tmp\n",
		"ctxout":     "context file\n",
		"stageout":   "from-stage\n",
		"secretsum":  sha256Hex(secret) + "\n",
		"secretmode": "400 0\n",
		"envsum":     sha256Hex(secret) + "\n",
	} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// Mount points the runtime made are not in the image.
	for _, p := range []string{"root/.cache", "scratch", "ctx", "s", "run"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s leaked into the image", p)
		}
	}
	// The rw bind mount's writes were thrown away.
	if readFile(t, filepath.Join(ctx, "in.txt")) != "context file\n" || readFile(t, filepath.Join(ctx, "gone.txt")) != "still here\n" {
		t.Error("RUN --mount=type=bind,rw changed the build context")
	}
	c.run(nil, "umount", "m")

	// Unchanged: all cached. The cache directory outlives the build.
	again := c.build("--secret", "id=tok,src="+secretFile, ctx)
	for step, status := range stepStatus(t, again) {
		if status != "CACHED" && !strings.Contains(step, "FROM") {
			t.Errorf("unchanged rebuild ran %s", step)
		}
	}
	c.build("--no-cache", "-t", "m2", "--secret", "id=tok,src="+secretFile, ctx)
	if got := readFile(t, filepath.Join(c.mountImage("m2"), "count")); got != "2\n" {
		t.Errorf("second run saw the cache mount hold %q, want 2", got)
	}

	// The files a bind mount shows are in the step's key.
	write("in.txt", "edited\n")
	edited := c.build("--secret", "id=tok,src="+secretFile, ctx)
	if s := statusOf(t, edited, "cat /ctx/in.txt"); s != "DONE" {
		t.Errorf("after editing the bound file the step was %s", s)
	}
	if s := statusOf(t, edited, "type=tmpfs"); s != "CACHED" {
		t.Errorf("a step before the bind mount was %s", s)
	}

	// builder prune empties the cache mounts.
	if out := c.ok("builder", "prune", "-af"); !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("prune: %s", out)
	}
	if _, err := os.Stat(filepath.Join(c.root, "buildcache-mounts")); err == nil {
		t.Error("cache mounts left after prune")
	}

	// A required secret that is not given fails the step; an optional one
	// is simply absent.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\nRUN --mount=type=secret,id=nope test ! -e /run/secrets/nope\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n"), 0o644)
	if _, errs, code := c.run(nil, "build", bad); code == 0 || !strings.Contains(errs, "Dockerfile:3:") || !strings.Contains(errs, "secret nope is required") {
		t.Errorf("missing required secret: exit %d %s", code, errs)
	}

	// A failing RUN with mounts leaves no mount and no scratch file.
	os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\nRUN --mount=type=secret,id=tok --mount=type=bind,target=/c,rw --mount=type=cache,target=/k --mount=type=tmpfs,target=/t false\n"), 0o644)
	if _, _, code := c.run(nil, "build", "--secret", "id=tok,src="+secretFile, bad); code == 0 {
		t.Error("RUN false succeeded")
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(c.root, "build")) {
		t.Errorf("build mounts left:\n%s", mounts)
	}
	if left := storeFiles(t, filepath.Join(c.root, "build", "steps")); len(left) != 0 {
		t.Errorf("step files left: %v", left)
	}
}

func TestBuildSquash(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
RUN echo one > /one && echo tmp > /tmpfile && mkdir /data && echo old > /data/old
RUN rm /tmpfile /bin/vi && echo two > /two
ENV X=1
RUN rm -rf /data && mkdir /data && echo new > /data/new
`), 0o644)
	c.build("-t", "plain", ctx)
	progress := c.build("--squash", "-t", "sq", ctx)
	if !strings.Contains(progress, "squashing layers") {
		t.Errorf("no squash step:\n%s", progress)
	}
	layers := func(ref string) []string {
		return strings.Fields(strings.Trim(c.ok("inspect", "--format", "{{.RootFS.Layers}}", ref), "[]\n"))
	}
	base, plain, sq := layers("busybox"), layers("plain"), layers("sq")
	if len(plain) != 4 || len(sq) != 2 || sq[0] != base[0] || sq[1] == plain[1] || sq[1] == plain[2] {
		t.Fatalf("layers: base %v plain %v squashed %v", base, plain, sq)
	}
	id := strings.TrimSpace(c.ok("inspect", "--format", "{{.Id}}", "sq"))
	var cfg struct {
		History []struct {
			CreatedBy  string `json:"created_by"`
			Comment    string `json:"comment"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
		Config struct{ Env []string }
	}
	raw := readFile(t, filepath.Join(c.root, "content", "blobs", "sha256", strings.TrimPrefix(id, "sha256:")))
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	h := cfg.History
	if len(h) != 6 || h[0].EmptyLayer || !h[1].EmptyLayer || !h[2].EmptyLayer || !h[4].EmptyLayer || !strings.Contains(h[2].CreatedBy, "rm /tmpfile") || h[5].EmptyLayer || !strings.HasPrefix(h[5].Comment, "merge sha256:") {
		t.Errorf("history %+v", h)
	}
	if !strings.Contains(strings.Join(cfg.Config.Env, " "), "X=1") {
		t.Errorf("env %v", cfg.Config.Env)
	}
	root := c.mountImage("sq")
	if readFile(t, filepath.Join(root, "one")) != "one\n" || readFile(t, filepath.Join(root, "two")) != "two\n" {
		t.Error("squashed image lacks the stage's files")
	}
	for _, p := range []string{"tmpfile", "bin/vi"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s survived the squash", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "bin/sh")); err != nil {
		t.Errorf("base files lost: %v", err)
	}
	// A directory replaced in a layer (an opaque whiteout) stays replaced.
	// (Not /etc: RUN's hosts, hostname and resolv.conf are mounted there,
	// so `rm -rf /etc` fails in docker's builders and in strata.)
	if ents, _ := os.ReadDir(filepath.Join(root, "data")); len(ents) != 1 || ents[0].Name() != "new" {
		t.Errorf("/data = %v", ents)
	}
	// The merge is cached: the same image again.
	again := c.build("--squash", "--iidfile", filepath.Join(ctx, "iid"), ctx)
	if !regexp.MustCompile(`#(\d+) squashing layers\n#(\d+) CACHED`).MatchString(again) || readFile(t, filepath.Join(ctx, "iid")) != id {
		t.Errorf("squash rebuild: %s\n%s", readFile(t, filepath.Join(ctx, "iid")), again)
	}
}

func TestBuildCopyFlags(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	for name, data := range map[string]string{
		"a/x.txt": "x", "a/y.md": "y", "a/sub/z.txt": "z", "b/w.txt": "w", "keep.md": "k", "hom1.txt": "1", "home.md": "2",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(ctx, name)), 0o755)
		os.WriteFile(filepath.Join(ctx, name), []byte(data), 0o644)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
COPY --exclude=*.md --exclude=sub a/ /ex/
COPY --exclude=*.txt hom* /globex/
COPY --parents a/sub/z.txt b/w.txt /par/
COPY --parents ./a/./sub/z.txt /pivot/
COPY --parents a/sub /pdir/
COPY --link keep.md /link/
`), 0o644)
	c.build("-t", "cf", ctx)
	root := c.mountImage("cf")
	for _, p := range []string{"ex/x.txt", "globex/home.md", "par/a/sub/z.txt", "par/b/w.txt", "pivot/sub/z.txt", "pdir/a/sub/z.txt", "link/keep.md"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("/%s missing: %v", p, err)
		}
	}
	for _, p := range []string{"ex/y.md", "ex/sub", "globex/hom1.txt", "par/z.txt", "pivot/a"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s exists", p)
		}
	}
	// An excluded file's changes do not invalidate the step.
	os.WriteFile(filepath.Join(ctx, "a", "y.md"), []byte("changed"), 0o644)
	if s := statusOf(t, c.build(ctx), "COPY --exclude=*.md"); s != "CACHED" {
		t.Errorf("editing an excluded file re-ran the COPY (%s)", s)
	}
}

func TestBuildNamedContextsAndStdin(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	extra := t.TempDir()
	os.WriteFile(filepath.Join(extra, "f.txt"), []byte("extra\n"), 0o644)
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM base
COPY --from=extra f.txt /copied
RUN --mount=type=bind,from=extra,target=/e cat /e/f.txt > /mounted
`), 0o644)
	c.build("-t", "nc", "--build-context", "extra="+extra, "--build-context", "base=docker-image://busybox", ctx)
	root := c.mountImage("nc")
	if readFile(t, filepath.Join(root, "copied")) != "extra\n" || readFile(t, filepath.Join(root, "mounted")) != "extra\n" {
		t.Error("named context files not used")
	}
	if _, errs, code := c.run(nil, "build", ctx); code == 0 || !strings.Contains(errs, "FROM base") {
		t.Errorf("without the contexts: exit %d %s", code, errs)
	}
	// FROM a directory context: its files are the root filesystem.
	os.WriteFile(filepath.Join(extra, "Dockerfile"), []byte("FROM tools\nCOPY --from=tools /bin/busybox /copied-busybox\n"), 0o644)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), []byte("not really busybox"), 0o755)
	c.build("-t", "fromdir", "--build-context", "tools="+rootfs, extra)
	fd := c.mountImage("fromdir")
	if readFile(t, filepath.Join(fd, "bin/busybox")) != "not really busybox" || readFile(t, filepath.Join(fd, "copied-busybox")) != "not really busybox" {
		t.Error("FROM a directory context")
	}
	os.Remove(filepath.Join(extra, "Dockerfile"))

	// A Dockerfile on stdin builds with an empty context.
	if _, errs, code := c.run(strings.NewReader("FROM busybox\nRUN echo hi > /hi\n"), "build", "-t", "s1", "-"); code != 0 {
		t.Fatalf("Dockerfile on stdin: %s", errs)
	}
	if readFile(t, filepath.Join(c.mountImage("s1"), "hi")) != "hi\n" {
		t.Error("stdin Dockerfile: /hi")
	}
	if _, errs, code := c.run(strings.NewReader("FROM busybox\nCOPY x /x\n"), "build", "-"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("COPY with no context: exit %d %s", code, errs)
	}
	// A tar on stdin is the context.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string]string{"Dockerfile": "FROM busybox\nCOPY data.txt /data.txt\n", "other.Dockerfile": "FROM busybox\nCOPY data.txt /other.txt\n", "data.txt": "from tar\n"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	if _, errs, code := c.run(bytes.NewReader(buf.Bytes()), "build", "-t", "s2", "-"); code != 0 {
		t.Fatalf("tar context on stdin: %s", errs)
	}
	if readFile(t, filepath.Join(c.mountImage("s2"), "data.txt")) != "from tar\n" {
		t.Error("tar context: /data.txt")
	}
	if _, errs, code := c.run(bytes.NewReader(buf.Bytes()), "build", "-t", "s3", "-f", "other.Dockerfile", "-"); code != 0 {
		t.Fatalf("tar context with -f: %s", errs)
	}
	if readFile(t, filepath.Join(c.mountImage("s3"), "other.txt")) != "from tar\n" {
		t.Error("tar context -f: /other.txt")
	}
	// -f - reads the Dockerfile from stdin, with a directory context.
	if _, errs, code := c.run(strings.NewReader("FROM busybox\nCOPY f.txt /f\n"), "build", "-t", "s4", "-f", "-", extra); code != 0 {
		t.Fatalf("-f -: %s", errs)
	}
	if readFile(t, filepath.Join(c.mountImage("s4"), "f")) != "extra\n" {
		t.Error("-f -: /f")
	}
}

func TestBuildAddURL(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	payload := []byte("downloaded payload\n")
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "inner", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("i"))
	tw.Close()
	modified := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/data.txt":
			w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
			w.Write(payload)
		case "/files/a.tar":
			w.Write(tarBuf.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
ADD --checksum=sha256:`+sha256Hex(payload)+` `+srv.URL+`/files/data.txt /d/
ADD `+srv.URL+`/files/data.txt /plain.txt
ADD `+srv.URL+`/files/a.tar /t/
`), 0o644)
	c.build("-t", "url", ctx)
	root := c.mountImage("url")
	for _, p := range []string{"d/data.txt", "plain.txt"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if readFile(t, filepath.Join(root, p)) != string(payload) || st.Mode&0o777 != 0o600 || st.Mtim.Sec != modified.Unix() {
			t.Errorf("/%s: mode %o mtime %d", p, st.Mode&0o777, st.Mtim.Sec)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "t", "a.tar")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a downloaded tar is not kept as a file: %v", err)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\nADD --checksum=sha256:"+sha256Hex([]byte("other"))+" "+srv.URL+"/files/data.txt /d\n"), 0o644)
	if _, errs, code := c.run(nil, "build", bad); code == 0 || !strings.Contains(errs, "checksum mismatch") {
		t.Errorf("bad checksum: exit %d %s", code, errs)
	}
	os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\nADD "+srv.URL+"/files/missing /d\n"), 0o644)
	if _, errs, code := c.run(nil, "build", bad); code == 0 || !strings.Contains(errs, "404") {
		t.Errorf("404: exit %d %s", code, errs)
	}
}

// COPY --link makes a layer that does not depend on the parent: when the
// parent changes, the same layer (same diffID) is laid on the new one.
func TestBuildCopyLink(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "app.txt"), []byte("app\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
ARG V=1
RUN echo $V > /v
COPY --link --chmod=0640 --chown=7:8 app.txt /app/
COPY --link app.txt /bin/app.txt
RUN cat /app/app.txt /v > /out
`), 0o644)
	layers := func(ref string) []string {
		return strings.Fields(strings.Trim(c.ok("inspect", "--format", "{{.RootFS.Layers}}", ref), "[]\n"))
	}
	c.build("-t", "l1", ctx)
	second := c.build("-t", "l2", "--build-arg", "V=2", ctx)
	if s := statusOf(t, second, "COPY --link --chmod"); s != "CACHED" {
		t.Errorf("link COPY on a new parent: %s", s)
	}
	if s := statusOf(t, second, "RUN cat"); s != "DONE" {
		t.Errorf("the RUN after it: %s", s)
	}
	l1, l2 := layers("l1"), layers("l2")
	if len(l1) != 5 || len(l2) != 5 || l1[1] == l2[1] || l1[2] != l2[2] || l1[3] != l2[3] {
		t.Fatalf("layers\n%v\n%v", l1, l2)
	}
	root := c.mountImage("l2")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "app/app.txt"), &st); err != nil || st.Mode&0o777 != 0o640 || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("app.txt: %v %o %d:%d", err, st.Mode&0o777, st.Uid, st.Gid)
	}
	if readFile(t, filepath.Join(root, "out")) != "app\n2\n" || readFile(t, filepath.Join(root, "bin/app.txt")) != "app\n" {
		t.Error("contents")
	}
	if _, err := os.Lstat(filepath.Join(root, "bin/sh")); err != nil {
		t.Errorf("the link layer's /bin hid the parent's: %v", err)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nCOPY --link --chown=nobody app.txt /x\n"), 0o644)
	if _, errs, code := c.run(nil, "build", ctx); code == 0 || !strings.Contains(errs, "use numeric IDs") {
		t.Errorf("--link --chown=name: exit %d %s", code, errs)
	}
}

func TestReadSecret(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s")
	os.WriteFile(f, []byte("from-file"), 0o600)
	t.Setenv("STRATA_TEST_SECRET", "from-env")
	for spec, want := range map[string]string{
		"id=a,src=" + f:                  "from-file",
		"id=a,source=" + f:               "from-file",
		"id=a,env=STRATA_TEST_SECRET":    "from-env",
		"id=STRATA_TEST_SECRET":          "from-env",
		"type=env,id=STRATA_TEST_SECRET": "from-env",
	} {
		id, data, err := readSecret(spec)
		if err != nil || string(data) != want || (id != "a" && id != "STRATA_TEST_SECRET") {
			t.Errorf("%s: %q %q %v", spec, id, data, err)
		}
	}
	for _, bad := range []string{"src=" + f, "id=a,src=" + f + ",env=X", "id=a,bogus=1", "id=a,type=ssh"} {
		if _, _, err := readSecret(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// An image of more layers than overlay takes as lowerdirs in one mount
// option page still builds (every step mounts the whole chain) and runs.
func TestBuildManyLayers(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	const layers = 125
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for i := 1; i <= layers; i++ {
		// Mostly COPY, which is cheap; some RUNs, the last one over all
		// the layers before it.
		if i%25 == 0 {
			fmt.Fprintf(&df, "RUN echo run %d > /layers/r%03d\n", i, i)
			continue
		}
		name := fmt.Sprintf("f%03d", i)
		os.WriteFile(filepath.Join(ctx, name), []byte("copy "+name+"\n"), 0o644)
		fmt.Fprintf(&df, "COPY %s /layers/\n", name)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df.String()), 0o644)
	c.build("-t", "many", ctx)
	if n := len(strings.Fields(strings.Trim(c.ok("inspect", "--format", "{{.RootFS.Layers}}", "many"), "[]\n"))); n != layers+1 {
		t.Fatalf("%d layers, want %d", n, layers+1)
	}
	out := c.ok("run", "--rm", "many", "cat", "/layers/f001", "/layers/f063", "/layers/r100", "/layers/f124", "/layers/r125")
	if want := "copy f001\ncopy f063\nrun 100\ncopy f124\nrun 125\n"; out != want {
		t.Errorf("run over %d layers printed %q, want %q", layers+1, out, want)
	}
	if ps := c.ok("ps", "-a", "-q"); ps != "" {
		t.Errorf("--rm left containers: %q", ps)
	}
}

// -q prints the image ID and nothing else; `# escape=` changes the escape
// character (and is still a directive after `# syntax=`: a comment there
// would end the directives); --network none is the RUN default that RUN
// --network overrides.
func TestBuildQuietEscapeNetwork(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("# syntax=docker/dockerfile:1\n# escape=`\n"+`FROM busybox
ENV WINPATH=C:\dir `+"`"+`
# A comment inside a continued instruction is dropped.
    NEXT=2
RUN sed -n 's/^ *\([^:]*\):.*/\1/p' /proc/net/dev > /default.txt
RUN --network=host sed -n 's/^ *\([^:]*\):.*/\1/p' /proc/net/dev > /host.txt
`), 0o644)
	out, errs, code := c.run(nil, "build", "-q", "--network", "none", "-t", "q", ctx)
	if code != 0 || errs != "" || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Fatalf("build -q: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if id := c.ok("inspect", "--format", "{{.Id}}", "q"); id != out {
		t.Errorf("-q printed %q, the image is %q", out, id)
	}
	env := c.ok("inspect", "--format", "{{.Config.Env}}", "q")
	if !strings.Contains(env, `WINPATH=C:\dir NEXT=2`) {
		t.Errorf("with escape=`, env %s", env)
	}
	root := c.mountImage("q")
	if got := readFile(t, filepath.Join(root, "default.txt")); got != "lo\n" {
		t.Errorf("RUN under --network none saw interfaces %q", got)
	}
	if got, want := readFile(t, filepath.Join(root, "host.txt")), hostInterfaces(t); got != want {
		t.Errorf("RUN --network=host under --network none saw %q, want %q", got, want)
	}
}
